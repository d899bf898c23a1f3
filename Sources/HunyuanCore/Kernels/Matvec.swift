import CKernels
#if canImport(Glibc)
import Glibc
#endif

// Matrix-vector products over stored weights (decode): y = W·x for any weight format, fp32
// accumulation, rows split over the pool; nothing allocated per call.

/// dot(row (stored as L), x) over n elements, fp32 accumulation.
@inlinable @inline(__always)
public func dotRow<L: WeightLoader>(_: L.Type, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let xr = UnsafeRawPointer(x)
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var i = 0
    while i + 32 <= n {
        a0.addProduct(L.load8(w, i), xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
        a1.addProduct(L.load8(w, i + 8), xr.loadUnaligned(fromByteOffset: 4 * (i + 8), as: SIMD8<Float>.self))
        a2.addProduct(L.load8(w, i + 16), xr.loadUnaligned(fromByteOffset: 4 * (i + 16), as: SIMD8<Float>.self))
        a3.addProduct(L.load8(w, i + 24), xr.loadUnaligned(fromByteOffset: 4 * (i + 24), as: SIMD8<Float>.self))
        i += 32
    }
    while i + 8 <= n {
        a0.addProduct(L.load8(w, i), xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
        i += 8
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < n { s += L.load1(w, i) * x[i]; i += 1 }
    return s
}

@inlinable
func matvecRows<L: WeightLoader>(_: L.Type, _ w: WeightMatrix, _ x: UnsafePointer<Float>,
                                 _ y: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    let n = w.cols, rb = w.rowBytes
    for r in range { y[r] = dotRow(L.self, w.base + r * rb, x, n) }
}

/// x quantized to int8 blocks of 32 for the integer kernels: codes, per-block scales and sums.
/// Lives in per-thread scratch (allocated once per thread, grown when a wider x comes).
struct QuantizedActivation {
    let q: UnsafeMutablePointer<Int8>
    let d: UnsafeMutablePointer<Float>
    let s: UnsafeMutablePointer<Int32>
    let blocks: Int

    init(_ x: UnsafePointer<Float>, _ n: Int) {
        let nb = (n + 31) / 32
        let raw = ThreadScratch.bytes(nb * 32 + nb * 8)
        q = raw.bindMemory(to: Int8.self, capacity: nb * 32)
        d = (raw + nb * 32).bindMemory(to: Float.self, capacity: nb)
        s = (raw + nb * 36).bindMemory(to: Int32.self, capacity: nb)
        blocks = nb
        hyi_quantize_rows_q8(x, 1, Int64(n), Int64(n), q, d, s)  // = hyi_quantize_act_q8, vectorized
    }
}

/// One growable scratch buffer per thread (pthread key), so kernels allocate nothing per token. A
/// kernel may hold `bytes(n)` only until it calls another kernel that uses it on the same thread.
public enum ThreadScratch {
    final class Buffer { var p: UnsafeMutableRawPointer? = nil; var size = 0 }
    static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { ptr in
            guard let ptr else { return }
            let b = Unmanaged<Buffer>.fromOpaque(ptr).takeRetainedValue()
            b.p?.deallocate()
        }
        return k
    }()

    public static func bytes(_ n: Int) -> UnsafeMutableRawPointer {
        let b: Buffer
        if let ptr = pthread_getspecific(key) {
            b = Unmanaged<Buffer>.fromOpaque(ptr).takeUnretainedValue()
        } else {
            b = Buffer()
            pthread_setspecific(key, Unmanaged.passRetained(b).toOpaque())
        }
        if let p = b.p, b.size >= n { return p }
        b.p?.deallocate()
        b.size = max(n, 2 * b.size, 4096)
        let p = UnsafeMutableRawPointer.allocate(byteCount: b.size, alignment: 64)
        b.p = p
        return p
    }
}

/// Rows `range` of y = W · x for any weight format: float formats through the generic SIMD dot over
/// a `WeightLoader`, block formats through the integer kernels on the quantized x `xq`.
@inline(__always)
func matvecRange(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ xq: QuantizedActivation?,
                 _ y: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    if range.isEmpty { return }
    switch w.format {
    case .bf16: matvecRows(BF16Loader.self, w, x, y, range)
    case .f16: matvecRows(F16Loader.self, w, x, y, range)
    case .f32: matvecRows(F32Loader.self, w, x, y, range)
    case .fp8:
        guard let s = w.rowScale?.p else {
            assertionFailure("fp8 matrix without row scales"); return
        }
        hyi_matvec_fp8(resolvedQuantPath, w.base, w.rowBytes, Int64(range.lowerBound), Int64(range.upperBound), x, Int64(w.cols), s, y)
    case .q8_0, .q4_0, .q4_k:
        guard let xq else {
            assertionFailure("block-format matvec without a quantized input"); return
        }
        hyi_matvec_q(w.format.kernelCode, resolvedQuantPath, w.base, w.rowBytes, Int64(range.lowerBound),
                     Int64(range.upperBound), xq.q, xq.d, xq.s, Int64(xq.blocks), y)
    }
}

/// y[rows] = W[rows, cols] · x[cols], rows split over `pool`. Block formats quantize x to int8 once
/// (on the calling thread) and use integer dot products. No allocation.
public func matvec(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    let xq = w.format.isBlockQuantized ? QuantizedActivation(x, w.cols) : nil
    let body: (Range<Int>) -> Void = { r in matvecRange(w, x, xq, y, r) }
    if let pool, pool.threadCount > 1, w.rows * w.cols >= 1 << 17 {
        pool.parallelRanges(w.rows, minChunk: 16, body)
    } else {
        body(0..<w.rows)
    }
}

/// Several matvecs over the same input x (e.g. q/k/v or gate/up of one token) in one parallel
/// region, so a decode step waits at one barrier instead of one per matrix. `ys[i]` receives
/// ws[i] · x. At most 3 matrices, all with x.count columns; no allocation.
public func matvecShared(_ w0: WeightMatrix, _ y0: UnsafeMutablePointer<Float>,
                         _ w1: WeightMatrix, _ y1: UnsafeMutablePointer<Float>,
                         _ w2: WeightMatrix? = nil, _ y2: UnsafeMutablePointer<Float>? = nil,
                         x: UnsafePointer<Float>, pool: ThreadPool?) {
    let r0 = w0.rows, r1 = w1.rows, r2 = y2 == nil ? 0 : (w2?.rows ?? 0)
    let total = r0 + r1 + r2
    let quantized = w0.format.isBlockQuantized || w1.format.isBlockQuantized || (w2?.format.isBlockQuantized ?? false)
    let xq = quantized ? QuantizedActivation(x, w0.cols) : nil
    let body: (Range<Int>) -> Void = { range in
        // Split the global row range into per-matrix pieces (empty when the range misses a matrix).
        func piece(_ off: Int, _ n: Int) -> Range<Int> {
            let lo = max(range.lowerBound - off, 0), hi = min(range.upperBound - off, n)
            return lo < hi ? lo..<hi : 0..<0
        }
        matvecRange(w0, x, xq, y0, piece(0, r0))
        matvecRange(w1, x, xq, y1, piece(r0, r1))
        if let w2, let y2 { matvecRange(w2, x, xq, y2, piece(r0 + r1, r2)) }
    }
    let work = w0.rows * w0.cols + w1.rows * w1.cols + r2 * (w2?.cols ?? 0)
    if let pool, pool.threadCount > 1, work >= 1 << 17 {
        pool.parallelRanges(total, minChunk: 16, body)
    } else {
        body(0..<total)
    }
}


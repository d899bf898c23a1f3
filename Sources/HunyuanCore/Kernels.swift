import COpenBLAS
import CKernels
#if canImport(Glibc)
import Glibc
#endif

// Numeric kernels shared by the engines: matrix-vector products over stored weights (f32/bf16/f16),
// GEMM through OpenBLAS, RMSNorm, RoPE, SiLU, softmax and blocked causal attention.
// All buffers are row-major fp32 unless a weight format says otherwise; accumulation is fp32.
// Kernels are small functions over pointers and shapes so a backward pass can pair with them.

// MARK: - Weight formats

/// How a stored weight element becomes a Float. One generic kernel per operation is specialized
/// through this protocol (not copied per dtype).
public protocol WeightLoader {
    static var elementSize: Int { get }
    /// Elements i..<i+8 of the row starting at `p`.
    static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float>
    static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float
    /// Bytes taken by the first n elements of a row (n a multiple of the format's block).
    static func byteOffset(_ n: Int) -> Int
}

extension WeightLoader {
    @inlinable @inline(__always)
    public static func byteOffset(_ n: Int) -> Int { n * elementSize }
}

/// q8_0 blocks (f16 d, 32 × int8; 34 bytes per 32 values) read as floats: the q8_0 KV cache.
/// load8's i must be a multiple of 8 (8 values never straddle a block).
public enum Q8_0Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 1 }
    @inlinable @inline(__always)
    public static func byteOffset(_ n: Int) -> Int { (n >> 5) * 34 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let blk = (i >> 5) * 34
        let d = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: blk, as: UInt16.self)))
        let q = p.loadUnaligned(fromByteOffset: blk + 2 + (i & 31), as: SIMD8<Int8>.self)
        return SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q)) * d
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        let blk = (i >> 5) * 34
        let d = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: blk, as: UInt16.self)))
        return Float(p.load(fromByteOffset: blk + 2 + (i & 31), as: Int8.self)) * d
    }
}

public enum F32Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 4 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        p.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
    }
}

public enum BF16Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 2 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let h = p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
    }
}

public enum F16Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 2 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let h = p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
        return SIMD8<Float>(unsafeBitCast(h, to: SIMD8<Float16>.self))
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
    }
}

/// FP8 E4M3 codes, widened through f16: the code's 7 magnitude bits shifted into an f16 are the same
/// number × 2⁻⁸ (also for subnormals), so a row's dot product is rescaled by 256 · scale[row].
public enum FP8Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 1 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let b = SIMD8<UInt16>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self))
        let h = ((b & 0x80) &<< 8) | ((b & 0x7F) &<< 7)
        return SIMD8<Float>(unsafeBitCast(h, to: SIMD8<Float16>.self))
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        let b = UInt16(p.load(fromByteOffset: i, as: UInt8.self))
        return Float(Float16(bitPattern: ((b & 0x80) << 8) | ((b & 0x7F) << 7)))
    }
}

/// Which integer kernel runs quantized matvecs. `.auto` takes AVX-512 VNNI when CPUFeatures reports it,
/// else AVX2 (the build baseline). Tests force each path in turn; `.vnni` without CPU support falls
/// back to AVX2 (never an illegal instruction).
public enum QuantKernelPath: Sendable { case auto, scalar, avx2, vnni }
nonisolated(unsafe) public var quantKernelPathOverride: QuantKernelPath = .auto

@usableFromInline
var resolvedQuantPath: Int32 {
    switch quantKernelPathOverride {
    case .scalar: return 0
    case .avx2: return 1
    case .vnni, .auto: return CPUFeatures.avx512 && CPUFeatures.avx512vnni ? 2 : 1
    }
}

/// Prefill GEMMs on f32/f16/bf16 weights: `true` (default) uses the register-tiled AVX-512 kernel
/// (`hyi_gemm_float`, weights read in place) where the CPU has AVX-512F; `false` forces the portable
/// path (widen tiles, OpenBLAS sgemm). Tests run both.
nonisolated(unsafe) public var floatGEMMKernelEnabled = true

/// A 2-D weight [rows, cols] used in place as stored — f32, bf16, f16, fp8 (per-row scales) or a block
/// format (q8_0, q4_0, q4_k; layouts in Quantization.swift) — borrowed from a tensor whose owner it
/// keeps alive. Immutable; shareable across threads.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let format: WeightFormat
    public let base: UnsafeRawPointer
    public let rowBytes: Int
    public let tensor: Tensor
    /// fp8: per-row dequantization factor (stored scale × 256, see FP8Loader); nil otherwise.
    let rowScale: FloatBox?

    /// The stored element type (U8 for block formats).
    public var dtype: DType { tensor.dtype }

    /// Wraps `t` as a [rows, cols] matrix: an f32/bf16/f16 tensor of shape [rows, cols]; an F8_E4M3
    /// tensor of that shape with `scale` (F32 [rows], or a single value); or a U8 tensor
    /// [rows, nBlocks, blockBytes] of a block format. Anything else is a format error naming `t`.
    public init(_ t: Tensor, rows: Int, cols: Int, scale: Tensor? = nil) throws {
        var fmt: WeightFormat
        switch t.dtype {
        case .f32: fmt = .f32
        case .f16: fmt = .f16
        case .bf16: fmt = .bf16
        case .f8e4m3: fmt = .fp8
        case .u8:
            guard t.shape.count == 3, t.shape[0] == rows, let f = WeightFormat.blockFormat(blockBytes: t.shape[2]),
                  t.shape[1] == f.blocksPerRow(cols) else {
                throw HYError.format("tensor \(t.name): U8 shape \(t.shape) is not a block-quantized [\(rows), \(cols)] matrix (q8_0/q4_0/q4_k)")
            }
            fmt = f
        default:
            throw HYError.unsupported("tensor \(t.name): dtype \(t.dtype.safetensorsName) is not supported for weights (f32, bf16, f16, F8_E4M3 + weight_scale, quantized U8)")
        }
        if !fmt.isBlockQuantized { try t.expectShape([rows, cols]) }
        if fmt == .fp8 {
            guard let scale, scale.dtype.isFloat, scale.count == rows || scale.count == 1 else {
                throw HYError.format("tensor \(t.name): F8_E4M3 weights need a float weight_scale of \(rows) values (or 1)")
            }
            let s = scale.floats()
            rowScale = FloatBox((0..<rows).map { 256 * s[scale.count == 1 ? 0 : $0] })
        } else {
            rowScale = nil
        }
        guard let b = t.data.baseAddress ?? (rows * cols == 0 ? UnsafeRawPointer(bitPattern: 16) : nil) else {
            throw HYError.format("tensor \(t.name): no data")
        }
        self.rows = rows; self.cols = cols; self.format = fmt; self.base = b; self.tensor = t
        self.rowBytes = fmt.isBlockQuantized ? fmt.rowBytes(cols) : cols * t.dtype.size
    }

    @inlinable public func row(_ r: Int) -> UnsafeRawPointer { base + r * rowBytes }

    /// Bytes of weight data read by one matvec.
    public var storedBytes: Int { rows * rowBytes }

    /// Row `r` as fp32 into `out` (cols floats).
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch format {
        case .bf16: convertRow(BF16Loader.self, row(r), cols, out)
        case .f16: convertRow(F16Loader.self, row(r), cols, out)
        case .f32: convertRow(F32Loader.self, row(r), cols, out)
        case .fp8:
            convertRow(FP8Loader.self, row(r), cols, out)
            let s = rowScale?.buffer[r] ?? 1
            for i in 0..<cols { out[i] *= s }
        case .q8_0, .q4_0, .q4_k: hyi_dequant_row(format.kernelCode, row(r), Int64(cols), out)
        }
    }
}

@inlinable
func convertRow<L: WeightLoader>(_: L.Type, _ p: UnsafeRawPointer, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 8 <= n {
        UnsafeMutableRawPointer(out + i).storeBytes(of: L.load8(p, i), as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { out[i] = L.load1(p, i); i += 1 }
}

// MARK: - Dot products and matvec

/// dot(row (stored as L), x) over n elements, fp32 accumulation.
@inlinable @inline(__always)
func dotRow<L: WeightLoader>(_: L.Type, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
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

/// One growable scratch buffer per thread (pthread key), so kernels allocate nothing per token.
enum ThreadScratch {
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

    static func bytes(_ n: Int) -> UnsafeMutableRawPointer {
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
        guard let s = w.rowScale?.buffer.baseAddress else { return }
        hyi_matvec_fp8(resolvedQuantPath, w.base, w.rowBytes, Int64(range.lowerBound), Int64(range.upperBound), x, Int64(w.cols), s, y)
    case .q8_0, .q4_0, .q4_k:
        guard let xq else { return }
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

// MARK: - GEMM

private let blasSetup: Bool = {
    // Our pool splits the work; OpenBLAS's own threads would oversubscribe the cores.
    openblas_set_num_threads(1)
    return true
}()

/// C[m, n] = A[m, k] · B[n, k]ᵀ (+ C when `accumulate`), fp32 row-major, through OpenBLAS.
/// lda/ldb/ldc are row strides in floats.
public func sgemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                    c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    _ = blasSetup
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
}

/// C[m, n] = A[m, k] · B[k, n] (+ C when `accumulate`), fp32 row-major, through OpenBLAS.
public func sgemmNN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                    c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
    _ = blasSetup
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
}

/// Y[t, rows] = X[t, cols] · Wᵀ for t tokens: a matvec for one token, a GEMM otherwise — q8_0/q4_0/q4_k
/// through the integer GEMM (`linearQuantized`: activations quantized to int8 blocks as in decode),
/// f32/f16/bf16 through the AVX-512 tiled kernel in place (see `floatGEMMKernelEnabled`), else
/// OpenBLAS sgemm (f32 in place, other formats widened tile by tile, never a full copy). Output
/// columns are split over `pool`.
public func linear(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ t: Int, _ y: UnsafeMutablePointer<Float>,
                   pool: ThreadPool?) {
    if t <= 0 { return }
    if t == 1 { matvec(w, x, y, pool: pool); return }
    if linearQuantized(w, x, t, y, pool: pool) { return }
    let direct = w.format == .f32 && Int(bitPattern: w.base) % 4 == 0
    var floatCode: Int32? = nil
    if floatGEMMKernelEnabled && CPUFeatures.avx512 {
        switch w.format {
        case .f32: floatCode = Int32(HYI_FLOAT_F32)
        case .f16: floatCode = Int32(HYI_FLOAT_F16)
        case .bf16: floatCode = Int32(HYI_FLOAT_BF16)
        default: break
        }
    }
    // Below ~1 MFLOP the wake-up of another thread costs more than it saves.
    let parts = t * w.rows * w.cols < 1 << 19 ? 1 : max(1, min(pool?.threadCount ?? 1, w.rows / 32))
    let body: (Int) -> Void = { p in
        // Part boundaries on multiples of 4 rows (the kernel's tile height).
        func boundary(_ q: Int) -> Int { q == parts ? w.rows : min(w.rows, (w.rows * q / parts + 3) & ~3) }
        let lo = boundary(p), hi = boundary(p + 1)
        if lo >= hi { return }
        if let floatCode,
           hyi_gemm_float(floatCode, w.base, w.rowBytes, Int64(lo), Int64(hi), x, Int64(w.cols), Int64(t), Int64(w.cols),
                          y, Int64(w.rows)) {
            return
        }
        if direct {
            sgemmNT(m: t, n: hi - lo, k: w.cols, a: x, lda: w.cols,
                    b: w.base.assumingMemoryBound(to: Float.self) + lo * w.cols, ldb: w.cols,
                    c: y + lo, ldc: w.rows)
            return
        }
        let tileRows = max(1, min(hi - lo, 65_536 / max(w.cols, 1)))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * w.cols)
        defer { tile.deallocate() }
        var r = lo
        while r < hi {
            let nr = min(tileRows, hi - r)
            for i in 0..<nr { w.copyRow(r + i, into: tile + i * w.cols) }
            sgemmNT(m: t, n: nr, k: w.cols, a: x, lda: w.cols, b: tile, ldb: w.cols, c: y + r, ldc: w.rows)
            r += nr
        }
    }
    if parts > 1, let pool { pool.parallelFor(parts, body) } else { body(0) }
}

// MARK: - Elementwise

/// out[i] = x[i] / sqrt(mean(x²) + eps) · (weight?[i] ?? 1), over n elements (fp32). out may equal x.
@inlinable
public func rmsnorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ n: Int, eps: Float,
                    _ out: UnsafeMutablePointer<Float>) {
    var ss: Float = 0
    for i in 0..<n { ss += x[i] * x[i] }
    let r = 1 / (ss / Float(n) + eps).squareRoot()
    if let weight {
        for i in 0..<n { out[i] = weight[i] * (x[i] * r) }
    } else {
        for i in 0..<n { out[i] = x[i] * r }
    }
}

/// Rotary position embedding, NeoX "rotate half" layout over the whole head: for i < d/2,
/// (x[i], x[i+d/2]) ← (x[i]·cos − x[i+d/2]·sin, x[i+d/2]·cos + x[i]·sin) with cos/sin of
/// position · invFreq[i]. `cosSin` holds d/2 cos then d/2 sin for this position.
@inlinable
public func ropeNeoX(_ x: UnsafeMutablePointer<Float>, headDim d: Int, cosSin: UnsafePointer<Float>) {
    let h = d / 2
    for i in 0..<h {
        let c = cosSin[i], s = cosSin[h + i]
        let a = x[i], b = x[i + h]
        x[i] = a * c - b * s
        x[i + h] = b * c + a * s
    }
}

/// Fills cosSin[d] (d/2 cos, d/2 sin) for `position` given invFreq[d/2], as fp32 angles.
@inlinable
public func ropeTable(position: Int, invFreq: UnsafePointer<Float>, headDim d: Int, _ cosSin: UnsafeMutablePointer<Float>) {
    let h = d / 2
    for i in 0..<h {
        let angle = Float(position) * invFreq[i]
        cosSin[i] = cos(angle)
        cosSin[h + i] = sin(angle)
    }
}

@inlinable @inline(__always)
public func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

/// gate[i] ← silu(gate[i]) · up[i] over n elements (the SwiGLU activation).
@inlinable
public func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { gate[i] = silu(gate[i]) * up[i] }
}

/// In-place numerically stable softmax over n elements.
@inlinable
public func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    if n <= 0 { return }
    var m = -Float.infinity
    for i in 0..<n { m = max(m, x[i]) }
    var s: Float = 0
    for i in 0..<n { x[i] = exp(x[i] - m); s += x[i] }
    let inv = 1 / s
    for i in 0..<n { x[i] *= inv }
}

// MARK: - Attention

/// Storage of cached keys/values: fp32, f16, or q8_0 blocks (32 values + an f16 scale).
public enum KVElementType: String, Sendable, CaseIterable {
    case f32, f16, q8_0
    /// Bytes of a row of n values (n a multiple of 32 for q8_0).
    public func rowBytes(_ n: Int) -> Int {
        switch self {
        case .f32: return 4 * n
        case .f16: return 2 * n
        case .q8_0: return n / 32 * 34
        }
    }
}

/// Blocked causal attention with running max/sum (never a full T×T score matrix).
/// q: [t, nHeads, headDim] fp32 (row stride qStride floats); keys/values: [positions, nKV, headDim]
/// stored as `kvType` with a row stride of kvStride values (q8_0: headDim a multiple of 32); query i
/// sits at position pos0 + i and reads positions 0...pos0+i; query head h reads kv head
/// h / (nHeads / nKV). out: [t, nHeads, headDim] fp32 (row stride outStride).
/// Work over (token, head) pairs is split across `pool`; no heap allocation.
public func causalAttention(q: UnsafePointer<Float>, qStride: Int, t: Int, pos0: Int, nHeads: Int, nKV: Int,
                            headDim: Int, kvType: KVElementType = .f32, keys: UnsafeRawPointer,
                            values: UnsafeRawPointer, kvStride: Int, scale: Float,
                            out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool?) {
    switch kvType {
    case .f32:
        causalAttention(F32Loader.self, q: q, qStride: qStride, t: t, pos0: pos0, nHeads: nHeads, nKV: nKV,
                        headDim: headDim, keys: keys, values: values, kvStride: kvStride, scale: scale, out: out,
                        outStride: outStride, pool: pool)
    case .f16:
        causalAttention(F16Loader.self, q: q, qStride: qStride, t: t, pos0: pos0, nHeads: nHeads, nKV: nKV,
                        headDim: headDim, keys: keys, values: values, kvStride: kvStride, scale: scale, out: out,
                        outStride: outStride, pool: pool)
    case .q8_0:
        causalAttention(Q8_0Loader.self, q: q, qStride: qStride, t: t, pos0: pos0, nHeads: nHeads, nKV: nKV,
                        headDim: headDim, keys: keys, values: values, kvStride: kvStride, scale: scale, out: out,
                        outStride: outStride, pool: pool)
    }
}

/// The kernel, specialized per storage type inside this module (the public entry point above is
/// concrete, so callers in other modules never reach an unspecialized generic).
func causalAttention<L: WeightLoader>(_: L.Type, q: UnsafePointer<Float>, qStride: Int, t: Int, pos0: Int,
                                      nHeads: Int, nKV: Int, headDim: Int, keys: UnsafeRawPointer,
                                      values: UnsafeRawPointer, kvStride: Int, scale: Float,
                                      out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool?) {
    let group = max(1, nHeads / max(nKV, 1))
    let block = 64
    let body: (Int) -> Void = { task in
        let i = task / nHeads, h = task % nHeads
        let qh = q + i * qStride + h * headDim
        let o = out + i * outStride + h * headDim
        let kvh = (h / group) * headDim
        let n = pos0 + i + 1
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { sc in
            let s = sc.baseAddress!
            var runMax = -Float.infinity, runSum: Float = 0
            for d in 0..<headDim { o[d] = 0 }
            var j0 = 0
            while j0 < n {
                let nb = min(block, n - j0)
                var bmax = -Float.infinity
                for j in 0..<nb {
                    let v = dotRow(L.self, keys + L.byteOffset((j0 + j) * kvStride + kvh), qh, headDim) * scale
                    s[j] = v
                    bmax = max(bmax, v)
                }
                let newMax = max(runMax, bmax)
                let corr = exp(runMax - newMax)
                if corr != 1 {
                    runSum *= corr
                    for d in 0..<headDim { o[d] *= corr }
                }
                for j in 0..<nb {
                    let p = exp(s[j] - newMax)
                    runSum += p
                    let vr = values + L.byteOffset((j0 + j) * kvStride + kvh)
                    var d = 0
                    while d + 8 <= headDim {
                        let acc = UnsafeMutableRawPointer(o + d).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(o + d).storeBytes(of: acc + p * L.load8(vr, d), as: SIMD8<Float>.self)
                        d += 8
                    }
                    while d < headDim { o[d] += p * L.load1(vr, d); d += 1 }
                }
                runMax = newMax
                j0 += nb
            }
            let inv = 1 / runSum
            for d in 0..<headDim { o[d] *= inv }
        }
    }
    let tasks = t * nHeads
    // Work ≈ tasks × keys × headDim × 2 multiply-adds; small problems run inline.
    let work = tasks * (pos0 + t) * headDim
    if let pool, pool.threadCount > 1, tasks > 1, work >= 1 << 17 {
        pool.parallelFor(tasks, body)
    } else {
        for k in 0..<tasks { body(k) }
    }
}

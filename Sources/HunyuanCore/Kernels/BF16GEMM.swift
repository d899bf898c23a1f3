import CKernels

// bf16 products: weights held as bf16, activations rounded to bf16 per product, fp32 accumulation
// (AVX512_BF16 dot products, about twice the fp32 FMA rate). Linear layers here; convolutions in
// HunyuanNN's Conv2d over the same kernel (`hyi_gemm_bf16`).

/// How a model's large matrix products (linear layers and convolutions) are computed.
/// - fp32: weights widened to fp32 in registers, fp32 activations: the reference numerics.
/// - bf16: weights converted to bf16 at load and activations rounded to bf16 (nearest even) at each
///   product, sums in fp32 — relative error per product about 2⁻⁹, as a GPU's bf16 autocast. Takes
///   effect where the CPU has AVX512_BF16 (`isAvailable`); elsewhere products stay fp32.
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    case fp32, bf16

    /// Whether this precision runs as itself on this CPU (`.bf16` needs AVX512_BF16).
    public var isAvailable: Bool { self == .fp32 || CPUFeatures.avx512bf16 }
}

/// A weight matrix [rows, taps·seg] as bf16 (nearest even) for `ComputePrecision.bf16`. A
/// convolution's [out, in, kh, kw] (taps = kh·kw, seg = in) is reordered to [out, kh, kw, in] so each
/// tap's input channels are contiguous; a linear layer is one tap. Owns its memory; immutable after
/// init, shareable across threads.
public final class BF16Weights: @unchecked Sendable {
    public let rows: Int, taps: Int, seg: Int
    public let p: UnsafeMutablePointer<UInt16>

    /// Converts `w` (any stored format) row by row; `taps` must divide its columns.
    public init(_ w: WeightMatrix, taps: Int) {
        rows = w.rows
        self.taps = max(1, taps)
        seg = w.cols / self.taps
        precondition(seg * self.taps == w.cols, "BF16Weights: \(taps) taps do not divide \(w.cols) columns")
        p = .allocate(capacity: max(1, rows * w.cols))
        let cols = w.cols
        let row = UnsafeMutablePointer<Float>.allocate(capacity: max(1, cols))
        let tapMajor = UnsafeMutablePointer<Float>.allocate(capacity: max(1, cols))
        defer { row.deallocate(); tapMajor.deallocate() }
        for r in 0..<rows {
            w.copyRow(r, into: row)
            var src = UnsafePointer(row)
            if self.taps > 1 {
                for c in 0..<seg { for t in 0..<self.taps { tapMajor[t * seg + c] = row[c * self.taps + t] } }
                src = UnsafePointer(tapMajor)
            }
            hyi_to_bf16(src, p + r * cols, Int64(cols))
        }
    }

    deinit { p.deallocate() }

    public var cols: Int { taps * seg }
}

/// Activations rounded to bf16, 64-byte aligned; owns its memory.
public final class BF16Buffer: @unchecked Sendable {
    public let count: Int
    public let p: UnsafeMutablePointer<UInt16>
    /// n values, zero-filled when `zeroed`.
    public init(_ n: Int, zeroed: Bool = false) {
        count = n
        p = UnsafeMutableRawPointer.allocate(byteCount: 2 * max(n, 1), alignment: 64)
            .bindMemory(to: UInt16.self, capacity: max(n, 1))
        if zeroed { p.initialize(repeating: 0, count: max(n, 1)) }
    }
    deinit { p.deallocate() }
}

/// Rounds n floats to bf16 (nearest even; NaN stays NaN).
public func roundToBF16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count n: Int) {
    if n > 0 { hyi_to_bf16(x, y, Int64(n)) }
}

/// The implicit GEMM over bf16 weights [rows, taps·seg] and bf16 activations `b`:
/// out[i·outRowStride + j·outColStride] = bias[i] + Σ_t Σ_(e<seg) W[i, t·seg + e] · b[col(j) + tapOffsets[t] + e]
/// for columns j < n, col(j) = (j / columnsPerRow)·rowStep + (j % columnsPerRow)·colStep (elements).
/// Columns (or, when there are few, weight rows) are split over `pool`. Returns false (nothing
/// written) without AVX512_BF16.
public func bf16GEMM(_ d: BF16Weights, _ b: UnsafePointer<UInt16>, columns n: Int, columnsPerRow: Int, rowStep: Int,
                     colStep: Int, tapOffsets: [Int], out: UnsafeMutablePointer<Float>, outRowStride: Int,
                     outColStride: Int, bias: UnsafePointer<Float>?, pool: ThreadPool?) -> Bool {
    guard CPUFeatures.avx512bf16, tapOffsets.count == d.taps else { return false }
    if n <= 0 || d.rows <= 0 { return true }
    let threads = max(1, pool?.threadCount ?? 1), rows = d.rows
    let offsets = tapOffsets.map { Int64($0) }
    offsets.withUnsafeBufferPointer { offs in
        let g = hyi_bf16_gemm(a: UnsafePointer(d.p), lda: Int64(d.cols), b: b, b_wo: Int64(max(1, columnsPerRow)),
                              b_row: Int64(rowStep), b_col: Int64(colStep), taps: Int64(d.taps), tap_off: offs.baseAddress!,
                              seg: Int64(d.seg), c: out, c_m: Int64(outRowStride), c_n: Int64(outColStride), bias: bias)
        // Below ~1 MFLOP the wake-up of another thread costs more than it saves.
        let byColumns = n >= 24 * threads
        let parts = n * rows * d.cols < 1 << 19 ? 1 : (byColumns ? threads : max(1, min(threads, rows / 16)))
        withUnsafePointer(to: g) { gp in
            let body: (Int) -> Void = { p in
                if byColumns {
                    _ = hyi_gemm_bf16(gp, 0, Int64(rows), Int64(n * p / parts), Int64(n * (p + 1) / parts))
                } else {
                    func edge(_ q: Int) -> Int { q == parts ? rows : min(rows, (rows * q / parts + 3) & ~3) }
                    _ = hyi_gemm_bf16(gp, Int64(edge(p)), Int64(edge(p + 1)), 0, Int64(n))
                }
            }
            if parts > 1, let pool { pool.parallelFor(parts, body) } else { body(0) }
        }
    }
    return true
}

/// y[t, rows] (row stride ldy, default rows) = x[t, cols] · Wᵀ + bias through `w.bf16`, x rounded to
/// bf16 first. Returns false (nothing written) when `w` has no one-tap bf16 form or the CPU lacks
/// AVX512_BF16. Split over `pool`.
public func linearBF16(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ t: Int, _ y: UnsafeMutablePointer<Float>,
                       ldy: Int? = nil, bias: UnsafePointer<Float>?, pool: ThreadPool?) -> Bool {
    guard let d = w.bf16, CPUFeatures.avx512bf16, d.taps == 1 else { return false }
    if t <= 0 { return true }
    let k = d.cols, threads = max(1, pool?.threadCount ?? 1)
    let xb = BF16Buffer(t * k)
    let convertParts = t * k < 1 << 16 ? 1 : threads
    let convert: (Int) -> Void = { p in
        let lo = t * p / convertParts, hi = t * (p + 1) / convertParts
        if hi > lo { hyi_to_bf16(x + lo * k, xb.p + lo * k, Int64((hi - lo) * k)) }
    }
    if convertParts > 1, let pool { pool.parallelFor(convertParts, convert) } else { convert(0) }
    return bf16GEMM(d, xb.p, columns: t, columnsPerRow: t, rowStep: 0, colStep: k, tapOffsets: [0], out: y,
                    outRowStride: 1, outColStride: ldy ?? w.rows, bias: bias, pool: pool)
}

/// C[m, n] = (C +, when `accumulate`) A[m, 2·pairs] · B, bf16 A (row stride lda, the reduction axis
/// contiguous) and B packed in pairs of the reduction axis: packed[q·ldp + 2·j + e] = B[2q + e, j];
/// fp32 C (row stride ldc); n a multiple of 16. Inline (no threads). Returns false (nothing done)
/// without AVX512_BF16 or for another n.
@discardableResult
public func bf16PackedGEMM(_ a: UnsafePointer<UInt16>, lda: Int, _ packed: UnsafePointer<UInt16>, ldp: Int, pairs: Int,
                           m: Int, n: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) -> Bool {
    hyi_gemm_bf16_packed(a, Int64(lda), packed, Int64(ldp), Int64(pairs), Int64(m), Int64(n), c, Int64(ldc), accumulate)
}

/// p[i] = bf16(exp((x[i] − shift)·scale)) for i < n and 0 for n ≤ i < nPad (a multiple of 16);
/// returns the fp32 sum of the exponentials — the online-softmax step of bf16 attention.
@inlinable
public func expShiftedBF16(_ x: UnsafePointer<Float>, _ n: Int, padTo nPad: Int, shift: Float, scale: Float,
                           _ p: UnsafeMutablePointer<UInt16>) -> Float {
    hyi_exp_shift_bf16(x, Int64(n), Int64(nPad), shift, scale, p)
}

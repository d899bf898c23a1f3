import COpenBLAS
import CKernels

// GEMM-shaped work (prefill, encoders, training): one fp32 `gemm` through OpenBLAS and `linear`, which
// multiplies activations by a stored weight matrix in its own format (integer GEMM for block formats,
// the AVX-512 float kernel read in place, else sgemm over widened tiles).

private let blasSetup: Bool = {
    // Our pool splits the work; OpenBLAS's own threads would oversubscribe the cores.
    openblas_set_num_threads(1)
    return true
}()

/// C[m, n] = α·op(A)·op(B) + β·C, fp32 row-major through OpenBLAS, op = transpose when the flag is
/// set: A is [m, k] (or [k, m] when transA), B is [k, n] (or [n, k] when transB); lda/ldb/ldc are row
/// strides in floats. β = 0 overwrites C (never reads it); k = 0 scales C by β. Rows of C are split
/// over `pool` when the product is large enough to pay for the wake-up (pass nil inside tasks that
/// already run on the pool).
public func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool? = nil) {
    _ = blasSetup
    if m <= 0 || n <= 0 { return }
    if k <= 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    let threads = pool?.threadCount ?? 1
    let parts = m * n * k < 1 << 18 ? 1 : max(1, min(threads, m / 8))
    let body: (Int) -> Void = { p in
        let lo = m * p / parts, hi = m * (p + 1) / parts
        if lo >= hi { return }
        let aSub = transA ? a + lo : a + lo * lda
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(hi - lo), Int32(n), Int32(k), alpha, aSub, Int32(lda), b, Int32(ldb), beta,
                    c + lo * ldc, Int32(ldc))
    }
    if parts > 1, let pool { pool.parallelFor(parts, body) } else { body(0) }
}

/// Y[i·ldy + r] = Σ_k x[i·ldx + k] · W[r, k] for rows i < t and r < n, W's rows stored as L (f32, f16,
/// bf16, or q8_0 with k % 32 == 0) `rowBytes` apart, read in place by the AVX-512 kernel. Returns false
/// (nothing done) where that kernel or format is not available. One thread; disjoint outputs are safe.
@inlinable
public func gemmStoredRows<L: WeightLoader>(_: L.Type, _ w: UnsafeRawPointer, rowBytes: Int, n: Int,
                                            x: UnsafePointer<Float>, ldx: Int, t: Int, k: Int,
                                            y: UnsafeMutablePointer<Float>, ldy: Int) -> Bool {
    guard CPUFeatures.avx512, let code = L.storedRowsKernelCode else { return false }
    return hyi_gemm_float(code, w, rowBytes, 0, Int64(n), x, Int64(ldx), Int64(t), Int64(k), y, Int64(ldy))
}

/// acc[i·ldAcc + d] += Σ_{j<n} p[i·ldp + j] · V[j, d] for i < m, d < cols: probabilities times value rows
/// stored as L (as `gemmStoredRows`) `rowBytes` apart, read in place. False where unavailable.
@inlinable
public func accumulateStoredRows<L: WeightLoader>(_: L.Type, _ v: UnsafeRawPointer, rowBytes: Int, p: UnsafePointer<Float>,
                                                  ldp: Int, m: Int, n: Int, cols: Int,
                                                  acc: UnsafeMutablePointer<Float>, ldAcc: Int) -> Bool {
    guard CPUFeatures.avx512, let code = L.storedRowsKernelCode else { return false }
    return hyi_attn_pv(code, v, rowBytes, p, Int64(ldp), Int64(m), Int64(n), Int64(cols), acc, Int64(ldAcc))
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
            gemm(transB: true, m: t, n: hi - lo, k: w.cols, a: x, lda: w.cols,
                 b: w.base.assumingMemoryBound(to: Float.self) + lo * w.cols, ldb: w.cols, c: y + lo, ldc: w.rows)
            return
        }
        let tileRows = max(1, min(hi - lo, 65_536 / max(w.cols, 1)))
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * w.cols)
        defer { tile.deallocate() }
        var r = lo
        while r < hi {
            let nr = min(tileRows, hi - r)
            for i in 0..<nr { w.copyRow(r + i, into: tile + i * w.cols) }
            gemm(transB: true, m: t, n: nr, k: w.cols, a: x, lda: w.cols, b: tile, ldb: w.cols, c: y + r, ldc: w.rows)
            r += nr
        }
    }
    if parts > 1, let pool { pool.parallelFor(parts, body) } else { body(0) }
}


import CKernels

// Prefill (t > 1 tokens) over block-quantized weights with integer GEMMs: the activations are
// quantized once per call to int8 blocks of 32 (as the decode matvec does), and
// Sources/CKernels/quant_gemm.c multiplies them with the stored q8_0/q4_0/q4_k blocks directly
// (16-row weight panels repacked on the fly, VPDPBUSD / VPMADDUBSW register tiles), instead of
// widening weight tiles to f32 for sgemm. Results equal the f32 product of the dequantized weights and
// the dequantized int8 activations up to fp32 summation order.

/// Y[t, rows] = X[t, cols] · Wᵀ for a block-quantized W (q8_0, q4_0, q4_k) through the integer GEMM.
/// - x: t rows of `cols` floats (row-major, contiguous); y: t rows of `rows` floats (row-major,
///   contiguous), fully overwritten.
/// - Returns false, touching nothing, when W's format is not handled here (f32/f16/bf16/fp8): the
///   caller falls back to its own path.
/// - Threads: X is quantized once on the calling thread into its per-thread scratch (no allocation
///   once the scratch has grown to the largest t·cols seen); weight rows are split over `pool` in
///   multiples of the 16-row panel; each part uses ~48 KB of its thread's stack for the repacked
///   panel. The kernel path follows `quantKernelPathOverride` like matvec.
/// - Accuracy: that of the decode matvec (int8 activations, ~0.2-0.6 % relative vs f32 activations on
///   random data); vs the dequantized int8 activations only fp32 rounding (QuantGEMMTests).
@discardableResult
public func linearQuantized(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ t: Int,
                            _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) -> Bool {
    guard w.format.isBlockQuantized else { return false }
    if t <= 0 || w.rows == 0 { return true }
    let nb = (w.cols + 31) / 32
    if nb == 0 {
        y.initialize(repeating: 0, count: t * w.rows)
        return true
    }
    // Scratch: codes [t, nb·32] (64-byte aligned), scales [t, nb], sums [t, nb].
    let qBytes = t * nb * 32, dBytes = t * nb * 4
    let raw = ThreadScratch.bytes(qBytes + 2 * dBytes)
    let q = raw.bindMemory(to: Int8.self, capacity: qBytes)
    let d = (raw + qBytes).bindMemory(to: Float.self, capacity: t * nb)
    let s = (raw + qBytes + dBytes).bindMemory(to: Int32.self, capacity: t * nb)
    hyi_quantize_rows_q8(x, Int64(t), Int64(w.cols), Int64(w.cols), q, d, s)

    let path = resolvedQuantPath, fmt = w.format.kernelCode
    let panel = 16
    let panels = (w.rows + panel - 1) / panel
    // Below ~1M multiply-adds a second thread's wake-up costs more than it saves. Above, a few parts
    // per thread so a thread slowed by other load does not hold up the call.
    let threads = pool?.threadCount ?? 1
    let parts = t * w.rows * w.cols < 1 << 20 || threads <= 1 ? 1 : min(panels, 4 * threads)
    let body: (Int) -> Void = { p in
        let lo = min(w.rows, panel * (panels * p / parts)), hi = min(w.rows, panel * (panels * (p + 1) / parts))
        if lo >= hi { return }
        hyi_gemm_q(fmt, path, w.base, w.rowBytes, Int64(lo), Int64(hi), q, d, s, Int64(nb), Int64(t), y,
                   Int64(w.rows))
    }
    if parts > 1, let pool { pool.parallelFor(parts, body) } else { body(0) }
    return true
}

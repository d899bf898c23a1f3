#if canImport(Glibc)
import Glibc
#endif

// Embeddings: token lookup (with its backward) and the sinusoidal timestep / position embedding of
// diffusion models.

/// x[r] = E[ids[r]] for each id (E: [vocab, dim] fp32).
public func embeddingForward(_ e: UnsafePointer<Float>, ids: [Int32], dim: Int, _ x: UnsafeMutablePointer<Float>) {
    for (r, id) in ids.enumerated() { (x + r * dim).update(from: e + Int(id) * dim, count: dim) }
}

/// dE[ids[r]] += dx[r].
public func embeddingBackward(ids: [Int32], dim: Int, _ dx: UnsafePointer<Float>, dE: UnsafeMutablePointer<Float>) {
    for (r, id) in ids.enumerated() {
        let d = dE + Int(id) * dim, s = dx + r * dim
        for i in 0..<dim { d[i] += s[i] }
    }
}

/// Sinusoidal embedding of scalar positions / timesteps, as diffusers' `get_timestep_embedding`:
/// half = dim/2, exponent_i = −ln(maxPeriod)·i/(half − downscaleFreqShift), emb = scale·t·e^exponent,
/// out[n, dim] = [sin(emb) | cos(emb)] ([cos | sin] when flipSinToCos), zero-padded when dim is odd.
/// fp32 throughout, like the reference.
public func timestepEmbedding(_ timesteps: [Float], dim: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
                              scale: Float = 1, maxPeriod: Float = 10000, _ out: UnsafeMutablePointer<Float>) {
    let half = dim / 2
    let freqs: [Float] = (0..<half).map { i in
        exp(-logf(maxPeriod) * Float(i) / (Float(half) - downscaleFreqShift))
    }
    for (n, t) in timesteps.enumerated() {
        let o = out + n * dim
        for i in 0..<half {
            let e = scale * (t * freqs[i])
            let s = sinf(e), c = cosf(e)
            if flipSinToCos { o[i] = c; o[half + i] = s } else { o[i] = s; o[half + i] = c }
        }
        if dim % 2 == 1 { o[dim - 1] = 0 }
    }
}

/// Fixed 2-D sin-cos position embedding of a gridH × gridW patch grid, tokens row-major:
/// out[gridH·gridW, dim] as diffusers' `get_2d_sincos_pos_embed(dim, (gridH, gridW), base_size,
/// interpolation_scale)` (MAE / DiT): coordinates h = i / (gridH / baseSize) / scale and
/// w = j / (gridW / baseSize) / scale; the first dim/2 values embed w, the last dim/2 embed h
/// (diffusers' meshgrid(w, h) order), each as [sin(pos·ω) | cos(pos·ω)] with ω_k = 10000^(−k/(dim/4)),
/// computed in float64 like the reference's numpy code. dim must be a multiple of 4.
public func sincosPositionEmbedding2D(gridH: Int, gridW: Int, dim: Int, baseSize: Double = 16,
                                      interpolationScale: Double = 1) -> [Float] {
    let quarter = dim / 4
    let omega = (0..<quarter).map { 1 / pow(10000, Double($0) / Double(quarter)) }
    var out = [Float](repeating: 0, count: gridH * gridW * dim)
    for i in 0..<gridH {
        for j in 0..<gridW {
            // The reference's grids are float32 aranges divided in float32.
            let h = Double(Float(i) / (Float(gridH) / Float(baseSize)) / Float(interpolationScale))
            let w = Double(Float(j) / (Float(gridW) / Float(baseSize)) / Float(interpolationScale))
            let o = (i * gridW + j) * dim
            for k in 0..<quarter {
                out[o + k] = Float(sin(w * omega[k]))
                out[o + quarter + k] = Float(cos(w * omega[k]))
                out[o + 2 * quarter + k] = Float(sin(h * omega[k]))
                out[o + 3 * quarter + k] = Float(cos(h * omega[k]))
            }
        }
    }
    return out
}

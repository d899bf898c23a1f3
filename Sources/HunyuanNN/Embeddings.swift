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

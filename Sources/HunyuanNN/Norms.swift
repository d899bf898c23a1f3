// Normalizations over fp32 rows: RMSNorm (with its backward for the trainer), LayerNorm, the
// AdaNorm modulation of DiT-style blocks, and GroupNorm over channel-major images. out may equal x.

// MARK: - RMSNorm

/// One row of RMSNorm: out = x · r · (weight ?? 1) with r = 1/√(mean(x²) + eps); returns r.
@inlinable @inline(__always)
func rmsnormRow(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ n: Int, _ eps: Float,
                _ out: UnsafeMutablePointer<Float>) -> Float {
    var ss: Float = 0
    for i in 0..<n { ss += x[i] * x[i] }
    let r = 1 / (ss / Float(n) + eps).squareRoot()
    if let weight {
        for i in 0..<n { out[i] = weight[i] * (x[i] * r) }
    } else {
        for i in 0..<n { out[i] = x[i] * r }
    }
    return r
}

/// out[i] = x[i] / sqrt(mean(x²) + eps) · (weight?[i] ?? 1), over n elements (fp32). out may equal x.
@inlinable
public func rmsnorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ n: Int, eps: Float,
                    _ out: UnsafeMutablePointer<Float>) {
    _ = rmsnormRow(x, weight, n, eps, out)
}

/// RMSNorm over `rows` rows of `dim` (T5's LayerNorm: no mean subtraction, no bias): out = x ·
/// 1/√(mean(x²) + eps) · (weight ?? 1), fp32. Rows split over `pool`; out may equal x.
public func rmsnorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, rows: Int, dim: Int, eps: Float,
                    _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    if dim <= 0 { return }
    parallelRows(pool, rows) { rr in
        for r in rr { _ = rmsnormRow(x + r * dim, weight, dim, eps, out + r * dim) }
    }
}

/// RMSNorm over `rows` rows of `dim`, saving r = 1/√(mean(x²)+eps) per row in `rinv` for the backward.
public func rmsnorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, rows: Int, dim: Int, eps: Float,
                    _ out: UnsafeMutablePointer<Float>, rinv: UnsafeMutablePointer<Float>) {
    for r in 0..<rows { rinv[r] = rmsnormRow(x + r * dim, weight, dim, eps, out + r * dim) }
}

/// Backward of RMSNorm over rows: with x̂ = x·r and g = dy ⊙ w, dx = r·(g − x̂·mean(g ⊙ x̂)) (= or +=),
/// dw += Σ_rows dy ⊙ x̂. `dx` may equal `dy` only when not accumulating.
public func rmsnormBackward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, rinv: UnsafePointer<Float>,
                            _ dy: UnsafePointer<Float>, rows: Int, dim: Int, dx: UnsafeMutablePointer<Float>,
                            accumulate: Bool, dw: UnsafeMutablePointer<Float>?) {
    for r in 0..<rows {
        let xr = x + r * dim, g = dy + r * dim, o = dx + r * dim
        let inv = rinv[r]
        var dot: Float = 0
        for i in 0..<dim {
            let xh = xr[i] * inv
            let gi = w.map { $0[i] * g[i] } ?? g[i]
            dot += gi * xh
            if let dw { dw[i] += g[i] * xh }
        }
        let mean = dot / Float(dim)
        for i in 0..<dim {
            let xh = xr[i] * inv
            let gi = w.map { $0[i] * g[i] } ?? g[i]
            let v = inv * (gi - xh * mean)
            o[i] = accumulate ? o[i] + v : v
        }
    }
}

// MARK: - LayerNorm

/// LayerNorm over rows of `dim`: out = (x − mean) / sqrt(var + eps) · (weight ?? 1) + (bias ?? 0),
/// biased variance, fp32 (two-pass mean then variance, like PyTorch). Rows split over `pool`.
public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
                      weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                      _ out: UnsafeMutablePointer<Float>, pool: ThreadPool? = nil) {
    if dim <= 0 { return }
    parallelRows(pool, rows) { rr in
        for r in rr {
            let xr = x + r * dim, o = out + r * dim
            var mean: Float = 0
            for i in 0..<dim { mean += xr[i] }
            mean /= Float(dim)
            var v: Float = 0
            for i in 0..<dim { let d = xr[i] - mean; v += d * d }
            v /= Float(dim)
            let inv = 1 / (v + eps).squareRoot()
            switch (weight, bias) {
            case let (w?, b?): for i in 0..<dim { o[i] = (xr[i] - mean) * inv * w[i] + b[i] }
            case let (w?, nil): for i in 0..<dim { o[i] = (xr[i] - mean) * inv * w[i] }
            case let (nil, b?): for i in 0..<dim { o[i] = (xr[i] - mean) * inv + b[i] }
            case (nil, nil): for i in 0..<dim { o[i] = (xr[i] - mean) * inv }
            }
        }
    }
}

/// A LayerNorm's parameters (weight and bias of [dim], either may be absent) and epsilon.
public struct LayerNorm: Sendable {
    public let dim: Int
    public let eps: Float
    public let weight: [Float]?
    public let bias: [Float]?

    public init(dim: Int, eps: Float, weight: [Float]?, bias: [Float]?) {
        self.dim = dim; self.eps = eps; self.weight = weight; self.bias = bias
    }

    /// out[rows, dim] = LayerNorm(x[rows, dim]); out may equal x.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        func run(_ w: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?) {
            layerNorm(x, rows: rows, dim: dim, eps: eps, weight: w, bias: b, out, pool: pool)
        }
        switch (weight, bias) {
        case let (w?, b?): w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { run(wp.baseAddress, $0.baseAddress) } }
        case let (w?, nil): w.withUnsafeBufferPointer { run($0.baseAddress, nil) }
        case let (nil, b?): b.withUnsafeBufferPointer { run(nil, $0.baseAddress) }
        case (nil, nil): run(nil, nil)
        }
    }
}

// MARK: - AdaNorm

/// The modulation of an adaptive norm (DiT / DINOv2-with-camera AdaNorm): for each of `groups`
/// groups of `rows` rows, x[r, j] ← x[r, j] · (1 + scale[g, j]) + shift[g, j], with shiftScale[g] =
/// [shift | scale] (2·dim values, as `Linear(SiLU(cond))` produces them). Apply after a LayerNorm
/// without affine parameters. Rows split over `pool`.
public func adaNormModulate(_ x: UnsafeMutablePointer<Float>, shiftScale: UnsafePointer<Float>, groups: Int,
                            rowsPerGroup t: Int, dim d: Int, pool: ThreadPool?) {
    parallelRows(pool, groups * t) { rows in
        for row in rows {
            let shift = shiftScale + (row / t) * 2 * d, scale = shift + d, o = x + row * d
            for j in 0..<d { o[j] = o[j] * (1 + scale[j]) + shift[j] }
        }
    }
}

// MARK: - GroupNorm

/// GroupNorm of one image x[C, HW] (channel-major): channels split into `groups` groups of C/groups
/// channels; each group normalized over its (C/groups)·HW values with biased variance (two-pass,
/// like PyTorch), then out[c, i] = x̂[c, i] · (weight?[c] ?? 1) + (bias?[c] ?? 0). C must be a
/// multiple of groups. Groups split over `pool`. out may equal x.
public func groupNorm(_ x: UnsafePointer<Float>, channels c: Int, spatial hw: Int, groups: Int, eps: Float,
                      weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                      _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    guard groups > 0, c % groups == 0, hw > 0 else { return }
    let cpg = c / groups, n = cpg * hw
    parallelRows(pool, groups, minChunk: 1) { gr in
        for g in gr {
            let base = g * n
            var mean: Double = 0
            for i in 0..<n { mean += Double(x[base + i]) }
            mean /= Double(n)
            var v: Double = 0
            for i in 0..<n { let d = Double(x[base + i]) - mean; v += d * d }
            v /= Double(n)
            let m = Float(mean), inv = Float(1 / (v + Double(eps)).squareRoot())
            for ch in (g * cpg)..<((g + 1) * cpg) {
                let w = weight?[ch] ?? 1, b = bias?[ch] ?? 0
                let xr = x + ch * hw, o = out + ch * hw
                for i in 0..<hw { o[i] = (xr[i] - m) * inv * w + b }
            }
        }
    }
}

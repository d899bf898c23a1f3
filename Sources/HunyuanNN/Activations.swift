#if canImport(Glibc)
import Glibc
#endif

// Activations and softmax over fp32 buffers, in place unless stated; eight lanes at a time where it
// pays (exp8, erf8). Backward functions sit beside their forwards.

@inlinable @inline(__always)
public func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

/// SiLU (x·sigmoid(x)) in place over n elements.
public func siluInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { x[i] = silu(x[i]) }
}

/// gate[i] ← silu(gate[i]) · up[i] over n elements (the SwiGLU activation, in place).
@inlinable
public func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { gate[i] = silu(gate[i]) * up[i] }
}

/// h = silu(g) ⊙ u over n elements, keeping g and u for the backward.
public func swiglu(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int, into h: UnsafeMutablePointer<Float>) {
    for i in 0..<n { h[i] = silu(g[i]) * u[i] }
}

/// Backward of `swiglu(_:_:_:into:)`: dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g), with
/// silu'(x) = σ(x)(1 + x(1 − σ(x))). dg/du may alias g/u.
public func swigluBackward(_ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ dh: UnsafePointer<Float>,
                           _ n: Int, dg: UnsafeMutablePointer<Float>, du: UnsafeMutablePointer<Float>) {
    for i in 0..<n {
        let x = g[i], s = 1 / (1 + exp(-x)), up = u[i], d = dh[i]
        dg[i] = d * up * s * (1 + x * (1 - s))
        du[i] = d * x * s
    }
}

/// Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), in place over n elements (torch `gelu`, approximate='none').
/// Eight lanes at a time through `erf8` (|Δerf| ≤ 2e-7, so |ΔGELU| ≤ 1e-7·|x|); the tail through erff.
public func geluErf(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    let r: Float = 0.70710678118654752440
    let raw = UnsafeMutableRawPointer(x)
    var i = 0
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        raw.storeBytes(of: 0.5 * v * (1 + erf8(v * r)), toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { let v = x[i]; x[i] = 0.5 * v * (1 + erff(v * r)); i += 1 }
}

/// GEGLU over `rows` rows of proj[rows, 2·width] = [a | gate]: out[r, j] = a[r, j] · gelu(gate[r, j])
/// (diffusers' GEGLU: `hidden, gate = proj(x).chunk(2)`, exact GELU). out: [rows, width], no overlap.
public func geglu(_ proj: UnsafePointer<Float>, rows: Int, width: Int, _ out: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let a = proj + r * 2 * width, gate = a + width, o = out + r * width
        o.update(from: gate, count: width)
        geluErf(o, width)
        for j in 0..<width { o[j] = a[j] * o[j] }
    }
}

/// erf for 8 lanes: Abramowitz & Stegun 7.1.26 (1 − poly(t)·e^(−x²), t = 1/(1 + p|x|), odd extension),
/// absolute error ≤ 1.5e-7 plus fp32 rounding.
@inlinable @inline(__always)
public func erf8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let ax = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * ax)
    var p = SIMD8<Float>(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    let y = 1 - p * t * exp8(-(ax * ax))
    return y.replacing(with: -y, where: x .< 0)
}

/// Tanh-approximated GELU, 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), in place (approximate='tanh').
public func geluTanh(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    let c: Float = 0.79788456080286535588
    for i in 0..<n { let v = x[i]; x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v))) }
}

/// exp for 8 lanes (Cephes-style range reduction + degree-6 polynomial, ≤ 2 ulp on [-87, 88];
/// inputs below -87.3 give ~1e-38, above 88.7 are clamped). Branch-free and written with plain lane
/// arithmetic (the 1.5·2²³ trick rounds to nearest) so it compiles to straight AVX2 code.
@inlinable @inline(__always)
public func exp8(_ xIn: SIMD8<Float>) -> SIMD8<Float> {
    var x0 = xIn.replacing(with: -87.3, where: xIn .< -87.3)
    x0.replace(with: 88.7, where: x0 .> 88.7)
    let magic = SIMD8<Float>(repeating: 12_582_912)          // 1.5 · 2^23
    let t = x0 * 1.44269504088896341 + magic
    let fx = t - magic                                       // round(x · log2 e)
    var x = x0 - fx * 0.693359375
    x = x + fx * 2.12194440e-4
    let z = x * x
    var y = SIMD8<Float>(repeating: 1.9875691500e-4)
    y = y * x + 1.3981999507e-3
    y = y * x + 8.3334519073e-3
    y = y * x + 4.1665795894e-2
    y = y * x + 1.6666665459e-1
    y = y * x + 5.0000001201e-1
    y = y * z + x + 1
    let n = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    return y * unsafeBitCast((n &+ 127) &<< 23, to: SIMD8<Float>.self)
}

/// x[i] ← exp((x[i] − shift) · scale) for n elements; returns their sum (fp32).
@inlinable
public func expShifted(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float, scale: Float = 1) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let raw = UnsafeMutableRawPointer(x)
    while i + 8 <= n {
        let v = exp8((raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - shift) * scale)
        raw.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
        acc += v
        i += 8
    }
    var s = acc.sum()
    while i < n { let v = expf((x[i] - shift) * scale); x[i] = v; s += v; i += 1 }
    return s
}

/// Largest of n > 0 elements (NaN-free input).
@inlinable
public func maxElement(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m8 = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    let raw = UnsafeRawPointer(x)
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        m8.replace(with: v, where: v .> m8)
        i += 8
    }
    var m = m8[0]
    for l in 1..<8 where m8[l] > m { m = m8[l] }
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    return m
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

/// Backward of softmax over n: dlogit = p ⊙ (dp − Σ p ⊙ dp) (=, or += when accumulating).
public func softmaxBackward(_ p: UnsafePointer<Float>, _ dp: UnsafePointer<Float>, _ n: Int,
                            _ dlogit: UnsafeMutablePointer<Float>, accumulate: Bool) {
    var s: Float = 0
    for i in 0..<n { s += p[i] * dp[i] }
    for i in 0..<n { let v = p[i] * (dp[i] - s); dlogit[i] = accumulate ? dlogit[i] + v : v }
}

/// Runs `body` over 0..<rows split into contiguous ranges across `pool` (inline without a pool or
/// for few rows). For row-wise elementwise work (norms, activations, residual adds).
@inlinable
public func parallelRows(_ pool: ThreadPool?, _ rows: Int, minChunk: Int = 64, _ body: (Range<Int>) -> Void) {
    if let pool, pool.threadCount > 1, rows >= 2 * minChunk {
        pool.parallelRanges(rows, minChunk: minChunk, body)
    } else if rows > 0 {
        body(0..<rows)
    }
}

/// x[i] += y[i] over n elements, split over `pool` (residual connections).
public func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int, pool: ThreadPool?) {
    parallelRows(pool, n, minChunk: 1 << 14) { r in for i in r { x[i] += y[i] } }
}

/// x[r, j] += gamma[j] · y[r, j] over rows × dim (LayerScale residual), split over `pool`.
public func addScaled(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                      rows: Int, dim: Int, pool: ThreadPool?) {
    parallelRows(pool, rows) { rr in
        for r in rr {
            let xr = x + r * dim, yr = y + r * dim
            for j in 0..<dim { xr[j] += gamma[j] * yr[j] }
        }
    }
}

/// rows[t, n] += bias[n].
public func addBias(_ rows: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows t: Int, width n: Int,
                    pool: ThreadPool? = nil) {
    parallelRows(pool, t, minChunk: max(16, 65_536 / max(n, 1))) { rr in
        for r in rr {
            let yr = rows + r * n
            for j in 0..<n { yr[j] += bias[j] }
        }
    }
}

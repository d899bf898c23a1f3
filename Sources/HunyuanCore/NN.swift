#if canImport(Glibc)
import Glibc
#endif

// Neural-network layers shared by the vision / 3D engines: a dense layer (weights widened to fp32 once
// at load, GEMM through OpenBLAS via `linear` in Kernels.swift), LayerNorm, GELU (erf and tanh),
// SiLU over buffers, a vectorized exp, and blocked (flash-style) non-causal multi-head attention.
// Buffers are row-major fp32; functions are small and shape-explicit so a backward pass can pair
// with them. Nothing here allocates per element; attention allocates one scratch tile per task.

// MARK: - Dense layer

/// y = x · Wᵀ + b for a weight [out, in] and an optional bias [out]. The stored weight (f32, f16 or
/// bf16) is converted to fp32 once, at construction. Immutable; shareable across threads.
public struct DenseLayer: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: WeightMatrix
    public let bias: [Float]?

    /// `weight` must be [outFeatures, inFeatures]; `bias` (if given) [outFeatures]. Shape or dtype
    /// mismatches are `HYError.format` / `.unsupported` naming the tensor.
    public init(weight w: Tensor, bias b: Tensor?, inFeatures: Int, outFeatures: Int) throws {
        try w.expectShape([outFeatures, inFeatures])
        guard w.dtype == .f32 || w.dtype == .f16 || w.dtype == .bf16 else {
            throw HYError.unsupported("tensor \(w.name): dtype \(w.dtype.safetensorsName) (f32, f16 or bf16 expected)")
        }
        let f32 = Tensor(name: w.name, shape: w.shape, floats: w.floats())
        weight = try WeightMatrix(f32, rows: outFeatures, cols: inFeatures)
        if let b {
            try b.expectShape([outFeatures])
            bias = b.floats()
        } else {
            bias = nil
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// y[rows, out] = x[rows, in] · Wᵀ + b. x and y must not overlap. Splits over `pool`.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        if rows <= 0 { return }
        if rows == 1 {
            matvec(weight, x, y, pool: pool)
        } else {
            linear(weight, x, rows, y, pool: pool)
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                let n = outFeatures
                parallelRows(pool, rows, minChunk: max(16, 65_536 / max(n, 1))) { rr in
                    for r in rr {
                        let yr = y + r * n
                        for j in 0..<n { yr[j] += b[j] }
                    }
                }
            }
        }
    }
}

// MARK: - Norms and activations

/// LayerNorm over rows of `dim`: out = (x − mean) / sqrt(var + eps) · (weight ?? 1) + (bias ?? 0),
/// biased variance, fp32 (two-pass mean then variance, like PyTorch). out may equal x.
public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
                      weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                      _ out: UnsafeMutablePointer<Float>) {
    if dim <= 0 { return }
    for r in 0..<rows {
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

/// SiLU (x·sigmoid(x)) in place over n elements.
public func siluInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { x[i] = silu(x[i]) }
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

// MARK: - Attention

/// Blocked (flash-style) non-causal multi-head attention: for each head h,
/// out_h = softmax(scale · Q_h K_hᵀ) V_h, with Q_h = columns h·headDim ..< (h+1)·headDim of q (the
/// `(h d)` head split). q: [nq, ≥ heads·headDim] with row stride qStride floats; k, v: [nk, …] with
/// strides kStride / vStride; out: [nq, …] with stride outStride (must not overlap q, k, v).
/// Never materialises more than one score tile (blockQ × blockK) per task; GEMMs through OpenBLAS,
/// running max/sum in fp32; (head, query-block) tasks split over `pool`. `scale` must be > 0.
public func blockedAttention(q: UnsafePointer<Float>, qStride: Int, nq: Int,
                             k: UnsafePointer<Float>, kStride: Int, v: UnsafePointer<Float>, vStride: Int, nk: Int,
                             heads: Int, headDim: Int, scale: Float,
                             out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool?,
                             blockQ: Int = 256, blockK: Int = 1024) {
    if nq <= 0 || heads <= 0 || headDim <= 0 { return }
    let bq = max(1, blockQ), bk = max(1, blockK)
    let qBlocks = (nq + bq - 1) / bq
    let body: (Int) -> Void = { task in
        let h = task % heads, qb = task / heads
        let i0 = qb * bq, m = min(bq, nq - i0)
        let col = h * headDim
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: bq * bk + bq * headDim + 2 * bq)
        defer { scratch.deallocate() }
        let s = scratch, acc = scratch + bq * bk, rowMax = acc + bq * headDim, rowSum = rowMax + bq
        for r in 0..<m { rowMax[r] = -.infinity; rowSum[r] = 0 }
        for i in 0..<(m * headDim) { acc[i] = 0 }
        var j0 = 0
        while j0 < nk {
            let n = min(bk, nk - j0)
            // S[m, n] = Q_blk · K_blkᵀ; probabilities exp(scale · (S − running max)) (scale > 0)
            sgemmNT(m: m, n: n, k: headDim, a: q + i0 * qStride + col, lda: qStride,
                    b: k + j0 * kStride + col, ldb: kStride, c: s, ldc: n)
            for r in 0..<m {
                let sr = s + r * n
                let newMax = max(rowMax[r], maxElement(sr, n))
                let corr = rowMax[r] == -.infinity ? 0 : expf((rowMax[r] - newMax) * scale)
                let sum = expShifted(sr, n, shift: newMax, scale: scale)
                rowSum[r] = rowSum[r] * corr + sum
                if corr != 1 {
                    let ar = acc + r * headDim
                    for d in 0..<headDim { ar[d] *= corr }
                }
                rowMax[r] = newMax
            }
            // acc[m, headDim] += P[m, n] · V_blk[n, headDim]
            sgemmNN(m: m, n: headDim, k: n, a: s, lda: n, b: v + j0 * vStride + col, ldb: vStride,
                    c: acc, ldc: headDim, accumulate: true)
            j0 += n
        }
        for r in 0..<m {
            let inv = 1 / rowSum[r]
            let o = out + (i0 + r) * outStride + col, ar = acc + r * headDim
            for d in 0..<headDim { o[d] = ar[d] * inv }
        }
    }
    let tasks = heads * qBlocks
    if let pool, pool.threadCount > 1, tasks > 1 { pool.parallelFor(tasks, body) } else { for t in 0..<tasks { body(t) } }
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

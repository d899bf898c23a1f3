// Linear layers: y = x·Wᵀ + b over a weight in its stored format (f32/bf16/f16, fp8 with row scales,
// q8_0/q4_0/q4_k), read in place — never widened at load — and the fp32 forward/backward pair the
// trainer uses on its own parameters.

/// A linear layer's tensors: weight [out, in] (as the binder that declared it made it) and an
/// optional bias [out]. Declared with `WeightBinder.linear`; `Linear` is the runnable form.
public struct LinearLayer<M, V> {
    public let weight: M
    public let bias: V?
    public init(weight: M, bias: V?) {
        self.weight = weight
        self.bias = bias
    }
}

extension LinearLayer: @unchecked Sendable where M: Sendable, V: Sendable {}

/// y = x · Wᵀ + b for a weight [out, in] and an optional bias [out], W used as stored (see
/// `WeightMatrix`). Immutable; shareable across threads.
public typealias Linear = LinearLayer<WeightMatrix, [Float]>

extension WeightBinder {
    /// `prefix.weight` [out, in] and, when `bias`, `prefix.bias` [out] (PyTorch's nn.Linear names).
    public func linear(_ prefix: String, in inF: Int, out outF: Int, bias: Bool = true) throws -> LinearLayer<Matrix, Vector> {
        LinearLayer(weight: try matrix(prefix + ".weight", rows: outF, cols: inF),
                    bias: bias ? try vector(prefix + ".bias", outF) : nil)
    }
}

extension LinearLayer where M == WeightMatrix, V == [Float] {
    public var inFeatures: Int { weight.cols }
    public var outFeatures: Int { weight.rows }

    /// `weight` must be [out, in] (or a block-quantized [out, blocks, bytes]; F8_E4M3 with `scale`),
    /// `bias` (if given) a float [out]. Shape or dtype mismatches are errors naming the tensor.
    public init(weight w: Tensor, bias b: Tensor?, inFeatures: Int, outFeatures: Int, scale: Tensor? = nil) throws {
        var bv: [Float]? = nil
        if let b {
            try b.expectShape([outFeatures])
            guard b.dtype.isFloat else { throw HYError.format("tensor \(b.name): a bias must be a float tensor") }
            bv = b.floats()
        }
        self.init(weight: try WeightMatrix(w, rows: outFeatures, cols: inFeatures, scale: scale), bias: bv)
    }

    /// y[rows, out] = x[rows, in] · Wᵀ + b. x and y must not overlap. Splits over `pool`. With a bf16
    /// form of the weight (`ComputePrecision.bf16`) products of more than one row use it.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        if rows <= 0 { return }
        if rows > 1 && weight.bf16 != nil {
            let done = bias.map { b in b.withUnsafeBufferPointer { linearBF16(weight, x, rows, y, bias: $0.baseAddress, pool: pool) } }
                ?? linearBF16(weight, x, rows, y, bias: nil, pool: pool)
            if done { return }
        }
        linear(weight, x, rows, y, pool: pool)
        if let bias {
            bias.withUnsafeBufferPointer { addBias(y, $0.baseAddress!, rows: rows, width: outFeatures, pool: pool) }
        }
    }
}

/// Forward over fp32 weights: y[n, out] = x[n, in] · W[out, in]ᵀ.
public func linearForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows n: Int, inF: Int, outF: Int,
                          _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    gemm(transB: true, m: n, n: outF, k: inF, a: x, lda: inF, b: w, ldb: inF, c: y, ldc: outF, pool: pool)
}

/// Backward of `linearForward`: dW[out, in] += dyᵀ · x; dx[n, in] (=, or += when `accumulate`) dy · W.
/// `dx` nil skips the input gradient, `dW` nil the weight gradient (a frozen weight).
public func linearBackward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                           rows n: Int, inF: Int, outF: Int, dW: UnsafeMutablePointer<Float>?,
                           dx: UnsafeMutablePointer<Float>?, accumulate: Bool, pool: ThreadPool?) {
    if let dW {
        gemm(transA: true, m: outF, n: inF, k: n, a: dy, lda: outF, b: x, ldb: inF, beta: 1, c: dW, ldc: inF, pool: pool)
    }
    if let dx {
        gemm(m: n, n: inF, k: outF, a: dy, lda: outF, b: w, ldb: inF, beta: accumulate ? 1 : 0, c: dx, ldc: inF, pool: pool)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

// transformers' `T5EncoderModel` (models/t5/modeling_t5.py), T5 v1.1 / mT5 as HunyuanDiT's
// `text_encoder_2/` ships it: the shared embedding (not scaled), pre-RMSNorm layers whose
// self-attention has no 1/√d scaling and a learned bidirectional relative position bias (made by
// layer 0, shared by all), a gated or plain FFN, the final RMSNorm. Sequences are [tokens, d_model]
// row-major fp32, one at a time; every position is computed, padding included.

/// `text_encoder_2/config.json` (`T5Config`, or `MT5Config` when model_type is "mt5"; transformers'
/// defaults of that class for absent keys).
public struct T5Config: ComponentConfig, Sendable, Equatable {
    public var vocabSize = 32128, dModel = 512, dFf = 2048, numLayers = 6
    /// Attention heads of d_kv channels each.
    public var numHeads = 8, dKv = 64
    public var relativeAttentionNumBuckets = 32, relativeAttentionMaxDistance = 128
    public var layerNormEpsilon: Float = 1e-6
    /// "relu" (T5), "gated-gelu" (T5 v1.1, mT5: gelu_new), or "[gated-]<activation>".
    public var feedForwardProj = "relu"

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", dModel = "d_model", dKv = "d_kv", dFf = "d_ff", numLayers = "num_layers"
        case numHeads = "num_heads", relativeAttentionNumBuckets = "relative_attention_num_buckets"
        case relativeAttentionMaxDistance = "relative_attention_max_distance", layerNormEpsilon = "layer_norm_epsilon"
        case feedForwardProj = "feed_forward_proj", modelType = "model_type"
    }

    public init() {}

    /// The mT5-XL encoder of HunyuanDiT (`text_encoder_2/`): 24 layers, d_model 2048, 32 heads × 64,
    /// d_ff 5120, vocab 250112, gated-gelu; 1,669,958,656 parameters.
    public static var mT5XL: T5Config {
        var c = T5Config()
        c.vocabSize = 250112; c.dModel = 2048; c.dKv = 64; c.dFf = 5120; c.numLayers = 24; c.numHeads = 32
        c.feedForwardProj = "gated-gelu"
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if try c.decode(.modelType, default: "t5") == "mt5" {
            vocabSize = 250112; dFf = 1024; numLayers = 8; numHeads = 6; feedForwardProj = "gated-gelu"
        }
        vocabSize = try c.decode(.vocabSize, default: vocabSize)
        dModel = try c.decode(.dModel, default: dModel)
        dKv = try c.decode(.dKv, default: dKv)
        dFf = try c.decode(.dFf, default: dFf)
        numLayers = try c.decode(.numLayers, default: numLayers)
        numHeads = try c.decode(.numHeads, default: numHeads)
        relativeAttentionNumBuckets = try c.decode(.relativeAttentionNumBuckets, default: relativeAttentionNumBuckets)
        relativeAttentionMaxDistance = try c.decode(.relativeAttentionMaxDistance, default: relativeAttentionMaxDistance)
        layerNormEpsilon = try c.decode(.layerNormEpsilon, default: layerNormEpsilon)
        feedForwardProj = try c.decode(.feedForwardProj, default: feedForwardProj)
    }

    /// Attention width num_heads · d_kv (may differ from d_model).
    public var inner: Int { numHeads * dKv }

    /// Whether the FFN is gated (wi_0, wi_1) and its activation, as T5Config derives them from
    /// feed_forward_proj; errors name the key.
    public func feedForward(context: String = "T5Config") throws -> (gated: Bool, act: T5Activation) {
        let parts = feedForwardProj.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        let gated = parts.count == 2 && parts[0] == "gated"
        guard parts.count == 1 || gated else {
            throw HYError.format("\(context): feed_forward_proj \"\(feedForwardProj)\" is not \"[gated-]<activation>\"")
        }
        let name = feedForwardProj == "gated-gelu" ? "gelu_new" : parts[parts.count - 1]
        if name == "relu" { return (gated, .relu) }
        do {
            return (gated, .gelu(try CLIPActivation(name: name, context: context)))
        } catch {
            throw HYError.unsupported("\(context): feed_forward_proj \"\(feedForwardProj)\" (activation \(name); supported: relu, gelu, gelu_new)")
        }
    }

    /// Checks the sizes and the FFN; errors name the key.
    public func validate(context: String = "text_encoder_2/config.json") throws {
        _ = try feedForward(context: context)
        for (key, value) in [("vocab_size", vocabSize), ("d_model", dModel), ("d_kv", dKv), ("d_ff", dFf),
                             ("num_layers", numLayers), ("num_heads", numHeads)] where value < 1 {
            throw HYError.format("\(context): \(key) \(value) must be ≥ 1")
        }
        guard relativeAttentionNumBuckets >= 4 else {
            throw HYError.format("\(context): relative_attention_num_buckets \(relativeAttentionNumBuckets) must be ≥ 4")
        }
        guard relativeAttentionMaxDistance > relativeAttentionNumBuckets / 4 else {
            throw HYError.format("\(context): relative_attention_max_distance \(relativeAttentionMaxDistance) must exceed relative_attention_num_buckets / 4")
        }
        guard layerNormEpsilon >= 0 else { throw HYError.format("\(context): layer_norm_epsilon \(layerNormEpsilon) must be ≥ 0") }
    }

    /// The bucket of key j seen from query i (relative = j − i), bidirectional, as
    /// T5Attention._relative_position_bucket: half the buckets per direction, exact below a quarter of
    /// them, logarithmic up to relative_attention_max_distance (float32 like PyTorch), the last above.
    public func relativePositionBucket(_ relative: Int) -> Int {
        let half = relativeAttentionNumBuckets / 2, maxExact = half / 2
        let base = relative > 0 ? half : 0, n = abs(relative)
        if n < maxExact { return base + n }
        let ratio = Float(log(Double(relativeAttentionMaxDistance) / Double(maxExact)))
        let large = maxExact + Int(logf(Float(n) / Float(maxExact)) / ratio * Float(half - maxExact))
        return base + min(large, half - 1)
    }
}

/// The FFN activation of a T5 config.
public enum T5Activation: Sendable, Equatable {
    case relu
    /// gelu (erf) or gelu_new (tanh).
    case gelu(CLIPActivation)

    /// Applies the activation in place over n elements.
    func apply(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .relu: for i in 0..<n { x[i] = max(x[i], 0) }
        case .gelu(let a): a.apply(x, n)
        }
    }
}

/// One `T5Block` of the encoder: x += o(attn(rmsnorm₀(x))); x += wo(act(wi_0·h) ⊙ wi_1·h) with
/// h = rmsnorm₁(x) (plain: wo(act(wi·h)), `wi1` nil). No biases.
public struct T5LayerWeights<M, V> {
    public let attentionNorm: V
    public let q: LinearLayer<M, V>, k: LinearLayer<M, V>, v: LinearLayer<M, V>, o: LinearLayer<M, V>
    public let ffNorm: V
    public let wi0: LinearLayer<M, V>      // wi_0 (gated) or wi
    public let wi1: LinearLayer<M, V>?
    public let wo: LinearLayer<M, V>
}

/// `T5EncoderModel`'s tensors under transformers' names.
public struct T5EncoderWeightSet<M, V> {
    public let embedding: M                  // shared.weight [vocab, d_model]
    public let relativeAttentionBias: V      // [num_buckets, num_heads]
    public let layers: [T5LayerWeights<M, V>]
    public let finalNorm: V
}

extension T5LayerWeights: Sendable where M: Sendable, V: Sendable {}
extension T5EncoderWeightSet: Sendable where M: Sendable, V: Sendable {}
public typealias T5EncoderWeights = T5EncoderWeightSet<WeightMatrix, [Float]>

/// The one declaration of `T5EncoderModel`'s tensors (name and shape), generic over the binder.
public enum T5Tensors {
    /// Every tensor of a `T5EncoderModel` of configuration `c`; the embedding is `embedding`
    /// ("shared.weight" as transformers saves it; "encoder.embed_tokens.weight" in files that store only the tied copy).
    public static func encoder<B: WeightBinder>(_ c: T5Config, embedding: String = "shared.weight", _ b: B) throws
        -> T5EncoderWeightSet<B.Matrix, B.Vector> {
        try c.validate()
        let d = c.dModel, inner = c.inner, gated = try c.feedForward().gated
        let emb = try b.matrix(embedding, rows: c.vocabSize, cols: d)
        let rel = try b.vector("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                               shape: [c.relativeAttentionNumBuckets, c.numHeads])
        let layers = try (0..<c.numLayers).map { i in
            let a = "encoder.block.\(i).layer.0.", f = "encoder.block.\(i).layer.1."
            return T5LayerWeights(
                attentionNorm: try b.vector(a + "layer_norm.weight", d),
                q: try b.linear(a + "SelfAttention.q", in: d, out: inner, bias: false),
                k: try b.linear(a + "SelfAttention.k", in: d, out: inner, bias: false),
                v: try b.linear(a + "SelfAttention.v", in: d, out: inner, bias: false),
                o: try b.linear(a + "SelfAttention.o", in: inner, out: d, bias: false),
                ffNorm: try b.vector(f + "layer_norm.weight", d),
                wi0: try b.linear(f + (gated ? "DenseReluDense.wi_0" : "DenseReluDense.wi"), in: d, out: c.dFf, bias: false),
                wi1: gated ? try b.linear(f + "DenseReluDense.wi_1", in: d, out: c.dFf, bias: false) : nil,
                wo: try b.linear(f + "DenseReluDense.wo", in: c.dFf, out: d, bias: false))
        }
        return T5EncoderWeightSet(embedding: emb, relativeAttentionBias: rel, layers: layers,
                                  finalNorm: try b.vector("encoder.final_layer_norm.weight", d))
    }

    /// Stored tensors an encoder does not read: the tied `encoder.embed_tokens.weight` copy and, in a
    /// whole T5ForConditionalGeneration file, the decoder and the LM head (as T5EncoderModel.from_pretrained).
    public static func ignorable(_ name: String) -> Bool {
        name == "encoder.embed_tokens.weight" || name.hasPrefix("decoder.") || name == "lm_head.weight"
    }

    /// The declared tensors (name, shape), in declaration order.
    public static func table(for c: T5Config) throws -> WeightTable { try WeightTable { _ = try encoder(c, $0) } }
}

/// A loaded transformers `T5EncoderModel` (HunyuanDiT's `text_encoder_2/` folder). Matrices and the
/// embedding stay in place in the mapped files. Immutable; shareable across threads.
public final class T5EncoderModel: FolderComponent, @unchecked Sendable {
    public let config: T5Config
    public let weights: T5EncoderWeights
    let activation: T5Activation

    public convenience init(config: T5Config, checkpoint ck: Checkpoint) throws {
        try config.validate()
        let tied = "encoder.embed_tokens.weight"
        let embedding = ck.tensor("shared.weight") == nil && ck.tensor(tied) != nil ? tied : "shared.weight"
        let w = try Component.load(ck, context: "this T5EncoderModel configuration", ignorable: T5Tensors.ignorable) { b in
            try T5Tensors.encoder(config, embedding: embedding, b)
        }
        try self.init(config: config, weights: w)
    }

    public init(config: T5Config, weights: T5EncoderWeights) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        activation = try config.feedForward().act
    }

    /// The longest sequence `forward` takes: the position bias holds heads·L² floats (512 MB for
    /// mT5-XL's 32 heads at 2048 tokens; HunyuanDiT runs 256).
    public static let maxTokens = 2048

    /// The additive attention scores of every layer, [heads, t, t]: the relative position bias of
    /// query i and key j plus `keyBias[j]` (0 or masked) when a mask is given.
    func positionBias(tokens t: Int, keyBias: [Float]?) -> [Float] {
        let c = config, heads = c.numHeads
        var bucketOf = [Int](repeating: 0, count: 2 * t - 1)
        for r in 0..<(2 * t - 1) { bucketOf[r] = c.relativePositionBucket(r - (t - 1)) }
        var bias = [Float](repeating: 0, count: heads * t * t)
        let rel = weights.relativeAttentionBias
        for h in 0..<heads {
            for i in 0..<t {
                let row = (h * t + i) * t
                for j in 0..<t {
                    bias[row + j] = rel[bucketOf[j - i + t - 1] * heads + h] + (keyBias?[j] ?? 0)
                }
            }
        }
        return bias
    }

    /// last_hidden_state [L, d_model] (after the final RMSNorm) of `ids` (1 ≤ L ≤ maxTokens, each in [0, vocab)).
    /// `mask` (attention_mask: L values, 1 = token, 0 = padding; nil = all 1) removes the padded keys from
    /// every query's softmax; padded positions are still computed. `trace`: `t5.embeddings`,
    /// `t5.layer.i`, `t5.final_norm`.
    public func forward(ids: [Int32], mask: [Int32]? = nil, pool: ThreadPool?, trace: Trace? = nil) throws -> [Float] {
        let c = config, d = c.dModel, t = ids.count, inner = c.inner, ff = c.dFf, eps = c.layerNormEpsilon
        guard t >= 1, t <= T5EncoderModel.maxTokens else {
            throw HYError.invalidArgument("T5EncoderModel: \(t) tokens (1…\(T5EncoderModel.maxTokens) allowed)")
        }
        for id in ids where id < 0 || Int(id) >= c.vocabSize {
            throw HYError.invalidArgument("T5EncoderModel: token id \(id) outside the vocabulary of \(c.vocabSize)")
        }
        let keyBias = mask == nil ? nil : try paddingBias(mask, tokens: t, context: "T5EncoderModel")
        let bias = positionBias(tokens: t, keyBias: keyBias)
        let x = FloatBuffer(t * d, zeroed: false), h = FloatBuffer(t * d, zeroed: false), r = FloatBuffer(t * d, zeroed: false)
        let q = FloatBuffer(t * inner, zeroed: false), k = FloatBuffer(t * inner, zeroed: false)
        let v = FloatBuffer(t * inner, zeroed: false), a = FloatBuffer(t * inner, zeroed: false)
        let m0 = FloatBuffer(t * ff, zeroed: false), m1 = FloatBuffer(t * ff, zeroed: false)
        for (row, id) in ids.enumerated() { weights.embedding.copyRow(Int(id), into: x.p + row * d) }
        trace.emit("t5.embeddings", [t, d], x.p)
        let act = activation
        bias.withUnsafeBufferPointer { bp in
            let scores = AttentionBias(bp.baseAddress!, headStride: t * t, rowStride: t)
            for (i, l) in weights.layers.enumerated() {
                l.attentionNorm.withUnsafeBufferPointer { rmsnorm(x.p, $0.baseAddress, rows: t, dim: d, eps: eps, h.p, pool: pool) }
                encoderSelfAttention(h.p, tokens: t, q: l.q, k: l.k, v: l.v, out: l.o, heads: c.numHeads, headDim: c.dKv,
                                     scale: 1, mask: .none, bias: scores, scratch: (q.p, k.p, v.p, a.p), r.p, pool: pool)
                addInPlace(x.p, r.p, t * d, pool: pool)
                l.ffNorm.withUnsafeBufferPointer { rmsnorm(x.p, $0.baseAddress, rows: t, dim: d, eps: eps, h.p, pool: pool) }
                l.wi0.forward(h.p, rows: t, m0.p, pool: pool)
                l.wi1?.forward(h.p, rows: t, m1.p, pool: pool)
                let gated = l.wi1 != nil
                parallelRows(pool, t, minChunk: 8) { rows in
                    let p = m0.p + rows.lowerBound * ff, g = m1.p + rows.lowerBound * ff, n = rows.count * ff
                    act.apply(p, n)
                    if gated { for e in 0..<n { p[e] *= g[e] } }
                }
                l.wo.forward(m0.p, rows: t, r.p, pool: pool)
                addInPlace(x.p, r.p, t * d, pool: pool)
                trace.emit("t5.layer.\(i)", [t, d], x.p)
            }
        }
        weights.finalNorm.withUnsafeBufferPointer { rmsnorm(x.p, $0.baseAddress, rows: t, dim: d, eps: eps, x.p, pool: pool) }
        trace.emit("t5.final_norm", [t, d], x.p)
        return x.array
    }
}

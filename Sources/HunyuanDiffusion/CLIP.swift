#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

// transformers' CLIP towers (models/clip/modeling_clip.py): `CLIPTextModel` (the last hidden state
// after final_layer_norm) and `CLIPVisionModelWithProjection` (image_embeds), sharing one pre-LN
// encoder layer. Sequences are [tokens, hidden] row-major fp32, one at a time.

/// The MLP activation of a CLIP config (`hidden_act`).
public enum CLIPActivation: String, Sendable, Equatable {
    /// "gelu": exact x·Φ(x) (erf).
    case gelu
    /// "quick_gelu": x·sigmoid(1.702·x) (OpenAI CLIP).
    case quickGelu = "quick_gelu"
    /// "gelu_pytorch_tanh" (and "gelu_new", the same formula): the tanh approximation.
    case geluTanh = "gelu_pytorch_tanh"

    /// The activation named `name`; anything else is `HYError.unsupported` naming `context`.
    public init(name: String, context: String) throws {
        switch name {
        case "gelu": self = .gelu
        case "quick_gelu": self = .quickGelu
        case "gelu_pytorch_tanh", "gelu_new": self = .geluTanh
        default:
            throw HYError.unsupported("\(context): hidden_act \"\(name)\" (supported: gelu, quick_gelu, gelu_pytorch_tanh)")
        }
    }

    /// Applies the activation in place over n elements.
    public func apply(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .gelu: geluErf(x, n)
        case .geluTanh: HunyuanNN.geluTanh(x, n)
        case .quickGelu:
            for i in 0..<n { let v = x[i]; x[i] = v / (1 + expf(-1.702 * v)) }
        }
    }
}

/// `text_encoder/config.json` (`CLIPTextConfig`, transformers' defaults for absent keys). A combined
/// `CLIPConfig` file is accepted too: its `text_config` is read.
public struct CLIPTextConfig: ComponentConfig, Sendable, Equatable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct = "quick_gelu"
    public var layerNormEps: Float = 1e-5
    public var projectionDim = 512
    public var bosTokenId = 49406
    public var eosTokenId = 49407
    public var padTokenId = 1
    /// True when read from a combined CLIPConfig's `text_config` (its checkpoint holds both towers).
    public var fromCombinedConfig = false

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case projectionDim = "projection_dim", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id", textConfig = "text_config"
    }

    public init() {}

    /// OpenCLIP ViT-H/14's text tower as transformers' CLIPTextModel, 23 layers (Stable Diffusion 2's
    /// `text_encoder/config.json`), 340,387,840 parameters.
    public static var openCLIPH: CLIPTextConfig {
        var t = CLIPTextConfig()
        t.hiddenSize = 1024; t.numHiddenLayers = 23; t.numAttentionHeads = 16; t.intermediateSize = 4096
        t.hiddenAct = "gelu"; t.projectionDim = 1024
        return t
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let nested = try c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfig) {
            self = nested
            fromCombinedConfig = true
            return
        }
        vocabSize = try c.decode(.vocabSize, default: vocabSize)
        hiddenSize = try c.decode(.hiddenSize, default: hiddenSize)
        intermediateSize = try c.decode(.intermediateSize, default: intermediateSize)
        numHiddenLayers = try c.decode(.numHiddenLayers, default: numHiddenLayers)
        numAttentionHeads = try c.decode(.numAttentionHeads, default: numAttentionHeads)
        maxPositionEmbeddings = try c.decode(.maxPositionEmbeddings, default: maxPositionEmbeddings)
        hiddenAct = try c.decode(.hiddenAct, default: hiddenAct)
        layerNormEps = try c.decode(.layerNormEps, default: layerNormEps)
        projectionDim = try c.decode(.projectionDim, default: projectionDim)
        bosTokenId = try c.decode(.bosTokenId, default: bosTokenId)
        eosTokenId = try c.decode(.eosTokenId, default: eosTokenId)
        padTokenId = try c.decode(.padTokenId, default: padTokenId)
    }

    /// Checks the sizes and the activation; errors name the key.
    public func validate(context: String = "text_encoder/config.json") throws {
        _ = try CLIPActivation(name: hiddenAct, context: context)
        try validateCLIPSizes(hidden: hiddenSize, heads: numAttentionHeads, layers: numHiddenLayers,
                              intermediate: intermediateSize, context: context)
        guard vocabSize >= 1, maxPositionEmbeddings >= 1 else {
            throw HYError.format("\(context): vocab_size and max_position_embeddings must be ≥ 1")
        }
    }
}

/// `vision_encoder/config.json` (`CLIPVisionConfig`, transformers' defaults for absent keys); a
/// combined `CLIPConfig`'s `vision_config` is accepted too.
public struct CLIPVisionConfig: ComponentConfig, Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct = "quick_gelu"
    public var layerNormEps: Float = 1e-5
    /// True when read from a combined CLIPConfig's `vision_config`.
    public var fromCombinedConfig = false

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numChannels = "num_channels", imageSize = "image_size", patchSize = "patch_size"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", visionConfig = "vision_config"
    }

    public init() {}

    /// CLIP ViT-H/14 at 224 px with a 1024 projection (CLIPVisionModelWithProjection),
    /// 632,076,800 parameters.
    public static var vitH14: CLIPVisionConfig {
        var v = CLIPVisionConfig()
        v.hiddenSize = 1280; v.numHiddenLayers = 32; v.numAttentionHeads = 16; v.intermediateSize = 5120
        v.patchSize = 14; v.imageSize = 224; v.projectionDim = 1024; v.hiddenAct = "gelu"
        return v
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let nested = try c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfig) {
            self = nested
            fromCombinedConfig = true
            return
        }
        hiddenSize = try c.decode(.hiddenSize, default: hiddenSize)
        intermediateSize = try c.decode(.intermediateSize, default: intermediateSize)
        projectionDim = try c.decode(.projectionDim, default: projectionDim)
        numHiddenLayers = try c.decode(.numHiddenLayers, default: numHiddenLayers)
        numAttentionHeads = try c.decode(.numAttentionHeads, default: numAttentionHeads)
        numChannels = try c.decode(.numChannels, default: numChannels)
        imageSize = try c.decode(.imageSize, default: imageSize)
        patchSize = try c.decode(.patchSize, default: patchSize)
        hiddenAct = try c.decode(.hiddenAct, default: hiddenAct)
        layerNormEps = try c.decode(.layerNormEps, default: layerNormEps)
    }

    /// Patches along each side (image_size / patch_size).
    public var grid: Int { imageSize / max(patchSize, 1) }
    /// Tokens per image: the class token then grid² patches.
    public var tokens: Int { 1 + grid * grid }

    public func validate(context: String = "vision_encoder/config.json") throws {
        _ = try CLIPActivation(name: hiddenAct, context: context)
        try validateCLIPSizes(hidden: hiddenSize, heads: numAttentionHeads, layers: numHiddenLayers,
                              intermediate: intermediateSize, context: context)
        guard patchSize >= 1, imageSize >= patchSize, numChannels >= 1, projectionDim >= 1 else {
            throw HYError.format("\(context): patch_size, image_size, num_channels and projection_dim must be positive (image_size ≥ patch_size)")
        }
    }
}

private func validateCLIPSizes(hidden: Int, heads: Int, layers: Int, intermediate: Int, context: String) throws {
    guard hidden >= 1, heads >= 1, hidden % heads == 0 else {
        throw HYError.format("\(context): hidden_size \(hidden) is not a positive multiple of num_attention_heads \(heads)")
    }
    guard layers >= 0, intermediate >= 1 else {
        throw HYError.format("\(context): num_hidden_layers must be ≥ 0 and intermediate_size ≥ 1")
    }
}

/// One `CLIPEncoderLayer`: x += out_proj(attn(layer_norm1(x))); x += fc2(act(fc1(layer_norm2(x)))).
public struct CLIPEncoderLayerWeights<M, V> {
    public let norm1W: V, norm1B: V
    public let q: LinearLayer<M, V>, k: LinearLayer<M, V>, v: LinearLayer<M, V>, out: LinearLayer<M, V>
    public let norm2W: V, norm2B: V
    public let fc1: LinearLayer<M, V>, fc2: LinearLayer<M, V>
}

extension CLIPTensors {
    /// One encoder layer at `p` (`….encoder.layers.i.`) under transformers' names.
    static func layer<B: WeightBinder>(_ p: String, hidden d: Int, intermediate f: Int, _ b: B) throws
        -> CLIPEncoderLayerWeights<B.Matrix, B.Vector> {
        CLIPEncoderLayerWeights(
            norm1W: try b.vector(p + "layer_norm1.weight", d), norm1B: try b.vector(p + "layer_norm1.bias", d),
            q: try b.linear(p + "self_attn.q_proj", in: d, out: d), k: try b.linear(p + "self_attn.k_proj", in: d, out: d),
            v: try b.linear(p + "self_attn.v_proj", in: d, out: d), out: try b.linear(p + "self_attn.out_proj", in: d, out: d),
            norm2W: try b.vector(p + "layer_norm2.weight", d), norm2B: try b.vector(p + "layer_norm2.bias", d),
            fc1: try b.linear(p + "mlp.fc1", in: d, out: f), fc2: try b.linear(p + "mlp.fc2", in: f, out: d))
    }
}

extension CLIPEncoderLayerWeights: Sendable where M: Sendable, V: Sendable {}

/// The encoder stack of the CLIP towers (pre-LN: x += attn(LN1(x)); x += mlp(LN2(x))) and of BERT
/// (`postNorm`: x = LN1(x + attn(x)); x = LN2(x + mlp(x))), `heads` heads, full or causal attention.
struct CLIPEncoderRunner {
    let layers: [CLIPEncoderLayerWeights<WeightMatrix, [Float]>]
    let hidden: Int, heads: Int, intermediate: Int, eps: Float, act: CLIPActivation
    var postNorm = false

    /// x [t, hidden] is updated in place through every layer; `bias` (e.g. a key-padding mask) is added
    /// to every layer's attention scores. Scratch is allocated once per call.
    func run(_ x: UnsafeMutablePointer<Float>, tokens t: Int, causal: Bool, bias: AttentionBias? = nil, pool: ThreadPool?,
             trace: Trace?, traceName: String) {
        let d = hidden, hd = d / heads
        let h = FloatBuffer(t * d, zeroed: false), q = FloatBuffer(t * d, zeroed: false)
        let k = FloatBuffer(t * d, zeroed: false), v = FloatBuffer(t * d, zeroed: false)
        let m = FloatBuffer(t * intermediate, zeroed: false)
        for (i, l) in layers.enumerated() {
            if !postNorm { layerNorm(x, rows: t, dim: d, eps: eps, weight: l.norm1W, bias: l.norm1B, h.p, pool: pool) }
            encoderSelfAttention(postNorm ? x : h.p, tokens: t, q: l.q, k: l.k, v: l.v, out: l.out, heads: heads, headDim: hd,
                                 scale: 1 / Float(hd).squareRoot(), mask: causal ? .causal(offset: 0) : .none, bias: bias,
                                 scratch: (q.p, k.p, v.p, h.p), q.p, pool: pool)
            addInPlace(x, q.p, t * d, pool: pool)
            if postNorm { layerNorm(x, rows: t, dim: d, eps: eps, weight: l.norm1W, bias: l.norm1B, x, pool: pool) }
            else { layerNorm(x, rows: t, dim: d, eps: eps, weight: l.norm2W, bias: l.norm2B, h.p, pool: pool) }
            l.fc1.forward(postNorm ? x : h.p, rows: t, m.p, pool: pool)
            let f = intermediate, a = act
            parallelRows(pool, t, minChunk: 8) { r in a.apply(m.p + r.lowerBound * f, r.count * f) }
            l.fc2.forward(m.p, rows: t, q.p, pool: pool)
            addInPlace(x, q.p, t * d, pool: pool)
            if postNorm { layerNorm(x, rows: t, dim: d, eps: eps, weight: l.norm2W, bias: l.norm2B, x, pool: pool) }
            trace.emit("\(traceName).\(i)", [t, d], x)
        }
    }
}

/// The self-attention of an encoder layer: result[t, out] = out(attention(q(x), k(x), v(x))) over
/// `heads` heads of `headDim` (the projections are [heads·headDim, in]). `scratch` q, k, v and a hold
/// t·heads·headDim floats each; a may be x (read only by the projections), result may be q.
func encoderSelfAttention(_ x: UnsafePointer<Float>, tokens t: Int, q: Linear, k: Linear, v: Linear, out: Linear,
                          heads: Int, headDim hd: Int, scale: Float, mask: AttentionMask, bias: AttentionBias?,
                          scratch s: (q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
                                      v: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>),
                          _ result: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    let inner = heads * hd
    q.forward(x, rows: t, s.q, pool: pool)
    k.forward(x, rows: t, s.k, pool: pool)
    v.forward(x, rows: t, s.v, pool: pool)
    attention(q: s.q, qStride: inner, nq: t, keys: s.k, kStride: inner, values: s.v, vStride: inner, nk: t,
              heads: heads, kvHeads: heads, headDim: hd, scale: scale, mask: mask, bias: bias, out: s.a, outStride: inner,
              pool: pool)
    out.forward(s.a, rows: t, result, pool: pool)
}

func layerNorm(_ x: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float, weight: [Float], bias: [Float],
               _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    weight.withUnsafeBufferPointer { w in
        bias.withUnsafeBufferPointer { b in
            HunyuanNN.layerNorm(x, rows: rows, dim: dim, eps: eps, weight: w.baseAddress, bias: b.baseAddress, out, pool: pool)
        }
    }
}

// MARK: - Text

/// `CLIPTextModel`'s tensors under transformers' names (`text_model.…`).
public struct CLIPTextWeightSet<M, V> {
    public let tokenEmbedding: M          // [vocab, D]
    public let positionEmbedding: V       // [maxPositions, D]
    public let layers: [CLIPEncoderLayerWeights<M, V>]
    public let finalNormW: V, finalNormB: V

}

/// The one declaration of each CLIP tower's tensors (name and shape), generic over the binder.
public enum CLIPTensors {
    /// Every tensor of a `CLIPTextModel` of configuration `c`.
    public static func text<B: WeightBinder>(_ c: CLIPTextConfig, _ b: B) throws -> CLIPTextWeightSet<B.Matrix, B.Vector> {
        try c.validate()
        let d = c.hiddenSize, p = "text_model."
        let tok = try b.matrix(p + "embeddings.token_embedding.weight", rows: c.vocabSize, cols: d)
        let pos = try b.vector(p + "embeddings.position_embedding.weight", shape: [c.maxPositionEmbeddings, d])
        let layers = try (0..<c.numHiddenLayers).map {
            try layer(p + "encoder.layers.\($0).", hidden: d, intermediate: c.intermediateSize, b)
        }
        return CLIPTextWeightSet(tokenEmbedding: tok, positionEmbedding: pos, layers: layers,
                                 finalNormW: try b.vector(p + "final_layer_norm.weight", d),
                                 finalNormB: try b.vector(p + "final_layer_norm.bias", d))
    }

    /// Stored tensors a CLIPTextModel checkpoint may hold that the model does not read: the
    /// `position_ids` buffer of older files and, for a combined CLIPModel file, the other tower.
    public static func textIgnorable(_ name: String, combined: Bool) -> Bool {
        if name == "text_model.embeddings.position_ids" { return true }
        return combined && (name.hasPrefix("vision_model.") || name.hasPrefix("visual_projection.")
                            || name.hasPrefix("text_projection.") || name == "logit_scale")
    }
}

extension CLIPTextWeightSet: Sendable where M: Sendable, V: Sendable {}
public typealias CLIPTextWeights = CLIPTextWeightSet<WeightMatrix, [Float]>

/// A loaded transformers `CLIPTextModel` (a `text_encoder/` folder). Immutable; shareable across threads.
public final class CLIPTextModel: FolderComponent, @unchecked Sendable {
    public let config: CLIPTextConfig
    public let weights: CLIPTextWeights
    let encoder: CLIPEncoderRunner

    public convenience init(config: CLIPTextConfig, checkpoint ck: Checkpoint) throws {
        try config.validate()
        let w = try Component.load(ck, context: "this CLIPTextModel configuration",
                                   ignorable: { CLIPTensors.textIgnorable($0, combined: config.fromCombinedConfig) }) { b in
            try CLIPTensors.text(config, b)
        }
        try self.init(config: config, weights: w)
    }

    public init(config: CLIPTextConfig, weights: CLIPTextWeights) throws {
        self.config = config
        self.weights = weights
        encoder = CLIPEncoderRunner(layers: weights.layers, hidden: config.hiddenSize, heads: config.numAttentionHeads,
                                    intermediate: config.intermediateSize, eps: config.layerNormEps,
                                    act: try CLIPActivation(name: config.hiddenAct, context: "CLIPTextConfig"))
    }

    /// The last hidden state (after final_layer_norm) of `ids` (1 ≤ L ≤ max_position_embeddings,
    /// each in [0, vocab)): [L, hidden] row-major. Attention is causal with no padding mask, as the
    /// official pipeline calls it (it passes an attention_mask only when the config sets
    /// `use_attention_mask`, which CLIP configs do not). `trace`: `text.layer.i`.
    public func forward(ids: [Int32], pool: ThreadPool?, trace: Trace? = nil) throws -> [Float] {
        let c = config, d = c.hiddenSize, t = ids.count
        guard t >= 1, t <= c.maxPositionEmbeddings else {
            throw HYError.invalidArgument("CLIPTextModel: \(t) tokens (1…\(c.maxPositionEmbeddings) allowed)")
        }
        for id in ids where id < 0 || Int(id) >= c.vocabSize {
            throw HYError.invalidArgument("CLIPTextModel: token id \(id) outside the vocabulary of \(c.vocabSize)")
        }
        let x = FloatBuffer(t * d, zeroed: false)
        for (r, id) in ids.enumerated() {
            let row = x.p + r * d
            weights.tokenEmbedding.copyRow(Int(id), into: row)
            for j in 0..<d { row[j] += weights.positionEmbedding[r * d + j] }
        }
        encoder.run(x.p, tokens: t, causal: true, pool: pool, trace: trace, traceName: "text.layer")
        layerNorm(x.p, rows: t, dim: d, eps: c.layerNormEps, weight: weights.finalNormW, bias: weights.finalNormB, x.p, pool: pool)
        return x.array
    }
}

// MARK: - Vision

/// `CLIPVisionModelWithProjection`'s tensors under transformers' names.
public struct CLIPVisionWeightSet<M, V> {
    public let classEmbedding: V            // [D]
    public let patchEmbedding: LinearLayer<M, V>   // Conv2d(C, D, p, stride p, bias False) as [D, C·p·p]
    public let positionEmbedding: V         // [1 + grid², D]
    public let preNormW: V, preNormB: V
    public let layers: [CLIPEncoderLayerWeights<M, V>]
    public let postNormW: V, postNormB: V
    public let projection: LinearLayer<M, V>   // [projection_dim, D], no bias

}

extension CLIPTensors {
    /// Every tensor of a `CLIPVisionModelWithProjection` of configuration `c`.
    public static func vision<B: WeightBinder>(_ c: CLIPVisionConfig, _ b: B) throws -> CLIPVisionWeightSet<B.Matrix, B.Vector> {
        try c.validate()
        let d = c.hiddenSize, p = "vision_model."
        let cls = try b.vector(p + "embeddings.class_embedding", d)
        let patch = try b.conv2d(p + "embeddings.patch_embedding", in: c.numChannels, out: d, kernel: (c.patchSize, c.patchSize),
                                 bias: false)
        let pos = try b.vector(p + "embeddings.position_embedding.weight", shape: [c.tokens, d])
        let preW = try b.vector(p + "pre_layrnorm.weight", d), preB = try b.vector(p + "pre_layrnorm.bias", d)
        let layers = try (0..<c.numHiddenLayers).map {
            try layer(p + "encoder.layers.\($0).", hidden: d, intermediate: c.intermediateSize, b)
        }
        let postW = try b.vector(p + "post_layernorm.weight", d), postB = try b.vector(p + "post_layernorm.bias", d)
        let proj = try b.linear("visual_projection", in: d, out: c.projectionDim, bias: false)
        return CLIPVisionWeightSet(classEmbedding: cls, patchEmbedding: patch, positionEmbedding: pos, preNormW: preW,
                                   preNormB: preB, layers: layers, postNormW: postW, postNormB: postB, projection: proj)
    }

    /// The `position_ids` buffer of older files and, for a combined CLIPModel file, the text tower.
    public static func visionIgnorable(_ name: String, combined: Bool) -> Bool {
        if name == "vision_model.embeddings.position_ids" { return true }
        return combined && (name.hasPrefix("text_model.") || name.hasPrefix("text_projection.") || name == "logit_scale")
    }

    /// The declared tensors of each tower (name, shape), in declaration order.
    public static func textTable(for c: CLIPTextConfig) throws -> WeightTable {
        let t = WeightTable()
        _ = try text(c, t)
        return t
    }

    public static func visionTable(for c: CLIPVisionConfig) throws -> WeightTable {
        let t = WeightTable()
        _ = try vision(c, t)
        return t
    }
}

extension CLIPVisionWeightSet: Sendable where M: Sendable, V: Sendable {}
public typealias CLIPVisionWeights = CLIPVisionWeightSet<WeightMatrix, [Float]>

/// A loaded transformers `CLIPVisionModelWithProjection` (a `vision_encoder/` or `image_encoder/`
/// folder). Immutable; shareable across threads.
public final class CLIPVisionModel: FolderComponent, @unchecked Sendable {
    public let config: CLIPVisionConfig
    public let weights: CLIPVisionWeights
    let encoder: CLIPEncoderRunner

    public convenience init(config: CLIPVisionConfig, checkpoint ck: Checkpoint) throws {
        try config.validate()
        let w = try Component.load(ck, context: "this CLIPVisionModelWithProjection configuration",
                                   ignorable: { CLIPTensors.visionIgnorable($0, combined: config.fromCombinedConfig) }) { b in
            try CLIPTensors.vision(config, b)
        }
        try self.init(config: config, weights: w)
    }

    public init(config: CLIPVisionConfig, weights: CLIPVisionWeights) throws {
        self.config = config
        self.weights = weights
        encoder = CLIPEncoderRunner(layers: weights.layers, hidden: config.hiddenSize, heads: config.numAttentionHeads,
                                    intermediate: config.intermediateSize, eps: config.layerNormEps,
                                    act: try CLIPActivation(name: config.hiddenAct, context: "CLIPVisionConfig"))
    }

    /// Runs the tower on `pixels` [numChannels, S, S] (preprocessed; S = image_size): the last hidden
    /// state [1 + grid², hidden] (class token first, before post_layernorm) and image_embeds
    /// [projection_dim] = visual_projection(post_layernorm(CLS)), not normalized.
    /// `trace`: `vision.embeddings`, `vision.layer.i`.
    public func forward(pixels: [Float], pool: ThreadPool?, trace: Trace? = nil) throws
        -> (lastHidden: [Float], imageEmbeds: [Float]) {
        let c = config, d = c.hiddenSize, s = c.imageSize, p = c.patchSize, g = c.grid, t = c.tokens, nc = c.numChannels
        guard pixels.count == nc * s * s else {
            throw HYError.invalidArgument("CLIPVisionModel: \(pixels.count) values for a [\(nc), \(s), \(s)] image (image_size \(s))")
        }
        let kIn = nc * p * p
        let cols = FloatBuffer(g * g * kIn, zeroed: false)
        pixels.withUnsafeBufferPointer { px in
            let img = px.baseAddress!
            for py in 0..<g {
                for qx in 0..<g {
                    let row = cols.p + (py * g + qx) * kIn
                    for ch in 0..<nc {
                        for ky in 0..<p {
                            (row + (ch * p + ky) * p).update(from: img + (ch * s + py * p + ky) * s + qx * p, count: p)
                        }
                    }
                }
            }
        }
        let x = FloatBuffer(t * d, zeroed: false)
        weights.patchEmbedding.forward(cols.p, rows: g * g, x.p + d, pool: pool)
        for j in 0..<d { x[j] = weights.classEmbedding[j] }
        let pos = weights.positionEmbedding
        for i in 0..<(t * d) { x[i] += pos[i] }
        trace.emit("vision.embeddings", [t, d], x.p)
        layerNorm(x.p, rows: t, dim: d, eps: c.layerNormEps, weight: weights.preNormW, bias: weights.preNormB, x.p, pool: pool)
        encoder.run(x.p, tokens: t, causal: false, pool: pool, trace: trace, traceName: "vision.layer")
        let pooled = FloatBuffer(d, zeroed: false), emb = FloatBuffer(c.projectionDim, zeroed: false)
        layerNorm(x.p, rows: 1, dim: d, eps: c.layerNormEps, weight: weights.postNormW, bias: weights.postNormB, pooled.p, pool: nil)
        weights.projection.forward(pooled.p, rows: 1, emb.p, pool: pool)
        return (x.array, emb.array)
    }

    /// image_embeds [projection_dim] of `pixels` [numChannels, S, S] (see `forward`).
    public func imageEmbeds(pixels: [Float], pool: ThreadPool?) throws -> [Float] {
        try forward(pixels: pixels, pool: pool).imageEmbeds
    }
}

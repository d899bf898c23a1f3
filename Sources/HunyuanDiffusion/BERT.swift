import HunyuanNN

// transformers' `BertModel` (models/bert/modeling_bert.py) as HunyuanDiT's `text_encoder/` ships it:
// post-LN BERT with absolute positions, token type 0, the padding mask on the keys; the output is the
// last hidden state (the pooler is not run). Sequences are [tokens, hidden] row-major fp32, one at a time.

/// `text_encoder/config.json` (`BertConfig`, transformers' defaults for absent keys).
public struct BertConfig: ComponentConfig, Sendable, Equatable {
    public var vocabSize = 30522
    public var hiddenSize = 768
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var intermediateSize = 3072
    public var hiddenAct = "gelu"
    public var maxPositionEmbeddings = 512
    public var typeVocabSize = 2
    public var layerNormEps: Float = 1e-12
    public var positionEmbeddingType = "absolute"
    public var isDecoder = false

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps", positionEmbeddingType = "position_embedding_type", isDecoder = "is_decoder"
    }

    public init() {}

    /// HunyuanDiT's BERT (chinese-roberta-wwm-ext-large): 24 layers, 1024 wide, 16 heads, FFN 4096,
    /// vocab 47020; 350,986,240 parameters without the pooler.
    public static var hunyuanDiT: BertConfig {
        var c = BertConfig()
        c.vocabSize = 47020; c.hiddenSize = 1024; c.numHiddenLayers = 24; c.numAttentionHeads = 16; c.intermediateSize = 4096
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(.vocabSize, default: vocabSize)
        hiddenSize = try c.decode(.hiddenSize, default: hiddenSize)
        numHiddenLayers = try c.decode(.numHiddenLayers, default: numHiddenLayers)
        numAttentionHeads = try c.decode(.numAttentionHeads, default: numAttentionHeads)
        intermediateSize = try c.decode(.intermediateSize, default: intermediateSize)
        hiddenAct = try c.decode(.hiddenAct, default: hiddenAct)
        maxPositionEmbeddings = try c.decode(.maxPositionEmbeddings, default: maxPositionEmbeddings)
        typeVocabSize = try c.decode(.typeVocabSize, default: typeVocabSize)
        layerNormEps = try c.decode(.layerNormEps, default: layerNormEps)
        positionEmbeddingType = try c.decode(.positionEmbeddingType, default: positionEmbeddingType)
        isDecoder = try c.decode(.isDecoder, default: isDecoder)
    }

    /// Checks the sizes, the activation and the implemented variant; errors name the key.
    public func validate(context: String = "text_encoder/config.json") throws {
        _ = try CLIPActivation(name: hiddenAct, context: context)
        guard positionEmbeddingType == "absolute" else {
            throw HYError.unsupported("\(context): position_embedding_type \"\(positionEmbeddingType)\" (only \"absolute\")")
        }
        guard !isDecoder else { throw HYError.unsupported("\(context): is_decoder true (BertModel runs as an encoder here)") }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_attention_heads", numAttentionHeads),
                             ("intermediate_size", intermediateSize), ("max_position_embeddings", maxPositionEmbeddings),
                             ("type_vocab_size", typeVocabSize)] where value < 1 {
            throw HYError.format("\(context): \(key) \(value) must be ≥ 1")
        }
        guard numHiddenLayers >= 0 else { throw HYError.format("\(context): num_hidden_layers \(numHiddenLayers) must be ≥ 0") }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw HYError.format("\(context): hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard layerNormEps > 0 else { throw HYError.format("\(context): layer_norm_eps \(layerNormEps) must be > 0") }
    }
}

/// `BertModel`'s tensors under transformers' names. Each layer is a `CLIPEncoderLayerWeights` run
/// post-LN: norm1 = attention.output.LayerNorm, norm2 = output.LayerNorm, fc1/fc2 = intermediate/output.dense.
public struct BertWeightSet<M, V> {
    public let wordEmbeddings: M           // [vocab, D]
    public let positionEmbeddings: V       // [max_position_embeddings, D]
    public let tokenTypeEmbeddings: V      // [type_vocab_size, D]
    public let embeddingNormW: V, embeddingNormB: V
    public let layers: [CLIPEncoderLayerWeights<M, V>]
}

extension BertWeightSet: Sendable where M: Sendable, V: Sendable {}
public typealias BertWeights = BertWeightSet<WeightMatrix, [Float]>

/// The one declaration of `BertModel`'s tensors (name and shape), generic over the binder.
public enum BertTensors {
    /// Every tensor of a `BertModel` of configuration `c`, each name after `prefix` ("" as BertModel
    /// saves them, "bert." in the files of BertFor… heads).
    public static func model<B: WeightBinder>(_ c: BertConfig, prefix p: String = "", _ b: B) throws
        -> BertWeightSet<B.Matrix, B.Vector> {
        try c.validate()
        let d = c.hiddenSize, f = c.intermediateSize
        let e = p + "embeddings."
        let word = try b.matrix(e + "word_embeddings.weight", rows: c.vocabSize, cols: d)
        let pos = try b.vector(e + "position_embeddings.weight", shape: [c.maxPositionEmbeddings, d])
        let type = try b.vector(e + "token_type_embeddings.weight", shape: [c.typeVocabSize, d])
        let normW = try b.vector(e + "LayerNorm.weight", d), normB = try b.vector(e + "LayerNorm.bias", d)
        let layers = try (0..<c.numHiddenLayers).map { i in
            let l = p + "encoder.layer.\(i)."
            return CLIPEncoderLayerWeights(
                norm1W: try b.vector(l + "attention.output.LayerNorm.weight", d),
                norm1B: try b.vector(l + "attention.output.LayerNorm.bias", d),
                q: try b.linear(l + "attention.self.query", in: d, out: d), k: try b.linear(l + "attention.self.key", in: d, out: d),
                v: try b.linear(l + "attention.self.value", in: d, out: d),
                out: try b.linear(l + "attention.output.dense", in: d, out: d),
                norm2W: try b.vector(l + "output.LayerNorm.weight", d), norm2B: try b.vector(l + "output.LayerNorm.bias", d),
                fc1: try b.linear(l + "intermediate.dense", in: d, out: f), fc2: try b.linear(l + "output.dense", in: f, out: d))
        }
        return BertWeightSet(wordEmbeddings: word, positionEmbeddings: pos, tokenTypeEmbeddings: type,
                             embeddingNormW: normW, embeddingNormB: normB, layers: layers)
    }

    /// Stored tensors the model does not read: the pooler, the `position_ids` / `token_type_ids`
    /// buffers of older files and, under the "bert." prefix, the pre-training heads (`cls.…`).
    public static func ignorable(_ name: String, prefix p: String) -> Bool {
        name.hasPrefix(p + "pooler.") || name == p + "embeddings.position_ids" || name == p + "embeddings.token_type_ids"
            || (!p.isEmpty && name.hasPrefix("cls."))
    }

    /// The declared tensors (name, shape), in declaration order.
    public static func table(for c: BertConfig) throws -> WeightTable { try WeightTable { _ = try model(c, $0) } }
}

/// A loaded transformers `BertModel` (HunyuanDiT's `text_encoder/` folder). Immutable; shareable across threads.
public final class BertModel: FolderComponent, @unchecked Sendable {
    public let config: BertConfig
    public let weights: BertWeights
    let encoder: CLIPEncoderRunner

    /// Tensors are read under BertModel's names, or under "bert." when the file stores them so.
    public convenience init(config: BertConfig, checkpoint ck: Checkpoint) throws {
        try config.validate()
        let prefix = ck.tensor("embeddings.word_embeddings.weight") == nil
            && ck.tensor("bert.embeddings.word_embeddings.weight") != nil ? "bert." : ""
        let w = try Component.load(ck, context: "this BertModel configuration",
                                   ignorable: { BertTensors.ignorable($0, prefix: prefix) }) { b in
            try BertTensors.model(config, prefix: prefix, b)
        }
        try self.init(config: config, weights: w)
    }

    public init(config: BertConfig, weights: BertWeights) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        var runner = CLIPEncoderRunner(layers: weights.layers, hidden: config.hiddenSize, heads: config.numAttentionHeads,
                                       intermediate: config.intermediateSize, eps: config.layerNormEps,
                                       act: try CLIPActivation(name: config.hiddenAct, context: "BertConfig"))
        runner.postNorm = true
        encoder = runner
    }

    /// last_hidden_state [L, hidden] of `ids` (1 ≤ L ≤ max_position_embeddings, each in [0, vocab)),
    /// token type 0 at positions 0..<L. `mask` (attention_mask: L values, 1 = token, 0 = padding; nil =
    /// all 1) removes the padded keys from every query's softmax; padded positions are still computed.
    /// `trace`: `bert.embeddings`, `bert.layer.i`.
    public func forward(ids: [Int32], mask: [Int32]? = nil, pool: ThreadPool?, trace: Trace? = nil) throws -> [Float] {
        let c = config, d = c.hiddenSize, t = ids.count
        guard t >= 1, t <= c.maxPositionEmbeddings else {
            throw HYError.invalidArgument("BertModel: \(t) tokens (1…\(c.maxPositionEmbeddings) allowed)")
        }
        for id in ids where id < 0 || Int(id) >= c.vocabSize {
            throw HYError.invalidArgument("BertModel: token id \(id) outside the vocabulary of \(c.vocabSize)")
        }
        let keyBias = try paddingBias(mask, tokens: t, context: "BertModel")
        let x = FloatBuffer(t * d, zeroed: false)
        let w = weights
        for (r, id) in ids.enumerated() {
            let row = x.p + r * d
            w.wordEmbeddings.copyRow(Int(id), into: row)
            for j in 0..<d { row[j] = (row[j] + w.tokenTypeEmbeddings[j]) + w.positionEmbeddings[r * d + j] }
        }
        layerNorm(x.p, rows: t, dim: d, eps: c.layerNormEps, weight: w.embeddingNormW, bias: w.embeddingNormB, x.p, pool: pool)
        trace.emit("bert.embeddings", [t, d], x.p)
        keyBias.withUnsafeBufferPointer { kb in
            encoder.run(x.p, tokens: t, causal: false, bias: mask == nil ? nil : AttentionBias(keys: kb.baseAddress!),
                        pool: pool, trace: trace, traceName: "bert.layer")
        }
        return x.array
    }
}

/// The additive key bias of an attention_mask of `t` values (0 or 1): 0 for a token, `AttentionBias.masked`
/// for padding, as transformers' extended attention mask. nil gives [0] (no mask). Errors name `context`.
func paddingBias(_ mask: [Int32]?, tokens t: Int, context: String) throws -> [Float] {
    guard let mask else { return [0] }
    guard mask.count == t else {
        throw HYError.invalidArgument("\(context): attention mask of \(mask.count) values for \(t) tokens")
    }
    return try mask.map { m in
        guard m == 0 || m == 1 else { throw HYError.invalidArgument("\(context): attention mask value \(m) (0 or 1 allowed)") }
        return m == 1 ? 0 : AttentionBias.masked
    }
}

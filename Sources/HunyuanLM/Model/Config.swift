import HunyuanNN
#if canImport(Glibc)
import Glibc
#endif

/// The Hunyuan architectures this engine runs, by the `architectures` entry of config.json.
public enum HunyuanArchitecture: String, Sendable, CaseIterable {
    /// Hunyuan-Large (Tencent's modeling_hunyuan.py): MoE + shared expert, CLA, QK-norm.
    case large = "HunYuanForCausalLM"
    /// Hunyuan-A13B (transformers hunyuan_v1_moe): MoE + shared expert, QK-norm, never CLA.
    case moeV1 = "HunYuanMoEV1ForCausalLM"
    /// Dense Hunyuan 0.5B–7B (transformers hunyuan_v1_dense): one SwiGLU MLP per layer.
    case denseV1 = "HunYuanDenseV1ForCausalLM"
}

/// A model's shape and options, decoded from config.json with every key spelling the released
/// checkpoints use (`rope_scaling` or `rope_parameters`, `rope_theta` at top level or inside it,
/// ints or per-layer lists for moe_topk / moe_intermediate_size / num_shared_expert).
public struct HunyuanConfig: Sendable, Equatable {
    public var architecture: HunyuanArchitecture
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeAlpha: Double
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var useQKNorm: Bool
    public var useCLA: Bool
    public var claShareFactor: Int
    public var numExperts: Int
    /// Per layer (count numLayers).
    public var moeTopK: [Int]
    /// Width of each routed expert, per layer.
    public var moeIntermediate: [Int]
    /// Number of shared experts per layer (0 = none); the shared MLP is intermediate × this wide.
    public var numSharedExpert: [Int]
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    public var isMoE: Bool { architecture != .denseV1 }
    /// Renormalize routing weights over the chosen experts (Large top-1 keeps the raw probability).
    public func renormalizeRouting(layer: Int) -> Bool {
        architecture == .moeV1 || moeTopK[layer] > 1
    }
    /// Layers sharing one K/V (1 without CLA).
    public var kvShare: Int { useCLA ? max(1, claShareFactor) : 1 }
    public var kvGroups: Int { (numLayers + kvShare - 1) / kvShare }
    public func ownsKV(layer: Int) -> Bool { layer % kvShare == 0 }
    public var sharedMLPWidth: [Int] { numSharedExpert.map { $0 * intermediateSize } }
    /// RoPE base with the NTK alpha: theta · alpha^(d / (d − 2)).
    public var ropeBase: Double {
        ropeAlpha == 1 || headDim <= 2 ? ropeTheta : ropeTheta * pow(ropeAlpha, Double(headDim) / Double(headDim - 2))
    }

    /// Decodes config.json bytes. `context` names the file in errors.
    public static func decode(_ json: JSONValue, context: String) throws -> HunyuanConfig {
        func bad(_ m: String) -> HYError { HYError.format("\(context): \(m)") }
        guard case .object = json else { throw bad("not a JSON object") }
        // "architectures" names the class; configs without it fall back on model_type.
        let byModelType = ["hunyuan": HunyuanArchitecture.large.rawValue, "hunyuan_v1_moe": HunyuanArchitecture.moeV1.rawValue,
                           "hunyuan_v1_dense": HunyuanArchitecture.denseV1.rawValue]
        let archName = json["architectures"]?.arrayValue?.first?.stringValue
            ?? json["model_type"]?.stringValue.map { byModelType[$0] ?? "model_type \($0)" }
        guard let archName else { throw bad("no \"architectures\" or \"model_type\" entry") }
        guard let arch = HunyuanArchitecture(rawValue: archName) else {
            throw HYError.unsupported("\(context): architecture \(archName) is not supported (supported: \(HunyuanArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        func int(_ k: String) throws -> Int {
            guard let v = json[k] else { throw bad("missing key \(k)") }
            guard let i = v.intValue, i >= 0, i <= Int64(Int32.max) else { throw bad("\(k) is not a non-negative integer") }
            return Int(i)
        }
        func optInt(_ k: String) throws -> Int? { json[k] == nil || json[k] == .null ? nil : try int(k) }
        func bool(_ k: String, _ d: Bool) throws -> Bool {
            guard let v = json[k], v != .null else { return d }
            guard let b = v.boolValue else { throw bad("\(k) is not a boolean") }
            return b
        }
        func double(_ v: JSONValue?, _ k: String) throws -> Double? {
            guard let v, v != .null else { return nil }
            guard let d = v.doubleValue else { throw bad("\(k) is not a number") }
            return d
        }
        let layers = try int("num_hidden_layers")
        /// An int or a per-layer list.
        func perLayer(_ k: String, _ d: Int?) throws -> [Int] {
            guard let v = json[k], v != .null else {
                guard let d else { throw bad("missing key \(k)") }
                return Array(repeating: d, count: layers)
            }
            if let i = v.intValue, i >= 0 { return Array(repeating: Int(i), count: layers) }
            guard let a = v.arrayValue else { throw bad("\(k) is neither an integer nor a list") }
            let vals = try a.map { e -> Int in
                guard let i = e.intValue, i >= 0, i <= Int64(Int32.max) else { throw bad("\(k) holds a non-integer") }
                return Int(i)
            }
            if vals.count == 1 { return Array(repeating: vals[0], count: layers) }
            guard vals.count == layers else { throw bad("\(k) has \(vals.count) entries for \(layers) layers") }
            return vals
        }

        let hidden = try int("hidden_size")
        let heads = try int("num_attention_heads")
        guard hidden > 0, heads > 0, layers > 0 else { throw bad("hidden_size, num_attention_heads and num_hidden_layers must be positive") }
        let kvHeads = try optInt("num_key_value_heads") ?? heads
        let headDim = try optInt("head_dim") ?? optInt("attention_head_dim") ?? (hidden / heads)
        guard kvHeads > 0, heads % kvHeads == 0 else { throw bad("num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)") }
        guard headDim > 0, headDim % 2 == 0 else { throw bad("head_dim \(headDim) must be positive and even") }
        let inter = try int("intermediate_size")
        let vocab = try int("vocab_size")
        guard vocab > 0 else { throw bad("vocab_size must be positive") }

        let rope = json["rope_scaling"].flatMap { $0 == .null ? nil : $0 } ?? json["rope_parameters"]
        let theta = try double(json["rope_theta"], "rope_theta") ?? double(rope?["rope_theta"], "rope_parameters.rope_theta") ?? 10000
        let alpha = try double(rope?["alpha"], "rope_scaling.alpha") ?? 1
        guard theta > 0, alpha > 0 else { throw bad("rope_theta and alpha must be positive") }

        let isV1 = arch != .large
        let numExperts = arch == .denseV1 ? 0 : try int("num_experts")
        var topk: [Int] = []
        var moeInter: [Int] = []
        var shared: [Int] = []
        var useCLA = false
        var claFactor = 1
        if arch != .denseV1 {
            topk = try perLayer("moe_topk", nil)
            moeInter = try perLayer("moe_intermediate_size", inter)
            shared = try perLayer("num_shared_expert", 1)
            let mixed = try bool("use_mixed_mlp_moe", true)
            if !mixed { shared = Array(repeating: 0, count: layers) }
            for (l, k) in topk.enumerated() where k < 1 || k > numExperts {
                throw bad("moe_topk \(k) at layer \(l) is outside 1...num_experts (\(numExperts))")
            }
        } else {
            moeInter = Array(repeating: inter, count: layers)
        }
        if arch == .large {
            useCLA = try bool("use_cla", false)
            claFactor = try optInt("cla_share_factor") ?? 1
            if useCLA && claFactor < 1 { throw bad("cla_share_factor must be ≥ 1") }
        }
        let qkNorm = isV1 ? try bool("use_qk_norm", true) : try bool("use_qk_norm", false)
        let eps = try double(json["rms_norm_eps"], "rms_norm_eps") ?? 1e-5
        var eos: [Int] = []
        if let e = json["eos_token_id"] {
            if let i = e.intValue { eos = [Int(i)] } else if let a = e.arrayValue { eos = a.compactMap { $0.intValue.map(Int.init) } }
        }
        return HunyuanConfig(
            architecture: arch, hiddenSize: hidden, numLayers: layers, numHeads: heads, numKVHeads: kvHeads,
            headDim: headDim, intermediateSize: inter, vocabSize: vocab,
            maxPositionEmbeddings: try optInt("max_position_embeddings") ?? 4096,
            rmsNormEps: Float(eps), ropeTheta: theta, ropeAlpha: alpha,
            tieWordEmbeddings: try bool("tie_word_embeddings", true), attentionBias: try bool("attention_bias", false),
            useQKNorm: qkNorm, useCLA: useCLA, claShareFactor: claFactor, numExperts: numExperts,
            moeTopK: topk, moeIntermediate: moeInter, numSharedExpert: shared,
            bosTokenId: try optInt("bos_token_id"), eosTokenIds: eos)
    }

    /// Reads and decodes `dir/config.json`.
    public static func load(directory dir: String) throws -> HunyuanConfig {
        let path = FileSystem.join(dir, "config.json")
        guard FileSystem.exists(path) else { throw HYError.io("\(path): no such file") }
        return try decode(try JSONValue.parse(contentsOf: path), context: path)
    }
}

/// Sampling defaults and stop tokens from generation_config.json (all keys optional).
public struct GenerationConfig: Sendable, Equatable {
    public var eosTokenIds: [Int] = []
    /// The file's sampling defaults (`do_sample` false → greedy, as transformers).
    public var sampler: SamplerParams = {
        var p = SamplerParams()
        p.greedy = true
        return p
    }()

    public init() {}

    public static func decode(_ json: JSONValue, context: String) throws -> GenerationConfig {
        var g = GenerationConfig()
        guard case .object = json else { throw HYError.format("\(context): not a JSON object") }
        if let e = json["eos_token_id"] {
            if let i = e.intValue { g.eosTokenIds = [Int(i)] } else if let a = e.arrayValue { g.eosTokenIds = a.compactMap { $0.intValue.map(Int.init) } }
        }
        if let b = json["do_sample"]?.boolValue { g.sampler.greedy = !b }
        if let v = json["temperature"]?.doubleValue { g.sampler.temperature = Float(v) }
        if let v = json["top_k"]?.intValue { g.sampler.topK = Int(max(0, v)) }
        if let v = json["top_p"]?.doubleValue { g.sampler.topP = Float(v) }
        if let v = json["min_p"]?.doubleValue { g.sampler.minP = Float(v) }
        if let v = json["repetition_penalty"]?.doubleValue { g.sampler.repetitionPenalty = Float(v) }
        return g
    }

    /// `dir/generation_config.json`, or defaults when the file is absent.
    public static func load(directory dir: String) throws -> GenerationConfig {
        let path = FileSystem.join(dir, "generation_config.json")
        guard FileSystem.exists(path) else { return GenerationConfig() }
        return try decode(try JSONValue.parse(contentsOf: path), context: path)
    }
}

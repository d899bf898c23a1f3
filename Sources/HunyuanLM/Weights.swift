import HunyuanCore

/// The one table of checkpoint tensor names and shapes for all Hunyuan LM architectures, as Tencent
/// and Hugging Face save them. Everything else in the engine refers to `LayerWeights` fields.
enum WeightNames {
    static let embed = "model.embed_tokens.weight"
    static let norm = "model.norm.weight"
    static let lmHead = "lm_head.weight"
    static func layer(_ l: Int, _ suffix: String) -> String { "model.layers.\(l).\(suffix)" }
    static func expert(_ l: Int, _ e: Int, _ proj: String) -> String { layer(l, "mlp.experts.\(e).\(proj).weight") }

    /// Every tensor the config requires, with its shape: (name, shape).
    static func expected(_ c: HunyuanConfig, hasLMHead: Bool) -> [(String, [Int])] {
        let d = c.hiddenSize, hd = c.headDim
        var out: [(String, [Int])] = [(embed, [c.vocabSize, d]), (norm, [d])]
        if hasLMHead { out.append((lmHead, [c.vocabSize, d])) }
        for l in 0..<c.numLayers {
            out.append((layer(l, "input_layernorm.weight"), [d]))
            out.append((layer(l, "post_attention_layernorm.weight"), [d]))
            out.append((layer(l, "self_attn.q_proj.weight"), [c.numHeads * hd, d]))
            out.append((layer(l, "self_attn.o_proj.weight"), [d, c.numHeads * hd]))
            if c.ownsKV(layer: l) {
                out.append((layer(l, "self_attn.k_proj.weight"), [c.numKVHeads * hd, d]))
                out.append((layer(l, "self_attn.v_proj.weight"), [c.numKVHeads * hd, d]))
            }
            if c.attentionBias {
                out.append((layer(l, "self_attn.q_proj.bias"), [c.numHeads * hd]))
                out.append((layer(l, "self_attn.o_proj.bias"), [d]))
                if c.ownsKV(layer: l) {
                    out.append((layer(l, "self_attn.k_proj.bias"), [c.numKVHeads * hd]))
                    out.append((layer(l, "self_attn.v_proj.bias"), [c.numKVHeads * hd]))
                }
            }
            if c.useQKNorm {
                out.append((layer(l, "self_attn.query_layernorm.weight"), [hd]))
                out.append((layer(l, "self_attn.key_layernorm.weight"), [hd]))
            }
            if c.isMoE {
                out.append((layer(l, "mlp.gate.wg.weight"), [c.numExperts, d]))
                let w = c.moeIntermediate[l]
                for e in 0..<c.numExperts {
                    out.append((expert(l, e, "gate_proj"), [w, d]))
                    out.append((expert(l, e, "up_proj"), [w, d]))
                    out.append((expert(l, e, "down_proj"), [d, w]))
                }
                let s = c.sharedMLPWidth[l]
                if s > 0 {
                    out.append((layer(l, "mlp.shared_mlp.gate_proj.weight"), [s, d]))
                    out.append((layer(l, "mlp.shared_mlp.up_proj.weight"), [s, d]))
                    out.append((layer(l, "mlp.shared_mlp.down_proj.weight"), [d, s]))
                }
            } else {
                let w = c.intermediateSize
                out.append((layer(l, "mlp.gate_proj.weight"), [w, d]))
                out.append((layer(l, "mlp.up_proj.weight"), [w, d]))
                out.append((layer(l, "mlp.down_proj.weight"), [d, w]))
            }
        }
        return out
    }

    /// Stored tensors the engine does not need and may ignore (rotary caches saved by old code).
    static func isIgnorable(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    /// The per-channel scale of an FP8 matrix: `<module>.weight` → `<module>.weight_scale`.
    static func scale(of weight: String) -> String { weight + "_scale" }

    /// True for `<module>.weight_scale` when `<module>.weight` is stored as F8_E4M3.
    static func isScale(_ name: String, of lookup: (String) -> Tensor?) -> Bool {
        guard name.hasSuffix(".weight_scale") else { return false }
        return lookup(String(name.dropLast("_scale".count)))?.dtype == .f8e4m3
    }
}

/// A SwiGLU MLP: down(silu(gate·x) ⊙ up·x).
struct MLPWeights: @unchecked Sendable {
    let gate: WeightMatrix
    let up: WeightMatrix
    let down: WeightMatrix
    var width: Int { gate.rows }
}

struct LayerWeights: @unchecked Sendable {
    let inputNorm: [Float]
    let postNorm: [Float]
    let q: WeightMatrix
    let o: WeightMatrix
    /// Present on layers that own their K/V (all layers without CLA).
    let k: WeightMatrix?
    let v: WeightMatrix?
    let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?, oBias: [Float]?
    let queryNorm: [Float]?
    let keyNorm: [Float]?
    /// MoE: router [experts, hidden], experts, shared MLP (nil when none). Dense: `mlp`.
    let router: WeightMatrix?
    let experts: [MLPWeights]
    let shared: MLPWeights?
    let mlp: MLPWeights?
}

/// All weights of a model, borrowed from the mapped checkpoint (norm vectors and biases are small
/// fp32 copies). Immutable; shareable across threads.
final class ModelWeights: @unchecked Sendable {
    let checkpoint: Checkpoint
    let embed: WeightMatrix
    let norm: [Float]
    let lmHead: WeightMatrix
    let layers: [LayerWeights]
    /// Parameters implied by the config (quantized tensors count weights, not bytes).
    let parameterCount: Int
    /// Storage format(s) of the matrices, e.g. "q4_k", "bf16", "q4_k+f32".
    let weightType: String

    init(config c: HunyuanConfig, checkpoint ck: Checkpoint) throws {
        checkpoint = ck
        // Tied embeddings (the default) read the LM head from embed_tokens, as transformers does even
        // when a copy of lm_head.weight was saved; untied ones need lm_head.weight.
        let hasLMHead = !c.tieWordEmbeddings
        let expected = WeightNames.expected(c, hasLMHead: hasLMHead)
        var shapes: [String: [Int]] = [:]
        for (n, s) in expected { shapes[n] = s }
        parameterCount = expected.reduce(0) { $0 + $1.1.reduce(1, *) }
        // Config and weights must agree: every expected tensor with its shape, nothing unexplained.
        // Quantized matrices (Quantization.swift) are U8 [rows, blocks, blockBytes]; WeightMatrix
        // checks them against the implied [rows, cols] below.
        for (n, s) in expected {
            guard let t = ck.tensor(n) else { throw HYError.format("\(ck.path): missing tensor \(n) (expected shape \(s))") }
            let quantized = s.count == 2 && t.dtype == .u8 && t.shape.count == 3 && t.shape[0] == s[0]
            guard t.shape == s || quantized else { throw HYError.format("\(ck.path): tensor \(n) has shape \(t.shape), config implies \(s)") }
        }
        for t in ck.tensors where shapes[t.name] == nil && !WeightNames.isIgnorable(t.name)
            && !(t.name == WeightNames.lmHead && c.tieWordEmbeddings)
            && !WeightNames.isScale(t.name, of: { ck.tensor($0) }) {
            throw HYError.format("\(ck.path): unexpected tensor \(t.name) for this config (\(c.architecture.rawValue), use_cla \(c.useCLA))")
        }
        func mat(_ n: String) throws -> WeightMatrix {
            let t = try ck.require(n)
            let s = shapes[n] ?? t.shape
            return try WeightMatrix(t, rows: s[0], cols: s.count > 1 ? s[1] : 1,
                                    scale: t.dtype == .f8e4m3 ? try ck.require(WeightNames.scale(of: n)) : nil)
        }
        func vec(_ n: String) throws -> [Float] {
            let t = try ck.require(n)
            guard t.dtype.isFloat else { throw HYError.format("\(ck.path): tensor \(n) is not a float tensor") }
            return t.floats()
        }
        func mlp(_ prefix: (String) -> String) throws -> MLPWeights {
            MLPWeights(gate: try mat(prefix("gate_proj")), up: try mat(prefix("up_proj")), down: try mat(prefix("down_proj")))
        }
        embed = try mat(WeightNames.embed)
        norm = try vec(WeightNames.norm)
        lmHead = hasLMHead ? try mat(WeightNames.lmHead) : embed
        var ls: [LayerWeights] = []
        for l in 0..<c.numLayers {
            let L = { (s: String) in WeightNames.layer(l, s) }
            let owns = c.ownsKV(layer: l)
            let bias = c.attentionBias
            ls.append(LayerWeights(
                inputNorm: try vec(L("input_layernorm.weight")), postNorm: try vec(L("post_attention_layernorm.weight")),
                q: try mat(L("self_attn.q_proj.weight")), o: try mat(L("self_attn.o_proj.weight")),
                k: owns ? try mat(L("self_attn.k_proj.weight")) : nil,
                v: owns ? try mat(L("self_attn.v_proj.weight")) : nil,
                qBias: bias ? try vec(L("self_attn.q_proj.bias")) : nil,
                kBias: bias && owns ? try vec(L("self_attn.k_proj.bias")) : nil,
                vBias: bias && owns ? try vec(L("self_attn.v_proj.bias")) : nil,
                oBias: bias ? try vec(L("self_attn.o_proj.bias")) : nil,
                queryNorm: c.useQKNorm ? try vec(L("self_attn.query_layernorm.weight")) : nil,
                keyNorm: c.useQKNorm ? try vec(L("self_attn.key_layernorm.weight")) : nil,
                router: c.isMoE ? try mat(L("mlp.gate.wg.weight")) : nil,
                experts: c.isMoE ? try (0..<c.numExperts).map { e in try mlp { WeightNames.expert(l, e, $0) } } : [],
                shared: c.isMoE && c.sharedMLPWidth[l] > 0 ? try mlp { L("mlp.shared_mlp.\($0).weight") } : nil,
                mlp: c.isMoE ? nil : try mlp { L("mlp.\($0).weight") }))
        }
        layers = ls
        // The type of the big matrices (the router stays f32 in our quantized files, as in ggml's).
        var formats: [String] = []
        func note(_ m: WeightMatrix?) { if let m, !formats.contains(m.format.rawValue) { formats.append(m.format.rawValue) } }
        note(embed); note(lmHead)
        for l in ls {
            note(l.q); note(l.k); note(l.v); note(l.o)
            for m in l.experts + [l.shared, l.mlp].compactMap({ $0 }) { note(m.gate); note(m.up); note(m.down) }
        }
        weightType = formats.joined(separator: "+")
    }
}

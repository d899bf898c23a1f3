import HunyuanNN

/// The one declaration of the checkpoint tensors of every Hunyuan LM architecture, with the names
/// and shapes Tencent and Hugging Face save them under. Bound to a checkpoint it loads the engine's
/// weights (`ModelWeights`), to the trainer its parameters, to a `WeightTable` the list the quantizer
/// and random checkpoints write. Declaration order is the file order random checkpoints keep.
package func declareHunyuanWeights<B: WeightBinder>(_ c: HunyuanConfig, lmHead: Bool, _ b: B) throws
    -> HunyuanWeightSet<B.Matrix, B.Vector> {
    let d = c.hiddenSize, hd = c.headDim, qw = c.numHeads * hd, kw = c.numKVHeads * hd
    let embed = try b.matrix("model.embed_tokens.weight", rows: c.vocabSize, cols: d)
    let norm = try b.vector("model.norm.weight", d)
    let head = lmHead ? try b.matrix("lm_head.weight", rows: c.vocabSize, cols: d) : nil
    var layers: [HunyuanLayer<B.Matrix, B.Vector>] = []
    for l in 0..<c.numLayers {
        let p = "model.layers.\(l)."
        let owns = c.ownsKV(layer: l), bias = c.attentionBias
        func mlp(_ prefix: String, _ width: Int) throws -> HunyuanMLP<B.Matrix> {
            HunyuanMLP(gate: try b.matrix(prefix + "gate_proj.weight", rows: width, cols: d),
                       up: try b.matrix(prefix + "up_proj.weight", rows: width, cols: d),
                       down: try b.matrix(prefix + "down_proj.weight", rows: d, cols: width))
        }
        let inputNorm = try b.vector(p + "input_layernorm.weight", d)
        let postNorm = try b.vector(p + "post_attention_layernorm.weight", d)
        let q = try b.matrix(p + "self_attn.q_proj.weight", rows: qw, cols: d)
        let o = try b.matrix(p + "self_attn.o_proj.weight", rows: d, cols: qw)
        let k = owns ? try b.matrix(p + "self_attn.k_proj.weight", rows: kw, cols: d) : nil
        let v = owns ? try b.matrix(p + "self_attn.v_proj.weight", rows: kw, cols: d) : nil
        let qBias = bias ? try b.vector(p + "self_attn.q_proj.bias", qw) : nil
        let oBias = bias ? try b.vector(p + "self_attn.o_proj.bias", d) : nil
        let kBias = bias && owns ? try b.vector(p + "self_attn.k_proj.bias", kw) : nil
        let vBias = bias && owns ? try b.vector(p + "self_attn.v_proj.bias", kw) : nil
        let queryNorm = c.useQKNorm ? try b.vector(p + "self_attn.query_layernorm.weight", hd) : nil
        let keyNorm = c.useQKNorm ? try b.vector(p + "self_attn.key_layernorm.weight", hd) : nil
        var router: B.Matrix? = nil, experts: [HunyuanMLP<B.Matrix>] = [], shared: HunyuanMLP<B.Matrix>? = nil
        var dense: HunyuanMLP<B.Matrix>? = nil
        if c.isMoE {
            router = try b.matrix(p + "mlp.gate.wg.weight", rows: c.numExperts, cols: d)
            experts = try (0..<c.numExperts).map { e in try mlp(p + "mlp.experts.\(e).", c.moeIntermediate[l]) }
            if c.sharedMLPWidth[l] > 0 { shared = try mlp(p + "mlp.shared_mlp.", c.sharedMLPWidth[l]) }
        } else {
            dense = try mlp(p + "mlp.", c.intermediateSize)
        }
        layers.append(HunyuanLayer(inputNorm: inputNorm, postNorm: postNorm, q: q, o: o, k: k, v: v, qBias: qBias,
                                   kBias: kBias, vBias: vBias, oBias: oBias, queryNorm: queryNorm, keyNorm: keyNorm,
                                   router: router, experts: experts, shared: shared, mlp: dense))
    }
    return HunyuanWeightSet(embed: embed, norm: norm, lmHead: head, layers: layers)
}

/// Stored tensors the engine does not need and may ignore (rotary caches saved by old code; the
/// lm_head copy some tied checkpoints carry).
package func isIgnorableTensor(_ name: String, tied: Bool) -> Bool {
    name.hasSuffix("rotary_emb.inv_freq") || (tied && name == "lm_head.weight")
}

/// A SwiGLU MLP: down(silu(gate·x) ⊙ up·x).
package struct HunyuanMLP<M> {
    package let gate: M
    package let up: M
    package let down: M
}

/// One decoder layer's tensors (nil where the configuration has none).
package struct HunyuanLayer<M, V> {
    package let inputNorm: V
    package let postNorm: V
    package let q: M
    package let o: M
    /// Present on layers that own their K/V (all layers without CLA).
    package let k: M?
    package let v: M?
    package let qBias: V?, kBias: V?, vBias: V?, oBias: V?
    package let queryNorm: V?
    package let keyNorm: V?
    /// MoE: router [experts, hidden], experts, shared MLP (nil when none). Dense: `mlp`.
    package let router: M?
    package let experts: [HunyuanMLP<M>]
    package let shared: HunyuanMLP<M>?
    package let mlp: HunyuanMLP<M>?
}

/// A whole model's tensors.
package struct HunyuanWeightSet<M, V> {
    package let embed: M
    package let norm: V
    /// Untied output matrix (nil when tied to `embed`).
    package let lmHead: M?
    package let layers: [HunyuanLayer<M, V>]
}

package typealias MLPWeights = HunyuanMLP<WeightMatrix>
package typealias LayerWeights = HunyuanLayer<WeightMatrix, [Float]>

extension HunyuanMLP where M == WeightMatrix {
    package var width: Int { gate.rows }
}

/// All weights of a model, borrowed from the mapped checkpoint (norm vectors and biases are small
/// fp32 copies). Immutable; shareable across threads.
package final class ModelWeights: @unchecked Sendable {
    package let checkpoint: Checkpoint
    package let embed: WeightMatrix
    package let norm: [Float]
    package let lmHead: WeightMatrix
    package let layers: [LayerWeights]
    /// Parameters implied by the config (quantized tensors count weights, not bytes).
    package let parameterCount: Int
    /// Storage format(s) of the matrices, e.g. "q4_k", "bf16", "q4_k+f32".
    package let weightType: String

    package init(config c: HunyuanConfig, checkpoint ck: Checkpoint) throws {
        checkpoint = ck
        // Tied embeddings (the default) read the LM head from embed_tokens, as transformers does even
        // when a copy of lm_head.weight was saved; untied ones need lm_head.weight.
        let hasLMHead = !c.tieWordEmbeddings
        parameterCount = try WeightTable { _ = try declareHunyuanWeights(c, lmHead: hasLMHead, $0) }.parameterCount
        // Config and weights must agree: every declared tensor with its shape, nothing unexplained.
        let binder = CheckpointBinder(ck)
        let w = try declareHunyuanWeights(c, lmHead: hasLMHead, binder)
        try binder.finish(ignorable: { isIgnorableTensor($0, tied: c.tieWordEmbeddings) },
                          context: "this config (\(c.architecture.rawValue), use_cla \(c.useCLA))")
        embed = w.embed
        norm = w.norm
        lmHead = w.lmHead ?? w.embed
        layers = w.layers
        // The type of the big matrices (the router stays f32 in our quantized files, as in ggml's).
        var formats: [String] = []
        func note(_ m: WeightMatrix?) { if let m, !formats.contains(m.format.rawValue) { formats.append(m.format.rawValue) } }
        note(embed); note(lmHead)
        for l in layers {
            note(l.q); note(l.k); note(l.v); note(l.o)
            for m in l.experts + [l.shared, l.mlp].compactMap({ $0 }) { note(m.gate); note(m.up); note(m.down) }
        }
        weightType = formats.joined(separator: "+")
    }
}

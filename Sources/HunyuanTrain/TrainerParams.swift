import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// Which learning rate a parameter trains at (Hunyuan-Large's expert-specific learning rates).
public enum ParamGroup: String, Sendable, CaseIterable {
    /// Attention, norms, router, embedding: the base rate ε(B).
    case dense
    /// The shared expert: ε(B), the whole batch passes through it.
    case sharedExpert = "shared_expert"
    /// A routed expert, which sees about B·k/n tokens: ε(B·k/n).
    case routedExpert = "routed_expert"
}

/// A trainable fp32 tensor under its official checkpoint name: value, gradient and AdamW moments.
final class Param: @unchecked Sendable {
    let name: String
    let shape: [Int]
    let count: Int
    let group: ParamGroup
    /// Weight decay applies to matrices only (not norm weights).
    var decays: Bool { shape.count >= 2 }
    let value: FloatBuffer
    let grad: FloatBuffer
    let m: FloatBuffer
    let v: FloatBuffer
    /// Frozen parameters get no gradient and no update (LoRA fine-tuning freezes the base model).
    var frozen = false
    /// A low-rank adapter trained in place of this weight (LoRA), if any.
    var adapter: LoRAAdapter? = nil

    init(name: String, shape: [Int], group: ParamGroup) {
        self.name = name
        self.shape = shape
        self.group = group
        count = shape.reduce(1, *)
        value = FloatBuffer(count); grad = FloatBuffer(count); m = FloatBuffer(count); v = FloatBuffer(count)
    }
    var w: UnsafeMutablePointer<Float> { value.p }
    var g: UnsafeMutablePointer<Float> { grad.p }
}

/// The parameters of one SwiGLU MLP and of one decoder layer (K/V only on layers that own them under
/// CLA): the engine's declaration bound to trainable parameters.
typealias TrainMLP = HunyuanMLP<Param>
typealias TrainLayer = HunyuanLayer<Param, Param>

extension HunyuanMLP where M == Param {
    var width: Int { gate.shape[0] }
}

/// Binds the engine's tensor declaration to zero-valued fp32 parameters, in declaration order.
final class ParamBinder: WeightBinder {
    private(set) var params: [Param] = []
    func matrix(_ name: String, shape: [Int]) throws -> Param { add(name, shape) }
    func vector(_ name: String, shape: [Int]) throws -> Param { add(name, shape) }
    private func add(_ name: String, _ shape: [Int]) -> Param {
        let group: ParamGroup = name.contains(".mlp.experts.") ? .routedExpert
            : name.contains(".mlp.shared_mlp.") ? .sharedExpert : .dense
        let p = Param(name: name, shape: shape, group: group)
        params.append(p)
        return p
    }
}

/// All trainable parameters of a Hunyuan MoE model, named and shaped by the engine's declaration
/// (`declareHunyuanWeights`), so what the trainer saves is what the engine and the official code load.
final class TrainParams: @unchecked Sendable {
    let config: HunyuanConfig
    /// Every model parameter under its official name (what checkpoints hold).
    let all: [Param]
    /// LoRA adapter matrices (empty without LoRA).
    var adapters: [Param] = []
    var byName: [String: Param]
    /// What the optimizer updates: unfrozen parameters and adapters.
    var trainable: [Param] { all.filter { !$0.frozen } + adapters }
    let embed: Param
    let norm: Param
    let layers: [TrainLayer]

    /// Zero-valued parameters for `c`. Supported: the MoE architectures (Large, A13B-style) with tied
    /// embeddings and no attention bias.
    init(config c: HunyuanConfig) throws {
        guard c.isMoE else { throw HYError.unsupported("trainer: dense architectures are not supported (MoE only)") }
        guard c.tieWordEmbeddings else { throw HYError.unsupported("trainer: untied word embeddings are not supported") }
        guard !c.attentionBias else { throw HYError.unsupported("trainer: attention_bias is not supported") }
        config = c
        let binder = ParamBinder()
        let w = try declareHunyuanWeights(c, lmHead: false, binder)
        all = binder.params
        byName = Dictionary(uniqueKeysWithValues: binder.params.map { ($0.name, $0) })
        embed = w.embed
        norm = w.norm
        layers = w.layers
    }

    /// Random initialization as the official code does it (normal(0, initializer_range) for
    /// matrices, ones for norm weights), from a seeded generator.
    func initializeRandom(std: Float, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for p in all {
            if p.shape.count == 1 {
                p.value.p.update(repeating: 1, count: p.count)
            } else {
                for i in 0..<p.count { p.value[i] = std * gaussian(&rng) }
            }
        }
    }

    /// Loads every parameter from a checkpoint with the official names (any float dtype, widened to
    /// fp32). Missing tensors or wrong shapes are `.format` errors naming the tensor.
    func load(from ck: Checkpoint) throws {
        for p in all {
            let t = try ck.require(p.name, shape: p.shape)
            guard t.dtype.isFloat else { throw HYError.format("\(ck.path): tensor \(p.name) is not a float tensor") }
            t.copyFloats(into: p.value.p)
        }
    }

    func zeroGrad() { for p in trainable { p.grad.zero() } }

    var parameterCount: Int { all.reduce(0) { $0 + $1.count } }

    /// The checkpoint items (official names) in `dtype` (f32 or bf16); LoRA adapters are merged into
    /// their weights (W + scale·B·A), so the result loads anywhere unchanged.
    func safetensorsItems(dtype: DType) -> [SafetensorsWriter.Item] {
        all.map { p in
            var values = Array(UnsafeBufferPointer(start: p.value.p, count: p.count))
            if let ad = p.adapter {
                let outF = p.shape[0], inF = p.shape[1]
                values.withUnsafeMutableBufferPointer { w in
                    gemm(transA: false, transB: false, m: outF, n: inF, k: ad.rank, alpha: ad.scale, a: ad.b.w, lda: ad.rank,
                         b: ad.a.w, ldb: inF, beta: 1, c: w.baseAddress!, ldc: inF, pool: nil)
                }
            }
            return SafetensorsWriter.Item(name: p.name, shape: p.shape, floats: values, as: dtype)
        }
    }
}

/// Standard normal sample (Box–Muller) from a SplitMix64 stream.
func gaussian(_ rng: inout SplitMix64) -> Float { rng.gaussian() }

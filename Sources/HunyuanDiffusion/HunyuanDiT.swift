#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

// diffusers' `HunyuanDiT2DModel` (models/transformers/hunyuan_transformer_2d.py, embeddings.py's
// HunyuanCombinedTimestepTextSizeStyleEmbedding and HunyuanDiTAttentionPool, attention_processor.py's
// HunyuanAttnProcessor2_0 and the PAG identity processor): a DiT over 2×2 latent patches with 2-D
// rotary self-attention, cross-attention to BERT + mT5 text tokens, a shift-only AdaNorm, and long
// skip connections from the first half of the blocks to the second.

/// `transformer/config.json` (diffusers' constructor defaults for absent keys).
public struct HunyuanDiTConfig: ComponentConfig, Sendable, Equatable {
    public var numAttentionHeads = 16
    public var attentionHeadDim = 88
    public var inChannels = 4
    public var patchSize = 2
    /// "gelu-approximate" (tanh, the released models) or "gelu" (erf).
    public var activationFn = "gelu-approximate"
    public var sampleSize = 32
    /// Width of the patch embedding and of the conditioning vector; must equal heads × head_dim.
    public var hiddenSize = 1152
    public var numLayers = 28
    public var mlpRatio: Double = 4
    /// Output channels are 2 × in_channels (prediction + learned variance) when set.
    public var learnSigma = true
    public var crossAttentionDim = 1024
    public var normType = "layer_norm"
    public var crossAttentionDimT5 = 2048
    public var pooledProjectionDim = 1024
    public var textLen = 77
    public var textLenT5 = 256
    /// v1.0/v1.1: the size and style conditioning feed the extra embedder (absent key = true).
    public var useStyleCondAndImageMetaSize = true

    enum CodingKeys: String, CodingKey {
        case numAttentionHeads = "num_attention_heads", attentionHeadDim = "attention_head_dim"
        case inChannels = "in_channels", patchSize = "patch_size", activationFn = "activation_fn"
        case sampleSize = "sample_size", hiddenSize = "hidden_size", numLayers = "num_layers", mlpRatio = "mlp_ratio"
        case learnSigma = "learn_sigma", crossAttentionDim = "cross_attention_dim", normType = "norm_type"
        case crossAttentionDimT5 = "cross_attention_dim_t5", pooledProjectionDim = "pooled_projection_dim"
        case textLen = "text_len", textLenT5 = "text_len_t5"
        case useStyleCondAndImageMetaSize = "use_style_cond_and_image_meta_size"
    }

    public init() {}

    /// HunyuanDiT v1.1 (Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers[-Distilled] `transformer/config.json`),
    /// 1,516.5 M parameters.
    public static var v1_1: HunyuanDiTConfig {
        var c = HunyuanDiTConfig()
        c.attentionHeadDim = 88; c.numAttentionHeads = 16; c.hiddenSize = 1408; c.numLayers = 40
        c.mlpRatio = 4.3637; c.sampleSize = 128; c.crossAttentionDim = 1024; c.crossAttentionDimT5 = 2048
        c.pooledProjectionDim = 1024
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numAttentionHeads = try c.decode(.numAttentionHeads, default: numAttentionHeads)
        attentionHeadDim = try c.decode(.attentionHeadDim, default: attentionHeadDim)
        inChannels = try c.decode(.inChannels, default: inChannels)
        patchSize = try c.decode(.patchSize, default: patchSize)
        activationFn = try c.decode(.activationFn, default: activationFn)
        sampleSize = try c.decode(.sampleSize, default: sampleSize)
        hiddenSize = try c.decode(.hiddenSize, default: hiddenSize)
        numLayers = try c.decode(.numLayers, default: numLayers)
        mlpRatio = try c.decode(.mlpRatio, default: mlpRatio)
        learnSigma = try c.decode(.learnSigma, default: learnSigma)
        crossAttentionDim = try c.decode(.crossAttentionDim, default: crossAttentionDim)
        normType = try c.decode(.normType, default: normType)
        crossAttentionDimT5 = try c.decode(.crossAttentionDimT5, default: crossAttentionDimT5)
        pooledProjectionDim = try c.decode(.pooledProjectionDim, default: pooledProjectionDim)
        textLen = try c.decode(.textLen, default: textLen)
        textLenT5 = try c.decode(.textLenT5, default: textLenT5)
        useStyleCondAndImageMetaSize = try c.decode(.useStyleCondAndImageMetaSize, default: useStyleCondAndImageMetaSize)
    }

    /// Width of the blocks (heads × head_dim).
    public var innerDim: Int { numAttentionHeads * attentionHeadDim }
    public var outChannels: Int { learnSigma ? 2 * inChannels : inChannels }
    /// The feed-forward width, int(inner · mlp_ratio) as Python computes it.
    public var ffDim: Int { Int(Double(innerDim) * mlpRatio) }
    /// Text tokens the cross-attention sees: BERT's then mT5's.
    public var textTokens: Int { textLen + textLenT5 }
    /// Heads of the mT5 attention pooler (fixed by diffusers).
    public static let poolerHeads = 8
    /// Width of the extra embedder's input: pooled text [, 6 size sinusoids of 256, style].
    public var extraInDim: Int { pooledProjectionDim + (useStyleCondAndImageMetaSize ? 256 * 6 + hiddenSize : 0) }

    /// Checks the sizes and the supported variants; errors name the key.
    public func validate(context: String = "transformer/config.json") throws {
        func bad(_ m: String) -> HYError { HYError.format("\(context): \(m)") }
        guard numAttentionHeads >= 1, attentionHeadDim >= 2, attentionHeadDim % 2 == 0 else {
            throw bad("num_attention_heads must be ≥ 1 and attention_head_dim even and ≥ 2")
        }
        guard attentionHeadDim % 4 == 0 else { throw bad("attention_head_dim \(attentionHeadDim) is not a multiple of 4 (2-D RoPE)") }
        guard hiddenSize == innerDim else {
            throw bad("hidden_size \(hiddenSize) differs from num_attention_heads × attention_head_dim = \(innerDim)")
        }
        guard inChannels >= 1, patchSize >= 1, numLayers >= 1, mlpRatio > 0, ffDim >= 1 else {
            throw bad("in_channels, patch_size, num_layers and mlp_ratio must be positive")
        }
        guard crossAttentionDim >= 1, crossAttentionDimT5 >= Self.poolerHeads, crossAttentionDimT5 % Self.poolerHeads == 0 else {
            throw bad("cross_attention_dim must be ≥ 1 and cross_attention_dim_t5 a positive multiple of \(Self.poolerHeads)")
        }
        guard pooledProjectionDim >= 1, textLen >= 1, textLenT5 >= 1 else {
            throw bad("pooled_projection_dim, text_len and text_len_t5 must be ≥ 1")
        }
        guard normType == "layer_norm" else { throw HYError.unsupported("\(context): norm_type \(normType) (layer_norm)") }
        guard activationFn == "gelu-approximate" || activationFn == "gelu" else {
            throw HYError.unsupported("\(context): activation_fn \(activationFn) (gelu-approximate, gelu)")
        }
    }
}

/// The tensors of a HunyuanDiT2DModel under diffusers' names, generic over the binder that declared them.
public struct HunyuanDiTWeights<M, V> {
    public struct Attention {
        public let q: LinearLayer<M, V>, k: LinearLayer<M, V>, v: LinearLayer<M, V>, out: LinearLayer<M, V>
        public let normQW: V, normQB: V, normKW: V, normKB: V
    }
    public struct Block {
        /// AdaLayerNormShift: shift = linear(SiLU(c)); LN(x) + shift.
        public let norm1Linear: LinearLayer<M, V>
        public let norm1W: V, norm1B: V
        public let attn1: Attention
        public let norm2W: V, norm2B: V
        public let attn2: Attention
        public let norm3W: V, norm3B: V
        public let ff1: LinearLayer<M, V>, ff2: LinearLayer<M, V>
        /// Blocks past the middle: LN(cat(h, skip)) → skip_linear.
        public let skipNormW: V?, skipNormB: V?
        public let skipLinear: LinearLayer<M, V>?
    }
    /// The patch embedding's convolution as a linear layer over flattened (channel, dy, dx) patches.
    public let patch: LinearLayer<M, V>
    public let textEmbed1: LinearLayer<M, V>, textEmbed2: LinearLayer<M, V>
    /// [text_len + text_len_t5, cross_attention_dim]: the rows that replace masked text positions.
    public let textPadding: V
    public let timeEmbed1: LinearLayer<M, V>, timeEmbed2: LinearLayer<M, V>
    public let poolerPositions: V
    public let poolerQ: LinearLayer<M, V>, poolerK: LinearLayer<M, V>, poolerV: LinearLayer<M, V>, poolerOut: LinearLayer<M, V>
    /// [1, hidden] when size/style conditioning is on.
    public let style: V?
    public let extra1: LinearLayer<M, V>, extra2: LinearLayer<M, V>
    public let blocks: [Block]
    public let normOut: LinearLayer<M, V>
    public let projOut: LinearLayer<M, V>
}

extension HunyuanDiTWeights: Sendable where M: Sendable, V: Sendable {}
extension HunyuanDiTWeights.Block: Sendable where M: Sendable, V: Sendable {}
extension HunyuanDiTWeights.Attention: Sendable where M: Sendable, V: Sendable {}

/// Every tensor of a configuration, named once.
public enum HunyuanDiTTensors {
    public static func declare<B: WeightBinder>(_ c: HunyuanDiTConfig, _ b: B) throws -> HunyuanDiTWeights<B.Matrix, B.Vector> {
        let d = c.innerDim, hd = c.attentionHeadDim, x = c.crossAttentionDim, t5 = c.crossAttentionDimT5
        func attention(_ p: String, kvIn: Int) throws -> HunyuanDiTWeights<B.Matrix, B.Vector>.Attention {
            .init(q: try b.linear(p + ".to_q", in: d, out: d), k: try b.linear(p + ".to_k", in: kvIn, out: d),
                  v: try b.linear(p + ".to_v", in: kvIn, out: d), out: try b.linear(p + ".to_out.0", in: d, out: d),
                  normQW: try b.vector(p + ".norm_q.weight", hd), normQB: try b.vector(p + ".norm_q.bias", hd),
                  normKW: try b.vector(p + ".norm_k.weight", hd), normKB: try b.vector(p + ".norm_k.bias", hd))
        }
        let blocks = try (0..<c.numLayers).map { i -> HunyuanDiTWeights<B.Matrix, B.Vector>.Block in
            let p = "blocks.\(i)"
            let skip = i > c.numLayers / 2
            return .init(
                norm1Linear: try b.linear(p + ".norm1.linear", in: d, out: d),
                norm1W: try b.vector(p + ".norm1.norm.weight", d), norm1B: try b.vector(p + ".norm1.norm.bias", d),
                attn1: try attention(p + ".attn1", kvIn: d),
                norm2W: try b.vector(p + ".norm2.weight", d), norm2B: try b.vector(p + ".norm2.bias", d),
                attn2: try attention(p + ".attn2", kvIn: x),
                norm3W: try b.vector(p + ".norm3.weight", d), norm3B: try b.vector(p + ".norm3.bias", d),
                ff1: try b.linear(p + ".ff.net.0.proj", in: d, out: c.ffDim), ff2: try b.linear(p + ".ff.net.2", in: c.ffDim, out: d),
                skipNormW: skip ? try b.vector(p + ".skip_norm.weight", 2 * d) : nil,
                skipNormB: skip ? try b.vector(p + ".skip_norm.bias", 2 * d) : nil,
                skipLinear: skip ? try b.linear(p + ".skip_linear", in: 2 * d, out: d) : nil)
        }
        let ps = c.patchSize
        return HunyuanDiTWeights(
            patch: LinearLayer(weight: try b.matrix("pos_embed.proj.weight", shape: [c.hiddenSize, c.inChannels, ps, ps]),
                               bias: try b.vector("pos_embed.proj.bias", c.hiddenSize)),
            textEmbed1: try b.linear("text_embedder.linear_1", in: t5, out: 4 * t5),
            textEmbed2: try b.linear("text_embedder.linear_2", in: 4 * t5, out: x),
            textPadding: try b.vector("text_embedding_padding", shape: [c.textTokens, x]),
            timeEmbed1: try b.linear("time_extra_emb.timestep_embedder.linear_1", in: 256, out: c.hiddenSize),
            timeEmbed2: try b.linear("time_extra_emb.timestep_embedder.linear_2", in: c.hiddenSize, out: c.hiddenSize),
            poolerPositions: try b.vector("time_extra_emb.pooler.positional_embedding", shape: [c.textLenT5 + 1, t5]),
            poolerQ: try b.linear("time_extra_emb.pooler.q_proj", in: t5, out: t5),
            poolerK: try b.linear("time_extra_emb.pooler.k_proj", in: t5, out: t5),
            poolerV: try b.linear("time_extra_emb.pooler.v_proj", in: t5, out: t5),
            poolerOut: try b.linear("time_extra_emb.pooler.c_proj", in: t5, out: c.pooledProjectionDim),
            style: c.useStyleCondAndImageMetaSize ? try b.vector("time_extra_emb.style_embedder.weight", shape: [1, c.hiddenSize]) : nil,
            extra1: try b.linear("time_extra_emb.extra_embedder.linear_1", in: c.extraInDim, out: 4 * c.hiddenSize),
            extra2: try b.linear("time_extra_emb.extra_embedder.linear_2", in: 4 * c.hiddenSize, out: c.hiddenSize),
            blocks: blocks,
            normOut: try b.linear("norm_out.linear", in: d, out: 2 * d),
            projOut: try b.linear("proj_out", in: d, out: ps * ps * c.outChannels))
    }
}

/// The step-independent conditioning of a batch: the cross-attention tokens (BERT states, projected
/// mT5 states, masked positions replaced by the learned padding) and the extra-embedder half of the
/// conditioning vector (pooled mT5, size, style). Made once per prompt by `HunyuanDiT2DModel.condition`.
public struct HunyuanDiTCondition: Sendable {
    public let batch: Int
    /// [batch, text_len + text_len_t5, cross_attention_dim].
    public let text: [Float]
    /// [batch, hidden]: extra_embedder([pooled ‖ size ‖ style]).
    public let extra: [Float]
    /// [batch, pooled_projection_dim] (for inspection).
    public let pooled: [Float]
    /// [batch, extra_in_dim]: the extra embedder's input (for inspection).
    public let extraInput: [Float]
}

/// A HunyuanDiT2DModel over its bound weights. Immutable; one forward at a time per call site
/// (every call allocates its own activations), shareable across threads.
public final class HunyuanDiT2DModel: @unchecked Sendable {
    public let config: HunyuanDiTConfig
    public let weights: HunyuanDiTWeights<WeightMatrix, [Float]>
    /// How the products are computed (the weights' bf16 forms are made at load for `.bf16`).
    public let compute: ComputePrecision

    /// Reads `folder/config.json` (validated) and the folder's weights (`diffusion_pytorch_model
    /// [.variant].safetensors` or sharded); `compute` as `CheckpointBinder.compute`.
    public convenience init(folder: String, variant: String? = nil, compute: ComputePrecision = .fp32) throws {
        let (config, ck) = try Component.open(HunyuanDiTConfig.self, folder, variant: variant)
        try self.init(config: config, checkpoint: ck, compute: compute)
    }

    /// Binds `checkpoint` to the declaration of `config`: missing, misshapen and left-over tensors are
    /// `HYError.format` naming the file and tensor.
    public convenience init(config: HunyuanDiTConfig, checkpoint ck: Checkpoint, compute: ComputePrecision = .fp32) throws {
        let w = try Component.load(ck, context: "this HunyuanDiT configuration", compute: compute) {
            try HunyuanDiTTensors.declare(config, $0)
        }
        try self.init(config: config, weights: w, compute: compute)
    }

    /// A model over weights bound elsewhere (e.g. random weights for benchmarks).
    public init(config: HunyuanDiTConfig, weights: HunyuanDiTWeights<WeightMatrix, [Float]>,
                compute: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.weights = weights
        self.compute = compute
    }

    /// The step-independent conditioning (diffusers HT:476-487 and EM:1210-1268 without the timestep).
    /// - bert: [batch, text_len, cross_attention_dim] and bertMask [batch, text_len] (nonzero = token);
    /// - t5: [batch, text_len_t5, cross_attention_dim_t5] and t5Mask [batch, text_len_t5];
    /// - imageMetaSize: [batch, 6] (original size, target size, crop top-left), ignored without size
    ///   conditioning. The attention pooler sees every mT5 position, masked or not (as the reference).
    public func condition(batch: Int, bert: [Float], bertMask: [Int32], t5: [Float], t5Mask: [Int32],
                          imageMetaSize: [Float], pool: ThreadPool?) throws -> HunyuanDiTCondition {
        let c = config, w = weights, x = c.crossAttentionDim, t5d = c.crossAttentionDimT5
        let l1 = c.textLen, l2 = c.textLenT5, lt = c.textTokens
        guard batch >= 1, bert.count == batch * l1 * x, bertMask.count == batch * l1, t5.count == batch * l2 * t5d,
              t5Mask.count == batch * l2, imageMetaSize.count == batch * 6 else {
            throw HYError.invalidArgument("HunyuanDiT condition: batch \(batch) needs BERT states \(batch)×\(l1)×\(x) and mask \(batch)×\(l1), mT5 states \(batch)×\(l2)×\(t5d) and mask \(batch)×\(l2), image meta size \(batch)×6")
        }
        // Text tokens: [BERT ‖ text_embedder(mT5)], masked positions ← padding rows.
        var text = [Float](repeating: 0, count: batch * lt * x)
        let hidden = FloatBuffer(batch * l2 * 4 * t5d, zeroed: false), proj = FloatBuffer(batch * l2 * x, zeroed: false)
        t5.withUnsafeBufferPointer { w.textEmbed1.forward($0.baseAddress!, rows: batch * l2, hidden.p, pool: pool) }
        siluInPlace(hidden.p, batch * l2 * 4 * t5d)
        w.textEmbed2.forward(hidden.p, rows: batch * l2, proj.p, pool: pool)
        for b in 0..<batch {
            for r in 0..<lt {
                let keep = r < l1 ? bertMask[b * l1 + r] != 0 : t5Mask[b * l2 + r - l1] != 0
                for j in 0..<x {
                    text[(b * lt + r) * x + j] = !keep ? w.textPadding[r * x + j]
                        : r < l1 ? bert[(b * l1 + r) * x + j] : proj.p[(b * l2 + r - l1) * x + j]
                }
            }
        }
        // Attention pooling of the raw mT5 states: one query (their mean), 8 heads, over [mean; tokens] + positions.
        let pd = c.pooledProjectionDim, heads = HunyuanDiTConfig.poolerHeads, hd = t5d / heads
        var pooled = [Float](repeating: 0, count: batch * pd)
        let z = FloatBuffer((l2 + 1) * t5d, zeroed: false)
        let k = FloatBuffer((l2 + 1) * t5d, zeroed: false), v = FloatBuffer((l2 + 1) * t5d, zeroed: false)
        let q = FloatBuffer(t5d, zeroed: false), o = FloatBuffer(t5d, zeroed: false)
        for b in 0..<batch {
            for j in 0..<t5d {
                var s = 0.0
                for r in 0..<l2 { s += Double(t5[(b * l2 + r) * t5d + j]) }
                z.p[j] = Float(s / Double(l2)) + w.poolerPositions[j]
            }
            for r in 0..<l2 {
                for j in 0..<t5d { z.p[(r + 1) * t5d + j] = t5[(b * l2 + r) * t5d + j] + w.poolerPositions[(r + 1) * t5d + j] }
            }
            w.poolerQ.forward(z.p, rows: 1, q.p, pool: pool)
            w.poolerK.forward(z.p, rows: l2 + 1, k.p, pool: pool)
            w.poolerV.forward(z.p, rows: l2 + 1, v.p, pool: pool)
            attention(q: q.p, qStride: t5d, nq: 1, keys: k.p, kStride: t5d, values: v.p, vStride: t5d, nk: l2 + 1,
                      heads: heads, kvHeads: heads, headDim: hd, scale: 1 / Float(hd).squareRoot(), out: o.p, outStride: t5d,
                      pool: pool)
            pooled.withUnsafeMutableBufferPointer { w.poolerOut.forward(o.p, rows: 1, $0.baseAddress! + b * pd, pool: pool) }
        }
        // extra_embedder([pooled ‖ size sinusoids ‖ style]).
        let ein = c.extraInDim, hs = c.hiddenSize
        var extraInput = [Float](repeating: 0, count: batch * ein)
        extraInput.withUnsafeMutableBufferPointer { e in
            for b in 0..<batch {
                let row = e.baseAddress! + b * ein
                for j in 0..<pd { row[j] = pooled[b * pd + j] }
                guard c.useStyleCondAndImageMetaSize, let style = w.style else { continue }
                timestepEmbedding(Array(imageMetaSize[(b * 6)..<(b * 6 + 6)]), dim: 256, flipSinToCos: true,
                                  downscaleFreqShift: 0, row + pd)
                for j in 0..<hs { row[pd + 1536 + j] = style[j] }
            }
        }
        let mid = FloatBuffer(batch * 4 * hs, zeroed: false)
        var extra = [Float](repeating: 0, count: batch * hs)
        extraInput.withUnsafeBufferPointer { w.extra1.forward($0.baseAddress!, rows: batch, mid.p, pool: pool) }
        siluInPlace(mid.p, batch * 4 * hs)
        extra.withUnsafeMutableBufferPointer { w.extra2.forward(mid.p, rows: batch, $0.baseAddress!, pool: pool) }
        return HunyuanDiTCondition(batch: batch, text: text, extra: extra, pooled: pooled, extraInput: extraInput)
    }

    /// The rotary tables of a latent of h × w (`HunyuanDiTRoPE.tables` of its (h/p) × (w/p) token grid).
    public func rotaryTables(latentHeight h: Int, latentWidth w: Int) -> (cos: [Float], sin: [Float]) {
        HunyuanDiTRoPE.tables(gridH: h / config.patchSize, gridW: w / config.patchSize, headDim: config.attentionHeadDim)
    }

    /// One DiT evaluation of `batch` latents at one timestep.
    /// - latents: [batch, in_channels, h, w]; h and w positive multiples of the patch size.
    /// - cond: from `condition` for the same batch.
    /// - rope: cos and sin [(h/p)·(w/p), head_dim] (`rotaryTables`).
    /// - identityAttention: batch rows whose self-attention in `pagLayers` is replaced by PAG's
    ///   identity attention (out = to_out(to_v(x))); the other rows and layers attend normally.
    /// - Returns [batch, out_channels, h, w] (the prediction then, with learn_sigma, the variance).
    /// - shouldStop: polled before each block; true throws `HYError.aborted`.
    public func forward(latents: [Float], batch: Int, height h: Int, width wd: Int, timestep: Float,
                        cond: HunyuanDiTCondition, rope: (cos: [Float], sin: [Float]),
                        identityAttention: [Bool] = [], pagLayers: Set<Int> = [], pool: ThreadPool?,
                        trace: Trace? = nil, shouldStop: (() -> Bool)? = nil) throws -> [Float] {
        let c = config, w = weights, ps = c.patchSize, d = c.innerDim, ci = c.inChannels
        guard batch >= 1, cond.batch == batch, h > 0, wd > 0, h % ps == 0, wd % ps == 0,
              latents.count == batch * ci * h * wd else {
            throw HYError.invalidArgument("HunyuanDiT: latents of \(latents.count) values for batch \(batch) × \(ci) × \(h) × \(wd) (sides multiples of \(ps)), conditioning for batch \(cond.batch)")
        }
        let gh = h / ps, gw = wd / ps, n = gh * gw, rows = batch * n, hd = c.attentionHeadDim
        guard rope.cos.count == n * hd, rope.sin.count == n * hd else {
            throw HYError.invalidArgument("HunyuanDiT: rotary tables of \(rope.cos.count) values for \(n) tokens × \(hd)")
        }
        guard identityAttention.isEmpty || identityAttention.count == batch else {
            throw HYError.invalidArgument("HunyuanDiT: identityAttention has \(identityAttention.count) entries for batch \(batch)")
        }
        // Patches → tokens [rows, D].
        let kk = ci * ps * ps
        let patches = FloatBuffer(rows * kk, zeroed: false)
        latents.withUnsafeBufferPointer { lat in
            for b in 0..<batch {
                for gy in 0..<gh {
                    for gx in 0..<gw {
                        let o = patches.p + ((b * gh + gy) * gw + gx) * kk
                        for ch in 0..<ci {
                            for dy in 0..<ps {
                                for dx in 0..<ps {
                                    o[(ch * ps + dy) * ps + dx] = lat[((b * ci + ch) * h + gy * ps + dy) * wd + gx * ps + dx]
                                }
                            }
                        }
                    }
                }
            }
        }
        let hs = FloatBuffer(rows * d, zeroed: false)
        w.patch.forward(patches.p, rows: rows, hs.p, pool: pool)

        // Conditioning c = timestep_embedder(sinusoid(t)) + extra; SiLU(c) feeds every modulation.
        let sinus = FloatBuffer(256, zeroed: false), tmid = FloatBuffer(d, zeroed: false), temb = FloatBuffer(d, zeroed: false)
        timestepEmbedding([timestep], dim: 256, flipSinToCos: true, downscaleFreqShift: 0, sinus.p)
        w.timeEmbed1.forward(sinus.p, rows: 1, tmid.p, pool: nil)
        siluInPlace(tmid.p, d)
        w.timeEmbed2.forward(tmid.p, rows: 1, temb.p, pool: nil)
        var cvec = [Float](repeating: 0, count: batch * d)
        for b in 0..<batch { for j in 0..<d { cvec[b * d + j] = temb.p[j] + cond.extra[b * d + j] } }
        cvec.withUnsafeBufferPointer { trace.emit("temb", [batch, d], $0.baseAddress!) }
        let siluC = cvec.map { silu($0) }

        let run = HunyuanDiTRun(model: self, batch: batch, tokens: n, cond: cond, rope: rope, pool: pool)
        var skips: [FloatBuffer] = []
        let half = c.numLayers / 2
        for (i, blk) in w.blocks.enumerated() {
            if shouldStop?() == true { throw HYError.aborted("HunyuanDiT: stopped before block \(i)") }
            if let skipLinear = blk.skipLinear, let sw = blk.skipNormW, let sb = blk.skipNormB {
                guard let skip = skips.popLast() else { throw HYError.format("HunyuanDiT: no skip for block \(i)") }
                run.skip(hs.p, skip.p, normW: sw, normB: sb, linear: skipLinear)
            }
            let identity = pagLayers.contains(i) ? identityAttention : []
            run.block(blk, hs.p, siluC: siluC, identity: identity, trace: trace, name: "blocks.\(i)")
            if i < half - 1 {
                let saved = FloatBuffer(rows * d, zeroed: false)
                saved.p.update(from: hs.p, count: rows * d)
                skips.append(saved)
            }
        }
        // norm_out: LN (no affine) · (1 + scale) + shift, [scale | shift] = linear(SiLU(c)); proj_out; unpatchify.
        let mod = FloatBuffer(batch * 2 * d, zeroed: false)
        siluC.withUnsafeBufferPointer { w.normOut.forward($0.baseAddress!, rows: batch, mod.p, pool: nil) }
        for b in 0..<batch {  // to adaNormModulate's [shift | scale]
            let m = mod.p + b * 2 * d
            for j in 0..<d { let s = m[j]; m[j] = m[d + j]; m[d + j] = s }
        }
        let normed = FloatBuffer(rows * d, zeroed: false)
        layerNorm(hs.p, rows: rows, dim: d, eps: 1e-6, weight: nil, bias: nil, normed.p, pool: pool)
        adaNormModulate(normed.p, shiftScale: mod.p, groups: batch, rowsPerGroup: n, dim: d, pool: pool)
        let co = c.outChannels, pw = ps * ps * co
        let projected = FloatBuffer(rows * pw, zeroed: false)
        w.projOut.forward(normed.p, rows: rows, projected.p, pool: pool)
        var out = [Float](repeating: 0, count: batch * co * h * wd)
        for b in 0..<batch {
            for gy in 0..<gh {
                for gx in 0..<gw {
                    let src = projected.p + ((b * gh + gy) * gw + gx) * pw
                    for dy in 0..<ps {
                        for dx in 0..<ps {
                            for ch in 0..<co {
                                out[((b * co + ch) * h + gy * ps + dy) * wd + gx * ps + dx] = src[(dy * ps + dx) * co + ch]
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// HunyuanDiT's 2-D rotary tables (the PAG pipeline's `get_resize_crop_region_for_grid` and
/// diffusers' `get_2d_rotary_pos_embed`): the token grid is placed in a 32 × 32 base grid — the longer
/// side spans 32, the shorter round(32 · short / long) (Python's round, half to even), centred at
/// round((32 − span) / 2) — and positions run linspace(start, stop, n, endpoint=False).
public enum HunyuanDiTRoPE {
    public static let baseSize = 32

    /// The crop region ((top, left), (bottom, right)) of a gridH × gridW token grid.
    public static func region(gridH: Int, gridW: Int) -> (top: Int, left: Int, bottom: Int, right: Int) {
        let base = Double(baseSize)
        let rh: Int, rw: Int
        if Double(gridH) / Double(gridW) > 1 {
            rh = baseSize
            rw = Int((base / Double(gridH) * Double(gridW)).rounded(.toNearestOrEven))
        } else {
            rw = baseSize
            rh = Int((base / Double(gridW) * Double(gridH)).rounded(.toNearestOrEven))
        }
        let top = Int((Double(baseSize - rh) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(baseSize - rw) / 2).rounded(.toNearestOrEven))
        return (top, left, top + rh, left + rw)
    }

    /// cos and sin [gridH·gridW, headDim] for the grid's crop region.
    public static func tables(gridH: Int, gridW: Int, headDim: Int) -> (cos: [Float], sin: [Float]) {
        let r = region(gridH: gridH, gridW: gridW)
        return rope2DTables(gridH: gridH, gridW: gridW, headDim: headDim, start: (Double(r.top), Double(r.left)),
                            stop: (Double(r.bottom), Double(r.right)))
    }
}

/// The activations of one forward: scratch sized once for [batch · tokens] rows.
private final class HunyuanDiTRun {
    let m: HunyuanDiT2DModel
    let c: HunyuanDiTConfig
    let batch: Int, n: Int, rows: Int, d: Int
    let cond: HunyuanDiTCondition
    let ropeCos: [Float], ropeSin: [Float]
    let pool: ThreadPool?
    let norm: FloatBuffer, q: FloatBuffer, k: FloatBuffer, v: FloatBuffer, att: FloatBuffer, tmp: FloatBuffer
    let ff: FloatBuffer
    let textK: FloatBuffer, textV: FloatBuffer
    let ffChunk: Int

    init(model: HunyuanDiT2DModel, batch: Int, tokens: Int, cond: HunyuanDiTCondition, rope: (cos: [Float], sin: [Float]),
         pool: ThreadPool?) {
        m = model; c = model.config
        self.batch = batch; n = tokens; rows = batch * tokens; d = c.innerDim
        self.cond = cond; ropeCos = rope.cos; ropeSin = rope.sin; self.pool = pool
        norm = FloatBuffer(rows * d, zeroed: false); q = FloatBuffer(rows * d, zeroed: false)
        k = FloatBuffer(rows * d, zeroed: false); v = FloatBuffer(rows * d, zeroed: false)
        att = FloatBuffer(rows * d, zeroed: false); tmp = FloatBuffer(rows * 2 * d, zeroed: false)
        ffChunk = min(rows, 4096)
        ff = FloatBuffer(ffChunk * c.ffDim, zeroed: false)
        textK = FloatBuffer(batch * c.textTokens * d, zeroed: false); textV = FloatBuffer(batch * c.textTokens * d, zeroed: false)
    }

    /// h ← skip_linear(LN(cat(h, skip))) (eps 1e-6, affine).
    func skip(_ h: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, normW: [Float], normB: [Float],
              linear: Linear) {
        let d = self.d, cat = tmp.p
        parallelRows(pool, rows) { rr in
            for r in rr {
                (cat + r * 2 * d).update(from: h + r * d, count: d)
                (cat + r * 2 * d + d).update(from: s + r * d, count: d)
            }
        }
        HunyuanDiffusion.layerNorm(cat, rows: rows, dim: 2 * d, eps: 1e-6, weight: normW, bias: normB, cat, pool: pool)
        linear.forward(cat, rows: rows, h, pool: pool)
    }

    func block(_ blk: HunyuanDiTWeights<WeightMatrix, [Float]>.Block, _ h: UnsafeMutablePointer<Float>, siluC: [Float],
               identity: [Bool], trace: Trace?, name: String) {
        let d = self.d, n = self.n
        // Self-attention on LN(h) + shift.
        let shift = FloatBuffer(batch * d, zeroed: false)
        siluC.withUnsafeBufferPointer { blk.norm1Linear.forward($0.baseAddress!, rows: batch, shift.p, pool: nil) }
        HunyuanDiffusion.layerNorm(h, rows: rows, dim: d, eps: 1e-6, weight: blk.norm1W, bias: blk.norm1B, norm.p, pool: pool)
        let np = norm.p
        parallelRows(pool, rows) { rr in
            for r in rr {
                let o = np + r * d, s = shift.p + (r / n) * d
                for j in 0..<d { o[j] += s[j] }
            }
        }
        trace.emit("\(name).attn1.in", [batch, n, d], norm.p)
        attend(blk.attn1, norm.p, keysFrom: nil, identity: identity)
        trace.emit("\(name).attn1.out", [batch, n, d], att.p)
        addInPlace(h, att.p, rows * d, pool: pool)
        // Cross-attention to the text tokens.
        HunyuanDiffusion.layerNorm(h, rows: rows, dim: d, eps: 1e-6, weight: blk.norm2W, bias: blk.norm2B, norm.p, pool: pool)
        attend(blk.attn2, norm.p, keysFrom: cond.text, identity: [])
        addInPlace(h, att.p, rows * d, pool: pool)
        // Feed-forward, in row chunks.
        HunyuanDiffusion.layerNorm(h, rows: rows, dim: d, eps: 1e-6, weight: blk.norm3W, bias: blk.norm3B, norm.p, pool: pool)
        let f = c.ffDim, exact = c.activationFn == "gelu"
        var r0 = 0
        while r0 < rows {
            let cnt = min(ffChunk, rows - r0)
            blk.ff1.forward(norm.p + r0 * d, rows: cnt, ff.p, pool: pool)
            let fp = ff.p
            parallelRows(pool, cnt, minChunk: 8) { rr in
                if exact { geluErf(fp + rr.lowerBound * f, rr.count * f) } else { geluTanh(fp + rr.lowerBound * f, rr.count * f) }
            }
            blk.ff2.forward(ff.p, rows: cnt, att.p + r0 * d, pool: pool)
            r0 += cnt
        }
        addInPlace(h, att.p, rows * d, pool: pool)
    }

    /// att ← attention of x [rows, D] (HunyuanAttnProcessor2_0): q/k/v with bias, per-head LayerNorm on q
    /// and k, RoPE on q and — in self-attention only — on k, softmax(q·kᵀ/√hd)·v, to_out. `keysFrom`
    /// nil is self-attention; otherwise the text tokens [batch, L, cross]. Batch rows in `identity`
    /// get to_out(to_v(x)) instead (PAG).
    func attend(_ a: HunyuanDiTWeights<WeightMatrix, [Float]>.Attention, _ x: UnsafeMutablePointer<Float>,
                keysFrom text: [Float]?, identity: [Bool]) {
        let d = self.d, n = self.n, hd = c.attentionHeadDim, heads = c.numAttentionHeads
        let nk = text == nil ? n : c.textTokens
        let kp = text == nil ? k.p : textK.p, vp = text == nil ? v.p : textV.p
        a.q.forward(x, rows: rows, q.p, pool: pool)
        if let text {
            text.withUnsafeBufferPointer {
                a.k.forward($0.baseAddress!, rows: batch * nk, kp, pool: pool)
                a.v.forward($0.baseAddress!, rows: batch * nk, vp, pool: pool)
            }
        } else {
            a.k.forward(x, rows: rows, kp, pool: pool)
            a.v.forward(x, rows: rows, vp, pool: pool)
        }
        HunyuanDiffusion.layerNorm(q.p, rows: rows * heads, dim: hd, eps: 1e-6, weight: a.normQW, bias: a.normQB, q.p, pool: pool)
        HunyuanDiffusion.layerNorm(kp, rows: batch * nk * heads, dim: hd, eps: 1e-6, weight: a.normKW, bias: a.normKB, kp, pool: pool)
        let qp = q.p, selfAttention = text == nil
        ropeCos.withUnsafeBufferPointer { cs in
            ropeSin.withUnsafeBufferPointer { sn in
                let cb = cs.baseAddress!, sb = sn.baseAddress!
                parallelRows(pool, rows, minChunk: 16) { rr in
                    for r in rr {
                        let t = r % n
                        for hh in 0..<heads {
                            ropeInterleaved(qp + r * d + hh * hd, headDim: hd, cos: cb + t * hd, sin: sb + t * hd)
                            if selfAttention {
                                ropeInterleaved(kp + r * d + hh * hd, headDim: hd, cos: cb + t * hd, sin: sb + t * hd)
                            }
                        }
                    }
                }
            }
        }
        let scale = 1 / Float(hd).squareRoot(), precision = m.compute
        for b in 0..<batch {
            let ob = tmp.p + b * n * d
            if !identity.isEmpty && identity[b] {
                ob.update(from: vp + b * n * d, count: n * d)
                continue
            }
            attention(q: qp + b * n * d, qStride: d, nq: n, keys: kp + b * nk * d, kStride: d, values: vp + b * nk * d,
                      vStride: d, nk: nk, heads: heads, kvHeads: heads, headDim: hd, scale: scale, out: ob, outStride: d,
                      precision: precision, pool: pool)
        }
        a.out.forward(tmp.p, rows: rows, att.p, pool: pool)
    }
}

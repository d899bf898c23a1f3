#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

// diffusers' UNet2DConditionModel as Stable Diffusion 1/2 configure it (down: CrossAttnDownBlock2D /
// DownBlock2D, mid: UNetMidBlock2DCrossAttn, up: UpBlock2D / CrossAttnUpBlock2D), with the reference
// attention of Hunyuan3D-1.0's lite multi-view diffusion (`ReferenceAttention`).

// MARK: - Weights

/// The UNet's tensors under diffusers' state-dict names, generic over what a declared tensor becomes
/// (`WeightBinder`); `UNetTensors.declare` is the one place names and shapes are written down.
/// `UNetWeights` is the loaded form (matrices used in their stored format, vectors as fp32).
public struct UNetWeightSet<M, V> {
    /// ResnetBlock2D: GroupNorm → SiLU → conv1 (+ time_emb_proj(SiLU(temb)) per channel) → GroupNorm
    /// → SiLU → conv2, plus the input (through a 1×1 conv_shortcut when the channels change).
    public struct Resnet {
        public let inChannels: Int, outChannels: Int
        public let norm1Weight: V, norm1Bias: V
        public let conv1: LinearLayer<M, V>          // [out, in, 3, 3]
        public let timeEmbProj: LinearLayer<M, V>    // [out, temb]
        public let norm2Weight: V, norm2Bias: V
        public let conv2: LinearLayer<M, V>          // [out, out, 3, 3]
        public let convShortcut: LinearLayer<M, V>?  // [out, in, 1, 1] when in ≠ out
    }

    /// BasicTransformerBlock: LN → self-attention (attn1) → LN → cross-attention (attn2) → LN →
    /// GEGLU feed-forward, each with a residual.
    public struct TransformerBlock {
        public let norm1Weight: V, norm1Bias: V
        public let attn1Q: LinearLayer<M, V>, attn1K: LinearLayer<M, V>, attn1V: LinearLayer<M, V>, attn1Out: LinearLayer<M, V>
        public let norm2Weight: V, norm2Bias: V
        public let attn2Q: LinearLayer<M, V>, attn2K: LinearLayer<M, V>, attn2V: LinearLayer<M, V>, attn2Out: LinearLayer<M, V>
        public let norm3Weight: V, norm3Bias: V
        public let ffProj: LinearLayer<M, V>         // [2·4D, D] → [a | gate]
        public let ffOut: LinearLayer<M, V>          // [D, 4D]
    }

    /// Transformer2DModel over a [C, H, W] map: GroupNorm(eps 1e-6) → proj_in (Linear, or 1×1 conv
    /// [C, C, 1, 1]) → blocks → proj_out, plus the input.
    public struct Transformer {
        public let channels: Int, heads: Int
        public let normWeight: V, normBias: V
        public let projIn: LinearLayer<M, V>
        public let blocks: [TransformerBlock]
        public let projOut: LinearLayer<M, V>
    }

    /// A down level (resnets, each followed by its transformer when cross-attention, then an optional
    /// stride-2 conv), the mid block (resnets[0], then attentions[i] → resnets[i + 1]) or an up level
    /// (resnets over [hidden | skip], transformers, optional nearest-2× + conv).
    public struct Block {
        public let resnets: [Resnet]
        public let attentions: [Transformer]
        public let resample: LinearLayer<M, V>?     // downsamplers.0.conv / upsamplers.0.conv [C, C, 3, 3]
    }

    public let convIn: LinearLayer<M, V>
    public let timeLinear1: LinearLayer<M, V>, timeLinear2: LinearLayer<M, V>
    public let down: [Block]
    public let mid: Block
    /// Bottom (lowest resolution) first, as `up_blocks.i`.
    public let up: [Block]
    public let normOutWeight: V, normOutBias: V
    public let convOut: LinearLayer<M, V>
}

extension UNetWeightSet.Resnet: Sendable where M: Sendable, V: Sendable {}
extension UNetWeightSet.TransformerBlock: Sendable where M: Sendable, V: Sendable {}
extension UNetWeightSet.Transformer: Sendable where M: Sendable, V: Sendable {}
extension UNetWeightSet.Block: Sendable where M: Sendable, V: Sendable {}
extension UNetWeightSet: Sendable where M: Sendable, V: Sendable {}

/// The loaded UNet weights.
public typealias UNetWeights = UNetWeightSet<WeightMatrix, [Float]>

public enum UNetTensors {
    /// Every tensor of a diffusers UNet2DConditionModel checkpoint of configuration `c`, bound by `b`
    /// (the config must have passed `validate()`).
    public static func declare<B: WeightBinder>(_ c: UNetConfig, _ b: B) throws -> UNetWeightSet<B.Matrix, B.Vector> {
        typealias S = UNetWeightSet<B.Matrix, B.Vector>
        let temb = c.timeEmbedDim, n = c.levels, ch = c.blockOutChannels

        func resnet(_ p: String, _ inC: Int, _ outC: Int) throws -> S.Resnet {
            S.Resnet(inChannels: inC, outChannels: outC,
                     norm1Weight: try b.vector(p + ".norm1.weight", inC), norm1Bias: try b.vector(p + ".norm1.bias", inC),
                     conv1: try b.conv2d(p + ".conv1", in: inC, out: outC, kernel: (3, 3)),
                     timeEmbProj: try b.linear(p + ".time_emb_proj", in: temb, out: outC),
                     norm2Weight: try b.vector(p + ".norm2.weight", outC), norm2Bias: try b.vector(p + ".norm2.bias", outC),
                     conv2: try b.conv2d(p + ".conv2", in: outC, out: outC, kernel: (3, 3)),
                     convShortcut: inC == outC ? nil : try b.conv2d(p + ".conv_shortcut", in: inC, out: outC, kernel: (1, 1)))
        }
        func transformer(_ p: String, _ d: Int, heads: Int, layers: Int) throws -> S.Transformer {
            let normW = try b.vector(p + ".norm.weight", d), normB = try b.vector(p + ".norm.bias", d)
            func proj(_ name: String) throws -> LinearLayer<B.Matrix, B.Vector> {
                c.useLinearProjection ? try b.linear(p + name, in: d, out: d) : try b.conv2d(p + name, in: d, out: d, kernel: (1, 1))
            }
            let projIn = try proj(".proj_in")
            var blocks: [S.TransformerBlock] = []
            for k in 0..<layers {
                let q = p + ".transformer_blocks.\(k)", ff = 4 * d, x = c.crossAttentionDim
                blocks.append(S.TransformerBlock(
                    norm1Weight: try b.vector(q + ".norm1.weight", d), norm1Bias: try b.vector(q + ".norm1.bias", d),
                    attn1Q: try b.linear(q + ".attn1.to_q", in: d, out: d, bias: false),
                    attn1K: try b.linear(q + ".attn1.to_k", in: d, out: d, bias: false),
                    attn1V: try b.linear(q + ".attn1.to_v", in: d, out: d, bias: false),
                    attn1Out: try b.linear(q + ".attn1.to_out.0", in: d, out: d),
                    norm2Weight: try b.vector(q + ".norm2.weight", d), norm2Bias: try b.vector(q + ".norm2.bias", d),
                    attn2Q: try b.linear(q + ".attn2.to_q", in: d, out: d, bias: false),
                    attn2K: try b.linear(q + ".attn2.to_k", in: x, out: d, bias: false),
                    attn2V: try b.linear(q + ".attn2.to_v", in: x, out: d, bias: false),
                    attn2Out: try b.linear(q + ".attn2.to_out.0", in: d, out: d),
                    norm3Weight: try b.vector(q + ".norm3.weight", d), norm3Bias: try b.vector(q + ".norm3.bias", d),
                    ffProj: try b.linear(q + ".ff.net.0.proj", in: d, out: 2 * ff),
                    ffOut: try b.linear(q + ".ff.net.2", in: ff, out: d)))
            }
            return S.Transformer(channels: d, heads: heads, normWeight: normW, normBias: normB, projIn: projIn,
                                 blocks: blocks, projOut: try proj(".proj_out"))
        }

        let convIn = try b.conv2d("conv_in", in: c.inChannels, out: ch[0], kernel: (c.convInKernel, c.convInKernel))
        let t1 = try b.linear("time_embedding.linear_1", in: ch[0], out: temb)
        let t2 = try b.linear("time_embedding.linear_2", in: temb, out: temb)

        var down: [S.Block] = []
        var outC = ch[0]
        for i in 0..<n {
            let p = "down_blocks.\(i)", inC = outC
            outC = ch[i]
            var resnets: [S.Resnet] = [], attentions: [S.Transformer] = []
            for j in 0..<c.layersPerBlock[i] {
                resnets.append(try resnet(p + ".resnets.\(j)", j == 0 ? inC : outC, outC))
                if c.downHasAttention(i) {
                    attentions.append(try transformer(p + ".attentions.\(j)", outC, heads: c.heads[i],
                                                      layers: c.transformerLayersPerBlock[i]))
                }
            }
            let ds = i == n - 1 ? nil : try b.conv2d(p + ".downsamplers.0.conv", in: outC, out: outC, kernel: (3, 3))
            down.append(S.Block(resnets: resnets, attentions: attentions, resample: ds))
        }

        let cm = ch[n - 1]
        let mid = S.Block(resnets: [try resnet("mid_block.resnets.0", cm, cm), try resnet("mid_block.resnets.1", cm, cm)],
                          attentions: [try transformer("mid_block.attentions.0", cm, heads: c.heads[n - 1],
                                                       layers: c.transformerLayersPerBlock[n - 1])],
                          resample: nil)

        var up: [S.Block] = []
        var prevOut = ch[n - 1]
        for i in 0..<n {
            let level = n - 1 - i, p = "up_blocks.\(i)"
            let out = ch[level], skipIn = ch[max(level - 1, 0)]
            var resnets: [S.Resnet] = [], attentions: [S.Transformer] = []
            let count = c.layersPerBlock[level] + 1
            for j in 0..<count {
                let skip = j == count - 1 ? skipIn : out
                resnets.append(try resnet(p + ".resnets.\(j)", (j == 0 ? prevOut : out) + skip, out))
                if c.upHasAttention(i) {
                    attentions.append(try transformer(p + ".attentions.\(j)", out, heads: c.heads[level],
                                                      layers: c.transformerLayersPerBlock[level]))
                }
            }
            let us = i == n - 1 ? nil : try b.conv2d(p + ".upsamplers.0.conv", in: out, out: out, kernel: (3, 3))
            up.append(S.Block(resnets: resnets, attentions: attentions, resample: us))
            prevOut = out
        }

        let nw = try b.vector("conv_norm_out.weight", ch[0]), nb = try b.vector("conv_norm_out.bias", ch[0])
        let convOut = try b.conv2d("conv_out", in: ch[0], out: c.outChannels, kernel: (c.convOutKernel, c.convOutKernel))
        return S(convIn: convIn, timeLinear1: t1, timeLinear2: t2, down: down, mid: mid, up: up,
                 normOutWeight: nw, normOutBias: nb, convOut: convOut)
    }

    /// The tensor list of a configuration, in declaration order.
    public static func table(for c: UNetConfig) throws -> WeightTable {
        try c.validate()
        let t = WeightTable()
        _ = try declare(c, t)
        return t
    }

    /// Names of the self-attentions (`…transformer_blocks.k.attn1`) in call order: down levels, mid
    /// block, up levels — the layers `ReferenceAttention` stores and reads.
    public static func selfAttentionNames(_ c: UNetConfig) -> [String] {
        var names: [String] = []
        func add(_ p: String, _ layers: Int) {
            for k in 0..<layers { names.append("\(p).transformer_blocks.\(k).attn1") }
        }
        let n = c.levels
        for i in 0..<n where c.downHasAttention(i) {
            for j in 0..<c.layersPerBlock[i] { add("down_blocks.\(i).attentions.\(j)", c.transformerLayersPerBlock[i]) }
        }
        add("mid_block.attentions.0", c.transformerLayersPerBlock[n - 1])
        for i in 0..<n where c.upHasAttention(i) {
            let level = n - 1 - i
            for j in 0...c.layersPerBlock[level] { add("up_blocks.\(i).attentions.\(j)", c.transformerLayersPerBlock[level]) }
        }
        return names
    }
}

// MARK: - Reference attention

/// The reference attention of Hunyuan3D-1.0's lite multi-view diffusion (`ReferenceOnlyAttnProc`):
/// a UNet pass in `.write` mode stores, for every self-attention (`attn1`, in call order, the mid
/// block's included), its input hidden states after norm1, per batch item [tokens, dim]; a pass in
/// `.read` mode then computes each attn1 with Q from its own tokens and K, V = to_k / to_v of
/// cat([own, stored], tokens) of the same batch item (no extra scaling). Cross-attention is unchanged.
/// Reads do not consume the stored features (the official code pops them; each is read once there).
///
/// The read pass may have a different spatial size from the write pass (the token counts differ),
/// but the same batch size. Memory: Σ over attn1 layers of batch · tokens · dim fp32 values — for
/// the full-size SD2 UNet with an 80×80 reference latent and batch 2, ~36 M floats ≈ 144 MB
/// (`byteCount`). Not thread-safe: one UNet pass at a time uses a given value.
public final class ReferenceAttention {
    public enum Mode: Sendable { case write, read }

    /// One stored attn1 input: `values` is [batch, tokens, dim].
    public struct Layer {
        public let name: String
        public let batch: Int, tokens: Int, dim: Int
        public let values: FloatBuffer
    }

    public var mode: Mode
    public private(set) var layers: [Layer] = []

    public init(mode: Mode = .write) { self.mode = mode }

    /// Drops the stored features.
    public func clear() { layers.removeAll() }

    /// The stored feature of the layer named `name` (e.g. `mid_block.attentions.0.transformer_blocks.0.attn1`).
    public func feature(_ name: String) -> Layer? { layers.first { $0.name == name } }

    /// Bytes held by the stored features.
    public var byteCount: Int { layers.reduce(0) { $0 + 4 * $1.values.count } }

    func store(_ name: String, batch: Int, tokens: Int, dim: Int, _ x: UnsafePointer<Float>) {
        let buf = FloatBuffer(batch * tokens * dim, zeroed: false)
        buf.p.update(from: x, count: batch * tokens * dim)
        layers.append(Layer(name: name, batch: batch, tokens: tokens, dim: dim, values: buf))
    }
}

// MARK: - Model

/// diffusers' `UNet2DConditionModel` (SD1/SD2 configurations, see `UNetConfig`): weights in their
/// stored format (f32/f16/bf16 or quantized, used in place), fp32 activations. Immutable after load;
/// one model may run several forwards concurrently (each forward owns its scratch), but a
/// `ReferenceAttention` value belongs to one forward at a time.
public struct UNet2DConditionModel: Sendable {
    public let config: UNetConfig
    /// How the products are computed (the weights' bf16 forms are made at load for `.bf16`).
    public let compute: ComputePrecision
    public let weights: UNetWeights

    struct ResnetRT: Sendable {
        let w: UNetWeights.Resnet
        let conv1: Conv2d, conv2: Conv2d, shortcut: Conv2d?
    }
    struct BlockRT: Sendable {
        let resnets: [ResnetRT]
        let attentions: [UNetWeights.Transformer]
        let resample: Conv2d?
    }
    let convIn: Conv2d, convOut: Conv2d
    let down: [BlockRT], mid: BlockRT, up: [BlockRT]
    let attn1Names: [String]

    /// Reads `folder/config.json` and the folder's weights (`diffusion_pytorch_model[.variant]
    /// .safetensors` or sharded). Errors name the folder (config) or the file and tensor (weights):
    /// missing, misshapen and left-over tensors are `HYError.format`. `compute`: see `ComputePrecision`.
    public init(folder: String, variant: String? = nil, compute: ComputePrecision = .fp32) throws {
        let config: UNetConfig
        do {
            config = try Component.config(UNetConfig.self, folder)
        } catch let e as HYError {
            let path = FileSystem.join(folder, "config.json")
            throw e.message.hasPrefix(folder) ? e : HYError(e.kind, "\(path): \(e.message)")
        }
        try self.init(config: config, checkpoint: try Checkpoint(component: folder, variant: variant), compute: compute)
    }

    /// Binds `checkpoint` to the declaration of `config`; every declared tensor must exist with its
    /// shape and none may be left over.
    public init(config: UNetConfig, checkpoint: Checkpoint, compute: ComputePrecision = .fp32) throws {
        try config.validate()
        let w = try Component.load(checkpoint, context: "this UNet configuration", compute: compute) {
            try UNetTensors.declare(config, $0)
        }
        try self.init(config: config, weights: w, compute: compute)
    }

    /// A model over weights bound elsewhere (e.g. random weights for benchmarks); `compute` as the
    /// weights were bound (`.bf16` also runs the attention's products in bf16).
    public init(config: UNetConfig, weights: UNetWeights, compute: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.compute = compute
        self.weights = weights
        func resnet(_ r: UNetWeights.Resnet) throws -> ResnetRT {
            ResnetRT(w: r, conv1: try Conv2d(r.conv1, inChannels: r.inChannels, kernel: (3, 3), padding: Padding2D(1)),
                     conv2: try Conv2d(r.conv2, inChannels: r.outChannels, kernel: (3, 3), padding: Padding2D(1)),
                     shortcut: try r.convShortcut.map { try Conv2d($0, inChannels: r.inChannels, kernel: (1, 1)) })
        }
        let downPad = config.downsamplePadding == 1 ? Padding2D(1) : Padding2D(top: 0, left: 0, bottom: 1, right: 1)
        func block(_ b: UNetWeights.Block, down: Bool) throws -> BlockRT {
            let rs = try b.resnets.map(resnet)
            let c = b.resnets.last?.outChannels ?? 0
            let resample = try b.resample.map {
                down ? try Conv2d($0, inChannels: c, kernel: (3, 3), stride: 2, padding: downPad)
                     : try Conv2d($0, inChannels: c, kernel: (3, 3), padding: Padding2D(1))
            }
            return BlockRT(resnets: rs, attentions: b.attentions, resample: resample)
        }
        let kIn = config.convInKernel, kOut = config.convOutKernel
        convIn = try Conv2d(weights.convIn, inChannels: config.inChannels, kernel: (kIn, kIn), padding: Padding2D(kIn / 2))
        convOut = try Conv2d(weights.convOut, inChannels: config.blockOutChannels[0], kernel: (kOut, kOut),
                             padding: Padding2D(kOut / 2))
        down = try weights.down.map { try block($0, down: true) }
        mid = try block(weights.mid, down: false)
        up = try weights.up.map { try block($0, down: false) }
        attn1Names = UNetTensors.selfAttentionNames(config)
    }

    /// Names of the self-attentions in call order (what a `.write` pass stores).
    public var selfAttentionNames: [String] { attn1Names }

    /// One UNet evaluation.
    /// - sample: [batch, inChannels, height, width] fp32 (batch-major, then channel-major);
    ///   height and width multiples of `config.sizeMultiple`.
    /// - timestep: the diffusion timestep, the same for every batch item (float, as diffusers
    ///   accepts it).
    /// - context: [batch, contextLength, crossAttentionDim] fp32 (the encoder hidden states).
    /// - out: [batch, outChannels, height, width]; must not overlap the inputs.
    /// - reference: nil for the plain UNet; `.write` clears it and stores every attn1 input, `.read`
    ///   uses its features (same batch, one per attn1 layer; otherwise `HYError.invalidArgument`).
    /// - shouldStop: polled before each resnet / transformer; when it returns true the forward throws
    ///   `HYError.aborted` (out is then unspecified).
    /// Work is split over `pool`; the call allocates its activations (freed on return).
    public func forward(sample: UnsafePointer<Float>, batch: Int, height: Int, width: Int, timestep: Float,
                        context: UnsafePointer<Float>, contextLength: Int, out: UnsafeMutablePointer<Float>,
                        reference: ReferenceAttention? = nil, pool: ThreadPool?, trace: Trace? = nil,
                        shouldStop: (() -> Bool)? = nil) throws {
        let c = config
        guard batch >= 1, contextLength >= 1 else {
            throw HYError.invalidArgument("UNet: batch (\(batch)) and context length (\(contextLength)) must be ≥ 1")
        }
        guard height > 0, width > 0, height % c.sizeMultiple == 0, width % c.sizeMultiple == 0 else {
            throw HYError.invalidArgument("UNet: sample size \(height)×\(width) is not a positive multiple of \(c.sizeMultiple)")
        }
        if let reference, reference.mode == .read {
            guard reference.layers.count == attn1Names.count else {
                throw HYError.invalidArgument("UNet: the reference holds \(reference.layers.count) features, this UNet has \(attn1Names.count) self-attentions")
            }
            for (l, name) in zip(reference.layers, attn1Names) where l.name != name || l.batch != batch {
                throw HYError.invalidArgument("UNet: reference feature \(l.name) (batch \(l.batch)) does not match \(name) at batch \(batch)")
            }
        } else if let reference {
            reference.clear()
        }
        let run = Run(model: self, batch: batch, context: context, contextLength: contextLength, reference: reference,
                      pool: pool, trace: trace, shouldStop: shouldStop)
        try run.forward(sample: sample, height: height, width: width, timestep: timestep, out: out)
    }

    /// Array form of `forward`: sample [batch·inC·H·W], context [batch·L·crossDim] → [batch·outC·H·W].
    public func forward(sample: [Float], batch: Int, height: Int, width: Int, timestep: Float, context: [Float],
                        reference: ReferenceAttention? = nil, pool: ThreadPool?, trace: Trace? = nil,
                        shouldStop: (() -> Bool)? = nil) throws -> [Float] {
        let c = config
        guard batch >= 1, sample.count == batch * c.inChannels * height * width else {
            throw HYError.invalidArgument("UNet: sample has \(sample.count) values, batch \(batch) × \(c.inChannels) × \(height) × \(width) expected")
        }
        guard context.count > 0, context.count % (batch * c.crossAttentionDim) == 0 else {
            throw HYError.invalidArgument("UNet: context has \(context.count) values, not batch \(batch) × L × \(c.crossAttentionDim)")
        }
        var out = [Float](repeating: 0, count: batch * c.outChannels * height * width)
        try sample.withUnsafeBufferPointer { s in
            try context.withUnsafeBufferPointer { ctx in
                try out.withUnsafeMutableBufferPointer { o in
                    try forward(sample: s.baseAddress!, batch: batch, height: height, width: width, timestep: timestep,
                                context: ctx.baseAddress!, contextLength: context.count / (batch * c.crossAttentionDim),
                                out: o.baseAddress!, reference: reference, pool: pool, trace: trace, shouldStop: shouldStop)
                }
            }
        }
        return out
    }
}

// MARK: - Forward

/// Scratch buffers reused across the layers of one forward, by role; a slot grows when a layer
/// needs more. A pointer from `get` stays valid until the same slot is asked for more.
private final class Workspace {
    enum Slot: Int, CaseIterable { case a, b, c, tokens, hidden, norm, q, k, v, att, tmp, ffProj, ffGated }
    private var buffers: [FloatBuffer?] = Array(repeating: nil, count: Slot.allCases.count)

    func get(_ s: Slot, _ n: Int) -> UnsafeMutablePointer<Float> {
        if let b = buffers[s.rawValue], b.count >= n { return b.p }
        let b = FloatBuffer(max(n, 1), zeroed: false)
        buffers[s.rawValue] = b
        return b.p
    }
}

/// An activation map [batch, channels, h, w].
private struct Map {
    let buf: FloatBuffer
    let channels: Int, h: Int, w: Int
    var hw: Int { h * w }
    var p: UnsafeMutablePointer<Float> { buf.p }
}

private final class Run {
    let m: UNet2DConditionModel
    let c: UNetConfig
    let batch: Int
    let context: UnsafePointer<Float>, contextLength: Int
    let reference: ReferenceAttention?
    let pool: ThreadPool?
    let trace: Trace?
    let shouldStop: (() -> Bool)?
    let ws = Workspace()
    /// SiLU(time embedding) [timeEmbedDim], the input of every resnet's time_emb_proj.
    var tembAct: [Float] = []
    var attn1Index = 0
    /// Rows of the feed-forward processed at once (bounds the 8·D-wide GEGLU buffer).
    let feedForwardChunk = 4096

    init(model: UNet2DConditionModel, batch: Int, context: UnsafePointer<Float>, contextLength: Int,
         reference: ReferenceAttention?, pool: ThreadPool?, trace: Trace?, shouldStop: (() -> Bool)?) {
        m = model; c = model.config
        self.batch = batch; self.context = context; self.contextLength = contextLength
        self.reference = reference; self.pool = pool; self.trace = trace; self.shouldStop = shouldStop
    }

    func checkStop() throws {
        if let shouldStop, shouldStop() { throw HYError.aborted("UNet forward stopped") }
    }

    func forward(sample: UnsafePointer<Float>, height: Int, width: Int, timestep: Float,
                 out: UnsafeMutablePointer<Float>) throws {
        let ch = c.blockOutChannels, n = c.levels, inC = c.inChannels

        // Time embedding: sinusoidal(t) → linear_1 → SiLU → linear_2; the resnets take SiLU of it.
        let c0 = ch[0], td = c.timeEmbedDim
        var t0 = [Float](repeating: 0, count: c0)
        t0.withUnsafeMutableBufferPointer {
            timestepEmbedding([timestep], dim: c0, flipSinToCos: c.flipSinToCos, downscaleFreqShift: c.freqShift, $0.baseAddress!)
        }
        var t1 = [Float](repeating: 0, count: td), t2 = [Float](repeating: 0, count: td)
        t0.withUnsafeBufferPointer { x in t1.withUnsafeMutableBufferPointer { m.weights.timeLinear1.forward(x.baseAddress!, rows: 1, $0.baseAddress!, pool: nil) } }
        for i in 0..<td { t1[i] = silu(t1[i]) }
        t1.withUnsafeBufferPointer { x in t2.withUnsafeMutableBufferPointer { m.weights.timeLinear2.forward(x.baseAddress!, rows: 1, $0.baseAddress!, pool: nil) } }
        t2.withUnsafeBufferPointer { trace.emit("time_embedding", [1, td], $0.baseAddress!) }
        tembAct = t2.map { silu($0) }

        // conv_in
        var x = Map(buf: FloatBuffer(batch * c0 * height * width, zeroed: false), channels: c0, h: height, w: width)
        for b in 0..<batch {
            m.convIn.forward(sample + b * inC * x.hw, height: height, width: width, x.p + b * c0 * x.hw, pool: pool)
        }
        trace.emit("conv_in", [batch, c0, height, width], x.p)

        // Down levels; every resnet/transformer output and every downsampled map is a skip.
        var skips: [Map] = [x]
        for (i, blk) in m.down.enumerated() {
            for (j, r) in blk.resnets.enumerated() {
                try checkStop()
                x = resnet(r, x)
                if j < blk.attentions.count {
                    try checkStop()
                    try transformer(blk.attentions[j], x)
                }
                skips.append(x)
            }
            if let conv = blk.resample {
                let (ho, wo) = conv.outputSize(height: x.h, width: x.w)
                let y = Map(buf: FloatBuffer(batch * x.channels * ho * wo, zeroed: false), channels: x.channels, h: ho, w: wo)
                for b in 0..<batch {
                    conv.forward(x.p + b * x.channels * x.hw, height: x.h, width: x.w, y.p + b * y.channels * y.hw, pool: pool)
                }
                x = y
                skips.append(x)
            }
            trace.emit("down_blocks.\(i)", [batch, x.channels, x.h, x.w], x.p)
        }

        // Mid block.
        try checkStop()
        x = resnet(m.mid.resnets[0], x)
        for (k, t) in m.mid.attentions.enumerated() {
            try checkStop()
            try transformer(t, x)
            try checkStop()
            x = resnet(m.mid.resnets[k + 1], x)
        }
        trace.emit("mid_block", [batch, x.channels, x.h, x.w], x.p)

        // Up levels over [hidden | skip].
        for (i, blk) in m.up.enumerated() {
            for (j, r) in blk.resnets.enumerated() {
                try checkStop()
                guard let s = skips.popLast(), s.hw == x.hw, x.channels + s.channels == r.w.inChannels else {
                    throw HYError.internal("UNet up_blocks.\(i).resnets.\(j): skip connection does not match")
                }
                x = resnet(r, concat(x, s))
                if j < blk.attentions.count {
                    try checkStop()
                    try transformer(blk.attentions[j], x)
                }
            }
            if let conv = blk.resample {
                // Upsample2D: nearest 2× then the conv, read through the conv (no 4× copy).
                let h2 = 2 * x.h, w2 = 2 * x.w, cc = x.channels
                let y = Map(buf: FloatBuffer(batch * cc * h2 * w2, zeroed: false), channels: cc, h: h2, w: w2)
                for b in 0..<batch {
                    conv.forward(x.p + b * cc * x.hw, height: x.h, width: x.w, y.p + b * cc * y.hw, pool: pool, upsample2x: true)
                }
                x = y
            }
            trace.emit("up_blocks.\(i)", [batch, x.channels, x.h, x.w], x.p)
        }

        // conv_norm_out → SiLU → conv_out
        let a = ws.get(.a, x.channels * x.hw)
        for b in 0..<batch {
            groupNormSiLU(x.p + b * x.channels * x.hw, channels: x.channels, hw: x.hw, eps: c.normEps,
                          m.weights.normOutWeight, m.weights.normOutBias, silu: true, a)
            m.convOut.forward(a, height: x.h, width: x.w, out + b * c.outChannels * x.hw, pool: pool)
        }
        trace.emit("out", [batch, c.outChannels, x.h, x.w], out)
    }

    // MARK: layers

    /// [hidden | skip] along channels, per batch item.
    func concat(_ x: Map, _ s: Map) -> Map {
        let cc = x.channels + s.channels, hw = x.hw
        let y = Map(buf: FloatBuffer(batch * cc * hw, zeroed: false), channels: cc, h: x.h, w: x.w)
        parallelRows(pool, batch * cc, minChunk: 16) { rr in
            for r in rr {
                let b = r / cc, ci = r % cc
                let src = ci < x.channels ? x.p + (b * x.channels + ci) * hw : s.p + (b * s.channels + ci - x.channels) * hw
                (y.p + r * hw).update(from: src, count: hw)
            }
        }
        return y
    }

    /// GroupNorm (c.normNumGroups groups) of one image x[channels, hw] into out, then SiLU when `silu`.
    func groupNormSiLU(_ x: UnsafePointer<Float>, channels: Int, hw: Int, eps: Float, _ w: [Float], _ bias: [Float],
                       silu: Bool, _ out: UnsafeMutablePointer<Float>) {
        w.withUnsafeBufferPointer { wp in
            bias.withUnsafeBufferPointer { bp in
                groupNorm(x, channels: channels, spatial: hw, groups: c.normNumGroups, eps: eps, weight: wp.baseAddress,
                          bias: bp.baseAddress, out, pool: pool)
            }
        }
        if silu { siluParallel(out, channels * hw) }
    }

    func siluParallel(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        parallelRows(pool, (n + 7) / 8, minChunk: 2048) { rr in
            let lo = rr.lowerBound * 8, hi = min(n, rr.upperBound * 8)
            var i = lo
            let raw = UnsafeMutableRawPointer(x)
            while i + 8 <= hi {
                let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                raw.storeBytes(of: v / (1 + exp8(-v)), toByteOffset: 4 * i, as: SIMD8<Float>.self)
                i += 8
            }
            while i < hi { x[i] = HunyuanNN.silu(x[i]); i += 1 }
        }
    }

    /// ResnetBlock2D on x [batch, inC, h, w] → a new map [batch, outC, h, w].
    func resnet(_ r: UNet2DConditionModel.ResnetRT, _ x: Map) -> Map {
        let inC = r.w.inChannels, outC = r.w.outChannels, hw = x.hw
        precondition(x.channels == inC)
        // The time projection is the same for every batch item (one timestep).
        var tp = [Float](repeating: 0, count: outC)
        tembAct.withUnsafeBufferPointer { t in tp.withUnsafeMutableBufferPointer { r.w.timeEmbProj.forward(t.baseAddress!, rows: 1, $0.baseAddress!, pool: nil) } }
        let y = Map(buf: FloatBuffer(batch * outC * hw, zeroed: false), channels: outC, h: x.h, w: x.w)
        let a = ws.get(.a, inC * hw), h1 = ws.get(.b, outC * hw), sc = ws.get(.c, outC * hw)
        for b in 0..<batch {
            let xb = x.p + b * inC * hw, yb = y.p + b * outC * hw
            groupNormSiLU(xb, channels: inC, hw: hw, eps: c.normEps, r.w.norm1Weight, r.w.norm1Bias, silu: true, a)
            r.conv1.forward(a, height: x.h, width: x.w, h1, pool: pool)
            tp.withUnsafeBufferPointer { t in
                parallelRows(pool, outC, minChunk: 8) { cr in
                    for ci in cr { let v = t[ci], row = h1 + ci * hw; for i in 0..<hw { row[i] += v } }
                }
            }
            groupNormSiLU(h1, channels: outC, hw: hw, eps: c.normEps, r.w.norm2Weight, r.w.norm2Bias, silu: true, h1)
            r.conv2.forward(h1, height: x.h, width: x.w, yb, pool: pool)
            if let s = r.shortcut {
                s.forward(xb, height: x.h, width: x.w, sc, pool: pool)
                addInPlace(yb, sc, outC * hw, pool: pool)
            } else {
                addInPlace(yb, xb, outC * hw, pool: pool)
            }
        }
        return y
    }

    /// Transformer2DModel on x [batch, C, h, w], in place (x ← proj_out(blocks(proj_in(norm(x)))) + x).
    /// The token-wise layers run on all batch·h·w tokens at once.
    func transformer(_ t: UNetWeights.Transformer, _ x: Map) throws {
        let d = t.channels, hw = x.hw, rows = batch * hw
        let a = ws.get(.a, d * hw), tok = ws.get(.tokens, rows * d), hs = ws.get(.hidden, rows * d)
        t.normWeight.withUnsafeBufferPointer { wp in
            t.normBias.withUnsafeBufferPointer { bp in
                for b in 0..<batch {
                    groupNorm(x.p + b * d * hw, channels: d, spatial: hw, groups: c.normNumGroups, eps: 1e-6,
                              weight: wp.baseAddress, bias: bp.baseAddress, a, pool: pool)
                    transpose(a, rows: d, cols: hw, tok + b * hw * d)
                }
            }
        }
        t.projIn.forward(tok, rows: rows, hs, pool: pool)
        for blk in t.blocks { try basicBlock(blk, hs, tokens: hw, dim: d, heads: t.heads) }
        t.projOut.forward(hs, rows: rows, tok, pool: pool)
        // x[b, c, p] += tok[b·hw + p, c]
        for b in 0..<batch {
            let xb = x.p + b * d * hw, tb = tok + b * hw * d
            parallelRows(pool, d, minChunk: 4) { cr in
                for ci in cr {
                    let row = xb + ci * hw
                    for p in 0..<hw { row[p] += tb[p * d + ci] }
                }
            }
        }
    }

    /// out[cols, rows] = x[rows, cols]ᵀ, in tiles, split over the pool.
    func transpose(_ x: UnsafePointer<Float>, rows: Int, cols: Int, _ out: UnsafeMutablePointer<Float>) {
        let tile = 32
        parallelRows(pool, (cols + tile - 1) / tile, minChunk: 4) { tr in
            for tj in tr {
                let j0 = tj * tile, j1 = min(cols, j0 + tile)
                var i0 = 0
                while i0 < rows {
                    let i1 = min(rows, i0 + tile)
                    for j in j0..<j1 {
                        let o = out + j * rows
                        for i in i0..<i1 { o[i] = x[i * cols + j] }
                    }
                    i0 = i1
                }
            }
        }
    }

    func layerNormRows(_ x: UnsafePointer<Float>, rows: Int, dim: Int, _ w: [Float], _ b: [Float],
                       _ out: UnsafeMutablePointer<Float>) {
        w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                layerNorm(x, rows: rows, dim: dim, eps: 1e-5, weight: wp.baseAddress, bias: bp.baseAddress, out, pool: pool)
            }
        }
    }

    /// BasicTransformerBlock on hs [batch·tokens, dim], in place.
    func basicBlock(_ blk: UNetWeights.TransformerBlock, _ hs: UnsafeMutablePointer<Float>, tokens: Int, dim d: Int, heads: Int) throws {
        let rows = batch * tokens, hd = d / heads, scale = 1 / Float(hd).squareRoot()
        let nrm = ws.get(.norm, rows * d), q = ws.get(.q, rows * d), att = ws.get(.att, rows * d), tmp = ws.get(.tmp, rows * d)

        func attend(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, keysPerItem nk: Int) {
            for b in 0..<batch {
                attention(q: q + b * tokens * d, qStride: d, nq: tokens, keys: k + b * nk * d, kStride: d,
                          values: v + b * nk * d, vStride: d, nk: nk, heads: heads, kvHeads: heads, headDim: hd,
                          scale: scale, out: att + b * tokens * d, outStride: d, precision: m.compute, pool: pool)
            }
        }

        // Self-attention (with the reference's features when reading).
        layerNormRows(hs, rows: rows, dim: d, blk.norm1Weight, blk.norm1Bias, nrm)
        let layer = attn1Index
        attn1Index += 1
        var refFeature: ReferenceAttention.Layer? = nil
        if let reference {
            switch reference.mode {
            case .write: reference.store(m.attn1Names[layer], batch: batch, tokens: tokens, dim: d, nrm)
            case .read: refFeature = reference.layers[layer]
            }
        }
        blk.attn1Q.forward(nrm, rows: rows, q, pool: pool)
        if let ref = refFeature {
            guard ref.dim == d else {
                throw HYError.invalidArgument("UNet: reference feature \(ref.name) has width \(ref.dim), the layer \(d)")
            }
            let tr = ref.tokens, nk = tokens + tr
            let k = ws.get(.k, batch * nk * d), v = ws.get(.v, batch * nk * d)
            for b in 0..<batch {
                let own = nrm + b * tokens * d, stored = ref.values.p + b * tr * d
                blk.attn1K.forward(own, rows: tokens, k + b * nk * d, pool: pool)
                blk.attn1K.forward(stored, rows: tr, k + (b * nk + tokens) * d, pool: pool)
                blk.attn1V.forward(own, rows: tokens, v + b * nk * d, pool: pool)
                blk.attn1V.forward(stored, rows: tr, v + (b * nk + tokens) * d, pool: pool)
            }
            attend(keys: k, values: v, keysPerItem: nk)
        } else {
            let k = ws.get(.k, rows * d), v = ws.get(.v, rows * d)
            blk.attn1K.forward(nrm, rows: rows, k, pool: pool)
            blk.attn1V.forward(nrm, rows: rows, v, pool: pool)
            attend(keys: k, values: v, keysPerItem: tokens)
        }
        blk.attn1Out.forward(att, rows: rows, tmp, pool: pool)
        addInPlace(hs, tmp, rows * d, pool: pool)

        // Cross-attention to the context.
        layerNormRows(hs, rows: rows, dim: d, blk.norm2Weight, blk.norm2Bias, nrm)
        blk.attn2Q.forward(nrm, rows: rows, q, pool: pool)
        let l = contextLength
        let k2 = ws.get(.k, batch * l * d), v2 = ws.get(.v, batch * l * d)
        blk.attn2K.forward(context, rows: batch * l, k2, pool: pool)
        blk.attn2V.forward(context, rows: batch * l, v2, pool: pool)
        attend(keys: k2, values: v2, keysPerItem: l)
        blk.attn2Out.forward(att, rows: rows, tmp, pool: pool)
        addInPlace(hs, tmp, rows * d, pool: pool)

        // GEGLU feed-forward, in row chunks.
        layerNormRows(hs, rows: rows, dim: d, blk.norm3Weight, blk.norm3Bias, nrm)
        let ff = 4 * d, chunk = max(1, min(rows, feedForwardChunk))
        let proj = ws.get(.ffProj, chunk * 2 * ff), gated = ws.get(.ffGated, chunk * ff)
        var r0 = 0
        while r0 < rows {
            let nr = min(chunk, rows - r0)
            blk.ffProj.forward(nrm + r0 * d, rows: nr, proj, pool: pool)
            parallelRows(pool, nr, minChunk: 8) { rr in
                geglu(proj + rr.lowerBound * 2 * ff, rows: rr.count, width: ff, gated + rr.lowerBound * ff)
            }
            blk.ffOut.forward(gated, rows: nr, tmp + r0 * d, pool: pool)
            r0 += nr
        }
        addInPlace(hs, tmp, rows * d, pool: pool)
    }
}

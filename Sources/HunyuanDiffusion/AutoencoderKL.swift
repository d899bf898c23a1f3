import HunyuanNN

// diffusers' `AutoencoderKL` (models/autoencoders/autoencoder_kl.py with vae.py's Encoder, Decoder
// and DiagonalGaussianDistribution): the KL VAE of Stable Diffusion, as Hunyuan3D-1.0's multi-view
// diffusion encodes its condition image and decodes its views. Images and latents are channel-major
// [C, H, W] fp32, one at a time.

/// `vae/config.json` of a diffusers `AutoencoderKL`, with diffusers' defaults for absent keys.
public struct AutoencoderKLConfig: Decodable, Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var downBlockTypes = ["DownEncoderBlock2D"]
    public var upBlockTypes = ["UpDecoderBlock2D"]
    public var blockOutChannels = [64]
    public var layersPerBlock = 1
    public var actFn = "silu"
    public var latentChannels = 4
    public var normNumGroups = 32
    public var sampleSize = 32
    /// The latent scale the *caller* applies (`latents · scalingFactor` after encoding, `/` before
    /// decoding); `encode` / `decode` never apply it.
    public var scalingFactor: Float = 0.18215
    public var shiftFactor: Float? = nil
    public var forceUpcast = true
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    /// GroupNorm epsilon of every norm of the VAE (vae.py passes resnet_eps=1e-6 to every block and
    /// eps=1e-6 to conv_norm_out; the mid attention's group_norm gets the same).
    public static let eps: Float = 1e-6

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case actFn = "act_fn", latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
        case sampleSize = "sample_size", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case forceUpcast = "force_upcast", useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init() {}

    /// The Stable Diffusion 2 VAE (stabilityai/stable-diffusion-2 `vae/config.json`), 83,653,863
    /// parameters — the VAE of Hunyuan3D-1.0's lite multi-view diffusion.
    public static var stableDiffusion2: AutoencoderKLConfig {
        var c = AutoencoderKLConfig()
        c.blockOutChannels = [128, 256, 512, 512]
        c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 4)
        c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 4)
        c.layersPerBlock = 2
        c.sampleSize = 768
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decode(.inChannels, default: inChannels)
        outChannels = try c.decode(.outChannels, default: outChannels)
        downBlockTypes = try c.decode(.downBlockTypes, default: downBlockTypes)
        upBlockTypes = try c.decode(.upBlockTypes, default: upBlockTypes)
        blockOutChannels = try c.decode(.blockOutChannels, default: blockOutChannels)
        layersPerBlock = try c.decode(.layersPerBlock, default: layersPerBlock)
        actFn = try c.decode(.actFn, default: actFn)
        latentChannels = try c.decode(.latentChannels, default: latentChannels)
        normNumGroups = try c.decode(.normNumGroups, default: normNumGroups)
        sampleSize = try c.decode(.sampleSize, default: sampleSize)
        scalingFactor = try c.decode(.scalingFactor, default: scalingFactor)
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        forceUpcast = try c.decode(.forceUpcast, default: forceUpcast)
        useQuantConv = try c.decode(.useQuantConv, default: useQuantConv)
        usePostQuantConv = try c.decode(.usePostQuantConv, default: usePostQuantConv)
        midBlockAddAttention = try c.decode(.midBlockAddAttention, default: midBlockAddAttention)
    }

    /// Spatial factor between image and latent: 2^(levels − 1).
    public var scaleFactor: Int { 1 << max(blockOutChannels.count - 1, 0) }

    /// Checks what this implementation supports; errors name the key.
    public func validate(context: String = "vae/config.json") throws {
        let n = blockOutChannels.count
        guard n >= 1 else { throw HYError.format("\(context): block_out_channels is empty") }
        guard downBlockTypes.count == n, upBlockTypes.count == n else {
            throw HYError.format("\(context): down_block_types (\(downBlockTypes.count)) and up_block_types (\(upBlockTypes.count)) must match block_out_channels (\(n))")
        }
        for t in downBlockTypes where t != "DownEncoderBlock2D" {
            throw HYError.unsupported("\(context): down_block_types: \(t) (only DownEncoderBlock2D)")
        }
        for t in upBlockTypes where t != "UpDecoderBlock2D" {
            throw HYError.unsupported("\(context): up_block_types: \(t) (only UpDecoderBlock2D)")
        }
        guard actFn == "silu" || actFn == "swish" else { throw HYError.unsupported("\(context): act_fn \"\(actFn)\" (only silu)") }
        guard layersPerBlock >= 1 else { throw HYError.format("\(context): layers_per_block must be ≥ 1") }
        guard inChannels >= 1, outChannels >= 1, latentChannels >= 1, normNumGroups >= 1 else {
            throw HYError.format("\(context): in_channels, out_channels, latent_channels and norm_num_groups must be ≥ 1")
        }
        for ch in blockOutChannels where ch < 1 || ch % normNumGroups != 0 {
            throw HYError.format("\(context): block_out_channels \(ch) is not a positive multiple of norm_num_groups \(normNumGroups)")
        }
    }
}

/// The VAE's tensors under diffusers' state-dict names, generic over what a declared tensor becomes
/// (`WeightBinder`); `AutoencoderKLTensors.declare` is the one place names and shapes are written.
/// Convolutions are [out, in·kh·kw] matrices (`WeightBinder.conv2d`).
public struct AutoencoderKLWeightSet<M, V> {
    /// diffusers `ResnetBlock2D` without time embedding: GroupNorm → SiLU → conv3×3 → GroupNorm →
    /// SiLU → conv3×3, plus the input (through a 1×1 `conv_shortcut` when the channels change).
    public struct Resnet {
        public let inChannels: Int, outChannels: Int
        public let norm1W: V, norm1B: V, conv1: LinearLayer<M, V>
        public let norm2W: V, norm2B: V, conv2: LinearLayer<M, V>
        public let shortcut: LinearLayer<M, V>?
    }

    /// The mid block's single-head spatial self-attention (`Attention` with GroupNorm, residual).
    public struct SpatialAttention {
        public let normW: V, normB: V
        public let q: LinearLayer<M, V>, k: LinearLayer<M, V>, v: LinearLayer<M, V>, out: LinearLayer<M, V>
    }

    /// `UNetMidBlock2D`: resnet, attention (unless `mid_block_add_attention` is false), resnet.
    public struct Mid {
        public let resnet0: Resnet, attention: SpatialAttention?, resnet1: Resnet
    }

    /// One `DownEncoderBlock2D` / `UpDecoderBlock2D`: its resnets and its stride-2 down-sampling
    /// conv or its conv after nearest 2× up-sampling (absent on the last level).
    public struct Level {
        public let resnets: [Resnet]
        public let resample: LinearLayer<M, V>?
    }

    public struct Encoder {
        public let convIn: LinearLayer<M, V>
        public let levels: [Level]
        public let mid: Mid
        public let normOutW: V, normOutB: V
        public let convOut: LinearLayer<M, V>   // → 2·latent channels (mean | logvar)
    }

    public struct Decoder {
        public let convIn: LinearLayer<M, V>
        public let mid: Mid
        public let levels: [Level]              // coarsest first (diffusers' up_blocks order)
        public let normOutW: V, normOutB: V
        public let convOut: LinearLayer<M, V>
    }

    public let encoder: Encoder
    public let decoder: Decoder
    public let quantConv: LinearLayer<M, V>?       // 1×1, 2·latent → 2·latent
    public let postQuantConv: LinearLayer<M, V>?   // 1×1, latent → latent
}

extension AutoencoderKLWeightSet.Resnet: Sendable where M: Sendable, V: Sendable {}
extension AutoencoderKLWeightSet.SpatialAttention: Sendable where M: Sendable, V: Sendable {}
extension AutoencoderKLWeightSet.Mid: Sendable where M: Sendable, V: Sendable {}
extension AutoencoderKLWeightSet.Level: Sendable where M: Sendable, V: Sendable {}
extension AutoencoderKLWeightSet.Encoder: Sendable where M: Sendable, V: Sendable {}
extension AutoencoderKLWeightSet.Decoder: Sendable where M: Sendable, V: Sendable {}
extension AutoencoderKLWeightSet: Sendable where M: Sendable, V: Sendable {}

public typealias AutoencoderKLWeights = AutoencoderKLWeightSet<WeightMatrix, [Float]>

public enum AutoencoderKLTensors {
    /// Every tensor of a diffusers AutoencoderKL checkpoint of configuration `c`, bound by `b`.
    /// `legacyAttentionNames`: the mid attention as pre-0.14 diffusers files name it
    /// (`query`/`key`/`value`/`proj_attn`, which diffusers renames on load).
    public static func declare<B: WeightBinder>(_ c: AutoencoderKLConfig, _ b: B, legacyAttentionNames: Bool = false)
        throws -> AutoencoderKLWeightSet<B.Matrix, B.Vector> {
        typealias S = AutoencoderKLWeightSet<B.Matrix, B.Vector>
        try c.validate()
        let ch = c.blockOutChannels, top = ch[ch.count - 1], lc = c.latentChannels
        func resnet(_ p: String, _ i: Int, _ o: Int) throws -> S.Resnet {
            S.Resnet(inChannels: i, outChannels: o,
                     norm1W: try b.vector(p + ".norm1.weight", i), norm1B: try b.vector(p + ".norm1.bias", i),
                     conv1: try b.conv2d(p + ".conv1", in: i, out: o, kernel: (3, 3)),
                     norm2W: try b.vector(p + ".norm2.weight", o), norm2B: try b.vector(p + ".norm2.bias", o),
                     conv2: try b.conv2d(p + ".conv2", in: o, out: o, kernel: (3, 3)),
                     shortcut: i == o ? nil : try b.conv2d(p + ".conv_shortcut", in: i, out: o, kernel: (1, 1)))
        }
        func mid(_ p: String) throws -> S.Mid {
            let r0 = try resnet(p + ".resnets.0", top, top)
            var att: S.SpatialAttention? = nil
            if c.midBlockAddAttention {
                let a = p + ".attentions.0."
                let n = legacyAttentionNames ? ["query", "key", "value", "proj_attn"] : ["to_q", "to_k", "to_v", "to_out.0"]
                att = S.SpatialAttention(normW: try b.vector(a + "group_norm.weight", top), normB: try b.vector(a + "group_norm.bias", top),
                                         q: try b.linear(a + n[0], in: top, out: top), k: try b.linear(a + n[1], in: top, out: top),
                                         v: try b.linear(a + n[2], in: top, out: top), out: try b.linear(a + n[3], in: top, out: top))
            }
            return S.Mid(resnet0: r0, attention: att, resnet1: try resnet(p + ".resnets.1", top, top))
        }

        let convIn = try b.conv2d("encoder.conv_in", in: c.inChannels, out: ch[0], kernel: (3, 3))
        var down: [S.Level] = []
        var prev = ch[0]
        for (i, o) in ch.enumerated() {
            let p = "encoder.down_blocks.\(i)"
            var rs: [S.Resnet] = []
            for j in 0..<c.layersPerBlock { rs.append(try resnet(p + ".resnets.\(j)", j == 0 ? prev : o, o)) }
            let ds = i == ch.count - 1 ? nil : try b.conv2d(p + ".downsamplers.0.conv", in: o, out: o, kernel: (3, 3))
            down.append(S.Level(resnets: rs, resample: ds))
            prev = o
        }
        let encMid = try mid("encoder.mid_block")
        let encoder = S.Encoder(convIn: convIn, levels: down, mid: encMid,
                                normOutW: try b.vector("encoder.conv_norm_out.weight", top),
                                normOutB: try b.vector("encoder.conv_norm_out.bias", top),
                                convOut: try b.conv2d("encoder.conv_out", in: top, out: 2 * lc, kernel: (3, 3)))

        let decIn = try b.conv2d("decoder.conv_in", in: lc, out: top, kernel: (3, 3))
        let decMid = try mid("decoder.mid_block")
        var up: [S.Level] = []
        prev = top
        for (i, o) in ch.reversed().enumerated() {
            let p = "decoder.up_blocks.\(i)"
            var rs: [S.Resnet] = []
            for j in 0...c.layersPerBlock { rs.append(try resnet(p + ".resnets.\(j)", j == 0 ? prev : o, o)) }
            let us = i == ch.count - 1 ? nil : try b.conv2d(p + ".upsamplers.0.conv", in: o, out: o, kernel: (3, 3))
            up.append(S.Level(resnets: rs, resample: us))
            prev = o
        }
        let decoder = S.Decoder(convIn: decIn, mid: decMid, levels: up,
                                normOutW: try b.vector("decoder.conv_norm_out.weight", ch[0]),
                                normOutB: try b.vector("decoder.conv_norm_out.bias", ch[0]),
                                convOut: try b.conv2d("decoder.conv_out", in: ch[0], out: c.outChannels, kernel: (3, 3)))
        let qc = c.useQuantConv ? try b.conv2d("quant_conv", in: 2 * lc, out: 2 * lc, kernel: (1, 1)) : nil
        let pqc = c.usePostQuantConv ? try b.conv2d("post_quant_conv", in: lc, out: lc, kernel: (1, 1)) : nil
        return S(encoder: encoder, decoder: decoder, quantConv: qc, postQuantConv: pqc)
    }

    /// The declared tensors of `c` (name, shape, matrix or not), in declaration order.
    public static func table(for c: AutoencoderKLConfig) throws -> WeightTable {
        let t = WeightTable()
        _ = try declare(c, t)
        return t
    }
}

/// A loaded diffusers AutoencoderKL. Immutable; `encode` / `decode` may run concurrently (each call
/// owns its buffers) but each call uses `pool` for its threads.
///
/// Memory: activations are fp32 [C, H, W] buffers, released as soon as the next stage no longer
/// needs them. A resnet at P pixels holds 3·C·P floats when its channels stay C, and Cin·P + 2·Cout·P
/// when they change; the up-sampling conv reads its low-resolution input directly (no 4× copy).
/// Decoding 80×120 → 640×960 with the SD VAE peaks in the first resnet of the last level at
/// (256 + 2·128)·614,400 floats ≈ 1.26 GB (+ ≤ 32 MB of im2col chunks); encoding 640×640 peaks at
/// 3·128·409,600 floats ≈ 0.63 GB.
public final class AutoencoderKL: @unchecked Sendable {
    public let config: AutoencoderKLConfig
    public let weights: AutoencoderKLWeights
    /// How the products are computed (the weights' bf16 forms are made at load for `.bf16`).
    public let compute: ComputePrecision

    /// Image pixels per latent pixel along each side: 2^(levels − 1).
    public var scaleFactor: Int { config.scaleFactor }

    /// Loads a diffusers `vae/` folder (`config.json` + `diffusion_pytorch_model[.variant].safetensors`).
    /// `compute`: see `ComputePrecision`.
    public convenience init(folder: String, variant: String? = nil, compute: ComputePrecision = .fp32) throws {
        let config = try Component.config(AutoencoderKLConfig.self, folder)
        try config.validate(context: FileSystem.join(folder, "config.json"))
        try self.init(config: config, checkpoint: try Checkpoint(component: folder, variant: variant), compute: compute)
    }

    /// Binds `checkpoint` to `config`: every declared tensor present with its shape, none left over
    /// (format errors name the file and tensor).
    public init(config: AutoencoderKLConfig, checkpoint ck: Checkpoint, compute: ComputePrecision = .fp32) throws {
        try config.validate()
        let legacy = config.midBlockAddAttention && ck.tensor("encoder.mid_block.attentions.0.query.weight") != nil
        self.config = config
        self.compute = compute
        weights = try Component.load(ck, context: "this AutoencoderKL configuration", compute: compute) { b in
            try AutoencoderKLTensors.declare(config, b, legacyAttentionNames: legacy)
        }
    }

    /// A VAE over already bound weights (tests, random-weight benchmarks).
    public init(config: AutoencoderKLConfig, weights: AutoencoderKLWeights, compute: ComputePrecision = .fp32) {
        self.config = config
        self.weights = weights
        self.compute = compute
    }

    /// The posterior of an image: `image` [inChannels, height, width] fp32 (normalized, ~[−1, 1])
    /// → mean and logvar, each [latentChannels, height/f, width/f] with f = `scaleFactor`; logvar
    /// clamped to [−30, 20] (DiagonalGaussianDistribution). A sample is mean + exp(0.5·logvar)·noise;
    /// `scalingFactor` is not applied. height and width must be positive multiples of f.
    /// `shouldStop` is polled between blocks (then `HYError.aborted`); `trace` receives
    /// `encoder.conv_in`, `encoder.down_blocks.i`, `encoder.mid_block`, `encoder.conv_out`, `moments`.
    public func encode(_ image: [Float], height: Int, width: Int, pool: ThreadPool?, trace: Trace? = nil,
                       shouldStop: (() -> Bool)? = nil) throws -> (mean: [Float], logvar: [Float]) {
        let c = config, f = scaleFactor, e = weights.encoder
        guard height > 0, width > 0, height % f == 0, width % f == 0 else {
            throw HYError.invalidArgument("AutoencoderKL.encode: image size \(height)×\(width) is not a positive multiple of the scale factor \(f)")
        }
        guard image.count == c.inChannels * height * width else {
            throw HYError.invalidArgument("AutoencoderKL.encode: \(image.count) values for a [\(c.inChannels), \(height), \(width)] image")
        }
        func stop() throws { if let shouldStop, shouldStop() { throw HYError.aborted() } }
        var h = height, w = width, ch = c.blockOutChannels[0]
        var x = FloatBuffer(ch * h * w, zeroed: false)
        try image.withUnsafeBufferPointer { try conv3(e.convIn).forward($0.baseAddress!, height: h, width: w, x.p, pool: pool) }
        trace.emit("encoder.conv_in", [ch, h, w], x.p)
        for (i, level) in e.levels.enumerated() {
            try stop()
            for r in level.resnets { x = try resnet(r, x, height: h, width: w, pool: pool); ch = r.outChannels }
            if let ds = level.resample {
                // Downsample2D with padding 0: pad (0, 1, 0, 1) then a stride-2 conv.
                let cv = try conv(ds, kernel: 3, stride: 2, padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1))
                let (ho, wo) = cv.outputSize(height: h, width: w)
                let y = FloatBuffer(ch * ho * wo, zeroed: false)
                cv.forward(x.p, height: h, width: w, y.p, pool: pool)
                x = y; h = ho; w = wo
            }
            trace.emit("encoder.down_blocks.\(i)", [ch, h, w], x.p)
        }
        try stop()
        x = try midBlock(e.mid, x, channels: ch, height: h, width: w, pool: pool, stop: stop)
        trace.emit("encoder.mid_block", [ch, h, w], x.p)
        normSiLU(x.p, channels: ch, pixels: h * w, weight: e.normOutW, bias: e.normOutB, x.p, pool: pool)
        let lc = c.latentChannels
        var m = FloatBuffer(2 * lc * h * w, zeroed: false)
        try conv3(e.convOut).forward(x.p, height: h, width: w, m.p, pool: pool)
        x = FloatBuffer(0)
        trace.emit("encoder.conv_out", [2 * lc, h, w], m.p)
        if let q = weights.quantConv {
            let y = FloatBuffer(2 * lc * h * w, zeroed: false)
            try conv1(q).forward(m.p, height: h, width: w, y.p, pool: pool)
            m = y
        }
        trace.emit("moments", [2 * lc, h, w], m.p)
        let n = lc * h * w
        let mean = Array(UnsafeBufferPointer(start: m.p, count: n))
        let logvar = UnsafeBufferPointer(start: m.p + n, count: n).map { min(max($0, -30), 20) }
        return (mean, logvar)
    }

    /// Decodes `latent` [latentChannels, h, w] (already divided by `scalingFactor` by the caller)
    /// → [outChannels, h·f, w·f]. `shouldStop` / `trace` as in `encode` (`decoder.conv_in`,
    /// `decoder.mid_block`, `decoder.up_blocks.i`).
    public func decode(_ latent: [Float], height h0: Int, width w0: Int, pool: ThreadPool?, trace: Trace? = nil,
                       shouldStop: (() -> Bool)? = nil) throws -> [Float] {
        let c = config, d = weights.decoder, lc = c.latentChannels
        guard h0 > 0, w0 > 0, latent.count == lc * h0 * w0 else {
            throw HYError.invalidArgument("AutoencoderKL.decode: \(latent.count) values for a [\(lc), \(h0), \(w0)] latent")
        }
        func stop() throws { if let shouldStop, shouldStop() { throw HYError.aborted() } }
        var h = h0, w = w0
        var z = FloatBuffer(latent)
        if let pq = weights.postQuantConv {
            let y = FloatBuffer(lc * h * w, zeroed: false)
            try conv1(pq).forward(z.p, height: h, width: w, y.p, pool: pool)
            z = y
        }
        var ch = c.blockOutChannels[c.blockOutChannels.count - 1]
        var x = FloatBuffer(ch * h * w, zeroed: false)
        try conv3(d.convIn).forward(z.p, height: h, width: w, x.p, pool: pool)
        z = FloatBuffer(0)
        trace.emit("decoder.conv_in", [ch, h, w], x.p)
        try stop()
        x = try midBlock(d.mid, x, channels: ch, height: h, width: w, pool: pool, stop: stop)
        trace.emit("decoder.mid_block", [ch, h, w], x.p)
        for (i, level) in d.levels.enumerated() {
            for r in level.resnets {
                try stop()
                x = try resnet(r, x, height: h, width: w, pool: pool); ch = r.outChannels
            }
            if let us = level.resample {
                try stop()
                let y = FloatBuffer(ch * 4 * h * w, zeroed: false)
                try conv3(us).forward(x.p, height: h, width: w, y.p, pool: pool, upsample2x: true)
                x = y; h *= 2; w *= 2
            }
            trace.emit("decoder.up_blocks.\(i)", [ch, h, w], x.p)
        }
        normSiLU(x.p, channels: ch, pixels: h * w, weight: d.normOutW, bias: d.normOutB, x.p, pool: pool)
        let co = try conv3(d.convOut), n = c.outChannels * h * w
        return [Float](unsafeUninitializedCapacity: n) { buf, count in
            co.forward(x.p, height: h, width: w, buf.baseAddress!, pool: pool)
            count = n
        }
    }

    // MARK: - Blocks

    /// A declared k×k convolution (its input channels follow from the weight's width).
    private func conv(_ l: Linear, kernel k: Int, stride: Int = 1, padding: Padding2D) throws -> Conv2d {
        try Conv2d(l, inChannels: l.inFeatures / (k * k), kernel: (k, k), stride: stride, padding: padding)
    }
    /// 3×3, stride 1, padding 1.
    private func conv3(_ l: Linear) throws -> Conv2d { try conv(l, kernel: 3, padding: Padding2D(1)) }
    /// 1×1.
    private func conv1(_ l: Linear) throws -> Conv2d { try conv(l, kernel: 1, padding: Padding2D(0)) }

    /// out = SiLU(GroupNorm(x)) over [channels, pixels]; out may equal x.
    private func normSiLU(_ x: UnsafePointer<Float>, channels: Int, pixels: Int, weight: [Float], bias: [Float],
                          _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        weight.withUnsafeBufferPointer { wp in
            bias.withUnsafeBufferPointer { bp in
                groupNorm(x, channels: channels, spatial: pixels, groups: config.normNumGroups, eps: AutoencoderKLConfig.eps,
                          weight: wp.baseAddress, bias: bp.baseAddress, out, pool: pool)
            }
        }
        parallelRows(pool, channels * pixels, minChunk: 1 << 14) { r in siluInPlace(out + r.lowerBound, r.count) }
    }

    /// ResnetBlock2D (no time embedding, output_scale_factor 1) on x [inC, h, w] → [outC, h, w].
    /// Takes x: its storage is overwritten (and may be returned).
    private func resnet(_ r: AutoencoderKLWeights.Resnet, _ x: FloatBuffer, height h: Int, width w: Int,
                        pool: ThreadPool?) throws -> FloatBuffer {
        let hw = h * w, ci = r.inChannels, co = r.outChannels
        let c1 = try conv3(r.conv1), c2 = try conv3(r.conv2)
        if let sc = r.shortcut {
            let out = FloatBuffer(co * hw, zeroed: false)
            try conv1(sc).forward(x.p, height: h, width: w, out.p, pool: pool)
            normSiLU(x.p, channels: ci, pixels: hw, weight: r.norm1W, bias: r.norm1B, x.p, pool: pool)
            let t = FloatBuffer(co * hw, zeroed: false)
            c1.forward(x.p, height: h, width: w, t.p, pool: pool)
            normSiLU(t.p, channels: co, pixels: hw, weight: r.norm2W, bias: r.norm2B, t.p, pool: pool)
            let y = x.count >= co * hw ? x : FloatBuffer(co * hw, zeroed: false)
            c2.forward(t.p, height: h, width: w, y.p, pool: pool)
            addInPlace(out.p, y.p, co * hw, pool: pool)
            return out
        }
        let a = FloatBuffer(ci * hw, zeroed: false)
        normSiLU(x.p, channels: ci, pixels: hw, weight: r.norm1W, bias: r.norm1B, a.p, pool: pool)
        let t = FloatBuffer(co * hw, zeroed: false)
        c1.forward(a.p, height: h, width: w, t.p, pool: pool)
        normSiLU(t.p, channels: co, pixels: hw, weight: r.norm2W, bias: r.norm2B, t.p, pool: pool)
        c2.forward(t.p, height: h, width: w, a.p, pool: pool)
        addInPlace(x.p, a.p, co * hw, pool: pool)
        return x
    }

    /// UNetMidBlock2D: resnet, spatial self-attention (one head over all channels, residual), resnet.
    private func midBlock(_ m: AutoencoderKLWeights.Mid, _ x0: FloatBuffer, channels c: Int, height h: Int, width w: Int,
                          pool: ThreadPool?, stop: () throws -> Void) throws -> FloatBuffer {
        var x = try resnet(m.resnet0, x0, height: h, width: w, pool: pool)
        if let a = m.attention {
            try stop()
            let n = h * w
            let g = FloatBuffer(c * n, zeroed: false)
            a.normW.withUnsafeBufferPointer { wp in
                a.normB.withUnsafeBufferPointer { bp in
                    groupNorm(x.p, channels: c, spatial: n, groups: config.normNumGroups, eps: AutoencoderKLConfig.eps,
                              weight: wp.baseAddress, bias: bp.baseAddress, g.p, pool: pool)
                }
            }
            let tokens = FloatBuffer(n * c, zeroed: false)
            transpose(g.p, rows: c, cols: n, tokens.p, pool: pool)        // [C, N] → [N, C]
            let q = g  // reuse: same size
            let k = FloatBuffer(n * c, zeroed: false), v = FloatBuffer(n * c, zeroed: false)
            a.q.forward(tokens.p, rows: n, q.p, pool: pool)
            a.k.forward(tokens.p, rows: n, k.p, pool: pool)
            a.v.forward(tokens.p, rows: n, v.p, pool: pool)
            attention(q: q.p, qStride: c, nq: n, keys: k.p, kStride: c, values: v.p, vStride: c, nk: n,
                      heads: 1, kvHeads: 1, headDim: c, scale: 1 / Float(c).squareRoot(), out: tokens.p, outStride: c,
                      precision: compute, pool: pool)
            a.out.forward(tokens.p, rows: n, k.p, pool: pool)
            // x[ch, p] += o[p, ch]
            let o = k.p
            parallelRows(pool, c, minChunk: 4) { cr in
                for ch in cr {
                    let xr = x.p + ch * n
                    for p in 0..<n { xr[p] += o[p * c + ch] }
                }
            }
        }
        try stop()
        x = try resnet(m.resnet1, x, height: h, width: w, pool: pool)
        return x
    }

    /// out[cols, rows] = xᵀ for x[rows, cols].
    private func transpose(_ x: UnsafePointer<Float>, rows: Int, cols: Int, _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        parallelRows(pool, cols, minChunk: 64) { cr in
            for j in cr {
                let o = out + j * rows
                for i in 0..<rows { o[i] = x[i * cols + j] }
            }
        }
    }
}

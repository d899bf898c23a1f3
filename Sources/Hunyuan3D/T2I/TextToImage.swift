#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN
import HunyuanImage
import HunyuanDiffusion

/// Hunyuan3D-1.0's text-to-image stage (`infer/text_to_image.py`, the release's `hunyuanDiT/` folder):
/// HunyuanDiT v1.1 through diffusers' `HunyuanDiTPAGPipeline` with Perturbed-Attention Guidance on the
/// four self-attentions before the middle of the network (officially `blocks.(16|17|18|19)`), the
/// prompt followed by the fixed style suffix and the fixed negative prompt.
///
/// The folder is read as diffusers does: `model_index.json`, `tokenizer/` (BERT WordPiece) +
/// `text_encoder/` (BertModel), `tokenizer_2/` (mT5 SentencePiece) + `text_encoder_2/` (T5EncoderModel),
/// `transformer/` (HunyuanDiT2DModel), `vae/` (AutoencoderKL), `scheduler/` (DDPMScheduler). Opening it
/// reads the small files; each network is opened when its stage starts and released when it ends, so
/// the peak is the largest network plus its activations, not the sum.
///
/// A run (`generate`), with the official conventions (P: = diffusers' pipeline_pag_hunyuandit.py):
/// both prompts through both tokenizers (77 and 256 tokens, padded) and encoders, one prompt at a time
/// (P:345-415) → the batch [negative, prompt, prompt (perturbed)] (CFG + PAG, P:833-863) with the size
/// conditioning [1024, 1024, H, W, 0, 0] and style 0 → per step one DiT call on the three copies of the
/// latents, guidance u + g·(c − u) + s·(c − p) on the first four output channels (PU:101-131), the DDPM
/// step with fresh noise → decode latents / scaling_factor → clamp(x/2 + 0.5) → round(·255).
/// Sizes are used as given (floored to multiples of 16, as the pipeline does); the official 1024²
/// is one of the pipeline's standard shapes, so resolution binning does not change it.
///
/// Not thread-safe: one `generate` at a time per instance (the pool is the caller's).
public final class TextToImage: @unchecked Sendable {
    /// Appended to every prompt by Hunyuan3D-1.0 (T:78): "white background, 3D style, best quality".
    public static let styleSuffix = ",白色背景,3D风格,最佳质量"
    /// Hunyuan3D-1.0's negative prompt (T:50-52).
    public static let negativePrompt = "文本,特写,裁剪,出框,最差质量,低质量,JPEG伪影,PGLY,重复,病态,残缺,多余的手指,变异的手,"
        + "画得不好的手,画得不好的脸,变异,畸形,模糊,脱水,糟糕的解剖学,糟糕的比例,多余的肢体,克隆的脸,"
        + "毁容,恶心的比例,畸形的肢体,缺失的手臂,缺失的腿,额外的手臂,额外的腿,融合的手指,手指太多,长脖子"

    public static let components = ["tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2", "transformer", "vae",
                                    "scheduler"]

    public let folder: String
    public let variant: String?
    public let compute: ComputePrecision
    public let bertTokenizer: BertTokenizer
    public let t5Tokenizer: T5Tokenizer
    public let scheduler: DDPMScheduler
    public let ditConfig: HunyuanDiTConfig
    public let vaeConfig: AutoencoderKLConfig

    /// A run's settings. The defaults are the official call's (T:79-83 and the pipeline's defaults).
    public struct Options: Sendable {
        public var steps = 25
        public var height = 1024
        public var width = 1024
        /// Classifier-free guidance scale (> 1 runs the negative branch).
        public var guidanceScale: Float = 5
        /// PAG scale (> 0 runs the perturbed branch).
        public var pagScale: Float = 1.3
        /// Blocks whose self-attention PAG replaces; nil: the official slot, the four blocks before the
        /// middle (16-19 of 40).
        public var pagLayers: [Int]? = nil
        /// Append `styleSuffix` to the prompt (Hunyuan3D's behaviour).
        public var styleSuffix = true
        /// nil: Hunyuan3D's `negativePrompt`.
        public var negativePrompt: String? = nil
        public init() {}
    }

    /// The stages of a run, in order.
    public enum Stage: Int, Sendable, CaseIterable {
        case encodeText, denoise, decode, done
        public var name: String {
            switch self {
            case .encodeText: return "encode text"
            case .denoise: return "denoise"
            case .decode: return "decode"
            case .done: return "done"
            }
        }
    }

    /// `completed` of `total` units of `stage` are done; `overall` weights the stages by their usual
    /// share of the time (the steps are nearly all of it).
    public struct Progress: Sendable {
        public var stage: Stage
        public var completed: Int
        public var total: Int
        public var overall: Float {
            let f = total > 0 ? Float(completed) / Float(total) : 1
            switch stage {
            case .encodeText: return 0.03 * f
            case .denoise: return 0.03 + 0.94 * f
            case .decode: return 0.97 + 0.03 * f
            case .done: return 1
            }
        }
    }

    /// Opens a `hunyuanDiT/` pipeline folder: tokenizers, scheduler, configs and the weights files'
    /// headers are read now (errors name the component), the networks when a run needs them.
    public init(folder: String, variant: String? = nil, compute: ComputePrecision = .fp32) throws {
        try PipelineFolder.check(folder, components: Self.components)
        func component<T>(_ name: String, _ open: (String) throws -> T) throws -> T { try PipelineFolder.open(folder, name, open) }
        bertTokenizer = try component("tokenizer") { try BertTokenizer(folder: $0) }
        t5Tokenizer = try component("tokenizer_2") { try T5Tokenizer(folder: $0) }
        scheduler = try component("scheduler") { try DDPMScheduler(folder: $0) }
        ditConfig = try component("transformer") { dir in
            let c = try Component.config(HunyuanDiTConfig.self, dir)
            try c.validate(context: FileSystem.join(dir, "config.json"))
            return c
        }
        vaeConfig = try component("vae") { dir in
            let c = try Component.config(AutoencoderKLConfig.self, dir)
            try c.validate(context: FileSystem.join(dir, "config.json"))
            return c
        }
        // The weights' headers now, so a broken file is named before a run spends minutes on the encoders.
        for c in ["text_encoder", "text_encoder_2", "transformer", "vae"] {
            _ = try component(c) { try Checkpoint(component: $0, variant: variant) }
        }
        guard vaeConfig.latentChannels == ditConfig.inChannels else {
            throw HYError.format("\(folder): the VAE's \(vaeConfig.latentChannels) latent channels differ from the transformer's \(ditConfig.inChannels) inputs")
        }
        self.folder = folder
        self.variant = variant
        self.compute = compute
    }

    /// Our seeded draws for a text-to-image run: `SeededNoise(seed)` under the names `t2i.*` (so a
    /// text-to-mesh run seeded alike draws the views' noise independently). The CLI, the C API and
    /// Python use this, so one seed gives one picture everywhere.
    public static func seededNoise(_ seed: UInt64) -> NamespacedNoise<SeededNoise> {
        NamespacedNoise(prefix: "t2i.", base: SeededNoise(seed: seed))
    }

    /// The official PAG slot of a network of n blocks: the four blocks before the middle.
    public static func defaultPAGLayers(blocks n: Int) -> [Int] { Array(max(0, n / 2 - 4)..<max(0, n / 2)) }

    /// The token ids and masks of a prompt as the pipeline makes them: BERT (77) and mT5 (256).
    public func tokenize(_ text: String) -> (bert: (ids: [Int32], mask: [Int32]), t5: (ids: [Int32], mask: [Int32])) {
        (bertTokenizer.encode(text, maxLength: ditConfig.textLen), t5Tokenizer.encode(text, maxLength: ditConfig.textLenT5))
    }

    /// Runs the pipeline on `prompt` (as the user typed it; the suffix and the negative prompt are
    /// added per `options`). `noise` supplies every Gaussian draw by name (`initial_noise`,
    /// `step{i}_variance_noise`; `SeededNoise` for our own generator). `progress` (calling thread) may
    /// return false to cancel; `abort` is polled inside the networks; cancelling throws `.aborted`.
    /// `trace` receives the reference's intermediates by name (bert_hidden, t5_hidden: rows [prompt,
    /// negative]; rope_cos, rope_sin, step{i}_dit_out, step{i}_guided, step{i}_latents_out, decoded).
    /// Returns the height × width RGB image.
    public func generate(prompt: String, options o: Options = Options(), noise: NoiseSource, pool: ThreadPool?,
                         progress: ((Progress) -> Bool)? = nil, abort: (() -> Bool)? = nil,
                         trace: Trace? = nil) throws -> ByteImage {
        let (ts, prev) = try scheduler.timesteps(steps: o.steps)
        let height = (o.height / 16) * 16, width = (o.width / 16) * 16
        let f = vaeConfig.scaleFactor, ps = ditConfig.patchSize
        guard height >= 16, width >= 16, height <= 4096, width <= 4096, height % (f * ps) == 0, width % (f * ps) == 0 else {
            throw HYError.invalidArgument("image \(o.height)×\(o.width): each side must be 16…4096 px and a multiple of \(f * ps) (the VAE factor × the patch)")
        }
        guard o.guidanceScale.isFinite, o.pagScale.isFinite, o.pagScale >= 0 else {
            throw HYError.invalidArgument("guidance scale \(o.guidanceScale) and PAG scale \(o.pagScale) must be finite (PAG ≥ 0)")
        }
        let pagLayers = o.pagLayers ?? Self.defaultPAGLayers(blocks: ditConfig.numLayers)
        guard pagLayers.allSatisfy({ $0 >= 0 && $0 < ditConfig.numLayers }) else {
            throw HYError.invalidArgument("PAG layers \(pagLayers): the transformer has blocks 0..<\(ditConfig.numLayers)")
        }
        func report(_ s: Stage, _ done: Int, _ total: Int) throws {
            if let progress, !progress(Progress(stage: s, completed: done, total: total)) {
                throw HYError.aborted("text to image cancelled at \(s.name)")
            }
        }
        let stop: () -> Bool = { abort?() ?? false }
        func checkAbort(_ s: Stage) throws { if stop() { throw HYError.aborted("text to image cancelled at \(s.name)") } }
        let cfg = o.guidanceScale > 1, pag = o.pagScale > 0

        // 1. Both prompts through both encoders, one encoder loaded at a time.
        try report(.encodeText, 0, 2)
        let positive = prompt + (o.styleSuffix ? Self.styleSuffix : "")
        let tokens = [tokenize(positive), tokenize(o.negativePrompt ?? Self.negativePrompt)]
        let bert: [[Float]] = try component("text_encoder") { dir in
            let m = try BertModel(folder: dir, variant: variant)
            return try tokens.map { t in try checkAbort(.encodeText); return try m.forward(ids: t.bert.ids, mask: t.bert.mask, pool: pool) }
        }
        (bert[0] + bert[1]).withUnsafeBufferPointer { trace?("bert_hidden", [2, ditConfig.textLen, bert[0].count / ditConfig.textLen], $0) }
        try report(.encodeText, 1, 2)
        let t5: [[Float]] = try component("text_encoder_2") { dir in
            let m = try T5EncoderModel(folder: dir, variant: variant)
            return try tokens.map { t in try checkAbort(.encodeText); return try m.forward(ids: t.t5.ids, mask: t.t5.mask, pool: pool) }
        }
        (t5[0] + t5[1]).withUnsafeBufferPointer { trace?("t5_hidden", [2, ditConfig.textLenT5, t5[0].count / ditConfig.textLenT5], $0) }
        guard bert[0].count == ditConfig.textLen * ditConfig.crossAttentionDim,
              t5[0].count == ditConfig.textLenT5 * ditConfig.crossAttentionDimT5 else {
            throw HYError.format("\(folder): the text encoders' widths (\(bert[0].count / ditConfig.textLen), \(t5[0].count / ditConfig.textLenT5)) differ from the transformer's cross_attention_dim \(ditConfig.crossAttentionDim) / cross_attention_dim_t5 \(ditConfig.crossAttentionDimT5)")
        }
        try report(.encodeText, 2, 2)

        // 2. Denoising. Batch rows: [negative if CFG, prompt, prompt perturbed if PAG].
        let rowsText = (cfg ? [1] : []) + [0] + (pag ? [0] : [])
        let batch = rowsText.count
        let identity = rowsText.indices.map { pag && $0 == batch - 1 }
        let lh = height / f, lw = width / f, lc = ditConfig.inChannels, n = lc * lh * lw
        var latents = try noise.draw("initial_noise", count: n)
        try report(.denoise, 0, o.steps)
        try component("transformer") { dir in
            let dit = try HunyuanDiT2DModel(folder: dir, variant: variant, compute: compute)
            let meta: [Float] = [1024, 1024, Float(height), Float(width), 0, 0]
            let cond = try dit.condition(batch: batch, bert: rowsText.flatMap { bert[$0] },
                                         bertMask: rowsText.flatMap { tokens[$0].bert.mask }, t5: rowsText.flatMap { t5[$0] },
                                         t5Mask: rowsText.flatMap { tokens[$0].t5.mask },
                                         imageMetaSize: Array((0..<batch).map { _ in meta }.joined()), pool: pool)
            let rope = dit.rotaryTables(latentHeight: lh, latentWidth: lw)
            rope.cos.withUnsafeBufferPointer { trace?("rope_cos", [rope.cos.count / ditConfig.attentionHeadDim, ditConfig.attentionHeadDim], $0) }
            rope.sin.withUnsafeBufferPointer { trace?("rope_sin", [rope.sin.count / ditConfig.attentionHeadDim, ditConfig.attentionHeadDim], $0) }
            let co = ditConfig.outChannels, per = co * lh * lw
            for i in 0..<o.steps {
                let input = Array((0..<batch).map { _ in latents }.joined())
                let out = try dit.forward(latents: input, batch: batch, height: lh, width: lw, timestep: Float(ts[i]), cond: cond,
                                          rope: rope, identityAttention: identity, pagLayers: pag ? Set(pagLayers) : [],
                                          pool: pool, shouldStop: stop)
                out.withUnsafeBufferPointer { trace?("step\(i)_dit_out", [batch, co, lh, lw], $0) }
                // The first lc channels of each row are the prediction (the rest, the variance, is dropped).
                let g = o.guidanceScale, s = o.pagScale
                var guided = [Float](repeating: 0, count: n)
                for j in 0..<n {
                    switch (cfg, pag) {
                    case (true, true):
                        let u = out[j], c = out[per + j], p = out[2 * per + j]
                        guided[j] = u + g * (c - u) + s * (c - p)
                    case (true, false):
                        let u = out[j], c = out[per + j]
                        guided[j] = u + g * (c - u)
                    case (false, true):
                        let c = out[j], p = out[per + j]
                        guided[j] = c + s * (c - p)
                    case (false, false):
                        guided[j] = out[j]
                    }
                }
                guided.withUnsafeBufferPointer { trace?("step\(i)_guided", [1, lc, lh, lw], $0) }
                let z = try noise.draw("step\(i)_variance_noise", count: n)
                try latents.withUnsafeMutableBufferPointer { x in
                    try scheduler.step(x.baseAddress!, modelOut: guided, noise: z, n, timestep: ts[i], previous: prev[i])
                }
                guard latents.allSatisfy({ $0.isFinite }) else {
                    throw HYError.format("\(folder): step \(i) produced non-finite latents (NaN or Inf in the weights or inputs?)")
                }
                latents.withUnsafeBufferPointer { trace?("step\(i)_latents_out", [1, lc, lh, lw], $0) }
                try report(.denoise, i + 1, o.steps)
            }
        }

        // 3. Decode and quantise.
        try report(.decode, 0, 1)
        let vae = try component("vae") { try AutoencoderKL(folder: $0, variant: variant, compute: compute) }
        try checkAbort(.decode)
        let decoded = try vae.decode(latents.map { $0 / vae.config.scalingFactor }, height: lh, width: lw, pool: pool,
                                     shouldStop: stop)
        decoded.withUnsafeBufferPointer { trace?("decoded", [1, 3, height, width], $0) }
        var px = [UInt8](repeating: 0, count: height * width * 3)
        let plane = height * width
        for c in 0..<3 {
            for p in 0..<plane {
                let v = decoded[c * plane + p]
                guard v.isFinite else { throw HYError.format("\(folder): the decoded image is not finite") }
                px[p * 3 + c] = UInt8((min(max(v / 2 + 0.5, 0), 1) * 255).rounded(.toNearestOrEven))
            }
        }
        try report(.done, 1, 1)
        return try ByteImage(width: width, height: height, channels: 3, pixels: px)
    }

    private func component<T>(_ name: String, _ open: (String) throws -> T) throws -> T { try PipelineFolder.open(folder, name, open) }
}

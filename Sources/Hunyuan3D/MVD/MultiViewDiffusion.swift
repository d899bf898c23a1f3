#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN
import HunyuanImage
import HunyuanDiffusion

/// Hunyuan3D-1.0's lite multi-view diffusion (`Hunyuan3d_MVD_Lite_Pipeline`, the release's
/// `mvd_lite/` folder): one image → a 3 × 2 grid of six views at azimuths 0, 60, …, 300 (row-major),
/// the order the reconstruction model takes them.
///
/// The folder is read as diffusers does: `model_index.json` (with `ramping_coefficients`), `unet/`,
/// `vae/`, `text_encoder/` + `tokenizer/`, `vision_encoder/`, `feature_extractor_vae/`,
/// `feature_extractor_clip/`, `scheduler/`. Opening it reads the small files and checks that every
/// component is there; each network is opened (memory-mapped, weights used in their stored format)
/// when its stage starts and released when it ends.
///
/// A run (`generate`), with the official file's conventions (`P:` = mvd/hunyuan3d_mvd_lite_pipeline.py):
/// condition image (`MVDPreprocess`) → `feature_extractor_vae` / `feature_extractor_clip` → the
/// condition latent, the VAE posterior *sampled* without the scaling factor, for the image and for
/// zeros (the negative) (P:297, 323-325) → image_embeds of the vision tower, added to the empty
/// prompt's text states with one ramp coefficient per token: prompt_embeds = [text, text + ramp·img]
/// (P:328-331) → the Euler-ancestral schedule, latents = noise·init_noise_sigma → per step: the
/// UNet's write pass on (cond_lat + fresh noise·σ)/sqrt(σ²+1), its read pass on the doubled latents
/// / sqrt(σ²+1) (reference attention, P:90-152), guidance u + M·(2 + 16(t/1000)⁵)/3·(c − u) with the
/// hard-coded latent mask M (P:355-378), the scheduler step → decode (x/0.75 + 0.22)/scaling_factor →
/// image = clamp((decoded/0.5·0.8)/2 + 0.5, 0, 1) → round(·255) (P:78-79, 387-389).
///
/// Not thread-safe: one `generate` at a time per instance (the pool is the caller's).
public final class MultiViewDiffusion: @unchecked Sendable {
    public let folder: String
    /// The weights variant opened (nil: the plain files, else e.g. "fp16").
    public let variant: String?
    /// How the UNet's and the VAE's products are computed (`ComputePrecision`; `.fp32` reproduces the
    /// reference to fp32 rounding).
    public let compute: ComputePrecision
    /// The VAE posterior (mean, logvar) of the all-zero negative image: the same for every run at a
    /// given size, so it is encoded once per instance.
    private var negativePosterior: (height: Int, width: Int, mean: [Float], logvar: [Float])? = nil
    /// One coefficient per text token (`model_index.json`).
    public let ramp: [Float]
    public let scheduler: EulerAncestralScheduler
    public let vaeProcessor: CLIPImageProcessor
    public let clipProcessor: CLIPImageProcessor
    public let tokenizer: CLIPTokenizer
    public let unetConfig: UNetConfig
    public let vaeConfig: AutoencoderKLConfig

    /// The components a folder must hold, in the order they are checked.
    public static let components = ["unet", "vae", "text_encoder", "tokenizer", "vision_encoder",
                                    "feature_extractor_vae", "feature_extractor_clip", "scheduler"]

    private struct ModelIndex: Decodable {
        let _class_name: String?
        let ramping_coefficients: [Float]?
    }

    /// Opens a released `mvd_lite/` folder. Errors name the missing or broken component.
    public init(folder: String, variant: String? = nil, compute: ComputePrecision = .fp32) throws {
        try PipelineFolder.check(folder, components: Self.components)
        let indexPath = FileSystem.join(folder, "model_index.json")
        let index = try JSONValue.decode(ModelIndex.self, contentsOf: indexPath)
        func component<T>(_ name: String, _ open: (String) throws -> T) throws -> T { try PipelineFolder.open(folder, name, open) }
        scheduler = try component("scheduler") { try EulerAncestralScheduler(folder: $0) }
        vaeProcessor = try component("feature_extractor_vae") { try CLIPImageProcessor(folder: $0) }
        clipProcessor = try component("feature_extractor_clip") { try CLIPImageProcessor(folder: $0) }
        tokenizer = try component("tokenizer") { try CLIPTokenizer(folder: $0) }
        unetConfig = try component("unet") { dir in
            let c = try Component.config(UNetConfig.self, dir)
            try c.validate(context: FileSystem.join(dir, "config.json"))
            return c
        }
        vaeConfig = try component("vae") { dir in
            let c = try Component.config(AutoencoderKLConfig.self, dir)
            try c.validate(context: FileSystem.join(dir, "config.json"))
            return c
        }
        guard let r = index.ramping_coefficients, r.count == tokenizer.maxLength else {
            throw HYError.format("\(indexPath): ramping_coefficients must hold one value per text token (\(tokenizer.maxLength))")
        }
        guard r.allSatisfy({ $0.isFinite }) else { throw HYError.format("\(indexPath): ramping_coefficients are not finite") }
        ramp = r
        self.folder = folder
        self.variant = variant
        self.compute = compute
    }

    // MARK: - Progress

    /// The stages of a run, in order.
    public enum Stage: Int, Sendable, CaseIterable {
        /// Condition latents (VAE encoder) and the image embedding (vision tower).
        case encodeImage
        /// The empty prompt through the text tower.
        case encodeText
        /// The denoising steps (reported after each one).
        case denoise
        /// The VAE decoder and the 8-bit views.
        case decode
        case done

        public var name: String {
            switch self {
            case .encodeImage: return "encode image"
            case .encodeText: return "encode text"
            case .denoise: return "denoise"
            case .decode: return "decode"
            case .done: return "done"
            }
        }
    }

    /// `completed` of `total` units of `stage` are done; `overall` is the fraction of the whole run,
    /// weighting the stages by their usual time (the steps are nearly all of it).
    public struct Progress: Sendable {
        public var stage: Stage
        public var completed: Int
        public var total: Int
        public var overall: Float {
            let f = total > 0 ? Float(completed) / Float(total) : 1
            switch stage {
            case .encodeImage: return 0.01 * f
            case .encodeText: return 0.01 + 0.01 * f
            case .denoise: return 0.02 + 0.95 * f
            case .decode: return 0.97 + 0.03 * f
            case .done: return 1
            }
        }
    }

    /// A run's output: the grid (height × width RGB, 3 rows × 2 columns of views) and the six views
    /// cut from it, row-major (azimuth 0, 60, …, 300).
    public struct Result: Sendable {
        public let grid: ByteImage
        public let views: [ByteImage]
    }

    // MARK: - Run

    /// Runs the pipeline. `image`: RGB or RGBA, any size. `steps` ≥ 1 (the official caller uses 50).
    /// `height` × `width`: the grid (official 960 × 640): multiples of the VAE factor times the
    /// UNet's down-sampling (64 at full size), the height of 3 and the width of 2. `noise` supplies every Gaussian draw by name (the fixture's
    /// names; `SeededNoise` for our own generator). `progress` (calling thread) may return false to
    /// cancel; `abort` is polled inside the networks; cancelling throws `.aborted`. `trace` receives
    /// the reference's intermediates by name (prompt_embeds, cond_lat, timesteps, sigmas, latents_T,
    /// step{i}_unet_out / _guided / _latents, decode_in, decoded).
    public func generate(image: ByteImage, steps: Int = 50, height: Int = 960, width: Int = 640, noise: NoiseSource,
                         pool: ThreadPool?, progress: ((Progress) -> Bool)? = nil, abort: (() -> Bool)? = nil,
                         trace: Trace? = nil) throws -> Result {
        let sched = try scheduler.schedule(steps: steps)
        func report(_ s: Stage, _ done: Int, _ total: Int) throws {
            if let progress, !progress(Progress(stage: s, completed: done, total: total)) {
                throw HYError.aborted("multi-view diffusion cancelled at \(s.name)")
            }
        }
        let stop: () -> Bool = { abort?() ?? false }
        func checkAbort(_ s: Stage) throws { if stop() { throw HYError.aborted("multi-view diffusion cancelled at \(s.name)") } }

        // Sizes
        let f = vaeConfig.scaleFactor, down = unetConfig.sizeMultiple
        let m = f * down
        guard height > 0, width > 0, height <= 8192, width <= 8192, height % m == 0, width % m == 0, height % 3 == 0, width % 2 == 0 else {
            throw HYError.invalidArgument("grid \(height)×\(width): both sides must be multiples of \(m) (the VAE's and the UNet's down-sampling), the height of 3 and the width of 2 (3 × 2 views), ≤ 8192")
        }
        let lh = height / f, lw = width / f, lc = unetConfig.inChannels
        let latentCount = lc * lh * lw

        // 1. Condition image → VAE and CLIP pixels → condition latents and image embedding.
        try report(.encodeImage, 0, 1)
        let rgb = MVDPreprocess.conditionRGB(image)
        let pv = vaeProcessor.preprocess(rgb: rgb, width: image.width, height: image.height)
        let pc = clipProcessor.preprocess(rgb: rgb, width: image.width, height: image.height)
        let condLat: [Float], condH: Int, condW: Int
        do {
            let vae = try component("vae") { try AutoencoderKL(folder: $0, variant: variant, compute: compute) }
            guard pv.height % f == 0, pv.width % f == 0 else {
                throw HYError.format("\(folder): feature_extractor_vae's \(pv.height)×\(pv.width) is not a multiple of the VAE factor \(f)")
            }
            condH = pv.height / f; condW = pv.width / f
            let n = vae.config.latentChannels * condH * condW
            guard vae.config.latentChannels == lc else {
                throw HYError.format("\(folder): the VAE's \(vae.config.latentChannels) latent channels do not match the UNet's \(lc) inputs")
            }
            // batch order [negative (zeros), condition]
            var lat = [Float](repeating: 0, count: 2 * n)
            for (b, name) in [(0, "vae_posterior_noise_neg"), (1, "vae_posterior_noise_cond")] {
                try checkAbort(.encodeImage)
                let post: (mean: [Float], logvar: [Float])
                if b == 0, let c = negativePosterior, c.height == pv.height, c.width == pv.width {
                    post = (c.mean, c.logvar)
                } else {
                    let pixels = b == 0 ? [Float](repeating: 0, count: pv.pixels.count) : pv.pixels
                    post = try vae.encode(pixels, height: pv.height, width: pv.width, pool: pool, shouldStop: stop)
                    if b == 0 { negativePosterior = (pv.height, pv.width, post.mean, post.logvar) }
                }
                let eps = try noise.draw(name, count: n)
                for i in 0..<n { lat[b * n + i] = post.mean[i] + expf(0.5 * post.logvar[i]) * eps[i] }
            }
            condLat = lat
        }
        condLat.withUnsafeBufferPointer { trace?("cond_lat", [2, lc, condH, condW], $0) }
        let imageEmbeds: [Float]
        do {
            try checkAbort(.encodeImage)
            let vision = try component("vision_encoder") { try CLIPVisionModel(folder: $0, variant: variant) }
            imageEmbeds = try vision.imageEmbeds(pixels: pc.pixels, pool: pool)
        }
        imageEmbeds.withUnsafeBufferPointer { trace?("image_embeds", [1, $0.count], $0) }

        // 2. The empty prompt; prompt_embeds = [text, text + ramp ⊗ image_embeds].
        try report(.encodeText, 0, 1)
        let text: [Float]
        do {
            let te = try component("text_encoder") { try CLIPTextModel(folder: $0, variant: variant) }
            text = try te.forward(ids: tokenizer.encode(""), pool: pool)
        }
        let L = tokenizer.maxLength, D = text.count / L
        guard imageEmbeds.count == D, D == unetConfig.crossAttentionDim else {
            throw HYError.format("\(folder): text states (\(D)), image embedding (\(imageEmbeds.count)) and the UNet's cross-attention width (\(unetConfig.crossAttentionDim)) differ")
        }
        var context = text + text
        for t in 0..<L { for j in 0..<D { context[(L + t) * D + j] += imageEmbeds[j] * ramp[t] } }
        context.withUnsafeBufferPointer { trace?("prompt_embeds", [2, L, D], $0) }

        // 3. Denoising.
        sched.timesteps.withUnsafeBufferPointer { trace?("timesteps", [steps], $0) }
        sched.sigmas.withUnsafeBufferPointer { trace?("sigmas", [steps + 1], $0) }
        var latents = try noise.draw("initial_noise", count: latentCount).map { $0 * sched.initNoiseSigma }
        latents.withUnsafeBufferPointer { trace?("latents_T", [1, lc, lh, lw], $0) }
        let mask = Self.guidanceMask(height: lh, width: lw)
        try report(.denoise, 0, steps)
        do {
            let unet = try component("unet") { try UNet2DConditionModel(folder: $0, variant: variant, compute: compute) }
            let refCount = condLat.count
            for i in 0..<steps {
                let t = sched.timesteps[i], sigma = sched.sigmas[i]
                // write pass: the condition latents noised to σ with fresh noise
                let refNoise = try noise.draw("step\(i)_ref_noise", count: refCount)
                var refIn = [Float](repeating: 0, count: refCount)
                let d = (sigma * sigma + 1).squareRoot()
                for j in 0..<refCount { refIn[j] = (condLat[j] + refNoise[j] * sigma) / d }
                let reference = ReferenceAttention(mode: .write)
                _ = try unet.forward(sample: refIn, batch: 2, height: condH, width: condW, timestep: t, context: context,
                                     reference: reference, pool: pool, shouldStop: stop)
                reference.mode = .read
                // read pass on [x, x] / sqrt(σ² + 1)
                var xIn = latents + latents
                xIn.withUnsafeMutableBufferPointer { EulerAncestralScheduler.scaleInput($0.baseAddress!, $0.count, sigma: sigma) }
                let out = try unet.forward(sample: xIn, batch: 2, height: lh, width: lw, timestep: t, context: context,
                                           reference: reference, pool: pool, shouldStop: stop)
                out.withUnsafeBufferPointer { trace?("step\(i)_unet_out", [2, lc, lh, lw], $0) }
                // adaptive guidance
                let tt = t / 1000
                let s = (2 + 16 * (tt * tt * tt * tt * tt)) / 3
                var guided = [Float](repeating: 0, count: latentCount)
                for j in 0..<latentCount {
                    let u = out[j], c = out[latentCount + j]
                    guided[j] = u + mask[j % (lh * lw)] * s * (c - u)
                }
                guided.withUnsafeBufferPointer { trace?("step\(i)_guided", [1, lc, lh, lw], $0) }
                let an = try noise.draw("step\(i)_ancestral_noise", count: latentCount)
                latents.withUnsafeMutableBufferPointer { x in
                    scheduler.step(x.baseAddress!, modelOut: guided, noise: an, latentCount, schedule: sched, index: i)
                }
                guard latents.allSatisfy({ $0.isFinite }) else {
                    throw HYError.format("\(folder): step \(i) produced non-finite latents (NaN or Inf in the weights or inputs?)")
                }
                latents.withUnsafeBufferPointer { trace?("step\(i)_latents", [1, lc, lh, lw], $0) }
                try report(.denoise, i + 1, steps)
            }
        }

        // 4. Decode and quantise.
        try report(.decode, 0, 1)
        let vae = try component("vae") { try AutoencoderKL(folder: $0, variant: variant, compute: compute) }
        let decodeIn = latents.map { ($0 / 0.75 + 0.22) / vae.config.scalingFactor }
        decodeIn.withUnsafeBufferPointer { trace?("decode_in", [1, lc, lh, lw], $0) }
        try checkAbort(.decode)
        let decoded = try vae.decode(decodeIn, height: lh, width: lw, pool: pool, shouldStop: stop)
        decoded.withUnsafeBufferPointer { trace?("decoded", [1, 3, height, width], $0) }
        var grid = [UInt8](repeating: 0, count: height * width * 3)
        let plane = height * width
        for c in 0..<3 {
            for p in 0..<plane {
                let v = decoded[c * plane + p]
                guard v.isFinite else { throw HYError.format("\(folder): the decoded image is not finite") }
                let x = min(max((v / 0.5 * 0.8) / 2 + 0.5, 0), 1)
                grid[p * 3 + c] = UInt8((x * 255).rounded(.toNearestOrEven))
            }
        }
        let gridImage = try ByteImage(width: width, height: height, channels: 3, pixels: grid)
        let vh = height / 3, vw = width / 2
        var views: [ByteImage] = []
        for r in 0..<3 {
            for col in 0..<2 {
                var px = [UInt8](repeating: 0, count: vh * vw * 3)
                for y in 0..<vh {
                    let src = ((r * vh + y) * width + col * vw) * 3
                    for k in 0..<(vw * 3) { px[y * vw * 3 + k] = grid[src + k] }
                }
                views.append(try ByteImage(width: vw, height: vh, channels: 3, pixels: px))
            }
        }
        try report(.done, 1, 1)
        return Result(grid: gridImage, views: views)
    }

    /// The official per-pixel guidance weights over an h × w latent (P:361-366): rows [0, 40) 3 left
    /// of column 40 and 2.5 right of it, rows [40, 80) 2 / 1.5, rows [80, 120) 2 / 2.5, 1 elsewhere.
    /// Not relative to the tiles: other latent sizes get the same absolute rows and columns.
    public static func guidanceMask(height h: Int, width w: Int) -> [Float] {
        var m = [Float](repeating: 1, count: h * w)
        for y in 0..<min(h, 120) {
            let (left, right): (Float, Float) = y < 40 ? (3, 2.5) : y < 80 ? (2, 1.5) : (2, 2.5)
            for x in 0..<w { m[y * w + x] = x < 40 ? left : right }
        }
        return m
    }

    private func component<T>(_ name: String, _ open: (String) throws -> T) throws -> T { try PipelineFolder.open(folder, name, open) }
}

import HunyuanNN
import HunyuanDiffusion
import HunyuanGeometry
import HunyuanImage
#if canImport(Glibc)
import Glibc
#endif

/// Hunyuan3D-1.0 text / image → mesh (lite), over a weights folder laid out like the release, as
/// `main.py` runs its stages: text → image (`Text2Image`: HunyuanDiT v1.1 with PAG, `TextToImage`,
/// from `hunyuanDiT/`; optional), background removal (`Removebg`: rembg's U²-Net, then the white-out and the 512²
/// recentring) → the lite multi-view diffusion (`Image2Views`: the 3 × 2 grid of views and the RGB
/// condition image) → the SVRM (`Views2Mesh`: views 0…5, then the condition image) → a coloured mesh.
///
/// The folder holds `mvd_lite/` (diffusers layout), `svrm/` (`svrm.safetensors` or any single
/// .safetensors, `config.json` optional) and the U²-Net as `u2net.onnx`, `u2netp.onnx` or
/// `u2net/model.safetensors`; without one there, rembg's own location (`$U2NET_HOME/u2net.onnx`,
/// `~/.u2net/u2net.onnx`). A folder with `hunyuanDiT/` also turns text into images and meshes; a folder
/// with only `hunyuanDiT/` opens for text to image alone. What is missing is named when the generator
/// opens (or, for a stage a run needs but the folder lacks, when the run starts). Each stage's weights
/// are loaded when the stage starts and released when it ends (`keepLoaded` keeps them for the next run).
///
/// Not thread-safe: one run at a time per instance.
public final class ImageTo3D: @unchecked Sendable {
    /// The stages of a run, in order.
    public enum Stage: Int, Sendable, CaseIterable {
        case removeBackground, views, reconstruct, done
        /// Text → image (runs first in a text-to-mesh run).
        case textToImage

        public var name: String {
            switch self {
            case .textToImage: return "text to image"
            case .removeBackground: return "remove background"
            case .views: return "views"
            case .reconstruct: return "reconstruct"
            case .done: return "done"
            }
        }

        /// The stage's part of an image-to-mesh run [start, end] (multi-view diffusion is nearly all of it).
        public var share: (start: Float, end: Float) {
            switch self {
            case .textToImage: return (0, 0)
            case .removeBackground: return (0, 0.02)
            case .views: return (0.02, 0.85)
            case .reconstruct: return (0.85, 1)
            case .done: return (1, 1)
            }
        }
    }

    /// The share of a text-to-mesh run the text-to-image stage takes at the official settings (its 25
    /// DiT steps at 1024² against the 50 UNet steps of the views); the image stages share the rest.
    static let textShare: Float = 0.6

    /// A progress report: `fraction` of `stage` is done; `detail` names the sub-step (the diffusion's
    /// denoising step, the SVRM's stage).
    public struct Progress: Sendable {
        public var stage: Stage
        public var fraction: Float
        public var detail: String
        /// True in a text-to-mesh run (the text-to-image stage comes first and takes `textShare`).
        public var fromText = false
        /// The fraction of the whole run, in [0, 1].
        public var overall: Float {
            let f = min(max(fraction, 0), 1)
            if stage == .textToImage { return fromText ? ImageTo3D.textShare * f : f }
            let (s, e) = stage.share
            let image = s + (e - s) * f
            return fromText ? ImageTo3D.textShare + (1 - ImageTo3D.textShare) * image : image
        }
        public init(stage: Stage, fraction: Float, detail: String = "", fromText: Bool = false) {
            self.stage = stage; self.fraction = fraction; self.detail = detail; self.fromText = fromText
        }
    }

    public struct Options: Sendable {
        /// Denoising steps of the multi-view diffusion (official 50).
        public var steps = 50
        /// Seed of the diffusion's Gaussian draws (`SeededNoise`).
        public var seed: UInt64 = 0
        /// The views grid (official 960 × 640: 3 rows × 2 columns of 320²).
        public var gridHeight = 960
        public var gridWidth = 640
        /// An RGBA input keeps its alpha and skips the U²-Net (the official `force=False`).
        public var keepAlpha = false
        /// Products of the diffusion's UNet and VAE (`ComputePrecision`).
        public var compute: ComputePrecision = .fp32
        /// Marching cubes, clean-up and decimation (`SVRMMeshOptions`).
        public var mesh = SVRMMeshOptions()
        /// The text-to-image stage (official: 25 steps, 1024², guidance 5, PAG 1.3); its draws use
        /// `seed` too, under their own names.
        public var text = TextToImage.Options()
        public init() {}
    }

    /// Everything a run made, for callers who keep the intermediates.
    public struct Result: Sendable {
        /// The 512² RGBA after background removal (the diffusion's input).
        public var cutout: ByteImage
        /// The 3 × 2 grid and its six views (azimuth 0, 60, …, 300), and the RGB condition image.
        public var grid: ByteImage
        public var views: [ByteImage]
        public var condition: ByteImage
        public var mesh: Mesh
    }

    public let folder: String
    public let mvdFolder: String
    public let svrmPath: String
    public let u2netPath: String
    /// `hunyuanDiT/` when the folder has it (text to image), else nil.
    public let textFolder: String?
    /// What the image stages lack (empty when image to mesh can run).
    public let missingImageStages: [String]
    public let keepLoaded: Bool
    public let pool: ThreadPool
    private var u2net: U2Net?
    private var mvd: MultiViewDiffusion?
    private var mvdCompute: ComputePrecision?
    private var svrm: SVRM?

    /// Opens a weights folder (see the type's comment); `u2net` overrides where the U²-Net is read
    /// from. Checks that every stage is there (configs parsed when a stage loads). `threads` ≤ 0: one
    /// per processor.
    public init(folder: String, u2net: String? = nil, keepLoaded: Bool = false, threads: Int = 0) throws {
        guard FileSystem.isDirectory(folder) else { throw HYError.io("\(folder): no such folder") }
        self.folder = folder
        var missing: [String] = []
        mvdFolder = FileSystem.join(folder, "mvd_lite")
        if !FileSystem.exists(FileSystem.join(mvdFolder, "model_index.json")) {
            missing.append("mvd_lite/ (the lite multi-view diffusion, diffusers layout with model_index.json)")
        }
        let svrmDir = FileSystem.join(folder, "svrm")
        let svrmFile = FileSystem.join(svrmDir, "svrm.safetensors")
        if FileSystem.exists(svrmFile) {
            svrmPath = svrmFile
        } else if FileSystem.isDirectory(svrmDir),
                  (try? FileSystem.list(svrmDir).contains { $0.hasSuffix(".safetensors") }) == true {
            svrmPath = svrmDir
        } else {
            svrmPath = svrmFile
            missing.append("svrm/svrm.safetensors (the reconstruction model)")
        }
        if let u2net {
            u2netPath = u2net
            if !FileSystem.exists(u2net) { missing.append("\(u2net) (the U²-Net given)") }
        } else if let found = ImageTo3D.findU2Net(folder) {
            u2netPath = found
        } else {
            u2netPath = FileSystem.join(folder, "u2net.onnx")
            missing.append("u2net.onnx (rembg's U²-Net; also looked for u2netp.onnx, u2net/model.safetensors, $U2NET_HOME/u2net.onnx, ~/.u2net/u2net.onnx)")
        }
        let dit = FileSystem.join(folder, "hunyuanDiT")
        textFolder = FileSystem.exists(FileSystem.join(dit, "model_index.json")) ? dit : nil
        guard missing.isEmpty || textFolder != nil else {
            throw HYError.io("\(folder) is not a Hunyuan3D-1.0 lite weights folder: missing " + missing.joined(separator: "; "))
        }
        missingImageStages = missing
        self.keepLoaded = keepLoaded
        pool = ThreadPool(threads: threads)
    }

    /// The U²-Net of a weights folder, else rembg's own location.
    static func findU2Net(_ folder: String) -> String? {
        var candidates = ["u2net.onnx", "u2netp.onnx", "u2net/model.safetensors"].map { FileSystem.join(folder, $0) }
        if let home = environment("U2NET_HOME") { candidates.append(FileSystem.join(home, "u2net.onnx")) }
        if let home = environment("HOME") { candidates.append(FileSystem.join(home, ".u2net/u2net.onnx")) }
        return candidates.first(where: FileSystem.exists)
    }

    private static func environment(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }

    /// Drops every loaded stage (the next run loads them again).
    public func release() { u2net = nil; mvd = nil; mvdCompute = nil; svrm = nil; t2i = nil }

    private var t2i: TextToImage?

    private func requireImageStages() throws {
        guard missingImageStages.isEmpty else {
            throw HYError.io("\(folder): image to 3D needs " + missingImageStages.joined(separator: "; "))
        }
    }

    /// Text → image (stage 1 alone): `prompt` as the user types it (the style suffix and the negative
    /// prompt are added per `options.text`), draws from `TextToImage.seededNoise(seed)`.
    /// Errors: `HYError.io` when the folder has no `hunyuanDiT/`; progress and abort as `run`.
    public func textToImage(prompt: String, options o: Options = Options(), progress: ((Progress) -> Bool)? = nil,
                            abort: (() -> Bool)? = nil) throws -> ByteImage {
        try textToImage(prompt: prompt, options: o, fromText: false, progress: progress, abort: abort)
    }

    private func textToImage(prompt: String, options o: Options, fromText: Bool, progress: ((Progress) -> Bool)?,
                             abort: (() -> Bool)?) throws -> ByteImage {
        guard let textFolder else {
            throw HYError.io("\(folder): text to image needs hunyuanDiT/ (HunyuanDiT v1.1 in the diffusers layout)")
        }
        let pipe: TextToImage
        if let t2i, t2i.compute == o.compute { pipe = t2i } else { pipe = try TextToImage(folder: textFolder, compute: o.compute) }
        if keepLoaded { t2i = pipe }
        return try pipe.generate(prompt: prompt, options: o.text, noise: TextToImage.seededNoise(o.seed),
                                 pool: pool, progress: { p in
            let info = Progress(stage: .textToImage, fraction: p.overall, detail: "\(p.stage.name) \(p.completed)/\(p.total)",
                                fromText: fromText)
            return progress?(info) ?? true
        }, abort: abort)
    }

    /// Text → mesh: `textToImage`, then the image stages of `run` on that image (the RGB picture goes
    /// through the background removal as main.py does). `Result.cutout` etc. as `run`; the generated
    /// picture is `image`.
    public func run(prompt: String, options o: Options = Options(), progress: ((Progress) -> Bool)? = nil,
                    abort: (() -> Bool)? = nil) throws -> (image: ByteImage, result: Result) {
        try requireImageStages()
        try validate(o)
        defer { if !keepLoaded { release() } }
        let image = try textToImage(prompt: prompt, options: o, fromText: true, progress: progress, abort: abort)
        if !keepLoaded { t2i = nil }
        let r = try run(image: image, options: o, fromText: true, progress: progress, abort: abort)
        return (image, r)
    }

    private func validate(_ o: Options) throws {
        guard o.steps >= 1, o.steps <= 1000 else { throw HYError.invalidArgument("steps \(o.steps) (1...1000 expected)") }
        guard o.text.steps >= 1, o.text.steps <= 1000 else {
            throw HYError.invalidArgument("text-to-image steps \(o.text.steps) (1...1000 expected)")
        }
        try o.mesh.validate()
    }

    /// Stage 2 alone: the official background removal of `image` (RGB or RGBA, any size).
    public func removeBackground(_ image: ByteImage, keepAlpha: Bool = false,
                                 abort: (() -> Bool)? = nil) throws -> BackgroundRemoval.Result {
        try requireImageStages()
        guard image.width > 0, image.height > 0 else { throw HYError.invalidArgument("the image is empty") }
        let net = try u2net ?? U2Net(path: u2netPath)
        if keepLoaded { u2net = net }
        let r = try BackgroundRemoval.run(image, net: net, keepAlpha: keepAlpha, pool: pool, shouldStop: abort)
        if let abort, abort() { throw HYError.aborted("image to 3D cancelled at \(Stage.removeBackground.name)") }
        return r
    }

    /// Image → mesh. `progress` (calling thread) may return false to cancel; `abort` is polled inside
    /// every stage (also from worker threads); cancelling throws `.aborted` and keeps the generator
    /// usable. Stages not kept loaded are released as the run leaves them, also on errors.
    public func run(image: ByteImage, options o: Options = Options(), progress: ((Progress) -> Bool)? = nil,
                    abort: (() -> Bool)? = nil) throws -> Result {
        try requireImageStages()
        // Options no stage can use fail here, before the diffusion's minutes, not after them.
        try validate(o)
        defer { if !keepLoaded { release() } }
        return try run(image: image, options: o, fromText: false, progress: progress, abort: abort)
    }

    private func run(image: ByteImage, options o: Options, fromText: Bool, progress: ((Progress) -> Bool)?,
                     abort: (() -> Bool)?) throws -> Result {
        func report(_ s: Stage, _ f: Float, _ detail: String = "") throws {
            if let progress, !progress(Progress(stage: s, fraction: f, detail: detail, fromText: fromText)) {
                throw HYError.aborted("image to 3D cancelled at \(s.name)")
            }
            if let abort, abort() { throw HYError.aborted("image to 3D cancelled at \(s.name)") }
        }
        // 2. Background removal → 512² RGBA.
        try report(.removeBackground, 0)
        let cut = try removeBackground(image, keepAlpha: o.keepAlpha, abort: abort).final
        if !keepLoaded { u2net = nil }

        // 3. Multi-view diffusion → grid + condition image.
        try report(.views, 0, "loading")
        let diffusion: MultiViewDiffusion
        if let mvd, mvdCompute == o.compute { diffusion = mvd } else {
            diffusion = try MultiViewDiffusion(folder: mvdFolder, compute: o.compute)
        }
        if keepLoaded { mvd = diffusion; mvdCompute = o.compute }
        let views = try diffusion.generate(image: cut, steps: o.steps, height: o.gridHeight, width: o.gridWidth,
                                           noise: SeededNoise(seed: o.seed), pool: pool, progress: { p in
            (try? report(.views, p.overall, "\(p.stage.name) \(p.completed)/\(p.total)")) != nil
        }, abort: abort)
        let condition = try ByteImage(width: cut.width, height: cut.height, channels: 3,
                                      pixels: MVDPreprocess.conditionRGB(cut))
        if !keepLoaded { mvd = nil }

        // 4. Views (0…5, then the condition image) → mesh.
        try report(.reconstruct, 0, "loading")
        let recon = try svrm ?? SVRM(checkpoint: try Checkpoint(path: svrmPath),
                                     config: try SVRMConfig.load(checkpointPath: svrmPath), pool: pool)
        if keepLoaded { svrm = recon }
        let (mesh, _) = try recon.viewsToMesh(views: views.views + [condition], options: o.mesh, progress: { p in
            (try? report(.reconstruct, p.overall, p.stage.name)) != nil
        }, abort: abort)
        try report(.done, 1)
        return Result(cutout: cut, grid: views.grid, views: views.views, condition: condition, mesh: mesh)
    }
}

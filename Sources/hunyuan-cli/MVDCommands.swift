import ArgumentParser
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanDiffusion
import HunyuanImage
import HunyuanNN

/// `views`: one image → the six views of Hunyuan3D-1.0's lite multi-view diffusion.
struct ViewsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "views",
        abstract: "Hunyuan3D-1.0 multi-view diffusion (lite): one image → 6 views (azimuth 0, 60, …, 300).",
        discussion: """
            MODEL_DIR is the release's mvd_lite/ folder (model_index.json, unet/, vae/, …). The image is a PNG or
            JPEG file, RGB or RGBA (the background of RGBA is whited out as the official pipeline does). Writes
            view_0.png … view_5.png into the output folder (created if missing), and the 3×2 grid with --grid.
            --seed seeds the library's own Gaussian generator (not torch's): same seed, same views on every host.
            """)

    @Argument(help: "The mvd_lite/ folder.") var model: String
    @Argument(help: "Input image (PNG/JPEG).") var image: String
    @Option(name: .shortAndLong, help: "Output folder for view_0.png … view_5.png.") var output: String
    @Option(help: "Denoising steps (the official caller uses 50).") var steps: Int = 50
    @Option(help: "Seed of the Gaussian draws.") var seed: UInt64 = 0
    @Option(help: "Also write the 3×2 grid to this PNG file.") var grid: String?
    @Option(help: "Grid width (official 640).") var width: Int = 640
    @Option(help: "Grid height (official 960).") var height: Int = 960
    @Option(help: "Weights variant to open (e.g. fp16).") var variant: String?
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Option(help: "Products of the UNet and the VAE: fp32 (the reference numerics) or bf16 (AVX512_BF16, ~1.4× faster).")
    var compute: String = "fp32"
    @Flag(help: "Replace existing output files.") var overwrite = false

    func run() throws {
        try runReporting {
            let im = try ImageFile.read(image)
            let paths = (0..<6).map { FileSystem.join(output, "view_\($0).png") }
            if !FileSystem.isDirectory(output) && mkdir(output, 0o755) != 0 { throw HYError.io("\(output): cannot create folder") }
            for p in paths + (grid.map { [$0] } ?? []) { try checkOutput(p, overwrite: overwrite) }
            let precision = try parseCompute(compute)
            if !precision.isAvailable { writeStderr("note: this CPU has no AVX512_BF16; products stay fp32\n") }
            let mvd = try MultiViewDiffusion(folder: model, variant: variant, compute: precision)
            let pool = ThreadPool(threads: threads)
            let bar = StageProgress()
            let r = try mvd.generate(image: im, steps: steps, height: height, width: width, noise: SeededNoise(seed: seed),
                                     pool: pool, progress: { bar.update($0) })
            bar.finish()
            for (v, p) in zip(r.views, paths) { try PNGEncoder.write(rgba(v), to: p, overwrite: overwrite) }
            if let grid { try PNGEncoder.write(rgba(r.grid), to: grid, overwrite: overwrite) }
            writeStderr("6 views of \(r.views[0].width)×\(r.views[0].height) → \(output)\n")
        }
    }
}

/// `--compute`: fp32 or bf16.
func parseCompute(_ s: String) throws -> ComputePrecision {
    guard let c = ComputePrecision(rawValue: s) else { throw HYError.invalidArgument("--compute must be fp32 or bf16, not \(s)") }
    return c
}

/// An RGB image as the RGBA the PNG writer takes (opaque).
func rgba(_ im: ByteImage) -> RGBAImage {
    if im.channels == 4 { return RGBAImage(width: im.width, height: im.height, pixels: im.pixels) }
    var px = [UInt8](repeating: 255, count: im.width * im.height * 4)
    for i in 0..<(im.width * im.height) { for c in 0..<3 { px[4 * i + c] = im.pixels[3 * i + c] } }
    return RGBAImage(width: im.width, height: im.height, pixels: px)
}

/// A one-line progress display on stderr: the stage, the step count and an ETA from the steps' pace.
final class StageProgress {
    let start = Clock.seconds()
    var stepStart: Double? = nil
    var last = ""
    func update(_ p: MultiViewDiffusion.Progress) -> Bool {
        let now = Clock.seconds()
        var line = String(format3(now - start)) + " s  " + p.stage.name
        if p.stage == .denoise {
            if p.completed == 0 { stepStart = now }
            line += " \(p.completed)/\(p.total)"
            if let s = stepStart, p.completed > 0 {
                let per = (now - s) / Double(p.completed)
                line += "  \(format3(per)) s/step  ETA \(Int((per * Double(p.total - p.completed)).rounded())) s"
            }
        }
        if line != last { writeStderr("\r\u{1B}[K" + line); last = line }
        return true
    }
    func finish() { writeStderr("\r\u{1B}[K\(format3(Clock.seconds() - start)) s  done\n") }
}

private func format3(_ s: Double) -> String { String(Double(Int((s * 1000).rounded())) / 1000) }

/// `mvd-eval`: the pipeline on a fixture's recorded inputs, writing every intermediate under the
/// reference's names and layouts (prompt_embeds, cond_lat, sigmas, timesteps, latents_T,
/// step{i}_unet_out / _guided / _latents, decode_in, decoded, views_u8).
struct MVDEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mvd-eval",
        abstract: "Run the multi-view diffusion on a fixture's inputs and write every intermediate for parity checks.",
        discussion: """
            --inputs is the fixture's inputs.safetensors: rgba_u8 [H,W,4] (the image), and the recorded Gaussian draws
            initial_noise, vae_posterior_noise_{neg,cond}, step{i}_ref_noise, step{i}_ancestral_noise. The number of
            steps and the grid size come from fixture_meta.json next to it (steps, image_hw) unless given.
            """)

    @Argument(help: "The pipeline folder (model_index.json, unet/, …).") var model: String
    @Option(help: "inputs.safetensors of a fixture.") var inputs: String
    @Option(name: .shortAndLong, help: "Output safetensors path.") var output: String
    @Option(help: "Steps (default: fixture_meta.json's).") var steps: Int?
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace an existing output file.") var overwrite = false

    struct Meta: Decodable { let steps: Int?; let image_hw: [Int]? }

    func run() throws {
        try runReporting {
            try checkOutput(output, overwrite: overwrite)
            let input = try SafetensorsFile(path: inputs)
            guard let t = input.tensor("rgba_u8"), t.dtype == .u8, t.shape.count == 3, t.shape[2] == 4 || t.shape[2] == 3 else {
                throw HYError.invalidArgument("\(inputs): needs a u8 tensor rgba_u8 [H,W,4]")
            }
            let im = try ByteImage(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: Array(t.data))
            let dir = inputs.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            let metaPath = FileSystem.join(dir.isEmpty ? "." : dir, "fixture_meta.json")
            let meta = FileSystem.exists(metaPath) ? try JSONValue.decode(Meta.self, contentsOf: metaPath) : Meta(steps: nil, image_hw: nil)
            let n = steps ?? meta.steps ?? 50
            let hw = meta.image_hw ?? [960, 640]
            guard hw.count == 2 else { throw HYError.format("\(metaPath): image_hw must be [height, width]") }
            let mvd = try MultiViewDiffusion(folder: model)
            var items: [SafetensorsWriter.Item] = []
            let r = try mvd.generate(image: im, steps: n, height: hw[0], width: hw[1], noise: RecordedNoise(file: input),
                                     pool: ThreadPool(threads: threads), trace: { name, shape, values in
                                         items.append(.init(name: name, shape: shape, floats: Array(values)))
                                     })
            items.append(.init(name: "views_u8", dtype: .u8, shape: [r.grid.height, r.grid.width, 3], bytes: r.grid.pixels))
            try SafetensorsWriter.write(items, metadata: [("producer", "hunyuan-cli mvd-eval")], to: output, overwrite: overwrite)
            writeStderr("\(items.count) tensors → \(output)\n")
        }
    }
}

import ArgumentParser
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanGeometry
import HunyuanImage
import HunyuanNN

/// `image-to-3d`: one photo or render → a coloured mesh, as Hunyuan3D-1.0's main.py (lite).
struct ImageTo3DCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-to-3d",
        abstract: "Hunyuan3D-1.0 image → mesh (lite): background removal, 6 views, reconstruction.",
        discussion: """
            WEIGHTS_DIR is laid out like the release: mvd_lite/, svrm/svrm.safetensors, and u2net.onnx (else rembg's
            $U2NET_HOME/u2net.onnx or ~/.u2net/u2net.onnx; --u2net names another). The mesh format follows -o's
            extension (.glb, .obj, .ply, .stl, .off). --save-intermediates writes cutout.png, views.png (the 3×2 grid),
            view_0.png … view_5.png and condition.png into that folder. Each stage is loaded when it starts and released
            after it; the outputs are written only when the mesh is done.
            """)

    @Argument(help: "The weights folder.") var weights: String
    @Argument(help: "Input image (PNG/JPEG, RGB or RGBA).") var image: String
    @Option(name: .shortAndLong, help: "Output mesh file.") var output: String
    @Option(help: "Denoising steps of the multi-view diffusion (official 50).") var steps: Int = 50
    @Option(help: "Seed of the diffusion's Gaussian draws.") var seed: UInt64 = 0
    @Option(help: "Decimate to this many faces (0 = keep all).") var faces: Int = 90_000
    @Option(help: "Marching-cubes resolution (official 384).") var resolution: Int = 384
    @Option(name: .customLong("grid-height"), help: "Height of the views grid (official 960).") var gridHeight: Int = 960
    @Option(name: .customLong("grid-width"), help: "Width of the views grid (official 640).") var gridWidth: Int = 640
    @Option(help: "The U²-Net (ONNX or safetensors) instead of the folder's.") var u2net: String?
    @Flag(name: .customLong("keep-alpha"), help: "An RGBA input keeps its alpha (skips the U²-Net).") var keepAlpha = false
    @Option(help: "Products of the diffusion: fp32 (the reference numerics) or bf16 (AVX512_BF16, ~1.5× faster).")
    var compute: String = "fp32"
    @Option(name: .customLong("save-intermediates"), help: "Folder for the cut-out, the views and the condition image.")
    var intermediates: String?
    @Option(help: "Also write a 512² PNG preview (four views) of the mesh.") var preview: String?
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace existing output files.") var overwrite = false

    func run() throws {
        try runReporting {
            let im = try ImageFile.read(image)
            var outputs = [output] + (preview.map { [$0] } ?? [])
            let names = ["cutout.png", "views.png"] + (0..<6).map { "view_\($0).png" } + ["condition.png"]
            if let dir = intermediates {
                if !FileSystem.isDirectory(dir) && mkdir(dir, 0o755) != 0 { throw HYError.io("\(dir): cannot create folder") }
                outputs += names.map { FileSystem.join(dir, $0) }
            }
            for p in outputs { try checkOutput(p, overwrite: overwrite) }
            var o = ImageTo3D.Options()
            o.steps = steps; o.seed = seed; o.gridHeight = gridHeight; o.gridWidth = gridWidth
            o.keepAlpha = keepAlpha
            o.compute = try parseCompute(compute)
            o.mesh.targetFaces = faces; o.mesh.resolution = resolution
            let gen = try ImageTo3D(folder: weights, u2net: u2net, threads: threads)
            let bar = RunProgress()
            let r = try gen.run(image: im, options: o, progress: { bar.update($0) })
            bar.finish()
            try r.mesh.save(output, overwrite: overwrite)
            if let preview { try PNGEncoder.write(try Raster.preview(r.mesh), to: preview, overwrite: overwrite) }
            if let dir = intermediates {
                let images = [r.cutout, r.grid] + r.views + [r.condition]
                for (im, name) in zip(images, names) {
                    try PNGEncoder.write(rgba(im), to: FileSystem.join(dir, name), overwrite: overwrite)
                }
            }
            writeStderr("\(r.mesh.vertexCount) vertices, \(r.mesh.faceCount) faces → \(output)\n")
        }
    }
}

/// One progress line per stage on stderr: the stage, its percentage, the sub-step and an ETA of the
/// stage from its pace; a finished stage keeps its line with its time.
final class RunProgress {
    let start = Clock.seconds()
    var stage: ImageTo3D.Stage? = nil
    var stageStart = Clock.seconds()
    var last = ""
    func update(_ p: ImageTo3D.Progress) -> Bool {
        let now = Clock.seconds()
        if p.stage != stage {
            if let stage { writeStderr("\r\u{1B}[K\(stage.name): \(seconds(now - stageStart)) s\n") }
            stage = p.stage
            stageStart = now
            last = ""
        }
        if p.stage == .done { return true }
        let pct = Int((p.fraction * 100).rounded(.down))
        var line = "\(p.stage.name) \(pct)%"
        if !p.detail.isEmpty { line += "  \(p.detail)" }
        if p.fraction > 0.02 {
            let eta = (now - stageStart) / Double(p.fraction) * Double(1 - p.fraction)
            line += "  ETA \(Int(eta.rounded())) s"
        }
        if line != last { writeStderr("\r\u{1B}[K" + line); last = line }
        return true
    }
    func finish() { writeStderr("\r\u{1B}[Ktotal: \(seconds(Clock.seconds() - start)) s\n") }
    private func seconds(_ s: Double) -> String { String(Double(Int((s * 10).rounded())) / 10) }
}

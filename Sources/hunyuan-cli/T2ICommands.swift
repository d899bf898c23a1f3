import ArgumentParser
import Hunyuan3D
import HunyuanCore
import HunyuanDiffusion
import HunyuanGeometry
import HunyuanImage
import HunyuanNN

/// `t2i-eval`: the text-to-image pipeline on a fixture's recorded draws, writing every intermediate under
/// the reference's names (bert_input_ids, t5_input_ids, bert_hidden, t5_hidden, rope_cos, rope_sin,
/// step{i}_dit_out, step{i}_guided, step{i}_latents_out, decoded, image_u8).
struct T2IEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t2i-eval",
        abstract: "Run the text-to-image pipeline on a fixture's recorded draws and write every intermediate for parity checks.",
        discussion: """
            The prompt is given as a user types it: the pipeline appends Hunyuan3D's style suffix and uses its negative \
            prompt, and tokenizes both itself. --inputs is the fixture's inputs.safetensors (initial_noise, \
            step{i}_variance_noise). Token ids are written as int64 [2, L] (rows: prompt, negative), the image as u8 [H, W, 3].
            """)

    @Argument(help: "The pipeline folder (model_index.json, transformer/, …).") var model: String
    @Option(help: "The prompt, without the style suffix.") var prompt: String
    @Option(help: "Image height (px).") var height: Int = 1024
    @Option(help: "Image width (px).") var width: Int = 1024
    @Option(help: "Denoising steps.") var steps: Int = 25
    @Option(help: "inputs.safetensors of a fixture (the recorded draws).") var inputs: String
    @Option(name: .shortAndLong, help: "Output safetensors path.") var output: String
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            try requireUTF8Arguments()
            try checkOutput(output, overwrite: overwrite)
            let input = try SafetensorsFile(path: inputs)
            let t2i = try TextToImage(folder: model)
            var o = TextToImage.Options()
            o.height = height; o.width = width; o.steps = steps
            var items: [SafetensorsWriter.Item] = []
            let pos = t2i.tokenize(prompt + TextToImage.styleSuffix), neg = t2i.tokenize(TextToImage.negativePrompt)
            func ids(_ name: String, _ rows: [[Int32]]) {
                let v = rows.flatMap { $0 }.map { Int64($0) }
                items.append(.init(name: name, dtype: .i64, shape: [rows.count, rows[0].count],
                                   bytes: v.withUnsafeBytes { Array($0) }))
            }
            ids("bert_input_ids", [pos.bert.ids, neg.bert.ids])
            ids("t5_input_ids", [pos.t5.ids, neg.t5.ids])
            let image = try t2i.generate(prompt: prompt, options: o, noise: RecordedNoise(file: input),
                                         pool: ThreadPool(threads: threads), trace: { name, shape, values in
                                             items.append(.init(name: name, shape: shape, floats: Array(values)))
                                         })
            items.append(.init(name: "image_u8", dtype: .u8, shape: [image.height, image.width, 3], bytes: image.pixels))
            try SafetensorsWriter.write(items, metadata: [("producer", "hunyuan-cli t2i-eval")], to: output, overwrite: overwrite)
            writeStderr("\(items.count) tensors → \(output)\n")
        }
    }
}

/// `text-to-image`: a prompt → an image, as Hunyuan3D-1.0's first stage (HunyuanDiT v1.1 with PAG).
struct TextToImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-to-image",
        abstract: "Hunyuan3D-1.0 text → image (HunyuanDiT v1.1 + PAG): the prompt with the official style suffix and negative prompt.",
        discussion: """
            WEIGHTS_DIR is the release's weights folder (its hunyuanDiT/ is used) or a HunyuanDiT diffusers folder itself. \
            The official run is 1024×1024, 25 steps, guidance 5, PAG 1.3: about 1,080 TFLOP, hours on a laptop CPU \
            (the ETA is printed once the first step is done). --fast is 512×512, 15 steps, PAG off (one branch fewer): \
            about 1/10 of the work. The image is written as PNG.
            """)

    @Argument(help: "The weights folder (with hunyuanDiT/) or a HunyuanDiT pipeline folder.") var weights: String
    @Argument(help: "The prompt (Chinese or English).") var prompt: String
    @Option(name: .shortAndLong, help: "Output image (.png).") var output: String
    @Option(help: "Denoising steps (official 25).") var steps: Int?
    @Option(help: "Seed of the Gaussian draws (our own generator, not torch's).") var seed: UInt64 = 0
    @Option(help: "Height in px (multiple of 16; official 1024).") var height: Int?
    @Option(help: "Width in px (multiple of 16; official 1024).") var width: Int?
    @Option(help: "Classifier-free guidance scale (official 5).") var guidance: Float = 5
    @Option(name: .customLong("pag-scale"), help: "Perturbed-attention guidance scale (official 1.3; 0 turns PAG off).")
    var pagScale: Float?
    @Flag(help: "The fast preset: 512×512, 15 steps, PAG off.") var fast = false
    @Option(help: "Products: fp32 (the reference numerics) or bf16 (AVX512_BF16).") var compute: String = "fp32"
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            try requireUTF8Arguments()
            guard output.lowercased().hasSuffix(".png") else { throw HYError.invalidArgument("-o \(output): the image is written as PNG (.png)") }
            try checkOutput(output, overwrite: overwrite)
            let dir = FileSystem.isDirectory(FileSystem.join(weights, "hunyuanDiT")) ? FileSystem.join(weights, "hunyuanDiT") : weights
            let t2i = try TextToImage(folder: dir, compute: try parseCompute(compute))
            var o = TextToImage.Options()
            if fast { o.height = 512; o.width = 512; o.steps = 15; o.pagScale = 0 }
            if let steps { o.steps = steps }
            if let height { o.height = height }
            if let width { o.width = width }
            if let pagScale { o.pagScale = pagScale }
            o.guidanceScale = guidance
            printTextCostEstimate(t2i, o, threads: threads)
            let bar = StepProgress()
            let image = try t2i.generate(prompt: prompt, options: o, noise: TextToImage.seededNoise(seed),
                                         pool: ThreadPool(threads: threads), progress: { bar.update($0) })
            bar.finish()
            try PNGEncoder.write(image, to: output, overwrite: overwrite)
            writeStderr("\(image.width)×\(image.height) → \(output)\n")
        }
    }
}

/// Before a long run: the DiT's FLOPs for the whole run (counted from the declared shapes) and the
/// least time they take at the GEMM rate this machine gives now (measured in about a second), on stderr.
func printTextCostEstimate(_ t2i: TextToImage, _ o: TextToImage.Options, threads: Int) {
    let c = t2i.ditConfig
    let table = WeightTable()
    guard (try? HunyuanDiTTensors.declare(c, table)) != nil else { return }
    let f = t2i.vaeConfig.scaleFactor
    let cfg = o.guidanceScale > 1, pag = o.pagScale > 0
    let batch = 1 + (cfg ? 1 : 0) + (pag ? 1 : 0)
    let step = FlopCount.dit(c, table, batch: batch, height: (o.height / 16) * 16 / f, width: (o.width / 16) * 16 / f,
                             identityRows: pag ? 1 : 0,
                             pagLayers: Set(o.pagLayers ?? TextToImage.defaultPAGLayers(blocks: c.numLayers)), part: .forward)
    let total = (step.matrix + step.attention) * Double(o.steps)
    guard total > 1e12 else { return }  // seconds at most: not worth a measurement
    let rate = BenchSupport.gemmRate(weight: .f16, rows: 1024, pool: ThreadPool(threads: threads))
    guard rate.isFinite, rate > 0 else { return }
    let minutes = total / rate / 60
    writeStderr("text to image: \(o.width)×\(o.height), \(o.steps) steps, \(batch) branches: about \(BenchSupport.fmt(total / 1e12)) TFLOP in the DiT; at least ~\(BenchSupport.fmt(minutes)) min at the \(BenchSupport.fmt(rate / 1e9)) GFLOP/s this machine's GEMM gives now\n")
}

/// One progress line on stderr: the stage, the step and an ETA from the steps' pace.
final class StepProgress {
    let start = Clock.seconds()
    var stepStart: Double? = nil
    func update(_ p: TextToImage.Progress) -> Bool {
        let now = Clock.seconds()
        var line = "\(p.stage.name) \(p.completed)/\(p.total)"
        if p.stage == .denoise {
            if p.completed == 0 { stepStart = now }
            if let s = stepStart, p.completed > 0 {
                let per = (now - s) / Double(p.completed)
                line += "  \(Double(Int((per * 10).rounded())) / 10) s/step  ETA \(Int((per * Double(p.total - p.completed)).rounded())) s"
            }
        }
        writeStderr("\r\u{1B}[K" + line)
        return true
    }
    func finish() { writeStderr("\r\u{1B}[Ktotal: \(Int((Clock.seconds() - start).rounded())) s\n") }
}

/// `text-to-3d`: a prompt → a picture → a coloured mesh, as Hunyuan3D-1.0's main.py with a text prompt.
struct TextTo3DCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-to-3d",
        abstract: "Text → mesh: Hunyuan3D-1.0 (lite) from a release weights folder, or a hunyuan3d-tiny model.",
        discussion: """
            MODEL is a hunyuan3d-tiny model (`train-3d`: text → triplanes → SDF and colour → marching cubes, seconds \
            on a CPU; the time of every stage is printed) or a weights folder laid out like the release: \
            hunyuanDiT/, mvd_lite/, svrm/svrm.safetensors and u2net.onnx (else rembg's location): text to image \
            (HunyuanDiT + PAG), background removal, 6 views, reconstruction. The mesh format follows -o's extension (.glb, .obj, .ply, .stl, .off); --image also \
            writes the generated picture (PNG). Each stage is loaded when it starts and released after it. The \
            official settings are hours on a laptop CPU; --fast uses the text stage's fast preset (512², 15 steps, \
            PAG off) and 25 view steps.
            """)

    @Argument(help: "The weights folder or hunyuan3d-tiny model.") var weights: String
    @Argument(help: "The prompt (Chinese or English).") var prompt: String
    @Option(name: .shortAndLong, help: "Output mesh file.") var output: String
    @Option(help: "Also write the generated picture here (PNG).") var image: String?
    @Option(help: "Also write a 512² PNG preview (four views) of the mesh.") var preview: String?
    @Option(help: "Seed of every Gaussian draw.") var seed: UInt64 = 0
    @Option(name: .customLong("text-steps"), help: "Text-to-image steps (official 25).") var textSteps: Int?
    @Option(name: .customLong("image-size"), help: "Side of the generated picture (multiple of 16; official 1024).")
    var imageSize: Int?
    @Option(help: "Classifier-free guidance of the text stage (official 5).") var guidance: Float = 5
    @Option(name: .customLong("pag-scale"), help: "PAG scale of the text stage (official 1.3; 0 = off).") var pagScale: Float?
    @Option(help: "Denoising steps of the views (official 50).") var steps: Int?
    @Option(help: "Decimate to this many faces (0 = keep all; default 90,000, hunyuan3d-tiny 20,000).") var faces: Int?
    @Option(help: "Marching-cubes resolution (official 384; hunyuan3d-tiny 128).") var resolution: Int?
    @Option(help: "Smoothing passes after marching cubes (default 2).") var smooth: Int = 2
    @Option(name: .customLong("grid-height"), help: "Height of the views grid (official 960).") var gridHeight: Int = 960
    @Option(name: .customLong("grid-width"), help: "Width of the views grid (official 640).") var gridWidth: Int = 640
    @Flag(help: "Fast preset: 512² picture, 15 text steps, PAG off, 25 view steps.") var fast = false
    @Option(help: "Products of the diffusions: fp32 or bf16.") var compute: String = "fp32"
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace existing output files.") var overwrite = false

    func run() throws {
        try runReporting {
            try requireUTF8Arguments()
            if Tiny3DModel.isModel(path: weights) {
                for p in [output] + (preview.map { [$0] } ?? []) { try checkOutput(p, overwrite: overwrite) }
                if image != nil { throw HYError.unsupported("--image: hunyuan3d-tiny makes no picture (text → triplane directly)") }
                try runTiny3D(model: weights, prompt: prompt, output: output, preview: preview, resolution: resolution ?? 128,
                              faces: faces ?? 20_000, smooth: smooth, threads: threads, overwrite: overwrite)
                return
            }
            let outputs = [output] + (image.map { [$0] } ?? []) + (preview.map { [$0] } ?? [])
            for p in outputs { try checkOutput(p, overwrite: overwrite) }
            var o = ImageTo3D.Options()
            o.seed = seed
            o.compute = try parseCompute(compute)
            o.mesh.targetFaces = faces ?? 90_000; o.mesh.resolution = resolution ?? 384; o.mesh.smoothIterations = smooth
            o.gridHeight = gridHeight; o.gridWidth = gridWidth
            if fast { o.text.width = 512; o.text.height = 512; o.text.steps = 15; o.text.pagScale = 0; o.steps = 25 }
            if let textSteps { o.text.steps = textSteps }
            if let imageSize { o.text.width = imageSize; o.text.height = imageSize }
            if let pagScale { o.text.pagScale = pagScale }
            if let steps { o.steps = steps }
            o.text.guidanceScale = guidance
            let gen = try ImageTo3D(folder: weights, threads: threads)
            if let dir = gen.textFolder { printTextCostEstimate(try TextToImage(folder: dir), o.text, threads: threads) }
            let bar = RunProgress()
            let (picture, r) = try gen.run(prompt: prompt, options: o, progress: { bar.update($0) })
            bar.finish()
            try r.mesh.save(output, overwrite: overwrite)
            if let image { try PNGEncoder.write(picture, to: image, overwrite: overwrite) }
            if let preview { try PNGEncoder.write(try Raster.preview(r.mesh), to: preview, overwrite: overwrite) }
            writeStderr("\(r.mesh.vertexCount) vertices, \(r.mesh.faceCount) faces → \(output)\n")
        }
    }
}

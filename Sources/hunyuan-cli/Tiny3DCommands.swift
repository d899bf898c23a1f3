import ArgumentParser
import HunyuanCore
import HunyuanLM
import HunyuanTrain
import HunyuanGeometry
import HunyuanImage
import Hunyuan3D
#if canImport(Glibc)
import Glibc
#endif

// The built-in text-to-3D model: train-3d (train hunyuan3d-tiny on the procedural shape world),
// eval-3d (held-out IoU and colour error), and the hunyuan3d-tiny path of text-to-3d.

struct Train3DCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-3d",
        abstract: "Train hunyuan3d-tiny (text → triplane → SDF + colour) on the procedural shape world.",
        discussion: """
            Writes OUTPUT/config.json and OUTPUT/model.safetensors (also every --save-every steps), a TSV of the \
            losses (--log) and, every --eval-every steps, the held-out IoU and colour error on stderr. Held-out \
            combinations of shape, colour and size words never appear in training.
            """)
    @Argument(help: "Output model folder.") var output: String
    @Option(help: "Optimizer steps.") var steps: Int = 6000
    @Option(help: "Scenes per step.") var scenes: Int = 16
    @Option(help: "Supervision points per scene.") var points: Int = 4096
    @Option(help: "Peak learning rate.") var lr: Double = 2e-3
    @Option(help: "Warm-up steps.") var warmup: Int = 200
    @Option(help: "Seed of the data stream and the initial weights.") var seed: UInt64 = 1
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Option(help: "Tokenizer (the built-in model's by default).") var tokenizer: String = "builtin:hunyuan-tiny"
    @Option(name: .customLong("triplane-tokens"), help: "Triplane tokens per plane side P.") var triplaneTokens: Int = 8
    @Option(name: .customLong("triplane-upsample"), help: "Texels per token side u (planes of P·u texels).") var triplaneUpsample: Int = 4
    @Option(name: .customLong("triplane-layers"), help: "Triplane transformer layers (cross- and self-attention alternate).") var triplaneLayers: Int = 4
    @Option(name: .customLong("triplane-channels"), help: "Channels per texel.") var triplaneChannels: Int = 16
    @Option(name: .customLong("eval-every"), help: "Held-out evaluation every N steps (0 = only at the end).") var evalEvery: Int = 500
    @Option(name: .customLong("eval-scenes"), help: "Held-out scenes per evaluation.") var evalScenes: Int = 32
    @Option(name: .customLong("save-every"), help: "Save the model every N steps (0 = only at the end).") var saveEvery: Int = 500
    @Option(help: "Append step, loss, sdf loss, colour loss, grad norm, lr, seconds as TSV to this file.") var log: String?
    @Option(name: .customLong("decoder-hidden"), help: "Width of the decoder MLP.") var decoderHidden: Int = 64
    @Option(name: .customLong("triplane-width"), help: "Width of the triplane transformer.") var triplaneWidth: Int = 128
    @Option(name: .customLong("sdf-clamp"), help: "The SDF loss clamps the target to ±this.") var sdfClamp: Float = 0.4
    @Option(name: .customLong("far-weight"), help: "Weight of points farther than 0.1 from the surface.") var farWeight: Float = 0.5
    @Option(name: .customLong("overfit"), help: "Train on this many fixed scenes only (a check that the model can fit them).") var overfit: Int = 0

    func run() throws {
        try runReporting {
            var o = ShapeTrainOptions()
            o.steps = steps; o.scenesPerStep = scenes; o.pointsPerScene = points; o.learningRate = lr
            o.warmupSteps = warmup; o.seed = seed; o.threads = threads
            guard steps >= 1, scenes >= 1, points >= 16 else { throw HYError.invalidArgument("steps, scenes and points must be positive") }
            var c = Tiny3DConfig()
            c.triplaneTokens = triplaneTokens; c.triplaneUpsample = triplaneUpsample; c.triplaneChannels = triplaneChannels
            c.triplaneLayers = triplaneLayers; c.decoderHidden = decoderHidden; c.triplaneWidth = triplaneWidth
            c.triplaneMLP = 2 * triplaneWidth
            o.clampSDF = sdfClamp; o.farWeight = farWeight
            var held = ShapeTrainer.heldOutScenes(count: evalScenes)
            if overfit > 0 {
                held = Array(held.prefix(overfit))
                o.fixedScenes = held
            }
            var seenRNG = SplitMix64(seed: 77)
            var seen: [ShapeScene] = []
            while seen.count < evalScenes {
                let s = ShapeScene.random(&seenRNG, singleShare: seen.count % 2 == 0 ? 1 : 0)
                if !s.isHeldOut { seen.append(s) }
            }
            let tok = try Tokenizer.load(path: tokenizer)
            let trainer = try ShapeTrainer(config: c, tokenizer: tok, options: o)
            writeStderr("train-3d: \(trainer.params.parameterCount) parameters, vocabulary \(trainer.params.config.vocab.count) ids, \(steps) steps × \(scenes) scenes × \(points) points\n")
            var logFile: UnsafeMutablePointer<FILE>? = nil
            if let log { logFile = fopen(log, "a") }
            defer { if let logFile { fclose(logFile) } }
            let t0 = Clock.seconds()
            var ema = 0.0
            for s in 1...steps {
                let m = try trainer.trainStep()
                ema = s == 1 ? m.loss : 0.98 * ema + 0.02 * m.loss
                let el = Clock.seconds() - t0
                if let logFile {
                    fputs("\(m.step)\t\(m.loss)\t\(m.sdfLoss)\t\(m.colorLoss)\t\(m.gradNorm)\t\(m.learningRate)\t\(el)\n", logFile)
                    fflush(logFile)
                }
                if s % 20 == 0 || s == steps {
                    let eta = el / Double(s) * Double(steps - s)
                    writeStderr("\rstep \(s)/\(steps) loss \(fixed(ema, 4)) (sdf \(fixed(m.sdfLoss, 4)) rgb \(fixed(m.colorLoss, 4))) |g| \(fixed(m.gradNorm, 3)) lr \(fixed(m.learningRate * 1000, 3))e-3 \(formatDuration(el)) eta \(formatDuration(eta))   ")
                }
                if evalEvery > 0 && s % evalEvery == 0 || s == steps {
                    let t = try trainer.evaluate(scenes: seen, language: .english, grid: 48)
                    writeStderr("\neval training scenes (en) step \(s): IoU \(fixed(t.meanIoU, 3)) colour error \(fixed(t.colorError, 1)) levels\n")
                    for lang in CaptionLanguage.allCases {
                        let r = try trainer.evaluate(scenes: held, language: lang, grid: 48)
                        writeStderr("eval held-out \(lang.rawValue) step \(s): IoU \(fixed(r.meanIoU, 3)) (min \(fixed(r.minIoU, 3))) colour error \(fixed(r.colorError, 1)) levels\n")
                    }
                }
                if saveEvery > 0 && s % saveEvery == 0 || s == steps { try trainer.save(to: output) }
            }
            writeStderr("\ntrain-3d: saved \(output) (\(formatDuration(Clock.seconds() - t0)))\n")
        }
    }
}

struct Eval3DCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-3d",
        abstract: "Held-out quality of a hunyuan3d-tiny model: volumetric IoU with the procedural shape and colour error on its surface.",
        discussion: "One JSON object per language on stdout (mean, min and per-caption IoU and colour error in 8-bit levels).")
    @Argument(help: "Model folder (or builtin:NAME).") var model: String
    @Option(help: "Held-out scenes (half single parts, half pairs).") var scenes: Int = 64
    @Option(help: "IoU grid side over the box.") var grid: Int = 64
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Also print the predicted and true part centres of the first scenes on stderr.") var centers = false

    func run() throws {
        try runReporting {
            guard scenes >= 1, grid >= 8, grid <= 256 else { throw HYError.invalidArgument("--scenes ≥ 1 and --grid in 8...256") }
            let m = try Tiny3DModel(path: model, threads: threads)
            let held = ShapeTrainer.heldOutScenes(count: scenes)
            var out = StdoutWriter()
            if centers {
                for s in held.prefix(8) {
                    let parts = try m.parts(s.caption(.english))
                    writeStderr("\(s.caption(.english)): predicted \(parts.map { $0.center }) true \(s.parts.map { $0.center })\n")
                    // The scene's SDF along x through the first part's true centre, predicted and true.
                    let c0 = s.parts[0].center
                    let xs = stride(from: Float(-0.8), through: 0.8, by: 0.2).map { $0 }
                    let pts = xs.flatMap { [c0.x + $0, c0.y, c0.z] }
                    let (sdf, _) = m.query(parts, points: pts)
                    let want = xs.map { s.sdf(SIMD3(c0.x + $0, c0.y, c0.z)) }
                    writeStderr("  sdf  \(sdf.map { fixed(Double($0), 2) })\n  true \(want.map { fixed(Double($0), 2) })\n")
                    var p0 = parts[0]
                    p0.center = .zero
                    let (raw, _) = m.query([p0], points: xs.flatMap { [$0, 0, 0] })
                    writeStderr("  slot 0 in its frame \(raw.map { fixed(Double($0), 2) })\n")
                }
            }
            for lang in CaptionLanguage.allCases {
                let r = try ShapeTrainer.evaluate(params: m.params, tokenizer: m.tokenizer, scenes: held, language: lang,
                                                  grid: grid, pool: m.pool)
                let per: [JSONValue] = r.perScene.map {
                    .object([("caption", .string($0.caption)), ("iou", .double(($0.iou * 1e4).rounded() / 1e4)),
                             ("color_error", .double(($0.colorError * 10).rounded() / 10))])
                }
                out.write(JSONValue.object([
                    ("language", .string(lang.rawValue)), ("scenes", .int(Int64(r.scenes))), ("grid", .int(Int64(grid))),
                    ("mean_iou", .double((r.meanIoU * 1e4).rounded() / 1e4)), ("min_iou", .double((r.minIoU * 1e4).rounded() / 1e4)),
                    ("color_error", .double((r.colorError * 10).rounded() / 10)), ("per_scene", .array(per)),
                ]).serialized() + "\n")
            }
            out.flush()
        }
    }
}

/// text-to-3d on hunyuan3d-tiny: the mesh, an optional preview, and the time of every stage on stderr.
func runTiny3D(model: String, prompt: String, output: String, preview: String?, resolution: Int, faces: Int,
               smooth: Int, threads: Int, overwrite: Bool) throws {
    let t0 = Clock.seconds()
    let m = try Tiny3DModel(path: model, threads: threads)
    let load = Clock.seconds() - t0
    var o = Tiny3DMeshOptions()
    o.resolution = resolution; o.targetFaces = faces; o.smoothIterations = smooth
    let bar = ProgressLine(label: "text-to-3d")
    let mesh = try m.textToMesh(prompt, options: o, progress: { stage, f in bar.show(stage.name, f); return true })
    bar.finish()
    let t1 = Clock.seconds()
    try mesh.save(output, overwrite: overwrite)
    let export = Clock.seconds() - t1
    if let preview { try PNGEncoder.write(try Raster.preview(mesh), to: preview, overwrite: overwrite) }
    var parts = ["load \(fixed(load, 3)) s"]
    for s in Tiny3DModel.Stage.allCases where s != .done { parts.append("\(s.name) \(fixed(m.timings[s.rawValue], 3)) s") }
    parts.append("export \(fixed(export, 3)) s")
    writeStderr("stages: " + parts.joined(separator: ", ") + "\n")
    writeStderr("\(mesh.vertexCount) vertices, \(mesh.faceCount) faces → \(output)\n")
}

/// One progress line on stderr (stage and overall fraction).
final class ProgressLine {
    let label: String
    var shown = false
    init(label: String) { self.label = label }
    func show(_ stage: String, _ fraction: Float) {
        let width = 24, filled = min(width, Int(Float(width) * fraction))
        writeStderr("\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(stage)\u{1B}[K")
        shown = true
    }
    func finish() { if shown { writeStderr("\r\u{1B}[K") } }
}

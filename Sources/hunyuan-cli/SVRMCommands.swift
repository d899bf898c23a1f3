import ArgumentParser
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanGeometry
import HunyuanImage

/// `svrm-eval`: runs the reconstruction model on already-preprocessed inputs and writes every output
/// under the names and layouts of the svrm fixtures' reference.safetensors, so parity can be checked
/// by anyone with numpy.
struct SVRMEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svrm-eval",
        abstract: "Evaluate the SVRM on preprocessed views: image tokens, triplane, SDF/RGB at points, SDF grid.",
        discussion: """
            --inputs is a safetensors file with `images` f32 [7,3,S,S] (preprocessed) and `cameras` f32 [7,20].
            --points is a float32 [P,3] .npy file (or a .safetensors file holding `points`).
            The output safetensors holds encoder_tokens [7,T,D], triplane [1,3,C,R,R], sdf [P,1], rgb [P,3]
            and sdf_grid [N,N,N] (with --grid N), plus the intermediates with --intermediates and
            sdf_grad / normal [P,3] with --normals.
            """)

    @Argument(help: "SVRM checkpoint folder (config.json optional) or .safetensors file.") var model: String
    @Option(help: "Safetensors file with `images` and `cameras`.") var inputs: String?
    @Option(help: "Skip the encoder: read `triplane` [1,3,C,R,R] from this safetensors file (e.g. an earlier output).")
    var triplane: String?
    @Option(help: "Query points: float32 [P,3] .npy (or .safetensors with `points`).") var points: String?
    @Option(help: "SDF grid resolution N over the model's box (0 = none).") var grid: Int = 0
    @Option(name: .shortAndLong, help: "Output safetensors path.") var output: String
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Also write the intermediates (enc_*, tri_block_out.*, triplane_tokens, upsampler_out, features).")
    var intermediates = false
    @Flag(help: "Also write sdf_grad and normal at the points (finite differences, as the reference).") var normals = false
    @Flag(help: "Print the time of every stage on stderr.") var timings = false
    @Option(help: "Also extract the zero level set at --mesh-resolution and save it (.obj/.ply/.glb/.stl; model frame x y z, vertex colours).")
    var mesh: String?
    @Option(help: "Marching-cubes grid for --mesh (the official default is 384).") var meshResolution: Int = 384
    @Flag(help: "Replace existing output files.") var overwrite = false

    func run() throws {
        try runReporting {
            try checkOutput(output, overwrite: overwrite)
            try checkOutput(mesh, overwrite: overwrite)
            let t0 = Clock.seconds()
            let svrm = try SVRM(path: model, threads: threads)
            writeStderr("load: \(svrmSeconds(Clock.seconds() - t0)) s\n")
            let t0e = Clock.seconds()
            let c = svrm.config, r = c.triplaneResolution
            var items: [SafetensorsWriter.Item] = []
            let tri: SVRMTriplane
            if let triplane {
                let f = try SafetensorsFile(path: triplane)
                guard let t = f.tensor("triplane") else { throw HYError.invalidArgument("\(triplane): no tensor `triplane`") }
                try t.expectShape([1, 3, c.triplaneChannels, r, r])
                tri = try SVRMTriplane(planes: t.floats(), channels: c.triplaneChannels, resolution: r)
            } else {
                guard let inputs else { throw HYError.invalidArgument("give --inputs (or --triplane)") }
                let input = try SafetensorsFile(path: inputs)
                guard let images = input.tensor("images"), let cameras = input.tensor("cameras") else {
                    throw HYError.invalidArgument("\(inputs): needs tensors `images` and `cameras`")
                }
                let size = images.shape.count == 4 ? images.shape[3] : c.imageSize
                try images.expectShape([c.numViews, c.inChannels, size, size])
                try cameras.expectShape([c.numViews, c.cameraDim])
                var last = Clock.seconds()
                let trace: Trace? = intermediates || timings ? { name, shape, values in
                    if timings {
                        let now = Clock.seconds()
                        writeStderr("  \(name): \(svrmSeconds(now - last)) s\n")
                        last = now
                    }
                    if !intermediates || name == "encoder_tokens" || name == "triplane" { return }
                    items.append(SafetensorsWriter.Item(name: name, shape: shape, floats: Array(values)))
                } : nil
                let enc = try svrm.encode(images: images.floats(), cameras: cameras.floats(), imageSize: size, trace: trace)
                let perView = 1 + (size / c.patchSize) * (size / c.patchSize)
                items.append(.init(name: "encoder_tokens", shape: [c.numViews, perView, c.encoderWidth], floats: enc.tokens))
                items.append(.init(name: "triplane", shape: [1, 3, c.triplaneChannels, r, r], floats: enc.triplane.planes))
                writeStderr("encode: \(svrmSeconds(Clock.seconds() - t0e)) s\n")
                tri = enc.triplane
            }

            if let points {
                let pts = try Self.readPoints(points)
                let n = pts.count / 3
                var feats = [Float](repeating: 0, count: intermediates ? n * c.decoderInputs : 0)
                let (sdf, rgb) = try feats.withUnsafeMutableBufferPointer { f in
                    try svrm.query(tri, points: pts, features: intermediates ? f.baseAddress : nil)
                }
                items.append(.init(name: "points", shape: [n, 3], floats: pts))
                items.append(.init(name: "sdf", shape: [n, 1], floats: sdf))
                items.append(.init(name: "rgb", shape: [n, 3], floats: rgb))
                if intermediates { items.append(.init(name: "features", shape: [n, c.decoderInputs], floats: feats)) }
                if normals {
                    let (g, nm) = try svrm.normals(tri, points: pts, sdf: sdf)
                    items.append(.init(name: "sdf_grad", shape: [n, 3], floats: g))
                    items.append(.init(name: "normal", shape: [n, 3], floats: nm))
                }
            }
            if grid > 0 {
                let t1 = Clock.seconds()
                let values = try svrm.sdfGrid(tri, size: grid)
                items.append(.init(name: "sdf_grid", shape: [grid, grid, grid], floats: values))
                writeStderr("sdf grid \(grid)^3: \(svrmSeconds(Clock.seconds() - t1)) s\n")
            }
            if let mesh {
                let t2 = Clock.seconds()
                let m = try svrm.extractMesh(tri, resolution: meshResolution, colors: true)
                writeStderr("mesh \(meshResolution)^3: \(m.vertexCount) vertices, \(m.faceCount) faces, \(svrmSeconds(Clock.seconds() - t2)) s\n")
                try m.save(mesh, overwrite: overwrite)
            }
            try SafetensorsWriter.write(items, metadata: [("producer", "hunyuan-cli svrm-eval")], to: output,
                                        overwrite: overwrite)
        }
    }

    /// [P, 3] float points from a .npy file, or from the `points` tensor of a .safetensors file.
    static func readPoints(_ path: String) throws -> [Float] {
        if path.hasSuffix(".safetensors") {
            let f = try SafetensorsFile(path: path)
            guard let t = f.tensor("points") else { throw HYError.invalidArgument("\(path): no tensor `points`") }
            guard t.shape.count == 2, t.shape[1] == 3 else { throw HYError.invalidArgument("\(path): points shape \(t.shape), [P,3] expected") }
            return t.floats()
        }
        let a = try NpyArray.read(path)
        guard a.shape.count == 2, a.shape[1] == 3 else { throw HYError.invalidArgument("\(path): shape \(a.shape), [P,3] expected") }
        return a.data
    }
}


/// Seconds with 3 decimals.
private func svrmSeconds(_ s: Double) -> String { String(Double(Int((s * 1000).rounded())) / 1000) }

/// `svrm-random`: writes a full-size SVRM with seeded random weights (every official tensor name and
/// shape from a tensor list such as fixtures/svrm/full-size-tensors.json) plus a config.json with a
/// sphere prior, so views → mesh gives one closed (bumpy) shape. For benchmarks and memory checks only.
struct SVRMRandomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svrm-random",
        abstract: "Write a random-weight SVRM checkpoint folder (official names/shapes) for benchmarks.")

    @Argument(help: "Output folder (created if missing).") var output: String
    @Option(help: "JSON with a `tensors` object {name: shape} (fixtures/svrm/full-size-tensors.json).") var tensors: String
    @Option(help: "Stored dtype: f32, f16 or bf16.") var dtype = DType.f16
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Sphere prior radius written to config.json.") var sphereRadius: Double = 0.4

    func run() throws {
        try runReporting {
            guard [.f32, .f16, .bf16].contains(dtype) else { throw HYError.invalidArgument("--dtype \(dtype.name): f32, f16 or bf16") }
            let dt = dtype
            let file = try MappedFile(path: tensors)
            let json = try withExtendedLifetime(file) { try JSONValue.parse(file.bytes, context: tensors) }
            guard let list = json["tensors"]?.objectValue else { throw HYError.format("\(tensors): no `tensors` object") }
            if !FileSystem.isDirectory(output) && mkdir(output, 0o755) != 0 {
                throw HYError.io("\(output): cannot create folder")
            }
            var rng = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            func uniform() -> Float {  // xorshift64*, uniform in [-1, 1)
                rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27
                return Float((rng &* 2_685_821_657_736_338_717) >> 40) / Float(1 << 23) - 1
            }
            var items: [SafetensorsWriter.Item] = []
            for (name, shapeValue) in list {
                let shape = (shapeValue.arrayValue ?? []).compactMap { $0.intValue.map(Int.init) }
                let n = shape.reduce(1, *)
                let std = Self.initStd(name, shape)
                var v = [Float](repeating: 0, count: n)
                if name.hasSuffix("_inv_std") { v = [0.3] }
                else if let c = std.constant { for i in 0..<n { v[i] = c } }
                else { let a = std.std * 1.7320508; for i in 0..<n { v[i] = a * uniform() } }
                items.append(.init(name: name, shape: shape, floats: v, as: dt))
            }
            try SafetensorsWriter.write(items, metadata: [("format", "pt"), ("producer", "hunyuan-cli svrm-random")],
                                        to: FileSystem.join(output, "model.safetensors"))
            let config = """
                {"model": {"params": {
                  "img_encoder_config": {"params": {"version": "dinov2_vitb14"}},
                  "img_to_triplane_config": {"params": {"pos_emb_size": 64, "pos_emb_dim": 1024, "cam_cond_dim": 20,
                    "n_heads": 16, "d_head": 64, "depth": 16, "context_dim": 768, "triplane_dim": 120}},
                  "render_config": {"params": {"triplane_dim": 120},
                    "decoder": {"hidden_dim": 64, "num_layers": 2, "sphere_prior_radius": \(sphereRadius)},
                    "rendering_kwargs": {"box_warp": 1.2, "sampler_bbox_min": -0.6, "sampler_bbox_max": 0.6}}}},
                 "shapes": {"num_views": 7, "input_size": 504},
                 "note": "random weights (hunyuan-cli svrm-random --seed \(seed)); not a trained model"}

                """
            try FileSystem.writeAtomically(FileSystem.join(output, "config.json"), overwrite: true) { w in
                var b = Array(config.utf8)
                try b.withUnsafeMutableBytes { try w(UnsafeRawBufferPointer($0)) }
            }
        }
    }

    /// Initial scale per tensor: 1/√fan_in for Linear/Conv weights, small modulation and decoder
    /// output weights (so AdaNorm ≈ LayerNorm and the sphere prior dominates the SDF), ones for
    /// LayerNorm weights and LayerScale 0.1, zero biases.
    static func initStd(_ name: String, _ shape: [Int]) -> (std: Float, constant: Float?) {
        if name.hasSuffix(".bias") { return (0, 0) }
        if name.hasSuffix("ls1.gamma") || name.hasSuffix("ls2.gamma") { return (0, 0.1) }
        if name.contains(".norm") && name.hasSuffix(".weight") && shape.count == 1 { return (0, 1) }
        if name.contains("adaLN_modulation") { return (0.01, nil) }
        if name == "render.decoder.net.2.weight" { return (0.001, nil) }
        if name.hasSuffix("cls_token") || name.hasSuffix("pos_embed") || name.hasSuffix("mask_token") { return (0.02, nil) }
        if name.hasSuffix("pos_emb") { return (1 / 32, nil) }
        let fanIn = shape.dropFirst().reduce(1, *)
        return (1 / Float(max(fanIn, 1)).squareRoot(), nil)
    }
}

/// `reconstruct`: 6 views + the condition image → a coloured mesh, as the official pipeline.
struct ReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Hunyuan3D-1.0 views → mesh: 6 generated views (azimuth 0, 60, …, 300) + the condition image.",
        discussion: "Images are PNG or JPEG files (RGB or RGBA, square; alpha is composited over white), or the `images_uint8` "
            + "[7,H,W,C] tensor of a safetensors file (condition image last). The mesh format follows -o's extension.")

    @Argument(help: "SVRM checkpoint folder or .safetensors file.") var model: String
    @Option(parsing: .upToNextOption, help: "The 6 view images (PNG/JPEG) in azimuth order 0, 60, 120, 180, 240, 300.") var views: [String] = []
    @Option(help: "The condition image (PNG/JPEG).") var condition: String?
    @Option(help: "Instead of image files: a safetensors file with images_uint8 [7,H,W,C].") var viewsU8: String?
    @Option(name: .shortAndLong, help: "Output mesh (.glb, .obj, .ply, .stl).") var output: String
    @Option(help: "Marching-cubes resolution.") var resolution: Int = 384
    @Option(help: "Decimate to this many faces (0 = keep all).") var faces: Int = 90_000
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Option(help: "Also write a 512² PNG preview (four views) of the mesh.") var preview: String?
    @Flag(help: "Replace existing output files.") var overwrite = false

    func run() throws {
        try runReporting {
            var images: [ByteImage] = []
            if let viewsU8 {
                let f = try SafetensorsFile(path: viewsU8)
                guard let t = f.tensor("images_uint8"), t.dtype == .u8, t.shape.count == 4 else {
                    throw HYError.invalidArgument("\(viewsU8): needs a u8 tensor images_uint8 [7,H,W,C]")
                }
                let per = t.shape[1] * t.shape[2] * t.shape[3]
                let bytes = Array(t.data.bindMemory(to: UInt8.self))
                for v in 0..<t.shape[0] {
                    images.append(try ByteImage(width: t.shape[2], height: t.shape[1], channels: t.shape[3],
                                               pixels: Array(bytes[(v * per)..<((v + 1) * per)])))
                }
            } else {
                guard views.count == 6, let condition else {
                    throw HYError.invalidArgument("give --views with 6 image files and --condition (or --views-u8)")
                }
                for p in views + [condition] { images.append(try ImageFile.read(p)) }
            }
            try checkOutput(output, overwrite: overwrite)
            try checkOutput(preview, overwrite: overwrite)
            let t0 = Clock.seconds()
            let svrm = try SVRM(path: model, threads: threads)
            var o = SVRMMeshOptions()
            o.resolution = resolution
            o.targetFaces = faces
            var last = Clock.seconds(), previous = SVRM.Stage.preprocess
            let result = try svrm.viewsToMesh(views: images, options: o, progress: { p in
                let now = Clock.seconds()
                if p.stage == previous {  // within a stage (the encode's blocks): how far, of the whole run
                    writeStderr("[\(svrmSeconds(now - t0)) s] \(p.stage.name) \(Int(p.overall * 100))%\n")
                    return true
                }
                writeStderr("[\(svrmSeconds(now - t0)) s] \(previous.name): \(svrmSeconds(now - last)) s\n")
                last = now
                previous = p.stage
                return true
            })
            try result.mesh.save(output, overwrite: overwrite)
            if let preview { try PNGEncoder.write(try Raster.preview(result.mesh), to: preview, overwrite: overwrite) }
            writeStderr("\(result.mesh.vertexCount) vertices, \(result.mesh.faceCount) faces → \(output)\n")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN
import HunyuanLM
import HunyuanGeometry

/// How `Tiny3DModel.textToMesh` turns the field into a mesh.
public struct Tiny3DMeshOptions: Sendable {
    /// Marching-cubes grid side (2...512).
    public var resolution = 128
    /// Decimate to this many faces when the mesh has more; 0 keeps every face.
    public var targetFaces = 20_000
    /// Passes of Taubin smoothing after marching cubes (volume-preserving; 0 = none).
    public var smoothIterations = 2
    /// Components with fewer faces than this share of the largest one are dropped (stray bits of
    /// the learned field); 0 keeps every component.
    public var minComponentShare: Float = 0.01
    public init() {}
}

/// The small text-to-3D model `hunyuan3d-tiny` (folder: config.json + model.safetensors, trained by
/// `hunyuan-cli train-3d`): prompt → the built-in tokenizer → text transformer → part slots → one
/// triplane per part (triplane transformer) → the SVRM's triplane decoder (SDF + RGB) at each part's
/// centre, the union of the parts → marching cubes → clean-up → a vertex-coloured mesh in a y-up frame
/// (see `Tiny3DNet`). Deterministic: the same prompt gives the same mesh. One call at a time per instance.
public final class Tiny3DModel: @unchecked Sendable {
    public let path: String
    public let config: Tiny3DConfig
    public let params: Tiny3DParams
    public let tokenizer: Tokenizer
    public let decoder: SVRMDecoder
    public let pool: ThreadPool

    /// The stages of `textToMesh`, in order.
    public enum Stage: Int, CaseIterable, Sendable {
        case text, triplane, field, marchingCubes, cleanup, colors, done
        public var name: String {
            ["text encoding", "triplane", "field evaluation", "marching cubes", "clean-up", "colours", "done"][rawValue]
        }
        /// The fraction of the whole run done when the stage starts (what `textToMesh` reports).
        public var share: Float { [0, 0.02, 0.05, 0.7, 0.85, 0.97, 1][rawValue] }
    }

    /// Seconds spent in each stage of the last `textToMesh` (index = `Stage.rawValue`, `done` unused).
    public private(set) var timings = [Double](repeating: 0, count: Stage.allCases.count)

    /// Loads a model folder (or `builtin:NAME`). `threads` 0 = every core.
    /// Errors: `.io` (missing files), `.format` (bad config or tensors), `.unsupported` (another model type).
    public init(path given: String, threads: Int = 0) throws {
        let dir = try BuiltinModels.resolve(given)
        let cfgPath = FileSystem.join(dir, "config.json")
        guard FileSystem.exists(cfgPath) else { throw HYError.io("\(given): no config.json") }
        let json = try JSONValue.parse(contentsOf: cfgPath)
        if let t = json["model_type"]?.stringValue, t != "hunyuan3d-tiny" {
            throw HYError.unsupported("\(cfgPath): model_type \(t) is not a hunyuan3d-tiny model")
        }
        let cfg = try json.decode(Tiny3DConfig.self, context: cfgPath)
        try cfg.validate(cfgPath)
        let ck = try Checkpoint(path: dir)
        params = try Tiny3DParams(config: cfg, checkpoint: ck, context: dir)
        let tok = cfg.tokenizer.hasPrefix(BuiltinModels.prefix) || cfg.tokenizer.hasPrefix("/")
            ? cfg.tokenizer : FileSystem.join(dir, cfg.tokenizer)
        tokenizer = try Tokenizer.load(path: tok)
        decoder = try params.decoder()
        pool = ThreadPool(threads: threads)
        path = dir
        config = cfg
    }

    /// True when `path` (a folder or `builtin:NAME`) holds a hunyuan3d-tiny config.json.
    public static func isModel(path: String) -> Bool {
        guard let dir = try? BuiltinModels.resolve(path) else { return false }
        let cfg = FileSystem.join(dir, "config.json")
        guard FileSystem.exists(cfg), let json = try? JSONValue.parse(contentsOf: cfg) else { return false }
        return json["model_type"]?.stringValue == "hunyuan3d-tiny"
    }

    /// The text as the model reads it: ASCII lower case, runs of white space as one space, trimmed,
    /// trailing sentence punctuation dropped.
    public static func normalize(_ prompt: String) -> String {
        var out: [Character] = []
        var space = false
        for ch in prompt {
            if ch.isWhitespace { space = !out.isEmpty; continue }
            if space { out.append(" "); space = false }
            out.append(ch.isASCII ? Character(ch.lowercased()) : ch)
        }
        while let last = out.last, ".!。！".contains(last) { out.removeLast() }
        while out.last == " " { out.removeLast() }
        return String(out)
    }

    /// Tokenizer ids of a prompt (<|startoftext|> … <|endoftext|>); an empty prompt is `.invalidArgument`.
    public static func ids(_ prompt: String, tokenizer: Tokenizer) throws -> [Int32] {
        let text = normalize(prompt)
        guard !text.isEmpty else { throw HYError.invalidArgument("the prompt is empty") }
        return try tokenizer.encode(text, wrap: true, parseSpecial: false)
    }

    /// A prompt's parts: each part's triplane (in its own frame) and centre.
    public func parts(_ prompt: String) throws -> [Part] {
        let rows = Tiny3DNet.rows(try Self.ids(prompt, tokenizer: tokenizer), config)
        return try Self.parts(Tiny3DNet.forward(params, rows: rows, tape: nil, pool: pool), config)
    }

    /// One part of a scene: its triplane (centred at the origin) and where it stands.
    public struct Part: Sendable {
        public var triplane: SVRMTriplane
        public var center: SIMD3<Float>
    }

    /// The present parts of a forward pass (presence logit > 0; the likeliest one when none is).
    public static func parts(_ out: Tiny3DNet.Output, _ c: Tiny3DConfig) throws -> [Part] {
        var keep = out.presence.indices.filter { out.presence[$0] > 0 }
        if keep.isEmpty, let best = out.presence.indices.max(by: { out.presence[$0] < out.presence[$1] }) { keep = [best] }
        return try keep.map { Part(triplane: try Tiny3DNet.triplane(out.triplanes[$0], c), center: out.centers[$0]) }
    }

    /// The scene's SDF [n] (the union: the least part SDF) and RGB [n, 3] (the colour of that part) at
    /// n points ([n, 3], y up), decoded by `decoder` over `pool`.
    public static func query(_ parts: [Part], decoder: SVRMDecoder, points: UnsafePointer<Float>, count n: Int,
                             sdf: UnsafeMutablePointer<Float>, rgb: UnsafeMutablePointer<Float>?, pool: ThreadPool?) {
        let shifted = FloatBuffer(3 * n, zeroed: false), d = FloatBuffer(n, zeroed: false)
        let c = rgb == nil ? nil : FloatBuffer(3 * n, zeroed: false)
        for i in 0..<n { sdf[i] = .infinity }
        for part in parts {
            for i in 0..<n {
                for a in 0..<3 { shifted.p[3 * i + a] = points[3 * i + a] - part.center[a] }
            }
            decoder.query(part.triplane, points: shifted.p, count: n, sdf: d.p, rgb: c?.p, pool: pool)
            for i in 0..<n where d.p[i] < sdf[i] {
                sdf[i] = d.p[i]
                if let rgb, let c { for a in 0..<3 { rgb[3 * i + a] = c.p[3 * i + a] } }
            }
        }
    }

    /// SDF [n] and RGB [n, 3] of a prompt's parts at n points ([n, 3], y up).
    public func query(_ parts: [Part], points: [Float]) -> (sdf: [Float], rgb: [Float]) {
        let n = points.count / 3
        var sdf = [Float](repeating: 0, count: n), rgb = [Float](repeating: 0, count: 3 * n)
        points.withUnsafeBufferPointer { p in
            sdf.withUnsafeMutableBufferPointer { s in
                rgb.withUnsafeMutableBufferPointer { c in
                    Self.query(parts, decoder: decoder, points: p.baseAddress!, count: n, sdf: s.baseAddress!,
                               rgb: c.baseAddress!, pool: pool)
                }
            }
        }
        return (sdf, rgb)
    }

    /// Prompt → vertex-coloured mesh (y up, inside [-box, box]³). `progress(stage, fraction of the
    /// whole run)` is called on the calling thread at the start of each stage; false cancels.
    /// `abort` is polled between stages and per grid slice; true cancels. Cancelling throws `.aborted`.
    /// The field's outermost grid layer is treated as outside, so every surface is closed.
    public func textToMesh(_ prompt: String, options o: Tiny3DMeshOptions = Tiny3DMeshOptions(),
                           progress: ((Stage, Float) -> Bool)? = nil, abort: (() -> Bool)? = nil) throws -> Mesh {
        let n = o.resolution
        guard n >= 8 && n <= 512 else { throw HYError.invalidArgument("grid resolution \(n) (8...512 expected)") }
        guard o.targetFaces >= 0 else { throw HYError.invalidArgument("face target \(o.targetFaces) is negative") }
        guard o.smoothIterations >= 0 && o.smoothIterations <= 100 else {
            throw HYError.invalidArgument("smoothing \(o.smoothIterations) (0...100 expected)")
        }
        timings = [Double](repeating: 0, count: Stage.allCases.count)
        var clock = Clock.seconds()
        var current = Stage.text
        func enter(_ s: Stage) throws {
            let now = Clock.seconds()
            if s != .text { timings[current.rawValue] += now - clock }
            clock = now
            current = s
            if let abort, abort() { throw HYError.aborted("text to 3D cancelled at \(s.name)") }
            if let progress, !progress(s, s.share) { throw HYError.aborted("text to 3D cancelled at \(s.name)") }
        }
        try enter(.text)
        let rows = Tiny3DNet.rows(try Self.ids(prompt, tokenizer: tokenizer), config)
        try enter(.triplane)
        let parts = try Self.parts(Tiny3DNet.forward(params, rows: rows, tape: nil, pool: pool), config)
        try enter(.field)
        let b = Float(config.box)
        let axis = SVRMDecoder.linspace(-b, b, n)
        var grid = [Float](repeating: 0, count: n * n * n)
        let pts = FloatBuffer(3 * n * n, zeroed: false)
        try grid.withUnsafeMutableBufferPointer { g in
            for i in 0..<n {
                if let abort, abort() { throw HYError.aborted("text to 3D cancelled at \(Stage.field.name)") }
                for j in 0..<n {
                    for k in 0..<n {
                        let o = pts.p + 3 * (j * n + k)
                        o[0] = axis[i]; o[1] = axis[j]; o[2] = axis[k]
                    }
                }
                Self.query(parts, decoder: decoder, points: pts.p, count: n * n, sdf: g.baseAddress! + i * n * n, rgb: nil, pool: pool)
            }
            for v in g where !v.isFinite { throw HYError.format("\(path): the field is not finite (corrupt weights?)") }
            // Close every surface: the outermost layer counts as outside.
            let pos: Float = 1e-3
            for i in 0..<n {
                for j in 0..<n {
                    for k in 0..<n where i == 0 || j == 0 || k == 0 || i == n - 1 || j == n - 1 || k == n - 1 {
                        let idx = (i * n + j) * n + k
                        g[idx] = max(g[idx], pos)
                    }
                }
            }
        }
        try enter(.marchingCubes)
        var mesh = try MarchingCubes.extract(grid: grid, dims: SIMD3(n, n, n), level: 0,
                                             bounds: .init(min: SIMD3(repeating: -config.box), max: SIMD3(repeating: config.box)),
                                             interiorVertices: false, threads: pool.threadCount)
        grid = []
        try enter(.cleanup)
        mesh = try MeshOps.clean(mesh)
        if o.minComponentShare > 0 && mesh.faceCount > 0 {
            let (ids, count) = MeshOps.faceComponents(mesh)
            var sizes = [Int](repeating: 0, count: count)
            for i in ids { sizes[i] += 1 }
            let minFaces = Int((Float(sizes.max() ?? 0) * o.minComponentShare).rounded(.up))
            mesh = MeshOps.removeSmallComponents(mesh, minFaces: max(1, minFaces))
        }
        if o.smoothIterations > 0 { mesh = MeshOps.taubinSmooth(mesh, iterations: o.smoothIterations) }
        if o.targetFaces > 0 && mesh.faceCount > o.targetFaces { mesh = try MeshOps.decimate(mesh, targetFaces: o.targetFaces) }
        try enter(.colors)
        if mesh.vertexCount > 0 {
            let (_, rgb) = query(parts, points: mesh.positions)
            mesh.colors = rgb.map { min(max($0, 0), 1) }
            mesh.colorChannels = 3
        }
        try enter(.done)
        return mesh
    }
}

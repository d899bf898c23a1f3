import HunyuanNN
import HunyuanGeometry
import HunyuanImage

/// Views → mesh as the official predictor + `SVRMModel.export_mesh_with_uv` do it (vertex-colour
/// path, `svrm/predictor.py`, `svrm/ldm/models/svrm.py:128-224`): 7 RGB(A) views (the 6 generated
/// views at azimuth 0…300, then the condition image) are preprocessed, encoded with the predictor's
/// cameras, the SDF is evaluated on a resolution³ grid straight into marching cubes, the mesh is
/// refined (`refine_mesh`, `svrm.py:86-107`: duplicate clean-up, vertex clustering at 0.007, two
/// passes of Open3D's `filter_smooth_simple`), decimated to `targetFaces` when larger, and coloured
/// with the decoder's RGB at the final vertices. Output vertices are in the model frame (x, y, z);
/// `exportAxes` applies the official OBJ/GLB order (y, z, x) (`svrm.py:214, 266`).
public struct SVRMMeshOptions: Sendable {
    /// Marching-cubes grid side (official 384).
    public var resolution = 384
    /// Decimate to this many faces when the refined mesh has more (official default 10,000 in
    /// `predictor.predict`, 90,000 in the demo scripts); 0 keeps every face.
    public var targetFaces = 90_000
    /// Vertex-clustering cell (official 0.007, in model units).
    public var clusterSize: Float = 0.007
    /// Passes of the simple neighbour-average smoothing (official 2).
    public var smoothIterations = 2
    /// Reorder vertices to (y, z, x) as the official exporter writes them.
    public var exportAxes = true
    public init() {}
}

extension SVRM {
    /// The stages of `viewsToMesh`, in order, and the share of the whole run each one is given in
    /// `Progress.overall` (what the C API's progress callback reports): encode [0, 0.6) (about 95% of
    /// the time at full size), marching cubes [0.6, 0.85), refine [0.85, 0.95), colours [0.95, 1),
    /// done 1. Preprocessing comes before the first report.
    public enum Stage: Sendable, CaseIterable {
        /// Views → normalised [3, S, S] floats (`SVRMPreprocess.prepare`). Not reported.
        case preprocess
        /// Image encoder and triplane transformer: reported at its start and after every block.
        case encode
        /// The SDF over the grid, evaluated block by block straight into marching cubes.
        case marchingCubes
        /// Clean-up, vertex clustering, smoothing, decimation (`refine`).
        case refine
        /// Vertex colours from the decoder, then the export axes.
        case colors
        /// The mesh is ready.
        case done

        /// The stage's name in logs and messages.
        public var name: String {
            switch self {
            case .preprocess: return "preprocess"
            case .encode: return "encode"
            case .marchingCubes: return "marching cubes"
            case .refine: return "refine"
            case .colors: return "colours"
            case .done: return "done"
            }
        }

        /// The stage's part [start, end] of the whole run, in [0, 1].
        public var share: (start: Float, end: Float) {
            switch self {
            case .preprocess: return (0, 0)
            case .encode: return (0, 0.6)
            case .marchingCubes: return (0.6, 0.85)
            case .refine: return (0.85, 0.95)
            case .colors: return (0.95, 1)
            case .done: return (1, 1)
            }
        }
    }

    /// A progress report of `viewsToMesh`: `completed` of `total` steps of `stage` are done (the
    /// encode's steps are its encoder and transformer blocks; the other stages report once, at their
    /// start, with 0 of 1; done with 1 of 1).
    public struct Progress: Sendable {
        public var stage: Stage
        public var completed: Int
        public var total: Int

        /// The fraction of the stage that is done, in [0, 1].
        public var fraction: Float { total > 0 ? Float(completed) / Float(total) : 1 }

        /// The fraction of the whole run: start + (end − start) · completed / total over the stage's
        /// `share`.
        public var overall: Float {
            let (start, end) = stage.share
            return total > 0 ? start + (end - start) * Float(completed) / Float(total) : end
        }
    }

    /// 8-bit views → mesh (see `SVRMMeshOptions`). `progress` is called on the calling thread at the
    /// start of every stage from `.encode` on and after each encoder / transformer block, and returning
    /// false cancels; `abort()` is polled before each encoder and transformer block (calling thread) and
    /// during the SDF evaluation (worker threads); returning true cancels. Cancelling throws `.aborted`.
    public func viewsToMesh(views: [ByteImage], options: SVRMMeshOptions = SVRMMeshOptions(),
                            progress: ((Progress) -> Bool)? = nil, abort: (() -> Bool)? = nil) throws
        -> (mesh: Mesh, triplane: SVRMTriplane) {
        guard views.count == config.numViews else {
            throw HYError.invalidArgument("\(views.count) views given; this model takes \(config.numViews) (6 views + the condition image last)")
        }
        guard config.numViews == 7 && config.cameraDim == 20 else {
            throw HYError.unsupported("views → mesh needs the predictor's 7-view, 20-float camera layout")
        }
        func report(_ stage: Stage, _ completed: Int = 0, of total: Int = 1) -> Bool {
            progress?(Progress(stage: stage, completed: completed, total: total)) ?? true
        }
        func start(_ stage: Stage) throws {
            if !report(stage, stage == .done ? 1 : 0) { throw HYError.aborted("reconstruction cancelled at \(stage.name)") }
        }
        var images: [Float] = []
        images.reserveCapacity(views.count * 3 * config.imageSize * config.imageSize)
        for (i, v) in views.enumerated() {
            do { images += try SVRMPreprocess.prepare(v, size: config.imageSize) } catch let e as HYError {
                throw HYError(e.kind, "view \(i): \(e.message)")
            }
        }
        try start(.encode)
        // Progress through the encode: once per encoder and transformer block (the poll before block
        // k + 1 reports k blocks done), on the calling thread; a false return cancels like abort().
        let blocks = max(1, config.encoderDepth + config.triplaneDepth)
        var done = 0
        let poll: () -> Bool = {
            if let abort, abort() { return true }
            if done > 0, !report(.encode, min(done, blocks), of: blocks) { return true }
            done += 1
            return false
        }
        let enc = try encode(images: images, cameras: SVRMPreprocess.cameras(), abort: poll)
        try start(.marchingCubes)
        var mesh = try extractMesh(enc.triplane, resolution: options.resolution, colors: false, abort: abort)
        try start(.refine)
        mesh = try refine(mesh, options)
        try start(.colors)
        if mesh.vertexCount > 0 {
            let (_, rgb) = try query(enc.triplane, points: mesh.positions)
            mesh.colors = rgb.map { min(max($0, 0), 1) }
            mesh.colorChannels = 3
        }
        if options.exportAxes { mesh = Self.toExportAxes(mesh) }
        try start(.done)
        return (mesh, enc.triplane)
    }

    /// `refine_mesh` + decimation: clean-up, vertex clustering, simple smoothing, quadric decimation.
    public func refine(_ m: Mesh, _ o: SVRMMeshOptions) throws -> Mesh { try Self.refineMesh(m, o) }

    /// `refine` for any marching-cubes mesh (the built-in generator shares it).
    public static func refineMesh(_ m: Mesh, _ o: SVRMMeshOptions) throws -> Mesh {
        var mesh = try MeshOps.clean(m)
        if mesh.faceCount == 0 { return mesh }
        if o.clusterSize > 0 { mesh = try MeshOps.vertexClustering(mesh, voxelSize: o.clusterSize) }
        // Open3D filter_smooth_simple: v ← (v + Σ neighbours) / (1 + n), i.e. λ = n/(n+1) ≈ 6/7 on a
        // regular surface; the uniform Laplacian step with that λ is used.
        if o.smoothIterations > 0 { mesh = MeshOps.laplacianSmooth(mesh, iterations: o.smoothIterations, lambda: 6.0 / 7.0) }
        if o.targetFaces > 0 && mesh.faceCount > o.targetFaces { mesh = try MeshOps.decimate(mesh, targetFaces: o.targetFaces) }
        return mesh
    }

    /// Vertices (x, y, z) → (y, z, x), the official exporter's order (normals likewise).
    public static func toExportAxes(_ m: Mesh) -> Mesh {
        var out = m
        func swizzle(_ a: [Float]) -> [Float] {
            var r = a
            for i in 0..<(a.count / 3) { r[3 * i] = a[3 * i + 1]; r[3 * i + 1] = a[3 * i + 2]; r[3 * i + 2] = a[3 * i] }
            return r
        }
        out.positions = swizzle(m.positions)
        if let n = m.normals { out.normals = swizzle(n) }
        return out
    }
}

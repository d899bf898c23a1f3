import HunyuanNN
import HunyuanGeometry
import HunyuanImage

/// A reconstruction model with the triplane of its last encode: encode once, then query points,
/// sample SDF grids or extract meshes from it (what `hy_recon` is). One thread at a time; the model
/// itself is immutable.
public final class SVRMSession {
    public let model: SVRM
    /// The triplane of the last successful `encode` or `viewsToMesh` (nil before; a failed encode
    /// clears it, so a query never reads a stale one by mistake).
    public private(set) var triplane: SVRMTriplane?

    public init(model: SVRM) { self.model = model }

    /// Encodes preprocessed views `images` [V, 3, S, S] with `cameras` [V, cameraDim]; nil cameras are
    /// the predictor's default camera vectors (only for its 7-view, 20-float layout).
    public func encode(images: [Float], cameras: [Float]?) throws {
        let c = model.config
        let cams: [Float]
        if let cameras {
            cams = cameras
        } else {
            guard c.numViews == 7, c.cameraDim == 20 else {
                throw HYError.invalidArgument("no cameras given, but this model is not the predictor's 7-view, 20-float layout")
            }
            cams = SVRMPreprocess.cameras()
        }
        triplane = nil
        triplane = try model.encode(images: images, cameras: cams).triplane
    }

    /// The last encoded triplane, or an invalid-argument error naming what to call first.
    public func encoded() throws -> SVRMTriplane {
        guard let t = triplane else { throw HYError.invalidArgument("nothing encoded yet (encode views first)") }
        return t
    }

    /// SDF and RGB at `points` [n, 3] of the encoded triplane.
    public func query(points: [Float]) throws -> (sdf: [Float], rgb: [Float]) {
        try model.query(try encoded(), points: points)
    }

    /// The SDF over a size³ grid of the encoded triplane, one x-slice at a time into `body`.
    public func sdfGrid(size: Int, _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard size >= 2, size <= 4096 else { throw HYError.invalidArgument("grid resolution \(size) (2...4096 expected)") }
        try model.sdfGrid(try encoded(), size: size, body)
    }

    /// Views → mesh (`SVRM.viewsToMesh`); keeps the triplane for later queries.
    public func viewsToMesh(views: [ByteImage], options: SVRMMeshOptions, progress: ((SVRM.Progress) -> Bool)? = nil,
                            abort: (() -> Bool)? = nil) throws -> Mesh {
        try options.validate()
        let r = try model.viewsToMesh(views: views, options: options, progress: progress, abort: abort)
        triplane = r.triplane
        return r.mesh
    }
}

extension SVRMMeshOptions {
    /// Invalid-argument errors for values no run can use.
    public func validate() throws {
        guard resolution >= 2, resolution <= 4096 else { throw HYError.invalidArgument("mesh resolution \(resolution) (2...4096 expected)") }
        guard targetFaces >= 0, smoothIterations >= 0, smoothIterations <= 1000, clusterSize >= 0, clusterSize.isFinite else {
            throw HYError.invalidArgument("target_faces, smooth_iterations (≤ 1000) and cluster_size must be ≥ 0")
        }
    }
}

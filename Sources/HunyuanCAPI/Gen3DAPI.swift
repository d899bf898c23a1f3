import CHunyuanABI
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanDiffusion
import HunyuanGeometry
import HunyuanImage

// hy_gen3d_*: image → mesh over a release-layout weights folder (Hunyuan3D/ImageTo3D.swift), or text →
// mesh with the built-in hunyuan3d-tiny (Hunyuan3D/Tiny/Tiny3DModel.swift).

/// What hy_gen3d_load opened: a release weights folder or a hunyuan3d-tiny model.
final class Gen3DHandle {
    let release: ImageTo3D?
    let tiny: Tiny3DModel?
    init(release: ImageTo3D) { self.release = release; tiny = nil }
    init(tiny: Tiny3DModel) { self.tiny = tiny; release = nil }

    /// The release pipeline, or `.unsupported` for hunyuan3d-tiny (text input only).
    func requireRelease(_ what: String) throws -> ImageTo3D {
        guard let release else { throw HYError.unsupported("\(what): hunyuan3d-tiny makes meshes from text only (hy_gen3d_text_to_mesh)") }
        return release
    }
}

@_cdecl("hy_gen3d_default_params")
public func hy_gen3d_default_params_impl() -> hy_gen3d_params {
    hy_gen3d_params(struct_size: UInt32(MemoryLayout<hy_gen3d_params>.size), n_threads: 0, u2net_path: nil, keep_loaded: false)
}

@_cdecl("hy_gen3d_load")
public func hy_gen3d_load_impl(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<hy_gen3d_params>?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let folder = try utf8Arg(path, "path")
        let p = try readParams(params, defaults: hy_gen3d_default_params_impl(), minimum: 8, "hy_gen3d_params")
        guard p.n_threads >= 0 else { throw HYError.invalidArgument("hy_gen3d_params.n_threads is \(p.n_threads)") }
        let u2net = try p.u2net_path.map { try utf8Arg($0, "hy_gen3d_params.u2net_path") }
        if Tiny3DModel.isModel(path: folder) {
            out.pointee = retainHandle(Gen3DHandle(tiny: try Tiny3DModel(path: folder, threads: Int(p.n_threads))))
        } else {
            out.pointee = retainHandle(Gen3DHandle(release: try ImageTo3D(folder: folder, u2net: u2net, keepLoaded: p.keep_loaded,
                                                                          threads: Int(p.n_threads))))
        }
    }
}

@_cdecl("hy_gen3d_free")
public func hy_gen3d_free_impl(_ g: OpaquePointer?) { releaseHandle(g, Gen3DHandle.self) }

@_cdecl("hy_gen3d_run_default_params")
public func hy_gen3d_run_default_params_impl() -> hy_gen3d_run_params {
    let o = ImageTo3D.Options()
    return hy_gen3d_run_params(struct_size: UInt32(MemoryLayout<hy_gen3d_run_params>.size), steps: Int32(o.steps),
                               seed: o.seed, resolution: Int32(o.mesh.resolution), target_faces: Int32(o.mesh.targetFaces),
                               keep_alpha: o.keepAlpha, compute: Int32(HY_COMPUTE_FP32.rawValue),
                               grid_width: Int32(o.gridWidth), grid_height: Int32(o.gridHeight),
                               text_steps: Int32(o.text.steps), image_width: Int32(o.text.width),
                               image_height: Int32(o.text.height), guidance_scale: o.text.guidanceScale,
                               pag_scale: o.text.pagScale, smooth_iterations: Int32(o.mesh.smoothIterations))
}

/// The options of `params` (NULL: the defaults; an older, shorter struct: defaults for the rest),
/// every field checked and named.
private func runOptions(_ params: UnsafePointer<hy_gen3d_run_params>?, tiny: Bool = false) throws -> ImageTo3D.Options {
    let p = try readParams(params, defaults: hy_gen3d_run_default_params_impl(), minimum: 8, "hy_gen3d_run_params")
    guard p.steps >= 1, p.steps <= 1000 else { throw HYError.invalidArgument("hy_gen3d_run_params.steps is \(p.steps) (1...1000)") }
    guard p.text_steps >= 1, p.text_steps <= 1000 else {
        throw HYError.invalidArgument("hy_gen3d_run_params.text_steps is \(p.text_steps) (1...1000)")
    }
    guard p.image_width >= 16, p.image_width <= 4096, p.image_height >= 16, p.image_height <= 4096,
          p.image_width % 16 == 0, p.image_height % 16 == 0 else {
        throw HYError.invalidArgument("hy_gen3d_run_params.image_width × image_height is \(p.image_width) × \(p.image_height) (multiples of 16, 16...4096)")
    }
    guard p.guidance_scale.isFinite, p.pag_scale.isFinite, p.pag_scale >= 0 else {
        throw HYError.invalidArgument("hy_gen3d_run_params.guidance_scale \(p.guidance_scale) / pag_scale \(p.pag_scale) (finite, PAG ≥ 0)")
    }
    var o = ImageTo3D.Options()
    o.steps = Int(p.steps); o.seed = p.seed; o.keepAlpha = p.keep_alpha
    o.gridWidth = Int(p.grid_width); o.gridHeight = Int(p.grid_height)
    switch p.compute {
    case Int32(HY_COMPUTE_FP32.rawValue): o.compute = .fp32
    case Int32(HY_COMPUTE_BF16.rawValue): o.compute = .bf16
    default: throw HYError.invalidArgument("hy_gen3d_run_params.compute is \(p.compute) (HY_COMPUTE_FP32 or HY_COMPUTE_BF16)")
    }
    guard p.smooth_iterations >= 0, p.smooth_iterations <= 100 else {
        throw HYError.invalidArgument("hy_gen3d_run_params.smooth_iterations is \(p.smooth_iterations) (0...100)")
    }
    o.mesh.resolution = p.resolution == 0 ? (tiny ? Tiny3DMeshOptions().resolution : SVRMMeshOptions().resolution) : Int(p.resolution)
    o.mesh.targetFaces = Int(p.target_faces)
    o.mesh.smoothIterations = Int(p.smooth_iterations)
    do { try o.mesh.validate() } catch let e as HYError { throw HYError(e.kind, "hy_gen3d_run_params: \(e.message)") }
    o.text.steps = Int(p.text_steps); o.text.width = Int(p.image_width); o.text.height = Int(p.image_height)
    o.text.guidanceScale = p.guidance_scale; o.text.pagScale = p.pag_scale
    return o
}

/// The C progress callback as the generator's: the stage, its fraction, the run's and the ETA of the
/// stage from its pace (the time since it started over the fraction done).
private func progressAdapter(_ progress: hy_gen3d_progress_callback?, _ user: UnsafeMutableRawPointer?)
    -> ((ImageTo3D.Progress) -> Bool)? {
    guard let cb = progress else { return nil }
    var stage: ImageTo3D.Stage? = nil, stageStart = Clock.seconds()
    return { pr in
        let now = Clock.seconds()
        if pr.stage != stage { stage = pr.stage; stageStart = now }
        let f = min(max(pr.fraction, 0), 1)
        let eta: Float = f > 0.01 && f < 1 ? Float((now - stageStart) / Double(f) * Double(1 - f)) : (f >= 1 ? 0 : -1)
        var info = hy_gen3d_progress(stage: stageCode(pr.stage), stage_fraction: f, overall: pr.overall, eta_seconds: eta)
        return cb(&info, user)
    }
}

private func gen3dArg(_ g: OpaquePointer?) throws -> Gen3DHandle {
    guard let h = handleObject(g, Gen3DHandle.self) else { throw HYError.invalidArgument("gen is NULL") }
    return h
}

/// hunyuan3d-tiny's stages as the C API's: text encoding and the triplane are
/// HY_GEN3D_TEXT_TO_TRIPLANE, the field to the coloured mesh HY_GEN3D_RECONSTRUCT.
private func tinyProgressAdapter(_ progress: hy_gen3d_progress_callback?, _ user: UnsafeMutableRawPointer?)
    -> ((Tiny3DModel.Stage, Float) -> Bool)? {
    guard let cb = progress else { return nil }
    return { stage, overall in
        let code: hy_gen3d_stage
        let fraction: Float
        switch stage {
        case .text, .triplane: code = HY_GEN3D_TEXT_TO_TRIPLANE; fraction = stage == .text ? 0 : 0.5
        case .done: code = HY_GEN3D_DONE; fraction = 1
        default:
            let start = Tiny3DModel.Stage.field.share
            code = HY_GEN3D_RECONSTRUCT; fraction = min(max((overall - start) / (1 - start), 0), 1)
        }
        var info = hy_gen3d_progress(stage: Int32(code.rawValue), stage_fraction: fraction, overall: overall, eta_seconds: -1)
        return cb(&info, user)
    }
}

private func stageCode(_ s: ImageTo3D.Stage) -> Int32 {
    switch s {
    case .removeBackground: return Int32(HY_GEN3D_REMOVE_BACKGROUND.rawValue)
    case .views: return Int32(HY_GEN3D_VIEWS.rawValue)
    case .reconstruct: return Int32(HY_GEN3D_RECONSTRUCT.rawValue)
    case .done: return Int32(HY_GEN3D_DONE.rawValue)
    case .textToImage: return Int32(HY_GEN3D_TEXT_TO_IMAGE.rawValue)
    }
}

@_cdecl("hy_gen3d_image_to_mesh")
public func hy_gen3d_image_to_mesh_impl(_ g: OpaquePointer?, _ image: UnsafePointer<hy_recon_image>?,
                                        _ params: UnsafePointer<hy_gen3d_run_params>?,
                                        _ progress: hy_gen3d_progress_callback?, _ progressUser: UnsafeMutableRawPointer?,
                                        _ abort: hy_abort_callback?, _ abortUser: UnsafeMutableRawPointer?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let handle = try gen3dArg(g)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let gen = try handle.requireRelease("hy_gen3d_image_to_mesh")
        guard let image else { throw HYError.invalidArgument("image is NULL") }
        let im = try byteImageArg(image.pointee, "image")
        let o = try runOptions(params)
        let r = try gen.run(image: im, options: o, progress: progressAdapter(progress, progressUser),
                            abort: abort.map { cb in { cb(abortUser) } })
        out.pointee = retainHandle(MeshHandle(r.mesh))
    }
}

@_cdecl("hy_gen3d_remove_background")
public func hy_gen3d_remove_background_impl(_ g: OpaquePointer?, _ image: UnsafePointer<hy_recon_image>?, _ keepAlpha: Bool,
                                            _ abort: hy_abort_callback?, _ abortUser: UnsafeMutableRawPointer?,
                                            _ out: UnsafeMutablePointer<hy_recon_image>?) -> hy_status {
    guarded {
        let handle = try gen3dArg(g)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = hy_recon_image()
        let gen = try handle.requireRelease("hy_gen3d_remove_background")
        guard let image else { throw HYError.invalidArgument("image is NULL") }
        let im = try byteImageArg(image.pointee, "image")
        let r = try gen.removeBackground(im, keepAlpha: keepAlpha, abort: abort.map { cb in { cb(abortUser) } })
        if !gen.keepLoaded { gen.release() }
        out.pointee = try ownedImage(r.final)
    }
}

@_cdecl("hy_gen3d_text_to_image")
public func hy_gen3d_text_to_image_impl(_ g: OpaquePointer?, _ prompt: UnsafePointer<CChar>?,
                                        _ params: UnsafePointer<hy_gen3d_run_params>?,
                                        _ progress: hy_gen3d_progress_callback?, _ progressUser: UnsafeMutableRawPointer?,
                                        _ abort: hy_abort_callback?, _ abortUser: UnsafeMutableRawPointer?,
                                        _ out: UnsafeMutablePointer<hy_recon_image>?) -> hy_status {
    guarded {
        let handle = try gen3dArg(g)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = hy_recon_image()
        let gen = try handle.requireRelease("hy_gen3d_text_to_image")
        let text = try utf8Arg(prompt, "prompt")
        let o = try runOptions(params)
        let im = try gen.textToImage(prompt: text, options: o, progress: progressAdapter(progress, progressUser),
                                     abort: abort.map { cb in { cb(abortUser) } })
        if !gen.keepLoaded { gen.release() }
        out.pointee = try ownedImage(im)
    }
}

@_cdecl("hy_gen3d_text_to_mesh")
public func hy_gen3d_text_to_mesh_impl(_ g: OpaquePointer?, _ prompt: UnsafePointer<CChar>?,
                                       _ params: UnsafePointer<hy_gen3d_run_params>?,
                                       _ progress: hy_gen3d_progress_callback?, _ progressUser: UnsafeMutableRawPointer?,
                                       _ abort: hy_abort_callback?, _ abortUser: UnsafeMutableRawPointer?,
                                       _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let handle = try gen3dArg(g)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let text = try utf8Arg(prompt, "prompt")
        let o = try runOptions(params, tiny: handle.tiny != nil)
        if let tiny = handle.tiny {
            var t = Tiny3DMeshOptions()
            t.resolution = o.mesh.resolution; t.targetFaces = o.mesh.targetFaces; t.smoothIterations = o.mesh.smoothIterations
            let mesh = try tiny.textToMesh(text, options: t, progress: tinyProgressAdapter(progress, progressUser),
                                           abort: abort.map { cb in { cb(abortUser) } })
            out.pointee = retainHandle(MeshHandle(mesh))
            return
        }
        let gen = try handle.requireRelease("hy_gen3d_text_to_mesh")
        let r = try gen.run(prompt: text, options: o, progress: progressAdapter(progress, progressUser),
                            abort: abort.map { cb in { cb(abortUser) } })
        out.pointee = retainHandle(MeshHandle(r.result.mesh))
    }
}

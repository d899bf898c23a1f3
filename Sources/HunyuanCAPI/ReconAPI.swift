import CHunyuanABI
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanGeometry
import HunyuanImage

/// The object behind `hy_recon *` is an `SVRMSession` (the model and its last triplane).
private func reconArg(_ r: OpaquePointer?) throws -> SVRMSession {
    guard let h = handleObject(r, SVRMSession.self) else { throw HYError.invalidArgument("recon is NULL") }
    return h
}

/// `n` floats at `p` as an array, checking the pointer and the size.
private func floatsArg(_ p: UnsafePointer<Float>?, _ n: Int, _ name: String) throws -> [Float] {
    guard let p else { throw HYError.invalidArgument("\(name) is NULL") }
    return Array(UnsafeBufferPointer(start: p, count: n))
}

@_cdecl("hy_recon_default_params")
public func hy_recon_default_params_impl() -> hy_recon_params {
    hy_recon_params(struct_size: UInt32(MemoryLayout<hy_recon_params>.size), n_threads: 0)
}

@_cdecl("hy_recon_load")
public func hy_recon_load_impl(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<hy_recon_params>?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let p = try utf8Arg(path, "path")
        let prm = try readParams(params, defaults: hy_recon_default_params_impl(), minimum: 8, "hy_recon_params")
        guard prm.n_threads >= 0 else { throw HYError.invalidArgument("hy_recon_params.n_threads is \(prm.n_threads)") }
        out.pointee = retainHandle(SVRMSession(model: try SVRM(path: p, threads: Int(prm.n_threads))))
    }
}

/// A caller's 8-bit image (`hy_recon_image`) copied into a ByteImage: pixels non-NULL, sides 1...32768,
/// 3 or 4 channels; `what` names it in errors.
func byteImageArg(_ v: hy_recon_image, _ what: String) throws -> ByteImage {
    guard let px = v.pixels else { throw HYError.invalidArgument("\(what).pixels is NULL") }
    guard v.width > 0, v.height > 0, v.width <= 32768, v.height <= 32768, v.channels == 3 || v.channels == 4 else {
        throw HYError.invalidArgument("\(what): \(v.width)x\(v.height)x\(v.channels) (positive size ≤ 32768, 3 or 4 channels)")
    }
    let n = try checkedMul(try checkedMul(Int(v.width), Int(v.height), "\(what) size"), Int(v.channels), "\(what) size")
    return try ByteImage(width: Int(v.width), height: Int(v.height), channels: Int(v.channels),
                         pixels: Array(UnsafeBufferPointer(start: px, count: n)))
}

/// `im` as a caller-owned `hy_recon_image` (malloc'd pixels, released with hy_recon_image_free).
func ownedImage(_ im: ByteImage) throws -> hy_recon_image {
    guard let buf = malloc(max(im.pixels.count, 1)) else { throw HYError.outOfMemory("\(im.pixels.count) bytes of pixels") }
    im.pixels.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return hy_recon_image(pixels: UnsafePointer(buf.assumingMemoryBound(to: UInt8.self)), width: Int32(im.width),
                          height: Int32(im.height), channels: Int32(im.channels))
}

@_cdecl("hy_recon_image_load")
public func hy_recon_image_load_impl(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<hy_recon_image>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = hy_recon_image()
        out.pointee = try ownedImage(try ImageFile.read(try utf8Arg(path, "path")))
    }
}

@_cdecl("hy_recon_image_free")
public func hy_recon_image_free_impl(_ image: UnsafeMutablePointer<hy_recon_image>?) {
    guard let image else { return }
    free(UnsafeMutableRawPointer(mutating: image.pointee.pixels))
    image.pointee = hy_recon_image()
}

@_cdecl("hy_recon_free")
public func hy_recon_free_impl(_ r: OpaquePointer?) { releaseHandle(r, SVRMSession.self) }

@_cdecl("hy_recon_get_info")
public func hy_recon_get_info_impl(_ r: OpaquePointer?, _ out: UnsafeMutablePointer<hy_recon_info>?) -> hy_status {
    guarded {
        let c = try reconArg(r).model.config
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        let size = Int(UnsafeRawPointer(out).load(as: UInt32.self))
        try checkStructSize(UInt32(size), minimum: 4, "hy_recon_info")
        var info = hy_recon_info(struct_size: UInt32(min(size, MemoryLayout<hy_recon_info>.size)), n_views: Int32(c.numViews),
                                 image_size: Int32(c.imageSize), camera_dim: Int32(c.cameraDim),
                                 triplane_channels: Int32(c.triplaneChannels), triplane_resolution: Int32(c.triplaneResolution),
                                 box_min: Float(c.boxMin), box_max: Float(c.boxMax))
        withUnsafeBytes(of: &info) { src in
            UnsafeMutableRawPointer(out).copyMemory(from: src.baseAddress!, byteCount: min(size, src.count))
        }
    }
}

@_cdecl("hy_recon_preprocess")
public func hy_recon_preprocess_impl(_ r: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                                     _ channels: Int32, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int) -> hy_status {
    guarded {
        let c = try reconArg(r).model.config
        guard let pixels else { throw HYError.invalidArgument("pixels is NULL") }
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        guard width > 0, height > 0, channels == 3 || channels == 4 else {
            throw HYError.invalidArgument("image \(width)x\(height)x\(channels): positive size and 3 or 4 channels expected")
        }
        let n = try checkedMul(try checkedMul(Int(width), Int(height), "image size"), Int(channels), "image size")
        let im = try ByteImage(width: Int(width), height: Int(height), channels: Int(channels),
                               pixels: Array(UnsafeBufferPointer(start: pixels, count: n)))
        let need = 3 * c.imageSize * c.imageSize
        guard capacity >= need else { throw HYError.invalidArgument("out holds \(capacity) floats; \(need) needed") }
        let v = try SVRMPreprocess.prepare(im, size: c.imageSize)
        v.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: need) }
    }
}

@_cdecl("hy_recon_encode")
public func hy_recon_encode_impl(_ r: OpaquePointer?, _ images: UnsafePointer<Float>?, _ nViews: Int,
                                 _ cameras: UnsafePointer<Float>?) -> hy_status {
    guarded {
        let h = try reconArg(r)
        let c = h.model.config
        guard nViews == c.numViews else { throw HYError.invalidArgument("n_views is \(nViews); this model takes \(c.numViews)") }
        let im = try floatsArg(images, nViews * 3 * c.imageSize * c.imageSize, "images")
        try h.encode(images: im, cameras: cameras.map { Array(UnsafeBufferPointer(start: $0, count: nViews * c.cameraDim)) })
    }
}

@_cdecl("hy_recon_query")
public func hy_recon_query_impl(_ r: OpaquePointer?, _ points: UnsafePointer<Float>?, _ n: Int,
                                _ sdfOut: UnsafeMutablePointer<Float>?, _ rgbOut: UnsafeMutablePointer<Float>?) -> hy_status {
    guarded {
        let h = try reconArg(r)
        _ = try h.encoded()
        guard n >= 0, n <= Int.max / 12 else { throw HYError.invalidArgument("n = \(n) is out of range") }
        let pts = try floatsArg(points, 3 * n, "points")
        guard let sdfOut else { throw HYError.invalidArgument("sdf_out is NULL") }
        if n == 0 { return }
        let (sdf, rgb) = try h.query(points: pts)
        sdf.withUnsafeBufferPointer { sdfOut.update(from: $0.baseAddress!, count: n) }
        if let rgbOut { rgb.withUnsafeBufferPointer { rgbOut.update(from: $0.baseAddress!, count: 3 * n) } }
    }
}

@_cdecl("hy_recon_sdf_grid")
public func hy_recon_sdf_grid_impl(_ r: OpaquePointer?, _ resolution: Int32, _ out: UnsafeMutablePointer<Float>?,
                                   _ capacity: Int, _ progress: hy_progress_callback?,
                                   _ user: UnsafeMutableRawPointer?) -> hy_status {
    guarded {
        let h = try reconArg(r)
        _ = try h.encoded()
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        guard resolution >= 2, resolution <= 4096 else { throw HYError.invalidArgument("resolution \(resolution) (2...4096 expected)") }
        let n = Int(resolution)
        guard capacity >= n * n * n else { throw HYError.invalidArgument("out holds \(capacity) floats; \(n * n * n) needed") }
        try h.sdfGrid(size: n) { i, slice in
            (out + i * n * n).update(from: slice.baseAddress!, count: n * n)
            if let progress, !progress(Float(i + 1) / Float(n), user) { throw HYError.aborted("sdf grid cancelled") }
        }
    }
}

@_cdecl("hy_recon_mesh_default_params")
public func hy_recon_mesh_default_params_impl() -> hy_recon_mesh_params {
    let o = SVRMMeshOptions()
    return hy_recon_mesh_params(struct_size: UInt32(MemoryLayout<hy_recon_mesh_params>.size), resolution: Int32(o.resolution),
                                target_faces: Int32(o.targetFaces), cluster_size: o.clusterSize,
                                smooth_iterations: Int32(o.smoothIterations), export_axes: o.exportAxes)
}

@_cdecl("hy_recon_views_to_mesh")
public func hy_recon_views_to_mesh_impl(_ r: OpaquePointer?, _ views: UnsafePointer<hy_recon_image>?, _ nViews: Int,
                                        _ params: UnsafePointer<hy_recon_mesh_params>?,
                                        _ progress: hy_progress_callback?, _ progressUser: UnsafeMutableRawPointer?,
                                        _ abort: hy_abort_callback?, _ abortUser: UnsafeMutableRawPointer?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let h = try reconArg(r)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        guard let views else { throw HYError.invalidArgument("views is NULL") }
        guard nViews == h.model.config.numViews else {
            throw HYError.invalidArgument("n_views is \(nViews); this model takes \(h.model.config.numViews)")
        }
        let p = try readParams(params, defaults: hy_recon_mesh_default_params_impl(), minimum: 8, "hy_recon_mesh_params")
        var o = SVRMMeshOptions()
        o.resolution = Int(p.resolution); o.targetFaces = Int(p.target_faces); o.clusterSize = p.cluster_size
        o.smoothIterations = Int(p.smooth_iterations); o.exportAxes = p.export_axes
        do { try o.validate() } catch let e as HYError { throw HYError(e.kind, "hy_recon_mesh_params: \(e.message)") }
        let images = try (0..<nViews).map { try byteImageArg(views[$0], "views[\($0)]") }
        let mesh = try h.viewsToMesh(
            views: images, options: o,
            progress: progress.map { cb in { p in cb(p.overall, progressUser) } },
            abort: abort.map { cb in { cb(abortUser) } })
        out.pointee = retainHandle(MeshHandle(mesh))
    }
}

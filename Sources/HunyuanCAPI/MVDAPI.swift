import CHunyuanABI
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanDiffusion
import HunyuanImage

/// The object behind `hy_mvd *`: the opened pipeline and its thread pool.
final class MVDHandle {
    let pipeline: MultiViewDiffusion
    let pool: ThreadPool
    init(_ p: MultiViewDiffusion, threads: Int) { pipeline = p; pool = ThreadPool(threads: threads) }
}

/// The object behind `hy_views *`: the views and grid, pixels kept at stable addresses.
final class ViewsHandle {
    let images: [UnsafeMutableBufferPointer<UInt8>]
    let sizes: [(Int, Int)]
    init(_ r: MultiViewDiffusion.Result) {
        let all = r.views + [r.grid]
        images = all.map { im in
            let b = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: im.pixels.count)
            _ = b.initialize(from: im.pixels)
            return b
        }
        sizes = all.map { ($0.width, $0.height) }
    }
    deinit { for b in images { b.deallocate() } }
    var count: Int { images.count - 1 }
    func image(_ i: Int) -> hy_recon_image {
        hy_recon_image(pixels: UnsafePointer(images[i].baseAddress), width: Int32(sizes[i].0), height: Int32(sizes[i].1), channels: 3)
    }
}

@_cdecl("hy_mvd_default_params")
public func hy_mvd_default_params_impl() -> hy_mvd_params {
    hy_mvd_params(struct_size: UInt32(MemoryLayout<hy_mvd_params>.size), n_threads: 0, variant: nil,
                  compute: Int32(HY_COMPUTE_FP32.rawValue))
}

@_cdecl("hy_mvd_load")
public func hy_mvd_load_impl(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<hy_mvd_params>?,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let p = try utf8Arg(path, "path")
        let prm = try readParams(params, defaults: hy_mvd_default_params_impl(), minimum: 8, "hy_mvd_params")
        guard prm.n_threads >= 0 else { throw HYError.invalidArgument("hy_mvd_params.n_threads is \(prm.n_threads)") }
        let variant = try prm.variant.map { try utf8Arg($0, "hy_mvd_params.variant") }
        if let v = variant, v.isEmpty || v.contains("/") { throw HYError.invalidArgument("hy_mvd_params.variant \"\(v)\"") }
        let compute: ComputePrecision
        switch prm.compute {
        case Int32(HY_COMPUTE_FP32.rawValue): compute = .fp32
        case Int32(HY_COMPUTE_BF16.rawValue): compute = .bf16
        default: throw HYError.invalidArgument("hy_mvd_params.compute is \(prm.compute) (HY_COMPUTE_FP32 or HY_COMPUTE_BF16)")
        }
        out.pointee = retainHandle(MVDHandle(try MultiViewDiffusion(folder: p, variant: variant, compute: compute),
                                             threads: Int(prm.n_threads)))
    }
}

@_cdecl("hy_mvd_free")
public func hy_mvd_free_impl(_ m: OpaquePointer?) { releaseHandle(m, MVDHandle.self) }

@_cdecl("hy_mvd_generate_default_params")
public func hy_mvd_generate_default_params_impl() -> hy_mvd_generate_params {
    hy_mvd_generate_params(struct_size: UInt32(MemoryLayout<hy_mvd_generate_params>.size), steps: 50, seed: 0,
                           width: 640, height: 960)
}

@_cdecl("hy_mvd_generate")
public func hy_mvd_generate_impl(_ m: OpaquePointer?, _ image: UnsafePointer<hy_recon_image>?,
                                 _ params: UnsafePointer<hy_mvd_generate_params>?,
                                 _ progress: hy_progress_callback?, _ progressUser: UnsafeMutableRawPointer?,
                                 _ abort: hy_abort_callback?, _ abortUser: UnsafeMutableRawPointer?,
                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let h = handleObject(m, MVDHandle.self) else { throw HYError.invalidArgument("mvd is NULL") }
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        guard let image else { throw HYError.invalidArgument("image is NULL") }
        let im = try byteImageArg(image.pointee, "image")
        let p = try readParams(params, defaults: hy_mvd_generate_default_params_impl(), minimum: 24, "hy_mvd_generate_params")
        guard p.steps >= 1, p.steps <= 1000 else { throw HYError.invalidArgument("hy_mvd_generate_params.steps is \(p.steps) (1...1000)") }
        let r = try h.pipeline.generate(
            image: im, steps: Int(p.steps), height: Int(p.height), width: Int(p.width), noise: SeededNoise(seed: p.seed),
            pool: h.pool, progress: progress.map { cb in { pr in cb(pr.overall, progressUser) } },
            abort: abort.map { cb in { cb(abortUser) } })
        out.pointee = retainHandle(ViewsHandle(r))
    }
}

@_cdecl("hy_views_count")
public func hy_views_count_impl(_ v: OpaquePointer?) -> Int { handleObject(v, ViewsHandle.self)?.count ?? 0 }

@_cdecl("hy_views_get")
public func hy_views_get_impl(_ v: OpaquePointer?, _ index: Int, _ out: UnsafeMutablePointer<hy_recon_image>?) -> hy_status {
    guarded {
        guard let h = handleObject(v, ViewsHandle.self) else { throw HYError.invalidArgument("views is NULL") }
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = hy_recon_image()
        guard index >= 0, index < h.count else { throw HYError.invalidArgument("index \(index) (0..<\(h.count))") }
        out.pointee = h.image(index)
    }
}

@_cdecl("hy_views_grid")
public func hy_views_grid_impl(_ v: OpaquePointer?, _ out: UnsafeMutablePointer<hy_recon_image>?) -> hy_status {
    guarded {
        guard let h = handleObject(v, ViewsHandle.self) else { throw HYError.invalidArgument("views is NULL") }
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = h.image(h.count)
    }
}

@_cdecl("hy_views_free")
public func hy_views_free_impl(_ v: OpaquePointer?) { releaseHandle(v, ViewsHandle.self) }

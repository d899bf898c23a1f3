import CHunyuanABI
import HunyuanCore
import HunyuanGeometry
import HunyuanImage

/// The object behind `hy_mesh *`: the mesh plus C copies of its arrays, made on demand for the
/// borrowed-pointer accessors and dropped whenever the mesh changes.
final class MeshHandle {
    var mesh: Mesh { didSet { invalidate() } }
    private var buffers: [Int: UnsafeMutableRawPointer] = [:]
    init(_ m: Mesh) { mesh = m }
    deinit { invalidate() }

    func invalidate() {
        for (_, p) in buffers { p.deallocate() }
        buffers = [:]
    }

    /// A stable copy of `array` under `key`, or nil for an empty array.
    func borrowed<T>(_ key: Int, _ array: [T]?) -> UnsafePointer<T>? {
        guard let array, !array.isEmpty else { return nil }
        if let p = buffers[key] { return UnsafePointer(p.assumingMemoryBound(to: T.self)) }
        let p = UnsafeMutablePointer<T>.allocate(capacity: array.count)
        p.initialize(from: array, count: array.count)
        buffers[key] = UnsafeMutableRawPointer(p)
        return UnsafePointer(p)
    }
}

private func meshArg(_ m: OpaquePointer?) throws -> MeshHandle {
    guard let h = handleObject(m, MeshHandle.self) else { throw HYError.invalidArgument("mesh is NULL") }
    return h
}

private func gridArgs(_ dims: UnsafePointer<Int32>?, _ bounds: UnsafePointer<Float>?, _ level: Float)
    throws -> (SIMD3<Int>, MarchingCubes.Bounds?) {
    guard let dims else { throw HYError.invalidArgument("dims is NULL") }
    let d = SIMD3(Int(dims[0]), Int(dims[1]), Int(dims[2]))
    guard level.isFinite else { throw HYError.invalidArgument("level \(level) is not finite") }
    var b: MarchingCubes.Bounds? = nil
    if let bounds {
        let v = (0..<6).map { Double(bounds[$0]) }
        guard v.allSatisfy({ $0.isFinite }), v[0] < v[3], v[1] < v[4], v[2] < v[5] else {
            throw HYError.invalidArgument("bounds must be finite x0,y0,z0,x1,y1,z1 with each min < max")
        }
        b = MarchingCubes.Bounds(min: SIMD3(v[0], v[1], v[2]), max: SIMD3(v[3], v[4], v[5]))
    }
    return (d, b)
}

private func outArg(_ out: UnsafeMutablePointer<OpaquePointer?>?) throws -> UnsafeMutablePointer<OpaquePointer?> {
    guard let out else { throw HYError.invalidArgument("out is NULL") }
    out.pointee = nil
    return out
}

@_cdecl("hy_mesh_from_grid")
public func hy_mesh_from_grid_impl(_ values: UnsafePointer<Float>?, _ count: Int, _ dims: UnsafePointer<Int32>?,
                                   _ bounds: UnsafePointer<Float>?, _ level: Float, _ flags: UInt32, _ threads: Int32,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let out = try outArg(out)
        let (d, b) = try gridArgs(dims, bounds, level)
        guard let values else { throw HYError.invalidArgument("values is NULL") }
        guard threads >= 0 else { throw HYError.invalidArgument("n_threads \(threads) is negative") }
        let grid = UnsafeBufferPointer(start: values, count: max(0, count))
        try meshFlagsArg(flags)
        let m = try MarchingCubes.extract(grid: grid, dims: d, level: level, bounds: b, insideAbove: flags & HY_MESH_INSIDE_ABOVE.rawValue != 0,
                                          interiorVertices: flags & HY_MESH_EDGE_VERTICES_ONLY.rawValue == 0, threads: Int(threads))
        out.pointee = retainHandle(MeshHandle(m))
    }
}

/// hy_mesh_flags: HY_MESH_INSIDE_ABOVE | HY_MESH_EDGE_VERTICES_ONLY.
private func meshFlagsArg(_ flags: UInt32) throws {
    let known = HY_MESH_INSIDE_ABOVE.rawValue | HY_MESH_EDGE_VERTICES_ONLY.rawValue
    guard flags & ~known == 0 else { throw HYError.invalidArgument("unknown hy_mesh_flags bits 0x\(String(flags & ~known, radix: 16))") }
}

@_cdecl("hy_mesh_from_field")
public func hy_mesh_from_field_impl(_ dims: UnsafePointer<Int32>?, _ bounds: UnsafePointer<Float>?, _ level: Float,
                                    _ flags: UInt32, _ threads: Int32, _ field: hy_mesh_field_callback?,
                                    _ user: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let out = try outArg(out)
        let (d, b) = try gridArgs(dims, bounds, level)
        guard let field else { throw HYError.invalidArgument("field callback is NULL") }
        guard threads >= 0 else { throw HYError.invalidArgument("n_threads \(threads) is negative") }
        try meshFlagsArg(flags)
        let m = try MarchingCubes.extract(dims: d, level: level, bounds: b, insideAbove: flags & HY_MESH_INSIDE_ABOVE.rawValue != 0,
                                          interiorVertices: flags & HY_MESH_EDGE_VERTICES_ONLY.rawValue == 0, threads: Int(threads)) { o, bd, buf in
            var origin: (Int32, Int32, Int32) = (Int32(o.x), Int32(o.y), Int32(o.z))
            var size: (Int32, Int32, Int32) = (Int32(bd.x), Int32(bd.y), Int32(bd.z))
            let ok = withUnsafePointer(to: &origin) { op in
                withUnsafePointer(to: &size) { sp in
                    field(UnsafeRawPointer(op).assumingMemoryBound(to: Int32.self),
                          UnsafeRawPointer(sp).assumingMemoryBound(to: Int32.self), buf.baseAddress, user)
                }
            }
            if !ok { throw HYError.aborted("field callback cancelled the extraction") }
        }
        out.pointee = retainHandle(MeshHandle(m))
    }
}

@_cdecl("hy_mesh_new")
public func hy_mesh_new_impl(_ positions: UnsafePointer<Float>?, _ nv: Int, _ faces: UnsafePointer<UInt32>?, _ nf: Int,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let out = try outArg(out)
        guard nv >= 0, nf >= 0, nv <= Int(UInt32.max) else { throw HYError.invalidArgument("bad counts") }
        guard positions != nil || nv == 0 else { throw HYError.invalidArgument("positions is NULL") }
        guard faces != nil || nf == 0 else { throw HYError.invalidArgument("faces is NULL") }
        let p = nv == 0 ? [] : Array(UnsafeBufferPointer(start: positions, count: try checkedMul(nv, 3, "n_vertices")))
        let f = nf == 0 ? [] : Array(UnsafeBufferPointer(start: faces, count: try checkedMul(nf, 3, "n_faces")))
        let m = Mesh(positions: p, faces: f)
        try m.validate("hy_mesh_new")
        out.pointee = retainHandle(MeshHandle(m))
    }
}

@_cdecl("hy_mesh_load")
public func hy_mesh_load_impl(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        let out = try outArg(out)
        let m = try Mesh.load(try utf8Arg(path, "path"))
        out.pointee = retainHandle(MeshHandle(m))
    }
}

@_cdecl("hy_mesh_free")
public func hy_mesh_free_impl(_ m: OpaquePointer?) { releaseHandle(m, MeshHandle.self) }

@_cdecl("hy_mesh_vertex_count")
public func hy_mesh_vertex_count_impl(_ m: OpaquePointer?) -> Int { handleObject(m, MeshHandle.self)?.mesh.vertexCount ?? 0 }

@_cdecl("hy_mesh_face_count")
public func hy_mesh_face_count_impl(_ m: OpaquePointer?) -> Int { handleObject(m, MeshHandle.self)?.mesh.faceCount ?? 0 }

@_cdecl("hy_mesh_positions")
public func hy_mesh_positions_impl(_ m: OpaquePointer?) -> UnsafePointer<Float>? {
    guard let h = handleObject(m, MeshHandle.self) else { return nil }
    return h.borrowed(0, h.mesh.positions)
}

@_cdecl("hy_mesh_faces")
public func hy_mesh_faces_impl(_ m: OpaquePointer?) -> UnsafePointer<UInt32>? {
    guard let h = handleObject(m, MeshHandle.self) else { return nil }
    return h.borrowed(1, h.mesh.faces)
}

@_cdecl("hy_mesh_colors")
public func hy_mesh_colors_impl(_ m: OpaquePointer?, _ channels: UnsafeMutablePointer<Int32>?) -> UnsafePointer<Float>? {
    guard let h = handleObject(m, MeshHandle.self) else { channels?.pointee = 0; return nil }
    channels?.pointee = h.mesh.colors == nil ? 0 : Int32(h.mesh.colorChannels)
    return h.borrowed(2, h.mesh.colors)
}

@_cdecl("hy_mesh_normals")
public func hy_mesh_normals_impl(_ m: OpaquePointer?) -> UnsafePointer<Float>? {
    guard let h = handleObject(m, MeshHandle.self) else { return nil }
    return h.borrowed(3, h.mesh.normals)
}

@_cdecl("hy_mesh_uvs")
public func hy_mesh_uvs_impl(_ m: OpaquePointer?) -> UnsafePointer<Float>? {
    guard let h = handleObject(m, MeshHandle.self) else { return nil }
    return h.borrowed(4, h.mesh.uvs)
}

@_cdecl("hy_mesh_set_colors")
public func hy_mesh_set_colors_impl(_ m: OpaquePointer?, _ colors: UnsafePointer<Float>?, _ count: Int, _ channels: Int32) -> hy_status {
    guarded {
        let h = try meshArg(m)
        guard let colors else { h.mesh.colors = nil; return }
        guard channels == 3 || channels == 4 else { throw HYError.invalidArgument("channels \(channels) must be 3 or 4") }
        guard count == h.mesh.vertexCount * Int(channels) else {
            throw HYError.invalidArgument("count \(count) != \(h.mesh.vertexCount) vertices × \(channels) channels")
        }
        let c = Array(UnsafeBufferPointer(start: colors, count: count))
        guard c.allSatisfy({ $0.isFinite }) else { throw HYError.invalidArgument("colours contain NaN or infinity") }
        var mesh = h.mesh
        mesh.colors = c; mesh.colorChannels = Int(channels)
        h.mesh = mesh
    }
}

@_cdecl("hy_mesh_get_stats")
public func hy_mesh_get_stats_impl(_ m: OpaquePointer?, _ out: UnsafeMutablePointer<hy_mesh_stats>?) -> hy_status {
    guarded {
        let h = try meshArg(m)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        try checkStructSize(out.pointee.struct_size, minimum: MemoryLayout<hy_mesh_stats>.size, "hy_mesh_stats")
        let mesh = h.mesh, t = mesh.topology, b = mesh.bounds
        var s = hy_mesh_stats()
        s.struct_size = UInt32(MemoryLayout<hy_mesh_stats>.size)
        s.n_vertices = UInt64(mesh.vertexCount); s.n_faces = UInt64(mesh.faceCount)
        s.bounds = (b.min.x, b.min.y, b.min.z, b.max.x, b.max.y, b.max.z)
        s.watertight = t.watertight; s.winding_consistent = t.windingConsistent
        s.euler_characteristic = Int64(t.eulerCharacteristic)
        s.n_components = UInt64(MeshOps.componentCount(mesh))
        s.area = mesh.area; s.volume = mesh.signedVolume
        out.pointee = s
    }
}

@_cdecl("hy_mesh_clean")
public func hy_mesh_clean_impl(_ m: OpaquePointer?, _ eps: Float, _ keepLargest: Int, _ minFaces: Int) -> hy_status {
    guarded {
        let h = try meshArg(m)
        guard eps >= 0 && eps.isFinite else { throw HYError.invalidArgument("merge_epsilon \(eps) must be finite and >= 0") }
        var mesh = try MeshOps.clean(h.mesh, mergeEpsilon: eps)
        if keepLargest > 0 { mesh = MeshOps.keepLargestComponents(mesh, count: keepLargest) }
        if minFaces > 0 { mesh = MeshOps.removeSmallComponents(mesh, minFaces: minFaces) }
        h.mesh = mesh
    }
}

@_cdecl("hy_mesh_smooth")
public func hy_mesh_smooth_impl(_ m: OpaquePointer?, _ iterations: Int32, _ method: hy_smooth_method) -> hy_status {
    guarded {
        let h = try meshArg(m)
        guard iterations >= 0 else { throw HYError.invalidArgument("iterations \(iterations) is negative") }
        switch method.rawValue {
        case 0: h.mesh = MeshOps.taubinSmooth(h.mesh, iterations: Int(iterations))
        case 1: h.mesh = MeshOps.laplacianSmooth(h.mesh, iterations: Int(iterations))
        default: throw HYError.invalidArgument("unknown smoothing method \(method.rawValue)")
        }
    }
}

@_cdecl("hy_mesh_simplify")
public func hy_mesh_simplify_impl(_ m: OpaquePointer?, _ target: Int) -> hy_status {
    guarded { let h = try meshArg(m); h.mesh = try MeshOps.decimate(h.mesh, targetFaces: target) }
}

@_cdecl("hy_mesh_cluster")
public func hy_mesh_cluster_impl(_ m: OpaquePointer?, _ voxel: Float) -> hy_status {
    guarded { let h = try meshArg(m); h.mesh = try MeshOps.vertexClustering(h.mesh, voxelSize: voxel) }
}

@_cdecl("hy_mesh_compute_normals")
public func hy_mesh_compute_normals_impl(_ m: OpaquePointer?) -> hy_status {
    guarded {
        let h = try meshArg(m)
        var mesh = h.mesh
        mesh.normals = MeshOps.vertexNormals(mesh)
        h.mesh = mesh
    }
}

@_cdecl("hy_mesh_save")
public func hy_mesh_save_impl(_ m: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ flags: UInt32) -> hy_status {
    guarded { try meshArg(m).mesh.save(try utf8Arg(path, "path"), overwrite: flags & HY_SAVE_OVERWRITE.rawValue != 0) }
}

@_cdecl("hy_mesh_render_preview")
public func hy_mesh_render_preview_impl(_ m: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ size: Int32, _ flags: UInt32) -> hy_status {
    guarded {
        let h = try meshArg(m)
        let p = try utf8Arg(path, "path")
        let img = try Raster.preview(h.mesh, size: Int(size))
        try PNGEncoder.write(img, to: p, overwrite: flags & HY_SAVE_OVERWRITE.rawValue != 0)
    }
}

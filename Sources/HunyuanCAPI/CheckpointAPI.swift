import CHunyuanABI
import HunyuanCore

/// The object behind `hy_checkpoint *`: the checkpoint plus C copies of its tensor names.
final class CheckpointHandle {
    let checkpoint: Checkpoint
    let names: [UnsafePointer<CChar>]
    init(_ c: Checkpoint) {
        checkpoint = c
        names = c.tensors.map { makeStaticCString($0.name) }
    }
    deinit { for n in names { UnsafeMutablePointer(mutating: n).deallocate() } }
}

@_cdecl("hy_checkpoint_default_params")
public func hy_checkpoint_default_params_impl() -> hy_checkpoint_params {
    hy_checkpoint_params(struct_size: UInt32(MemoryLayout<hy_checkpoint_params>.size))
}

@_cdecl("hy_checkpoint_open")
public func hy_checkpoint_open_impl(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<hy_checkpoint_params>?,
                                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let p = try utf8Arg(path, "path")
        _ = try readParams(params, defaults: hy_checkpoint_default_params_impl(), minimum: 4, "hy_checkpoint_params")
        let c = try Checkpoint(path: p)
        out.pointee = retainHandle(CheckpointHandle(c))
    }
}

@_cdecl("hy_checkpoint_free")
public func hy_checkpoint_free_impl(_ c: OpaquePointer?) {
    releaseHandle(c, CheckpointHandle.self)
}

@_cdecl("hy_checkpoint_tensor_count")
public func hy_checkpoint_tensor_count_impl(_ c: OpaquePointer?) -> Int {
    handleObject(c, CheckpointHandle.self)?.checkpoint.tensors.count ?? 0
}

private func checkpointArg(_ c: OpaquePointer?) throws -> CheckpointHandle {
    guard let h = handleObject(c, CheckpointHandle.self) else { throw HYError.invalidArgument("checkpoint is NULL") }
    return h
}

@_cdecl("hy_checkpoint_tensor_info")
public func hy_checkpoint_tensor_info_impl(_ c: OpaquePointer?, _ index: Int,
                                           _ out: UnsafeMutablePointer<hy_tensor_info>?) -> hy_status {
    guarded {
        let h = try checkpointArg(c)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        let ts = h.checkpoint.tensors
        guard index >= 0 && index < ts.count else {
            throw HYError.invalidArgument("tensor index \(index) out of range (checkpoint has \(ts.count))")
        }
        let t = ts[index]
        var info = hy_tensor_info()
        info.name = h.names[index]
        info.dtype = cDType(t.dtype)
        info.n_dims = UInt32(t.shape.count)
        withUnsafeMutableBytes(of: &info.shape) { raw in
            let s = raw.bindMemory(to: Int64.self)
            for (k, d) in t.shape.enumerated() where k < s.count { s[k] = Int64(d) }
        }
        info.n_bytes = UInt64(t.data.count)
        out.pointee = info
    }
}

@_cdecl("hy_checkpoint_find")
public func hy_checkpoint_find_impl(_ c: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                    _ index: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        let h = try checkpointArg(c)
        let n = try utf8Arg(name, "name")
        guard let index else { throw HYError.invalidArgument("index is NULL") }
        guard let i = h.checkpoint.tensors.firstIndex(where: { $0.name == n }) else {
            throw HYError.invalidArgument("no tensor named \(n)")
        }
        index.pointee = i
    }
}

@_cdecl("hy_checkpoint_read_f32")
public func hy_checkpoint_read_f32_impl(_ c: OpaquePointer?, _ index: Int, _ out: UnsafeMutablePointer<Float>?,
                                        _ capacity: Int) -> hy_status {
    guarded {
        let h = try checkpointArg(c)
        let ts = h.checkpoint.tensors
        guard index >= 0 && index < ts.count else {
            throw HYError.invalidArgument("tensor index \(index) out of range (checkpoint has \(ts.count))")
        }
        let t = ts[index]
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        guard UInt(bitPattern: capacity) >= UInt(t.count) else {
            throw HYError.invalidArgument("capacity \(UInt(bitPattern: capacity)) < \(t.count) elements of tensor \(t.name)")
        }
        t.copyFloats(into: out)
    }
}

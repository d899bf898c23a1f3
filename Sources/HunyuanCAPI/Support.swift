import CHunyuanABI
import Glibc
import HunyuanCore
import HunyuanLM

// Shared plumbing of the @_cdecl entry points: error mapping, argument checks, handle boxes.
// Nothing here may trap on input from C.

/// Records `error` for hy_last_error() and returns its status.
@inline(never)
func fail(_ error: Error) -> hy_status {
    if let e = error as? HYError {
        hyi_set_error(e.message)
        return cStatus(e.kind)
    }
    hyi_set_error("internal error: \(error)")
    return HY_ERR_INTERNAL
}

/// The ABI's number for each engine error kind (include/hunyuan.h; numbers are fixed forever).
func cStatus(_ kind: HYError.Kind) -> hy_status {
    switch kind {
    case .invalidArgument: return HY_ERR_INVALID_ARGUMENT
    case .io: return HY_ERR_IO
    case .format: return HY_ERR_FORMAT
    case .unsupported: return HY_ERR_UNSUPPORTED
    case .outOfMemory: return HY_ERR_OUT_OF_MEMORY
    case .contextFull: return HY_ERR_CONTEXT_FULL
    case .aborted: return HY_ERR_ABORTED
    case .internal: return HY_ERR_INTERNAL
    }
}

@inline(never)
func fail(_ status: HYError.Kind, _ message: String) -> hy_status {
    fail(HYError(status, message))
}

/// Runs `body`, mapping any thrown error onto a status + message.
@inline(__always)
func guarded(_ body: () throws -> Void) -> hy_status {
    do {
        try body()
        return HY_OK
    } catch {
        return fail(error)
    }
}

/// A C string argument as Swift UTF-8, or an invalid-argument error naming the parameter.
func utf8Arg(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let p else { throw HYError.invalidArgument("\(name) is NULL") }
    let n = strlen(p)
    let buf = UnsafeRawBufferPointer(start: p, count: n).bindMemory(to: UInt8.self)
    guard let s = String(validating: buf, as: UTF8.self) else {
        throw HYError.invalidArgument("\(name) is not valid UTF-8")
    }
    return s
}

/// Checks a params struct's `struct_size` against the first published size of its struct.
func checkStructSize(_ size: UInt32, minimum: Int, _ name: String) throws {
    guard Int(size) >= minimum else {
        throw HYError.invalidArgument("\(name).struct_size is \(size); at least \(minimum) expected (set it to sizeof(\(name)))")
    }
}

/// Reads a caller's params struct of a possibly older (smaller) or newer (larger) layout: fields the
/// caller's struct does not have keep their defaults.
func readParams<T>(_ p: UnsafePointer<T>?, defaults: T, minimum: Int, _ name: String) throws -> T {
    guard let p else { return defaults }
    let size = UnsafeRawPointer(p).load(as: UInt32.self)
    try checkStructSize(size, minimum: minimum, name)
    var out = defaults
    withUnsafeMutableBytes(of: &out) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: p, count: min(Int(size), MemoryLayout<T>.size)))
    }
    return out
}

/// Wraps a Swift object for hand-out as an opaque C handle (retained until released).
func retainHandle<T: AnyObject>(_ object: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

func handleObject<T: AnyObject>(_ h: OpaquePointer?, _ type: T.Type) -> T? {
    guard let h else { return nil }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(h)).takeUnretainedValue()
}

func releaseHandle<T: AnyObject>(_ h: OpaquePointer?, _ type: T.Type) {
    guard let h else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(h)).release()
}

// MARK: - ABI enum values, by explicit switch (never Swift case order or raw values)

func cDType(_ t: DType) -> hy_dtype {
    switch t {
    case .f32: return HY_DTYPE_F32
    case .f16: return HY_DTYPE_F16
    case .bf16: return HY_DTYPE_BF16
    case .f8e4m3: return HY_DTYPE_F8_E4M3
    case .i8: return HY_DTYPE_I8
    case .i32: return HY_DTYPE_I32
    case .i64: return HY_DTYPE_I64
    case .u8: return HY_DTYPE_U8
    }
}

func cArch(_ a: HunyuanArchitecture) -> hy_lm_arch {
    switch a {
    case .large: return HY_LM_ARCH_HUNYUAN_LARGE
    case .moeV1: return HY_LM_ARCH_HUNYUAN_MOE_V1
    case .denseV1: return HY_LM_ARCH_HUNYUAN_DENSE_V1
    }
}

func cLogLevel(_ l: LogLevel) -> hy_log_level {
    switch l {
    case .debug: return HY_LOG_DEBUG
    case .info: return HY_LOG_INFO
    case .warn: return HY_LOG_WARN
    case .error: return HY_LOG_ERROR
    case .none: return HY_LOG_NONE
    }
}

func logLevel(_ l: hy_log_level) -> LogLevel {
    switch l {
    case HY_LOG_DEBUG: return .debug
    case HY_LOG_INFO: return .info
    case HY_LOG_WARN: return .warn
    case HY_LOG_ERROR: return .error
    default: return .none
    }
}

import CHunyuanABI
import HunyuanCore

@_cdecl("hy_abi_version")
public func hy_abi_version_impl() -> UInt32 { abiVersion }

/// HY_ABI_VERSION of include/hunyuan.h: bumped only by an incompatible change of the ABI.
let abiVersion = UInt32(HY_ABI_VERSION)

private let versionCString: UnsafePointer<CChar> = makeStaticCString("\(HunyuanVersion.string) (abi \(abiVersion))")
private let systemInfoCString: UnsafePointer<CChar> = makeStaticCString(CPUFeatures.summary)

/// A NUL-terminated copy that lives for the whole process.
func makeStaticCString(_ s: String) -> UnsafePointer<CChar> {
    let bytes = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
    p.initialize(from: bytes, count: bytes.count)
    return UnsafePointer(p)
}

@_cdecl("hy_version_string")
public func hy_version_string_impl() -> UnsafePointer<CChar> { versionCString }

@_cdecl("hy_system_info")
public func hy_system_info_impl() -> UnsafePointer<CChar> { systemInfoCString }

private let statusNames: [UnsafePointer<CChar>] = [
    "HY_OK", "HY_ERR_INVALID_ARGUMENT", "HY_ERR_IO", "HY_ERR_FORMAT", "HY_ERR_UNSUPPORTED",
    "HY_ERR_OUT_OF_MEMORY", "HY_ERR_CONTEXT_FULL", "HY_ERR_ABORTED", "HY_ERR_INTERNAL",
].map(makeStaticCString)
private let unknownStatus = makeStaticCString("HY_ERR_UNKNOWN")

@_cdecl("hy_status_name")
public func hy_status_name_impl(_ status: hy_status) -> UnsafePointer<CChar> {
    let i = Int(status.rawValue)
    return i < statusNames.count ? statusNames[i] : unknownStatus
}

/// Holds the C log callback; the function pointer and user pointer are opaque to us.
private struct CLogSink: @unchecked Sendable {
    let fn: @convention(c) (hy_log_level, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void
    let user: UnsafeMutableRawPointer?
}

@_cdecl("hy_set_log_callback")
public func hy_set_log_callback_impl(_ callback: hy_log_callback?, _ minLevel: hy_log_level,
                                     _ user: UnsafeMutableRawPointer?) {
    guard let callback else { Log.setSink(nil, minLevel: .warn); return }
    let sink = CLogSink(fn: callback, user: user)
    let level = logLevel(minLevel)
    Log.setSink({ lvl, msg in
        msg.withCString { sink.fn(cLogLevel(lvl), $0, sink.user) }
    }, minLevel: level)
}

#if canImport(Glibc)
import Glibc
#endif

/// Log levels, numbered as `hy_log_level`.
public enum LogLevel: Int32, Sendable, Comparable {
    case debug = 0, info = 1, warn = 2, error = 3, none = 4
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Process-wide log sink. The default writes warnings and errors to stderr; hosts install their own
/// (`hy_set_log_callback`). Thread-safe; the sink may be called from worker threads.
public enum Log {
    public typealias Sink = @Sendable (LogLevel, String) -> Void

    private final class State: @unchecked Sendable {
        var lock = pthread_mutex_t()
        var sink: Sink? = nil
        var minLevel: LogLevel = .warn
        init() { pthread_mutex_init(&lock, nil) }
    }
    private static let state = State()

    /// Replaces the sink; `nil` restores stderr output at `.warn` and above.
    public static func setSink(_ sink: Sink?, minLevel: LogLevel) {
        pthread_mutex_lock(&state.lock)
        state.sink = sink
        state.minLevel = sink == nil ? .warn : minLevel
        pthread_mutex_unlock(&state.lock)
    }

    public static func enabled(_ level: LogLevel) -> Bool {
        pthread_mutex_lock(&state.lock)
        defer { pthread_mutex_unlock(&state.lock) }
        return level >= state.minLevel && level != .none
    }

    public static func write(_ level: LogLevel, _ message: @autoclosure () -> String) {
        pthread_mutex_lock(&state.lock)
        let sink = state.sink
        let on = level >= state.minLevel && level != .none
        pthread_mutex_unlock(&state.lock)
        guard on else { return }
        let text = message()
        if let sink { sink(level, text) } else { writeStderr("hunyuan: \(text)\n") }
    }

    public static func debug(_ m: @autoclosure () -> String) { write(.debug, m()) }
    public static func info(_ m: @autoclosure () -> String) { write(.info, m()) }
    public static func warn(_ m: @autoclosure () -> String) { write(.warn, m()) }
    public static func error(_ m: @autoclosure () -> String) { write(.error, m()) }
}

/// Writes all of `bytes` to file descriptor `fd` (retrying short writes; stops at an error).
public func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress else { return }
    var off = 0
    while off < bytes.count {
        let n = Glibc.write(fd, base + off, bytes.count - off)
        if n <= 0 { break }
        off += n
    }
}

/// Writes raw UTF-8 to stderr without buffering.
public func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { writeAll(fd: 2, UnsafeRawBufferPointer($0)) }
}

/// The monotonic clock of timings (progress, benchmarks, training logs).
public enum Clock {
    /// Seconds since an arbitrary fixed point (CLOCK_MONOTONIC).
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

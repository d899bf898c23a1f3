#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file. The mapping lives as long as this object; views into it
/// (tensors) keep it alive through their `owner`. Shareable across threads.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else { throw HYError.io("\(path): \(Self.errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw HYError.io("\(path): not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HYError.io("\(path): \(Self.errnoText())") }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw HYError.io("\(path): \(Self.errnoText())") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw HYError.io("\(path): cannot map \(size) bytes: \(Self.errnoText())")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Calls `body` with the mapped bytes, keeping the mapping alive for the call. (`bytes` alone is
    /// only valid while the caller holds this object.)
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(bytes) }
    }

    /// Drops the resident pages lying wholly inside `range` (a view into this mapping; anything else is
    /// ignored), so memory-mapped weights that were copied elsewhere stop counting in the resident
    /// set. The mapping stays valid: a later read faults the pages back in from the file.
    public func releasePages(_ range: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, let lo = range.baseAddress, lo >= base,
              lo + range.count <= base + bytes.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: lo) + page - 1) / page * page
        let end = (Int(bitPattern: lo) + range.count) / page * page
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// File-system helpers shared by loaders and writers.
public enum FileSystem {
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// Names in a directory (no "." / ".."), sorted.
    public static func list(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { throw HYError.io("\(dir): \(MappedFile.errnoText())") }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Creates the folder `path` (not its parents) unless it already is one; `.io` when it cannot
    /// (a file of that name, a missing parent, no permission).
    public static func createDirectory(_ path: String) throws {
        if isDirectory(path) { return }
        guard mkdir(path, 0o755) == 0 else { throw HYError.io("\(path): cannot create folder: \(MappedFile.errnoText())") }
    }

    /// Reads a whole (small) file.
    public static func readAll(_ path: String) throws -> [UInt8] {
        try MappedFile(path: path).withBytes { Array($0) }
    }

    /// Writes `data` atomically: a temporary file in the same folder renamed over `path` on success;
    /// nothing is left behind on failure. An existing file is replaced only when `overwrite` is true.
    public static func writeAtomically(_ path: String, overwrite: Bool,
                                       _ produce: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        if !overwrite && exists(path) {
            throw HYError.io("\(path): file exists (pass overwrite to replace it)")
        }
        if isDirectory(path) { throw HYError.io("\(path): is a directory") }
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HYError.io("\(path): cannot create: \(MappedFile.errnoText())") }
        var ok = false
        defer {
            if !ok { close(fd); unlink(tmp) }
        }
        try produce { buf in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw HYError.io("\(path): write failed: \(MappedFile.errnoText())")
                }
                off += n
            }
        }
        guard close(fd) == 0 else {
            unlink(tmp)
            ok = true
            throw HYError.io("\(path): write failed: \(MappedFile.errnoText())")
        }
        ok = true
        if !overwrite && exists(path) {
            unlink(tmp)
            throw HYError.io("\(path): file exists (pass overwrite to replace it)")
        }
        guard rename(tmp, path) == 0 else {
            let e = MappedFile.errnoText()
            unlink(tmp)
            throw HYError.io("\(path): cannot rename into place: \(e)")
        }
    }

    /// Writes `bytes` atomically, as `writeAtomically(_:overwrite:_:)`.
    public static func writeAtomically(_ path: String, bytes: [UInt8], overwrite: Bool) throws {
        try writeAtomically(path, overwrite: overwrite) { write in try bytes.withUnsafeBytes { try write($0) } }
    }
}

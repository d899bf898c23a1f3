#if canImport(Glibc)
import Glibc
#endif
import CKernels

/// Models that travel with the library, addressed as `builtin:NAME` wherever a model or tokenizer
/// path is accepted (e.g. `hy_model_load("builtin:hunyuan-tiny", …)`).
///
/// `builtin:NAME` is the folder NAME found first in: `$HUNYUAN_MODELS`, `models/` beside the binary
/// that contains this code (libhunyuan.so — so a wheel or Blender extension that ships `models/` next
/// to the library finds them — or a statically linked executable such as hunyuan-cli), `models/`
/// beside the running executable, and the source tree's `models/` (development builds).
public enum BuiltinModels {
    public static let prefix = "builtin:"

    /// `path` itself, or the folder a `builtin:NAME` path names. `.io` listing the places searched
    /// when NAME is not installed; `.invalidArgument` for a malformed name.
    public static func resolve(_ path: String) throws -> String {
        guard path.hasPrefix(prefix) else { return path }
        let name = String(path.dropFirst(prefix.count))
        guard !name.isEmpty, name.utf8.allSatisfy({ c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x5F || c == 0x2E
        }), name != ".", name != ".." else {
            throw HYError.invalidArgument("\(path): a built-in model name is lowercase letters, digits, '-', '_' or '.'")
        }
        let places = searchDirectories()
        for dir in places {
            let candidate = FileSystem.join(dir, name)
            if FileSystem.isDirectory(candidate) { return candidate }
        }
        throw HYError.io("\(path): no built-in model named \(name) (looked in \(places.joined(separator: ", ")))")
    }

    /// The folders searched, in order.
    public static func searchDirectories() -> [String] {
        var dirs: [String] = []
        if let env = getenv("HUNYUAN_MODELS") { dirs.append(String(cString: env)) }
        if let image = hyi_image_path() {
            dirs.append(FileSystem.join(directoryName(String(cString: image)), "models"))
        }
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        if n > 0 {
            exe[n] = 0
            dirs.append(FileSystem.join(directoryName(String(cString: exe)), "models"))
        }
        // Sources/HunyuanCore/BuiltinModels.swift → <package root>/models
        dirs.append(FileSystem.join(directoryName(directoryName(directoryName(#filePath))), "models"))
        var unique: [String] = []
        for d in dirs where !unique.contains(d) { unique.append(d) }
        return unique
    }

    static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}

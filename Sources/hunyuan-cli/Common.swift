import ArgumentParser
import HunyuanCore
import HunyuanConvert
import HunyuanDiffusion
import HunyuanNN

/// Runs a command body, turning library errors into a message on stderr and a non-zero exit.
func runReporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as HYError {
        writeStderr("error: \(e.message)\n")
        throw ExitCode(exitStatus(e.kind))
    }
}

/// The process exit status of a failed command: the library's hy_status number for the error.
func exitStatus(_ kind: HYError.Kind) -> Int32 {
    switch kind {
    case .invalidArgument: return 1
    case .io: return 2
    case .format: return 3
    case .unsupported: return 4
    case .outOfMemory: return 5
    case .contextFull: return 6
    case .aborted: return 7
    case .internal: return 8
    }
}

/// Writes `s` to stdout at once (a command's whole result).
func printOut(_ s: String) {
    var s = s
    s.withUTF8 { writeAll(fd: 1, UnsafeRawBufferPointer($0)) }
}

/// Buffered stdout for data.
struct StdoutWriter {
    var buffer: [UInt8] = []
    mutating func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count > 1 << 16 { flush() }
    }
    mutating func flush() {
        buffer.withUnsafeBytes { writeAll(fd: 1, $0) }
        buffer.removeAll(keepingCapacity: true)
    }
}

import Glibc

/// Reads all of stdin as raw bytes.
func readStdinBytes() -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

/// Fails before any work when an output file exists and --overwrite was not given (a long run must not
/// end in a refusal, and nothing is replaced without asking).
func checkOutput(_ path: String?, overwrite: Bool) throws {
    guard let path, !overwrite, FileSystem.exists(path) else { return }
    throw HYError.io("\(path) exists; pass --overwrite to replace it")
}

// Closed sets as typed options: ArgumentParser parses and lists the values, one way for every command.
extension KVElementType: ExpressibleByArgument {}
/// --kv-type: a cache storage, or auto (the library's choice by context length, KVCache.automaticType).
enum KVChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, f32, f16, q8_0
    var type: KVElementType? { self == .auto ? nil : KVElementType(rawValue: rawValue) }
}
extension WeightFormat: ExpressibleByArgument {}
extension GGUFExport.TensorType: ExpressibleByArgument {
    private static let names: [(String, GGUFExport.TensorType)] = [("f32", .f32), ("f16", .f16), ("q8_0", .q8_0), ("q4_0", .q4_0)]
    public init?(argument: String) {
        guard let t = Self.names.first(where: { $0.0 == argument })?.1 else { return nil }
        self = t
    }
    public var defaultValueDescription: String { Self.names.first { $0.1 == self }?.0 ?? "\(rawValue)" }
    public static var allValueStrings: [String] { names.map(\.0) }
}
extension DType: ExpressibleByArgument {
    /// Lower-case names (f32, f16, bf16, f8_e4m3, i8, i32, i64, u8).
    public init?(argument: String) { self.init(safetensorsName: argument.uppercased()) }
    var name: String { safetensorsName.lowercased() }
    public var defaultValueDescription: String { name }
    public static var allValueStrings: [String] { allCases.map(\.name) }
}

/// A fixture's recorded Gaussian draws (inputs.safetensors), replayed by name.
struct RecordedNoise: NoiseSource {
    let file: SafetensorsFile
    func draw(_ name: String, count: Int) throws -> [Float] {
        guard let t = file.tensor(name) else { throw HYError.invalidArgument("\(file.path): no recorded draw \(name)") }
        guard t.count == count else {
            throw HYError.invalidArgument("\(file.path): \(name) holds \(t.count) values, \(count) needed")
        }
        return t.floats()
    }
}

/// Fails when a command-line argument is not valid UTF-8 (Swift's `CommandLine.arguments` would
/// replace the bad bytes with U+FFFD and the command would run on a text the user did not type).
func requireUTF8Arguments() throws {
    for i in 0..<Int(CommandLine.argc) {
        guard let p = CommandLine.unsafeArgv[i] else { continue }
        if String(validatingCString: p) == nil {
            throw HYError.invalidArgument("argument \(i) is not valid UTF-8")
        }
    }
}

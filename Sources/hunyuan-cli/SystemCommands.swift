import ArgumentParser
import HunyuanCore
import HunyuanLM

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "system", abstract: "Print CPU features and build information.")
    func run() throws {
        printOut("hunyuan \(HunyuanVersion.string)\n\(CPUFeatures.summary)\n")
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a safetensors checkpoint (file or folder, sharded or not), validating it.")
    @Argument(help: "A .safetensors file or a checkpoint folder.") var path: String
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Option(name: .customLong("kv"), help: ArgumentHelp("With a language-model folder: the KV-cache bytes of a session of N positions for each storage (and the automatic choice) instead of the tensor list.", valueName: "N")) var kvPositions: Int?

    func run() throws {
        try runReporting {
            if let n = kvPositions { try printKV(n); return }
            let c = try Checkpoint(path: path)
            var out = StdoutWriter()
            if json {
                let arr = JSONValue.array(c.tensors.map { t in
                    .object([("name", .string(t.name)), ("dtype", .string(t.dtype.safetensorsName)),
                             ("shape", .array(t.shape.map { .int(Int64($0)) })), ("bytes", .int(Int64(t.data.count)))])
                })
                out.write(arr.serialized() + "\n")
            } else {
                for t in c.tensors {
                    out.write("\(t.name)\t\(t.dtype.safetensorsName)\t\(t.shape)\t\(t.data.count)\n")
                }
            }
            out.flush()
        }
    }

    /// The cache a session of n positions allocates, per storage type (KVCache.bytesPerToken).
    func printKV(_ n: Int) throws {
        guard n > 0 else { throw HYError.invalidArgument("--kv \(n): positions must be > 0") }
        let c = try HunyuanConfig.load(directory: path)
        let auto = KVCache.automaticType(c, contextLength: n)
        let types = KVElementType.allCases.filter { $0 != .q8_0 || c.headDim % 32 == 0 }
        var out = StdoutWriter()
        if json {
            let rows = JSONValue.array(types.map { t in
                let per = KVCache.bytesPerToken(c, type: t)
                return .object([("kv_type", .string(t.rawValue)), ("positions", .int(Int64(n))),
                                ("bytes_per_token", .int(Int64(per))), ("bytes", .int(Int64(per * n))),
                                ("automatic", .bool(t == auto))])
            })
            out.write(rows.serialized() + "\n")
        } else {
            out.write("kv_type\tbytes_per_token\tbytes (\(n) positions)\n")
            for t in types {
                let per = KVCache.bytesPerToken(c, type: t)
                out.write("\(t.rawValue)\(t == auto ? " (auto)" : "")\t\(per)\t\(per * n)\n")
            }
        }
        out.flush()
    }
}

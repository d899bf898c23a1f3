import ArgumentParser
import HunyuanCore

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

    func run() throws {
        try runReporting {
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
}

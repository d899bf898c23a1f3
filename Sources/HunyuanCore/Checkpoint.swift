/// A checkpoint as Hugging Face and Tencent ship it: one safetensors file, or a folder holding
/// `model.safetensors.index.json` + shards, `model.safetensors`, or exactly one other `*.safetensors`.
/// Every tensor is looked up by its official name; the files stay memory-mapped for the checkpoint's
/// life. Shareable across threads (read-only).
public final class Checkpoint: @unchecked Sendable {
    public let path: String
    public let files: [SafetensorsFile]
    /// All tensors, sorted by name.
    public let tensors: [Tensor]
    private let byName: [String: Int]

    public convenience init(path: String) throws {
        var files: [SafetensorsFile] = []
        if FileSystem.isDirectory(path) {
            let indexPath = FileSystem.join(path, "model.safetensors.index.json")
            if FileSystem.exists(indexPath) {
                files = try Self.openSharded(dir: path, indexPath: indexPath)
            } else if FileSystem.exists(FileSystem.join(path, "model.safetensors")) {
                files = [try SafetensorsFile(path: FileSystem.join(path, "model.safetensors"))]
            } else {
                let candidates = try FileSystem.list(path).filter { $0.hasSuffix(".safetensors") }
                guard candidates.count == 1 else {
                    throw HYError.io(candidates.isEmpty
                        ? "\(path): no model.safetensors, model.safetensors.index.json or other .safetensors file"
                        : "\(path): several .safetensors files (\(candidates.joined(separator: ", "))) and no index")
                }
                files = [try SafetensorsFile(path: FileSystem.join(path, candidates[0]))]
            }
        } else {
            guard FileSystem.exists(path) else { throw HYError.io("\(path): no such file or directory") }
            files = [try SafetensorsFile(path: path)]
        }
        try self.init(path: path, files: files)
    }

    /// A diffusers / transformers component folder (`unet/`, `vae/`, `text_encoder/` …) as
    /// `from_pretrained` reads it: `diffusion_pytorch_model` or `model`, as `<stem>.safetensors` or
    /// sharded through `<stem>.safetensors.index.json`; with `variant` ("fp16") the
    /// `<stem>.<variant>.safetensors` / `<stem>.safetensors.index.<variant>.json` files. Without a
    /// variant the plain files are preferred, and a folder holding only the fp16 variant still
    /// opens. The error names the folder and the file names looked for.
    public convenience init(component dir: String, variant: String? = nil) throws {
        guard FileSystem.isDirectory(dir) else { throw HYError.io("\(dir): no such folder") }
        let variants: [String?] = variant.map { [$0] } ?? [nil, "fp16"]
        var looked: [String] = []
        for v in variants {
            for stem in ["diffusion_pytorch_model", "model"] {
                let file = v.map { "\(stem).\($0).safetensors" } ?? "\(stem).safetensors"
                let index = v.map { "\(stem).safetensors.index.\($0).json" } ?? "\(stem).safetensors.index.json"
                looked += [file, index]
                let ip = FileSystem.join(dir, index), fp = FileSystem.join(dir, file)
                if FileSystem.exists(ip) {
                    try self.init(path: dir, files: try Self.openSharded(dir: dir, indexPath: ip))
                    return
                }
                if FileSystem.exists(fp) {
                    try self.init(path: fp, files: [try SafetensorsFile(path: fp)])
                    return
                }
            }
        }
        throw HYError.io("\(dir): no weights (looked for \(looked.joined(separator: ", ")))")
    }

    private init(path: String, files: [SafetensorsFile]) throws {
        self.path = path
        self.files = files
        var all: [Tensor] = []
        var seen = Set<String>()
        for f in files {
            for t in f.tensors {
                guard seen.insert(t.name).inserted else {
                    throw HYError.format("\(f.path): tensor \(t.name) also stored in another shard")
                }
                all.append(t)
            }
        }
        all.sort { $0.name < $1.name }
        tensors = all
        var m: [String: Int] = [:]
        for (i, t) in all.enumerated() { m[t.name] = i }
        byName = m
    }

    private static func openSharded(dir: String, indexPath: String) throws -> [SafetensorsFile] {
        let json = try JSONValue.parse(contentsOf: indexPath)
        guard case .object(let wm)? = json["weight_map"] else {
            throw HYError.format("\(indexPath): no weight_map object")
        }
        var shardNames: [String] = []
        var expected: [String: String] = [:]
        for (tensor, file) in wm {
            guard let f = file.stringValue, !f.contains("/"), !f.isEmpty else {
                throw HYError.format("\(indexPath): weight_map entry for \(tensor) is not a file name in the folder")
            }
            expected[tensor] = f
            if !shardNames.contains(f) { shardNames.append(f) }
        }
        shardNames.sort()
        var files: [SafetensorsFile] = []
        for name in shardNames {
            let p = FileSystem.join(dir, name)
            guard FileSystem.exists(p) else { throw HYError.io("\(indexPath): shard \(name) is missing") }
            files.append(try SafetensorsFile(path: p))
        }
        for f in files {
            let shard = String(f.path.split(separator: "/").last ?? "")
            for t in f.tensors where expected[t.name] != shard {
                throw HYError.format("\(f.path): tensor \(t.name) is not listed for this shard in the index")
            }
        }
        for (tensor, shard) in expected {
            guard let f = files.first(where: { $0.path.hasSuffix("/" + shard) }), f.tensor(tensor) != nil else {
                throw HYError.format("\(indexPath): tensor \(tensor) listed in \(shard) but not stored there")
            }
        }
        return files
    }

    public func tensor(_ name: String) -> Tensor? { byName[name].map { tensors[$0] } }

    /// The tensor named `name`, or a format error naming it.
    public func require(_ name: String) throws -> Tensor {
        guard let t = tensor(name) else { throw HYError.format("\(path): missing tensor \(name)") }
        return t
    }

    /// The tensor named `name` with exactly `shape`, or a format error naming it.
    public func require(_ name: String, shape: [Int]) throws -> Tensor {
        let t = try require(name)
        try t.expectShape(shape)
        return t
    }

    public var names: [String] { tensors.map(\.name) }
}

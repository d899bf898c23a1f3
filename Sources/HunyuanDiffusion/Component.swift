import HunyuanNN

/// A component folder of a diffusers pipeline as `from_pretrained` reads it: `config.json` (or
/// `preprocessor_config.json` / `scheduler_config.json`) decoded into the component's `Decodable`
/// config, and the weights (`diffusion_pytorch_model` / `model`, plain, `.fp16` variant or sharded,
/// see `Checkpoint(component:variant:)`). Errors name the component folder.
public enum Component {
    /// Decodes `file` of folder `dir` as `T`.
    public static func config<T: Decodable>(_ type: T.Type, _ dir: String, file: String = "config.json") throws -> T {
        let path = FileSystem.join(dir, file)
        guard FileSystem.exists(path) else { throw HYError.io("\(dir): no \(file)") }
        return try JSONValue.decode(type, contentsOf: path)
    }

    /// A component folder's `config.json` decoded as `C` and validated (errors name the file), and its
    /// weights (`Checkpoint(component:variant:)`).
    public static func open<C: ComponentConfig>(_ type: C.Type, _ dir: String, variant: String?) throws
        -> (config: C, checkpoint: Checkpoint) {
        let config = try Component.config(type, dir)
        try config.validate(context: FileSystem.join(dir, "config.json"))
        return (config, try Checkpoint(component: dir, variant: variant))
    }

    /// Binds a component's declared tensors to its checkpoint: `declare` runs on a
    /// `CheckpointBinder`; tensors the declaration did not use are a format error unless `ignorable`.
    /// `compute` as `CheckpointBinder.compute` (the bf16 forms of the matrices are made here).
    public static func load<T>(_ ck: Checkpoint, context: String, compute: ComputePrecision = .fp32,
                               ignorable: (String) -> Bool = { _ in false },
                               _ declare: (CheckpointBinder) throws -> T) throws -> T {
        let binder = CheckpointBinder(ck, compute: compute)
        let value = try declare(binder)
        try binder.finish(ignorable: ignorable, context: context)
        return value
    }
}

/// A component's `config.json` as a `Decodable` struct whose `validate` checks what the model needs
/// (errors name `context`, the file, and the key).
public protocol ComponentConfig: Decodable {
    func validate(context: String) throws
}

/// A model loaded from its component folder: `init(folder:variant:)` reads `config.json` (validated)
/// and the weights (`model[.variant].safetensors`, or sharded through its index) and calls
/// `init(config:checkpoint:)`.
public protocol FolderComponent: AnyObject {
    associatedtype Config: ComponentConfig
    init(config: Config, checkpoint: Checkpoint) throws
}

extension FolderComponent {
    /// Loads the component folder `folder` (the `variant`, e.g. "fp16", of its weights when given).
    public init(folder: String, variant: String? = nil) throws {
        let (config, checkpoint) = try Component.open(Config.self, folder, variant: variant)
        try self.init(config: config, checkpoint: checkpoint)
    }
}

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

import HunyuanCore

/// A diffusers pipeline folder as the release ships it (`model_index.json` and one folder per
/// component), shared by the pipelines of this module.
enum PipelineFolder {
    /// Checks that `folder` is a pipeline folder holding every component of `components`; errors name
    /// what is missing.
    static func check(_ folder: String, components: [String]) throws {
        guard FileSystem.isDirectory(folder) else { throw HYError.io("\(folder): no such folder") }
        guard FileSystem.exists(FileSystem.join(folder, "model_index.json")) else {
            throw HYError.io("\(folder): no model_index.json (not a diffusers pipeline folder)")
        }
        for c in components where !FileSystem.isDirectory(FileSystem.join(folder, c)) {
            throw HYError.io("\(folder): component \(c)/ is missing")
        }
    }

    /// Opens component `name` of `folder`, prefixing errors with its name.
    static func open<T>(_ folder: String, _ name: String, _ open: (String) throws -> T) throws -> T {
        do { return try open(FileSystem.join(folder, name)) } catch let e as HYError {
            throw HYError(e.kind, "component \(name): \(e.message)")
        }
    }
}

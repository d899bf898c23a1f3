// Checkpoint tensors declared once. A model states each tensor's name and shape in one function,
// generic over a `WeightBinder`; binding it to a checkpoint loads the weights (every tensor present,
// with its shape, and none left over), binding it to the trainer allocates parameters, and binding
// it to a `WeightTable` lists the tensors for the quantizer and random checkpoints. A name is never
// spelled twice (mlx's @ModuleInfo(key:), llama.cpp's create_tensor).

/// What a declared tensor becomes: a weight matrix or a vector / other float tensor.
public protocol WeightBinder {
    associatedtype Matrix
    associatedtype Vector
    /// A matrix stored with `shape` and used as [shape[0], product of the rest] (a Linear's [out, in],
    /// a convolution's [out, in, kh, kw]); quantizable: may be stored block-quantized ([rows, blocks,
    /// bytes]) or as F8_E4M3 + `<name>_scale`.
    func matrix(_ name: String, shape: [Int]) throws -> Matrix
    /// A float tensor of `shape` (norm weights, biases, tokens and positions; kept as fp32 values).
    func vector(_ name: String, shape: [Int]) throws -> Vector
}

extension WeightBinder {
    public func matrix(_ name: String, rows: Int, cols: Int) throws -> Matrix { try matrix(name, shape: [rows, cols]) }
    public func vector(_ name: String, _ n: Int) throws -> Vector { try vector(name, shape: [n]) }
}

/// The list of a model's declared tensors (name, shape, whether a matrix), in declaration order:
/// what a checkpoint of this configuration holds.
public final class WeightTable: WeightBinder {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let isMatrix: Bool
    }
    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// The table of whatever `declare` binds.
    public convenience init(_ declare: (WeightTable) throws -> Void) rethrows {
        self.init()
        try declare(self)
    }

    public func matrix(_ name: String, shape: [Int]) throws -> Entry { try add(name, shape, true) }
    public func vector(_ name: String, shape: [Int]) throws -> Entry { try add(name, shape, false) }

    private func add(_ name: String, _ shape: [Int], _ isMatrix: Bool) throws -> Entry {
        guard index[name] == nil else { throw HYError.internal("tensor \(name) declared twice") }
        let e = Entry(name: name, shape: shape, isMatrix: isMatrix)
        index[name] = entries.count
        entries.append(e)
        return e
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }
    /// Σ of the declared shapes' element counts.
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

/// Binds declared tensors to a checkpoint's, used in place: matrices as `WeightMatrix` (any stored
/// format; F8_E4M3 with its `<name>_scale`), vectors widened to fp32 arrays. Every declared tensor
/// must exist with its shape (block-quantized U8 [rows, blocks, bytes] stands for [rows, cols]);
/// `finish()` then fails on tensors the declaration did not use. Errors name the file and tensor.
public final class CheckpointBinder: WeightBinder {
    public let checkpoint: Checkpoint
    private var used: Set<String> = []

    /// With `.bf16` (and AVX512_BF16) every matrix also gets its bf16 form (`WeightMatrix.withBF16`;
    /// a 4-D [out, in, kh, kw] weight as kh·kw taps), so linear layers and convolutions built from it
    /// compute in bf16.
    public let compute: ComputePrecision

    public init(_ checkpoint: Checkpoint, compute: ComputePrecision = .fp32) {
        self.checkpoint = checkpoint
        self.compute = compute
    }

    private func require(_ name: String, _ shape: [Int]) throws -> Tensor {
        guard let t = checkpoint.tensor(name) else {
            throw HYError.format("\(checkpoint.path): missing tensor \(name) (expected shape \(shape))")
        }
        let quantized = shape.count >= 2 && t.dtype == .u8 && t.shape.count == 3 && t.shape[0] == shape[0]
        guard t.shape == shape || quantized else {
            throw HYError.format("\(checkpoint.path): tensor \(name) has shape \(t.shape), config implies \(shape)")
        }
        used.insert(name)
        return t
    }

    public func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let rows = shape.first ?? 1, cols = shape.dropFirst().reduce(1, *)
        var t = try require(name, shape)
        if t.dtype != .u8 && shape.count != 2 {
            t = Tensor(name: t.name, dtype: t.dtype, shape: [rows, cols], data: t.data, owner: t.owner)
        }
        var scale: Tensor? = nil
        if t.dtype == .f8e4m3 {
            let sn = name + "_scale"
            guard let s = checkpoint.tensor(sn) else {
                throw HYError.format("\(checkpoint.path): F8_E4M3 tensor \(name) has no \(sn)")
            }
            used.insert(sn)
            scale = s
        }
        let m = try WeightMatrix(t, rows: rows, cols: cols, scale: scale)
        guard compute == .bf16 && CPUFeatures.avx512bf16 && rows > 0 && cols > 0 else { return m }
        let converted = m.withBF16(taps: shape.count == 4 ? shape[2] * shape[3] : 1)
        // The stored pages were read once for the copy: drop them from the resident set (a matvec on
        // the stored form faults them back in).
        if let file = (t.owner as? SafetensorsFile)?.file ?? (t.owner as? MappedFile) { file.releasePages(t.data) }
        return converted
    }

    public func vector(_ name: String, shape: [Int]) throws -> [Float] {
        let t = try require(name, shape)
        guard t.dtype.isFloat else { throw HYError.format("\(checkpoint.path): tensor \(name) is not a float tensor") }
        return t.floats()
    }

    /// The tensor itself (for layouts a caller interprets, e.g. conv kernels), shape-checked.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor { try require(name, shape) }

    /// Marks a stored tensor the model reads by itself or deliberately ignores.
    public func skip(_ name: String) { used.insert(name) }

    /// Fails on a stored tensor that no declaration used, unless `ignorable` accepts its name.
    public func finish(ignorable: (String) -> Bool = { _ in false }, context: @autoclosure () -> String = "") throws {
        for t in checkpoint.tensors where !used.contains(t.name) && !ignorable(t.name) {
            let c = context()
            throw HYError.format("\(checkpoint.path): unexpected tensor \(t.name)" + (c.isEmpty ? "" : " for \(c)"))
        }
    }
}

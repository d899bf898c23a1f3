/// A view of one stored tensor: dtype, shape and its bytes, borrowed from a mapped file (or an owned
/// buffer). `owner` keeps the storage alive. Row-major (C order), as safetensors stores it.
public struct Tensor: @unchecked Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let data: UnsafeRawBufferPointer
    public let owner: AnyObject?

    public init(name: String, dtype: DType, shape: [Int], data: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.owner = owner
    }

    /// An owned f32 tensor.
    public init(name: String, shape: [Int], floats: [Float]) {
        let box = FloatBuffer(floats)
        self.init(name: name, dtype: .f32, shape: shape,
                  data: UnsafeRawBufferPointer(box.buffer), owner: box)
    }

    public var count: Int { shape.reduce(1, *) }

    /// True when the data can be read in place as `dtype`'s native type.
    public var isAligned: Bool {
        guard let b = data.baseAddress else { return true }
        return Int(bitPattern: b) % dtype.size == 0
    }

    /// Converts every element to Float into `out` (count elements).
    public func copyFloats(into out: UnsafeMutablePointer<Float>) {
        let n = count
        let p = data.baseAddress
        switch dtype {
        case .f32:
            if let p { memcpyBytes(out, p, n * 4) }
        case .f16:
            for i in 0..<n { out[i] = FloatBits.f16ToFloat(p!.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<n { out[i] = FloatBits.bf16ToFloat(p!.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .f8e4m3:
            FloatBits.e4m3Table.withUnsafeBufferPointer { t in
                for i in 0..<n { out[i] = t[Int(data[i])] }
            }
        case .i8:
            for i in 0..<n { out[i] = Float(Int8(bitPattern: data[i])) }
        case .u8:
            for i in 0..<n { out[i] = Float(data[i]) }
        case .i32:
            for i in 0..<n { out[i] = Float(p!.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .i64:
            for i in 0..<n { out[i] = Float(p!.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        }
    }

    /// All elements as Float.
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buf, n in
            if count > 0 { copyFloats(into: buf.baseAddress!) }
            n = count
        }
    }

    /// All elements as Int64 (integer dtypes; floats are truncated).
    public func int64s() -> [Int64] {
        let n = count
        guard let p = data.baseAddress else { return [] }
        switch dtype {
        case .i64: return (0..<n).map { p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
        case .i32: return (0..<n).map { Int64(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .u8: return (0..<n).map { Int64(data[$0]) }
        case .i8: return (0..<n).map { Int64(Int8(bitPattern: data[$0])) }
        default: return floats().map { Int64($0) }
        }
    }

    /// Throws a format error naming the tensor unless its shape is `expected`.
    public func expectShape(_ expected: [Int]) throws {
        guard shape == expected else {
            throw HYError.format("tensor \(name): shape \(shape), expected \(expected)")
        }
    }
}

@inline(__always)
func memcpyBytes(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ n: Int) {
    dst.copyMemory(from: src, byteCount: n)
}

/// The one owned fp32 buffer type of the engines: `count` floats at `p` (64-byte aligned), freed with
/// the object. Used for owned tensors, activations, scratch, parameters and their gradients. Not
/// synchronized: one writer at a time (threads may write disjoint ranges).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let p: UnsafeMutablePointer<Float>

    /// n floats, zero-filled unless `zeroed` is false (then uninitialized: write before reading).
    public init(_ n: Int, zeroed: Bool = true) {
        count = n
        p = UnsafeMutableRawPointer.allocate(byteCount: 4 * max(n, 1), alignment: 64)
            .bindMemory(to: Float.self, capacity: max(n, 1))
        if zeroed { p.initialize(repeating: 0, count: max(n, 1)) }
    }

    /// A copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(values.count, zeroed: false)
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { p.initialize(from: b, count: values.count) } }
    }

    deinit { p.deallocate() }

    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: p, count: count) }
    public var mutableBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: p, count: count) }
    public var array: [Float] { Array(buffer) }
    public func zero() { p.update(repeating: 0, count: count) }

    public subscript(i: Int) -> Float {
        get { p[i] }
        set { p[i] = newValue }
    }
}

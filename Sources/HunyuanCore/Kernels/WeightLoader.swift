import CKernels
// How a stored weight element becomes a Float: one generic kernel per operation is specialized by
// these loaders (f32, bf16, f16, fp8 E4M3, and q8_0 for the KV cache), never copied per dtype.

/// How a stored weight element becomes a Float. One generic kernel per operation is specialized
/// through this protocol (not copied per dtype).
public protocol WeightLoader {
    static var elementSize: Int { get }
    /// Elements i..<i+8 of the row starting at `p`.
    static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float>
    static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float
    /// Bytes taken by the first n elements of a row (n a multiple of the format's block).
    static func byteOffset(_ n: Int) -> Int
}

extension WeightLoader {
    @inlinable @inline(__always)
    public static func byteOffset(_ n: Int) -> Int { n * elementSize }
    /// The format code of the in-place AVX-512 kernels (`gemmStoredRows`), nil where they have none.
    @inlinable public static var storedRowsKernelCode: Int32? {
        if Self.self == F32Loader.self { return Int32(HYI_FLOAT_F32) }
        if Self.self == F16Loader.self { return Int32(HYI_FLOAT_F16) }
        if Self.self == BF16Loader.self { return Int32(HYI_FLOAT_BF16) }
        if Self.self == Q8_0Loader.self { return Int32(HYI_FLOAT_Q8_0) }
        return nil
    }
}

/// q8_0 blocks (f16 d, 32 × int8; 34 bytes per 32 values) read as floats: the q8_0 KV cache.
/// load8's i must be a multiple of 8 (8 values never straddle a block).
public enum Q8_0Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 1 }
    @inlinable @inline(__always)
    public static func byteOffset(_ n: Int) -> Int { (n >> 5) * 34 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let blk = (i >> 5) * 34
        let d = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: blk, as: UInt16.self)))
        let q = p.loadUnaligned(fromByteOffset: blk + 2 + (i & 31), as: SIMD8<Int8>.self)
        return SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q)) * d
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        let blk = (i >> 5) * 34
        let d = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: blk, as: UInt16.self)))
        return Float(p.load(fromByteOffset: blk + 2 + (i & 31), as: Int8.self)) * d
    }
}

public enum F32Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 4 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        p.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
    }
}

public enum BF16Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 2 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let h = p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
    }
}

public enum F16Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 2 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let h = p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
        return SIMD8<Float>(unsafeBitCast(h, to: SIMD8<Float16>.self))
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
    }
}

/// FP8 E4M3 codes, widened through f16: the code's 7 magnitude bits shifted into an f16 are the same
/// number × 2⁻⁸ (also for subnormals), so a row's dot product is rescaled by 256 · scale[row].
public enum FP8Loader: WeightLoader {
    @inlinable public static var elementSize: Int { 1 }
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer, _ i: Int) -> SIMD8<Float> {
        let b = SIMD8<UInt16>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self))
        let h = ((b & 0x80) &<< 8) | ((b & 0x7F) &<< 7)
        return SIMD8<Float>(unsafeBitCast(h, to: SIMD8<Float16>.self))
    }
    @inlinable @inline(__always)
    public static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        let b = UInt16(p.load(fromByteOffset: i, as: UInt8.self))
        return Float(Float16(bitPattern: ((b & 0x80) << 8) | ((b & 0x7F) << 7)))
    }
}


/// Element types of stored tensors, named as in safetensors headers; raw values match `hy_dtype`.
public enum DType: Int32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, bf16 = 2, f8e4m3 = 3, i8 = 4, i32 = 5, i64 = 6, u8 = 7

    public init?(safetensorsName: String) {
        switch safetensorsName {
        case "F32": self = .f32
        case "F16": self = .f16
        case "BF16": self = .bf16
        case "F8_E4M3": self = .f8e4m3
        case "I8": self = .i8
        case "I32": self = .i32
        case "I64": self = .i64
        case "U8": self = .u8
        default: return nil
        }
    }

    public var safetensorsName: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .f8e4m3: return "F8_E4M3"
        case .i8: return "I8"
        case .i32: return "I32"
        case .i64: return "I64"
        case .u8: return "U8"
        }
    }

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .f8e4m3, .i8, .u8: return 1
        case .i64: return 8
        }
    }

    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .f8e4m3 }
}

/// Scalar conversions between stored formats and Float (round-to-nearest-even where narrowing).
public enum FloatBits {
    @inlinable public static func bf16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    @inlinable public static func floatToBF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(u >> 16) | 0x0040 }
        let rounding: UInt32 = 0x7FFF + ((u >> 16) & 1)
        return UInt16((u &+ rounding) >> 16)
    }

    @inlinable public static func f16ToFloat(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }
    @inlinable public static func floatToF16(_ f: Float) -> UInt16 { Float16(f).bitPattern }

    /// FP8 E4M3 (the "fn" variant: no infinities, 0x7F/0xFF are NaN, max 448).
    public static let e4m3Table: [Float] = (0..<256).map { e4m3Decode(UInt8($0)) }

    public static func e4m3Decode(_ v: UInt8) -> Float {
        let sign: Float = (v & 0x80) != 0 ? -1 : 1
        let exp = Int((v >> 3) & 0x0F)
        let man = Float(v & 0x07)
        if exp == 0x0F && (v & 0x07) == 0x07 { return .nan }
        if exp == 0 { return sign * man / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + man / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
    }

    /// Nearest E4M3 value (saturating at ±448), ties to even.
    public static func floatToE4M3(_ f: Float) -> UInt8 {
        if f.isNaN { return 0x7F }
        let sign: UInt8 = f.sign == .minus ? 0x80 : 0
        let a = min(abs(f), 448)
        var best: UInt8 = 0
        var bestErr = Float.infinity
        for code in UInt8(0)...UInt8(0x7E) {
            let e = abs(e4m3Table[Int(code)] - a)
            if e < bestErr || (e == bestErr && code & 1 == 0) { bestErr = e; best = code }
        }
        return sign | best
    }
}

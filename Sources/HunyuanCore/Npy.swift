#if canImport(Glibc)
import Glibc
#endif

/// A NumPy `.npy` array (format versions 1.0–3.0), read into float32.
///
/// Reader: little-endian `<f4`, `<f8`, `<f2`, `<i4`, `<i8`, `|u1`, `|i1`, `|b1` in C order (Fortran
/// order is rejected rather than silently transposed). Every size in the header is checked: a
/// truncated or inconsistent file is `HYError.format` naming the file.
public struct NpyArray: Sendable {
    public var shape: [Int]
    /// Elements in C order, converted to Float.
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }

    public var count: Int { shape.reduce(1, *) }

    /// Reads `path`.
    public static func read(_ path: String) throws -> NpyArray {
        try MappedFile(path: path).withBytes { try parse($0, context: path) }
    }

    /// Parses the bytes of a .npy file; `context` names it in errors.
    public static func parse(_ b: UnsafeRawBufferPointer, context: String) throws -> NpyArray {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard b.count >= 10, Array(b[0..<6]) == magic else {
            throw HYError.format("\(context): not a .npy file (bad magic)")
        }
        let major = b[6]
        var headerLen: Int
        var offset: Int
        switch major {
        case 1:
            headerLen = Int(b[8]) | Int(b[9]) << 8
            offset = 10
        case 2, 3:
            guard b.count >= 12 else { throw HYError.format("\(context): truncated .npy header") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            offset = 12
        default:
            throw HYError.unsupported("\(context): .npy format version \(major) is not supported")
        }
        let dataStart = try checkedAdd(offset, headerLen, "\(context): header length")
        guard dataStart <= b.count else { throw HYError.format("\(context): truncated .npy header") }
        guard let header = String(validating: UnsafeRawBufferPointer(rebasing: b[offset..<dataStart]), as: UTF8.self) else {
            throw HYError.format("\(context): .npy header is not text")
        }
        let descr = try field(header, "descr", context)
        let fortran = try field(header, "fortran_order", context)
        let shapeText = try field(header, "shape", context)
        guard fortran.hasPrefix("False") else {
            throw HYError.unsupported("\(context): Fortran-order arrays are not supported (save with C order)")
        }
        let descrName = descr.trimmingQuotes()
        let elemSize: Int
        switch descrName {
        case "<f4", "<i4", "<u4": elemSize = 4
        case "<f8", "<i8", "<u8": elemSize = 8
        case "<f2", "<i2", "<u2": elemSize = 2
        case "|u1", "|i1", "|b1", "<u1", "<i1": elemSize = 1
        default: throw HYError.unsupported("\(context): dtype \(descrName) is not supported (use float32)")
        }
        // Shape: "(a, b, c)" possibly with trailing comma, or "()".
        guard let open = shapeText.firstIndex(of: "("), let close = shapeText.firstIndex(of: ")") else {
            throw HYError.format("\(context): bad shape in .npy header")
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: open)..<close].split(separator: ",") {
            let t = part.filter { $0 != " " && $0 != "L" }
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw HYError.format("\(context): bad dimension '\(t)' in .npy shape") }
            shape.append(d)
        }
        var count = 1
        for d in shape { count = try checkedMul(count, d, "\(context): shape \(shape)") }
        let nbytes = try checkedMul(count, elemSize, "\(context): shape \(shape)")
        guard try checkedAdd(dataStart, nbytes, context) <= b.count else {
            throw HYError.format("\(context): data truncated: shape \(shape) needs \(nbytes) bytes, file has \(b.count - dataStart)")
        }
        var out = [Float](repeating: 0, count: count)
        let src = UnsafeRawBufferPointer(rebasing: b[dataStart..<(dataStart + nbytes)])
        if descrName == "<f4" {
            out.withUnsafeMutableBytes { o in
                if count > 0 { o.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: nbytes) }
            }
            return NpyArray(shape: shape, data: out)
        }
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<count {
                let p = i * elemSize
                switch descrName {
                case "<f4": o[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian)
                case "<f8": o[i] = Float(Double(bitPattern: src.loadUnaligned(fromByteOffset: p, as: UInt64.self).littleEndian))
                case "<f2": o[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: p, as: UInt16.self).littleEndian))
                case "<i4": o[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: p, as: Int32.self)))
                case "<u4": o[i] = Float(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
                case "<i8": o[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: p, as: Int64.self)))
                case "<u8": o[i] = Float(UInt64(littleEndian: src.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
                case "<i2": o[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: p, as: Int16.self)))
                case "<u2": o[i] = Float(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: p, as: UInt16.self)))
                case "|i1", "<i1": o[i] = Float(Int8(bitPattern: src[p]))
                default: o[i] = Float(src[p])
                }
            }
        }
        return NpyArray(shape: shape, data: out)
    }

    private static func field(_ header: String, _ key: String, _ context: String) throws -> Substring {
        guard let r = header.firstRange(of: "'\(key)'") else {
            throw HYError.format("\(context): .npy header has no '\(key)'")
        }
        var rest = header[r.upperBound...]
        guard let colon = rest.firstIndex(of: ":") else { throw HYError.format("\(context): bad .npy header") }
        rest = rest[rest.index(after: colon)...]
        return rest.drop { $0 == " " }
    }
}

/// Writes float32 arrays as `.npy` (version 1.0, `<f4`, C order) through FileSystem.writeAtomically.
public enum NpyWriter {
    /// The bytes of a .npy file holding `data` with `shape` (product of shape must equal data.count).
    public static func encode(shape: [Int], data: [Float]) throws -> [UInt8] {
        var count = 1
        for d in shape { count = try checkedMul(count, d, "npy shape \(shape)") }
        guard count == data.count else {
            throw HYError.invalidArgument("npy: shape \(shape) has \(count) elements but \(data.count) values were given")
        }
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let hl = header.utf8.count
        out.append(UInt8(hl & 0xFF)); out.append(UInt8(hl >> 8))
        out.append(contentsOf: header.utf8)
        out.reserveCapacity(out.count + data.count * 4)
        for v in data {
            let u = v.bitPattern.littleEndian
            out.append(UInt8(u & 0xFF)); out.append(UInt8((u >> 8) & 0xFF))
            out.append(UInt8((u >> 16) & 0xFF)); out.append(UInt8(u >> 24))
        }
        return out
    }

    /// Writes `data` with `shape` to `path` (temporary file + rename; an existing file is replaced only
    /// when `overwrite`).
    public static func write(_ path: String, shape: [Int], data: [Float], overwrite: Bool) throws {
        let bytes = try encode(shape: shape, data: data)
        try FileSystem.writeAtomically(path, overwrite: overwrite) { w in
            try bytes.withUnsafeBytes { try w($0) }
        }
    }
}

extension Substring {
    fileprivate func trimmingQuotes() -> String {
        var s = self.drop { $0 == "'" || $0 == "\"" }
        if let end = s.firstIndex(where: { $0 == "'" || $0 == "\"" }) { s = s[..<end] }
        return String(s)
    }
}

// The protobuf wire format, read directly: the one reader behind ONNX models and SentencePiece
// model files. Every read is bounds-checked, so a truncated or corrupt file is a `HYError.format`
// naming the file and the offending field, never a trap.

/// A reader over bytes [pos, end) of a borrowed buffer (valid only while that buffer is). Errors
/// are `HYError.format("<context> (<what> at byte <pos>)")`, with `context` naming file and format.
package struct ProtobufReader {
    let base: UnsafeRawBufferPointer
    package var pos: Int
    let end: Int
    let context: String

    package init(_ base: UnsafeRawBufferPointer, _ pos: Int, _ end: Int, _ context: String) {
        self.base = base; self.pos = pos; self.end = end; self.context = context
    }
    package var atEnd: Bool { pos >= end }

    package func fail(_ what: String) -> HYError { HYError.format("\(context) (\(what) at byte \(pos))") }

    package mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard pos < end else { throw fail("truncated varint") }
            let b = base[pos]; pos += 1
            if shift < 64 { v |= UInt64(b & 0x7F) << shift }
            if b & 0x80 == 0 { return v }
            shift += 7
            guard shift < 70 else { throw fail("varint longer than 10 bytes") }
        }
    }
    /// A varint field read as a (possibly negative) int32 / int64, as protobuf encodes them.
    package mutating func int() throws -> Int { Int(Int64(bitPattern: try varint())) }
    package mutating func bool() throws -> Bool { try varint() != 0 }

    package mutating func fixed32() throws -> UInt32 {
        guard end - pos >= 4 else { throw fail("truncated fixed32") }
        let v = base.loadUnaligned(fromByteOffset: pos, as: UInt32.self); pos += 4
        return UInt32(littleEndian: v)
    }
    /// The next field number and wire type, nil at the end.
    package mutating func key() throws -> (Int, Int)? {
        if pos >= end { return nil }
        let k = try varint()
        let field = Int(truncatingIfNeeded: k >> 3), wire = Int(k & 7)
        guard field > 0 else { throw fail("field number 0") }
        return (field, wire)
    }
    /// A length-delimited field: (offset, length) into the buffer.
    package mutating func bytesRange() throws -> (Int, Int) {
        let n = try varint()
        guard n <= UInt64(end - pos) else { throw fail("length \(n) past the end") }
        let lo = pos
        pos += Int(n)
        return (lo, Int(n))
    }
    /// A length-delimited field's bytes, copied.
    package mutating func bytes() throws -> [UInt8] {
        let (lo, n) = try bytesRange()
        return Array(base[lo..<(lo + n)])
    }
    /// A nested message.
    package mutating func sub() throws -> ProtobufReader {
        let (lo, n) = try bytesRange()
        return ProtobufReader(base, lo, lo + n, context)
    }
    /// A string field; not UTF-8 is an error.
    package mutating func string() throws -> String {
        let (lo, n) = try bytesRange()
        guard let s = String(validating: UnsafeRawBufferPointer(rebasing: base[lo..<(lo + n)]), as: UTF8.self) else {
            throw fail("a string that is not UTF-8")
        }
        return s
    }
    package mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: guard end - pos >= 8 else { throw fail("truncated fixed64") }; pos += 8
        case 2: _ = try bytesRange()
        case 5: guard end - pos >= 4 else { throw fail("truncated fixed32") }; pos += 4
        default: throw fail("wire type \(wire)")
        }
    }
    package func withBytes(_ lo: Int, _ n: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        body(UnsafeRawBufferPointer(rebasing: base[lo..<(lo + n)]))
    }
}

// A reader for what a weights loader needs from an ONNX model file: the graph's nodes (op type,
// inputs, outputs, integer / float attributes) in order, and its float initializers. Protobuf wire
// format read directly with bounds checks on every field, so a truncated or corrupt file is a
// `HYError.format` naming the file and the offending field, never a trap.

/// An ONNX model's graph as far as weight binding needs it. Immutable after reading.
public final class ONNXModel: @unchecked Sendable {
    /// One `NodeProto`.
    public struct Node: Sendable {
        public var name = ""
        public var opType = ""
        public var inputs: [String] = []
        public var outputs: [String] = []
        /// INT and INTS attributes (an INT as a one-element list).
        public var ints: [String: [Int]] = [:]
        /// FLOAT and FLOATS attributes.
        public var floats: [String: [Float]] = [:]
    }

    public let path: String
    public private(set) var nodes: [Node] = []
    /// Float initializers by name (FLOAT stored as raw_data or float_data; FLOAT16 widened).
    public private(set) var initializers: [String: Tensor] = [:]
    /// Names of the initializers in file order.
    public private(set) var initializerNames: [String] = []

    /// Reads `path`. Errors: `HYError.io` (unreadable), `HYError.format` (not a well-formed ONNX
    /// protobuf, an initializer whose byte count does not match its dims, external data).
    public init(path: String) throws {
        self.path = path
        let bytes = try FileSystem.readAll(path)
        try bytes.withUnsafeBytes { raw in
            var model = Reader(raw, 0, raw.count, path)
            var sawGraph = false
            while let (field, wire) = try model.key() {
                if field == 7 && wire == 2 {           // ModelProto.graph
                    var g = try model.sub()
                    try readGraph(&g)
                    sawGraph = true
                } else {
                    try model.skip(wire)
                }
            }
            guard sawGraph else { throw HYError.format("\(path): not an ONNX model (no graph)") }
        }
    }

    /// The float initializer `name`.
    public func initializer(_ name: String) -> Tensor? { initializers[name] }

    private func readGraph(_ g: inout Reader) throws {
        while let (field, wire) = try g.key() {
            switch (field, wire) {
            case (1, 2):                                 // GraphProto.node
                var r = try g.sub()
                nodes.append(try readNode(&r))
            case (5, 2):                                 // GraphProto.initializer
                var r = try g.sub()
                if let t = try readTensor(&r) {
                    if initializers[t.name] == nil { initializerNames.append(t.name) }
                    initializers[t.name] = t
                }
            default:
                try g.skip(wire)
            }
        }
    }

    private func readNode(_ r: inout Reader) throws -> Node {
        var n = Node()
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 2): n.inputs.append(try r.string())
            case (2, 2): n.outputs.append(try r.string())
            case (3, 2): n.name = try r.string()
            case (4, 2): n.opType = try r.string()
            case (5, 2):
                var a = try r.sub()
                try readAttribute(&a, into: &n)
            default: try r.skip(wire)
            }
        }
        return n
    }

    private func readAttribute(_ a: inout Reader, into n: inout Node) throws {
        var name = "", ints: [Int] = [], floats: [Float] = []
        var haveInt = false, haveFloat = false
        while let (field, wire) = try a.key() {
            switch (field, wire) {
            case (1, 2): name = try a.string()
            case (2, 5): floats.append(Float(bitPattern: try a.fixed32())); haveFloat = true
            case (3, 0): ints.append(Int(Int64(bitPattern: try a.varint()))); haveInt = true
            case (7, 5): floats.append(Float(bitPattern: try a.fixed32())); haveFloat = true
            case (7, 2):                                  // packed floats
                var p = try a.sub()
                while !p.atEnd { floats.append(Float(bitPattern: try p.fixed32())) }
                haveFloat = true
            case (8, 0): ints.append(Int(Int64(bitPattern: try a.varint()))); haveInt = true
            case (8, 2):                                  // packed ints
                var p = try a.sub()
                while !p.atEnd { ints.append(Int(Int64(bitPattern: try p.varint()))) }
                haveInt = true
            default: try a.skip(wire)
            }
        }
        if haveInt { n.ints[name] = ints }
        if haveFloat { n.floats[name] = floats }
    }

    /// A FLOAT / FLOAT16 TensorProto as an owned f32 tensor; nil for other types (int64 shapes and the like).
    private func readTensor(_ r: inout Reader) throws -> Tensor? {
        var dims: [Int] = [], dataType = 0, name = "", raw: (Int, Int)? = nil, floatData: [Float] = []
        var external = false
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 0): dims.append(Int(Int64(bitPattern: try r.varint())))
            case (1, 2):
                var p = try r.sub()
                while !p.atEnd { dims.append(Int(Int64(bitPattern: try p.varint()))) }
            case (2, 0): dataType = Int(truncatingIfNeeded: try r.varint())
            case (4, 2):
                var p = try r.sub()
                while !p.atEnd { floatData.append(Float(bitPattern: try p.fixed32())) }
            case (4, 5): floatData.append(Float(bitPattern: try r.fixed32()))
            case (8, 2): name = try r.string()
            case (9, 2): raw = try r.bytesRange()
            case (14, 0): external = try r.varint() == 1
            default: try r.skip(wire)
            }
        }
        guard dataType == 1 || dataType == 10 else { return nil }   // FLOAT, FLOAT16
        if external { throw HYError.unsupported("\(path): initializer \(name) keeps its data in an external file") }
        guard dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else {
            throw HYError.format("\(path): initializer \(name) has dims \(dims)")
        }
        let count = dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count < 1 << 34 else { throw HYError.format("\(path): initializer \(name) has dims \(dims)") }
        var values = [Float](repeating: 0, count: count)
        if let (lo, len) = raw {
            let esz = dataType == 1 ? 4 : 2
            guard len == count * esz else {
                throw HYError.format("\(path): initializer \(name) holds \(len) bytes, dims \(dims) need \(count * esz)")
            }
            r.withBytes(lo, len) { b in
                if dataType == 1 {
                    for i in 0..<count { values[i] = Float(bitPattern: b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
                } else {
                    for i in 0..<count { values[i] = Float(Float16(bitPattern: b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                }
            }
        } else if dataType == 1 {
            guard floatData.count == count else {
                throw HYError.format("\(path): initializer \(name) holds \(floatData.count) floats, dims \(dims) need \(count)")
            }
            values = floatData
        } else {
            throw HYError.format("\(path): FLOAT16 initializer \(name) has no raw_data")
        }
        return Tensor(name: name, shape: dims, floats: values)
    }

    /// Protobuf wire-format reader over [pos, end) of a buffer; every read is bounds-checked.
    private struct Reader {
        let base: UnsafeRawBufferPointer
        var pos: Int
        let end: Int
        let path: String
        init(_ base: UnsafeRawBufferPointer, _ pos: Int, _ end: Int, _ path: String) {
            self.base = base; self.pos = pos; self.end = end; self.path = path
        }
        var atEnd: Bool { pos >= end }

        func fail(_ what: String) -> HYError { HYError.format("\(path): malformed ONNX protobuf (\(what) at byte \(pos))") }

        mutating func varint() throws -> UInt64 {
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
        mutating func fixed32() throws -> UInt32 {
            guard end - pos >= 4 else { throw fail("truncated fixed32") }
            let v = base.loadUnaligned(fromByteOffset: pos, as: UInt32.self); pos += 4
            return UInt32(littleEndian: v)
        }
        /// The next field number and wire type, nil at the end.
        mutating func key() throws -> (Int, Int)? {
            if pos >= end { return nil }
            let k = try varint()
            let field = Int(truncatingIfNeeded: k >> 3), wire = Int(k & 7)
            guard field > 0 else { throw fail("field number 0") }
            return (field, wire)
        }
        mutating func bytesRange() throws -> (Int, Int) {
            let n = try varint()
            guard n <= UInt64(end - pos) else { throw fail("length \(n) past the end") }
            let lo = pos
            pos += Int(n)
            return (lo, Int(n))
        }
        mutating func sub() throws -> Reader {
            let (lo, n) = try bytesRange()
            return Reader(base, lo, lo + n, path)
        }
        mutating func string() throws -> String {
            let (lo, n) = try bytesRange()
            guard let s = String(validating: UnsafeRawBufferPointer(rebasing: base[lo..<(lo + n)]), as: UTF8.self) else {
                throw fail("a string that is not UTF-8")
            }
            return s
        }
        mutating func skip(_ wire: Int) throws {
            switch wire {
            case 0: _ = try varint()
            case 1: guard end - pos >= 8 else { throw fail("truncated fixed64") }; pos += 8
            case 2: _ = try bytesRange()
            case 5: guard end - pos >= 4 else { throw fail("truncated fixed32") }; pos += 4
            default: throw fail("wire type \(wire)")
            }
        }
        func withBytes(_ lo: Int, _ n: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
            body(UnsafeRawBufferPointer(rebasing: base[lo..<(lo + n)]))
        }
    }
}

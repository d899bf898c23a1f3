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
            var model = ProtobufReader(raw, 0, raw.count, "\(path): malformed ONNX protobuf")
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

    private func readGraph(_ g: inout ProtobufReader) throws {
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

    private func readNode(_ r: inout ProtobufReader) throws -> Node {
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

    private func readAttribute(_ a: inout ProtobufReader, into n: inout Node) throws {
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
    private func readTensor(_ r: inout ProtobufReader) throws -> Tensor? {
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
}

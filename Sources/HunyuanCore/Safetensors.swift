/// Reader and writer of the safetensors format, with the reference implementation's validation rules:
/// an 8-byte little-endian header length N ≤ 100 MB, N bytes of UTF-8 JSON (an object; no duplicate
/// names; optional "__metadata__" string map), known dtypes, shape × dtype size computed with overflow
/// checks and equal to each tensor's byte range, ranges contiguous from 0 without gaps or overlaps, the
/// last ending exactly at the end of the file. Every violation is `HYError.format` naming the file.
public final class SafetensorsFile: @unchecked Sendable {
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let file: MappedFile
    /// Tensors in file order (by offset).
    public let tensors: [Tensor]
    public let metadata: [(String, String)]
    private let index: [String: Int]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func bad(_ m: String) -> HYError { HYError.format("\(path): \(m)") }

        guard bytes.count >= 8 else { throw bad("file too short for a safetensors header (\(bytes.count) bytes)") }
        let n64 = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n64 <= UInt64(Self.maxHeaderBytes) else { throw bad("header length \(n64) exceeds the 100 MB limit") }
        let n = Int(n64)
        guard 8 + n <= bytes.count else {
            throw bad("header length \(n) runs past the end of the file (\(bytes.count) bytes): truncated?")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)])
        guard String(validating: headerBytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil || n == 0 else {
            throw bad("header is not valid UTF-8")
        }
        let header = try JSONValue.parse(headerBytes, context: "\(path): header")
        guard case .object(let entries) = header else { throw bad("header is not a JSON object") }

        let dataStart = 8 + n
        let dataLength = bytes.count - dataStart
        var meta: [(String, String)] = []
        struct Entry { let name: String; let dtype: DType; let shape: [Int]; let begin: Int; let end: Int }
        var list: [Entry] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let kv) = value else { throw bad("__metadata__ is not an object") }
                for (k, v) in kv {
                    guard let s = v.stringValue else { throw bad("__metadata__ value of \"\(k)\" is not a string") }
                    meta.append((k, s))
                }
                continue
            }
            guard case .object = value else { throw bad("tensor \(name): entry is not an object") }
            guard let dn = value["dtype"]?.stringValue else { throw bad("tensor \(name): missing dtype") }
            guard let dtype = DType(safetensorsName: dn) else { throw bad("tensor \(name): unknown dtype \"\(dn)\"") }
            guard let sv = value["shape"]?.arrayValue else { throw bad("tensor \(name): missing shape") }
            var shape: [Int] = []
            for d in sv {
                guard let i = d.intValue, i >= 0, i <= Int64(Int32.max) * 1024 else {
                    throw bad("tensor \(name): invalid dimension in shape")
                }
                shape.append(Int(i))
            }
            guard shape.count <= 8 else { throw bad("tensor \(name): \(shape.count) dimensions (at most 8)") }
            guard let ov = value["data_offsets"]?.arrayValue, ov.count == 2,
                  let b = ov[0].intValue, let e = ov[1].intValue, b >= 0, e >= b else {
                throw bad("tensor \(name): invalid data_offsets")
            }
            var elements = 1
            for d in shape { elements = try checkedMul(elements, d, "\(path): tensor \(name)") }
            let nbytes = try checkedMul(elements, dtype.size, "\(path): tensor \(name)")
            guard e - b == Int64(nbytes) else {
                throw bad("tensor \(name): shape \(shape) × \(dn) is \(nbytes) bytes but data_offsets span \(e - b)")
            }
            guard e <= Int64(dataLength) else {
                throw bad("tensor \(name): data_offsets [\(b), \(e)] outside the data (\(dataLength) bytes): truncated?")
            }
            list.append(Entry(name: name, dtype: dtype, shape: shape, begin: Int(b), end: Int(e)))
        }
        list.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for en in list {
            if en.begin < expected { throw bad("tensor \(en.name): data overlaps the previous tensor") }
            if en.begin > expected { throw bad("tensor \(en.name): gap in the data before it (offset \(en.begin), expected \(expected))") }
            expected = en.end
        }
        guard expected == dataLength else {
            throw bad("tensor data ends at \(expected) but the file holds \(dataLength) bytes of data")
        }
        var ts: [Tensor] = []
        var idx: [String: Int] = [:]
        let base = bytes.baseAddress.map { $0 + dataStart }
        for en in list {
            let ptr = UnsafeRawBufferPointer(start: base.map { $0 + en.begin }, count: en.end - en.begin)
            idx[en.name] = ts.count
            ts.append(Tensor(name: en.name, dtype: en.dtype, shape: en.shape, data: ptr, owner: file))
        }
        tensors = ts
        index = idx
        metadata = meta
    }

    public func tensor(_ name: String) -> Tensor? { index[name].map { tensors[$0] } }
}

/// Writes safetensors files (atomically: temp file + rename). Tensors are written in the given order
/// with the header padded with spaces to a multiple of 8 bytes, as the reference writer does.
public enum SafetensorsWriter {
    public struct Item {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]
        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.bytes = bytes
        }
        /// Float data stored as `dtype` (f32, f16 or bf16).
        public init(name: String, shape: [Int], floats: [Float], as dtype: DType = .f32) {
            self.name = name; self.dtype = dtype; self.shape = shape
            switch dtype {
            case .f16:
                bytes = floats.flatMap { v -> [UInt8] in let h = FloatBits.floatToF16(v); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
            case .bf16:
                bytes = floats.flatMap { v -> [UInt8] in let h = FloatBits.floatToBF16(v); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
            default:
                self.dtype = .f32
                bytes = floats.withUnsafeBytes { Array($0) }
            }
        }
        public init(name: String, shape: [Int], int64s: [Int64]) {
            self.name = name; self.dtype = .i64; self.shape = shape
            bytes = int64s.withUnsafeBytes { Array($0) }
        }
    }

    public static func write(_ items: [Item], metadata: [(String, String)] = [], to path: String,
                             overwrite: Bool = true) throws {
        var header: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            header.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) })))
        }
        var offset = 0
        var seen = Set<String>()
        for it in items {
            guard seen.insert(it.name).inserted else { throw HYError.invalidArgument("duplicate tensor name \(it.name)") }
            let n = it.shape.reduce(1, *) * it.dtype.size
            guard n == it.bytes.count else {
                throw HYError.invalidArgument("tensor \(it.name): \(it.bytes.count) bytes for shape \(it.shape)")
            }
            header.append((it.name, .object([
                ("dtype", .string(it.dtype.safetensorsName)),
                ("shape", .array(it.shape.map { .int(Int64($0)) })),
                ("data_offsets", .array([.int(Int64(offset)), .int(Int64(offset + n))])),
            ])))
            offset += n
        }
        var text = Array(JSONValue.object(header).serialized().utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        var len = UInt64(text.count).littleEndian
        try FileSystem.writeAtomically(path, overwrite: overwrite) { write in
            try withUnsafeBytes(of: &len) { try write($0) }
            try text.withUnsafeBytes { try write($0) }
            for it in items { try it.bytes.withUnsafeBytes { try write($0) } }
        }
    }
}

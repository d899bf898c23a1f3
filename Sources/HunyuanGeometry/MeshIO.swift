#if canImport(Glibc)
import Glibc
#endif

/// Mesh file formats, chosen from the file extension.
public enum MeshFormat: String, Sendable, CaseIterable {
    case obj, ply, glb, stl

    /// The format named by `path`'s extension (case-insensitive), or invalidArgument.
    public static func from(path: String) throws -> MeshFormat {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else {
            throw HYError.invalidArgument("\(path): no file extension (use .obj, .ply, .glb or .stl)")
        }
        let ext = path[path.index(after: dot)...].lowercased()
        guard let f = MeshFormat(rawValue: ext) else {
            throw HYError.unsupported("\(path): unknown mesh format '.\(ext)' (use .obj, .ply, .glb or .stl)")
        }
        return f
    }
}

extension Mesh {
    /// Writes the mesh in the format named by the extension. The file (and an OBJ's .mtl / texture
    /// companions) is written to a temporary file renamed on success, so a failure leaves nothing
    /// behind; an existing file is replaced only when `overwrite` is true.
    public func save(_ path: String, overwrite: Bool = false) throws {
        try validate(path)
        switch try MeshFormat.from(path: path) {
        case .obj: try OBJExporter.write(self, to: path, overwrite: overwrite)
        case .ply: try FileSystem.writeAtomically(path, bytes: PLYExporter.encode(self), overwrite: overwrite)
        case .glb: try FileSystem.writeAtomically(path, bytes: GLBExporter.encode(self), overwrite: overwrite)
        case .stl: try FileSystem.writeAtomically(path, bytes: STLExporter.encode(self), overwrite: overwrite)
        }
    }

    /// Reads a mesh file (format from the extension). Errors name the file: io when unreadable,
    /// format when corrupt.
    public static func load(_ path: String) throws -> Mesh {
        let format = try MeshFormat.from(path: path)
        let m: Mesh = try MappedFile(path: path).withBytes { bytes in
            switch format {
            case .obj: return try OBJImporter.parse(bytes, path: path)
            case .ply: return try PLYImporter.parse(bytes, context: path)
            case .glb: return try GLBImporter.parse(bytes, context: path)
            case .stl: return try STLImporter.parse(bytes, context: path)
            }
        }
        do { try m.validate(path) } catch let e as HYError { throw HYError.format(e.message) }
        return m
    }
}

/// Little-endian byte building for the binary formats.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8((v >> 8) & 0xFF))
        bytes.append(UInt8((v >> 16) & 0xFF)); bytes.append(UInt8(v >> 24))
    }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func text(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func pad(to a: Int, with b: UInt8 = 0) { while bytes.count % a != 0 { bytes.append(b) } }
}

/// Bounds-checked little-endian reads for the importers; running past the end is a format error.
struct ByteReader {
    let b: UnsafeRawBufferPointer
    let context: String
    var pos = 0
    init(_ b: UnsafeRawBufferPointer, context: String) { self.b = b; self.context = context }

    func need(_ n: Int, at p: Int) throws {
        guard n >= 0, p >= 0, p <= b.count, n <= b.count - p else {
            throw HYError.format("\(context): truncated (needs \(n) bytes at offset \(p), file has \(b.count))")
        }
    }
    func u8(at p: Int) throws -> UInt8 { try need(1, at: p); return b[p] }
    func u16(at p: Int) throws -> UInt16 { try need(2, at: p); return UInt16(littleEndian: b.loadUnaligned(fromByteOffset: p, as: UInt16.self)) }
    func u32(at p: Int) throws -> UInt32 { try need(4, at: p); return UInt32(littleEndian: b.loadUnaligned(fromByteOffset: p, as: UInt32.self)) }
    func f32(at p: Int) throws -> Float { Float(bitPattern: try u32(at: p)) }
    func f64(at p: Int) throws -> Double {
        try need(8, at: p)
        return Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
    }
    mutating func readU32() throws -> UInt32 { let v = try u32(at: pos); pos += 4; return v }
    mutating func readF32() throws -> Float { let v = try f32(at: pos); pos += 4; return v }
}

@inline(__always) func colorToU8(_ v: Float) -> UInt8 {
    let x = (v * 255).rounded()
    return x.isNaN || x <= 0 ? 0 : (x >= 255 ? 255 : UInt8(x))
}

/// Shortest round-trip decimal text of a Float (Swift's description), used by the text formats.
@inline(__always) func ftext(_ v: Float) -> String {
    v == v.rounded() && abs(v) < 1e7 ? String(Int(v)) : v.description
}

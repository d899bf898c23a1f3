/// Binary little-endian PLY: float x y z, optional float nx ny nz, optional uchar red green blue
/// [alpha], optional float s t; faces as `list uchar int vertex_indices`.
public enum PLYExporter {
    public static func encode(_ m: Mesh) -> [UInt8] {
        var w = ByteWriter()
        let v = m.vertexCount, f = m.faceCount
        var h = "ply\nformat binary_little_endian 1.0\ncomment written by hunyuan\nelement vertex \(v)\n"
        h += "property float x\nproperty float y\nproperty float z\n"
        if m.normals != nil { h += "property float nx\nproperty float ny\nproperty float nz\n" }
        if m.colors != nil {
            h += "property uchar red\nproperty uchar green\nproperty uchar blue\n"
            if m.colorChannels == 4 { h += "property uchar alpha\n" }
        }
        if m.uvs != nil { h += "property float s\nproperty float t\n" }
        h += "element face \(f)\nproperty list uchar int vertex_indices\nend_header\n"
        w.text(h)
        w.bytes.reserveCapacity(w.bytes.count + v * 32 + f * 13)
        for i in 0..<v {
            for k in 0..<3 { w.f32(m.positions[3 * i + k]) }
            if let n = m.normals { for k in 0..<3 { w.f32(n[3 * i + k]) } }
            if let c = m.colors { for k in 0..<m.colorChannels { w.u8(colorToU8(c[m.colorChannels * i + k])) } }
            if let t = m.uvs { w.f32(t[2 * i]); w.f32(t[2 * i + 1]) }
        }
        for i in 0..<f {
            w.u8(3)
            for k in 0..<3 { w.u32(m.faces[3 * i + k]) }
        }
        return w.bytes
    }
}

/// PLY reader: ascii, binary_little_endian and binary_big_endian; any scalar property types; faces
/// as lists (polygons are fanned into triangles); x y z, nx ny nz, red green blue [alpha] (uchar or
/// float), s t / u v / texture_u texture_v are kept, other properties skipped.
public enum PLYImporter {
    enum Encoding { case ascii, le, be }

    /// A scalar type of the header (either spelling), decoded once per property, not per value.
    enum Scalar {
        case int8, uint8, int16, uint16, int32, uint32, float32, float64

        init?(_ name: String) {
            switch name {
            case "char", "int8": self = .int8
            case "uchar", "uint8": self = .uint8
            case "short", "int16": self = .int16
            case "ushort", "uint16": self = .uint16
            case "int", "int32": self = .int32
            case "uint", "uint32": self = .uint32
            case "float", "float32": self = .float32
            case "double", "float64": self = .float64
            default: return nil
            }
        }

        var size: Int {
            switch self {
            case .int8, .uint8: return 1
            case .int16, .uint16: return 2
            case .int32, .uint32, .float32: return 4
            case .float64: return 8
            }
        }
    }

    struct Prop { var name: String; var type: Scalar; var listCount: Scalar? }
    struct Element { var name: String; var count: Int; var props: [Prop] }

    /// The header: encoding, elements with their properties, and the offset where the data begins.
    static func header(_ b: UnsafeRawBufferPointer, context: String) throws -> (Encoding, [Element], dataStart: Int) {
        var end = -1
        let marker = Array("end_header".utf8)
        var i = 0
        while i + marker.count <= b.count && i < 1 << 20 {
            if b[i] == marker[0] && Array(b[i..<(i + marker.count)]) == marker { end = i + marker.count; break }
            i += 1
        }
        guard b.count >= 4, Array(b[0..<3]) == Array("ply".utf8), end > 0 else {
            throw HYError.format("\(context): not a PLY file (no 'ply' magic or end_header)")
        }
        if end < b.count && b[end] == 13 { end += 1 }
        guard end < b.count || end == b.count else { throw HYError.format("\(context): truncated header") }
        if end < b.count && b[end] == 10 { end += 1 }
        let header = String(decoding: UnsafeRawBufferPointer(rebasing: b[0..<end]), as: UTF8.self)
        var enc = Encoding.ascii
        var elements: [Element] = []
        for line in header.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let t = line.split(separator: " ").map(String.init)
            guard let k = t.first else { continue }
            switch k {
            case "format":
                guard t.count >= 2 else { throw HYError.format("\(context): bad format line") }
                switch t[1] {
                case "ascii": enc = .ascii
                case "binary_little_endian": enc = .le
                case "binary_big_endian": enc = .be
                default: throw HYError.format("\(context): unknown PLY format \(t[1])")
                }
            case "element":
                guard t.count >= 3, let n = Int(t[2]), n >= 0 else { throw HYError.format("\(context): bad element line '\(line)'") }
                elements.append(Element(name: t[1], count: n, props: []))
            case "property":
                guard !elements.isEmpty else { throw HYError.format("\(context): property before element") }
                if t.count >= 5 && t[1] == "list" {
                    guard let count = Scalar(t[2]), let type = Scalar(t[3]) else { throw HYError.format("\(context): bad list property '\(line)'") }
                    elements[elements.count - 1].props.append(Prop(name: t[4], type: type, listCount: count))
                } else if t.count >= 3 {
                    guard let type = Scalar(t[1]) else { throw HYError.format("\(context): unknown property type \(t[1])") }
                    elements[elements.count - 1].props.append(Prop(name: t[2], type: type, listCount: nil))
                } else { throw HYError.format("\(context): bad property line '\(line)'") }
            default: break
            }
        }
        return (enc, elements, end)
    }

    public static func parse(_ b: UnsafeRawBufferPointer, context: String) throws -> Mesh {
        let (enc, elements, end) = try header(b, context: context)
        var src = PLYSource(b: b, pos: end, enc: enc, context: context)
        var m = Mesh()
        for el in elements {
            let names = el.props.map(\.name)
            if el.name == "vertex" {
                let ix = names.firstIndex(of: "x"), iy = names.firstIndex(of: "y"), iz = names.firstIndex(of: "z")
                guard let ix, let iy, let iz else { throw HYError.format("\(context): vertex element lacks x/y/z") }
                let nIdx = ["nx", "ny", "nz"].map { names.firstIndex(of: $0) }
                let cIdx = ["red", "green", "blue", "alpha"].map { names.firstIndex(of: $0) ?? names.firstIndex(of: ["r", "g", "b", "a"][["red", "green", "blue", "alpha"].firstIndex(of: $0)!]) }
                var uvIdx = [names.firstIndex(of: "s"), names.firstIndex(of: "t")]
                if uvIdx[0] == nil { uvIdx = [names.firstIndex(of: "u"), names.firstIndex(of: "v")] }
                if uvIdx[0] == nil { uvIdx = [names.firstIndex(of: "texture_u"), names.firstIndex(of: "texture_v")] }
                let hasN = nIdx.allSatisfy { $0 != nil }, hasC = cIdx[0...2].allSatisfy { $0 != nil }
                let hasUV = uvIdx.allSatisfy { $0 != nil }
                let ch = cIdx[3] != nil ? 4 : 3
                m.positions.reserveCapacity(min(el.count, 1 << 24) * 3)
                var cols: [Float] = [], nors: [Float] = [], uvs: [Float] = []
                var row = [Double](repeating: 0, count: el.props.count)
                for _ in 0..<el.count {
                    for (k, p) in el.props.enumerated() {
                        if let lc = p.listCount {
                            let n = try src.scalar(lc)
                            guard n >= 0 && n < 1048576 else { throw HYError.format("\(context): bad list length") }
                            for _ in 0..<Int(n) { _ = try src.scalar(p.type) }
                        } else { row[k] = try src.scalar(p.type) }
                    }
                    m.positions += [Float(row[ix]), Float(row[iy]), Float(row[iz])]
                    if hasN { for q in nIdx { nors.append(Float(row[q!])) } }
                    if hasC {
                        for q in cIdx[0..<ch] {
                            let isByte = el.props[q!].type == .uint8
                            cols.append(isByte ? Float(row[q!]) / 255 : Float(row[q!]))
                        }
                    }
                    if hasUV { uvs.append(Float(row[uvIdx[0]!])); uvs.append(Float(row[uvIdx[1]!])) }
                }
                if hasC { m.colors = cols; m.colorChannels = ch }
                if hasN { m.normals = nors }
                if hasUV { m.uvs = uvs }
            } else if el.name == "face" {
                guard let fi = el.props.firstIndex(where: { $0.listCount != nil && ($0.name == "vertex_indices" || $0.name == "vertex_index") }) else {
                    throw HYError.format("\(context): face element has no vertex_indices list")
                }
                for _ in 0..<el.count {
                    for (k, p) in el.props.enumerated() {
                        if let lc = p.listCount {
                            let n = try src.scalar(lc)
                            guard n >= 0 && n < 1048576 else { throw HYError.format("\(context): bad face list length") }
                            var poly: [UInt32] = []
                            for _ in 0..<Int(n) {
                                let v = try src.scalar(p.type)
                                guard v >= 0 && v < 4294967295 else { throw HYError.format("\(context): bad vertex index \(v)") }
                                poly.append(UInt32(v))
                            }
                            if k == fi && poly.count >= 3 {
                                for j in 1..<(poly.count - 1) { m.faces += [poly[0], poly[j], poly[j + 1]] }
                            }
                        } else { _ = try src.scalar(p.type) }
                    }
                }
            } else {
                for _ in 0..<el.count {
                    for p in el.props {
                        if let lc = p.listCount {
                            let n = try src.scalar(lc)
                            guard n >= 0 && n < 1048576 else { throw HYError.format("\(context): bad list length") }
                            for _ in 0..<Int(n) { _ = try src.scalar(p.type) }
                        } else { _ = try src.scalar(p.type) }
                    }
                }
            }
        }
        return m
    }
}

struct PLYSource {
    let b: UnsafeRawBufferPointer
    var pos: Int
    let enc: PLYImporter.Encoding
    let context: String

    mutating func scalar(_ type: PLYImporter.Scalar) throws -> Double {
        if enc == .ascii {
            while pos < b.count && (b[pos] == 32 || b[pos] == 10 || b[pos] == 13 || b[pos] == 9) { pos += 1 }
            let start = pos
            while pos < b.count && !(b[pos] == 32 || b[pos] == 10 || b[pos] == 13 || b[pos] == 9) { pos += 1 }
            guard pos > start, let v = Double(String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<pos]), as: UTF8.self)) else {
                throw HYError.format("\(context): bad or missing number at byte \(start)")
            }
            return v
        }
        let n = type.size
        guard pos + n <= b.count else { throw HYError.format("\(context): truncated data") }
        var raw: UInt64 = 0
        for k in 0..<n {
            let byte = UInt64(b[pos + (enc == .le ? k : n - 1 - k)])
            raw |= byte << (8 * UInt64(k))
        }
        pos += n
        switch type {
        case .int8: return Double(Int8(truncatingIfNeeded: raw))
        case .uint8: return Double(UInt8(truncatingIfNeeded: raw))
        case .int16: return Double(Int16(truncatingIfNeeded: raw))
        case .uint16: return Double(UInt16(truncatingIfNeeded: raw))
        case .int32: return Double(Int32(truncatingIfNeeded: raw))
        case .uint32: return Double(UInt32(truncatingIfNeeded: raw))
        case .float32: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
        case .float64: return Double(bitPattern: raw)
        }
    }
}

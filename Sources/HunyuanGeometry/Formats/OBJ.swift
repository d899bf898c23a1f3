import HunyuanImage

/// Wavefront OBJ writer: `v x y z [r g b]` (colours as floats in [0, 1], the de-facto extension that
/// trimesh, MeshLab and Blender read), `vn`, `vt`, and 1-based triangle faces. With UVs and a texture,
/// a `.mtl` and a `.png` with the same base name are written next to the .obj (each atomically).
public enum OBJExporter {
    public static func encode(_ m: Mesh, mtlName: String? = nil) -> [UInt8] {
        var s = "# written by hunyuan\n"
        if let mtlName { s += "mtllib \(mtlName)\nusemtl material0\n" }
        var out: [UInt8] = []
        out.reserveCapacity(m.vertexCount * 40 + m.faceCount * 24)
        out += s.utf8
        let k = m.colorChannels
        for i in 0..<m.vertexCount {
            var line = "v \(ftext(m.positions[3 * i])) \(ftext(m.positions[3 * i + 1])) \(ftext(m.positions[3 * i + 2]))"
            if let c = m.colors { line += " \(ftext(c[k * i])) \(ftext(c[k * i + 1])) \(ftext(c[k * i + 2]))" }
            line += "\n"
            out += line.utf8
        }
        if let n = m.normals {
            for i in 0..<m.vertexCount { out += "vn \(ftext(n[3 * i])) \(ftext(n[3 * i + 1])) \(ftext(n[3 * i + 2]))\n".utf8 }
        }
        if let t = m.uvs {
            for i in 0..<m.vertexCount { out += "vt \(ftext(t[2 * i])) \(ftext(t[2 * i + 1]))\n".utf8 }
        }
        let hasN = m.normals != nil, hasT = m.uvs != nil
        for f in 0..<m.faceCount {
            var line = "f"
            for j in 0..<3 {
                let i = m.faces[3 * f + j] + 1
                if hasT && hasN { line += " \(i)/\(i)/\(i)" } else if hasT { line += " \(i)/\(i)" } else if hasN { line += " \(i)//\(i)" } else { line += " \(i)" }
            }
            line += "\n"
            out += line.utf8
        }
        return out
    }

    static func write(_ m: Mesh, to path: String, overwrite: Bool) throws {
        guard let tex = m.texture, m.uvs != nil else {
            try FileSystem.writeAtomically(path, bytes: encode(m), overwrite: overwrite)
            return
        }
        let base = String(path[..<path.lastIndex(of: ".")!])
        let name = base.split(separator: "/").last.map(String.init) ?? "mesh"
        let mtl = "# written by hunyuan\nnewmtl material0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd \(name).png\n"
        try FileSystem.writeAtomically(base + ".png", bytes: try PNGEncoder.encode(tex), overwrite: overwrite)
        try FileSystem.writeAtomically(base + ".mtl", bytes: Array(mtl.utf8), overwrite: overwrite)
        try FileSystem.writeAtomically(path, bytes: encode(m, mtlName: name + ".mtl"), overwrite: overwrite)
    }
}

/// Wavefront OBJ reader: v (with optional r g b [a] colours), vt, vn, f (polygons fanned, negative
/// indices, v/vt/vn triples: a vertex is made per distinct triple). Other statements are ignored.
public enum OBJImporter {
    public static func parse(_ b: UnsafeRawBufferPointer, path: String) throws -> Mesh {
        var pos: [Float] = [], col: [Float] = [], vts: [Float] = [], vns: [Float] = []
        var colored = false
        var corners: [SIMD3<Int32>] = []
        var lineNo = 0
        var start = 0
        func num(_ t: Substring) throws -> Float {
            guard let v = Float(t) else { throw HYError.format("\(path):\(lineNo): bad number '\(t)'") }
            return v
        }
        while start < b.count {
            var end = start
            while end < b.count && b[end] != 10 { end += 1 }
            lineNo += 1
            let line = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<end]), as: UTF8.self)
            start = end + 1
            let t = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let k = t.first else { continue }
            switch k {
            case "v":
                guard t.count >= 4 else { throw HYError.format("\(path):\(lineNo): vertex needs 3 coordinates") }
                pos += [try num(t[1]), try num(t[2]), try num(t[3])]
                if t.count >= 7 { col += [try num(t[4]), try num(t[5]), try num(t[6])]; colored = true } else { col += [1, 1, 1] }
            case "vt":
                guard t.count >= 3 else { throw HYError.format("\(path):\(lineNo): vt needs 2 values") }
                vts += [try num(t[1]), try num(t[2])]
            case "vn":
                guard t.count >= 4 else { throw HYError.format("\(path):\(lineNo): vn needs 3 values") }
                vns += [try num(t[1]), try num(t[2]), try num(t[3])]
            case "f":
                var poly: [SIMD3<Int32>] = []
                for c in t.dropFirst() {
                    let parts = c.split(separator: "/", omittingEmptySubsequences: false)
                    func idx(_ j: Int, _ n: Int) throws -> Int32 {
                        guard j < parts.count, !parts[j].isEmpty else { return -1 }
                        guard let v = Int(parts[j]), v != 0 else { throw HYError.format("\(path):\(lineNo): bad index '\(c)'") }
                        let r = v > 0 ? v - 1 : n + v
                        guard r >= 0 && r < n else { throw HYError.format("\(path):\(lineNo): index \(v) out of range") }
                        return Int32(r)
                    }
                    poly.append(SIMD3(try idx(0, pos.count / 3), try idx(1, vts.count / 2), try idx(2, vns.count / 3)))
                    if poly.last!.x < 0 { throw HYError.format("\(path):\(lineNo): face without vertex index") }
                }
                guard poly.count >= 3 else { throw HYError.format("\(path):\(lineNo): face with fewer than 3 vertices") }
                for j in 1..<(poly.count - 1) { corners += [poly[0], poly[j], poly[j + 1]] }
            default: continue
            }
        }
        // When every vertex is used with one (vt, vn) pair (as we and most tools write), the file's
        // vertex order is kept; otherwise one output vertex is made per distinct (v, vt, vn).
        let nv = pos.count / 3
        var attr = [SIMD2<Int32>](repeating: SIMD2(-2, -2), count: nv)
        var consistent = true
        for c in corners {
            let a = SIMD2(c.y, c.z)
            if attr[Int(c.x)] == SIMD2(-2, -2) { attr[Int(c.x)] = a } else if attr[Int(c.x)] != a { consistent = false; break }
        }
        var m = Mesh()
        if consistent {
            m.positions = pos
            m.faces = corners.map { UInt32($0.x) }
            if colored { m.colors = col }
            let used = attr.filter { $0 != SIMD2(-2, -2) }
            if !used.isEmpty && used.allSatisfy({ $0.x >= 0 }) {
                m.uvs = attr.flatMap { a -> [Float] in a.x >= 0 ? [vts[2 * Int(a.x)], vts[2 * Int(a.x) + 1]] : [0, 0] }
            }
            if !used.isEmpty && used.allSatisfy({ $0.y >= 0 }) {
                m.normals = attr.flatMap { a -> [Float] in
                    a.y >= 0 ? [vns[3 * Int(a.y)], vns[3 * Int(a.y) + 1], vns[3 * Int(a.y) + 2]] : [0, 0, 0]
                }
            }
            return m
        }
        var map: [SIMD3<Int32>: UInt32] = [:]
        var cs: [Float] = [], ts: [Float] = [], ns: [Float] = []
        let hasT = corners.allSatisfy { $0.y >= 0 }, hasN = corners.allSatisfy { $0.z >= 0 }
        for c in corners {
            if let j = map[c] { m.faces.append(j); continue }
            let j = UInt32(m.vertexCount)
            map[c] = j
            let v = Int(c.x)
            m.positions += pos[(3 * v)..<(3 * v + 3)]
            cs += col[(3 * v)..<(3 * v + 3)]
            if hasT { ts += vts[(2 * Int(c.y))..<(2 * Int(c.y) + 2)] }
            if hasN { ns += vns[(3 * Int(c.z))..<(3 * Int(c.z) + 3)] }
            m.faces.append(j)
        }
        if colored { m.colors = cs }
        if hasT { m.uvs = ts }
        if hasN { m.normals = ns }
        return m
    }
}

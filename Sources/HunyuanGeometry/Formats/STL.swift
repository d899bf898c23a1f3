/// Binary STL: 80-byte header, triangle count, per triangle the facet normal, three vertices and a
/// zero attribute word. STL has no shared vertices or colours.
public enum STLExporter {
    public static func encode(_ m: Mesh) -> [UInt8] {
        var w = ByteWriter()
        var head = Array("binary STL written by hunyuan".utf8)
        head += [UInt8](repeating: 32, count: 80 - head.count)
        w.bytes = head
        w.u32(UInt32(m.faceCount))
        w.bytes.reserveCapacity(84 + m.faceCount * 50)
        for f in 0..<m.faceCount {
            let a = m.vertex(Int(m.faces[3 * f])), b = m.vertex(Int(m.faces[3 * f + 1])), c = m.vertex(Int(m.faces[3 * f + 2]))
            let n = simdNormalize(simdCross(b - a, c - a))
            for p in [n, a, b, c] { w.f32(p.x); w.f32(p.y); w.f32(p.z) }
            w.u16(0)
        }
        return w.bytes
    }
}

/// Reads binary STL (and ASCII STL), welding bit-identical vertex positions into shared vertices.
public enum STLImporter {
    public static func parse(_ b: UnsafeRawBufferPointer, context: String) throws -> Mesh {
        let r = ByteReader(b, context: context)
        var tris: [Float] = []
        if b.count >= 84, try Int(r.u32(at: 80)) * 50 + 84 == b.count {
            let n = Int(try r.u32(at: 80))
            tris.reserveCapacity(n * 9)
            for f in 0..<n {
                let base = 84 + 50 * f + 12
                for k in 0..<9 { tris.append(try r.f32(at: base + 4 * k)) }
            }
        } else {
            let text = String(decoding: b, as: UTF8.self)
            guard text.hasPrefix("solid") else { throw HYError.format("\(context): not an STL file (size does not match a binary STL and no 'solid' header)") }
            var expectNumbers = 0
            for tok in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }) {
                if expectNumbers > 0 {
                    guard let v = Float(tok) else { throw HYError.format("\(context): bad number '\(tok)'") }
                    tris.append(v); expectNumbers -= 1
                } else if tok == "vertex" { expectNumbers = 3 }
            }
            guard tris.count % 9 == 0 else { throw HYError.format("\(context): facet without three vertices") }
        }
        var m = Mesh()
        var index: [SIMD3<UInt32>: UInt32] = [:]
        for i in 0..<(tris.count / 3) {
            let p = SIMD3(tris[3 * i], tris[3 * i + 1], tris[3 * i + 2])
            let key = SIMD3(p.x.bitPattern, p.y.bitPattern, p.z.bitPattern)
            if let j = index[key] { m.faces.append(j) } else {
                let j = UInt32(m.vertexCount)
                index[key] = j
                m.positions += [p.x, p.y, p.z]
                m.faces.append(j)
            }
        }
        return m
    }
}

import HunyuanImage

/// GLB (binary glTF 2.0) writer: one mesh, one primitive (triangles) with POSITION (float VEC3, with
/// min/max), NORMAL (when present), COLOR_0 (normalized unsigned byte VEC4), TEXCOORD_0 (when UVs),
/// UNSIGNED_INT indices, and one PBR metallic-roughness material (white base colour, metallic 0,
/// roughness 1) so viewers show the vertex colours (glTF multiplies base colour by COLOR_0), or the
/// texture (embedded PNG) when the mesh has UVs and a texture. Every chunk and buffer view is 4-byte
/// aligned and all byte lengths are exact.
public enum GLBExporter {
    public static func encode(_ m: Mesh) throws -> [UInt8] {
        var bin = ByteWriter()
        var views: [JSONValue] = [], accessors: [JSONValue] = []
        var attributes: [(String, JSONValue)] = []
        let v = m.vertexCount

        func addView(_ start: Int, target: Int?) -> Int {
            var o: [(String, JSONValue)] = [("buffer", .int(0)), ("byteOffset", .int(Int64(start))),
                                            ("byteLength", .int(Int64(bin.bytes.count - start)))]
            if let target { o.append(("target", .int(Int64(target)))) }
            views.append(.object(o))
            bin.pad(to: 4)
            return views.count - 1
        }
        func addAccessor(view: Int, componentType: Int, count: Int, type: String, normalized: Bool = false,
                         min: [Float]? = nil, max: [Float]? = nil) -> Int {
            var o: [(String, JSONValue)] = [("bufferView", .int(Int64(view))), ("componentType", .int(Int64(componentType))),
                                            ("count", .int(Int64(count))), ("type", .string(type))]
            if normalized { o.append(("normalized", .bool(true))) }
            if let min { o.append(("min", .array(min.map { .double(Double($0)) }))) }
            if let max { o.append(("max", .array(max.map { .double(Double($0)) }))) }
            accessors.append(.object(o))
            return accessors.count - 1
        }

        // POSITION
        var start = bin.bytes.count
        for x in m.positions { bin.f32(x) }
        let bb = m.bounds
        attributes.append(("POSITION", .int(Int64(addAccessor(view: addView(start, target: 34962), componentType: 5126, count: v,
                                                              type: "VEC3", min: [bb.min.x, bb.min.y, bb.min.z],
                                                              max: [bb.max.x, bb.max.y, bb.max.z])))))
        if let n = m.normals {
            start = bin.bytes.count
            for x in n { bin.f32(x) }
            attributes.append(("NORMAL", .int(Int64(addAccessor(view: addView(start, target: 34962), componentType: 5126, count: v, type: "VEC3")))))
        }
        if let t = m.uvs {
            start = bin.bytes.count
            for x in t { bin.f32(x) }
            attributes.append(("TEXCOORD_0", .int(Int64(addAccessor(view: addView(start, target: 34962), componentType: 5126, count: v, type: "VEC2")))))
        }
        if m.colors != nil {
            start = bin.bytes.count
            for i in 0..<v {
                let c = m.rgba(i)
                bin.u8(colorToU8(c.x)); bin.u8(colorToU8(c.y)); bin.u8(colorToU8(c.z)); bin.u8(colorToU8(c.w))
            }
            attributes.append(("COLOR_0", .int(Int64(addAccessor(view: addView(start, target: 34962), componentType: 5121, count: v,
                                                                 type: "VEC4", normalized: true)))))
        }
        start = bin.bytes.count
        for i in m.faces { bin.u32(i) }
        let idxAcc = addAccessor(view: addView(start, target: 34963), componentType: 5125, count: m.faces.count, type: "SCALAR")

        var pbr: [(String, JSONValue)] = [("baseColorFactor", .array([.double(1), .double(1), .double(1), .double(1)])),
                                          ("metallicFactor", .double(0)), ("roughnessFactor", .double(1))]
        var extra: [(String, JSONValue)] = []
        if let tex = m.texture, m.uvs != nil {
            let png = try PNGEncoder.encode(tex)
            start = bin.bytes.count
            bin.bytes += png
            let view = addView(start, target: nil)
            extra.append(("images", .array([.object([("bufferView", .int(Int64(view))), ("mimeType", .string("image/png"))])])))
            extra.append(("samplers", .array([.object([("magFilter", .int(9729)), ("minFilter", .int(9987)),
                                                       ("wrapS", .int(10497)), ("wrapT", .int(10497))])])))
            extra.append(("textures", .array([.object([("sampler", .int(0)), ("source", .int(0))])])))
            pbr.append(("baseColorTexture", .object([("index", .int(0))])))
        }
        let hasAlpha = m.colors != nil && m.colorChannels == 4
        var json: [(String, JSONValue)] = [
            ("asset", .object([("version", .string("2.0")), ("generator", .string("hunyuan \(HunyuanVersion.string)"))])),
            ("scene", .int(0)),
            ("scenes", .array([.object([("nodes", .array([.int(0)]))])])),
            ("nodes", .array([.object([("mesh", .int(0))])])),
            ("meshes", .array([.object([("primitives", .array([.object([
                ("attributes", .object(attributes)), ("indices", .int(Int64(idxAcc))),
                ("material", .int(0)), ("mode", .int(4))])]))])])),
            ("materials", .array([.object([("pbrMetallicRoughness", .object(pbr)),
                                           ("alphaMode", .string(hasAlpha ? "BLEND" : "OPAQUE"))])])),
            ("accessors", .array(accessors)),
            ("bufferViews", .array(views)),
            ("buffers", .array([.object([("byteLength", .int(Int64(bin.bytes.count)))])])),
        ]
        json += extra
        var jsonBytes = Array(JSONValue.object(json).serialized().utf8)
        while jsonBytes.count % 4 != 0 { jsonBytes.append(0x20) }
        bin.pad(to: 4)
        var w = ByteWriter()
        let total = 12 + 8 + jsonBytes.count + 8 + bin.bytes.count
        w.u32(0x4654_6C67); w.u32(2); w.u32(UInt32(total))
        w.u32(UInt32(jsonBytes.count)); w.u32(0x4E4F_534A); w.bytes += jsonBytes
        w.u32(UInt32(bin.bytes.count)); w.u32(0x004E_4942); w.bytes += bin.bytes
        return w.bytes
    }
}

/// GLB reader: every triangle primitive of every mesh is appended (node transforms are not applied).
/// Reads POSITION, NORMAL, COLOR_0 (float / normalized ubyte / ushort, VEC3 or VEC4), TEXCOORD_0 and
/// indices (ubyte / ushort / uint, or none). Every offset and length is checked against the buffer.
public enum GLBImporter {
    public static func parse(_ b: UnsafeRawBufferPointer, context: String) throws -> Mesh {
        let r = ByteReader(b, context: context)
        guard b.count >= 20, try r.u32(at: 0) == 0x4654_6C67 else { throw HYError.format("\(context): not a GLB file (bad magic)") }
        guard try r.u32(at: 4) == 2 else { throw HYError.unsupported("\(context): glTF container version \(try r.u32(at: 4))") }
        let jsonLen = Int(try r.u32(at: 12))
        guard try r.u32(at: 16) == 0x4E4F_534A else { throw HYError.format("\(context): first chunk is not JSON") }
        try r.need(jsonLen, at: 20)
        let json = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: b[20..<(20 + jsonLen)]), context: context)
        var binStart = 0, binLen = 0
        let p = 20 + jsonLen
        if p + 8 <= b.count {
            binLen = Int(try r.u32(at: p))
            guard try r.u32(at: p + 4) == 0x004E_4942 else { throw HYError.format("\(context): second chunk is not BIN") }
            binStart = p + 8
            try r.need(binLen, at: binStart)
        }
        let accessors = json["accessors"]?.arrayValue ?? []
        let views = json["bufferViews"]?.arrayValue ?? []

        func readAccessor(_ idx: JSONValue?, comps want: [Int]) throws -> (values: [Float], comps: Int, ctype: Int, normalized: Bool) {
            guard let i = idx?.intValue, i >= 0, Int(i) < accessors.count else { throw HYError.format("\(context): bad accessor index") }
            let a = accessors[Int(i)]
            guard let vi = a["bufferView"]?.intValue, vi >= 0, Int(vi) < views.count else { throw HYError.format("\(context): accessor \(i) has no valid bufferView") }
            let view = views[Int(vi)]
            let count = Int(a["count"]?.intValue ?? -1), ctype = Int(a["componentType"]?.intValue ?? 0)
            let comps: Int
            switch a["type"]?.stringValue ?? "" {
            case "SCALAR": comps = 1
            case "VEC2": comps = 2
            case "VEC3": comps = 3
            case "VEC4": comps = 4
            default: throw HYError.format("\(context): accessor \(i) has an unsupported type")
            }
            guard want.contains(comps) else { throw HYError.format("\(context): accessor \(i) has \(comps) components") }
            let csize: Int
            switch ctype {
            case 5120, 5121: csize = 1
            case 5122, 5123: csize = 2
            case 5125, 5126: csize = 4
            default: throw HYError.format("\(context): accessor \(i) has component type \(ctype)")
            }
            guard count >= 0 else { throw HYError.format("\(context): accessor \(i) has a bad count") }
            let vOff = Int(view["byteOffset"]?.intValue ?? 0), vLen = Int(view["byteLength"]?.intValue ?? -1)
            let aOff = Int(a["byteOffset"]?.intValue ?? 0)
            let stride = Int(view["byteStride"]?.intValue ?? Int64(comps * csize))
            guard vOff >= 0, vLen >= 0, aOff >= 0, stride >= comps * csize, stride <= 1 << 20,
                  vOff <= binLen, vLen <= binLen - vOff else {
                throw HYError.format("\(context): bufferView \(vi) lies outside the binary chunk")
            }
            if count > 0 {
                let need = try checkedAdd(aOff, try checkedAdd(try checkedMul(stride, count - 1, context), comps * csize, context), context)
                guard need <= vLen else { throw HYError.format("\(context): accessor \(i) overruns its bufferView") }
            }
            let normalized = a["normalized"]?.boolValue ?? false
            var out = [Float](); out.reserveCapacity(count * comps)
            for e in 0..<count {
                for c in 0..<comps {
                    let q = binStart + vOff + aOff + e * stride + c * csize
                    switch ctype {
                    case 5126: out.append(try r.f32(at: q))
                    case 5125: out.append(Float(bitPattern: try r.u32(at: q)))  // raw bits; decoded by caller
                    case 5123: out.append(Float(try r.u16(at: q)))
                    case 5122: out.append(Float(Int16(bitPattern: try r.u16(at: q))))
                    case 5121: out.append(Float(try r.u8(at: q)))
                    default: out.append(Float(Int8(bitPattern: try r.u8(at: q))))
                    }
                }
            }
            return (out, comps, ctype, normalized)
        }

        var m = Mesh()
        var colors: [Float] = [], normals: [Float] = [], uvs: [Float] = []
        var anyColor = false, allNormals = true, allUV = true
        for mesh in json["meshes"]?.arrayValue ?? [] {
            for prim in mesh["primitives"]?.arrayValue ?? [] {
                let mode = prim["mode"]?.intValue ?? 4
                guard mode == 4 else { continue }
                guard let attrs = prim["attributes"] else { continue }
                let base = m.vertexCount
                let pos = try readAccessor(attrs["POSITION"], comps: [3])
                let nv = pos.values.count / 3
                m.positions += pos.values
                if let n = attrs["NORMAL"] { normals += try readAccessor(n, comps: [3]).values } else { allNormals = false }
                if let t = attrs["TEXCOORD_0"] { uvs += try readAccessor(t, comps: [2]).values } else { allUV = false }
                if let c = attrs["COLOR_0"] {
                    let cv = try readAccessor(c, comps: [3, 4])
                    let scale: Float = cv.ctype == 5121 ? 255 : (cv.ctype == 5123 ? 65535 : 1)
                    for e in 0..<nv {
                        for k in 0..<4 { colors.append(k < cv.comps ? cv.values[e * cv.comps + k] / scale : 1) }
                    }
                    anyColor = true
                } else {
                    colors += [Float](repeating: 1, count: nv * 4)
                }
                if prim["indices"] != nil {
                    let idx = try readAccessor(prim["indices"], comps: [1])
                    for x in idx.values {
                        let i = idx.ctype == 5125 ? Int(x.bitPattern) : Int(x)
                        guard i < nv else { throw HYError.format("\(context): index \(i) out of range (\(nv) vertices)") }
                        m.faces.append(UInt32(base + i))
                    }
                } else {
                    for i in 0..<(nv - nv % 3) { m.faces.append(UInt32(base + i)) }
                }
            }
        }
        if anyColor {
            let opaque = stride(from: 3, to: colors.count, by: 4).allSatisfy { colors[$0] == 1 }
            if opaque {
                var rgb = [Float](); rgb.reserveCapacity(colors.count / 4 * 3)
                for i in 0..<(colors.count / 4) { rgb += colors[(4 * i)..<(4 * i + 3)] }
                m.colors = rgb; m.colorChannels = 3
            } else { m.colors = colors; m.colorChannels = 4 }
        }
        if allNormals && !normals.isEmpty { m.normals = normals }
        if allUV && !uvs.isEmpty { m.uvs = uvs }
        return m
    }
}

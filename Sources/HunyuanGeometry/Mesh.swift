import HunyuanImage

/// A triangle mesh as plain flat arrays (trimesh-style), cheap to hand to C and Python.
///
/// - `positions`: [V*3] Float, xyz per vertex.
/// - `faces`: [F*3] UInt32, vertex indices, counter-clockwise seen from outside (right-hand normal
///   points out of the solid).
/// - `colors`: optional [V*colorChannels] Float in [0, 1], RGB (3) or RGBA (4) per vertex.
/// - `normals`: optional [V*3] Float, unit per-vertex normals.
/// - `uvs`: optional [V*2] Float texture coordinates, with `texture` the image they index.
///
/// Derived data (bounds, area, volume, edge statistics) is computed on request; mutations are the
/// verbs in MeshOps.swift. A Mesh is a value: copies are independent.
public struct Mesh: Sendable {
    public var positions: [Float]
    public var faces: [UInt32]
    public var colors: [Float]?
    public var colorChannels: Int
    public var normals: [Float]?
    public var uvs: [Float]?
    public var texture: RGBAImage?

    public init(positions: [Float] = [], faces: [UInt32] = [], colors: [Float]? = nil, colorChannels: Int = 3,
                normals: [Float]? = nil, uvs: [Float]? = nil, texture: RGBAImage? = nil) {
        self.positions = positions
        self.faces = faces
        self.colors = colors
        self.colorChannels = colorChannels
        self.normals = normals
        self.uvs = uvs
        self.texture = texture
    }

    /// Builds a mesh with 8-bit colours (RGB or RGBA per vertex, 0...255).
    public init(positions: [Float], faces: [UInt32], colorsU8: [UInt8], colorChannels: Int) {
        self.init(positions: positions, faces: faces,
                  colors: colorsU8.map { Float($0) / 255 }, colorChannels: colorChannels)
    }

    public var vertexCount: Int { positions.count / 3 }
    public var faceCount: Int { faces.count / 3 }

    /// Checks the arrays' lengths and that every face index is in range. Throws `invalidArgument`.
    public func validate(_ context: String = "mesh") throws {
        guard positions.count % 3 == 0 else { throw HYError.invalidArgument("\(context): positions length \(positions.count) is not a multiple of 3") }
        guard faces.count % 3 == 0 else { throw HYError.invalidArgument("\(context): faces length \(faces.count) is not a multiple of 3") }
        let v = vertexCount
        if let c = colors {
            guard colorChannels == 3 || colorChannels == 4 else { throw HYError.invalidArgument("\(context): colour channels must be 3 or 4, not \(colorChannels)") }
            guard c.count == v * colorChannels else { throw HYError.invalidArgument("\(context): \(c.count) colour values for \(v) vertices × \(colorChannels)") }
        }
        if let n = normals, n.count != v * 3 { throw HYError.invalidArgument("\(context): \(n.count) normal values for \(v) vertices") }
        if let t = uvs, t.count != v * 2 { throw HYError.invalidArgument("\(context): \(t.count) uv values for \(v) vertices") }
        for i in faces where Int(i) >= v {
            throw HYError.invalidArgument("\(context): face index \(i) out of range (\(v) vertices)")
        }
        for p in positions where !p.isFinite {
            throw HYError.invalidArgument("\(context): a vertex position is NaN or infinite")
        }
    }

    /// Axis-aligned bounds (min xyz, max xyz); zeros for an empty mesh.
    public var bounds: (min: SIMD3<Float>, max: SIMD3<Float>) {
        if positions.count < 3 { return (.zero, .zero) }
        var lo = SIMD3<Float>(repeating: .infinity), hi = SIMD3<Float>(repeating: -.infinity)
        for i in 0..<vertexCount {
            let p = vertex(i)
            lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p)
        }
        return (lo, hi)
    }

    @inlinable public func vertex(_ i: Int) -> SIMD3<Float> {
        SIMD3(positions[3 * i], positions[3 * i + 1], positions[3 * i + 2])
    }

    @inlinable public mutating func setVertex(_ i: Int, _ p: SIMD3<Float>) {
        positions[3 * i] = p.x; positions[3 * i + 1] = p.y; positions[3 * i + 2] = p.z
    }

    /// Total surface area.
    public var area: Double {
        var a = 0.0
        for f in 0..<faceCount {
            let (p0, p1, p2) = triangleD(f)
            a += simdLength(simdCross(p1 - p0, p2 - p0)) / 2
        }
        return a
    }

    /// Signed enclosed volume (divergence theorem); positive for a closed mesh wound outward.
    public var signedVolume: Double {
        var v = 0.0
        for f in 0..<faceCount {
            let (p0, p1, p2) = triangleD(f)
            v += simdDot(p0, simdCross(p1, p2))
        }
        return v / 6
    }

    func triangleD(_ f: Int) -> (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>) {
        let a = Int(faces[3 * f]), b = Int(faces[3 * f + 1]), c = Int(faces[3 * f + 2])
        return (SIMD3<Double>(vertex(a)), SIMD3<Double>(vertex(b)), SIMD3<Double>(vertex(c)))
    }

    /// Edge statistics of the face set: closed (every undirected edge used by exactly two faces),
    /// consistently wound (every directed edge used once, i.e. each shared edge is traversed in
    /// opposite directions), number of boundary / non-manifold edges and the Euler characteristic
    /// V - E + F over referenced vertices.
    public struct Topology: Sendable {
        public var edges = 0
        public var boundaryEdges = 0
        public var nonManifoldEdges = 0
        public var inconsistentEdges = 0
        public var referencedVertices = 0
        public var watertight: Bool { boundaryEdges == 0 && nonManifoldEdges == 0 }
        public var windingConsistent: Bool { inconsistentEdges == 0 }
        public var eulerCharacteristic = 0
    }

    public var topology: Topology {
        var t = Topology()
        var keys = [UInt64](); keys.reserveCapacity(faces.count)
        var used = [Bool](repeating: false, count: vertexCount)
        for f in 0..<faceCount {
            for k in 0..<3 {
                let a = faces[3 * f + k], b = faces[3 * f + (k + 1) % 3]
                used[Int(a)] = true
                // Directed key in low bit order: min, max, direction bit kept separately.
                let lo = min(a, b), hi = max(a, b)
                keys.append((UInt64(lo) << 33) | (UInt64(hi) << 1) | (a < b ? 0 : 1))
            }
        }
        keys.sort()
        var i = 0
        while i < keys.count {
            var j = i
            var fwd = 0, bwd = 0
            while j < keys.count && keys[j] >> 1 == keys[i] >> 1 {
                if keys[j] & 1 == 0 { fwd += 1 } else { bwd += 1 }
                j += 1
            }
            let n = j - i
            t.edges += 1
            if n == 1 { t.boundaryEdges += 1 } else if n > 2 { t.nonManifoldEdges += 1 }
            if fwd > 1 || bwd > 1 { t.inconsistentEdges += 1 }
            i = j
        }
        t.referencedVertices = used.reduce(0) { $0 + ($1 ? 1 : 0) }
        t.eulerCharacteristic = t.referencedVertices - t.edges + faceCount
        return t
    }

    /// Colour of vertex `i` as RGBA (alpha 1 when the mesh has RGB colours or none: white).
    public func rgba(_ i: Int) -> SIMD4<Float> {
        guard let c = colors else { return SIMD4(1, 1, 1, 1) }
        let k = colorChannels
        return SIMD4(c[k * i], c[k * i + 1], c[k * i + 2], k == 4 ? c[k * i + 3] : 1)
    }

    /// Samples per-vertex colours from `color(position) -> RGB(A)` in [0, 1].
    public mutating func sampleColors(channels: Int = 3, _ color: (SIMD3<Float>) -> SIMD4<Float>) {
        var out = [Float](); out.reserveCapacity(vertexCount * channels)
        for i in 0..<vertexCount {
            let c = color(vertex(i))
            out.append(c.x); out.append(c.y); out.append(c.z)
            if channels == 4 { out.append(c.w) }
        }
        colors = out
        colorChannels = channels
    }
}

@inlinable func simdDot<T: FloatingPoint & SIMDScalar>(_ a: SIMD3<T>, _ b: SIMD3<T>) -> T { (a * b).sum() }
@inlinable func simdCross<T: FloatingPoint & SIMDScalar>(_ a: SIMD3<T>, _ b: SIMD3<T>) -> SIMD3<T> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inlinable func simdLength<T: FloatingPoint & SIMDScalar>(_ a: SIMD3<T>) -> T { simdDot(a, a).squareRoot() }
@inlinable func simdNormalize(_ a: SIMD3<Float>) -> SIMD3<Float> {
    let l = simdLength(a)
    return l > 0 ? a / l : a
}

extension Mesh {
    /// Samples per-vertex colours in batches from a callback that maps positions [n*3] to colours
    /// [n*channels] in [0, 1] (e.g. a reconstruction model's colour head). Called on the calling
    /// thread with at most `batch` vertices at a time; a thrown error is rethrown and leaves the mesh
    /// unchanged. Non-finite colours are an invalidArgument error.
    public mutating func sampleColors(channels: Int = 3, batch: Int = 65536,
                                      _ color: (_ positions: UnsafeBufferPointer<Float>, _ out: UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        guard channels == 3 || channels == 4 else { throw HYError.invalidArgument("colour channels must be 3 or 4, not \(channels)") }
        var out = [Float](repeating: 0, count: vertexCount * channels)
        let step = max(1, batch)
        try positions.withUnsafeBufferPointer { p in
            try out.withUnsafeMutableBufferPointer { o in
                var i = 0
                while i < vertexCount {
                    let n = min(step, vertexCount - i)
                    try color(UnsafeBufferPointer(rebasing: p[(3 * i)..<(3 * (i + n))]),
                              UnsafeMutableBufferPointer(rebasing: o[(channels * i)..<(channels * (i + n))]))
                    i += n
                }
            }
        }
        guard out.allSatisfy({ $0.isFinite }) else { throw HYError.invalidArgument("colour callback returned NaN or infinity") }
        colors = out.map { min(max($0, 0), 1) }
        colorChannels = channels
    }

    /// Samples per-vertex colours by trilinear interpolation of a colour grid `grid` [X, Y, Z, channels]
    /// (C order) laid over the same samples as the scalar grid the mesh came from: `bounds` as given
    /// to MarchingCubes.extract (nil: positions are in voxel-index units).
    public mutating func sampleColors(grid: [Float], dims: SIMD3<Int>, channels: Int,
                                      bounds: MarchingCubes.Bounds? = nil) throws {
        guard channels == 3 || channels == 4 else { throw HYError.invalidArgument("colour channels must be 3 or 4, not \(channels)") }
        try MarchingCubes.checkDims(dims)
        let n = try checkedMul(try checkedMul(try checkedMul(dims.x, dims.y, "colour grid"), dims.z, "colour grid"), channels, "colour grid")
        guard grid.count == n else { throw HYError.invalidArgument("colour grid has \(grid.count) values, dims \(dims) × \(channels) need \(n)") }
        var origin = SIMD3<Double>.zero, spacing = SIMD3<Double>(1, 1, 1)
        if let b = bounds {
            origin = b.min
            spacing = (b.max - b.min) / SIMD3(Double(dims.x - 1), Double(dims.y - 1), Double(dims.z - 1))
        }
        let hi = SIMD3<Double>(Double(dims.x - 1), Double(dims.y - 1), Double(dims.z - 1))
        var out = [Float](repeating: 0, count: vertexCount * channels)
        for i in 0..<vertexCount {
            var q = (SIMD3<Double>(vertex(i)) - origin) / spacing
            for a in 0..<3 { q[a] = q[a].isFinite ? min(max(q[a], 0), hi[a]) : 0 }
            let b0 = SIMD3<Int>(min(Int(q.x), dims.x - 2), min(Int(q.y), dims.y - 2), min(Int(q.z), dims.z - 2))
            let f = q - SIMD3<Double>(Double(b0.x), Double(b0.y), Double(b0.z))
            for c in 0..<channels {
                var acc = 0.0
                for k in 0..<8 {
                    let dx = k & 1, dy = (k >> 1) & 1, dz = k >> 2
                    let w = (dx == 1 ? f.x : 1 - f.x) * (dy == 1 ? f.y : 1 - f.y) * (dz == 1 ? f.z : 1 - f.z)
                    acc += w * Double(grid[(((b0.x + dx) * dims.y + b0.y + dy) * dims.z + b0.z + dz) * channels + c])
                }
                out[i * channels + c] = Float(min(max(acc, 0), 1))
            }
        }
        colors = out
        colorChannels = channels
    }
}

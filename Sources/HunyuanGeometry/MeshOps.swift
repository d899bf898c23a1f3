/// Mesh clean-up, smoothing, normals and simplification. Every operation takes a mesh and returns a
/// new one; per-vertex colours, normals and UVs follow their vertices (averaged when vertices merge,
/// interpolated along collapsed edges). Single-threaded; safe to call from any thread.
public enum MeshOps {
    // MARK: vertex bookkeeping

    /// floor(v) as a grid-cell index, clamped to Int32 (no trap on huge or non-finite values).
    @inline(__always) static func cellIndex(_ v: Float) -> Int32 {
        guard v.isFinite else { return 0 }
        return Int32(max(-2.0e9, min(2.0e9, v.rounded(.down))))
    }

    /// Keeps the vertices with `map[i] >= 0`, renumbered to `map[i]` (`count` of them); when several
    /// old vertices map to one new vertex their attributes are averaged. Faces are remapped.
    static func remapVertices(_ m: Mesh, map: [Int], count: Int) -> Mesh {
        var out = Mesh()
        out.colorChannels = m.colorChannels
        var pos = [Double](repeating: 0, count: count * 3)
        var n = [Int](repeating: 0, count: count)
        var col: [Double]? = m.colors != nil ? [Double](repeating: 0, count: count * m.colorChannels) : nil
        var nor: [Double]? = m.normals != nil ? [Double](repeating: 0, count: count * 3) : nil
        var uv: [Double]? = m.uvs != nil ? [Double](repeating: 0, count: count * 2) : nil
        let k = m.colorChannels
        for i in 0..<m.vertexCount where map[i] >= 0 {
            let j = map[i]
            n[j] += 1
            for a in 0..<3 { pos[3 * j + a] += Double(m.positions[3 * i + a]) }
            if let c = m.colors { for a in 0..<k { col![k * j + a] += Double(c[k * i + a]) } }
            if let v = m.normals { for a in 0..<3 { nor![3 * j + a] += Double(v[3 * i + a]) } }
            if let t = m.uvs { for a in 0..<2 { uv![2 * j + a] += Double(t[2 * i + a]) } }
        }
        func avg(_ a: [Double], _ w: Int) -> [Float] {
            var r = [Float](repeating: 0, count: a.count)
            for j in 0..<count where n[j] > 0 { for q in 0..<w { r[w * j + q] = Float(a[w * j + q] / Double(n[j])) } }
            return r
        }
        out.positions = avg(pos, 3)
        if let col { out.colors = avg(col, k) }
        if let nor {
            var r = avg(nor, 3)
            for j in 0..<count {
                let v = simdNormalize(SIMD3(r[3 * j], r[3 * j + 1], r[3 * j + 2]))
                r[3 * j] = v.x; r[3 * j + 1] = v.y; r[3 * j + 2] = v.z
            }
            out.normals = r
        }
        if let uv { out.uvs = avg(uv, 2) }
        out.texture = m.texture
        out.faces = m.faces.map { UInt32(map[Int($0)]) }
        return out
    }

    /// Drops vertices no face uses.
    public static func removeUnreferencedVertices(_ m: Mesh) -> Mesh {
        var used = [Bool](repeating: false, count: m.vertexCount)
        for f in m.faces { used[Int(f)] = true }
        var map = [Int](repeating: -1, count: m.vertexCount)
        var c = 0
        for i in 0..<m.vertexCount where used[i] { map[i] = c; c += 1 }
        return c == m.vertexCount ? m : remapVertices(m, map: map, count: c)
    }

    /// Merges vertices closer than `epsilon` (0: bit-identical positions) into the first of them;
    /// attributes are averaged. Faces are kept (possibly degenerate: see `removeDegenerateFaces`).
    public static func mergeVertices(_ m: Mesh, epsilon: Float = 0) -> Mesh {
        let nv = m.vertexCount
        var map = [Int](repeating: -1, count: nv)
        var count = 0
        if epsilon <= 0 {
            var seen: [SIMD3<UInt32>: Int] = [:]
            for i in 0..<nv {
                let p = m.vertex(i)
                let key = SIMD3((p.x + 0).bitPattern, (p.y + 0).bitPattern, (p.z + 0).bitPattern)
                if let j = seen[key] { map[i] = j } else { seen[key] = count; map[i] = count; count += 1 }
            }
        } else {
            var grid: [SIMD3<Int32>: [Int]] = [:]   // cell -> representative vertices (old index)
            var rep = [Int](repeating: -1, count: nv)
            let e2 = epsilon * epsilon
            for i in 0..<nv {
                let p = m.vertex(i)
                let c = SIMD3<Int32>(cellIndex(p.x / epsilon), cellIndex(p.y / epsilon), cellIndex(p.z / epsilon))
                var found = -1
                search: for dx in -1...1 { for dy in -1...1 { for dz in -1...1 {
                    guard let list = grid[c &+ SIMD3(Int32(dx), Int32(dy), Int32(dz))] else { continue }
                    for j in list {
                        let d = m.vertex(j) - p
                        if simdDot(d, d) <= e2 { found = j; break search }
                    }
                } } }
                if found >= 0 { map[i] = map[found]; rep[i] = found } else {
                    map[i] = count; count += 1
                    grid[c, default: []].append(i)
                }
            }
        }
        return remapVertices(m, map: map, count: count)
    }

    /// Drops faces that use a vertex twice, and repeated faces (same three vertices in any order;
    /// the first is kept).
    public static func removeDegenerateAndDuplicateFaces(_ m: Mesh) -> Mesh {
        var out = m
        out.faces = []
        out.faces.reserveCapacity(m.faces.count)
        var seen = Set<SIMD3<UInt32>>()
        for f in 0..<m.faceCount {
            let a = m.faces[3 * f], b = m.faces[3 * f + 1], c = m.faces[3 * f + 2]
            if a == b || b == c || a == c { continue }
            let lo = min(a, b, c), hi = max(a, b, c), mid = a ^ b ^ c ^ lo ^ hi
            if !seen.insert(SIMD3(lo, mid, hi)).inserted { continue }
            out.faces += [a, b, c]
        }
        return out
    }

    /// merge vertices (ε) → drop degenerate/duplicate faces → drop unreferenced vertices.
    public static func clean(_ m: Mesh, mergeEpsilon: Float = 0) throws -> Mesh {
        try m.validate("clean")
        return removeUnreferencedVertices(removeDegenerateAndDuplicateFaces(mergeVertices(m, epsilon: mergeEpsilon)))
    }

    // MARK: components

    /// Component id per face (vertex-connected), and the number of components.
    public static func faceComponents(_ m: Mesh) -> (ids: [Int], count: Int) {
        var parent = Array(0..<m.vertexCount)
        func find(_ x: Int) -> Int {
            var x = x
            while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }
            return x
        }
        for f in 0..<m.faceCount {
            let a = find(Int(m.faces[3 * f]))
            for k in 1..<3 {
                let b = find(Int(m.faces[3 * f + k]))
                if a != b { parent[b] = a }
            }
        }
        var label = [Int](repeating: -1, count: m.vertexCount)
        var ids = [Int](repeating: 0, count: m.faceCount)
        var n = 0
        for f in 0..<m.faceCount {
            let r = find(Int(m.faces[3 * f]))
            if label[r] < 0 { label[r] = n; n += 1 }
            ids[f] = label[r]
        }
        return (ids, n)
    }

    public static func componentCount(_ m: Mesh) -> Int { faceComponents(m).count }

    static func keepFaces(_ m: Mesh, _ keep: (Int) -> Bool) -> Mesh {
        var out = m
        out.faces = []
        for f in 0..<m.faceCount where keep(f) { out.faces += m.faces[(3 * f)..<(3 * f + 3)] }
        return removeUnreferencedVertices(out)
    }

    /// Keeps the `count` components with the most faces.
    public static func keepLargestComponents(_ m: Mesh, count: Int = 1) -> Mesh {
        let (ids, n) = faceComponents(m)
        if n <= count { return m }
        var sizes = [Int](repeating: 0, count: n)
        for i in ids { sizes[i] += 1 }
        let keep = Set((0..<n).sorted { sizes[$0] > sizes[$1] }.prefix(max(0, count)))
        return keepFaces(m) { keep.contains(ids[$0]) }
    }

    /// Drops components with fewer than `minFaces` faces.
    public static func removeSmallComponents(_ m: Mesh, minFaces: Int) -> Mesh {
        let (ids, n) = faceComponents(m)
        var sizes = [Int](repeating: 0, count: n)
        for i in ids { sizes[i] += 1 }
        return keepFaces(m) { sizes[ids[$0]] >= minFaces }
    }

    // MARK: normals and smoothing

    /// Area-weighted vertex normals (unit length; zero for unused vertices).
    public static func vertexNormals(_ m: Mesh) -> [Float] {
        var acc = [SIMD3<Double>](repeating: .zero, count: m.vertexCount)
        for f in 0..<m.faceCount {
            let (p0, p1, p2) = m.triangleD(f)
            let n = simdCross(p1 - p0, p2 - p0)   // length = 2 * area
            for k in 0..<3 { acc[Int(m.faces[3 * f + k])] += n }
        }
        var out = [Float](repeating: 0, count: m.vertexCount * 3)
        for i in 0..<m.vertexCount {
            let l = simdLength(acc[i])
            if l > 0 { let n = acc[i] / l; out[3 * i] = Float(n.x); out[3 * i + 1] = Float(n.y); out[3 * i + 2] = Float(n.z) }
        }
        return out
    }

    /// Vertex adjacency (unique neighbours) in CSR form.
    static func adjacency(_ m: Mesh) -> (start: [Int], nbr: [Int32]) {
        var pairs = [UInt64](); pairs.reserveCapacity(m.faces.count * 2)
        for f in 0..<m.faceCount {
            for k in 0..<3 {
                let a = UInt64(m.faces[3 * f + k]), b = UInt64(m.faces[3 * f + (k + 1) % 3])
                pairs.append(a << 32 | b); pairs.append(b << 32 | a)
            }
        }
        pairs.sort()
        var start = [Int](repeating: 0, count: m.vertexCount + 1)
        var nbr = [Int32](); nbr.reserveCapacity(pairs.count / 2)
        var last = UInt64.max
        for p in pairs where p != last {
            last = p
            start[Int(p >> 32) + 1] += 1
            nbr.append(Int32(p & 0xFFFF_FFFF))
        }
        for i in 0..<m.vertexCount { start[i + 1] += start[i] }
        return (start, nbr)
    }

    static func laplacianStep(_ p: inout [Float], _ adj: (start: [Int], nbr: [Int32]), _ lambda: Float) {
        let old = p
        for i in 0..<(p.count / 3) {
            let s = adj.start[i], e = adj.start[i + 1]
            if e == s { continue }
            var c = SIMD3<Float>.zero
            for j in s..<e { let q = Int(adj.nbr[j]); c += SIMD3(old[3 * q], old[3 * q + 1], old[3 * q + 2]) }
            c /= Float(e - s)
            for a in 0..<3 { p[3 * i + a] += lambda * (c[a] - old[3 * i + a]) }
        }
    }

    /// Uniform Laplacian smoothing (shrinks the mesh).
    public static func laplacianSmooth(_ m: Mesh, iterations: Int, lambda: Float = 0.5) -> Mesh {
        var out = m
        let adj = adjacency(m)
        for _ in 0..<max(0, iterations) { laplacianStep(&out.positions, adj, lambda) }
        if out.normals != nil { out.normals = vertexNormals(out) }
        return out
    }

    /// Taubin λ|μ smoothing: alternating shrink and inflate steps, which keeps the volume.
    public static func taubinSmooth(_ m: Mesh, iterations: Int, lambda: Float = 0.5, mu: Float = -0.53) -> Mesh {
        var out = m
        let adj = adjacency(m)
        for _ in 0..<max(0, iterations) {
            laplacianStep(&out.positions, adj, lambda)
            laplacianStep(&out.positions, adj, mu)
        }
        if out.normals != nil { out.normals = vertexNormals(out) }
        return out
    }

    // MARK: vertex clustering

    /// Open3D-style vertex clustering: vertices in the same cubic cell of size `voxelSize` (cells
    /// aligned to the mesh's minimum corner) become one vertex at their average (attributes averaged);
    /// collapsed and repeated faces are dropped.
    public static func vertexClustering(_ m: Mesh, voxelSize: Float) throws -> Mesh {
        guard voxelSize > 0 && voxelSize.isFinite else { throw HYError.invalidArgument("voxel size \(voxelSize) must be positive") }
        try m.validate("vertex clustering")
        let lo = m.bounds.min - voxelSize / 2
        var cell: [SIMD3<Int32>: Int] = [:]
        var map = [Int](repeating: -1, count: m.vertexCount)
        var n = 0
        for i in 0..<m.vertexCount {
            let q = ((m.vertex(i) - lo) / voxelSize).rounded(.down)
            let key = SIMD3<Int32>(cellIndex(q.x), cellIndex(q.y), cellIndex(q.z))
            if let j = cell[key] { map[i] = j } else { cell[key] = n; map[i] = n; n += 1 }
        }
        return removeUnreferencedVertices(removeDegenerateAndDuplicateFaces(remapVertices(m, map: map, count: n)))
    }
}

/// Quadric-error edge-collapse decimation (Garland–Heckbert) that keeps a closed manifold mesh
/// closed and manifold: a collapse is made only when the link condition holds (the edge's endpoints
/// share exactly the neighbours of the faces on that edge), no remaining face flips or degenerates,
/// and boundary edges stay on the boundary. Colours, UVs and normals are interpolated along the edge.
extension MeshOps {
    /// Symmetric 4x4 quadric stored as its 10 upper-triangle entries.
    struct Quadric {
        var q = SIMD16<Double>()   // a², ab, ac, ad, b², bc, bd, c², cd, d² (lanes 10–15 unused)
        static func plane(_ n: SIMD3<Double>, _ d: Double, weight w: Double) -> Quadric {
            var r = Quadric()
            let a = n.x, b = n.y, c = n.z
            r.q = SIMD16(a * a, a * b, a * c, a * d, b * b, b * c, b * d, c * c, c * d, d * d, 0, 0, 0, 0, 0, 0) * w
            return r
        }
        static func += (l: inout Quadric, r: Quadric) { l.q += r.q }
        func error(_ p: SIMD3<Double>) -> Double {
            let x = p.x, y = p.y, z = p.z
            return q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x
                + q[4] * y * y + 2 * q[5] * y * z + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9]
        }
        /// The minimiser, when the 3x3 system is well conditioned.
        func optimum() -> SIMD3<Double>? {
            let a = q[0], b = q[1], c = q[2], d = q[4], e = q[5], f = q[7]
            let det = a * (d * f - e * e) - b * (b * f - c * e) + c * (b * e - c * d)
            let scale = max(abs(a), abs(d), abs(f), 1e-300)
            if abs(det) < 1e-10 * scale * scale * scale { return nil }
            let r = SIMD3(-q[3], -q[6], -q[8])
            let x = (r.x * (d * f - e * e) - b * (r.y * f - e * r.z) + c * (r.y * e - d * r.z)) / det
            let y = (a * (r.y * f - e * r.z) - r.x * (b * f - c * e) + c * (b * r.z - r.y * c)) / det
            let z = (a * (d * r.z - r.y * e) - b * (b * r.z - r.y * c) + r.x * (b * e - c * d)) / det
            return SIMD3(x, y, z)
        }
    }

    /// Decimates `m` to at most `targetFaces` faces (fewer collapses happen when none is allowed).
    /// Throws invalidArgument for a negative target or an invalid mesh.
    public static func decimate(_ m: Mesh, targetFaces: Int) throws -> Mesh {
        guard targetFaces >= 0 else { throw HYError.invalidArgument("target face count \(targetFaces) is negative") }
        try m.validate("decimate")
        if m.faceCount <= targetFaces { return m }
        var d = EdgeCollapse(m)
        d.addFaceQuadrics()
        let edgeUses = d.edgeUseCounts()
        d.addBoundaryPlanes(edgeUses)
        d.queueEdges(edgeUses)
        d.collapse(downTo: targetFaces)
        return d.compacted()
    }
}

/// The state of one `MeshOps.decimate`, in the order of its steps: per-vertex quadrics of the face
/// planes (`addFaceQuadrics`), perpendicular planes along boundary edges (`addBoundaryPlanes`), every
/// edge planned and queued by cost (`queueEdges`), the cheapest allowed collapses (`collapse`), and
/// the surviving faces and vertices as a new mesh (`compacted`).
struct EdgeCollapse {
    typealias Quadric = MeshOps.Quadric

    /// A planned collapse of v into u at `target`; stale once either vertex's version has moved on.
    struct Entry { var cost: Double; var u: Int32; var v: Int32; var vu: UInt32; var vv: UInt32; var target: SIMD3<Double> }

    let input: Mesh
    let nv: Int, nf: Int
    /// The bounding-box diagonal: the scale of the degeneracy and distance thresholds.
    let diag: Double
    var pos: [SIMD3<Double>]
    var faces: [Int32]
    var alive: [Bool]
    var faceCount: Int
    /// Faces around each vertex (may hold dead faces until `dropDeadFaces`).
    var vfaces: [[Int32]]
    var quad: [Quadric]
    var boundaryVertex: [Bool]
    var col: [Float]?, uv: [Float]?, nor: [Float]?
    var version: [UInt32]
    var dead: [Bool]
    var entries: [Entry] = []
    var heap = CostHeap()
    /// Scratch marks over vertices (no allocation per collapse): markU[w] == stamp when w is a
    /// neighbour of u, markV likewise for v.
    var markU: [UInt32], markV: [UInt32]
    var stamp: UInt32 = 0

    init(_ m: Mesh) {
        input = m
        nv = m.vertexCount; nf = m.faceCount
        diag = Double(simdLength(m.bounds.max - m.bounds.min))
        pos = (0..<nv).map { SIMD3<Double>(m.vertex($0)) }
        faces = m.faces.map { Int32($0) }
        alive = [Bool](repeating: true, count: nf)
        faceCount = nf
        vfaces = [[Int32]](repeating: [], count: nv)
        for f in 0..<nf { for k in 0..<3 { vfaces[Int(faces[3 * f + k])].append(Int32(f)) } }
        quad = [Quadric](repeating: Quadric(), count: nv)
        boundaryVertex = [Bool](repeating: false, count: nv)
        col = m.colors; uv = m.uvs; nor = m.normals
        version = [UInt32](repeating: 0, count: nv)
        dead = [Bool](repeating: false, count: nv)
        markU = [UInt32](repeating: 0, count: nv); markV = markU
    }

    @inline(__always) static func edgeKey(_ a: Int, _ b: Int) -> UInt64 { UInt64(min(a, b)) << 32 | UInt64(max(a, b)) }

    /// Each vertex gets the quadrics of its faces' planes, weighted by face area.
    mutating func addFaceQuadrics() {
        for f in 0..<nf {
            let p0 = pos[Int(faces[3 * f])], p1 = pos[Int(faces[3 * f + 1])], p2 = pos[Int(faces[3 * f + 2])]
            let c = simdCross(p1 - p0, p2 - p0)
            let l = simdLength(c)
            if l == 0 { continue }
            let n = c / l
            let q = Quadric.plane(n, -simdDot(n, p0), weight: l / 2)
            for k in 0..<3 { quad[Int(faces[3 * f + k])] += q }
        }
    }

    /// How many faces use each undirected edge (`edgeKey`); 1 marks a boundary edge.
    func edgeUseCounts() -> [UInt64: Int] {
        var uses: [UInt64: Int] = [:]
        for f in 0..<nf { for k in 0..<3 {
            uses[Self.edgeKey(Int(faces[3 * f + k]), Int(faces[3 * f + (k + 1) % 3])), default: 0] += 1
        } }
        return uses
    }

    /// Boundary edges: constrain with a perpendicular plane so the border does not wander.
    mutating func addBoundaryPlanes(_ edgeUses: [UInt64: Int]) {
        for f in 0..<nf { for k in 0..<3 {
            let a = Int(faces[3 * f + k]), b = Int(faces[3 * f + (k + 1) % 3])
            if edgeUses[Self.edgeKey(a, b)] == 1 {
                boundaryVertex[a] = true; boundaryVertex[b] = true
                let p0 = pos[a], p1 = pos[b], p2 = pos[Int(faces[3 * f + (k + 2) % 3])]
                let e = p1 - p0
                let n = simdCross(e, simdCross(p2 - p0, e))
                let l = simdLength(n)
                if l > 0 {
                    let nn = n / l
                    let q = Quadric.plane(nn, -simdDot(nn, p0), weight: simdDot(e, e) * 100)
                    quad[a] += q; quad[b] += q
                }
            }
        } }
    }

    /// Queues every edge once (a boundary edge in its face's direction).
    mutating func queueEdges(_ edgeUses: [UInt64: Int]) {
        for f in 0..<nf { for k in 0..<3 {
            let a = Int(faces[3 * f + k]), b = Int(faces[3 * f + (k + 1) % 3])
            if a < b || edgeUses[Self.edgeKey(a, b)] == 1 { push(a, b) }
        } }
    }

    /// The cost and target of collapsing v into u: the best of u, v, the midpoint and the quadric's
    /// optimum (when near the edge); a boundary vertex stays where it is when the other is interior.
    func plan(_ u: Int, _ v: Int) -> (Double, SIMD3<Double>) {
        var q = quad[u]; q += quad[v]
        var best = (q.error(pos[u]), pos[u])
        if boundaryVertex[u] != boundaryVertex[v] {
            let p = boundaryVertex[u] ? pos[u] : pos[v]
            return (q.error(p), p)
        }
        for p in [pos[v], (pos[u] + pos[v]) / 2] { let e = q.error(p); if e < best.0 { best = (e, p) } }
        if let o = q.optimum(), simdLength(o - (pos[u] + pos[v]) / 2) < 2 * simdLength(pos[u] - pos[v]) + 1e-12 * diag {
            let e = q.error(o); if e <= best.0 { best = (e, o) }
        }
        return (max(best.0, 0), best.1)
    }

    mutating func push(_ u: Int, _ v: Int) {
        let (c, t) = plan(u, v)
        entries.append(Entry(cost: c, u: Int32(u), v: Int32(v), vu: version[u], vv: version[v], target: t))
        heap.push(c, Int32(entries.count - 1))
    }

    @inline(__always) func has(_ f: Int32, _ x: Int) -> Bool {
        let b = 3 * Int(f)
        return Int(faces[b]) == x || Int(faces[b + 1]) == x || Int(faces[b + 2]) == x
    }

    /// True when moving vertex w of its faces (except those holding `other`) to t flips or
    /// degenerates one of them.
    func flips(_ w: Int, _ other: Int, _ t: SIMD3<Double>) -> Bool {
        for f in vfaces[w] where !has(f, other) {
            let b = 3 * Int(f)
            let i0 = Int(faces[b]), i1 = Int(faces[b + 1]), i2 = Int(faces[b + 2])
            let p0 = pos[i0], p1 = pos[i1], p2 = pos[i2]
            let q0 = i0 == w ? t : p0, q1 = i1 == w ? t : p1, q2 = i2 == w ? t : p2
            let n0 = simdCross(p1 - p0, p2 - p0), n1 = simdCross(q1 - q0, q2 - q0)
            let l0 = simdLength(n0), l1 = simdLength(n1)
            if l1 <= 1e-14 * diag * diag || simdDot(n0, n1) < 0.2 * l0 * l1 { return true }
        }
        return false
    }

    mutating func dropDeadFaces(_ w: Int) {
        let alive = self.alive
        vfaces[w].removeAll { !alive[Int($0)] }
    }

    /// Whether v may collapse into u, and the faces on the edge: the link condition (common
    /// neighbours of u and v are exactly the far corners of the shared faces), no pinched border, at
    /// least a tetrahedron left. Returns nil when the collapse is not allowed.
    mutating func sharedFacesIfAllowed(_ u: Int, _ v: Int) -> (Int32, Int32, count: Int)? {
        var shared0: Int32 = -1, shared1: Int32 = -1, nShared = 0
        for f in vfaces[u] where has(f, v) {
            if nShared == 0 { shared0 = f } else { shared1 = f }
            nShared += 1
        }
        if nShared == 0 || nShared > 2 { return nil }
        stamp &+= 1
        var nu = 0, nvc = 0, common = 0
        for f in vfaces[u] { for k in 0..<3 {
            let w = Int(faces[3 * Int(f) + k])
            if w != u && markU[w] != stamp { markU[w] = stamp; nu += 1 }
        } }
        for f in vfaces[v] { for k in 0..<3 {
            let w = Int(faces[3 * Int(f) + k])
            if w != v && markV[w] != stamp { markV[w] = stamp; nvc += 1; if markU[w] == stamp { common += 1 } }
        } }
        if common != nShared { return nil }
        if nShared == 2 && boundaryVertex[u] && boundaryVertex[v] { return nil }  // would pinch the border
        if nShared == 2 && nu + nvc - 2 < 6 { return nil }                       // keep at least a tetrahedron
        return (shared0, shared1, nShared)
    }

    /// Pops the cheapest planned collapses, skipping stale or disallowed ones, until at most
    /// `target` faces are left or nothing remains to try.
    mutating func collapse(downTo target: Int) {
        while faceCount > target, let top = heap.pop() {
            let e = entries[Int(top)]
            let u = Int(e.u), v = Int(e.v)
            if dead[u] || dead[v] || version[u] != e.vu || version[v] != e.vv { continue }
            dropDeadFaces(u)
            dropDeadFaces(v)
            guard let shared = sharedFacesIfAllowed(u, v) else { continue }
            let t = e.target
            if flips(u, v, t) || flips(v, u, t) { continue }
            merge(v, into: u, at: t, shared: shared)
        }
    }

    /// Collapses v into u at t: attributes interpolated along the edge, quadrics summed, the shared
    /// faces dropped, v's faces handed to u, and u's edges planned again.
    mutating func merge(_ v: Int, into u: Int, at t: SIMD3<Double>, shared: (Int32, Int32, count: Int)) {
        let d = pos[v] - pos[u]
        let dd = simdDot(d, d)
        let s = Float(dd > 0 ? min(max(simdDot(t - pos[u], d) / dd, 0), 1) : 0)
        func lerp(_ a: inout [Float]?, _ w: Int) {
            guard a != nil else { return }
            for k in 0..<w { a![w * u + k] = a![w * u + k] * (1 - s) + a![w * v + k] * s }
        }
        lerp(&col, input.colorChannels); lerp(&uv, 2); lerp(&nor, 3)
        pos[u] = t
        quad[u] += quad[v]
        boundaryVertex[u] = boundaryVertex[u] || boundaryVertex[v]
        alive[Int(shared.0)] = false; faceCount -= 1
        if shared.count == 2 { alive[Int(shared.1)] = false; faceCount -= 1 }
        for f in vfaces[v] where alive[Int(f)] {
            let b = 3 * Int(f)
            for k in 0..<3 where faces[b + k] == Int32(v) { faces[b + k] = Int32(u) }
            vfaces[u].append(f)
        }
        dropDeadFaces(u)
        vfaces[v] = []
        dead[v] = true
        version[u] &+= 1
        stamp &+= 1
        for f in vfaces[u] { for k in 0..<3 {
            let w = Int(faces[3 * Int(f) + k])
            if w != u && markU[w] != stamp { markU[w] = stamp; push(u, w) }
        } }
    }

    /// The surviving faces over the surviving vertices (normals recomputed when the input had them).
    func compacted() -> Mesh {
        var out = Mesh()
        out.colorChannels = input.colorChannels
        out.positions = pos.flatMap { [Float($0.x), Float($0.y), Float($0.z)] }
        out.colors = col; out.uvs = uv; out.texture = input.texture
        if nor != nil { out.normals = nor }
        for f in 0..<nf where alive[f] { out.faces += [UInt32(faces[3 * f]), UInt32(faces[3 * f + 1]), UInt32(faces[3 * f + 2])] }
        out = MeshOps.removeUnreferencedVertices(out)
        if out.normals != nil { out.normals = MeshOps.vertexNormals(out) }
        return out
    }
}

/// Binary min-heap of (cost, id) pairs, kept in two flat arrays (hole-based sift, no closures).
struct CostHeap {
    var keys: [Double] = []
    var ids: [Int32] = []

    mutating func push(_ k: Double, _ id: Int32) {
        keys.append(k); ids.append(id)
        var i = keys.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if keys[p] <= k { break }
            keys[i] = keys[p]; ids[i] = ids[p]; i = p
        }
        keys[i] = k; ids[i] = id
    }

    mutating func pop() -> Int32? {
        guard let lastK = keys.last, let lastI = ids.last else { return nil }
        let top = ids[0]
        keys.removeLast(); ids.removeLast()
        let n = keys.count
        if n == 0 { return top }
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && keys[l + 1] < keys[l] { c = l + 1 }
            if keys[c] >= lastK { break }
            keys[i] = keys[c]; ids[i] = ids[c]; i = c
        }
        keys[i] = lastK; ids[i] = lastI
        return top
    }
}

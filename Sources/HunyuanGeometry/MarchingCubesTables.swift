/// Lookup tables of MarchingCubes, generated once from first principles rather than typed in.
///
/// Corner k of a cell is at offset (k & 1, (k >> 1) & 1, k >> 2) (x, y, z); the case index has bit k
/// set when corner k is inside. Edges: 0–3 run along x (index dy + 2dz), 4–7 along y (4 + dx + 2dz),
/// 8–11 along z (8 + dx + 2dy). For every case and every choice of the six face deciders (bit f set:
/// on face f the inside corners are connected) the table lists triangles as edge triples, built by
/// tracing the iso-curve on each face (oriented so each curve point starts a segment on one face and
/// ends one on the other), chaining the segments into closed loops and fanning each loop.
final class MCTables: @unchecked Sendable {
    static let shared = MCTables()

    /// Corners of each face in counter-clockwise order seen from outside the cube:
    /// -x, +x, -y, +y, -z, +z.
    static let faceCorners: [[Int]] = [[0, 4, 6, 2], [1, 3, 7, 5], [0, 1, 5, 4], [2, 6, 7, 3], [0, 2, 3, 1], [4, 5, 7, 6]]

    /// triangles of (case c, decider mask m) are triEdges[triOffsets[c*64+m] ..< triOffsets[c*64+m+1]].
    let triOffsets: [UInt32]
    let triEdges: [UInt8]
    /// For the few (case, mask) entries whose loops need a centre vertex: the loops' edges; the
    /// triangles then use edge id 12 + j for the centroid of loop j.
    let centerLoops: [Int: [[UInt8]]]
    let hasCenter: [Bool]
    /// For the cases in `centerLoops`: the whole cell's triangles with each centre loop fanned from
    /// the apex with the fewest diagonals along a cube face (no interior vertex; see `interiorVertices`).
    let fanTris: [Int: [UInt8]]
    /// Faces (bit f) whose corners alternate inside / outside in each case.
    let ambiguous: [UInt8]
    /// Which per-slab edge array holds edge e: 0 x-edges, 1/2 y-edges of plane x/x+1, 3/4 z-edges.
    let edgeBase: [Int]

    static func edge(_ a: Int, _ b: Int) -> Int {
        let lo = min(a, b), d = a ^ b
        let dx = lo & 1, dy = (lo >> 1) & 1, dz = lo >> 2
        switch d {
        case 1: return dy + 2 * dz
        case 2: return 4 + dx + 2 * dz
        default: return 8 + dx + 2 * dy
        }
    }

    /// Midpoint of edge e in cell coordinates (used to fix the winding once).
    static func edgeMid(_ e: Int) -> SIMD3<Double> {
        switch e {
        case 0..<4: return SIMD3(0.5, Double(e & 1), Double(e >> 1))
        case 4..<8: return SIMD3(Double((e - 4) & 1), 0.5, Double((e - 4) >> 1))
        default: return SIMD3(Double((e - 8) & 1), Double((e - 8) >> 1), 0.5)
        }
    }

    /// The iso-curve loops of case c with decider mask m, as edge lists.
    static func loops(_ c: Int, _ m: Int) -> [[Int]] {
        var next = [Int](repeating: -1, count: 12)
        func inside(_ k: Int) -> Bool { c & (1 << k) != 0 }
        for f in 0..<6 {
            let q = faceCorners[f]
            var xs: [(edge: Int, entering: Bool)] = []  // entering = out -> in walking CCW
            for i in 0..<4 {
                let a = q[i], b = q[(i + 1) % 4]
                if inside(a) != inside(b) { xs.append((edge(a, b), !inside(a))) }
            }
            if xs.count == 2 {
                let s = xs[0].entering ? xs[0] : xs[1], e = xs[0].entering ? xs[1] : xs[0]
                next[s.edge] = e.edge
            } else if xs.count == 4 {
                // Rotate so that q[i0] is inside; crossings then sit on face edges i0 ... i0+3.
                let i0 = inside(q[0]) ? 0 : 1
                func fe(_ i: Int) -> Int { edge(q[(i0 + i) % 4], q[(i0 + i + 1) % 4]) }
                if m & (1 << f) != 0 {      // inside corners connected: cut off the outside corners
                    next[fe(1)] = fe(0)
                    next[fe(3)] = fe(2)
                } else {                    // inside corners separated
                    next[fe(1)] = fe(2)
                    next[fe(3)] = fe(0)
                }
            }
        }
        var seen = [Bool](repeating: false, count: 12)
        var out: [[Int]] = []
        for e0 in 0..<12 where next[e0] >= 0 && !seen[e0] {
            var loop: [Int] = []
            var e = e0
            while e >= 0 && !seen[e] { seen[e] = true; loop.append(e); e = next[e] }
            out.append(loop)
        }
        return out
    }

    init() {
        // Orientation: for case 1 (only corner 0 inside) the triangle normal must point away from corner 0.
        let l = MCTables.loops(1, 0)[0]
        let p0 = MCTables.edgeMid(l[0]), p1 = MCTables.edgeMid(l[1]), p2 = MCTables.edgeMid(l[2])
        let n = simdCross(p1 - p0, p2 - p0)
        let flip = simdDot(n, SIMD3(1, 1, 1)) < 0

        // Faces each edge lies on: a fan diagonal must not join two vertices of one cube face, or
        // the neighbour across that face could hold the same edge (a non-manifold edge).
        var edgeFaces = [Int](repeating: 0, count: 12)
        for f in 0..<6 {
            let q = MCTables.faceCorners[f]
            for i in 0..<4 { edgeFaces[MCTables.edge(q[i], q[(i + 1) % 4])] |= 1 << f }
        }
        var offs: [UInt32] = [0]
        var edges: [UInt8] = []
        var amb = [UInt8](repeating: 0, count: 256)
        var centers: [Int: [[UInt8]]] = [:]
        var fans: [Int: [UInt8]] = [:]
        for c in 0..<256 {
            for f in 0..<6 {
                let q = MCTables.faceCorners[f]
                let ins = q.map { c & (1 << $0) != 0 }
                if ins[0] == ins[2] && ins[1] == ins[3] && ins[0] != ins[1] { amb[c] |= UInt8(1 << f) }
            }
            for m in 0..<64 {
                var cellCenters: [[UInt8]] = []
                var fanned: [UInt8] = []
                for var loop in MCTables.loops(c, m) {
                    if flip { loop.reverse() }
                    if loop.count < 3 { continue }
                    let (tris, center) = MCTables.disk(loop, edgeFaces, centerID: 12 + cellCenters.count)
                    if center { cellCenters.append(loop.map { UInt8($0) }) }
                    edges += tris.map { UInt8($0) }
                    fanned += (center ? MCTables.fan(loop, edgeFaces) : tris).map { UInt8($0) }
                }
                if !cellCenters.isEmpty { centers[c * 64 + m] = cellCenters; fans[c * 64 + m] = fanned }
                offs.append(UInt32(edges.count))
            }
        }
        centerLoops = centers
        fanTris = fans
        var flags = [Bool](repeating: false, count: 256 * 64)
        for k in centers.keys { flags[k] = true }
        hasCenter = flags
        triOffsets = offs
        triEdges = edges
        ambiguous = amb
        edgeBase = (0..<12).map { e in
            switch e {
            case 0..<4: return 0
            case 4..<8: return 1 + ((e - 4) & 1)
            default: return 3 + ((e - 8) & 1)
            }
        }
    }

    /// Triangulates one loop as a disk: a fan from a vertex none of whose diagonals joins two
    /// vertices of one cube face (the neighbour across that face could hold the same edge), or else a
    /// fan around a centre vertex, written as edge id `centerID`.
    static func disk(_ loop: [Int], _ edgeFaces: [Int], centerID: Int) -> (tris: [Int], center: Bool) {
        let n = loop.count
        let apex = (0..<n).first { k in
            (0..<n).allSatisfy { i in
                i == k || i == (k + 1) % n || i == (k + n - 1) % n || edgeFaces[loop[k]] & edgeFaces[loop[i]] == 0
            }
        }
        var tris: [Int] = []
        if let k = apex {
            for i in 1..<(n - 1) { tris += [loop[k], loop[(k + i) % n], loop[(k + i + 1) % n]] }
            return (tris, false)
        }
        for i in 0..<n { tris += [centerID, loop[i], loop[(i + 1) % n]] }
        return (tris, true)
    }

    /// The loop fanned from the apex whose diagonals run along a cube face least often (used instead
    /// of a centre vertex when interior vertices are not wanted).
    static func fan(_ loop: [Int], _ edgeFaces: [Int]) -> [Int] {
        let n = loop.count
        func faceDiagonals(_ k: Int) -> Int {
            (0..<n).filter { i in
                i != k && i != (k + 1) % n && i != (k + n - 1) % n && edgeFaces[loop[k]] & edgeFaces[loop[i]] != 0
            }.count
        }
        let k = (0..<n).min { faceDiagonals($0) < faceDiagonals($1) } ?? 0
        var tris: [Int] = []
        for i in 1..<(n - 1) { tris += [loop[k], loop[(k + i) % n], loop[(k + i + 1) % n]] }
        return tris
    }

    /// Offset of edge e's slot from the cell's (y*nz + z) in its per-plane array.
    func edgeOffset(nz: Int) -> [Int] {
        (0..<12).map { e in
            switch e {
            case 0..<4: return (e & 1) * nz + (e >> 1)
            case 4..<8: return (e - 4) >> 1
            default: return ((e - 8) >> 1) * nz
            }
        }
    }

    /// Asymptotic decider of face f: 1 when the bilinear saddle is inside (inside corners connected).
    /// `a` holds the cell's corner values relative to the level (negative inside). Written in terms of
    /// the two diagonal products only, so both cells sharing the face compute the same bit exactly.
    @inline(__always)
    func decide(face f: Int, case c: Int, _ a: SIMD8<Double>) -> Int {
        let q = MCTables.faceCorners[f]
        let p02 = a[q[0]] * a[q[2]], p13 = a[q[1]] * a[q[3]]
        if c & (1 << q[0]) != 0 { return p02 > p13 ? 1 : 0 }
        return p13 > p02 ? 1 : 0
    }
}

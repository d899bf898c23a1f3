#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Iso-surface extraction from a dense scalar grid (marching cubes with consistent face topology).
///
/// Conventions
/// - The grid has `dims = (X, Y, Z)` sample points, stored C order (z fastest): value(x,y,z) is at
///   `(x*Y + y)*Z + z`. Cells are the (X-1)(Y-1)(Z-1) cubes between samples.
/// - A sample is *inside* when `value < level` (SDF convention), or `value > level` when
///   `insideAbove` (density / occupancy convention). A value equal to the level is outside.
/// - Vertices lie on grid edges whose end points differ in inside-ness, at the zero of the linear
///   interpolation of `value - level` along the edge (computed in Double, stored as Float).
///   Each such edge has exactly one vertex, shared by the (up to four) cells around it.
/// - Positions: grid-index units (x = index, as scikit-image with spacing 1) unless `bounds` is given,
///   which maps sample 0 to `bounds.min` and sample N-1 to `bounds.max` per axis.
/// - Triangles wind counter-clockwise seen from outside (normals point from inside to outside).
/// - Topology: on every cube face whose four corners alternate inside/outside, the asymptotic
///   decider (the bilinear interpolant's saddle value) chooses the connection; it depends only on the
///   face's four values, so both cells sharing a face agree and the surface has no cracks. Every
///   boundary curve of a cell becomes one triangulated disk, so a surface that does not reach the
///   grid border is closed, manifold and consistently wound. (Interior "tunnel" configurations of the
///   trilinear interpolant, which MC33 resolves, are triangulated as separate disks.)
/// - A boundary curve that cannot be fanned without a diagonal along a cube face (which could meet
///   the neighbour's triangles in a non-manifold edge) gets one extra vertex at its centroid, inside
///   the cell — about 1 cell in 2,000 on smooth fields. With `interiorVertices: false` such curves
///   are fanned anyway: every vertex then lies on a grid edge, the vertex set of classic marching
///   cubes (PyMCubes, scikit-image), at the price of possibly non-manifold edges in those cells.
///
/// Work is split into slabs along x, evaluated in parallel on a ThreadPool; a slab needs only its own
/// samples, so a field can be computed block by block through a callback (`extract(dims:field:)`)
/// without ever holding the whole grid. The output is identical for every thread count.
public enum MarchingCubes {
    /// Axis-aligned bounds of the grid in world units.
    public struct Bounds: Sendable, Equatable {
        public var min: SIMD3<Double>
        public var max: SIMD3<Double>
        public init(min: SIMD3<Double>, max: SIMD3<Double>) { self.min = min; self.max = max }
    }

    /// Fills `out` (C order, `blockDims.x * blockDims.y * blockDims.z` floats) with the field at the
    /// sample points `blockOrigin + (i, j, k)`. Called from pool threads, possibly concurrently for
    /// different blocks; a thrown error stops the extraction and is rethrown.
    public typealias BlockField = (_ blockOrigin: SIMD3<Int>, _ blockDims: SIMD3<Int>,
                                   _ out: UnsafeMutableBufferPointer<Float>) throws -> Void

    /// Extracts the iso-surface of a dense grid held in memory (`values.count == X*Y*Z`).
    /// Throws invalidArgument for bad dims, a size mismatch, or NaN/infinite values.
    public static func extract(grid values: [Float], dims: SIMD3<Int>, level: Float = 0,
                               bounds: Bounds? = nil, insideAbove: Bool = false, interiorVertices: Bool = true,
                               threads: Int = 0) throws -> Mesh {
        try values.withUnsafeBufferPointer { v in
            try extract(grid: v, dims: dims, level: level, bounds: bounds, insideAbove: insideAbove,
                        interiorVertices: interiorVertices, threads: threads)
        }
    }

    /// The same on a borrowed buffer (read only, not retained: e.g. a caller's array from C).
    public static func extract(grid values: UnsafeBufferPointer<Float>, dims: SIMD3<Int>, level: Float = 0,
                               bounds: Bounds? = nil, insideAbove: Bool = false, interiorVertices: Bool = true,
                               threads: Int = 0) throws -> Mesh {
        try checkDims(dims)
        let n = try checkedMul(try checkedMul(dims.x, dims.y, "grid dims"), dims.z, "grid dims")
        guard values.count == n, let base = values.baseAddress else {
            throw HYError.invalidArgument("grid has \(values.count) values but dims \(dims.x)x\(dims.y)x\(dims.z) need \(n)")
        }
        guard level.isFinite else { throw HYError.invalidArgument("iso level \(level) is not finite") }
        let pool = ThreadPool(threads: threads)
        let bad = Atomic<Int>(-1)
        pool.parallelRanges(n, minChunk: 1 << 16) { r in
            if let i = firstNonFinite(base + r.lowerBound, r.count) { bad.store(r.lowerBound + i, ordering: .relaxed) }
        }
        let b = bad.load(ordering: .relaxed)
        if b >= 0 {
            let z = b % dims.z, y = (b / dims.z) % dims.y, x = b / (dims.y * dims.z)
            throw HYError.invalidArgument("grid value at [\(x), \(y), \(z)] is \(values[b]) (NaN or infinite values are not allowed)")
        }
        return try run(dims: dims, level: level, bounds: bounds, insideAbove: insideAbove,
                       interiorVertices: interiorVertices, pool: pool) { x0, _, _ in
            base + x0 * dims.y * dims.z
        }
    }

    /// Extracts the iso-surface of a field evaluated block by block (see `BlockField`). Each block is
    /// a slab of whole y-z planes, at most `slabCells + 1` planes thick, so memory stays at about
    /// `threads * (slabCells + 1) * Y * Z * 4` bytes however large X is.
    public static func extract(dims: SIMD3<Int>, level: Float = 0, bounds: Bounds? = nil,
                               insideAbove: Bool = false, interiorVertices: Bool = true, threads: Int = 0,
                               slabCells: Int = 16, field: BlockField) throws -> Mesh {
        try checkDims(dims)
        _ = try checkedMul(try checkedMul(dims.x, dims.y, "grid dims"), dims.z, "grid dims")
        guard level.isFinite else { throw HYError.invalidArgument("iso level \(level) is not finite") }
        let pool = ThreadPool(threads: threads)
        return try withoutActuallyEscaping(field) { field in
            try run(dims: dims, level: level, bounds: bounds, insideAbove: insideAbove,
                    interiorVertices: interiorVertices, pool: pool, slabCells: max(1, slabCells)) { x0, planes, buffer in
                let bd = SIMD3(planes, dims.y, dims.z)
                let buf = UnsafeMutableBufferPointer(start: buffer, count: planes * dims.y * dims.z)
                try field(SIMD3(x0, 0, 0), bd, buf)
                if let i = firstNonFinite(UnsafePointer(buffer), buf.count) {
                    let z = i % dims.z, y = (i / dims.z) % dims.y, x = x0 + i / (dims.y * dims.z)
                    throw HYError.invalidArgument("field value at [\(x), \(y), \(z)] is \(buf[i]) (NaN or infinite values are not allowed)")
                }
                return UnsafePointer(buffer)
            }
        }
    }

    /// Index of the first NaN or infinite value among p[0..<n], or nil. (x - x is 0 for finite x and
    /// NaN otherwise; summing 16 lanes at a time keeps the scan at memory speed.)
    static func firstNonFinite(_ p: UnsafePointer<Float>, _ n: Int) -> Int? {
        var i = 0
        while i + 64 <= n {
            let raw = UnsafeRawPointer(p + i)
            var acc = SIMD16<Float>.zero
            for k in 0..<4 {
                let x = raw.loadUnaligned(fromByteOffset: 64 * k, as: SIMD16<Float>.self)
                acc += x - x
            }
            if acc.sum() != 0 || acc.sum().isNaN { break }
            i += 64
        }
        while i < n { if !p[i].isFinite { return i }; i += 1 }
        return nil
    }

    static func checkDims(_ d: SIMD3<Int>) throws {
        guard d.x >= 2 && d.y >= 2 && d.z >= 2 else {
            throw HYError.invalidArgument("grid dims \(d.x)x\(d.y)x\(d.z): each must be at least 2")
        }
        guard d.x <= 1 << 16 && d.y <= 1 << 16 && d.z <= 1 << 16 else {
            throw HYError.invalidArgument("grid dims \(d.x)x\(d.y)x\(d.z): each must be at most 65536")
        }
        // A slab holds 17 planes of Y*Z samples and indexes its vertices with Int32.
        guard d.y * d.z <= 1 << 25 else {
            throw HYError.invalidArgument("grid dims \(d.x)x\(d.y)x\(d.z): a y-z plane of more than 2^25 samples is not supported")
        }
    }

    /// Provides the samples of planes x0 ..< x0+planes: either a pointer into a resident grid, or the
    /// given scratch buffer (planes*Y*Z floats) filled and returned.
    typealias SlabSource = (_ x0: Int, _ planes: Int, _ scratch: UnsafeMutablePointer<Float>) throws -> UnsafePointer<Float>

    struct SlabResult {
        var positions: [Float] = []
        var faces: [UInt32] = []
        var foreignStart = 0 // vertices foreignStart ..< foreignStart+foreign are the next slab's
        var foreign = 0      // first-plane vertices (same order), computed here too
    }

    static func run(dims: SIMD3<Int>, level: Float, bounds: Bounds?, insideAbove: Bool, interiorVertices: Bool,
                    pool: ThreadPool, slabCells: Int = 16, source: SlabSource) throws -> Mesh {
        let cellsX = dims.x - 1
        // Keep 3 vertices per sample of a slab within Int32 (slab-local indices).
        let slabCells = max(1, min(slabCells, Int(Int32.max) / (4 * dims.y * dims.z) - 1))
        let nSlabs = max(1, (cellsX + slabCells - 1) / slabCells)
        var results = [SlabResult](repeating: SlabResult(), count: nSlabs)
        let errLock = Mutex<HYError?>(nil)
        var origin = SIMD3<Double>(0, 0, 0), spacing = SIMD3<Double>(1, 1, 1)
        if let b = bounds {
            origin = b.min
            spacing = (b.max - b.min) / SIMD3<Double>(Double(dims.x - 1), Double(dims.y - 1), Double(dims.z - 1))
        }
        let tables = MCTables.shared
        results.withUnsafeMutableBufferPointer { res in
            pool.parallelFor(nSlabs) { s in
                if errLock.withLock({ $0 != nil }) { return }
                let x0 = s * cellsX / nSlabs, x1 = (s + 1) * cellsX / nSlabs
                do {
                    let planes = x1 - x0 + 1
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: planes * dims.y * dims.z)
                    defer { scratch.deallocate() }
                    let vals = try source(x0, planes, scratch)
                    var slab = SlabExtractor(dims: dims, level: level, insideAbove: insideAbove,
                                             interiorVertices: interiorVertices, origin: origin, spacing: spacing,
                                             tables: tables)
                    res[s] = slab.run(values: vals, x0: x0, x1: x1, last: s == nSlabs - 1)
                } catch let e as HYError {
                    errLock.withLock { if $0 == nil { $0 = e } }
                } catch {
                    errLock.withLock { if $0 == nil { $0 = HYError.internal("\(error)") } }
                }
            }
        }
        if let e = errLock.withLock({ $0 }) { throw e }
        // Stitch: slab s owns its vertices except the trailing `foreign` ones, which are the first
        // vertices (same order) of slab s+1.
        var offsets = [Int](repeating: 0, count: nSlabs + 1)
        for s in 0..<nSlabs { offsets[s + 1] = offsets[s] + results[s].positions.count / 3 - results[s].foreign }
        var faceOffsets = [Int](repeating: 0, count: nSlabs + 1)
        for s in 0..<nSlabs { faceOffsets[s + 1] = faceOffsets[s] + results[s].faces.count }
        guard offsets[nSlabs] <= Int(UInt32.max) else {
            throw HYError.outOfMemory("iso-surface has \(offsets[nSlabs]) vertices, more than 32-bit indices allow")
        }
        var positions = [Float](repeating: 0, count: offsets[nSlabs] * 3)
        var faces = [UInt32](repeating: 0, count: faceOffsets[nSlabs])
        positions.withUnsafeMutableBufferPointer { P in
            faces.withUnsafeMutableBufferPointer { F in
                pool.parallelFor(nSlabs) { s in
                    let r = results[s]
                    let fs = r.foreignStart, fe = r.foreignStart + r.foreign
                    let o = offsets[s], on = offsets[s + 1]
                    r.positions.withUnsafeBufferPointer { src in
                        for i in 0..<(fs * 3) { P[o * 3 + i] = src[i] }
                        for i in (fe * 3)..<src.count { P[(o - r.foreign) * 3 + i] = src[i] }
                    }
                    let fo = faceOffsets[s]
                    r.faces.withUnsafeBufferPointer { src in
                        for i in 0..<src.count {
                            let l = Int(src[i])
                            F[fo + i] = UInt32(l < fs ? o + l : (l < fe ? on + (l - fs) : o + l - r.foreign))
                        }
                    }
                }
            }
        }
        return Mesh(positions: positions, faces: faces)
    }
}

/// Extracts one slab of cells (x0 ..< x1) from its samples (planes x0 ... x1).
struct SlabExtractor {
    let ny: Int, nz: Int
    let level: Float
    let insideAbove: Bool
    let interiorVertices: Bool
    let origin: SIMD3<Double>, spacing: SIMD3<Double>
    let tables: MCTables

    init(dims: SIMD3<Int>, level: Float, insideAbove: Bool, interiorVertices: Bool, origin: SIMD3<Double>,
         spacing: SIMD3<Double>, tables: MCTables) {
        ny = dims.y; nz = dims.z
        self.level = level; self.insideAbove = insideAbove; self.interiorVertices = interiorVertices
        self.origin = origin; self.spacing = spacing; self.tables = tables
    }

    /// Value relative to the level, negative inside.
    @inline(__always) func rel(_ v: Float) -> Double {
        insideAbove ? Double(level) - Double(v) : Double(v) - Double(level)
    }

    mutating func run(values: UnsafePointer<Float>, x0: Int, x1: Int, last: Bool) -> MarchingCubes.SlabResult {
        let plane = ny * nz
        var out = MarchingCubes.SlabResult()
        out.positions.reserveCapacity(4096)
        out.faces.reserveCapacity(8192)
        let sign = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * plane + 16)
        let yE = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * plane)
        let zE = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * plane)
        let xE = UnsafeMutablePointer<Int32>.allocate(capacity: plane)
        defer { sign.deallocate(); yE.deallocate(); zE.deallocate(); xE.deallocate() }
        (sign + 2 * plane).initialize(repeating: 0, count: 16)

        var nVerts = 0
        func addVertex(_ p: SIMD3<Double>) -> Int32 {
            let w = origin + p * spacing
            out.positions.append(Float(w.x)); out.positions.append(Float(w.y)); out.positions.append(Float(w.z))
            nVerts += 1
            return Int32(nVerts - 1)
        }
        // Signs and y/z-edge vertices of plane x into slot `k`.
        func doPlane(_ x: Int, _ k: Int) {
            let v = values + (x - x0) * plane
            let s = sign + k * plane
            computeSigns(v, s, plane)
            let ye = yE + k * plane, ze = zE + k * plane
            for y in 0..<ny {
                let row = s + y * nz, vr = v + y * nz
                var z = 0
                // z-edges along the row
                while z < nz - 1 {
                    if z + 9 <= nz && loadU64(row + z) == loadU64(row + z + 1) { z += 8; continue }
                    if row[z] != row[z + 1] {
                        let a = rel(vr[z]), b = rel(vr[z + 1])
                        ze[y * nz + z] = addVertex(SIMD3(Double(x), Double(y), Double(z) + a / (a - b)))
                    }
                    z += 1
                }
                if y + 1 < ny {
                    let row2 = row + nz, vr2 = vr + nz
                    z = 0
                    while z < nz {
                        if z + 8 <= nz && loadU64(row + z) == loadU64(row2 + z) { z += 8; continue }
                        if row[z] != row2[z] {
                            let a = rel(vr[z]), b = rel(vr2[z])
                            ye[y * nz + z] = addVertex(SIMD3(Double(x), Double(y) + a / (a - b), Double(z)))
                        }
                        z += 1
                    }
                }
            }
        }

        doPlane(x0, 0)
        var cur = 0
        for x in x0..<x1 {
            let nxt = 1 - cur
            // x-edges between planes x and x+1 (signs of x+1 computed first into slot nxt).
            let v0 = values + (x - x0) * plane, v1 = v0 + plane
            let s0 = sign + cur * plane
            let s1 = sign + nxt * plane
            computeSigns(v1, s1, plane)
            var i = 0
            while i < plane {
                if i + 8 <= plane && loadU64(s0 + i) == loadU64(s1 + i) { i += 8; continue }
                if s0[i] != s1[i] {
                    let a = rel(v0[i]), b = rel(v1[i])
                    xE[i] = addVertex(SIMD3(Double(x) + a / (a - b), Double(i / nz), Double(i % nz)))
                }
                i += 1
            }
            if x + 1 == x1 && !last { out.foreignStart = nVerts; doPlane(x + 1, nxt); out.foreign = nVerts - out.foreignStart }
            else { doPlane(x + 1, nxt) }
            cells(x: x, values: v0, s0: s0, s1: s1, yE0: yE + cur * plane, yE1: yE + nxt * plane,
                  zE0: zE + cur * plane, zE1: zE + nxt * plane, xE: xE, out: &out, nVerts: &nVerts)
            cur = nxt
        }
        return out
    }

    /// s[i] = 1 where v[i] is inside, else 0 (16 lanes at a time).
    @inline(__always) func computeSigns(_ v: UnsafePointer<Float>, _ s: UnsafeMutablePointer<UInt8>, _ n: Int) {
        var i = 0
        let lv = SIMD16<Float>(repeating: level)
        while i + 16 <= n {
            let x = UnsafeRawPointer(v + i).loadUnaligned(as: SIMD16<Float>.self)
            let m = insideAbove ? (x .> lv) : (x .< lv)
            let b = SIMD16<UInt8>(truncatingIfNeeded: m._storage) & 1
            UnsafeMutableRawPointer(s + i).storeBytes(of: b, as: SIMD16<UInt8>.self)
            i += 16
        }
        while i < n { s[i] = (insideAbove ? v[i] > level : v[i] < level) ? 1 : 0; i += 1 }
    }

    @inline(__always) func loadU64(_ p: UnsafePointer<UInt8>) -> UInt64 {
        UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
    }
    @inline(__always) func loadU64(_ p: UnsafeMutablePointer<UInt8>) -> UInt64 {
        UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
    }

    func cells(x: Int, values v0: UnsafePointer<Float>, s0: UnsafeMutablePointer<UInt8>, s1: UnsafeMutablePointer<UInt8>,
               yE0: UnsafeMutablePointer<Int32>, yE1: UnsafeMutablePointer<Int32>,
               zE0: UnsafeMutablePointer<Int32>, zE1: UnsafeMutablePointer<Int32>,
               xE: UnsafeMutablePointer<Int32>, out: inout MarchingCubes.SlabResult, nVerts: inout Int) {
        let plane = ny * nz
        // Edge e -> (array, offset from the cell's (y*nz + z)).
        let bases: [UnsafeMutablePointer<Int32>] = [xE, yE0, yE1, zE0, zE1]
        let edgeBase = tables.edgeBase, edgeOff = tables.edgeOffset(nz: nz)
        let corner = [0, plane, nz, plane + nz, 1, plane + 1, nz + 1, plane + nz + 1]  // corner k -> offset from v0
        tables.triOffsets.withUnsafeBufferPointer { triOff in
        tables.triEdges.withUnsafeBufferPointer { triEdges in
        tables.ambiguous.withUnsafeBufferPointer { amb in
            for y in 0..<(ny - 1) {
                let r00 = s0 + y * nz, r01 = r00 + nz, r10 = s1 + y * nz, r11 = r10 + nz
                var z = 0
                while z < nz - 1 {
                    if z + 9 <= nz {
                        let w = loadU64(r00 + z)
                        if (w == 0 || w == 0x0101_0101_0101_0101) && loadU64(r01 + z) == w && loadU64(r10 + z) == w
                            && loadU64(r11 + z) == w && r00[z + 8] == r01[z + 8] && r00[z + 8] == r10[z + 8]
                            && r00[z + 8] == r11[z + 8] && UInt64(r00[z + 8]) == (w & 1) {
                            z += 8; continue
                        }
                    }
                    let q0 = Int(r00[z]) | Int(r10[z]) << 1 | Int(r01[z]) << 2 | Int(r11[z]) << 3
                    let q1 = Int(r00[z + 1]) | Int(r10[z + 1]) << 1 | Int(r01[z + 1]) << 2 | Int(r11[z + 1]) << 3
                    let c = q0 | q1 << 4
                    if c == 0 || c == 255 { z += 1; continue }
                    let cellIdx = y * nz + z
                    var m = 0
                    let am = Int(amb[c])
                    if am != 0 {
                        var a = SIMD8<Double>()
                        for k in 0..<8 { a[k] = rel(v0[cellIdx + corner[k]]) }
                        for f in 0..<6 where am & (1 << f) != 0 {
                            m |= tables.decide(face: f, case: c, a) << f
                        }
                    }
                    let t = c * 64 + m
                    let lo = Int(triOff[t]), hi = Int(triOff[t + 1])
                    if tables.hasCenter[t], !interiorVertices, let fan = tables.fanTris[t] {
                        for e in fan { out.faces.append(UInt32(bitPattern: bases[edgeBase[Int(e)]][cellIdx + edgeOff[Int(e)]])) }
                        z += 1
                        continue
                    }
                    if tables.hasCenter[t], let loops = tables.centerLoops[t] {
                        // Rare: a loop triangulated around its centroid (a vertex inside the cell).
                        var ids: [UInt32] = []
                        for loop in loops {
                            var sum = SIMD3<Float>.zero
                            for e in loop {
                                let v = Int(bases[edgeBase[Int(e)]][cellIdx + edgeOff[Int(e)]])
                                sum += SIMD3(out.positions[3 * v], out.positions[3 * v + 1], out.positions[3 * v + 2])
                            }
                            sum /= Float(loop.count)
                            out.positions.append(sum.x); out.positions.append(sum.y); out.positions.append(sum.z)
                            ids.append(UInt32(nVerts)); nVerts += 1
                        }
                        for j in lo..<hi {
                            let e = Int(triEdges[j])
                            out.faces.append(e >= 12 ? ids[e - 12] : UInt32(bitPattern: bases[edgeBase[e]][cellIdx + edgeOff[e]]))
                        }
                        z += 1
                        continue
                    }
                    for j in lo..<hi {
                        let e = Int(triEdges[j])
                        out.faces.append(UInt32(bitPattern: bases[edgeBase[e]][cellIdx + edgeOff[e]]))
                    }
                    z += 1
                }
            }
        }
        }
        }
    }
}

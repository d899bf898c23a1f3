import Glibc
import XCTest
@testable import HunyuanGeometry
import HunyuanImage

/// Mesh engine checks against analytic references: sphere volume and area, topology by edge
/// counts, vertex placement against the linear interpolation of the field, exporter round trips and
/// error handling (no trap, no half-written file).
final class MeshTests: XCTestCase {
    /// Samples the signed distance to a sphere (centre off the grid points) on an n³ grid.
    func sphereGrid(_ n: Int, radius r: Double, center c: SIMD3<Double>) -> [Float] {
        var g = [Float](repeating: 0, count: n * n * n)
        for x in 0..<n { for y in 0..<n { for z in 0..<n {
            let d = SIMD3(Double(x), Double(y), Double(z)) - c
            g[(x * n + y) * n + z] = Float((d * d).sum().squareRoot() - r)
        } } }
        return g
    }

    func tmpDir() -> String {
        var t = Array("/tmp/hymeshXXXXXX".utf8CString)
        let p = t.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    func testSphereVolumeAreaAndTopology() throws {
        let n = 64, r = 20.3, c = SIMD3(31.4, 32.2, 30.7)
        let m = try MarchingCubes.extract(grid: sphereGrid(n, radius: r, center: c), dims: SIMD3(n, n, n), threads: 2)
        let t = m.topology
        XCTAssertTrue(t.watertight)
        XCTAssertTrue(t.windingConsistent)
        XCTAssertEqual(t.eulerCharacteristic, 2)
        let v = 4.0 / 3.0 * Double.pi * r * r * r
        XCTAssertEqual(m.signedVolume, v, accuracy: 0.005 * v, "outward winding, analytic volume")
        let a = 4 * Double.pi * r * r
        XCTAssertEqual(m.area, a, accuracy: 0.01 * a)
        // Every vertex is on a grid edge, at the zero of the linear interpolation along it.
        let g = sphereGrid(n, radius: r, center: c)
        var worst = 0.0
        for i in 0..<m.vertexCount {
            let p = SIMD3<Double>(m.vertex(i))
            let f = p - p.rounded(.down)
            let axes = (0..<3).filter { f[$0] != 0 }
            if axes.isEmpty {
                // On a sample: only where the field is (within float rounding) at the level there.
                let q = SIMD3<Int>(Int(p.x), Int(p.y), Int(p.z))
                XCTAssertLessThan(abs(g[(q.x * n + q.y) * n + q.z]), 1e-5)
                continue
            }
            XCTAssertEqual(axes.count, 1)
            guard let ax = axes.first else { continue }
            var lo = SIMD3<Int>(Int(p.x.rounded(.down)), Int(p.y.rounded(.down)), Int(p.z.rounded(.down)))
            let a0 = Double(g[(lo.x * n + lo.y) * n + lo.z])
            lo[ax] += 1
            let a1 = Double(g[(lo.x * n + lo.y) * n + lo.z])
            XCTAssertTrue((a0 < 0) != (a1 < 0))
            worst = max(worst, abs(f[ax] - a0 / (a0 - a1)))
        }
        XCTAssertLessThan(worst, 1e-5)
    }

    func testThreadCountAndBlockCallbackGiveTheSameMesh() throws {
        let n = 48, r = 15.2, c = SIMD3(23.3, 24.1, 22.8)
        let g = sphereGrid(n, radius: r, center: c)
        let a = try MarchingCubes.extract(grid: g, dims: SIMD3(n, n, n), threads: 1)
        let b = try MarchingCubes.extract(grid: g, dims: SIMD3(n, n, n), threads: 2)
        let cb = try MarchingCubes.extract(dims: SIMD3(n, n, n), threads: 2, slabCells: 5) { o, d, out in
            for i in 0..<d.x { for j in 0..<d.y { for k in 0..<d.z {
                let p = SIMD3(Double(o.x + i), Double(o.y + j), Double(o.z + k)) - c
                out[(i * d.y + j) * d.z + k] = Float((p * p).sum().squareRoot() - r)
            } } }
        }
        XCTAssertEqual(a.positions, b.positions); XCTAssertEqual(a.faces, b.faces)
        XCTAssertEqual(a.faceCount, cb.faceCount); XCTAssertEqual(a.vertexCount, cb.vertexCount)
        XCTAssertTrue(cb.topology.watertight)
        XCTAssertEqual(cb.signedVolume, a.signedVolume, accuracy: 1e-6 * a.signedVolume)
    }

    func testInsideAboveAndBounds() throws {
        let n = 40, r = 12.3, c = SIMD3(19.2, 19.7, 20.1)
        let g = sphereGrid(n, radius: r, center: c).map { -$0 }
        let b = MarchingCubes.Bounds(min: SIMD3(-1, -1, -1), max: SIMD3(1, 1, 1))
        let m = try MarchingCubes.extract(grid: g, dims: SIMD3(n, n, n), insideAbove: true, threads: 1)
        XCTAssertGreaterThan(m.signedVolume, 0)
        let mb = try MarchingCubes.extract(grid: g, dims: SIMD3(n, n, n), bounds: b, insideAbove: true)
        let s = 2.0 / Double(n - 1)
        XCTAssertEqual(mb.signedVolume, m.signedVolume * s * s * s, accuracy: 1e-4 * mb.signedVolume)
    }

    func testBadGridsThrowWithoutTrapping() {
        var g = sphereGrid(8, radius: 3, center: SIMD3(3.5, 3.5, 3.5))
        XCTAssertThrowsError(try MarchingCubes.extract(grid: g, dims: SIMD3(8, 8, 7)))
        XCTAssertThrowsError(try MarchingCubes.extract(grid: [], dims: SIMD3(0, 0, 0)))
        XCTAssertThrowsError(try MarchingCubes.extract(grid: [1], dims: SIMD3(1, 1, 1)))
        XCTAssertThrowsError(try MarchingCubes.extract(grid: g, dims: SIMD3(-8, -8, 8)))
        g[17] = .nan
        XCTAssertThrowsError(try MarchingCubes.extract(grid: g, dims: SIMD3(8, 8, 8))) { e in
            XCTAssertTrue((e as? HYError)?.message.contains("NaN") ?? false)
        }
        g[17] = .infinity
        XCTAssertThrowsError(try MarchingCubes.extract(grid: g, dims: SIMD3(8, 8, 8)))
        XCTAssertThrowsError(try MarchingCubes.extract(dims: SIMD3(8, 8, 8)) { _, _, out in out[0] = .nan })
        XCTAssertThrowsError(try MarchingCubes.extract(dims: SIMD3(8, 8, 8)) { _, _, _ in throw HYError.aborted() })
    }

    func testExportersRoundTripAndAtomicWrites() throws {
        let n = 32
        var m = try MarchingCubes.extract(grid: sphereGrid(n, radius: 10.2, center: SIMD3(15.3, 15.6, 15.1)), dims: SIMD3(n, n, n))
        m.sampleColors { p in SIMD4(p.x / 32, p.y / 32, p.z / 32, 1) }
        m.normals = MeshOps.vertexNormals(m)
        let dir = tmpDir()
        for ext in ["glb", "ply", "obj", "stl"] {
            let path = dir + "/m." + ext
            try m.save(path)
            let r = try Mesh.load(path)
            XCTAssertEqual(r.faceCount, m.faceCount, ext)
            XCTAssertEqual(r.vertexCount, m.vertexCount, ext)
            XCTAssertTrue(r.topology.watertight, ext)
            XCTAssertEqual(r.signedVolume, m.signedVolume, accuracy: 1e-4 * m.signedVolume, ext)
            if ext != "stl" {
                XCTAssertEqual(r.positions, m.positions, ext)
                let rc = try XCTUnwrap(r.colors, ext)
                for i in 0..<m.vertexCount { XCTAssertEqual(rc[3 * i], m.colors![3 * i], accuracy: 0.5 / 255 + 1e-6) }
            }
            // Existing file: refused without overwrite, and left intact.
            XCTAssertThrowsError(try m.save(path))
            try m.save(path, overwrite: true)
        }
        XCTAssertThrowsError(try m.save(dir + "/missing/dir/m.glb"))
        XCTAssertThrowsError(try m.save(dir + "/m.xyz"))
        let leftovers = try FileSystem.list(dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    func testDecimationKeepsClosedManifold() throws {
        let n = 64
        let m = try MarchingCubes.extract(grid: sphereGrid(n, radius: 24.1, center: SIMD3(31.7, 31.2, 32.3)), dims: SIMD3(n, n, n))
        let d = try MeshOps.decimate(m, targetFaces: m.faceCount / 10)
        XCTAssertLessThanOrEqual(d.faceCount, m.faceCount / 10)
        let t = d.topology
        XCTAssertTrue(t.watertight); XCTAssertTrue(t.windingConsistent); XCTAssertEqual(t.eulerCharacteristic, 2)
        let v: Double = 4.0 / 3.0 * Double.pi * 24.1 * 24.1 * 24.1
        XCTAssertEqual(d.signedVolume, v, accuracy: 0.02 * v)
    }

    func testCleanClusterAndComponents() throws {
        // Two separate spheres; STL-style unwelded copy welds back to the same mesh.
        let n = 48
        var g = sphereGrid(n, radius: 8.2, center: SIMD3(12.3, 23.4, 23.1))
        let g2 = sphereGrid(n, radius: 12.1, center: SIMD3(33.2, 23.6, 23.3))
        for i in 0..<g.count { g[i] = min(g[i], g2[i]) }
        let m = try MarchingCubes.extract(grid: g, dims: SIMD3(n, n, n))
        XCTAssertEqual(MeshOps.componentCount(m), 2)
        let big = MeshOps.keepLargestComponents(m, count: 1)
        XCTAssertEqual(MeshOps.componentCount(big), 1)
        let bigVolume: Double = 4.0 / 3.0 * Double.pi * 12.1 * 12.1 * 12.1
        XCTAssertEqual(big.signedVolume, bigVolume, accuracy: 0.01 * bigVolume)
        var soup = Mesh()
        for f in m.faces { soup.positions += [m.positions[3 * Int(f)], m.positions[3 * Int(f) + 1], m.positions[3 * Int(f) + 2]] }
        soup.faces = (0..<UInt32(m.faces.count)).map { $0 }
        let welded = try MeshOps.clean(soup)
        XCTAssertEqual(welded.vertexCount, m.vertexCount)
        XCTAssertTrue(welded.topology.watertight)
        let c = try MeshOps.vertexClustering(m, voxelSize: 2)
        XCTAssertLessThan(c.vertexCount, m.vertexCount / 2)
        XCTAssertThrowsError(try MeshOps.vertexClustering(m, voxelSize: 0))
    }

    func testPreviewPNG() throws {
        let n = 24
        let m = try MarchingCubes.extract(grid: sphereGrid(n, radius: 8, center: SIMD3(11.5, 11.2, 11.7)), dims: SIMD3(n, n, n))
        let img = try Raster.preview(m, size: 64)
        XCTAssertEqual(img.pixels.count, 64 * 64 * 4)
        let png = try PNGEncoder.encode(img)
        XCTAssertEqual(Array(png[0..<8]), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertThrowsError(try Raster.preview(m, size: 3))
    }

    func testNpyRoundTrip() throws {
        let dir = tmpDir()
        let data: [Float] = (0..<24).map { Float($0) * 0.5 - 3 }
        try NpyWriter.write(dir + "/a.npy", shape: [2, 3, 4], data: data, overwrite: false)
        let a = try NpyArray.read(dir + "/a.npy")
        XCTAssertEqual(a.shape, [2, 3, 4]); XCTAssertEqual(a.data, data)
        XCTAssertThrowsError(try NpyWriter.write(dir + "/b.npy", shape: [5], data: data, overwrite: false))
    }
}

extension MeshTests {
    func testTexturedOBJAndGLBRoundTrip() throws {
        // A quad with UVs and a 2x2 texture: OBJ writes .mtl + .png beside it; both formats read back.
        var m = Mesh(positions: [0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0], faces: [0, 1, 2, 0, 2, 3])
        m.uvs = [0, 0, 1, 0, 1, 1, 0, 1]
        m.texture = RGBAImage(width: 2, height: 2, pixels: [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255])
        let dir = tmpDir()
        try m.save(dir + "/q.obj")
        XCTAssertTrue(FileSystem.exists(dir + "/q.mtl"))
        let png = try FileSystem.readAll(dir + "/q.png")
        XCTAssertEqual(Array(png[0..<4]), [0x89, 0x50, 0x4E, 0x47])
        let o = try Mesh.load(dir + "/q.obj")
        XCTAssertEqual(o.uvs ?? [], m.uvs!)
        XCTAssertEqual(o.faces, m.faces)
        try m.save(dir + "/q.glb")
        let g = try Mesh.load(dir + "/q.glb")
        XCTAssertEqual(g.uvs ?? [], m.uvs!)
        XCTAssertEqual(g.positions, m.positions)
    }

    func testColourGridAndBatchCallback() throws {
        let n = 20
        let g = sphereGrid(n, radius: 6.3, center: SIMD3(9.4, 9.7, 9.2))
        var m = try MarchingCubes.extract(grid: g, dims: SIMD3(n, n, n))
        var grid = [Float](repeating: 0, count: n * n * n * 3)
        for x in 0..<n { for y in 0..<n { for z in 0..<n {
            let i = ((x * n + y) * n + z) * 3
            grid[i] = Float(x) / Float(n - 1); grid[i + 1] = Float(y) / Float(n - 1); grid[i + 2] = Float(z) / Float(n - 1)
        } } }
        try m.sampleColors(grid: grid, dims: SIMD3(n, n, n), channels: 3)
        for i in 0..<m.vertexCount {
            XCTAssertEqual(m.colors![3 * i], m.positions[3 * i] / Float(n - 1), accuracy: 1e-5)
        }
        try m.sampleColors(channels: 4, batch: 100) { p, out in
            for v in 0..<(p.count / 3) { out[4 * v] = 0.25; out[4 * v + 1] = 0.5; out[4 * v + 2] = 1; out[4 * v + 3] = 1 }
        }
        XCTAssertEqual(m.colorChannels, 4)
        XCTAssertEqual(m.colors?.count, m.vertexCount * 4)
        XCTAssertThrowsError(try m.sampleColors { _, out in out[0] = .nan })
    }
}

extension MeshTests {
    func testExtremeCoordinatesDoNotTrap() throws {
        var m = Mesh(positions: [-3e38, 0, 0, 3e38, 0, 0, 0, 3e38, 0, 0, 0, 3e38], faces: [0, 1, 2, 0, 2, 3, 0, 3, 1, 1, 3, 2])
        m.colors = [.nan, 0, 0, 1, 1, 1, 0, 0, 0, 0.5, 0.5, 0.5]
        _ = try Raster.preview(m, size: 32)
        _ = try MeshOps.vertexClustering(m, voxelSize: 1e-3)
        _ = MeshOps.mergeVertices(m, epsilon: 1e-3)
        _ = try GLBExporter.encode(m)
        _ = PLYExporter.encode(m)
        _ = try MeshOps.decimate(m, targetFaces: 2)
    }
}

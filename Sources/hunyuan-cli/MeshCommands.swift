import ArgumentParser
import HunyuanCore
import HunyuanGeometry
import HunyuanImage
#if canImport(Glibc)
import Glibc
#endif


/// Parses "x0,y0,z0,x1,y1,z1".
func parseBounds(_ s: String?) throws -> MarchingCubes.Bounds? {
    guard let s else { return nil }
    let v: [Double?] = s.split(separator: ",").map { Double(String($0.filter { $0 != " " })) }
    guard v.count == 6, v.allSatisfy({ $0 != nil && $0!.isFinite }) else {
        throw HYError.invalidArgument("--bounds needs six numbers x0,y0,z0,x1,y1,z1, got '\(s)'")
    }
    let b = v.map { $0! }
    guard b[0] < b[3] && b[1] < b[4] && b[2] < b[5] else { throw HYError.invalidArgument("--bounds: each min must be below its max") }
    return MarchingCubes.Bounds(min: SIMD3(b[0], b[1], b[2]), max: SIMD3(b[3], b[4], b[5]))
}


/// Reads GRID.npy as a float32 [X, Y, Z] grid.
func readGrid(_ path: String) throws -> (values: [Float], dims: SIMD3<Int>) {
    let a = try NpyArray.read(path)
    guard a.shape.count == 3 else { throw HYError.invalidArgument("\(path): grid must be 3-D [X, Y, Z], has shape \(a.shape)") }
    return (a.data, SIMD3(a.shape[0], a.shape[1], a.shape[2]))
}

struct MeshCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Extract the iso-surface of a float32 [X,Y,Z] .npy grid and write it (format from -o's extension).",
        discussion: "Values below the level are inside (SDF) unless --inside-above. Without --bounds vertices are in voxel-index units. Faces wind counter-clockwise seen from outside.")
    @Argument(help: "GRID.npy: float32 [X, Y, Z], C order.") var grid: String
    @Option(help: "Iso level.") var level: Float = 0
    @Option(parsing: .unconditional, help: "World bounds x0,y0,z0,x1,y1,z1 of the grid's first and last samples.") var bounds: String?
    @Flag(help: "Values above the level are inside (density convention).") var insideAbove = false
    @Option(help: "Vertex colours from a float32 [X, Y, Z, 3|4] .npy grid in [0, 1] over the same samples.") var colorGrid: String?
    @Flag(help: "Merge coincident vertices, drop degenerate/duplicate faces and unused vertices.") var clean = false
    @Option(help: "Keep only the largest connected component(s): number of components to keep.") var keepLargest: Int?
    @Option(help: "Taubin smoothing iterations.") var smooth: Int = 0
    @Option(help: "Decimate to at most this many faces (quadric error).") var simplify: Int?
    @Option(help: "Worker threads (0 = all cores).") var threads: Int = 0
    @Option(name: .shortAndLong, help: "Output mesh (.glb, .obj, .ply, .stl).") var output: String
    @Flag(help: "Replace an existing output file.") var overwrite = false
    @Flag(help: "Print counts and timing as JSON on stdout.") var json = false

    func run() throws {
        try runReporting {
            _ = try MeshFormat.from(path: output)
            let t0 = Clock.seconds()
            let g = try readGrid(grid)
            let t1 = Clock.seconds()
            var m = try MarchingCubes.extract(grid: g.values, dims: g.dims, level: level, bounds: try parseBounds(bounds),
                                              insideAbove: insideAbove, threads: threads)
            let t2 = Clock.seconds()
            if let cg = colorGrid {
                let c = try NpyArray.read(cg)
                guard c.shape.count == 4, c.shape[0] == g.dims.x, c.shape[1] == g.dims.y, c.shape[2] == g.dims.z,
                      c.shape[3] == 3 || c.shape[3] == 4 else {
                    throw HYError.invalidArgument("\(cg): colour grid must have shape [\(g.dims.x), \(g.dims.y), \(g.dims.z), 3 or 4], has \(c.shape)")
                }
                try m.sampleColors(grid: c.data, dims: g.dims, channels: c.shape[3], bounds: try parseBounds(bounds))
            }
            if clean { m = try MeshOps.clean(m) }
            if let k = keepLargest { m = MeshOps.keepLargestComponents(m, count: k) }
            if smooth > 0 { m = MeshOps.taubinSmooth(m, iterations: smooth) }
            if let n = simplify { m = try MeshOps.decimate(m, targetFaces: n) }
            try m.save(output, overwrite: overwrite)
            let t3 = Clock.seconds()
            writeStderr("mesh: \(m.vertexCount) vertices, \(m.faceCount) faces (read \(fmt(t1 - t0)) s, extract \(fmt(t2 - t1)) s, rest \(fmt(t3 - t2)) s)\n")
            if json {
                var out = StdoutWriter()
                out.write(JSONValue.object([("vertices", .int(Int64(m.vertexCount))), ("faces", .int(Int64(m.faceCount))),
                                            ("extract_seconds", .double(t2 - t1))]).serialized() + "\n")
                out.flush()
            }
        }
    }
}

func fmt(_ x: Double) -> String {
    let r = (x * 1000).rounded() / 1000
    return "\(r)"
}

struct PreviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "preview", abstract: "Render a PNG with a 2x2 grid of views of a mesh.")
    @Argument(help: "Mesh file (.glb, .obj, .ply, .stl).") var mesh: String
    @Option(name: .shortAndLong, help: "Output .png.") var output: String
    @Option(help: "Image size in pixels (square).") var size: Int = 512
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            let m = try Mesh.load(mesh)
            let img = try Raster.preview(m, size: size)
            try PNGEncoder.write(img, to: output, overwrite: overwrite)
        }
    }
}

struct MeshInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mesh-info", abstract: "Counts, bounds, topology and volume of a mesh file.")
    @Argument(help: "Mesh file.") var mesh: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try runReporting {
            let m = try Mesh.load(mesh)
            let t = m.topology
            let b = m.bounds
            let comps = MeshOps.componentCount(m)
            let fields: [(String, JSONValue)] = [
                ("vertices", .int(Int64(m.vertexCount))), ("faces", .int(Int64(m.faceCount))),
                ("bounds", .array([b.min.x, b.min.y, b.min.z, b.max.x, b.max.y, b.max.z].map { .double(Double($0)) })),
                ("watertight", .bool(t.watertight)), ("winding_consistent", .bool(t.windingConsistent)),
                ("boundary_edges", .int(Int64(t.boundaryEdges))), ("nonmanifold_edges", .int(Int64(t.nonManifoldEdges))),
                ("euler", .int(Int64(t.eulerCharacteristic))), ("components", .int(Int64(comps))),
                ("area", .double(m.area)), ("volume", .double(m.signedVolume)),
                ("has_colors", .bool(m.colors != nil)), ("has_normals", .bool(m.normals != nil)), ("has_uvs", .bool(m.uvs != nil)),
            ]
            var out = StdoutWriter()
            if json { out.write(JSONValue.object(fields).serialized() + "\n") } else {
                for (k, v) in fields { out.write("\(k)\t\(v.serialized())\n") }
            }
            out.flush()
        }
    }
}

struct MeshConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-convert",
        abstract: "Read a mesh, optionally clean / smooth / decimate / recolour it, and write it in the format of -o.")
    @Argument(help: "Input mesh.") var input: String
    @Option(name: .shortAndLong, help: "Output mesh.") var output: String
    @Flag(help: "Merge coincident vertices, drop degenerate/duplicate faces.") var clean = false
    @Option(help: "Merge vertices closer than this distance (implies --clean).") var mergeEpsilon: Float?
    @Option(help: "Keep this many largest components.") var keepLargest: Int?
    @Option(help: "Drop components with fewer faces than this.") var minComponentFaces: Int?
    @Option(help: "Taubin smoothing iterations.") var smooth: Int = 0
    @Option(help: "Laplacian smoothing iterations.") var laplacian: Int = 0
    @Option(help: "Decimate to at most this many faces.") var simplify: Int?
    @Option(help: "Vertex clustering voxel size.") var cluster: Float?
    @Flag(help: "Compute area-weighted vertex normals.") var normals = false
    @Flag(help: "Colour vertices by their normalized position (a test pattern).") var colorByPosition = false
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            var m = try Mesh.load(input)
            if clean || mergeEpsilon != nil { m = try MeshOps.clean(m, mergeEpsilon: mergeEpsilon ?? 0) }
            if let v = cluster { m = try MeshOps.vertexClustering(m, voxelSize: v) }
            if let k = keepLargest { m = MeshOps.keepLargestComponents(m, count: k) }
            if let k = minComponentFaces { m = MeshOps.removeSmallComponents(m, minFaces: k) }
            if laplacian > 0 { m = MeshOps.laplacianSmooth(m, iterations: laplacian) }
            if smooth > 0 { m = MeshOps.taubinSmooth(m, iterations: smooth) }
            if let n = simplify { m = try MeshOps.decimate(m, targetFaces: n) }
            if colorByPosition {
                let b = m.bounds
                let ext = pointwiseMax(b.max - b.min, SIMD3(repeating: 1e-12))
                m.sampleColors(channels: 3) { p in let q = (p - b.min) / ext; return SIMD4(q.x, q.y, q.z, 1) }
            }
            if normals { m.normals = MeshOps.vertexNormals(m) }
            try m.save(output, overwrite: overwrite)
            writeStderr("mesh-convert: \(m.vertexCount) vertices, \(m.faceCount) faces\n")
        }
    }
}

struct MeshBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-bench",
        abstract: "Time marching cubes on a .npy grid, or decimation / vertex clustering of a mesh file, in-process (best of N runs); prints JSON.")
    @Argument(help: "GRID.npy (marching cubes) or a mesh file (with --simplify or --cluster).") var input: String
    @Option(help: "Iso level.") var level: Float = 0
    @Option(help: "Threads.") var threads: Int = 1
    @Option(help: "Repetitions.") var repeats: Int = 3
    @Option(help: "Decimate the mesh to this many faces.") var simplify: Int?
    @Option(help: "Vertex clustering voxel size.") var cluster: Float?
    @Option(name: .shortAndLong, help: "Also write the last result here.") var output: String?
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            var best = Double.infinity
            var m = Mesh()
            if input.hasSuffix(".npy") {
                let g = try readGrid(input)
                for _ in 0..<max(1, repeats) {
                    let t0 = Clock.seconds()
                    m = try MarchingCubes.extract(grid: g.values, dims: g.dims, level: level, threads: threads)
                    best = min(best, Clock.seconds() - t0)
                }
            } else {
                let src = try Mesh.load(input)
                guard simplify != nil || cluster != nil else { throw HYError.invalidArgument("a mesh input needs --simplify or --cluster") }
                for _ in 0..<max(1, repeats) {
                    let t0 = Clock.seconds()
                    if let n = simplify { m = try MeshOps.decimate(src, targetFaces: n) } else { m = try MeshOps.vertexClustering(src, voxelSize: cluster!) }
                    best = min(best, Clock.seconds() - t0)
                }
            }
            if let output { try m.save(output, overwrite: overwrite) }
            var out = StdoutWriter()
            out.write(JSONValue.object([("seconds", .double(best)), ("threads", .int(Int64(threads))),
                                        ("vertices", .int(Int64(m.vertexCount))), ("faces", .int(Int64(m.faceCount)))]).serialized() + "\n")
            out.flush()
        }
    }
}

import Glibc
import XCTest
@testable import Hunyuan3D
import HunyuanGeometry
import HunyuanImage

/// Parity of the reconstruction model (SVRM) against the fixtures made by the official code
/// (`$HUNYUAN_SHARED/fixtures/svrm/*`, default ../shared), plus its error handling. Every fixture
/// folder holding model.safetensors + inputs.safetensors + reference.safetensors is checked.
final class SVRMTests: XCTestCase {
    static var sharedDir: String {
        if let e = getenv("HUNYUAN_SHARED") { return String(cString: e) }
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        return "/" + root + "/../shared"
    }

    /// Fixture folders, or XCTSkip naming what is missing.
    func fixtures() throws -> [String] {
        let base = Self.sharedDir + "/fixtures/svrm"
        guard FileSystem.isDirectory(base) else { throw XCTSkip("no SVRM fixtures at \(base) (set HUNYUAN_SHARED)") }
        let dirs = try FileSystem.list(base).map { base + "/" + $0 }.filter {
            FileSystem.exists($0 + "/model.safetensors") && FileSystem.exists($0 + "/inputs.safetensors")
                && FileSystem.exists($0 + "/reference.safetensors")
        }
        if dirs.isEmpty { throw XCTSkip("no SVRM fixture folders with model/inputs/reference in \(base)") }
        return dirs
    }

    func tiny() throws -> String {
        let d = Self.sharedDir + "/fixtures/svrm/svrm-tiny"
        guard FileSystem.exists(d + "/model.safetensors") else { throw XCTSkip("fixture \(d) absent (set HUNYUAN_SHARED)") }
        return d
    }

    func maxAbs(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        var m: Float = 0
        for i in 0..<min(a.count, b.count) {
            let d = abs(a[i] - b[i])
            m = d.isNaN ? .infinity : max(m, d)
        }
        return m
    }

    func require(_ f: SafetensorsFile, _ name: String) throws -> Tensor {
        guard let t = f.tensor(name) else { throw HYError.format("\(f.path): no tensor \(name)") }
        return t
    }

    /// Every output and intermediate in reference.safetensors within tolerance (1e-4 abs on tokens,
    /// triplane, features, sdf, rgb, sdf_grid; finite-difference gradients looser, as the README says).
    func testParityOnEveryFixture() throws {
        for dir in try fixtures() {
            let svrm = try SVRM(path: dir, threads: 2)
            let inputs = try SafetensorsFile(path: dir + "/inputs.safetensors")
            let ref = try SafetensorsFile(path: dir + "/reference.safetensors")
            var seen: [String: Float] = [:]
            func check(_ name: String, _ shape: [Int], _ values: [Float], tol: Float = 1e-4) {
                guard let r = ref.tensor(name) else { return }
                XCTAssertEqual(r.shape, shape, "\(dir): \(name) shape")
                guard r.shape == shape else { return }
                let e = maxAbs(values, r.floats())
                seen[name] = e
                XCTAssertLessThanOrEqual(e, tol, "\(dir): \(name) max abs error \(e)")
            }
            let images = try require(inputs, "images")
            let size = images.shape[3]
            let enc = try svrm.encode(images: images.floats(), cameras: try require(inputs, "cameras").floats(),
                                      imageSize: size) { name, shape, v in
                check(name, shape, Array(v))
            }
            let c = svrm.config, r = c.triplaneResolution, perView = 1 + (size / c.patchSize) * (size / c.patchSize)
            check("encoder_tokens", [c.numViews, perView, c.encoderWidth], enc.tokens)
            check("triplane", [1, 3, c.triplaneChannels, r, r], enc.triplane.planes)
            let pts = try require(ref, "points").floats()
            let n = pts.count / 3
            var feats = [Float](repeating: 0, count: n * c.decoderInputs)
            let (sdf, rgb) = try feats.withUnsafeMutableBufferPointer {
                try svrm.query(enc.triplane, points: pts, features: $0.baseAddress)
            }
            check("features", [n, c.decoderInputs], feats)
            check("sdf", [n, 1], sdf)
            check("rgb", [n, 3], rgb)
            let (grad, normal) = try svrm.normals(enc.triplane, points: pts, sdf: sdf)
            check("sdf_grad", [n, 3], grad, tol: 2e-3)
            check("normal", [n, 3], normal, tol: 5e-4)
            let g = try require(ref, "sdf_grid").shape[0]
            check("sdf_grid", [g, g, g], try svrm.sdfGrid(enc.triplane, size: g))
            for must in ["encoder_tokens", "triplane", "sdf", "rgb", "sdf_grid"] {
                XCTAssertNotNil(seen[must], "\(dir): reference has no \(must)")
            }
            print("SVRM parity \(dir): " + seen.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
    }

    /// Matches `mesh`'s vertices to the reference vertex set `theirs` ([V, 3]) within `tol` (max-norm).
    /// Returns (reference vertices left unmatched, our grid-edge vertices left unmatched, our
    /// cell-interior vertices, worst matched distance). Our MarchingCubes may add a few vertices inside
    /// cells (centroids of the loops it fans, see MarchingCubes.swift); those lie on no grid edge.
    func matchVertices(_ mesh: Mesh, _ theirs: [Float], tol: Float, grid g: Int, box: (Double, Double))
        -> (missing: Int, extraOnEdges: Int, interior: Int, worst: Float) {
        let nRef = theirs.count / 3
        func key(_ x: Float, _ y: Float, _ z: Float) -> SIMD3<Int32> {
            SIMD3(Int32((x * 1e4).rounded(.down)), Int32((y * 1e4).rounded(.down)), Int32((z * 1e4).rounded(.down)))
        }
        var cells: [SIMD3<Int32>: [Int]] = [:]
        for i in 0..<nRef { cells[key(theirs[3 * i], theirs[3 * i + 1], theirs[3 * i + 2]), default: []].append(i) }
        func onGrid(_ v: Float) -> Bool {
            let h = (box.1 - box.0) / Double(g - 1), t = (Double(v) - box.0) / h
            return abs(t - t.rounded()) * h < 1e-6
        }
        var used = [Bool](repeating: false, count: nRef)
        var worst: Float = 0, extra = 0, interior = 0
        for v in 0..<mesh.vertexCount {
            let p = mesh.vertex(v)
            let k = key(p.x, p.y, p.z)
            var best: (Int, Float)? = nil
            for dx: Int32 in -1...1 { for dy: Int32 in -1...1 { for dz: Int32 in -1...1 {
                for i in cells[k &+ SIMD3(dx, dy, dz)] ?? [] where !used[i] {
                    let d = max(abs(theirs[3 * i] - p.x), abs(theirs[3 * i + 1] - p.y), abs(theirs[3 * i + 2] - p.z))
                    if d < (best?.1 ?? .infinity) { best = (i, d) }
                }
            } } }
            if let (i, d) = best, d <= tol {
                used[i] = true; worst = max(worst, d)
            } else if [onGrid(p.x), onGrid(p.y), onGrid(p.z)].filter({ $0 }).count >= 2 {
                extra += 1
            } else {
                interior += 1
            }
        }
        return (used.filter { !$0 }.count, extra, interior, worst)
    }

    /// Marching cubes on the reference sdf_grid gives PyMCubes' vertex set (`mc_vertices`) within
    /// 1e-5, as sets; and our whole path (network → SDF slabs → marching cubes) gives it within 1e-4
    /// (a vertex moves by δsdf / |Δsdf along its edge| · cell: fp32 noise of ~1e-7 on an edge whose
    /// values are both ~2e-4 from zero already moves it ~1e-5).
    func testMarchingCubesVertexSet() throws {
        for dir in try fixtures() {
            let ref = try SafetensorsFile(path: dir + "/reference.safetensors")
            guard let mcv = ref.tensor("mc_vertices"), let grid = ref.tensor("sdf_grid") else { continue }
            let svrm = try SVRM(path: dir, threads: 2)
            let box = (svrm.config.boxMin, svrm.config.boxMax)
            let g = grid.shape[0]
            let theirs = mcv.floats()
            let bounds = MarchingCubes.Bounds(min: SIMD3(repeating: box.0), max: SIMD3(repeating: box.1))
            let onRef = try MarchingCubes.extract(grid: grid.floats(), dims: SIMD3(g, g, g), level: 0, bounds: bounds,
                                                  interiorVertices: false)
            let a = matchVertices(onRef, theirs, tol: 1e-5, grid: g, box: box)
            XCTAssertEqual(a.missing, 0, "\(dir): MC on the reference grid misses \(a.missing) of \(theirs.count / 3) vertices")
            XCTAssertEqual(a.extraOnEdges, 0, "\(dir): MC on the reference grid has \(a.extraOnEdges) extra grid-edge vertices")
            XCTAssertEqual(a.interior, 0, "\(dir): MC on the reference grid has \(a.interior) cell-interior vertices")
            XCTAssertEqual(onRef.vertexCount, theirs.count / 3, "\(dir): vertex count differs from PyMCubes")

            let inputs = try SafetensorsFile(path: dir + "/inputs.safetensors")
            let images = try require(inputs, "images")
            let enc = try svrm.encode(images: images.floats(), cameras: try require(inputs, "cameras").floats(),
                                      imageSize: images.shape[3])
            let mesh = try svrm.extractMesh(enc.triplane, resolution: g, colors: true)
            let b = matchVertices(mesh, theirs, tol: 1e-4, grid: g, box: box)
            XCTAssertEqual(b.missing, 0, "\(dir): our mesh misses \(b.missing) of \(theirs.count / 3) reference vertices")
            XCTAssertEqual(b.extraOnEdges, 0, "\(dir): our mesh has \(b.extraOnEdges) grid-edge vertices not in the reference")
            XCTAssertEqual(b.interior, 0, "\(dir): our mesh has \(b.interior) cell-interior vertices")
            XCTAssertEqual(mesh.vertexCount, theirs.count / 3, "\(dir): vertex count differs from PyMCubes")
            XCTAssertEqual(mesh.colors?.count, 3 * mesh.vertexCount)
            print("SVRM marching cubes \(dir): reference grid worst \(a.worst); ours \(mesh.vertexCount) vertices "
                  + "(\(theirs.count / 3) reference, \(b.interior) cell-interior extras), worst \(b.worst)")
        }
    }

    /// Preprocessing (Pillow bicubic + ToTensor + Normalize) from images_uint8 reproduces images.
    func testPreprocessingReproducesImages() throws {
        for dir in try fixtures() {
            let inputs = try SafetensorsFile(path: dir + "/inputs.safetensors")
            guard let u8 = inputs.tensor("images_uint8") else { continue }
            let images = try require(inputs, "images")
            XCTAssertEqual(u8.dtype, .u8)
            let (v, h, w, ch) = (u8.shape[0], u8.shape[1], u8.shape[2], u8.shape[3])
            let size = images.shape[3]
            let raw = Array(u8.data.bindMemory(to: UInt8.self))
            var out: [Float] = []
            for i in 0..<v {
                let im = try ByteImage(width: w, height: h, channels: ch,
                                       pixels: Array(raw[(i * h * w * ch)..<((i + 1) * h * w * ch)]))
                out += try SVRMPreprocess.prepare(im, size: size)
            }
            let e = maxAbs(out, images.floats())
            XCTAssertLessThanOrEqual(e, 1e-3, "\(dir): preprocessing max abs error \(e)")
            print("SVRM preprocessing \(dir): max abs error \(e)")
        }
    }

    /// The default (full-size) configuration's name table is exactly the released model's 509 tensors.
    func testFullSizeTableMatchesOfficialTensorList() throws {
        let path = Self.sharedDir + "/fixtures/svrm/full-size-tensors.json"
        guard FileSystem.exists(path) else { throw XCTSkip("\(path) absent (set HUNYUAN_SHARED)") }
        let file = try MappedFile(path: path)
        let json = try withExtendedLifetime(file) { try JSONValue.parse(file.bytes, context: path) }
        guard let list = json["tensors"]?.objectValue else { return XCTFail("\(path): no tensors object") }
        var official: [String: [Int]] = [:]
        for (name, shape) in list { official[name] = (shape.arrayValue ?? []).compactMap { $0.intValue.map(Int.init) } }
        let ours = try SVRMTensors.table(for: SVRMConfig())
        XCTAssertEqual(ours.count, official.count)
        for (name, shape) in ours { XCTAssertEqual(official[name], shape, name) }
        var params = 0
        for (_, s) in ours { params += s.reduce(1, *) }
        if let n = json["n_params"]?.intValue { XCTAssertEqual(Int64(params), n) }
    }

    /// The predictor's camera vectors equal the fixture's `cameras`.
    func testCameraVectors() throws {
        for dir in try fixtures() {
            let inputs = try SafetensorsFile(path: dir + "/inputs.safetensors")
            let ref = try require(inputs, "cameras").floats()
            XCTAssertLessThanOrEqual(maxAbs(SVRMPreprocess.cameras(), ref), 1e-6, dir)
        }
    }

    // MARK: errors

    func expectError(_ status: HYError.Kind, _ contains: String, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("no error (expected \(status): \(contains))", file: file, line: line)
        } catch let e as HYError {
            XCTAssertEqual(e.kind, status, e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(contains), "message \"\(e.message)\" lacks \"\(contains)\"", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    /// A temporary copy of the tiny fixture's folder with the weights rewritten by `edit`.
    func corruptCopy(_ edit: (inout [SafetensorsWriter.Item]) -> Void) throws -> String {
        let src = try tiny()
        var template = Array("/tmp/svrm-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw HYError.io("mkdtemp failed") }
        let dir = String(cString: p)
        addTeardownBlock { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        let cfg = try FileSystem.readAll(src + "/config.json")
        try FileSystem.writeAtomically(dir + "/config.json", overwrite: true) { w in try cfg.withUnsafeBytes { try w($0) } }
        let ck = try Checkpoint(path: src)
        var items = ck.tensors.map { SafetensorsWriter.Item(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: Array($0.data)) }
        edit(&items)
        try SafetensorsWriter.write(items, to: dir + "/model.safetensors")
        return dir
    }

    func testMissingTensorIsAnError() throws {
        let dir = try corruptCopy { $0.removeAll { $0.name == "img_to_triplane_decoder.upsampler.bias" } }
        expectError(.format, "img_to_triplane_decoder.upsampler.bias") { _ = try SVRM(path: dir, threads: 1) }
    }

    func testWrongShapeIsAnError() throws {
        let name = "render.decoder.net.0.weight"
        let dir = try corruptCopy { items in
            if let i = items.firstIndex(where: { $0.name == name }) {
                let it = items[i]
                items[i] = .init(name: it.name, dtype: it.dtype, shape: [it.shape[1], it.shape[0]], bytes: it.bytes)
            }
        }
        expectError(.format, name) { _ = try SVRM(path: dir, threads: 1) }
    }

    func testUnexpectedTensorIsAnError() throws {
        let dir = try corruptCopy { $0.append(.init(name: "render.decoder.extra", shape: [2], floats: [1, 2])) }
        expectError(.format, "render.decoder.extra") { _ = try SVRM(path: dir, threads: 1) }
    }

    func testNaNWeightsGiveAnErrorNotATrap() throws {
        let dir = try corruptCopy { items in
            if let i = items.firstIndex(where: { $0.name == "img_to_triplane_decoder.upsampler.bias" }) {
                let it = items[i]
                items[i] = .init(name: it.name, shape: it.shape, floats: [Float](repeating: .nan, count: it.shape.reduce(1, *)))
            }
        }
        let svrm = try SVRM(path: dir, threads: 1)
        let inputs = try SafetensorsFile(path: try tiny() + "/inputs.safetensors")
        expectError(.format, "non-finite") {
            _ = try svrm.encode(images: try require(inputs, "images").floats(), cameras: try require(inputs, "cameras").floats())
        }
    }

    /// bf16 weights load and compute exactly what f32 weights holding the same (bf16-rounded) values do.
    func testBF16WeightsMatchRoundedF32() throws {
        func rounded(_ t: SafetensorsWriter.Item) -> [Float] {
            t.bytes.withUnsafeBytes { b in (0..<(t.bytes.count / 4)).map {
                FloatBits.bf16ToFloat(FloatBits.floatToBF16(b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self))) } }
        }
        let bf = try corruptCopy { items in items = items.map { .init(name: $0.name, shape: $0.shape, floats: rounded($0), as: .bf16) } }
        let f32 = try corruptCopy { items in items = items.map { .init(name: $0.name, shape: $0.shape, floats: rounded($0)) } }
        let inputs = try SafetensorsFile(path: try tiny() + "/inputs.safetensors")
        let images = try require(inputs, "images").floats(), cams = try require(inputs, "cameras").floats()
        let a = try SVRM(path: bf, threads: 1).encode(images: images, cameras: cams)
        let b = try SVRM(path: f32, threads: 1).encode(images: images, cameras: cams)
        XCTAssertEqual(a.triplane.planes, b.triplane.planes)
    }

    func testWrongInputsAreErrors() throws {
        let svrm = try SVRM(path: try tiny(), threads: 1)
        let c = svrm.config
        let per = 3 * c.imageSize * c.imageSize
        let cams = [Float](repeating: 0, count: c.numViews * 20)
        expectError(.invalidArgument, "images") {
            _ = try svrm.encode(images: [Float](repeating: 0, count: (c.numViews - 1) * per), cameras: cams)
        }
        expectError(.invalidArgument, "images") {
            _ = try svrm.encode(images: [Float](repeating: 0, count: c.numViews * 3 * (c.imageSize + 14) * (c.imageSize + 14)), cameras: cams)
        }
        expectError(.invalidArgument, "cameras") {
            _ = try svrm.encode(images: [Float](repeating: 0, count: c.numViews * per), cameras: [Float](repeating: 0, count: 20))
        }
        var bad = [Float](repeating: 0, count: c.numViews * per)
        bad[5] = .nan
        expectError(.invalidArgument, "images") { _ = try svrm.encode(images: bad, cameras: cams) }
        let enc = try svrm.encode(images: [Float](repeating: 0, count: c.numViews * per), cameras: cams)
        expectError(.invalidArgument, "points") { _ = try svrm.query(enc.triplane, points: [0, 0]) }
        expectError(.invalidArgument, "grid size") { _ = try svrm.sdfGrid(enc.triplane, size: 1) }
        expectError(.invalidArgument, "square") {
            _ = try SVRMPreprocess.prepare(try ByteImage(width: 4, height: 8, channels: 3,
                                                         pixels: [UInt8](repeating: 0, count: 96)), size: 4)
        }
        expectError(.invalidArgument, "image") {
            _ = try ByteImage(width: 4, height: 4, channels: 3, pixels: [1, 2, 3])
        }
    }

    /// The stages cover [0, 1] in order, and the overall fractions are the ones the C API reports
    /// (encode 0…0.6 by blocks, then 0.6, 0.85, 0.95 and 1 at the starts of the later stages).
    func testProgressStagesMapToTheReportedFractions() {
        func overall(_ s: SVRM.Stage, _ c: Int = 0, of t: Int = 1) -> Float { SVRM.Progress(stage: s, completed: c, total: t).overall }
        XCTAssertEqual(overall(.encode, 0, of: 4), 0)
        for m in 1..<4 { XCTAssertEqual(overall(.encode, m, of: 4), 0.6 * Float(m) / 4) }
        XCTAssertEqual(overall(.marchingCubes), 0.6)
        XCTAssertEqual(overall(.refine), 0.85)
        XCTAssertEqual(overall(.colors), 0.95)
        XCTAssertEqual(overall(.done, 1), 1)
        let stages = SVRM.Stage.allCases
        XCTAssertEqual(stages.first?.share.start, 0)
        XCTAssertEqual(stages.last?.share.end, 1)
        for (a, b) in zip(stages, stages.dropFirst()) { XCTAssertEqual(a.share.end, b.share.start, "\(a) → \(b)") }
        XCTAssertEqual(SVRM.Progress(stage: .encode, completed: 1, total: 4).fraction, 0.25)
    }

    /// RGBA is composited over white as the reference's rgba_to_rgb (float64, truncated).
    func testAlphaOverWhite() throws {
        let im = try ByteImage(width: 2, height: 1, channels: 4, pixels: [10, 20, 30, 255, 100, 0, 200, 128])
        // numpy: (c * a/255 + 255 * (1 - a/255)).astype(uint8)
        XCTAssertEqual(im.compositedOverWhite(), [10, 20, 30, 177, 127, 227])
    }
}

/// The multi-view diffusion's condition image against the official `white_out_background` +
/// `to_rgb_image` run recorded in fixtures/mvd/mvd-lite-tiny.
final class MVDPreprocessTests: XCTestCase {
    func testWhiteOutAndPasteMatchTheOfficialPipeline() throws {
        let d = SVRMTests.sharedDir + "/fixtures/mvd/mvd-lite-tiny"
        guard FileSystem.isDirectory(d) else { throw XCTSkip("no mvd fixture at \(d)") }
        let inp = try Checkpoint(path: d + "/inputs.safetensors")
        let rgba = try inp.require("rgba_u8")
        let im = try ByteImage(width: rgba.shape[1], height: rgba.shape[0], channels: 4, pixels: Array(rgba.data))
        XCTAssertEqual(MVDPreprocess.whiteOut(im).pixels, Array(try inp.require("rgba_after_whiteout_u8").data))
        XCTAssertEqual(MVDPreprocess.conditionRGB(im), Array(try inp.require("cond_rgb_u8").data))
    }
}

import XCTest
import Glibc
@testable import HunyuanTrain
import Hunyuan3D
import HunyuanLM

/// hunyuan3d-tiny's hand-written backward against central finite differences of its own forward,
/// and the training decoder against the SVRM decoder that inference runs.
final class ShapeTrainerTests: XCTestCase {
    static func smallConfig() -> Tiny3DConfig {
        var c = Tiny3DConfig()
        c.vocab = [5, 9, 11, 20]
        c.maxTokens = 8
        c.textWidth = 8; c.textLayers = 2; c.textHeads = 2; c.textMLP = 12
        c.triplaneTokens = 2; c.triplaneUpsample = 2; c.triplaneWidth = 8; c.triplaneLayers = 2; c.triplaneHeads = 2; c.triplaneMLP = 12
        c.triplaneChannels = 3; c.decoderHidden = 6; c.decoderLayers = 3
        return c
    }

    static func randomParams(_ c: Tiny3DConfig, seed: UInt64) -> Tiny3DParams {
        let p = Tiny3DParams(config: c)
        var r = SplitMix64(seed: seed)
        for (i, b) in p.buffers.enumerated() {
            let norm = p.names[i].hasSuffix("norm")
            for j in 0..<b.count { b.p[j] = norm ? 1 + 0.2 * r.gaussian() : 0.5 * r.gaussian() }
        }
        return p
    }

    /// Compares `g` with central differences of `loss` on `perTensor` entries of each parameter tensor
    /// `include` selects (relative error against max(1, |numeric|) below 1e-2); (entries, worst error).
    func checkGradients(_ p: Tiny3DParams, _ g: Tiny3DParams, step h: Float, perTensor: Int, where include: (String) -> Bool,
                        loss: () throws -> Double) rethrows -> (Int, Double) {
        var worst = 0.0, checked = 0
        for (ti, name) in p.names.enumerated() where include(name) {
            let b = p.buffers[ti]
            for k in 0..<min(b.count, perTensor) {
                let j = (k * 7919) % b.count
                let saved = b.p[j]
                b.p[j] = saved + h
                let lp = try loss()
                b.p[j] = saved - h
                let lm = try loss()
                b.p[j] = saved
                let numeric = (lp - lm) / Double(2 * h), analytic = Double(g.buffers[ti].p[j])
                let err = abs(numeric - analytic) / max(1, abs(numeric))
                worst = max(worst, err)
                checked += 1
                XCTAssertLessThan(err, 1e-2, "\(name)[\(j)]: numeric \(numeric), analytic \(analytic)")
            }
        }
        return (checked, worst)
    }

    /// L = Σ_k Σ w_k ⊙ decoder outputs of part k at fixed points, through text, slots, triplanes,
    /// sampling and the decoder.
    func loss(_ p: Tiny3DParams, rows: [Int32], points: [Float], weights: [[Float]]) throws -> Double {
        let c = p.config
        let out = Tiny3DNet.forward(p, rows: rows, tape: nil, pool: nil)
        var l = 0.0
        for k in 0..<c.parts {
            let tri = try Tiny3DNet.triplane(out.triplanes[k], c)
            var acts: [FloatBuffer] = []
            let dec = SVRMDecoder(config: c.decoderConfig, layers: [])
            let o = points.withUnsafeBufferPointer {
                Tiny3DNet.decode(p, decoder: dec, triplane: tri, points: $0.baseAddress!, count: points.count / 3, acts: &acts)
            }
            for i in 0..<weights[k].count { l += Double(weights[k][i]) * Double(o.p[i]) }
        }
        return l
    }

    func testBackwardMatchesFiniteDifferences() throws {
        let c = Self.smallConfig()
        let p = Self.randomParams(c, seed: 3)
        let rows: [Int32] = [1, 3, 0, 2, 4]
        var r = SplitMix64(seed: 11)
        let n = 24
        let points = (0..<(3 * n)).map { _ in r.uniform(-0.95, 0.95) }
        let weights = (0..<c.parts).map { _ in (0..<(4 * n)).map { _ in r.gaussian() } }
        // Analytic gradients.
        let g = Tiny3DParams(config: c)
        let tape = Tiny3DTape()
        let out = Tiny3DNet.forward(p, rows: rows, tape: tape, pool: nil)
        let dec = SVRMDecoder(config: c.decoderConfig, layers: [])
        var dTris: [FloatBuffer] = []
        for k in 0..<c.parts {
            let triplane = try Tiny3DNet.triplane(out.triplanes[k], c)
            var acts: [FloatBuffer] = []
            _ = points.withUnsafeBufferPointer {
                Tiny3DNet.decode(p, decoder: dec, triplane: triplane, points: $0.baseAddress!, count: n, acts: &acts)
            }
            let dTri = FloatBuffer(c.texels * c.triplaneChannels)
            points.withUnsafeBufferPointer { pts in
                weights[k].withUnsafeBufferPointer { w in
                    Tiny3DNet.decodeBackward(p, decoder: dec, points: pts.baseAddress!, count: n, acts: acts, dOut: w.baseAddress!,
                                             into: g, dTriplane: dTri.p)
                }
            }
            dTris.append(dTri)
        }
        Tiny3DNet.backward(p, tape: tape, dTriplanes: dTris.map { UnsafePointer($0.p) },
                           dCenters: [SIMD3<Float>](repeating: .zero, count: c.parts),
                           dPresence: [Float](repeating: 0, count: c.parts), into: g)
        // Central differences on a few entries of the decoder and the output head (the rest is
        // checked on the smooth path below); the ReLUs make a few differences land on a kink, so the
        // step is small (and large enough for fp32).
        let (checked, worst) = try checkGradients(p, g, step: 3e-4, perTensor: 8,
                                                  where: { $0.hasPrefix("decoder.") || $0.hasPrefix("triplane.out") }) {
            try loss(p, rows: rows, points: points, weights: weights)
        }
        XCTAssertGreaterThan(checked, 40)
        print("hunyuan3d-tiny backward: \(checked) entries, worst relative error \(worst)")
    }

    /// The transformers, the slots, the centre and presence heads and the pixel-shuffle head (smooth:
    /// no ReLU kinks), L = Σ_k w_k ⊙ triplane_k + v_k · centre_k + u_k · presence_k.
    func testTriplaneBackwardMatchesFiniteDifferences() throws {
        let c = Self.smallConfig()
        let p = Self.randomParams(c, seed: 8)
        let rows: [Int32] = [1, 3, 0, 2, 4, 1]
        var r = SplitMix64(seed: 12)
        let weights = (0..<c.parts).map { _ in (0..<(c.texels * c.triplaneChannels)).map { _ in r.gaussian() } }
        let cw = (0..<c.parts).map { _ in SIMD3<Float>(r.gaussian(), r.gaussian(), r.gaussian()) }
        let pw = (0..<c.parts).map { _ in r.gaussian() }
        func loss() -> Double {
            let out = Tiny3DNet.forward(p, rows: rows, tape: nil, pool: nil)
            var l = 0.0
            for k in 0..<c.parts {
                for i in 0..<weights[k].count { l += Double(weights[k][i]) * Double(out.triplanes[k].p[i]) }
                l += Double((cw[k] * out.centers[k]).sum()) + Double(pw[k] * out.presence[k])
            }
            return l
        }
        let g = Tiny3DParams(config: c)
        let tape = Tiny3DTape()
        _ = Tiny3DNet.forward(p, rows: rows, tape: tape, pool: nil)
        let dTris = weights.map { FloatBuffer($0) }
        Tiny3DNet.backward(p, tape: tape, dTriplanes: dTris.map { UnsafePointer($0.p) }, dCenters: cw, dPresence: pw, into: g)
        let (checked, worst) = try checkGradients(p, g, step: 2e-3, perTensor: 5, where: { !$0.hasPrefix("decoder.") }) { loss() }
        XCTAssertGreaterThan(checked, 100)
        print("hunyuan3d-tiny transformer backward: \(checked) entries, worst relative error \(worst)")
    }

    /// The training decoder (with activations) gives the SVRM decoder's sdf and rgb.
    func testTrainingDecoderMatchesInferenceDecoder() throws {
        let c = Self.smallConfig()
        let p = Self.randomParams(c, seed: 5)
        let tri = try Tiny3DNet.triplane(Tiny3DNet.forward(p, rows: [1, 2, 3], tape: nil, pool: nil).triplanes[1], c)
        var r = SplitMix64(seed: 2)
        let n = 50
        let points = (0..<(3 * n)).map { _ in r.uniform(-1, 1) }
        var acts: [FloatBuffer] = []
        let out = points.withUnsafeBufferPointer {
            Tiny3DNet.decode(p, decoder: SVRMDecoder(config: c.decoderConfig, layers: []), triplane: tri,
                             points: $0.baseAddress!, count: n, acts: &acts)
        }
        let dec = try p.decoder()
        var sdf = [Float](repeating: 0, count: n), rgb = [Float](repeating: 0, count: 3 * n)
        points.withUnsafeBufferPointer { pts in
            dec.query(tri, points: pts.baseAddress!, count: n, sdf: &sdf, rgb: &rgb, pool: nil)
        }
        for i in 0..<n {
            XCTAssertEqual(out.p[4 * i], sdf[i], accuracy: 1e-5)
            for ch in 0..<3 {
                XCTAssertEqual(1.002 / (1 + expf(-out.p[4 * i + 1 + ch])) - 0.001, rgb[3 * i + ch], accuracy: 1e-5)
            }
        }
    }

    /// The supervision points of a part: a shell around the surface, the inside and the box, with the
    /// scene's own SDF values.
    func testSamplePointsCoverTheInside() {
        let scene = ShapeScene(.cube, .gray)
        let (pts, sdf, rgb) = ShapeTrainer.samplePoints(scene, count: 4096, box: 1, seed: 3)
        XCTAssertEqual(pts.count, 3 * 4096)
        let inside = sdf.filter { $0 < 0 }.count, deep = sdf.filter { $0 < -0.2 }.count, shell = sdf.filter { abs($0) < 0.05 }.count
        print("cube samples: inside \(inside), deeper than 0.2 \(deep), within 0.05 of the surface \(shell), min \(sdf.min()!)")
        XCTAssertGreaterThan(inside, 1200)
        XCTAssertGreaterThan(deep, 100)
        XCTAssertGreaterThan(shell, 1500)
        for i in 0..<4096 {
            XCTAssertEqual(sdf[i], scene.sdf(SIMD3(pts[3 * i], pts[3 * i + 1], pts[3 * i + 2])))
            XCTAssertEqual(rgb[3 * i], ShapeColor.gray.rgb.x)
        }
    }

    /// A checkpoint written by the trainer loads as the inference model's parameters, name for name.
    func testSavedModelRoundTrips() throws {
        let tok = try Tokenizer.load(path: "builtin:hunyuan-tiny")
        var o = ShapeTrainOptions()
        o.vocabScenes = 200; o.steps = 2; o.scenesPerStep = 2; o.pointsPerScene = 64; o.threads = 1
        var c = Tiny3DConfig()
        c.triplaneTokens = 2; c.triplaneWidth = 16; c.triplaneMLP = 16; c.textWidth = 16; c.textMLP = 16
        let t = try ShapeTrainer(config: c, tokenizer: tok, options: o)
        let m1 = try t.trainStep(), m2 = try t.trainStep()
        XCTAssertTrue(m1.loss.isFinite && m2.loss.isFinite)
        let dir = NSTemporaryDirectoryPath() + "/tiny3d-\(getpid())"
        defer { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        try t.save(to: dir)
        let m = try Tiny3DModel(path: dir, threads: 1)
        XCTAssertEqual(m.config, t.params.config)
        for (i, b) in t.params.buffers.enumerated() {
            XCTAssertEqual(Array(b.buffer), Array(m.params.buffers[i].buffer), t.params.names[i])
        }
        XCTAssertThrowsError(try m.parts("  ")) { e in XCTAssertEqual((e as? HYError)?.kind, .invalidArgument) }
    }
}


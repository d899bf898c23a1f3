#if canImport(Glibc)
import Glibc
#endif
import HunyuanLM
import Hunyuan3D

/// Options of `ShapeTrainer` (training `hunyuan3d-tiny` on the procedural shape world).
public struct ShapeTrainOptions: Sendable {
    public var steps = 6000
    /// Scenes (captions) per optimizer step.
    public var scenesPerStep = 16
    /// Supervision points per scene: half near the surface, half uniform in the box.
    public var pointsPerScene = 4096
    public var learningRate = 2e-3
    public var warmupSteps = 200
    public var minLRRatio = 0.05
    public var weightDecay = 0.0
    public var clipNorm = 1.0
    public var seed: UInt64 = 1
    public var threads = 0
    /// The SDF loss: squared error against the SDF clamped to ±clampSDF, weighted 1 within ±delta of
    /// the surface and farWeight beyond (squared, not L1: while the network underfits, L1's median
    /// sits at 0 near every surface and the level set breaks into noise; the mean keeps the sign).
    public var delta: Float = 0.1
    public var clampSDF: Float = 0.4
    public var farWeight: Float = 0.5
    /// Weight of the squared error of each part's centre, and of the presence cross-entropy.
    public var centerWeight: Float = 1
    public var presenceWeight: Float = 0.1
    /// Weight of the colour term (squared error on points within `colorBand` of the surface).
    public var colorWeight: Float = 1
    public var colorBand: Float = 0.03
    /// Probability that a caption token is replaced by the unknown row (robustness to unseen words).
    public var tokenDropout = 0.03
    /// Random training scenes whose captions (every variant, both languages) make the vocabulary.
    public var vocabScenes = 20_000
    /// When set, every step draws its scenes from this fixed list (overfitting checks).
    public var fixedScenes: [ShapeScene]? = nil
    public init() {}
}

/// One optimizer step's numbers.
public struct ShapeTrainMetrics: Sendable {
    public var step: Int
    public var loss: Double
    public var sdfLoss: Double
    public var colorLoss: Double
    public var gradNorm: Double
    public var learningRate: Double
}

/// Held-out quality: mean volumetric IoU with the procedural shape and mean colour error on its surface.
public struct ShapeEvalResult: Sendable {
    public var scenes: Int
    public var meanIoU: Double
    public var minIoU: Double
    /// Mean absolute colour error per channel at ground-truth surface points, in 8-bit levels.
    public var colorError: Double
    public var perScene: [(caption: String, iou: Double, colorError: Double)]
}

/// Trains `hunyuan3d-tiny` by direct supervision: for each caption of a random (not held-out) scene
/// the network's triplanes are decoded at sampled points and compared with the scene's exact SDF
/// (weighted squared error against the clamped SDF) and, near the surface, its colour (squared error). AdamW with warmup
/// and cosine decay; the scenes of a step are split over the threads, each with its own gradients.
public final class ShapeTrainer {
    public let options: ShapeTrainOptions
    public let params: Tiny3DParams
    public let tokenizer: Tokenizer
    let m: Tiny3DParams, v: Tiny3DParams
    let workerGrads: [Tiny3DParams]
    let pool: ThreadPool
    let decoder: SVRMDecoder
    public private(set) var step = 0
    var rng: SplitMix64

    /// A fresh model of `config` (its vocabulary is collected here from the training captions).
    public init(config base: Tiny3DConfig, tokenizer: Tokenizer, options: ShapeTrainOptions) throws {
        self.options = options
        self.tokenizer = tokenizer
        var config = base
        config.vocab = try Self.vocabulary(tokenizer: tokenizer, scenes: options.vocabScenes, seed: options.seed)
        try config.validate("hunyuan3d-tiny config")
        params = Tiny3DParams(config: config)
        m = Tiny3DParams(config: config)
        v = Tiny3DParams(config: config)
        pool = ThreadPool(threads: options.threads)
        workerGrads = (0..<pool.threadCount).map { _ in Tiny3DParams(config: config) }
        decoder = SVRMDecoder(config: config.decoderConfig, layers: [])
        rng = SplitMix64(seed: options.seed)
        initialize()
    }

    /// Token ids of every caption variant of `scenes` random training scenes, sorted.
    public static func vocabulary(tokenizer: Tokenizer, scenes: Int, seed: UInt64) throws -> [Int32] {
        var rng = SplitMix64(seed: seed ^ 0x766f_6361_62)
        var ids = Set<Int32>()
        var list = ShapeScene.allSingles
        while list.count < scenes { list.append(ShapeScene.random(&rng)) }
        for s in list where !s.isHeldOut {
            for lang in CaptionLanguage.allCases {
                for variant in 0..<6 { ids.formUnion(try Tiny3DModel.ids(s.caption(lang, variant: variant), tokenizer: tokenizer)) }
            }
        }
        return ids.sorted()
    }

    /// Normal(0, σ) weights: σ = 1/√fan_in for projections (√2/√fan_in before a ReLU), 0.5/√fan_in
    /// for the residual outputs, 1 for queries, 0.3 for embeddings; norms 1, biases 0.
    func initialize() {
        var r = SplitMix64(seed: options.seed &* 0x9E37_79B9 &+ 7)
        for (i, name) in params.names.enumerated() {
            let shape = params.shapes[i], b = params.buffers[i]
            let fanIn = Float(shape.count == 2 ? shape[1] : 1)
            let std: Float
            if name.hasSuffix("_norm") || name.hasSuffix(".norm") {
                for j in 0..<b.count { b.p[j] = 1 }
                continue
            } else if name.hasSuffix(".bias") {
                continue
            } else if name == "triplane.queries" {
                // A smooth start: 2-D sin-cos positions of each token in its plane, a plane code, small noise.
                let c = params.config, pp = c.triplaneTokens, w = c.triplaneWidth
                for t in 0..<c.tokens {
                    let pl = t / (pp * pp), i = (t / pp) % pp, j = t % pp
                    let row = b.p + t * w
                    for k in 0..<w {
                        let quarter = w / 4, f = Float(k % max(quarter, 1))
                        let freq = Float.pi * powf(2, f * 3 / Float(max(quarter, 1))) / Float(pp)
                        let x = Float(k / max(quarter, 1) < 2 ? j : i) + 0.5
                        row[k] = (k / max(quarter, 1)) % 2 == 0 ? sinf(freq * x) : cosf(freq * x)
                        if k < 3 { row[k] = k == pl ? 1 : 0 }
                        row[k] += 0.02 * r.gaussian()
                    }
                }
                continue
            } else if name == "text.embed" || name == "text.pos" {
                std = 0.3
            } else if name == "triplane.slot_embed" {
                std = 0.5
            } else if name.hasSuffix(".o") || name.hasSuffix(".down") {
                std = 0.5 / fanIn.squareRoot()
            } else if name.hasPrefix("decoder.") {
                std = (2 / fanIn).squareRoot()
            } else {
                std = 1 / fanIn.squareRoot()
            }
            for j in 0..<b.count { b.p[j] = std * r.gaussian() }
        }
    }

    /// Learning rate at (1-based) step s: linear warmup, then cosine to minLRRatio × peak.
    func learningRate(_ s: Int) -> Double {
        let o = options
        if o.warmupSteps > 0 && s <= o.warmupSteps { return o.learningRate * Double(s) / Double(o.warmupSteps) }
        let progress = min(1, Double(s - o.warmupSteps) / Double(max(1, o.steps - o.warmupSteps)))
        return o.learningRate * (o.minLRRatio + (1 - o.minLRRatio) * 0.5 * (1 + cos(Double.pi * progress)))
    }

    /// One optimizer step over `scenesPerStep` random training scenes.
    public func trainStep() throws -> ShapeTrainMetrics {
        let o = options, c = params.config
        var batch: [(ShapeScene, [Int32], UInt64)] = []
        while batch.count < o.scenesPerStep {
            let s = o.fixedScenes.map { $0[rng.below($0.count)] } ?? ShapeScene.random(&rng)
            if s.isHeldOut && o.fixedScenes == nil { continue }
            let lang = rng.nextDouble() < 0.5 ? CaptionLanguage.english : .chinese
            var rows = Tiny3DNet.rows(try Tiny3DModel.ids(s.caption(lang, variant: rng.below(6)), tokenizer: tokenizer), c)
            for i in 1..<max(1, rows.count - 1) where rng.nextDouble() < o.tokenDropout { rows[i] = 0 }
            batch.append((s, rows, rng.next()))
        }
        for g in workerGrads { g.zero() }
        let workers = workerGrads.count
        var sdfLoss = [Double](repeating: 0, count: workers), colorLoss = [Double](repeating: 0, count: workers)
        sdfLoss.withUnsafeMutableBufferPointer { sl in
            colorLoss.withUnsafeMutableBufferPointer { cl in
                let slp = sl.baseAddress!, clp = cl.baseAddress!
                pool.parallelFor(workers) { w in
                    for i in stride(from: w, to: batch.count, by: workers) {
                        let (a, b) = sceneGradient(batch[i].0, rows: batch[i].1, seed: batch[i].2, into: workerGrads[w],
                                                   scale: 1 / Float(batch.count))
                        slp[w] += a; clp[w] += b
                    }
                }
            }
        }
        let g = workerGrads[0]
        for w in 1..<workers { g.add(workerGrads[w]) }
        step += 1
        var norm2 = 0.0
        for b in g.buffers { var s: Float = 0; for j in 0..<b.count { s += b.p[j] * b.p[j] }; norm2 += Double(s) }
        let norm = norm2.squareRoot()
        let clip: Float = o.clipNorm > 0 && norm > o.clipNorm ? Float(o.clipNorm / norm) : 1
        let lr = learningRate(step)
        let b1: Float = 0.9, b2: Float = 0.99
        let bc1 = Float(1 - pow(0.9, Double(step))), bc2 = Float(1 - pow(0.99, Double(step)))
        for i in params.buffers.indices {
            let decays = params.shapes[i].count == 2 && !params.names[i].hasPrefix("text.embed") && params.names[i] != "triplane.queries"
            let decay: Float = decays ? 1 - Float(lr * o.weightDecay) : 1
            adamwStep(params.buffers[i].p, g.buffers[i].p, m.buffers[i].p, v.buffers[i].p, params.buffers[i].count,
                      lr: Float(lr), decay: decay, clip: clip, b1: b1, b2: b2, bc1: bc1, bc2: bc2, eps: 1e-8)
        }
        let sl = sdfLoss.reduce(0, +) / Double(batch.count), cl = colorLoss.reduce(0, +) / Double(batch.count)
        return ShapeTrainMetrics(step: step, loss: sl + Double(o.colorWeight) * cl, sdfLoss: sl, colorLoss: cl,
                                 gradNorm: norm, learningRate: lr)
    }

    /// Points of one scene: half projected onto the surface and jittered (σ 0.01 or 0.04), a quarter
    /// uniform in the box, a quarter uniform in the parts' bounding boxes; with their exact SDF and colour.
    public static func samplePoints(_ scene: ShapeScene, count n: Int, box: Float, seed: UInt64)
        -> (points: [Float], sdf: [Float], rgb: [Float]) {
        var r = SplitMix64(seed: seed)
        var pts = [Float](repeating: 0, count: 3 * n), sdf = [Float](repeating: 0, count: n), rgb = [Float](repeating: 0, count: 3 * n)
        let lim = box * 0.98
        for i in 0..<n {
            var p = SIMD3<Float>(r.uniform(-lim, lim), r.uniform(-lim, lim), r.uniform(-lim, lim))
            if i >= 3 * n / 4 {
                // Uniform in a part's bounding box (10% larger): its inside and its surroundings.
                let part = scene.parts[i % scene.parts.count]
                let ext = SIMD3(part.r, part.halfHeight, part.r) * 1.1
                p = part.center + SIMD3(r.uniform(-1, 1), r.uniform(-1, 1), r.uniform(-1, 1)) * ext
                p = pointwiseMin(pointwiseMax(p, SIMD3(repeating: -lim)), SIMD3(repeating: lim))
            } else if i < n / 2 {
                p = surfacePoint(scene, p)
                let sigma: Float = i % 2 == 0 ? 0.01 : 0.04
                p += SIMD3(r.gaussian(), r.gaussian(), r.gaussian()) * sigma
                p = pointwiseMin(pointwiseMax(p, SIMD3(repeating: -lim)), SIMD3(repeating: lim))
            }
            pts[3 * i] = p.x; pts[3 * i + 1] = p.y; pts[3 * i + 2] = p.z
            sdf[i] = scene.sdf(p)
            let c = scene.color(p)
            rgb[3 * i] = c.x; rgb[3 * i + 1] = c.y; rgb[3 * i + 2] = c.z
        }
        return (pts, sdf, rgb)
    }

    /// p moved along the SDF's gradient onto the surface (twice, for points near a crease).
    public static func surfacePoint(_ scene: ShapeScene, _ p0: SIMD3<Float>) -> SIMD3<Float> {
        var p = p0
        let h: Float = 1e-3
        for _ in 0..<2 {
            let d = scene.sdf(p)
            let g = SIMD3(scene.sdf(p + SIMD3(h, 0, 0)) - scene.sdf(p - SIMD3(h, 0, 0)),
                          scene.sdf(p + SIMD3(0, h, 0)) - scene.sdf(p - SIMD3(0, h, 0)),
                          scene.sdf(p + SIMD3(0, 0, h)) - scene.sdf(p - SIMD3(0, 0, h)))
            let len = (g * g).sum().squareRoot()
            if len < 1e-9 { break }
            p -= g / len * d
        }
        return p
    }

    /// Forward and backward of one scene; gradients (scaled by `scale`) accumulate into `g`. Slot k
    /// is supervised with its presence (cross-entropy) and, when the scene has a k-th part, with that
    /// part in its own frame (its SDF and colour at points sampled around it) and its centre (squared
    /// error). Returns (SDF + centre + presence loss, colour loss), means over the slots.
    func sceneGradient(_ scene: ShapeScene, rows: [Int32], seed: UInt64, into g: Tiny3DParams, scale: Float) -> (Double, Double) {
        let c = params.config, o = options
        let tape = Tiny3DTape()
        let out = Tiny3DNet.forward(params, rows: rows, tape: tape, pool: nil)
        var dTris: [FloatBuffer?] = [], dCenters = [SIMD3<Float>](repeating: .zero, count: c.parts)
        var dPresence = [Float](repeating: 0, count: c.parts)
        var sl = 0.0, cl = 0.0
        var r = SplitMix64(seed: seed)
        for s in 0..<c.parts {
            // Presence: binary cross-entropy of the logit against "the prompt names a k-th object".
            let present: Float = s < scene.parts.count ? 1 : 0
            let prob = 1 / (1 + expf(-out.presence[s]))
            sl += Double(o.presenceWeight * -(present * logf(max(prob, 1e-7)) + (1 - present) * logf(max(1 - prob, 1e-7)))) / Double(c.parts)
            dPresence[s] = o.presenceWeight * (prob - present) * scale / Float(c.parts)
            guard s < scene.parts.count, let triplane = try? Tiny3DNet.triplane(out.triplanes[s], c) else {
                dTris.append(nil)
                continue
            }
            let dTri = FloatBuffer(c.texels * c.triplaneChannels)
            dTris.append(dTri)
            var part = scene.parts[s]
            part.center = .zero
            let n = o.pointsPerScene
            let (pts, gt, gtRGB) = Self.samplePoints(ShapeScene(parts: [part], relation: nil), count: n, box: Float(c.box), seed: r.next())
            var acts: [FloatBuffer] = []
            let dec = pts.withUnsafeBufferPointer {
                Tiny3DNet.decode(params, decoder: decoder, triplane: triplane, points: $0.baseAddress!, count: n, acts: &acts)
            }
            let dOut = FloatBuffer(4 * n)
            var colored = 0
            for i in 0..<n where abs(gt[i]) < o.colorBand { colored += 1 }
            let sdfScale = scale / Float(n * c.parts), colorScale = scale * o.colorWeight / Float(max(colored, 1) * c.parts)
            var partSL = 0.0, partCL = 0.0
            for i in 0..<n {
                let pred = dec.p[4 * i], t = min(max(gt[i], -o.clampSDF), o.clampSDF)
                let weight: Float = abs(gt[i]) < o.delta ? 1 : o.farWeight
                partSL += Double(weight * (pred - t) * (pred - t))
                dOut.p[4 * i] = 2 * weight * (pred - t) * sdfScale
                if abs(gt[i]) < o.colorBand {
                    for ch in 0..<3 {
                        let sg = 1 / (1 + expf(-dec.p[4 * i + 1 + ch]))
                        let e = 1.002 * sg - 0.001 - gtRGB[3 * i + ch]
                        partCL += Double(e * e)
                        dOut.p[4 * i + 1 + ch] = colorScale * 2 * e * 1.002 * sg * (1 - sg)
                    }
                }
            }
            sl += partSL / Double(n * c.parts)
            cl += partCL / Double(max(colored, 1) * c.parts)
            pts.withUnsafeBufferPointer {
                Tiny3DNet.decodeBackward(params, decoder: decoder, points: $0.baseAddress!, count: n, acts: acts, dOut: dOut.p,
                                         into: g, dTriplane: dTri.p)
            }
            let e = out.centers[s] - scene.parts[s].center
            sl += Double(o.centerWeight * (e * e).sum()) / Double(c.parts)
            dCenters[s] = 2 * o.centerWeight * e * scale / Float(c.parts)
        }
        Tiny3DNet.backward(params, tape: tape, dTriplanes: dTris.map { $0.map { UnsafePointer($0.p) } }, dCenters: dCenters,
                           dPresence: dPresence, into: g)
        return (sl, cl)
    }

    /// Scenes held out of training: the first `count` held-out combinations of a fixed random stream
    /// (half single parts, half pairs).
    public static func heldOutScenes(count: Int, seed: UInt64 = 2024) -> [ShapeScene] {
        var r = SplitMix64(seed: seed)
        var out: [ShapeScene] = [], keys = Set<String>()
        while out.count < count {
            let s = ShapeScene.random(&r, singleShare: out.count % 2 == 0 ? 1 : 0)
            if s.isHeldOut && keys.insert(s.key).inserted { out.append(s) }
        }
        return out
    }

    /// IoU and colour error of `model`-style inference with these parameters on `scenes` (canonical
    /// captions in `language`), on a grid³ over the box.
    public func evaluate(scenes: [ShapeScene], language: CaptionLanguage, grid: Int = 64) throws -> ShapeEvalResult {
        try Self.evaluate(params: params, tokenizer: tokenizer, scenes: scenes, language: language, grid: grid, pool: pool)
    }

    public static func evaluate(params: Tiny3DParams, tokenizer: Tokenizer, scenes: [ShapeScene], language: CaptionLanguage,
                                grid n: Int, pool: ThreadPool) throws -> ShapeEvalResult {
        let c = params.config
        let dec = try params.decoder()
        let axis = SVRMDecoder.linspace(Float(-c.box), Float(c.box), n)
        var gridPts = [Float](repeating: 0, count: 3 * n * n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n {
            let o = 3 * ((i * n + j) * n + k)
            gridPts[o] = axis[i]; gridPts[o + 1] = axis[j]; gridPts[o + 2] = axis[k]
        } } }
        var per: [(String, Double, Double)] = []
        for (si, s) in scenes.enumerated() {
            let caption = s.caption(language)
            let rows = Tiny3DNet.rows(try Tiny3DModel.ids(caption, tokenizer: tokenizer), c)
            let parts = try Tiny3DModel.parts(Tiny3DNet.forward(params, rows: rows, tape: nil, pool: pool), c)
            let count = n * n * n
            var sdf = [Float](repeating: 0, count: count)
            gridPts.withUnsafeBufferPointer { p in
                sdf.withUnsafeMutableBufferPointer { d in
                    Tiny3DModel.query(parts, decoder: dec, points: p.baseAddress!, count: count, sdf: d.baseAddress!, rgb: nil, pool: pool)
                }
            }
            var inter = 0, union = 0
            for i in 0..<count {
                let a = sdf[i] < 0
                let b = s.sdf(SIMD3(gridPts[3 * i], gridPts[3 * i + 1], gridPts[3 * i + 2])) < 0
                if a && b { inter += 1 }
                if a || b { union += 1 }
            }
            // Colour at 512 ground-truth surface points.
            var r = SplitMix64(seed: UInt64(si) &+ 99)
            var surf = [Float](), want = [Float]()
            let lim = Float(c.box) * 0.98
            while surf.count < 3 * 512 {
                let p = surfacePoint(s, SIMD3(r.uniform(-lim, lim), r.uniform(-lim, lim), r.uniform(-lim, lim)))
                guard abs(s.sdf(p)) < 1e-3 else { continue }
                surf += [p.x, p.y, p.z]
                let col = s.color(p)
                want += [col.x, col.y, col.z]
            }
            var d2 = [Float](repeating: 0, count: 512), rgb = [Float](repeating: 0, count: 3 * 512)
            surf.withUnsafeBufferPointer { p in
                d2.withUnsafeMutableBufferPointer { d in
                    rgb.withUnsafeMutableBufferPointer { cc in
                        Tiny3DModel.query(parts, decoder: dec, points: p.baseAddress!, count: 512, sdf: d.baseAddress!,
                                          rgb: cc.baseAddress!, pool: pool)
                    }
                }
            }
            var err = 0.0
            for i in 0..<(3 * 512) { err += Double(abs(min(max(rgb[i], 0), 1) - want[i])) }
            per.append((caption, union > 0 ? Double(inter) / Double(union) : 1, err / Double(3 * 512) * 255))
        }
        let ious = per.map(\.1)
        return ShapeEvalResult(scenes: per.count, meanIoU: ious.reduce(0, +) / Double(max(1, ious.count)), minIoU: ious.min() ?? 0,
                               colorError: per.map(\.2).reduce(0, +) / Double(max(1, per.count)), perScene: per)
    }

    /// Writes config.json and model.safetensors (f32) into `dir` (created if needed).
    public func save(to dir: String) throws {
        try FileSystem.createDirectory(dir)
        try FileSystem.writeAtomically(FileSystem.join(dir, "config.json"),
                                       bytes: Array((params.config.json.serialized() + "\n").utf8), overwrite: true)
        try SafetensorsWriter.write(params.safetensorsItems(), metadata: [("format", "pt")],
                                    to: FileSystem.join(dir, "model.safetensors"))
    }
}

import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// Activations of one decoder layer kept for the backward.
final class LayerTape {
    let xIn, xn1, rin1, qRope, qRinv, qn, kn, lse, att, xMid, xn2, rin2, ffn: FloatBuffer
    let moe: MoETape
    init(_ c: HunyuanConfig, layer l: Int, batch: Int, seqLen t: Int) {
        let n = batch * t, d = c.hiddenSize, qw = c.numHeads * c.headDim, kw = c.numKVHeads * c.headDim
        xIn = FloatBuffer(n * d); xn1 = FloatBuffer(n * d); rin1 = FloatBuffer(n)
        qRope = FloatBuffer(n * qw); qRinv = FloatBuffer(n * c.numHeads); qn = FloatBuffer(n * qw); kn = FloatBuffer(n * kw)
        lse = FloatBuffer(batch * c.numHeads * t); att = FloatBuffer(n * qw)
        xMid = FloatBuffer(n * d); xn2 = FloatBuffer(n * d); rin2 = FloatBuffer(n); ffn = FloatBuffer(n * d)
        moe = MoETape(n: n, d: d, experts: c.numExperts, k: c.moeTopK[l], sharedWidth: c.sharedMLPWidth[l],
                      expertWidth: c.moeIntermediate[l])
    }
}

/// The K/V of one CLA group (raw projections after RoPE; keys also RMS-normalized without weight), and
/// the gradient accumulators every layer of the group adds into.
final class KVGroupTape {
    let kRope, kHat, kRinv, v, dkHat, dv: FloatBuffer
    init(_ c: HunyuanConfig, rows n: Int) {
        let kw = c.numKVHeads * c.headDim
        kRope = FloatBuffer(n * kw); kHat = FloatBuffer(n * kw); kRinv = FloatBuffer(n * c.numKVHeads); v = FloatBuffer(n * kw)
        dkHat = FloatBuffer(n * kw); dv = FloatBuffer(n * kw)
    }
}

/// Result of one forward (+ backward) pass over a micro-batch.
public struct PassResult: Sendable {
    /// Mean next-token cross-entropy over the counted targets.
    public var loss: Double
    /// Number of counted targets.
    public var tokens: Int
    /// Σ over layers of the balance loss (before the coefficient).
    public var balanceLoss: Double
    /// Expert load per layer.
    public var stats: [ExpertStats]
    /// Logits [rows, vocab] when requested.
    public var logits: [Float]?
}

/// Forward and backward of a whole Hunyuan MoE model over a batch of equal-length sequences,
/// following the official Hunyuan-Large modeling code: embedding → per layer (RMSNorm → q/k/v →
/// RoPE → QK-norm → causal GQA attention, CLA groups sharing the owner's raw K/V → o_proj → residual;
/// RMSNorm → router softmax + top-k (capacity, dropping, recycling) + shared expert → residual) →
/// RMSNorm → tied LM head → cross-entropy. Not thread-safe: one pass at a time.
public final class TrainerModel: @unchecked Sendable {
    public let config: HunyuanConfig
    let params: TrainParams
    public let pool: ThreadPool
    public var moe = MoETrainingOptions()
    private var ropeCache: (Int, FloatBuffer)? = nil

    /// A model for `config` with zero parameters (load or initialize them next).
    public init(config: HunyuanConfig, threads: Int = 0) throws {
        self.config = config
        params = try TrainParams(config: config)
        pool = ThreadPool(threads: threads)
    }

    /// Loads the parameters of an HF checkpoint folder (config.json + safetensors).
    public convenience init(checkpoint dir: String, threads: Int = 0) throws {
        try self.init(config: try HunyuanConfig.load(directory: dir), threads: threads)
        try params.load(from: try Checkpoint(path: dir))
    }

    public var parameterCount: Int { params.parameterCount }
    public var parameterNames: [String] { params.all.map(\.name) }
    /// Names of what the optimizer updates (all parameters, or the LoRA adapters).
    public var trainableNames: [String] { params.trainable.map(\.name) }

    /// LoRA fine-tuning: freezes the model and trains low-rank adapters on the chosen projections;
    /// saved checkpoints hold the merged weights.
    public func enableLoRA(_ o: LoRAOptions, seed: UInt64 = 0) throws { try params.enableLoRA(o, seed: seed) }

    /// Copy of a parameter's gradient (nil for an unknown name).
    public func gradient(_ name: String) -> [Float]? {
        params.byName[name].map { Array(UnsafeBufferPointer(start: $0.g, count: $0.count)) }
    }
    /// Copy of a parameter's value.
    public func value(_ name: String) -> [Float]? {
        params.byName[name].map { Array(UnsafeBufferPointer(start: $0.w, count: $0.count)) }
    }
    /// Sets one element of a parameter (for finite-difference checks).
    public func setValue(_ name: String, index: Int, _ v: Float) {
        guard let p = params.byName[name], index >= 0, index < p.count else { return }
        p.value[index] = v
    }
    public func zeroGradients() { params.zeroGrad() }

    private func rope(_ t: Int) -> FloatBuffer {
        if let (n, b) = ropeCache, n == t { return b }
        let hd = config.headDim
        let b = FloatBuffer(t * hd)
        HunyuanAttention.inverseFrequencies(config).withUnsafeBufferPointer { f in
            for i in 0..<t { ropeTable(position: i, invFreq: f.baseAddress!, headDim: hd, b.p + i * hd) }
        }
        ropeCache = (t, b)
        return b
    }

    /// Runs `batch` sequences of `seqLen` tokens (`tokens` row-major). `targets` (same length, −1 =
    /// ignored) are the next-token labels. With `backward`, gradients of lossScale · (CE + α·balance)
    /// are *added* to the parameter gradients. `seed` drives recycle routing.
    public func pass(tokens: [Int32], targets: [Int32], batch: Int, seqLen t: Int, backward: Bool,
                     lossScale: Float = 1, seed: UInt64 = 0, wantLogits: Bool = false) throws -> PassResult {
        let c = config, w = params
        let n = batch * t, d = c.hiddenSize, hd = c.headDim, nh = c.numHeads, nkv = c.numKVHeads
        let qw = nh * hd, kw = nkv * hd, V = c.vocabSize, eps = c.rmsNormEps
        let attScale = 1 / Float(hd).squareRoot()
        guard batch > 0, t > 0, tokens.count == n, targets.count == n else {
            throw HYError.invalidArgument("trainer: \(tokens.count) tokens / \(targets.count) targets for batch \(batch) × \(t)")
        }
        for (i, id) in tokens.enumerated() where id < 0 || Int(id) >= V {
            throw HYError.invalidArgument("trainer: token id \(id) at \(i) outside the vocabulary (0..<\(V))")
        }
        for (i, id) in targets.enumerated() where Int(id) >= V || id < -1 {
            throw HYError.invalidArgument("trainer: target \(id) at \(i) outside the vocabulary")
        }
        let table = rope(t)
        var rng = SplitMix64(seed: seed)
        let x = FloatBuffer(n * d), tmp = FloatBuffer(n * d)
        embeddingForward(w.embed.w, ids: tokens, dim: d, x.p)
        var tapes: [LayerTape] = []
        var groups: [KVGroupTape] = []
        for l in 0..<c.numLayers {
            let lw = w.layers[l], lt = LayerTape(c, layer: l, batch: batch, seqLen: t)
            tapes.append(lt)
            lt.xIn.p.update(from: x.p, count: n * d)
            rmsnorm(x.p, lw.inputNorm.w, rows: n, dim: d, eps: eps, lt.xn1.p, rinv: lt.rin1.p)
            project(lw.q, lt.xn1.p, rows: n, inF: d, outF: qw, lt.qRope.p, pool: pool)
            ropeNeoX(lt.qRope.p, rows: n, heads: nh, headDim: hd, table: table.p, period: t, inverse: false)
            if let wk = lw.k, let wv = lw.v {
                let g = KVGroupTape(c, rows: n)
                groups.append(g)
                project(wk, lt.xn1.p, rows: n, inF: d, outF: kw, g.kRope.p, pool: pool)
                ropeNeoX(g.kRope.p, rows: n, heads: nkv, headDim: hd, table: table.p, period: t, inverse: false)
                project(wv, lt.xn1.p, rows: n, inF: d, outF: kw, g.v.p, pool: pool)
                if c.useQKNorm {
                    rmsnorm(g.kRope.p, nil, rows: n * nkv, dim: hd, eps: eps, g.kHat.p, rinv: g.kRinv.p)
                } else {
                    g.kHat.p.update(from: g.kRope.p, count: n * kw)
                }
            }
            guard let g = groups.last else { throw HYError.internal("trainer: layer \(l) has no K/V group") }
            if let qn = lw.queryNorm, let kn = lw.keyNorm {
                rmsnorm(lt.qRope.p, qn.w, rows: n * nh, dim: hd, eps: eps, lt.qn.p, rinv: lt.qRinv.p)
                for i in 0..<(n * kw) { lt.kn[i] = g.kHat[i] * kn.w[i % hd] }
            } else {
                lt.qn.p.update(from: lt.qRope.p, count: n * qw)
                lt.kn.p.update(from: g.kHat.p, count: n * kw)
            }
            for b in 0..<batch {
                attention(q: lt.qn.p + b * t * qw, qStride: qw, nq: t, keys: lt.kn.p + b * t * kw, kStride: kw,
                          values: g.v.p + b * t * kw, vStride: kw, nk: t, heads: nh, kvHeads: nkv, headDim: hd,
                          scale: attScale, mask: .causal(offset: 0), out: lt.att.p + b * t * qw, outStride: qw,
                          lse: lt.lse.p + b * nh * t, pool: pool)
            }
            project(lw.o, lt.att.p, rows: n, inF: qw, outF: d, tmp.p, pool: pool)
            for i in 0..<(n * d) { x[i] += tmp[i] }
            lt.xMid.p.update(from: x.p, count: n * d)
            rmsnorm(x.p, lw.postNorm.w, rows: n, dim: d, eps: eps, lt.xn2.p, rinv: lt.rin2.p)
            TrainerMoE.forward(layer: lw, config: c, layerIndex: l, x: lt.xn2.p, tape: lt.moe, options: moe,
                               rng: &rng, out: lt.ffn.p, pool: pool)
            for i in 0..<(n * d) { x[i] += lt.ffn[i] }
        }
        let xnF = FloatBuffer(n * d), rinF = FloatBuffer(n)
        rmsnorm(x.p, w.norm.w, rows: n, dim: d, eps: eps, xnF.p, rinv: rinF.p)
        let logits = FloatBuffer(try checkedMul(n, V, "logits"))
        linearForward(xnF.p, w.embed.w, rows: n, inF: d, outF: V, logits.p, pool: pool)
        let saved = wantLogits ? Array(UnsafeBufferPointer(start: logits.p, count: n * V)) : nil
        let (lossSum, counted) = crossEntropy(logits.p, targets: targets, vocab: V, scale: lossScale, pool: pool)
        let stats = tapes.map { $0.moe.stats }
        let result = PassResult(loss: counted > 0 ? lossSum / Double(counted) : 0, tokens: counted,
                                balanceLoss: stats.reduce(0) { $0 + $1.balanceLoss }, stats: stats, logits: saved)
        guard backward else { return result }

        // Backward.
        let dx = FloatBuffer(n * d), dxn = FloatBuffer(n * d)
        linearBackward(xnF.p, w.embed.w, logits.p, rows: n, inF: d, outF: V, dW: w.embed.g, dx: dxn.p,
                       accumulate: false, pool: pool)
        rmsnormBackward(x.p, w.norm.w, rinv: rinF.p, dxn.p, rows: n, dim: d, dx: dx.p, accumulate: false, dw: w.norm.g)
        let auxScale = Float(moe.auxLossCoefficient) * lossScale
        let dAtt = FloatBuffer(n * qw), dqn = FloatBuffer(n * qw), dkn = FloatBuffer(n * kw), dk = FloatBuffer(n * kw)
        for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
            let lw = w.layers[l], lt = tapes[l], g = groups[l / c.kvShare]
            // x_out = xMid + ffn(norm(xMid))
            TrainerMoE.backward(layer: lw, config: c, layerIndex: l, x: lt.xn2.p, tape: lt.moe, dOut: dx.p,
                                auxScale: auxScale, dx: dxn.p, pool: pool)
            rmsnormBackward(lt.xMid.p, lw.postNorm.w, rinv: lt.rin2.p, dxn.p, rows: n, dim: d, dx: dx.p,
                            accumulate: true, dw: lw.postNorm.g)
            // xMid = xIn + o(attention(norm(xIn)))
            projectBackward(lw.o, lt.att.p, dx.p, rows: n, inF: qw, outF: d, dx: dAtt.p,
                           accumulate: false, pool: pool)
            dkn.zero()
            for b in 0..<batch {
                let qo = b * t * qw, ko = b * t * kw
                attentionBackward(q: lt.qn.p + qo, qStride: qw, nq: t, k: lt.kn.p + ko, kStride: kw, v: g.v.p + ko,
                                  vStride: kw, nk: t, heads: nh, kvHeads: nkv, headDim: hd, scale: attScale,
                                  mask: .causal(offset: 0), lse: lt.lse.p + b * nh * t, dOut: dAtt.p + qo, dOutStride: qw,
                                  dq: dqn.p + qo, dk: dkn.p + ko, dv: g.dv.p + ko, pool: pool)
            }
            if let qn = lw.queryNorm, let kn = lw.keyNorm {
                for i in 0..<(n * kw) {
                    kn.g[i % hd] += dkn[i] * g.kHat[i]
                    g.dkHat[i] += dkn[i] * kn.w[i % hd]
                }
                rmsnormBackward(lt.qRope.p, qn.w, rinv: lt.qRinv.p, dqn.p, rows: n * nh, dim: hd, dx: dAtt.p,
                                accumulate: false, dw: qn.g)
            } else {
                for i in 0..<(n * kw) { g.dkHat[i] += dkn[i] }
                dAtt.p.update(from: dqn.p, count: n * qw)
            }
            // dAtt now holds d(qRope).
            ropeNeoX(dAtt.p, rows: n, heads: nh, headDim: hd, table: table.p, period: t, inverse: true)
            projectBackward(lw.q, lt.xn1.p, dAtt.p, rows: n, inF: d, outF: qw, dx: dxn.p,
                           accumulate: false, pool: pool)
            if let wk = lw.k, let wv = lw.v {
                if c.useQKNorm {
                    rmsnormBackward(g.kRope.p, nil, rinv: g.kRinv.p, g.dkHat.p, rows: n * nkv, dim: hd, dx: dk.p,
                                    accumulate: false, dw: nil)
                } else {
                    dk.p.update(from: g.dkHat.p, count: n * kw)
                }
                ropeNeoX(dk.p, rows: n, heads: nkv, headDim: hd, table: table.p, period: t, inverse: true)
                projectBackward(wk, lt.xn1.p, dk.p, rows: n, inF: d, outF: kw, dx: dxn.p, accumulate: true, pool: pool)
                projectBackward(wv, lt.xn1.p, g.dv.p, rows: n, inF: d, outF: kw, dx: dxn.p, accumulate: true, pool: pool)
            }
            rmsnormBackward(lt.xIn.p, lw.inputNorm.w, rinv: lt.rin1.p, dxn.p, rows: n, dim: d, dx: dx.p,
                            accumulate: true, dw: lw.inputNorm.g)
        }
        embeddingBackward(ids: tokens, dim: d, dx.p, dE: w.embed.g)
        return result
    }

    /// Writes an HF checkpoint folder: config.json (`configJSON`, the model's HF config, plus the
    /// `head_dim` it implies when absent — transformers' Hunyuan classes need it — and `torch_dtype`
    /// of the saved weights), generation_config.json and model.safetensors with the official tensor
    /// names, in `dtype`.
    public func saveCheckpoint(to dir: String, configJSON: JSONValue, dtype: DType = .f32) throws {
        if !FileSystem.isDirectory(dir) && mkdir(dir, 0o755) != 0 {
            throw HYError.io("\(dir): cannot create folder")
        }
        var pairs: [(String, JSONValue)] = []
        if case .object(let p) = configJSON { pairs = p }
        if !pairs.contains(where: { $0.0 == "head_dim" }) { pairs.append(("head_dim", .int(Int64(config.headDim)))) }
        let dtypeName = dtype == .bf16 ? "bfloat16" : (dtype == .f16 ? "float16" : "float32")
        pairs.removeAll { $0.0 == "torch_dtype" || $0.0 == "dtype" }
        pairs.append(("torch_dtype", .string(dtypeName)))
        let text = Array((JSONValue.object(pairs).serialized() + "\n").utf8)
        try FileSystem.writeAtomically(FileSystem.join(dir, "config.json"), overwrite: true) { wr in
            try text.withUnsafeBytes { try wr($0) }
        }
        var gen: [(String, JSONValue)] = []
        if let b = config.bosTokenId { gen.append(("bos_token_id", .int(Int64(b)))) }
        if let e = config.eosTokenIds.first { gen.append(("eos_token_id", .int(Int64(e)))) }
        gen.append(("do_sample", .bool(false)))
        let gtext = Array((JSONValue.object(gen).serialized() + "\n").utf8)
        try FileSystem.writeAtomically(FileSystem.join(dir, "generation_config.json"), overwrite: true) { wr in
            try gtext.withUnsafeBytes { try wr($0) }
        }
        try SafetensorsWriter.write(params.safetensorsItems(dtype: dtype), metadata: [("format", "pt")],
                                    to: FileSystem.join(dir, "model.safetensors"))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

/// The image encoder: DINOv2 ViT-B/14 whose every LayerNorm is a camera-modulated AdaNorm
/// (`encoders/dinov2/models/vision_transformer.py`, `svrm/ldm/modules/attention.py:367-390`).
/// images [V, 3, S, S] (preprocessed) + cameras [V, 20] → tokens [V, 1 + g², D], CLS first then the
/// g×g patch tokens row-major, after the final AdaNorm. Stateless; safe to call from one thread at a
/// time per pool.
public struct SVRMImageEncoder {
    public let config: SVRMConfig
    public let weights: SVRMWeights.Encoder

    public init(config: SVRMConfig, weights: SVRMWeights.Encoder) {
        self.config = config
        self.weights = weights
    }

    /// The position table for a g×g patch grid, [1 + g², D] (`vision_transformer.py:186-214`): the
    /// table as stored when g equals its side N, else its patch part resized with PyTorch's bicubic
    /// (A = −0.75, align_corners False, border-clamped taps) at the scale factor (g + 0.1)/N the
    /// reference passes, i.e. source = (dst + 0.5)·N/(g + 0.1) − 0.5. The CLS row is kept.
    public func positionTable(grid g: Int) -> [Float] {
        let d = config.encoderWidth, n = config.tableGrid
        let table = weights.posEmbed
        if g == n { return table }
        var out = [Float](repeating: 0, count: (1 + g * g) * d)
        for j in 0..<d { out[j] = table[j] }
        let sf = (Double(g) + config.interpolateOffset) / Double(n)
        let scale = Float(1.0 / sf)
        func taps(_ dst: Int) -> (Int, [Float]) {
            let real = scale * (Float(dst) + 0.5) - 0.5
            var i0 = Int(floorf(real))
            if i0 > n - 1 { i0 = n - 1 }
            let t = min(max(real - Float(i0), 0), 1)
            let a: Float = -0.75
            func c1(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
            func c2(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            return (i0, [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)])
        }
        let tx = (0..<g).map(taps)
        for oy in 0..<g {
            let (y0, wy) = tx[oy]
            for ox in 0..<g {
                let (x0, wx) = tx[ox]
                let o = (1 + oy * g + ox) * d
                for ky in 0..<4 {
                    let sy = min(max(y0 - 1 + ky, 0), n - 1)
                    for kx in 0..<4 {
                        let sx = min(max(x0 - 1 + kx, 0), n - 1)
                        let w = wy[ky] * wx[kx]
                        let src = (1 + sy * n + sx) * d
                        for j in 0..<d { out[o + j] += w * table[src + j] }
                    }
                }
            }
        }
        return out
    }

    /// Runs the encoder. `images`: V·3·S·S floats with S = `imageSize` (a multiple of the patch size),
    /// `cameras`: V·20 floats (both checked by the caller). `shouldStop` is polled before each block;
    /// when it returns true the result is empty.
    public func encode(images: UnsafePointer<Float>, imageSize s: Int, cameras: UnsafePointer<Float>, views v: Int,
                       pool: ThreadPool?, trace: Trace? = nil, shouldStop: (() -> Bool)? = nil) -> [Float] {
        let c = config, d = c.encoderWidth, p = c.patchSize, g = s / p
        let t = 1 + g * g, rows = v * t, kIn = c.inChannels * p * p

        let pos = positionTable(grid: g)
        pos.withUnsafeBufferPointer { trace?("enc_pos_embed", [1, t, d], $0) }

        // Patch embedding as a GEMM over im2col rows (c, ky, kx), then CLS and positions.
        let cols = FloatBuffer(v * g * g * kIn, zeroed: false)
        for vi in 0..<v {
            for py in 0..<g {
                for px in 0..<g {
                    let row = cols.p + ((vi * g + py) * g + px) * kIn
                    for ch in 0..<c.inChannels {
                        for ky in 0..<p {
                            let src = images + ((vi * c.inChannels + ch) * s + py * p + ky) * s + px * p
                            (row + (ch * p + ky) * p).update(from: src, count: p)
                        }
                    }
                }
            }
        }
        let patches = FloatBuffer(v * g * g * d, zeroed: false)
        weights.patchEmbed.forward(cols.p, rows: v * g * g, patches.p, pool: pool)
        let x = FloatBuffer(rows * d, zeroed: false)
        for vi in 0..<v {
            let xv = x.p + vi * t * d
            for j in 0..<d { xv[j] = weights.clsToken[j] + pos[j] }
            for i in 0..<(g * g) {
                let src = patches.p + (vi * g * g + i) * d, dst = xv + (1 + i) * d
                for j in 0..<d { dst[j] = src[j] + pos[(1 + i) * d + j] }
            }
        }
        trace?("enc_tokens_in", [v, t, d], x.buffer)

        // Camera embedding: Linear(20, D) → SiLU → Linear(D, D); AdaNorms read SiLU(cam_emb).
        let camH = FloatBuffer(v * d, zeroed: false), camEmb = FloatBuffer(v * d, zeroed: false)
        weights.camEmbed0.forward(cameras, rows: v, camH.p, pool: pool)
        siluInPlace(camH.p, v * d)
        weights.camEmbed2.forward(camH.p, rows: v, camEmb.p, pool: pool)
        trace?("enc_cam_emb", [v, d], camEmb.buffer)
        siluInPlace(camEmb.p, v * d)
        let cond = camEmb

        let h = FloatBuffer(rows * d, zeroed: false), qkv = FloatBuffer(rows * 3 * d, zeroed: false), att = FloatBuffer(rows * d, zeroed: false)
        let mlp = FloatBuffer(rows * c.encoderMLPHidden, zeroed: false), tmp = FloatBuffer(rows * d, zeroed: false)
        let mod = FloatBuffer(v * 2 * d, zeroed: false)
        let heads = c.encoderHeads, hd = d / heads
        for (bi, blk) in weights.blocks.enumerated() {
            if let shouldStop, shouldStop() { return [] }
            adaNorm(blk.norm1, x.p, cond.p, mod.p, views: v, tokens: t, h.p, pool: pool)
            blk.qkv.forward(h.p, rows: rows, qkv.p, pool: pool)
            for vi in 0..<v {
                let base = qkv.p + vi * t * 3 * d
                attention(q: base, qStride: 3 * d, nq: t, keys: base + d, kStride: 3 * d, values: base + 2 * d,
                          vStride: 3 * d, nk: t, heads: heads, kvHeads: heads, headDim: hd,
                          scale: 1 / Float(hd).squareRoot(), out: att.p + vi * t * d, outStride: d, pool: pool)
            }
            blk.proj.forward(att.p, rows: rows, tmp.p, pool: pool)
            addScaled(x.p, tmp.p, gamma: blk.ls1, rows: rows, dim: d, pool: pool)
            adaNorm(blk.norm2, x.p, cond.p, mod.p, views: v, tokens: t, h.p, pool: pool)
            blk.fc1.forward(h.p, rows: rows, mlp.p, pool: pool)
            let hidden = c.encoderMLPHidden
            parallelRows(pool, rows, minChunk: 8) { r in geluErf(mlp.p + r.lowerBound * hidden, r.count * hidden) }
            blk.fc2.forward(mlp.p, rows: rows, tmp.p, pool: pool)
            addScaled(x.p, tmp.p, gamma: blk.ls2, rows: rows, dim: d, pool: pool)
            trace?("enc_block_out.\(bi)", [v, t, d], x.buffer)
        }
        adaNorm(weights.norm, x.p, cond.p, mod.p, views: v, tokens: t, h.p, pool: pool)
        return h.array
    }

    /// out = LayerNorm(x) · (1 + scale_v) + shift_v per view, with [shift | scale] = Linear(SiLU(cam)).
    func adaNorm(_ n: SVRMWeights.AdaNorm, _ x: UnsafePointer<Float>, _ siluCam: UnsafePointer<Float>,
                 _ mod: UnsafeMutablePointer<Float>, views v: Int, tokens t: Int,
                 _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let d = config.encoderWidth
        n.modulation.forward(siluCam, rows: v, mod, pool: pool)
        layerNorm(x, rows: v * t, dim: d, eps: config.adaNormEps, weight: nil, bias: nil, out, pool: pool)
        adaNormModulate(out, shiftScale: mod, groups: v, rowsPerGroup: t, dim: d, pool: pool)
    }

    /// x[r, j] += gamma[j] · y[r, j] (LayerScale residual).
    func addScaled(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, gamma: [Float], rows: Int, dim: Int,
                   pool: ThreadPool?) {
        gamma.withUnsafeBufferPointer { HunyuanNN.addScaled(x, y, gamma: $0.baseAddress!, rows: rows, dim: dim, pool: pool) }
    }
}

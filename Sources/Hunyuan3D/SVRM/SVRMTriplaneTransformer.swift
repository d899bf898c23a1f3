import HunyuanNN

/// The image-to-triplane transformer (`translator/img_to_triplane.py`, `attention.py:393-442`):
/// 3·P² learned queries (plane-major, then row-major) pass `depth` blocks of
/// cross-attention to the image tokens → self-attention → GEGLU feed-forward, each pre-LayerNorm
/// (eps 1e-5, affine) with a residual, then a final LayerNorm (eps 1e-6). Attention is blocked
/// (flash-style), so the full model's 12,288 × 9,079 cross and 12,288² self scores are never stored.
public struct SVRMTriplaneTransformer {
    public let config: SVRMConfig
    public let weights: SVRMWeights.Triplane
    /// Rows of the feed-forward processed at once (bounds the 2·mult·W-wide GEGLU buffer).
    public var feedForwardChunk = 2048

    public init(config: SVRMConfig, weights: SVRMWeights.Triplane) {
        self.config = config
        self.weights = weights
    }

    /// The context as the reference builds it (`svrm.py:159-162`, `'(b m) l d -> b (l m) d'`): token
    /// l of view m goes to row l·V + m. tokens: [V, T, D] → [T·V, D].
    public static func interleave(_ tokens: UnsafePointer<Float>, views v: Int, tokensPerView t: Int, dim d: Int) -> [Float] {
        var out = [Float](repeating: 0, count: v * t * d)
        out.withUnsafeMutableBufferPointer { o in
            for m in 0..<v {
                for l in 0..<t {
                    (o.baseAddress! + (l * v + m) * d).update(from: tokens + (m * t + l) * d, count: d)
                }
            }
        }
        return out
    }

    /// context: [nc, D] (interleaved) → triplane tokens [3·P², W] after the final LayerNorm.
    /// `shouldStop` is polled before each block; when it returns true the result is empty.
    public func forward(context: UnsafePointer<Float>, contextRows nc: Int, pool: ThreadPool?,
                        trace: Trace? = nil, shouldStop: (() -> Bool)? = nil) -> [Float] {
        let c = config, w = c.triplaneWidth, q = c.triplaneQueries, inner = c.triplaneInner
        let heads = c.triplaneHeads, hd = c.triplaneHeadDim, scale = 1 / Float(hd).squareRoot()
        let x = FloatBuffer(q * w, zeroed: false)
        weights.posEmb.withUnsafeBufferPointer { x.p.update(from: $0.baseAddress!, count: q * w) }
        let h = FloatBuffer(q * w, zeroed: false), qb = FloatBuffer(q * inner, zeroed: false), att = FloatBuffer(q * inner, zeroed: false)
        let kb = FloatBuffer(max(nc, q) * inner, zeroed: false), vb = FloatBuffer(max(nc, q) * inner, zeroed: false), tmp = FloatBuffer(q * w, zeroed: false)
        let ff = c.feedForwardMult * w, chunk = max(1, min(feedForwardChunk, q))
        let proj = FloatBuffer(chunk * 2 * ff, zeroed: false), gated = FloatBuffer(chunk * ff, zeroed: false)

        for (bi, b) in weights.blocks.enumerated() {
            if let shouldStop, shouldStop() { return [] }
            // x += to_out(attn(norm1(x), context))
            norm(x.p, rows: q, b.norm1W, b.norm1B, c.blockLayerNormEps, h.p, pool: pool)
            b.crossQ.forward(h.p, rows: q, qb.p, pool: pool)
            b.crossK.forward(context, rows: nc, kb.p, pool: pool)
            b.crossV.forward(context, rows: nc, vb.p, pool: pool)
            attention(q: qb.p, qStride: inner, nq: q, keys: kb.p, kStride: inner, values: vb.p, vStride: inner, nk: nc,
                      heads: heads, kvHeads: heads, headDim: hd, scale: scale, out: att.p, outStride: inner, pool: pool)
            b.crossOut.forward(att.p, rows: q, tmp.p, pool: pool)
            addInPlace(x.p, tmp.p, q * w, pool: pool)
            // x += to_out(attn(norm2(x)))
            norm(x.p, rows: q, b.norm2W, b.norm2B, c.blockLayerNormEps, h.p, pool: pool)
            b.selfQ.forward(h.p, rows: q, qb.p, pool: pool)
            b.selfK.forward(h.p, rows: q, kb.p, pool: pool)
            b.selfV.forward(h.p, rows: q, vb.p, pool: pool)
            attention(q: qb.p, qStride: inner, nq: q, keys: kb.p, kStride: inner, values: vb.p, vStride: inner, nk: q,
                      heads: heads, kvHeads: heads, headDim: hd, scale: scale, out: att.p, outStride: inner, pool: pool)
            b.selfOut.forward(att.p, rows: q, tmp.p, pool: pool)
            addInPlace(x.p, tmp.p, q * w, pool: pool)
            // x += ff(norm3(x)), GEGLU: proj → (a, gate) → a · gelu(gate) → Linear, in row chunks.
            norm(x.p, rows: q, b.norm3W, b.norm3B, c.blockLayerNormEps, h.p, pool: pool)
            var r0 = 0
            while r0 < q {
                let n = min(chunk, q - r0)
                b.ffProj.forward(h.p + r0 * w, rows: n, proj.p, pool: pool)
                parallelRows(pool, n, minChunk: 8) { rr in
                    geglu(proj.p + rr.lowerBound * 2 * ff, rows: rr.count, width: ff, gated.p + rr.lowerBound * ff)
                }
                b.ffOut.forward(gated.p, rows: n, tmp.p + r0 * w, pool: pool)
                r0 += n
            }
            addInPlace(x.p, tmp.p, q * w, pool: pool)
            trace?("tri_block_out.\(bi)", [1, q, w], x.buffer)
        }
        norm(x.p, rows: q, weights.normW, weights.normB, c.finalLayerNormEps, h.p, pool: pool)
        trace?("triplane_tokens", [1, q, w], h.buffer)
        return h.array
    }

    func norm(_ x: UnsafePointer<Float>, rows: Int, _ w: [Float], _ b: [Float], _ eps: Float,
              _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let d = config.triplaneWidth
        w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                layerNorm(x, rows: rows, dim: d, eps: eps, weight: wp.baseAddress, bias: bp.baseAddress, out, pool: pool)
            }
        }
    }
}

import HunyuanNN

/// The feed-forward half of a layer over a chunk of T tokens: xn = RMSNorm(x); x += FFN(xn) where
/// FFN is one SwiGLU MLP (dense models) or the mixture of experts:
///   router softmax (fp32) over `mlp.gate.wg` logits → top-k experts per token →
///   weights: Hunyuan-Large top-1 keeps the raw probability; top-k > 1 and HunYuanMoEV1 renormalize
///   over the chosen k → out = shared_mlp(xn) + Σ w_e · expert_e(xn). No token is dropped.
/// Tokens are grouped per expert so each expert runs as GEMMs over its tokens (one matvec per
/// projection in decode).
enum HunyuanMoE {
    static func forward(layer l: Int, t: Int, model: HunyuanModel, state s: RunState, pool: ThreadPool?) {
        let c = model.config
        let w = model.weights.layers[l]
        let d = c.hiddenSize
        w.postNorm.withUnsafeBufferPointer { nw in
            for i in 0..<t { rmsnorm(s.x + i * d, nw.baseAddress, d, eps: c.rmsNormEps, s.xn + i * d) }
        }
        if let mlp = w.mlp {
            swigluMLP(mlp, s.xn, t, out: s.ffn, state: s, pool: pool)
        } else if let router = w.router {
            route(router, layer: l, t: t, config: c, state: s, pool: pool)
            if let shared = w.shared {
                swigluMLP(shared, s.xn, t, out: s.ffn, state: s, pool: pool)
            } else {
                s.ffn.update(repeating: 0, count: t * d)
            }
            let k = c.moeTopK[l]
            for (e, expert) in w.experts.enumerated() {
                // Gather the tokens routed to e.
                var n = 0
                for i in 0..<t {
                    for j in 0..<k where s.topIndex[i * s.maxTopK + j] == e {
                        s.expertToken[n] = i
                        s.expertWeight[n] = s.topWeight[i * s.maxTopK + j]
                        n += 1
                    }
                }
                if n == 0 { continue }
                for r in 0..<n { (s.gathered + r * d).update(from: s.xn + s.expertToken[r] * d, count: d) }
                swigluMLP(expert, s.gathered, n, out: s.expertOut, state: s, pool: pool)
                for r in 0..<n {
                    let dst = s.ffn + s.expertToken[r] * d, src = s.expertOut + r * d
                    let wgt = s.expertWeight[r]
                    for j in 0..<d { dst[j] += wgt * src[j] }
                }
            }
        }
        for i in 0..<(t * d) { s.x[i] += s.ffn[i] }
    }

    /// Router: fills s.topIndex / s.topWeight [t, maxTopK] for layer l.
    static func route(_ router: WeightMatrix, layer l: Int, t: Int, config c: HunyuanConfig, state s: RunState,
                      pool: ThreadPool?) {
        let ne = c.numExperts, k = c.moeTopK[l]
        linear(router, s.xn, t, s.router, pool: pool)
        let renorm = c.renormalizeRouting(layer: l)
        for i in 0..<t {
            let p = s.router + i * ne
            softmax(p, ne)
            let idx = s.topIndex + i * s.maxTopK, wt = s.topWeight + i * s.maxTopK
            // Selection of the k largest (ties: lower index first), descending.
            for j in 0..<k {
                var best = -1
                var bv = -Float.infinity
                for e in 0..<ne {
                    var taken = false
                    for q in 0..<j where idx[q] == e { taken = true; break }
                    if !taken && (best < 0 || p[e] > bv) { best = e; bv = p[e] }
                }
                idx[j] = best
                wt[j] = bv
            }
            if renorm {
                var sum: Float = 0
                for j in 0..<k { sum += wt[j] }
                let inv = 1 / max(sum, Float.ulpOfOne)
                for j in 0..<k { wt[j] *= inv }
            }
        }
    }

    /// out[t, d] = down(silu(gate·x) ⊙ up·x) for x[t, d]; uses s.gate / s.up as scratch.
    static func swigluMLP(_ m: MLPWeights, _ x: UnsafePointer<Float>, _ t: Int, out: UnsafeMutablePointer<Float>,
                          state s: RunState, pool: ThreadPool?) {
        let width = m.width
        if t == 1 {
            matvecShared(m.gate, s.gate, m.up, s.up, x: x, pool: pool)
        } else {
            linear(m.gate, x, t, s.gate, pool: pool)
            linear(m.up, x, t, s.up, pool: pool)
        }
        swiglu(s.gate, s.up, t * width)
        linear(m.down, s.gate, t, out, pool: pool)
    }
}

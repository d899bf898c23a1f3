import HunyuanNN

/// Self-attention of one layer over a chunk of T tokens at positions pos0..<pos0+T (official order):
///   xn = RMSNorm(x) → q/k/v projections → RoPE (NeoX, base θ·α^(d/(d−2))) → QK-norm per head
///   → causal softmax attention (scale 1/√d, GQA) → o_proj → x += result.
/// CLA: layers that own K/V write the cache entry of their group; the other layers of the group read
/// it. Keys are cached normalized without the weight; each layer folds its key-norm weight into its
/// queries (see KVCache).
package enum HunyuanAttention {
    static func forward(layer l: Int, t: Int, pos0: Int, model: HunyuanModel, state s: RunState,
                        cache: KVCache, pool: ThreadPool?) {
        let c = model.config
        let w = model.weights.layers[l]
        let d = c.hiddenSize, hd = c.headDim, nh = c.numHeads, nkv = c.numKVHeads
        let qw = nh * hd, kw = nkv * hd
        let eps = c.rmsNormEps
        let perLayer = !cache.sharedAcrossLayers
        let entry = perLayer ? l : l / c.kvShare
        let qn = w.queryNorm, kn = w.keyNorm

        w.inputNorm.withUnsafeBufferPointer { nw in
            for i in 0..<t { rmsnorm(s.x + i * d, nw.baseAddress, d, eps: eps, s.xn + i * d) }
        }
        if t == 1, let wk = w.k, let wv = w.v {
            matvecShared(w.q, s.q, wk, s.k, wv, s.v, x: s.xn, pool: pool)
        } else {
            linear(w.q, s.xn, t, s.q, pool: pool)
        }
        addBias(w.qBias, s.q, t, qw)

        if let wk = w.k, let wv = w.v {
            // s.k / s.v keep this group's keys (roped, normalized without weight) and values until the
            // next owning layer: the per-layer layout copies them for the other layers of the group.
            if t > 1 {
                linear(wk, s.xn, t, s.k, pool: pool)
                linear(wv, s.xn, t, s.v, pool: pool)
            }
            addBias(w.kBias, s.k, t, kw)
            addBias(w.vBias, s.v, t, kw)
            for i in 0..<t {
                let cs = UnsafePointer(s.cosSin + i * hd)
                for h in 0..<nkv {
                    let kh = s.k + i * kw + h * hd
                    ropeNeoX(kh, headDim: hd, cosSin: cs)
                    if c.useQKNorm { rmsnorm(kh, nil, hd, eps: eps, kh) }
                }
            }
        }
        if w.k != nil || perLayer {
            for i in 0..<t {
                let src = s.k + i * kw
                if perLayer, let kn {
                    // The per-layer layout stores keys with the weight applied (s.att is free until the attention).
                    for h in 0..<nkv { for j in 0..<hd { s.att[h * hd + j] = kn[j] * src[h * hd + j] } }
                    cache.store(s.att, into: cache.keyRow(group: entry, position: pos0 + i))
                } else {
                    cache.store(src, into: cache.keyRow(group: entry, position: pos0 + i))
                }
                cache.store(s.v + i * kw, into: cache.valueRow(group: entry, position: pos0 + i))
            }
        }

        for i in 0..<t {
            let cs = UnsafePointer(s.cosSin + i * hd)
            for h in 0..<nh {
                let qh = s.q + i * qw + h * hd
                ropeNeoX(qh, headDim: hd, cosSin: cs)
                if let qn, let kn {
                    qn.withUnsafeBufferPointer { rmsnorm(qh, $0.baseAddress, hd, eps: eps, qh) }
                    if !perLayer { for j in 0..<hd { qh[j] *= kn[j] } }
                }
            }
        }

        attention(q: s.q, qStride: qw, nq: t, keys: cache.keyRow(group: entry, position: 0), kStride: kw,
                  values: cache.valueRow(group: entry, position: 0), vStride: kw, nk: pos0 + t, kvType: cache.type,
                  heads: nh, kvHeads: nkv, headDim: hd, scale: 1 / Float(hd).squareRoot(), mask: .causal(offset: pos0),
                  out: s.att, outStride: qw, pool: pool)
        linear(w.o, s.att, t, s.tmp, pool: pool)
        addBias(w.oBias, s.tmp, t, d)
        for i in 0..<(t * d) { s.x[i] += s.tmp[i] }
    }

    /// rows[t, n] += bias[n] (no-op without a bias).
    static func addBias(_ bias: [Float]?, _ rows: UnsafeMutablePointer<Float>, _ t: Int, _ n: Int) {
        bias?.withUnsafeBufferPointer { HunyuanNN.addBias(rows, $0.baseAddress!, rows: t, width: n) }
    }

    /// Inverse RoPE frequencies 1 / base^(2i/d), i < d/2, with the alpha-scaled base.
    package static func inverseFrequencies(_ c: HunyuanConfig) -> [Float] {
        ropeInverseFrequencies(headDim: c.headDim, base: c.ropeBase)
    }
}

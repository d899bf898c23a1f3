#if canImport(Glibc)
import Glibc
#endif

// The one attention of every engine: multi-head (GQA) softmax attention, blocked with a running
// max/sum so no full score matrix is ever stored, over keys/values of any cache element type, causal
// (decoders) or full (encoders, cross-attention), split over the pool; and its backward for the
// trainer (probabilities recomputed from the saved log-sum-exp, FlashAttention-style).

/// Storage of cached keys/values: fp32, f16, or q8_0 blocks (32 values + an f16 scale).
public enum KVElementType: String, Sendable, CaseIterable {
    case f32, f16, q8_0
    /// Bytes of a row of n values (n a multiple of 32 for q8_0).
    public func rowBytes(_ n: Int) -> Int {
        switch self {
        case .f32: return 4 * n
        case .f16: return 2 * n
        case .q8_0: return n / 32 * 34
        }
    }
}

/// Which keys a query sees.
public enum AttentionMask: Sendable, Equatable {
    /// Every query sees every key (encoders, cross-attention).
    case none
    /// Query i sits at position offset + i and sees keys 0...offset + i (decoders; offset = the
    /// number of tokens cached before this chunk).
    case causal(offset: Int)

    /// Keys visible to query i (of nk).
    @inlinable func visible(_ i: Int, _ nk: Int) -> Int {
        switch self {
        case .none: return nk
        case .causal(let offset): return max(0, min(nk, offset + i + 1))
        }
    }
}

/// Multi-head attention: for query row i and head h (KV head g = h / (heads / kvHeads)),
/// out[i, h] = Σ_j softmax_j(scale · q[i, h]·k[j, g]) · v[j, g] over the keys j the mask lets i see.
/// - q: [nq, ≥ heads·headDim] fp32, row stride qStride floats, head h at columns h·headDim.
/// - keys / values: [nk, ≥ kvHeads·headDim] stored as `kvType`, row strides kStride / vStride in
///   elements (q8_0: headDim and strides multiples of 32), KV head g at element g·headDim.
/// - out: [nq, ≥ heads·headDim] fp32, row stride outStride; must not overlap q, keys or values.
/// - lse: optional [heads, nq]: the log-sum-exp of each query's scaled scores (for the backward).
/// - scale > 0. A query that sees no key gets zeros.
/// fp32 math with a running max/sum over key blocks. Work is split over `pool` — (head, query block)
/// tiles through GEMMs when the keys are fp32 and there are many queries, else (query, head) rows
/// reading the keys and values in place — and nothing is allocated per key.
public func attention(q: UnsafePointer<Float>, qStride: Int, nq: Int,
                      keys: UnsafeRawPointer, kStride: Int, values: UnsafeRawPointer, vStride: Int, nk: Int,
                      kvType: KVElementType = .f32, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
                      mask: AttentionMask = .none, out: UnsafeMutablePointer<Float>, outStride: Int,
                      lse: UnsafeMutablePointer<Float>? = nil, pool: ThreadPool?) {
    if nq <= 0 || heads <= 0 || headDim <= 0 { return }
    if kvType == .f32 && nq >= 16 {
        attentionTiles(q: q, qStride: qStride, nq: nq, k: keys.assumingMemoryBound(to: Float.self), kStride: kStride,
                       v: values.assumingMemoryBound(to: Float.self), vStride: vStride, nk: nk, heads: heads,
                       kvHeads: kvHeads, headDim: headDim, scale: scale, mask: mask, out: out, outStride: outStride,
                       lse: lse, pool: pool)
        return
    }
    switch kvType {
    case .f32:
        attentionRows(F32Loader.self, q: q, qStride: qStride, nq: nq, keys: keys, kStride: kStride, values: values,
                      vStride: vStride, nk: nk, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                      mask: mask, out: out, outStride: outStride, lse: lse, pool: pool)
    case .f16:
        attentionRows(F16Loader.self, q: q, qStride: qStride, nq: nq, keys: keys, kStride: kStride, values: values,
                      vStride: vStride, nk: nk, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                      mask: mask, out: out, outStride: outStride, lse: lse, pool: pool)
    case .q8_0:
        attentionRows(Q8_0Loader.self, q: q, qStride: qStride, nq: nq, keys: keys, kStride: kStride, values: values,
                      vStride: vStride, nk: nk, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                      mask: mask, out: out, outStride: outStride, lse: lse, pool: pool)
    }
}

/// (query, head) rows: each task streams the keys it sees in blocks of 64, dot products read the
/// stored element type in place (decode, and f16 / q8_0 caches).
func attentionRows<L: WeightLoader>(_: L.Type, q: UnsafePointer<Float>, qStride: Int, nq: Int,
                                    keys: UnsafeRawPointer, kStride: Int, values: UnsafeRawPointer, vStride: Int,
                                    nk: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
                                    mask: AttentionMask, out: UnsafeMutablePointer<Float>, outStride: Int,
                                    lse: UnsafeMutablePointer<Float>?, pool: ThreadPool?) {
    let group = max(1, heads / max(kvHeads, 1))
    let block = 64
    let body: (Int) -> Void = { task in
        let i = task / heads, h = task % heads
        let qh = q + i * qStride + h * headDim
        let o = out + i * outStride + h * headDim
        let kvh = (h / group) * headDim
        let n = mask.visible(i, nk)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { sc in
            let s = sc.baseAddress!
            var runMax = -Float.infinity, runSum: Float = 0
            for d in 0..<headDim { o[d] = 0 }
            var j0 = 0
            while j0 < n {
                let nb = min(block, n - j0)
                var bmax = -Float.infinity
                for j in 0..<nb {
                    let v = dotRow(L.self, keys + L.byteOffset((j0 + j) * kStride + kvh), qh, headDim) * scale
                    s[j] = v
                    bmax = max(bmax, v)
                }
                let newMax = max(runMax, bmax)
                let corr = exp(runMax - newMax)
                if corr != 1 {
                    runSum *= corr
                    for d in 0..<headDim { o[d] *= corr }
                }
                for j in 0..<nb {
                    let p = exp(s[j] - newMax)
                    runSum += p
                    let vr = values + L.byteOffset((j0 + j) * vStride + kvh)
                    var d = 0
                    while d + 8 <= headDim {
                        let acc = UnsafeMutableRawPointer(o + d).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(o + d).storeBytes(of: acc + p * L.load8(vr, d), as: SIMD8<Float>.self)
                        d += 8
                    }
                    while d < headDim { o[d] += p * L.load1(vr, d); d += 1 }
                }
                runMax = newMax
                j0 += nb
            }
            if runSum > 0 {
                let inv = 1 / runSum
                for d in 0..<headDim { o[d] *= inv }
            }
            lse?[h * nq + i] = runSum > 0 ? runMax + log(runSum) : -.infinity
        }
    }
    let tasks = nq * heads
    // Work ≈ tasks × keys × headDim multiply-adds; small problems run inline.
    let work = tasks * nk * headDim
    if let pool, pool.threadCount > 1, tasks > 1, work >= 1 << 17 {
        pool.parallelFor(tasks, body)
    } else {
        for k in 0..<tasks { body(k) }
    }
}

/// (head, query block) tiles over fp32 keys: S = Q·Kᵀ and acc += P·V as GEMMs per key block, key
/// blocks past the causal diagonal skipped, one score tile (blockQ × blockK) per task.
func attentionTiles(q: UnsafePointer<Float>, qStride: Int, nq: Int, k: UnsafePointer<Float>, kStride: Int,
                    v: UnsafePointer<Float>, vStride: Int, nk: Int, heads: Int, kvHeads: Int, headDim: Int,
                    scale: Float, mask: AttentionMask, out: UnsafeMutablePointer<Float>, outStride: Int,
                    lse: UnsafeMutablePointer<Float>?, pool: ThreadPool?, blockQ: Int = 256, blockK: Int = 1024) {
    let group = max(1, heads / max(kvHeads, 1))
    let bq = blockQ, bk = blockK
    let qBlocks = (nq + bq - 1) / bq
    let body: (Int) -> Void = { task in
        let h = task % heads, qb = task / heads
        let i0 = qb * bq, m = min(bq, nq - i0)
        let col = h * headDim, kcol = (h / group) * headDim
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: bq * bk + bq * headDim + 2 * bq)
        defer { scratch.deallocate() }
        let s = scratch, acc = scratch + bq * bk, rowMax = acc + bq * headDim, rowSum = rowMax + bq
        for r in 0..<m { rowMax[r] = -.infinity; rowSum[r] = 0 }
        for i in 0..<(m * headDim) { acc[i] = 0 }
        let keysSeen = mask.visible(i0 + m - 1, nk)     // the last query of the block sees the most
        var j0 = 0
        while j0 < keysSeen {
            let n = min(bk, keysSeen - j0)
            // S[m, n] = Q_blk · K_blkᵀ; probabilities exp(scale · (S − running max)) (scale > 0)
            gemm(transB: true, m: m, n: n, k: headDim, a: q + i0 * qStride + col, lda: qStride,
                 b: k + j0 * kStride + kcol, ldb: kStride, c: s, ldc: n)
            for r in 0..<m {
                let sr = s + r * n
                let valid = min(n, max(0, mask.visible(i0 + r, nk) - j0))
                if valid == 0 { sr.update(repeating: 0, count: n); continue }
                let newMax = max(rowMax[r], maxElement(sr, valid))
                let corr = rowMax[r] == -.infinity ? 0 : expf((rowMax[r] - newMax) * scale)
                let sum = expShifted(sr, valid, shift: newMax, scale: scale)
                if valid < n { (sr + valid).update(repeating: 0, count: n - valid) }
                rowSum[r] = rowSum[r] * corr + sum
                if corr != 1 {
                    let ar = acc + r * headDim
                    for d in 0..<headDim { ar[d] *= corr }
                }
                rowMax[r] = newMax
            }
            // acc[m, headDim] += P[m, n] · V_blk[n, headDim]
            gemm(m: m, n: headDim, k: n, a: s, lda: n, b: v + j0 * vStride + kcol, ldb: vStride,
                 beta: 1, c: acc, ldc: headDim)
            j0 += n
        }
        for r in 0..<m {
            let o = out + (i0 + r) * outStride + col, ar = acc + r * headDim
            if rowSum[r] > 0 {
                let inv = 1 / rowSum[r]
                for d in 0..<headDim { o[d] = ar[d] * inv }
            } else {
                for d in 0..<headDim { o[d] = 0 }
            }
            lse?[h * nq + i0 + r] = rowSum[r] > 0 ? rowMax[r] * scale + log(rowSum[r]) : -.infinity
        }
    }
    let tasks = heads * qBlocks
    if let pool, pool.threadCount > 1, tasks > 1 { pool.parallelFor(tasks, body) } else { for t in 0..<tasks { body(t) } }
}

/// Backward of `attention` over fp32 q/k/v of one sequence (the layout of the forward, strides in
/// floats), given the forward's `lse` [heads, nq] and dOut [nq, heads·headDim] (stride dOutStride):
/// dq (=, stride qStride), dk and dv (+=, strides kStride / vStride, so layers sharing K/V can
/// accumulate). P is recomputed block by block as exp(scale·q·k − lse); dS = P ⊙ (dP − Σ_j P dP)·scale.
/// Tasks over KV heads (each owns its dk/dv columns); blocks of 64 queries × all keys per step.
public func attentionBackward(q: UnsafePointer<Float>, qStride: Int, nq: Int,
                              k: UnsafePointer<Float>, kStride: Int, v: UnsafePointer<Float>, vStride: Int, nk: Int,
                              heads: Int, kvHeads: Int, headDim hd: Int, scale: Float, mask: AttentionMask,
                              lse: UnsafePointer<Float>, dOut: UnsafePointer<Float>, dOutStride: Int,
                              dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    if nq <= 0 || heads <= 0 || hd <= 0 { return }
    let group = max(1, heads / max(kvHeads, 1))
    let bq = 64
    let body: (Int) -> Void = { g in
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(2 * bq * nk, 1))
        defer { p.deallocate() }
        let dp = p + bq * nk
        let kc = g * hd
        for h in (g * group)..<((g + 1) * group) {
            let qc = h * hd
            var i0 = 0
            while i0 < nq {
                let m = min(bq, nq - i0)
                let n = mask.visible(i0 + m - 1, nk)
                if n == 0 { (0..<m).forEach { r in (dq + (i0 + r) * qStride + qc).update(repeating: 0, count: hd) }; i0 += m; continue }
                // P = exp(scale · Q Kᵀ − lse), zero where masked; dP = dO Vᵀ
                gemm(transB: true, m: m, n: n, k: hd, alpha: scale, a: q + i0 * qStride + qc, lda: qStride,
                     b: k + kc, ldb: kStride, c: p, ldc: n)
                gemm(transB: true, m: m, n: n, k: hd, a: dOut + i0 * dOutStride + qc, lda: dOutStride,
                     b: v + kc, ldb: vStride, c: dp, ldc: n)
                for r in 0..<m {
                    let pr = p + r * n, dr = dp + r * n
                    let valid = min(n, mask.visible(i0 + r, nk))
                    let l = lse[h * nq + i0 + r]
                    var dot: Float = 0
                    for j in 0..<valid { pr[j] = expf(pr[j] - l); dot += pr[j] * dr[j] }
                    for j in valid..<n { pr[j] = 0 }
                    for j in 0..<n { dr[j] = pr[j] * (dr[j] - dot) * scale }
                }
                // dv += Pᵀ dO ; dq = dS K ; dk += dSᵀ Q
                gemm(transA: true, m: n, n: hd, k: m, a: p, lda: n, b: dOut + i0 * dOutStride + qc, ldb: dOutStride,
                     beta: 1, c: dv + kc, ldc: vStride)
                gemm(m: m, n: hd, k: n, a: dp, lda: n, b: k + kc, ldb: kStride, c: dq + i0 * qStride + qc, ldc: qStride)
                gemm(transA: true, m: n, n: hd, k: m, a: dp, lda: n, b: q + i0 * qStride + qc, ldb: qStride,
                     beta: 1, c: dk + kc, ldc: kStride)
                i0 += m
            }
        }
    }
    let tasks = max(1, heads / group)
    if let pool, pool.threadCount > 1, tasks > 1 { pool.parallelFor(tasks, body) } else { for t in 0..<tasks { body(t) } }
}

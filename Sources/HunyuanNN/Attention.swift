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

/// An additive term on the scaled scores of `attention`: the probabilities become
/// softmax_j(scale · q[i, h]·k[j] + bias(h, i, j)), with bias(h, i, j) = values[h·headStride +
/// i·rowStride + j] (i the query row of the call, j the key). A stride of 0 shares the rows across
/// heads or queries. Masked keys take `masked` (transformers' finfo.min): their probability is 0 while
/// the query sees another key. Borrowed for the call; forward only (`attentionBackward` has no bias).
public struct AttentionBias {
    /// The additive score of a masked key: −Float.greatestFiniteMagnitude (PyTorch's finfo(float32).min).
    public static let masked = -Float.greatestFiniteMagnitude

    public let values: UnsafePointer<Float>
    public let headStride: Int
    public let rowStride: Int

    /// `values` holds at least (heads−1)·headStride + (nq−1)·rowStride + nk floats.
    public init(_ values: UnsafePointer<Float>, headStride: Int, rowStride: Int) {
        self.values = values; self.headStride = headStride; self.rowStride = rowStride
    }

    /// A key-padding mask: `keys` [nk] of 0 (kept) or `masked`, the same for every head and query.
    public init(keys: UnsafePointer<Float>) { self.init(keys, headStride: 0, rowStride: 0) }
}

/// Multi-head attention: for query row i and head h (KV head g = h / (heads / kvHeads)),
/// out[i, h] = Σ_j softmax_j(scale · q[i, h]·k[j, g]) · v[j, g] over the keys j the mask lets i see.
/// - q: [nq, ≥ heads·headDim] fp32, row stride qStride floats, head h at columns h·headDim.
/// - keys / values: [nk, ≥ kvHeads·headDim] stored as `kvType`, row strides kStride / vStride in
///   elements (q8_0: headDim and strides multiples of 32), KV head g at element g·headDim.
/// - out: [nq, ≥ heads·headDim] fp32, row stride outStride; must not overlap q, keys or values.
/// - lse: optional [heads, nq]: the log-sum-exp of each query's scaled scores (for the backward).
/// - bias: optional additive scores (`AttentionBias`: key-padding masks, T5's relative position bias).
/// - scale > 0. A query that sees no key gets zeros.
/// FlashAttention-style tiles: a block of queries × every head of one GQA group against a block of
/// keys, QKᵀ and PV as register-tiled products, the online softmax in fp32, key blocks past the causal
/// diagonal skipped; each key/value block is read once per GQA group, in place in its stored format
/// (f32 / f16 / q8_0 widened in registers by the AVX-512 kernels `gemmStoredRows` and
/// `accumulateStoredRows`; without AVX-512 widened per block and multiplied by sgemm). Tasks
/// over (KV head, query block) — and, when those are fewer than the threads (decode), over key
/// ranges too, whose partial softmaxes are merged (flash-decoding). Nothing is allocated per key.
public func attention(q: UnsafePointer<Float>, qStride: Int, nq: Int,
                      keys: UnsafeRawPointer, kStride: Int, values: UnsafeRawPointer, vStride: Int, nk: Int,
                      kvType: KVElementType = .f32, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
                      mask: AttentionMask = .none, bias: AttentionBias? = nil, out: UnsafeMutablePointer<Float>,
                      outStride: Int, lse: UnsafeMutablePointer<Float>? = nil, precision: ComputePrecision = .fp32,
                      pool: ThreadPool?) {
    var shape = AttentionShape(nq: nq, nk: nk, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, mask: mask)
    shape.bf16 = precision == .bf16
    shape.bias = bias
    switch kvType {
    case .f32:
        attentionTiled(F32Loader.self, shape, q: q, qStride: qStride, keys: keys, kStride: kStride, values: values,
                       vStride: vStride, out: out, outStride: outStride, lse: lse, pool: pool)
    case .f16:
        attentionTiled(F16Loader.self, shape, q: q, qStride: qStride, keys: keys, kStride: kStride, values: values,
                       vStride: vStride, out: out, outStride: outStride, lse: lse, pool: pool)
    case .q8_0:
        attentionTiled(Q8_0Loader.self, shape, q: q, qStride: qStride, keys: keys, kStride: kStride, values: values,
                       vStride: vStride, out: out, outStride: outStride, lse: lse, pool: pool)
    }
}

/// The sizes of one attention call, and how it is cut into tiles.
struct AttentionShape {
    let nq: Int, nk: Int, heads: Int, kvHeads: Int, headDim: Int
    let scale: Float
    let mask: AttentionMask
    var group: Int { max(1, heads / max(kvHeads, 1)) }
    /// Queries per tile: about 256 score rows (queries × the group's heads).
    var blockQ = 0
    /// Keys per tile.
    var blockK = 1024
    /// Key ranges per (KV head, query block) task; > 1 merges partial softmaxes.
    var splits = 0
    /// QKᵀ and PV as bf16 products (`ComputePrecision.bf16`): Q, K, V and the probabilities rounded
    /// to bf16, sums and the softmax in fp32. Taken where the CPU has AVX512_BF16 and headDim is a
    /// multiple of 16; K and V are then packed once per call and key blocks are multiples of 32.
    var bf16 = false
    /// Additive scores; with a bias the scores are scaled and biased before the softmax, which then
    /// runs at scale 1.
    var bias: AttentionBias? = nil

    init(nq: Int, nk: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float, mask: AttentionMask) {
        self.nq = nq; self.nk = nk; self.heads = heads; self.kvHeads = max(1, kvHeads); self.headDim = headDim
        self.scale = scale; self.mask = mask
    }
}

/// The tiled kernel over keys/values stored as L (see `attention`). `shape.blockQ` / `blockK` /
/// `splits` of 0 are chosen here; tests set them to exercise every edge.
func attentionTiled<L: WeightLoader>(_: L.Type, _ shapeIn: AttentionShape, q: UnsafePointer<Float>, qStride: Int,
                                     keys: UnsafeRawPointer, kStride: Int, values: UnsafeRawPointer, vStride: Int,
                                     out: UnsafeMutablePointer<Float>, outStride: Int,
                                     lse: UnsafeMutablePointer<Float>?, pool: ThreadPool?) {
    var sh = shapeIn
    // `scale` is the softmax's: 1 when a bias has already been added to the scaled scores.
    let nq = sh.nq, hd = sh.headDim, group = sh.group, mask = sh.mask, bias = sh.bias
    let scoreScale = sh.scale, scale: Float = bias == nil ? sh.scale : 1
    if nq <= 0 || sh.heads <= 0 || hd <= 0 { return }
    if sh.blockQ <= 0 { sh.blockQ = max(1, min(nq, 256 / group)) }
    let packed = sh.bf16 && CPUFeatures.avx512bf16 && hd % 16 == 0
    if packed { sh.blockK = max(32, sh.blockK & ~31) }
    let bq = sh.blockQ, bk = max(1, sh.blockK)
    let qBlocks = (nq + bq - 1) / bq
    let threads = pool?.threadCount ?? 1
    if sh.splits <= 0 {
        // Decode: too few (KV head, query block) tasks to fill the threads → split the keys.
        let tasks = sh.kvHeads * qBlocks, seen = mask.visible(nq - 1, sh.nk)
        sh.splits = tasks >= 2 * threads ? 1 : max(1, min((2 * threads + tasks - 1) / tasks, seen / (4 * bk)))
    }
    let splits = sh.splits
    let rows = bq * group                                   // score rows of a full tile
    // Partial softmax state of every (task, row) when the keys are split: max, sum, acc[hd].
    let partialStride = 2 + hd
    let partials = splits > 1 ? FloatBuffer(sh.kvHeads * qBlocks * splits * rows * partialStride, zeroed: false) : nil
    let directF32 = L.self == F32Loader.self
    let smallRows = 8
    // QKᵀ and PV read K/V in place in their stored format (AVX-512 kernels); else widened per block.
    let inPlace = !packed && CPUFeatures.avx512 && L.storedRowsKernelCode != nil && (L.self != Q8_0Loader.self || hd % 32 == 0)
    // bf16 products: K packed as kP[g][d/2][j][d%2], V as vP[g][j/2][d][j%2] (keys padded to nkPad with zeros).
    let nkPad = (sh.nk + 31) & ~31
    let kvPack = packed ? packKV(L.self, sh, keys: keys, kStride: kStride, values: values, vStride: vStride, nkPad: nkPad,
                                 pool: pool) : nil
    let body: (Int) -> Void = { task in
        let sp = task % splits, qb = (task / splits) % qBlocks, g = task / (splits * qBlocks)
        let i0 = qb * bq, m = min(bq, nq - i0), mr = m * group
        let kc = g * hd
        // Keys seen by this query block, cut into `splits` ranges of whole key blocks.
        let seen = mask.visible(i0 + m - 1, sh.nk)
        let blocksSeen = (seen + bk - 1) / bk
        let b0 = blocksSeen * sp / splits, b1 = blocksSeen * (sp + 1) / splits
        // The thread's own scratch (allocated once, grown when needed): nothing is allocated per token.
        let scratch = ThreadScratch.bytes(4 * (mr * hd * 2 + mr * bk + 2 * bk * hd + 2 * mr))
            .bindMemory(to: Float.self, capacity: mr * hd * 2 + mr * bk + 2 * bk * hd + 2 * mr)
        let qg = scratch, acc = qg + mr * hd, s = acc + mr * hd, kt = s + mr * bk, vt = kt + bk * hd
        let rowMax = vt + bk * hd, rowSum = rowMax + mr
        // Q rows of the group: row r·group + e is query i0 + r, head g·group + e.
        for r in 0..<m {
            for e in 0..<group { (qg + (r * group + e) * hd).update(from: q + (i0 + r) * qStride + (g * group + e) * hd, count: hd) }
        }
        for i in 0..<mr { rowMax[i] = -.infinity; rowSum[i] = 0 }
        acc.update(repeating: 0, count: mr * hd)
        // bf16 products: Q rounded once; scores and probabilities with rows of nPad (≤ bk) values.
        let qb16 = kvPack.map { _ in BF16Buffer(mr * hd) }, p16 = kvPack.map { _ in BF16Buffer(mr * bk) }
        if let qb16 { roundToBF16(qg, qb16.p, count: mr * hd) }
        var blk = b0
        while blk < b1 {
            let j0 = blk * bk, n = min(bk, seen - j0)
            let nPad = (n + 15) & ~15
            let ls = kvPack == nil ? n : nPad            // S rows of ls values (nPad ≤ bk with bf16 products)
            // K and V of the block as fp32 [n, hd] (in place when stored as f32).
            let kp: UnsafePointer<Float>, kld: Int, vp: UnsafePointer<Float>, vld: Int
            if let kvPack, let qb16 {
                bf16PackedGEMM(qb16.p, lda: hd, kvPack.k.p + g * hd * nkPad + 2 * j0, ldp: 2 * nkPad, pairs: hd / 2,
                               m: mr, n: nPad, s, ldc: nPad, accumulate: false)
                kp = UnsafePointer(s); kld = 0; vp = kp; vld = 0
            } else if inPlace {
                _ = gemmStoredRows(L.self, keys + L.byteOffset(j0 * kStride + kc), rowBytes: L.byteOffset(kStride), n: n,
                                   x: qg, ldx: hd, t: mr, k: hd, y: s, ldy: ls)
                kp = UnsafePointer(s); kld = 0; vp = kp; vld = 0
            } else if directF32 {
                kp = (keys + 4 * (j0 * kStride + kc)).assumingMemoryBound(to: Float.self); kld = kStride
                vp = (values + 4 * (j0 * vStride + kc)).assumingMemoryBound(to: Float.self); vld = vStride
            } else {
                for j in 0..<n {
                    convertRow(L.self, keys + L.byteOffset((j0 + j) * kStride + kc), hd, kt + j * hd)
                    convertRow(L.self, values + L.byteOffset((j0 + j) * vStride + kc), hd, vt + j * hd)
                }
                kp = UnsafePointer(kt); kld = hd; vp = UnsafePointer(vt); vld = hd
            }
            // S[mr, n] = Qg · Kᵀ; probabilities exp(scale · (S − running max)) (scale > 0). A few rows
            // (decode) as SIMD dot products: a GEMM call costs more than it saves there.
            if kvPack != nil || inPlace {
                // S was computed above.
            } else if mr <= smallRows {
                for row in 0..<mr {
                    let qr = UnsafePointer(qg + row * hd), sr = s + row * n
                    for j in 0..<n { sr[j] = dotRow(F32Loader.self, UnsafeRawPointer(kp + j * kld), qr, hd) }
                }
            } else {
                gemm(transB: true, m: mr, n: n, k: hd, a: qg, lda: hd, b: kp, ldb: kld, c: s, ldc: n)
            }
            for row in 0..<mr {
                let sr = s + row * ls
                let valid = min(n, max(0, mask.visible(i0 + row / group, sh.nk) - j0))
                if valid == 0 {
                    if let p16 { (p16.p + row * ls).update(repeating: 0, count: ls) } else { sr.update(repeating: 0, count: ls) }
                    continue
                }
                if let bias {
                    let b = bias.values + (g * group + row % group) * bias.headStride + (i0 + row / group) * bias.rowStride + j0
                    for j in 0..<valid { sr[j] = sr[j] * scoreScale + b[j] }
                }
                let newMax = max(rowMax[row], maxElement(sr, valid))
                let corr = rowMax[row] == -.infinity ? 0 : expf((rowMax[row] - newMax) * scale)
                let sum: Float
                if let p16 {
                    // bf16 products: the probabilities go straight to bf16 (zero-padded to nPad).
                    sum = expShiftedBF16(sr, valid, padTo: ls, shift: newMax, scale: scale, p16.p + row * ls)
                } else {
                    sum = expShifted(sr, valid, shift: newMax, scale: scale)
                    if valid < ls { (sr + valid).update(repeating: 0, count: ls - valid) }
                }
                rowSum[row] = rowSum[row] * corr + sum
                if corr != 1 {
                    let ar = acc + row * hd
                    for d in 0..<hd { ar[d] *= corr }
                }
                rowMax[row] = newMax
            }
            // acc[mr, hd] += P[mr, n] · V_blk[n, hd]
            if let kvPack, let p16 {
                bf16PackedGEMM(p16.p, lda: nPad, kvPack.v.p + g * hd * nkPad + j0 * hd, ldp: 2 * hd, pairs: nPad / 2,
                               m: mr, n: hd, acc, ldc: hd, accumulate: true)
            } else if inPlace {
                _ = accumulateStoredRows(L.self, values + L.byteOffset(j0 * vStride + kc), rowBytes: L.byteOffset(vStride),
                                         p: s, ldp: ls, m: mr, n: n, cols: hd, acc: acc, ldAcc: hd)
            } else if mr <= smallRows {
                for row in 0..<mr {
                    let sr = s + row * n, ar = UnsafeMutableRawPointer(acc + row * hd)
                    for j in 0..<n {
                        let pj = sr[j]
                        if pj == 0 { continue }
                        let vr = UnsafeRawPointer(vp + j * vld)
                        var d = 0
                        while d + 8 <= hd {
                            let a = ar.loadUnaligned(fromByteOffset: 4 * d, as: SIMD8<Float>.self)
                            ar.storeBytes(of: a + pj * vr.loadUnaligned(fromByteOffset: 4 * d, as: SIMD8<Float>.self),
                                          toByteOffset: 4 * d, as: SIMD8<Float>.self)
                            d += 8
                        }
                        while d < hd { acc[row * hd + d] += pj * vp[j * vld + d]; d += 1 }
                    }
                }
            } else {
                gemm(m: mr, n: hd, k: n, a: s, lda: n, b: vp, ldb: vld, beta: 1, c: acc, ldc: hd)
            }
            blk += 1
        }
        if let partials {
            let base = partials.p + (task * rows) * partialStride
            for row in 0..<mr {
                let pr = base + row * partialStride
                pr[0] = rowMax[row]; pr[1] = rowSum[row]
                (pr + 2).update(from: acc + row * hd, count: hd)
            }
            return
        }
        for row in 0..<mr {
            let r = row / group, h = g * group + row % group
            let o = out + (i0 + r) * outStride + h * hd, ar = acc + row * hd
            if rowSum[row] > 0 {
                let inv = 1 / rowSum[row]
                for d in 0..<hd { o[d] = ar[d] * inv }
            } else {
                o.update(repeating: 0, count: hd)
            }
            lse?[h * nq + i0 + r] = rowSum[row] > 0 ? rowMax[row] * scale + log(rowSum[row]) : -.infinity
        }
    }
    let tasks = sh.kvHeads * qBlocks * splits
    // Small problems (a decode step over a short context) run inline: a wake-up costs more.
    let work = tasks * rows * max(sh.nk / splits, 1) * hd
    if let pool, threads > 1, tasks > 1, work >= 1 << 15 { pool.parallelFor(tasks, body) } else { for t in 0..<tasks { body(t) } }
    guard let partials else { return }
    // Merge the key ranges: M = max_s m_s, f_s = exp(scale (m_s − M)), out = Σ f_s acc_s / Σ f_s sum_s.
    for g in 0..<sh.kvHeads {
        for qb in 0..<qBlocks {
            let i0 = qb * bq, m = min(bq, nq - i0)
            for row in 0..<(m * group) {
                let r = row / group, h = g * group + row % group
                func part(_ sp: Int) -> UnsafeMutablePointer<Float> {
                    partials.p + ((((g * qBlocks) + qb) * splits + sp) * rows + row) * partialStride
                }
                var mx = -Float.infinity
                for sp in 0..<splits where part(sp)[1] > 0 { mx = max(mx, part(sp)[0]) }
                let o = out + (i0 + r) * outStride + h * hd
                o.update(repeating: 0, count: hd)
                var total: Float = 0
                if mx > -.infinity {
                    for sp in 0..<splits where part(sp)[1] > 0 {
                        let pr = part(sp), f = expf((pr[0] - mx) * scale)
                        total += f * pr[1]
                        for d in 0..<hd { o[d] += f * pr[2 + d] }
                    }
                }
                if total > 0 {
                    let inv = 1 / total
                    for d in 0..<hd { o[d] *= inv }
                }
                lse?[h * nq + i0 + r] = total > 0 ? mx * scale + log(total) : -.infinity
            }
        }
    }
}

/// K and V of every KV head as bf16, packed in pairs for `bf16PackedGEMM`: k[g][d/2][j][d%2] (row of
/// pairs 2·nkPad long) and v[g][j/2][d][j%2] (2·headDim long); keys nk ..< nkPad are zeros.
func packKV<L: WeightLoader>(_: L.Type, _ sh: AttentionShape, keys: UnsafeRawPointer, kStride: Int,
                             values: UnsafeRawPointer, vStride: Int, nkPad: Int, pool: ThreadPool?) -> (k: BF16Buffer, v: BF16Buffer) {
    let hd = sh.headDim, nk = sh.nk
    let kP = BF16Buffer(sh.kvHeads * hd * nkPad, zeroed: true), vP = BF16Buffer(sh.kvHeads * hd * nkPad, zeroed: true)
    let chunks = max(1, (nk + 255) / 256)
    parallelRows(pool, sh.kvHeads * chunks, minChunk: 1) { range in
        let row = FloatBuffer(hd, zeroed: false), r16 = BF16Buffer(hd)
        for task in range {
            let g = task / chunks, j0 = task % chunks * 256
            let kg = kP.p + g * hd * nkPad, vg = vP.p + g * hd * nkPad
            for j in j0..<min(nk, j0 + 256) {
                convertRow(L.self, keys + L.byteOffset(j * kStride + g * hd), hd, row.p)
                roundToBF16(row.p, r16.p, count: hd)
                for d in 0..<hd { kg[(d >> 1) * 2 * nkPad + 2 * j + (d & 1)] = r16.p[d] }
                convertRow(L.self, values + L.byteOffset(j * vStride + g * hd), hd, row.p)
                roundToBF16(row.p, r16.p, count: hd)
                let vj = vg + (j >> 1) * 2 * hd + (j & 1)
                for d in 0..<hd { vj[2 * d] = r16.p[d] }
            }
        }
    }
    return (kP, vP)
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

import COpenBLAS
import HunyuanCore
#if canImport(Glibc)
import Glibc
#endif

// Forward/backward pairs of every layer the trainer needs, as small functions over fp32 row-major
// buffers and shapes (llama2.c style): linear (GEMM through OpenBLAS, split over the pool), RMSNorm
// (with or without weight), NeoX RoPE, causal GQA attention, SwiGLU, softmax, embedding and
// cross-entropy. A backward function *accumulates* parameter gradients (dW += …) and writes or
// accumulates the input gradient as its `accumulate` flag says. Nothing here allocates per element.

/// An owned fp32 buffer of `count` floats, zero-initialized. One thread writes it at a time.
final class Buf: @unchecked Sendable {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(_ n: Int) {
        count = n
        p = .allocate(capacity: max(n, 1))
        p.initialize(repeating: 0, count: max(n, 1))
    }
    deinit { p.deallocate() }
    func zero() { p.update(repeating: 0, count: count) }
    subscript(i: Int) -> Float {
        get { p[i] }
        set { p[i] = newValue }
    }
}

private let trainerBLASSetup: Bool = {
    // The pool splits GEMMs itself; OpenBLAS's own threads would oversubscribe the cores.
    openblas_set_num_threads(1)
    return true
}()

/// C[m, n] = α·op(A)·op(B) + β·C (row-major), op = transpose when the flag is set; A is [m, k]
/// (or [k, m] when transA), B is [k, n] (or [n, k] when transB). Rows of C are split over `pool`
/// when the product is large enough to pay for the wake-up.
func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool?) {
    _ = trainerBLASSetup
    if m <= 0 || n <= 0 { return }
    if k <= 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    let threads = pool?.threadCount ?? 1
    let parts = m * n * k < 1 << 18 ? 1 : max(1, min(threads, m / 8))
    let body: (Int) -> Void = { p in
        let lo = m * p / parts, hi = m * (p + 1) / parts
        if lo >= hi { return }
        let aSub = transA ? a + lo : a + lo * lda
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(hi - lo), Int32(n), Int32(k), alpha, aSub, Int32(lda), b, Int32(ldb), beta,
                    c + lo * ldc, Int32(ldc))
    }
    if parts > 1, let pool { pool.parallelFor(parts, body) } else { body(0) }
}

// MARK: - Linear

/// Forward: y[n, out] = x[n, in] · W[out, in]ᵀ.
func linearForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows n: Int, inF: Int, outF: Int,
                   _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    gemm(transA: false, transB: true, m: n, n: outF, k: inF, a: x, lda: inF, b: w, ldb: inF,
         beta: 0, c: y, ldc: outF, pool: pool)
}

/// Backward of `linearForward`: dW[out, in] += dyᵀ · x; dx[n, in] (=, or += when `accumulate`) dy · W.
/// `dx` nil skips the input gradient, `dW` nil the weight gradient (a frozen weight).
func linearBackward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                    rows n: Int, inF: Int, outF: Int, dW: UnsafeMutablePointer<Float>?,
                    dx: UnsafeMutablePointer<Float>?, accumulate: Bool, pool: ThreadPool?) {
    if let dW {
        gemm(transA: true, transB: false, m: outF, n: inF, k: n, a: dy, lda: outF, b: x, ldb: inF,
             beta: 1, c: dW, ldc: inF, pool: pool)
    }
    if let dx {
        gemm(transA: false, transB: false, m: n, n: inF, k: outF, a: dy, lda: outF, b: w, ldb: inF,
             beta: accumulate ? 1 : 0, c: dx, ldc: inF, pool: pool)
    }
}

// MARK: - RMSNorm

/// Forward over `rows` vectors of `dim` (stride `stride`): out = x · r · (w ?? 1), r = 1/√(mean(x²)+eps),
/// saving r per row in `rinv`. out may equal x.
func rmsnormForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, rows: Int, dim: Int, eps: Float,
                    _ out: UnsafeMutablePointer<Float>, rinv: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let xr = x + r * dim, o = out + r * dim
        var ss: Float = 0
        for i in 0..<dim { ss += xr[i] * xr[i] }
        let inv = 1 / (ss / Float(dim) + eps).squareRoot()
        rinv[r] = inv
        if let w { for i in 0..<dim { o[i] = w[i] * (xr[i] * inv) } } else { for i in 0..<dim { o[i] = xr[i] * inv } }
    }
}

/// Backward of `rmsnormForward`: with x̂ = x·r and g = dy ⊙ w, dx = r·(g − x̂·mean(g ⊙ x̂)) (= or +=),
/// dw += Σ_rows dy ⊙ x̂. `dx` may equal `dy` only when not accumulating.
func rmsnormBackward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, rinv: UnsafePointer<Float>,
                     _ dy: UnsafePointer<Float>, rows: Int, dim: Int, dx: UnsafeMutablePointer<Float>,
                     accumulate: Bool, dw: UnsafeMutablePointer<Float>?) {
    for r in 0..<rows {
        let xr = x + r * dim, g = dy + r * dim, o = dx + r * dim
        let inv = rinv[r]
        var dot: Float = 0
        for i in 0..<dim {
            let xh = xr[i] * inv
            let gi = w.map { $0[i] * g[i] } ?? g[i]
            dot += gi * xh
            if let dw { dw[i] += g[i] * xh }
        }
        let mean = dot / Float(dim)
        for i in 0..<dim {
            let xh = xr[i] * inv
            let gi = w.map { $0[i] * g[i] } ?? g[i]
            let v = inv * (gi - xh * mean)
            o[i] = accumulate ? o[i] + v : v
        }
    }
}

// MARK: - RoPE

/// cos/sin table [T, headDim] for positions 0..<T (d/2 cos then d/2 sin per position).
func ropeTableRows(_ t: Int, config c: HunyuanConfig) -> Buf {
    let hd = c.headDim
    let inv = HunyuanAttention.inverseFrequencies(c)
    let out = Buf(t * hd)
    inv.withUnsafeBufferPointer { f in
        for i in 0..<t { ropeTable(position: i, invFreq: f.baseAddress!, headDim: hd, out.p + i * hd) }
    }
    return out
}

/// Rotates every head of `rows` tokens in place (row r at position r % seqLen); `inverse` applies Rᵀ
/// (the backward of the rotation, sin negated).
func ropeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, seqLen: Int, heads: Int, headDim hd: Int,
              table: UnsafePointer<Float>, inverse: Bool) {
    let h2 = hd / 2
    for r in 0..<rows {
        let cs = table + (r % seqLen) * hd
        for h in 0..<heads {
            let v = x + (r * heads + h) * hd
            for i in 0..<h2 {
                let c = cs[i], s = inverse ? -cs[h2 + i] : cs[h2 + i]
                let a = v[i], b = v[i + h2]
                v[i] = a * c - b * s
                v[i + h2] = b * c + a * s
            }
        }
    }
}

// MARK: - Causal attention (GQA)

/// Forward over `batch` sequences of `seqLen` tokens: for each query head h (kv head h / (nh/nkv)),
/// P = softmax(scale · q kᵀ + causal mask), out = P v. q/out: [batch·T, nh·hd]; k/v: [batch·T, nkv·hd].
/// Saves P [batch, nh, T, T] for the backward (training contexts are short; the engine's inference
/// attention is the blocked one). Work split over (sequence, kv head) tasks.
func attentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, batch: Int,
                      seqLen t: Int, heads nh: Int, kvHeads nkv: Int, headDim hd: Int,
                      probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    let qw = nh * hd, kw = nkv * hd, group = nh / nkv
    let scale = 1 / Float(hd).squareRoot()
    let body: (Int) -> Void = { task in
        let b = task / nkv, kh = task % nkv
        for h in (kh * group)..<((kh + 1) * group) {
            let qb = q + b * t * qw + h * hd, kb = k + b * t * kw + kh * hd, vb = v + b * t * kw + kh * hd
            let P = probs + ((b * nh + h) * t) * t
            gemm(transA: false, transB: true, m: t, n: t, k: hd, alpha: scale, a: qb, lda: qw, b: kb, ldb: kw,
                 beta: 0, c: P, ldc: t, pool: nil)
            for i in 0..<t {
                let row = P + i * t
                for j in (i + 1)..<max(t, i + 1) { row[j] = -.infinity }
                softmax(row, i + 1)
                for j in (i + 1)..<max(t, i + 1) { row[j] = 0 }
            }
            gemm(transA: false, transB: false, m: t, n: hd, k: t, a: P, lda: t, b: vb, ldb: kw,
                 beta: 0, c: out + b * t * qw + h * hd, ldc: qw, pool: nil)
        }
    }
    let tasks = batch * nkv
    if let pool, pool.threadCount > 1, tasks > 1 { pool.parallelFor(tasks, body) } else { for i in 0..<tasks { body(i) } }
}

/// Backward of `attentionForward`: dq (=), dk and dv (+=, so CLA layers sharing K/V can accumulate).
func attentionBackward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                       probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>, batch: Int, seqLen t: Int,
                       heads nh: Int, kvHeads nkv: Int, headDim hd: Int,
                       dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                       dv: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    let qw = nh * hd, kw = nkv * hd, group = nh / nkv
    let scale = 1 / Float(hd).squareRoot()
    let body: (Int) -> Void = { task in
        let b = task / nkv, kh = task % nkv
        let dP = UnsafeMutablePointer<Float>.allocate(capacity: max(t * t, 1))
        defer { dP.deallocate() }
        for h in (kh * group)..<((kh + 1) * group) {
            let off = b * t
            let qb = q + off * qw + h * hd, kb = k + off * kw + kh * hd, vb = v + off * kw + kh * hd
            let dob = dOut + off * qw + h * hd
            let P = probs + ((b * nh + h) * t) * t
            // dP = dO · vᵀ ; dv += Pᵀ · dO
            gemm(transA: false, transB: true, m: t, n: t, k: hd, a: dob, lda: qw, b: vb, ldb: kw,
                 beta: 0, c: dP, ldc: t, pool: nil)
            gemm(transA: true, transB: false, m: t, n: hd, k: t, a: P, lda: t, b: dob, ldb: qw,
                 beta: 1, c: dv + off * kw + kh * hd, ldc: kw, pool: nil)
            // dS = P ⊙ (dP − Σ_j P dP) · scale
            for i in 0..<t {
                let pr = P + i * t, dr = dP + i * t
                var s: Float = 0
                for j in 0...i { s += pr[j] * dr[j] }
                for j in 0..<t { dr[j] = j <= i ? pr[j] * (dr[j] - s) * scale : 0 }
            }
            gemm(transA: false, transB: false, m: t, n: hd, k: t, a: dP, lda: t, b: kb, ldb: kw,
                 beta: 0, c: dq + off * qw + h * hd, ldc: qw, pool: nil)
            gemm(transA: true, transB: false, m: t, n: hd, k: t, a: dP, lda: t, b: qb, ldb: qw,
                 beta: 1, c: dk + off * kw + kh * hd, ldc: kw, pool: nil)
        }
    }
    let tasks = batch * nkv
    if let pool, pool.threadCount > 1, tasks > 1 { pool.parallelFor(tasks, body) } else { for i in 0..<tasks { body(i) } }
}

// MARK: - SwiGLU

/// h = silu(g) ⊙ u over n elements (g, u kept for the backward).
func swigluForward(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int, _ h: UnsafeMutablePointer<Float>) {
    for i in 0..<n { h[i] = silu(g[i]) * u[i] }
}

/// Backward of `swigluForward`: dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g), with
/// silu'(x) = σ(x)(1 + x(1 − σ(x))). dg/du may alias g/u.
func swigluBackward(_ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ dh: UnsafePointer<Float>,
                    _ n: Int, dg: UnsafeMutablePointer<Float>, du: UnsafeMutablePointer<Float>) {
    for i in 0..<n {
        let x = g[i], s = 1 / (1 + exp(-x)), up = u[i], d = dh[i]
        dg[i] = d * up * s * (1 + x * (1 - s))
        du[i] = d * x * s
    }
}

// MARK: - Softmax, embedding, cross-entropy

/// Backward of softmax over n: dlogit = p ⊙ (dp − Σ p ⊙ dp) (=, or += when accumulating).
func softmaxBackward(_ p: UnsafePointer<Float>, _ dp: UnsafePointer<Float>, _ n: Int,
                     _ dlogit: UnsafeMutablePointer<Float>, accumulate: Bool) {
    var s: Float = 0
    for i in 0..<n { s += p[i] * dp[i] }
    for i in 0..<n { let v = p[i] * (dp[i] - s); dlogit[i] = accumulate ? dlogit[i] + v : v }
}

/// x[r] = E[ids[r]] for `rows` ids.
func embeddingForward(_ e: UnsafePointer<Float>, ids: [Int32], dim: Int, _ x: UnsafeMutablePointer<Float>) {
    for (r, id) in ids.enumerated() { (x + r * dim).update(from: e + Int(id) * dim, count: dim) }
}

/// dE[ids[r]] += dx[r].
func embeddingBackward(ids: [Int32], dim: Int, _ dx: UnsafePointer<Float>, dE: UnsafeMutablePointer<Float>) {
    for (r, id) in ids.enumerated() {
        let d = dE + Int(id) * dim, s = dx + r * dim
        for i in 0..<dim { d[i] += s[i] }
    }
}

/// Mean cross-entropy over rows whose target ≥ 0 (−1 = ignored), scaled by `scale`; replaces
/// logits[rows, vocab] by dLoss/dlogits (× scale). Returns (summed loss over counted rows, count).
func crossEntropy(_ logits: UnsafeMutablePointer<Float>, targets: [Int32], vocab: Int, scale: Float,
                  pool: ThreadPool?) -> (Double, Int) {
    let counted = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
    let inv = counted > 0 ? scale / Float(counted) : 0
    let rows = targets.count
    let losses = Buf(rows)
    targets.withUnsafeBufferPointer { tg in
        parallelRows(pool, rows, minChunk: 16) { range in
            for r in range {
                let row = logits + r * vocab
                let tgt = Int(tg[r])
                if tgt < 0 { row.update(repeating: 0, count: vocab); continue }
                var m = -Float.infinity
                for i in 0..<vocab { m = max(m, row[i]) }
                let z = row[tgt] - m
                let sum = expShifted(row, vocab, shift: m)
                losses[r] = log(sum) - z
                let s = inv / sum
                for i in 0..<vocab { row[i] *= s }
                row[tgt] -= inv
            }
        }
    }
    var total: Double = 0
    for r in 0..<rows where targets[r] >= 0 { total += Double(losses[r]) }
    return (total, counted)
}

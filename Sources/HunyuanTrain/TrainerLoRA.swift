import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// Which projections get LoRA adapters.
public struct LoRAOptions: Sendable, Equatable {
    public var rank = 8
    /// Scale = alpha / rank.
    public var alpha: Double = 16
    /// q/k/v/o projections.
    public var attention = true
    /// gate/up/down of the routed experts and the shared expert.
    public var experts = true
    public init() {}
}

/// A low-rank adapter on one projection W [out, in]: W_eff = W + scale · B · A with A [r, in]
/// (random, std 1/√in) and B [out, r] (zero, so training starts from the base model). Named after the
/// weight as PEFT does: `<module>.lora_A.weight`, `<module>.lora_B.weight`.
final class LoRAAdapter: @unchecked Sendable {
    let a: Param
    let b: Param
    let rank: Int
    let scale: Float
    init(base: Param, rank: Int, scale: Float) {
        let module = base.name.hasSuffix(".weight") ? String(base.name.dropLast(7)) : base.name
        a = Param(name: module + ".lora_A.weight", shape: [rank, base.shape[1]], group: base.group)
        b = Param(name: module + ".lora_B.weight", shape: [base.shape[0], rank], group: base.group)
        self.rank = rank
        self.scale = scale
    }
}

extension TrainParams {
    /// Freezes every base parameter and adds adapters to the selected projections.
    func enableLoRA(_ o: LoRAOptions, seed: UInt64) throws {
        guard o.rank > 0 else { throw HYError.invalidArgument("LoRA rank must be positive") }
        guard adapters.isEmpty else { throw HYError.invalidArgument("LoRA is already enabled") }
        guard o.attention || o.experts else { throw HYError.invalidArgument("LoRA needs attention and/or expert targets") }
        var rng = SplitMix64(seed: seed)
        var targets: [Param] = []
        for l in layers {
            if o.attention { targets += [l.q, l.o] + [l.k, l.v].compactMap { $0 } }
            if o.experts {
                for m in l.experts + [l.shared].compactMap({ $0 }) { targets += [m.gate, m.up, m.down] }
            }
        }
        for p in all { p.frozen = true }
        for p in targets {
            let ad = LoRAAdapter(base: p, rank: o.rank, scale: Float(o.alpha / Double(o.rank)))
            let std = 1 / Float(p.shape[1]).squareRoot()
            for i in 0..<ad.a.count { ad.a.value[i] = std * gaussian(&rng) }
            p.adapter = ad
            adapters += [ad.a, ad.b]
            byName[ad.a.name] = ad.a
            byName[ad.b.name] = ad.b
        }
    }
}

/// y[n, out] = x · Wᵀ (+ scale · (x · Aᵀ) · Bᵀ with an adapter).
func project(_ p: Param, _ x: UnsafePointer<Float>, rows n: Int, inF: Int, outF: Int, _ y: UnsafeMutablePointer<Float>,
             pool: ThreadPool?) {
    linearForward(x, p.w, rows: n, inF: inF, outF: outF, y, pool: pool)
    guard let ad = p.adapter else { return }
    let u = FloatBuffer(n * ad.rank)
    linearForward(x, ad.a.w, rows: n, inF: inF, outF: ad.rank, u.p, pool: pool)
    gemm(transA: false, transB: true, m: n, n: outF, k: ad.rank, alpha: ad.scale, a: u.p, lda: ad.rank,
         b: ad.b.w, ldb: ad.rank, beta: 1, c: y, ldc: outF, pool: pool)
}

/// Backward of `project`: the weight gradient unless frozen, adapter gradients
/// (dB += s·dyᵀ·u, dA += (s·dy·B)ᵀ·x with u = x·Aᵀ), and dx (=, or += when accumulating).
func projectBackward(_ p: Param, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, rows n: Int, inF: Int, outF: Int,
                     dx: UnsafeMutablePointer<Float>?, accumulate: Bool, pool: ThreadPool?) {
    linearBackward(x, p.w, dy, rows: n, inF: inF, outF: outF, dW: p.frozen ? nil : p.g, dx: dx, accumulate: accumulate, pool: pool)
    guard let ad = p.adapter else { return }
    let r = ad.rank
    let u = FloatBuffer(n * r), du = FloatBuffer(n * r)
    linearForward(x, ad.a.w, rows: n, inF: inF, outF: r, u.p, pool: pool)
    gemm(transA: true, transB: false, m: outF, n: r, k: n, alpha: ad.scale, a: dy, lda: outF, b: u.p, ldb: r,
         beta: 1, c: ad.b.g, ldc: r, pool: pool)
    gemm(transA: false, transB: false, m: n, n: r, k: outF, alpha: ad.scale, a: dy, lda: outF, b: ad.b.w, ldb: r,
         beta: 0, c: du.p, ldc: r, pool: pool)
    gemm(transA: true, transB: false, m: r, n: inF, k: n, a: du.p, lda: r, b: x, ldb: inF, beta: 1, c: ad.a.g, ldc: inF, pool: pool)
    if let dx {
        gemm(transA: false, transB: false, m: n, n: inF, k: r, a: du.p, lda: r, b: ad.a.w, ldb: inF, beta: 1, c: dx, ldc: inF, pool: pool)
    }
}

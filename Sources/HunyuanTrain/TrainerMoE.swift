import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// The Hunyuan-Large MoE training options.
public struct MoETrainingOptions: Sendable, Equatable {
    /// Expert capacity = ceil(capacityFactor × tokens × k / experts); 0 = unlimited (no token dropped,
    /// as the official code with moe_drop_tokens false).
    public var capacityFactor: Double = 0
    /// Recycle routing: a token dropped by a full expert is re-assigned at random to an expert that
    /// still has room, drawn with probability ∝ its router probability, and weighted by that
    /// probability.
    public var recycleRouting: Bool = false
    /// Coefficient α of the Switch load-balancing loss α · E · Σ_e f_e · P_e (0 = off).
    public var auxLossCoefficient: Double = 0
    public init() {}
}

/// Expert-load statistics of one layer over one forward pass.
public struct ExpertStats: Sendable, Equatable {
    /// Token slots processed by each expert (after capacity and recycling).
    public var tokensPerExpert: [Int]
    /// Slots the router chose for each expert before capacity.
    public var chosenPerExpert: [Int]
    /// Slots dropped (routed to a full expert and not recycled).
    public var dropped: Int
    /// Slots re-assigned by recycle routing.
    public var recycled: Int
    /// Expert capacity used (Int.max when unlimited).
    public var capacity: Int
    /// Load-balancing loss of this layer (before its coefficient).
    public var balanceLoss: Double

    /// max load / mean load after capacity and recycling (1 = perfectly balanced).
    public var imbalance: Double { Self.maxOverMean(tokensPerExpert) }
    /// max / mean of the router's own choices, before capacity.
    public var routerImbalance: Double { Self.maxOverMean(chosenPerExpert) }

    static func maxOverMean(_ v: [Int]) -> Double {
        let total = v.reduce(0, +)
        guard total > 0, !v.isEmpty else { return 1 }
        return Double(v.max() ?? 0) * Double(v.count) / Double(total)
    }
}

/// What the MoE block of one layer keeps from its forward for the backward.
final class MoETape {
    let n: Int, d: Int, experts: Int, k: Int
    /// Router probabilities [n, E].
    let probs: FloatBuffer
    /// Per token slot (n·k): the original top-k expert, the final expert (−1 = dropped) and its weight.
    var original: [Int32]
    var final: [Int32]
    let weight: FloatBuffer
    /// Renormalization denominator per token (1 without renormalization).
    let denom: FloatBuffer
    /// Shared expert activations: gate/up pre-activations and h [n, width].
    let sharedG: FloatBuffer, sharedU: FloatBuffer, sharedH: FloatBuffer
    /// Routed experts: slot lists per expert, and activations stacked in expert order [slots, width]/[slots, d].
    var slots: [[Int]] = []
    var offsets: [Int] = []
    var expertG: FloatBuffer, expertU: FloatBuffer, expertH: FloatBuffer, expertY: FloatBuffer
    var stats: ExpertStats

    init(n: Int, d: Int, experts: Int, k: Int, sharedWidth: Int, expertWidth: Int) {
        self.n = n; self.d = d; self.experts = experts; self.k = k
        probs = FloatBuffer(n * experts)
        original = [Int32](repeating: -1, count: n * k)
        final = original
        weight = FloatBuffer(n * k); denom = FloatBuffer(n)
        sharedG = FloatBuffer(n * sharedWidth); sharedU = FloatBuffer(n * sharedWidth); sharedH = FloatBuffer(n * sharedWidth)
        expertG = FloatBuffer(n * k * expertWidth); expertU = FloatBuffer(n * k * expertWidth); expertH = FloatBuffer(n * k * expertWidth)
        expertY = FloatBuffer(n * k * d)
        stats = ExpertStats(tokensPerExpert: [], chosenPerExpert: [], dropped: 0, recycled: 0, capacity: 0, balanceLoss: 0)
    }
}

enum TrainerMoE {
    /// Routes n tokens given router probabilities (tape.probs): top-k, capacity with token dropping in
    /// slot-then-token order (GShard), optional recycle routing, weights (raw probability for
    /// Hunyuan-Large top-1; renormalized over the original top-k otherwise). Fills tape.final/weight/
    /// denom/slots and the statistics.
    static func route(tape s: MoETape, renormalize: Bool, options o: MoETrainingOptions, rng: inout SplitMix64) {
        let n = s.n, E = s.experts, k = s.k
        let capacity = o.capacityFactor > 0 ? max(1, Int((o.capacityFactor * Double(n * k) / Double(E)).rounded(.up))) : Int.max
        var chosen = [Int](repeating: 0, count: E)
        for t in 0..<n {
            let p = s.probs.p + t * E
            var sum: Float = 0
            for j in 0..<k {
                var best = -1
                var bv = -Float.infinity
                for e in 0..<E {
                    var taken = false
                    for q in 0..<j where Int(s.original[t * k + q]) == e { taken = true; break }
                    if !taken && (best < 0 || p[e] > bv) { best = e; bv = p[e] }
                }
                s.original[t * k + j] = Int32(best)
                chosen[best] += 1
                sum += bv
            }
            s.denom[t] = renormalize ? max(sum, Float.ulpOfOne) : 1
        }
        var load = [Int](repeating: 0, count: E)
        var dropped: [Int] = []
        for j in 0..<k {
            for t in 0..<n {
                let slot = t * k + j, e = Int(s.original[slot])
                if load[e] < capacity { load[e] += 1; s.final[slot] = Int32(e) } else { s.final[slot] = -1; dropped.append(slot) }
            }
        }
        var recycled = 0
        if o.recycleRouting {
            for slot in dropped {
                let t = slot / k
                let p = s.probs.p + t * E
                var total: Double = 0
                for e in 0..<E where load[e] < capacity && !assigned(s, t, e) { total += Double(p[e]) }
                guard total > 0 else { continue }
                var r = rng.nextDouble() * total
                var pick = -1
                for e in 0..<E where load[e] < capacity && !assigned(s, t, e) {
                    pick = e
                    r -= Double(p[e])
                    if r < 0 { break }
                }
                if pick >= 0 { load[pick] += 1; s.final[slot] = Int32(pick); recycled += 1 }
            }
        }
        for slot in 0..<(n * k) {
            let e = Int(s.final[slot])
            s.weight[slot] = e >= 0 ? s.probs[(slot / k) * E + e] / s.denom[slot / k] : 0
        }
        s.slots = Array(repeating: [], count: E)
        for slot in 0..<(n * k) where s.final[slot] >= 0 { s.slots[Int(s.final[slot])].append(slot) }
        s.offsets = [0]
        for e in 0..<E { s.offsets.append(s.offsets[e] + s.slots[e].count) }
        // Switch balance loss E · Σ f_e P_e (f from the router's choices before capacity).
        var bal: Double = 0
        for e in 0..<E {
            var pm: Double = 0
            for t in 0..<n { pm += Double(s.probs[t * E + e]) }
            bal += Double(chosen[e]) / Double(n * k) * pm / Double(n)
        }
        s.stats = ExpertStats(tokensPerExpert: load, chosenPerExpert: chosen, dropped: dropped.count - recycled,
                              recycled: recycled, capacity: capacity, balanceLoss: bal * Double(E))
    }

    private static func assigned(_ s: MoETape, _ t: Int, _ e: Int) -> Bool {
        for j in 0..<s.k where Int(s.final[t * s.k + j]) == e { return true }
        return false
    }

    /// out[n, d] = shared(x) + Σ_slots w · expert(x) for x = xn [n, d] (the post-attention norm output).
    static func forward(layer w: TrainLayer, config c: HunyuanConfig, layerIndex l: Int, x: UnsafePointer<Float>,
                        tape s: MoETape, options: MoETrainingOptions, rng: inout SplitMix64,
                        out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let n = s.n, d = s.d, E = s.experts
        guard let router = w.router else { return }
        linearForward(x, router.w, rows: n, inF: d, outF: E, s.probs.p, pool: pool)
        for t in 0..<n { softmax(s.probs.p + t * E, E) }
        route(tape: s, renormalize: c.renormalizeRouting(layer: l), options: options, rng: &rng)
        if let sh = w.shared {
            mlpForward(sh, x, rows: n, d: d, g: s.sharedG.p, u: s.sharedU.p, h: s.sharedH.p, y: out, pool: pool)
        } else {
            out.update(repeating: 0, count: n * d)
        }
        let width = w.experts.first?.width ?? 0
        let gathered = FloatBuffer(max(1, (s.slots.map(\.count).max() ?? 0)) * d)
        for e in 0..<E where !s.slots[e].isEmpty {
            let list = s.slots[e], off = s.offsets[e]
            for (r, slot) in list.enumerated() { (gathered.p + r * d).update(from: x + (slot / s.k) * d, count: d) }
            mlpForward(w.experts[e], gathered.p, rows: list.count, d: d, g: s.expertG.p + off * width,
                       u: s.expertU.p + off * width, h: s.expertH.p + off * width, y: s.expertY.p + off * d, pool: pool)
            for (r, slot) in list.enumerated() {
                let dst = out + (slot / s.k) * d, src = s.expertY.p + (off + r) * d, wt = s.weight[slot]
                for i in 0..<d { dst[i] += wt * src[i] }
            }
        }
    }

    /// Backward: from dOut [n, d] gives dx [n, d] (=) and accumulates every parameter gradient of the
    /// block, the router's through the routing weights and the balance loss (coefficient `aux`, already
    /// including the loss scale).
    static func backward(layer w: TrainLayer, config c: HunyuanConfig, layerIndex l: Int, x: UnsafePointer<Float>,
                         tape s: MoETape, dOut: UnsafePointer<Float>, auxScale: Float,
                         dx: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let n = s.n, d = s.d, E = s.experts, k = s.k
        if let sh = w.shared {
            mlpBackward(sh, x, rows: n, d: d, g: s.sharedG.p, u: s.sharedU.p, h: s.sharedH.p, dy: dOut,
                        dx: dx, accumulate: false, pool: pool)
        } else {
            dx.update(repeating: 0, count: n * d)
        }
        let width = w.experts.first?.width ?? 0
        let maxRows = max(1, s.slots.map(\.count).max() ?? 0)
        let gathered = FloatBuffer(maxRows * d), dy = FloatBuffer(maxRows * d), dxe = FloatBuffer(maxRows * d)
        let dWeight = FloatBuffer(n * k)
        for e in 0..<E where !s.slots[e].isEmpty {
            let list = s.slots[e], off = s.offsets[e]
            for (r, slot) in list.enumerated() {
                let t = slot / k
                (gathered.p + r * d).update(from: x + t * d, count: d)
                let src = dOut + t * d, ye = s.expertY.p + (off + r) * d, wt = s.weight[slot]
                var dot: Float = 0
                for i in 0..<d { dy[r * d + i] = wt * src[i]; dot += src[i] * ye[i] }
                dWeight[slot] = dot
            }
            mlpBackward(w.experts[e], gathered.p, rows: list.count, d: d, g: s.expertG.p + off * width,
                        u: s.expertU.p + off * width, h: s.expertH.p + off * width, dy: dy.p,
                        dx: dxe.p, accumulate: false, pool: pool)
            for (r, slot) in list.enumerated() {
                let dst = dx + (slot / k) * d, src = dxe.p + r * d
                for i in 0..<d { dst[i] += src[i] }
            }
        }
        // Router: weight_j = p[final_j] / S with S = Σ p[original] (1 without renormalization).
        let renorm = c.renormalizeRouting(layer: l)
        let dProb = FloatBuffer(n * E), dLogit = FloatBuffer(n * E)
        for t in 0..<n {
            let p = s.probs.p + t * E, dp = dProb.p + t * E
            let S = s.denom[t]
            var dS: Float = 0
            for j in 0..<k {
                let slot = t * k + j, e = Int(s.final[slot])
                if e < 0 { continue }
                dp[e] += dWeight[slot] / S
                dS -= dWeight[slot] * p[e] / (S * S)
            }
            if renorm { for j in 0..<k { dp[Int(s.original[t * k + j])] += dS } }
        }
        if auxScale != 0 {
            // d/dp_{t,e} of E · Σ f_e · mean_t p_{t,e} = E · f_e / n.
            var f = [Float](repeating: 0, count: E)
            for e in 0..<E { f[e] = Float(s.stats.chosenPerExpert[e]) / Float(n * k) }
            for t in 0..<n { for e in 0..<E { dProb[t * E + e] += auxScale * Float(E) * f[e] / Float(n) } }
        }
        for t in 0..<n { softmaxBackward(s.probs.p + t * E, dProb.p + t * E, E, dLogit.p + t * E, accumulate: false) }
        guard let router = w.router else { return }
        linearBackward(x, router.w, dLogit.p, rows: n, inF: d, outF: E, dW: router.g, dx: dx, accumulate: true, pool: pool)
    }

    /// SwiGLU MLP forward keeping its activations: g = x·Wgᵀ, u = x·Wuᵀ, h = silu(g)⊙u, y = h·Wdᵀ.
    static func mlpForward(_ m: TrainMLP, _ x: UnsafePointer<Float>, rows n: Int, d: Int, g: UnsafeMutablePointer<Float>,
                           u: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                           pool: ThreadPool?) {
        let w = m.width
        project(m.gate, x, rows: n, inF: d, outF: w, g, pool: pool)
        project(m.up, x, rows: n, inF: d, outF: w, u, pool: pool)
        swiglu(g, u, n * w, into: h)
        project(m.down, h, rows: n, inF: w, outF: d, y, pool: pool)
    }

    /// Backward of `mlpForward` (overwrites g and u with their gradients).
    static func mlpBackward(_ m: TrainMLP, _ x: UnsafePointer<Float>, rows n: Int, d: Int, g: UnsafeMutablePointer<Float>,
                            u: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                            dx: UnsafeMutablePointer<Float>, accumulate: Bool, pool: ThreadPool?) {
        let w = m.width
        let dh = FloatBuffer(n * w)
        projectBackward(m.down, h, dy, rows: n, inF: w, outF: d, dx: dh.p, accumulate: false, pool: pool)
        swigluBackward(g, u, dh.p, n * w, dg: g, du: u)
        projectBackward(m.gate, x, g, rows: n, inF: d, outF: w, dx: dx, accumulate: accumulate, pool: pool)
        projectBackward(m.up, x, u, rows: n, inF: d, outF: w, dx: dx, accumulate: true, pool: pool)
    }
}

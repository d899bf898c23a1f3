import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// AdamW hyper-parameters, the learning-rate schedule and Hunyuan-Large's expert-specific rates.
public struct OptimizerOptions: Sendable, Equatable {
    /// ε_max: the peak learning rate (the rate of a parameter that sees the whole batch when
    /// B_noise equals the batch size).
    public var learningRate: Double = 1e-3
    public var beta1: Double = 0.9
    public var beta2: Double = 0.95
    public var epsilon: Double = 1e-8
    /// Decoupled weight decay (matrices only).
    public var weightDecay: Double = 0.1
    /// Global gradient-norm clipping (0 = off).
    public var clipNorm: Double = 1.0
    /// Linear warmup from 0, then cosine decay to minLRRatio × peak at `totalSteps`.
    public var warmupSteps: Int = 0
    public var totalSteps: Int = 1
    public var minLRRatio: Double = 0.1
    /// Expert-specific learning rates (false: every parameter at the base rate).
    public var expertLearningRates: Bool = true
    /// B_noise in tokens (nil: the batch size in tokens, so the shared expert trains at ε_max).
    public var noiseScale: Double? = nil
    public init() {}
}

/// ε_opt(B) = 2·ε_max / (√(B_noise/B) + √(B/B_noise)) (the Hunyuan-Large paper's batch-size scaling
/// of the optimal learning rate; ε_opt(B_noise) = ε_max).
public func optimalLearningRate(maxRate: Double, batchTokens b: Double, noiseScale bn: Double) -> Double {
    guard b > 0, bn > 0 else { return maxRate }
    return 2 * maxRate / ((bn / b).squareRoot() + (b / bn).squareRoot())
}

/// AdamW over the trainer's parameters with per-group learning rates. State (moments, step) lives
/// in the parameters and here; `TrainerCheckpoint` saves and restores it exactly.
final class AdamW {
    var options: OptimizerOptions
    /// Optimizer steps taken.
    var step = 0

    init(options: OptimizerOptions) { self.options = options }

    /// Schedule multiplier in [0, 1] for the (1-based) step s.
    func scheduleFactor(_ s: Int) -> Double {
        let o = options
        if o.warmupSteps > 0 && s <= o.warmupSteps { return Double(s) / Double(o.warmupSteps) }
        let span = max(1, o.totalSteps - o.warmupSteps)
        let progress = min(1, max(0, Double(s - o.warmupSteps) / Double(span)))
        return o.minLRRatio + (1 - o.minLRRatio) * 0.5 * (1 + cos(Double.pi * progress))
    }

    /// Peak learning rate of a group for a batch of `batchTokens` tokens, k experts per token out of n.
    func groupRate(_ g: ParamGroup, batchTokens: Int, topK: Int, experts: Int) -> Double {
        let o = options
        guard o.expertLearningRates else { return o.learningRate }
        let b = Double(batchTokens)
        let bn = o.noiseScale ?? b
        switch g {
        case .dense, .sharedExpert:
            return optimalLearningRate(maxRate: o.learningRate, batchTokens: b, noiseScale: bn)
        case .routedExpert:
            let perExpert = b * Double(topK) / Double(max(1, experts))
            return optimalLearningRate(maxRate: o.learningRate, batchTokens: perExpert, noiseScale: bn)
        }
    }

    /// Global L2 norm of all gradients.
    static func gradNorm(_ params: [Param]) -> Double {
        var s: Double = 0
        for p in params {
            var a: Float = 0
            for i in 0..<p.count { a += p.g[i] * p.g[i] }
            s += Double(a)
        }
        return s.squareRoot()
    }

    /// One update from the accumulated gradients: clip, then AdamW with bias correction and the
    /// scheduled per-group rate. Returns (gradient norm before clipping, base learning rate used).
    func update(_ params: TrainParams, batchTokens: Int, pool: ThreadPool?) -> (Double, Double) {
        step += 1
        let o = options
        let c = params.config
        let list = params.trainable
        let norm = Self.gradNorm(list)
        let clip: Float = o.clipNorm > 0 && norm > o.clipNorm ? Float(o.clipNorm / norm) : 1
        let sched = scheduleFactor(step)
        let b1 = Float(o.beta1), b2 = Float(o.beta2), eps = Float(o.epsilon)
        let bc1 = Float(1 - pow(o.beta1, Double(step))), bc2 = Float(1 - pow(o.beta2, Double(step)))
        let topK = c.moeTopK.first ?? 1
        let rates = Dictionary(uniqueKeysWithValues: ParamGroup.allCases.map {
            ($0, sched * groupRate($0, batchTokens: batchTokens, topK: topK, experts: c.numExperts))
        })
        let body: (Int) -> Void = { idx in
            let p = list[idx]
            let lr = Float(rates[p.group] ?? 0)
            let decay: Float = p.decays ? 1 - lr * Float(o.weightDecay) : 1
            adamwStep(p.w, p.g, p.m.p, p.v.p, p.count, lr: lr, decay: decay, clip: clip, b1: b1, b2: b2, bc1: bc1, bc2: bc2, eps: eps)
        }
        if let pool, pool.threadCount > 1 { pool.parallelFor(list.count, body) } else { for i in 0..<list.count { body(i) } }
        return (norm, sched * o.learningRate)
    }
}

/// One AdamW update of n values in place: m, v ← moments of the clipped gradient; w ← w·decay −
/// lr·m̂/(√v̂ + eps) with bias corrections bc1 = 1 − β1^t, bc2 = 1 − β2^t.
@inline(__always)
func adamwStep(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
               _ v: UnsafeMutablePointer<Float>, _ n: Int, lr: Float, decay: Float, clip: Float, b1: Float, b2: Float,
               bc1: Float, bc2: Float, eps: Float) {
    for i in 0..<n {
        let gi = g[i] * clip
        m[i] = b1 * m[i] + (1 - b1) * gi
        v[i] = b2 * v[i] + (1 - b2) * gi * gi
        let mh = m[i] / bc1, vh = v[i] / bc2
        w[i] = w[i] * decay - lr * mh / (vh.squareRoot() + eps)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

/// The keys of a diffusers `scheduler_config.json` that the schedulers here read (absent keys take
/// each scheduler's defaults; keys they do not read are ignored, as diffusers ignores foreign keys).
public struct SchedulerConfig: Sendable, Decodable {
    public var num_train_timesteps: Int?
    public var beta_start: Double?
    public var beta_end: Double?
    public var beta_schedule: String?
    public var trained_betas: [Double]?
    public var prediction_type: String?
    public var timestep_spacing: String?
    public var steps_offset: Int?
    public var rescale_betas_zero_snr: Bool?
    public var variance_type: String?
    public var clip_sample: Bool?
    public var thresholding: Bool?

    public enum Prediction: String, Sendable { case epsilon, vPrediction = "v_prediction" }
    public enum Spacing: String, Sendable { case linspace, leading, trailing }

    public init() {}

    /// The training betas (`linear`, `scaled_linear`, `squaredcos_cap_v2` or `trained_betas`), fp32
    /// as diffusers computes them (torch.linspace in fp32, squared after for scaled_linear).
    public func betas(context: String) throws -> [Float] {
        let n = num_train_timesteps ?? 1000
        guard n >= 2, n <= 100_000 else { throw HYError.format("\(context): num_train_timesteps \(n) out of range") }
        guard !(rescale_betas_zero_snr ?? false) else { throw HYError.unsupported("\(context): rescale_betas_zero_snr") }
        var betas: [Float]
        if let tb = trained_betas {
            guard tb.count == n else { throw HYError.format("\(context): \(tb.count) trained_betas for \(n) timesteps") }
            betas = tb.map { Float($0) }
        } else {
            let b0 = beta_start ?? 0.0001, b1 = beta_end ?? 0.02
            switch beta_schedule ?? "linear" {
            case "linear":
                betas = Self.linspace(Float(b0), Float(b1), n)
            case "scaled_linear":
                betas = Self.linspace(Float(b0.squareRoot()), Float(b1.squareRoot()), n).map { $0 * $0 }
            case "squaredcos_cap_v2":
                func abar(_ t: Double) -> Double { let v = cos((t + 0.008) / 1.008 * Double.pi / 2); return v * v }
                betas = (0..<n).map { i in Float(min(1 - abar(Double(i + 1) / Double(n)) / abar(Double(i) / Double(n)), 0.999)) }
            default:
                throw HYError.unsupported("\(context): beta_schedule \(beta_schedule!)")
            }
        }
        guard betas.allSatisfy({ $0 > 0 && $0 < 1 }) else { throw HYError.format("\(context): betas must lie in (0, 1)") }
        return betas
    }

    /// ᾱ_t = Π_{s ≤ t} (1 − β_s) as torch.cumprod computes it on fp32 betas on the CPU: each factor
    /// 1 − β in fp32, the running product in double, every prefix rounded to fp32.
    public func alphasCumprod(context: String) throws -> [Float] {
        var acc = 1.0
        return try betas(context: context).map { b in acc *= Double(1 - b); return Float(acc) }
    }

    public func prediction(context: String) throws -> Prediction {
        guard let p = Prediction(rawValue: prediction_type ?? "epsilon") else {
            throw HYError.unsupported("\(context): prediction_type \(prediction_type!) (epsilon or v_prediction)")
        }
        return p
    }

    public func spacing(context: String, default d: Spacing = .linspace) throws -> Spacing {
        guard let s = Spacing(rawValue: timestep_spacing ?? d.rawValue) else {
            throw HYError.unsupported("\(context): timestep_spacing \(timestep_spacing!) (linspace, leading or trailing)")
        }
        return s
    }

    /// torch.linspace in fp32: start + i·step for the first half, end − (n − 1 − i)·step after.
    static func linspace(_ a: Float, _ b: Float, _ n: Int) -> [Float] {
        let step = (b - a) / Float(n - 1)
        return (0..<n).map { i in i < n / 2 ? a + step * Float(i) : b - step * Float(n - 1 - i) }
    }
}

/// diffusers' `DDPMScheduler` (schedulers/scheduling_ddpm.py) with the `fixed_small` variance, as its
/// `scheduler_config.json` sets it up: ᾱ the fp32 cumulative product of 1 − β; integer timesteps
/// spaced `leading` (+ steps_offset), `trailing` or `linspace`; `epsilon` or `v_prediction`; no
/// clipping or thresholding. The variance noise is the caller's (so a run can replay recorded draws).
/// Immutable.
public struct DDPMScheduler: Sendable {
    public let trainSteps: Int
    public let prediction: SchedulerConfig.Prediction
    public let spacing: SchedulerConfig.Spacing
    public let stepsOffset: Int
    /// ᾱ_t for every training timestep, fp32.
    public let alphasCumprod: [Float]

    /// Reads `scheduler_config.json` of `dir`.
    public init(folder dir: String) throws {
        let path = FileSystem.join(dir, "scheduler_config.json")
        try self.init(config: try Component.config(SchedulerConfig.self, dir, file: "scheduler_config.json"), context: path)
    }

    public init(config c: SchedulerConfig, context: String = "scheduler") throws {
        if let v = c.variance_type, v != "fixed_small" {
            throw HYError.unsupported("\(context): variance_type \(v) (fixed_small)")
        }
        guard !(c.clip_sample ?? true) else { throw HYError.unsupported("\(context): clip_sample true") }
        guard !(c.thresholding ?? false) else { throw HYError.unsupported("\(context): thresholding") }
        alphasCumprod = try c.alphasCumprod(context: context)
        trainSteps = alphasCumprod.count
        prediction = try c.prediction(context: context)
        spacing = try c.spacing(context: context, default: .leading)
        stepsOffset = c.steps_offset ?? 0
    }

    /// The `steps` timesteps, first (noisiest) first, and the previous timestep of each
    /// (t − train_steps / steps; negative means ᾱ_prev = 1).
    public func timesteps(steps: Int) throws -> (timesteps: [Int], previous: [Int]) {
        guard steps >= 1, steps <= trainSteps else {
            throw HYError.invalidArgument("steps must be in 1...\(trainSteps), got \(steps)")
        }
        let ratio = trainSteps / steps
        let t: [Int]
        switch spacing {
        case .leading:
            t = (0..<steps).reversed().map { $0 * ratio + stepsOffset }
        case .trailing:
            let r = Double(trainSteps) / Double(steps)
            t = (0..<steps).map { i in Int((Double(trainSteps) - Double(i) * r).rounded(.toNearestOrEven)) - 1 }
        case .linspace:
            let end = Double(trainSteps - 1)
            t = (0..<steps).reversed().map { i in
                Int((steps == 1 ? 0 : Double(i) * end / Double(steps - 1)).rounded(.toNearestOrEven))
            }
        }
        return (t, t.map { $0 - ratio })
    }

    /// One step from timestep t to prev (diffusers' `step` with fixed_small variance), in place on x:
    /// x0 from the model output (ε: (x − √(1−ᾱ)·out)/√ᾱ; v: √ᾱ·x − √(1−ᾱ)·out), the posterior mean
    /// (√ᾱ_prev·β'/(1−ᾱ))·x0 + (√α'·(1−ᾱ_prev)/(1−ᾱ))·x and, for t > 0, + √max(β'·(1−ᾱ_prev)/(1−ᾱ), 1e-20)·noise,
    /// α' = ᾱ/ᾱ_prev, β' = 1 − α'. `x0` (if given) receives the predicted x0. n values each.
    public func step(_ x: UnsafeMutablePointer<Float>, modelOut: UnsafePointer<Float>, noise: UnsafePointer<Float>?,
                     _ n: Int, timestep t: Int, previous prev: Int, x0 out: UnsafeMutablePointer<Float>? = nil) throws {
        guard t >= 0, t < trainSteps, prev < t else {
            throw HYError.invalidArgument("DDPM step: timestep \(t) (previous \(prev)) outside 0..<\(trainSteps)")
        }
        let a = alphasCumprod[t], aPrev: Float = prev >= 0 ? alphasCumprod[prev] : 1
        let b = 1 - a, bPrev = 1 - aPrev
        let curA = a / aPrev, curB = 1 - curA
        let x0Coeff = aPrev.squareRoot() * curB / b, xCoeff = curA.squareRoot() * bPrev / b
        let sa = a.squareRoot(), sb = b.squareRoot()
        let std = t > 0 ? max(bPrev / b * curB, 1e-20).squareRoot() : 0
        for j in 0..<n {
            let xj = x[j]
            let x0: Float
            switch prediction {
            case .epsilon: x0 = (xj - sb * modelOut[j]) / sa
            case .vPrediction: x0 = sa * xj - sb * modelOut[j]
            }
            out?[j] = x0
            var y = x0Coeff * x0 + xCoeff * xj
            if t > 0, let noise { y += std * noise[j] }
            x[j] = y
        }
    }
}

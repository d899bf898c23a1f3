#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

/// diffusers' `EulerAncestralDiscreteScheduler` as its `scheduler_config.json` sets it up: betas
/// (`linear`, `scaled_linear`, `squaredcos_cap_v2` or `trained_betas`) → ᾱ (fp32 cumulative
/// product) → σ = sqrt((1 − ᾱ)/ᾱ); `timesteps(steps)` spaced `linspace` / `leading` / `trailing`,
/// σ linearly interpolated at each timestep and 0 appended; `epsilon` or `v_prediction`. The
/// ancestral noise is the caller's (so a run can replay recorded draws). Immutable.
public struct EulerAncestralScheduler: Sendable {
    public typealias Config = SchedulerConfig

    public typealias Prediction = SchedulerConfig.Prediction
    public typealias Spacing = SchedulerConfig.Spacing

    public let trainSteps: Int
    public let prediction: Prediction
    public let spacing: Spacing
    public let stepsOffset: Int
    /// σ of every training timestep (index t), fp32.
    public let trainSigmas: [Float]

    /// One inference schedule: `timesteps[i]` and `sigmas[i]` (count + 1 entries, the last 0).
    public struct Schedule: Sendable {
        public let timesteps: [Float]
        public let sigmas: [Float]
        /// The σ the initial noise is multiplied by: σ_max for linspace / trailing spacing, else
        /// sqrt(σ_max² + 1).
        public let initNoiseSigma: Float
    }

    /// Reads `scheduler_config.json` of `dir`.
    public init(folder dir: String) throws {
        let c = try Component.config(Config.self, dir, file: "scheduler_config.json")
        try self.init(config: c, context: FileSystem.join(dir, "scheduler_config.json"))
    }

    public init(config c: Config, context: String = "scheduler") throws {
        trainSigmas = try c.alphasCumprod(context: context).map { a in ((1 - a) / a).squareRoot() }
        trainSteps = trainSigmas.count; prediction = try c.prediction(context: context); spacing = try c.spacing(context: context)
        stepsOffset = c.steps_offset ?? 0
    }

    /// The schedule of `steps` inference steps (1 ≤ steps ≤ the training timesteps).
    public func schedule(steps: Int) throws -> Schedule {
        guard steps >= 1, steps <= trainSteps else {
            throw HYError.invalidArgument("steps must be in 1...\(trainSteps), got \(steps)")
        }
        var t: [Float]
        switch spacing {
        case .linspace:
            // numpy linspace(0, n − 1, steps, float32), reversed
            let end = Double(trainSteps - 1)
            t = (0..<steps).map { i in
                steps == 1 ? 0 : Float(i == steps - 1 ? end : Double(i) * (end / Double(steps - 1)))
            }.reversed()
        case .leading:
            let ratio = trainSteps / steps
            t = (0..<steps).map { Float(($0 * ratio)) + Float(stepsOffset) }.reversed()
        case .trailing:
            let ratio = Double(trainSteps) / Double(steps)
            // np.arange(n, 0, −ratio).round() − 1
            t = (0..<steps).map { i in Float((Double(trainSteps) - Double(i) * ratio).rounded(.toNearestOrEven)) - 1 }
        }
        // np.interp over the fp32 training sigmas, in float64, then fp32
        let sig = t.map { tv -> Float in
            let x = Double(tv)
            if x <= 0 { return trainSigmas[0] }
            if x >= Double(trainSteps - 1) { return trainSigmas[trainSteps - 1] }
            let i = Int(x), f = x - Double(i)
            let a = Double(trainSigmas[i]), b = Double(trainSigmas[i + 1])
            return Float(a + (b - a) * f)
        } + [0]
        let smax = sig.max() ?? 0
        let initSigma = spacing == .leading ? (smax * smax + 1).squareRoot() : smax
        return Schedule(timesteps: t, sigmas: sig, initNoiseSigma: initSigma)
    }

    /// x / sqrt(σ² + 1) for the model input at σ (in place, n values).
    public static func scaleInput(_ x: UnsafeMutablePointer<Float>, _ n: Int, sigma: Float) {
        let d = (sigma * sigma + 1).squareRoot()
        for i in 0..<n { x[i] = x[i] / d }
    }

    /// One ancestral Euler step from σ = sigmas[i] to σ' = sigmas[i + 1]: x0 from the model output
    /// (ε: x − σ·out; v: out·(−σ/sqrt(σ²+1)) + x/(σ²+1)), σ_up = sqrt(σ'²(σ² − σ'²)/σ²),
    /// σ_down = sqrt(σ'² − σ_up²), x ← x + (x − x0)/σ·(σ_down − σ) + noise·σ_up. `x`, `modelOut`,
    /// `noise`: n values each.
    public func step(_ x: UnsafeMutablePointer<Float>, modelOut: UnsafePointer<Float>, noise: UnsafePointer<Float>, _ n: Int,
                     schedule s: Schedule, index i: Int) {
        let sigma = s.sigmas[i], to = s.sigmas[i + 1]
        let up = (to * to * (sigma * sigma - to * to) / (sigma * sigma)).squareRoot()
        let down = (to * to - up * up).squareRoot()
        let dt = down - sigma
        let vScale = -sigma / (sigma * sigma + 1).squareRoot(), xScale = sigma * sigma + 1
        for j in 0..<n {
            let xj = x[j]
            let x0: Float
            switch prediction {
            case .epsilon: x0 = xj - sigma * modelOut[j]
            case .vPrediction: x0 = modelOut[j] * vScale + xj / xScale
            }
            let derivative = (xj - x0) / sigma
            x[j] = (xj + derivative * dt) + noise[j] * up
        }
    }
}

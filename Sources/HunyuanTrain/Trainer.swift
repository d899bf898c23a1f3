import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// A tokenized corpus: its training part and its held-out tail.
public struct TrainCorpus: Sendable {
    public var name: String
    public var train: [Int32]
    public var heldOut: [Int32]
    public init(name: String, train: [Int32], heldOut: [Int32]) {
        self.name = name; self.train = train; self.heldOut = heldOut
    }
}

/// What one optimizer step reports.
public struct StepMetrics: Sendable {
    public var step: Int
    public var loss: Double
    public var balanceLoss: Double
    public var gradNorm: Double
    public var learningRate: Double
    public var tokens: Int
    public var seconds: Double
    /// Per layer, summed over the micro-batches of the step.
    public var stats: [ExpertStats]
    /// Mean over layers of max/mean expert load.
    public var imbalance: Double { stats.isEmpty ? 1 : stats.reduce(0) { $0 + $1.imbalance } / Double(stats.count) }
    /// Mean over layers of max/mean of the router's choices (before capacity).
    public var routerImbalance: Double { stats.isEmpty ? 1 : stats.reduce(0) { $0 + $1.routerImbalance } / Double(stats.count) }
    public var dropped: Int { stats.reduce(0) { $0 + $1.dropped } }
    public var recycled: Int { stats.reduce(0) { $0 + $1.recycled } }
}

/// The training loop: batches sampled from the concatenated training tokens at positions that depend
/// only on (seed, step, micro-batch), gradient accumulation, AdamW with the Hunyuan-Large expert
/// learning rates, held-out evaluation, and state checkpoints that resume bit-exactly (parameters,
/// moments and step; the data order is a function of the step). Not thread-safe.
public final class Trainer {
    public let config: TrainConfig
    public let model: TrainerModel
    /// The model's HF config (written into saved checkpoints).
    public let modelJSON: JSONValue
    public let corpora: [TrainCorpus]
    let optimizer: AdamW
    private let stream: [Int32]
    public private(set) var history: [StepMetrics] = []

    /// - model: parameters already loaded or initialized.
    public init(config: TrainConfig, model: TrainerModel, modelJSON: JSONValue, corpora: [TrainCorpus]) throws {
        self.config = config
        self.model = model
        self.modelJSON = modelJSON
        self.corpora = corpora
        model.moe = config.moe
        var opt = config.optimizer
        opt.totalSteps = max(1, config.steps)
        optimizer = AdamW(options: opt)
        var s: [Int32] = []
        for c in corpora { s.append(contentsOf: c.train) }
        stream = s
        guard stream.count > config.seqLen + 1 else {
            throw HYError.invalidArgument("training data holds \(stream.count) tokens, fewer than seq_len + 2 (\(config.seqLen + 2))")
        }
    }

    /// Optimizer steps done so far.
    public var step: Int { optimizer.step }

    /// Rows [batch, seqLen] of inputs and next-token targets for micro-batch `micro` of step `step`.
    func batch(step: Int, micro: Int) -> ([Int32], [Int32]) {
        let t = config.seqLen, b = config.batchSize
        var rng = SplitMix64(seed: config.seed &* 0x9E37_79B9 &+ UInt64(step) &* 1_000_003 &+ UInt64(micro))
        var inputs = [Int32](), targets = [Int32]()
        inputs.reserveCapacity(b * t); targets.reserveCapacity(b * t)
        let span = stream.count - t - 1
        for _ in 0..<b {
            let o = Int(rng.next() % UInt64(span + 1))
            inputs.append(contentsOf: stream[o..<(o + t)])
            targets.append(contentsOf: stream[(o + 1)..<(o + t + 1)])
        }
        return (inputs, targets)
    }

    /// One optimizer step (grad_accum micro-batches).
    @discardableResult
    public func trainStep() throws -> StepMetrics {
        let start = Clock.seconds()
        let s = optimizer.step + 1
        model.zeroGradients()
        var loss: Double = 0, bal: Double = 0, tokens = 0
        var stats: [ExpertStats] = []
        let accum = config.gradAccum
        for micro in 0..<accum {
            let (x, y) = batch(step: s, micro: micro)
            let r = try model.pass(tokens: x, targets: y, batch: config.batchSize, seqLen: config.seqLen, backward: true,
                                   lossScale: 1 / Float(accum), seed: UInt64(s) &* 7919 &+ UInt64(micro))
            loss += r.loss / Double(accum)
            bal += r.balanceLoss / Double(accum)
            tokens += r.tokens
            stats = stats.isEmpty ? r.stats : zip(stats, r.stats).map { a, b in
                var m = a
                m.tokensPerExpert = zip(a.tokensPerExpert, b.tokensPerExpert).map { $0 + $1 }
                m.chosenPerExpert = zip(a.chosenPerExpert, b.chosenPerExpert).map { $0 + $1 }
                m.dropped += b.dropped; m.recycled += b.recycled
                m.balanceLoss += b.balanceLoss
                return m
            }
        }
        let (norm, lr) = optimizer.update(model.params, batchTokens: config.batchTokens, pool: model.pool)
        let m = StepMetrics(step: s, loss: loss, balanceLoss: bal, gradNorm: norm, learningRate: lr, tokens: tokens,
                            seconds: Clock.seconds() - start, stats: stats)
        history.append(m)
        return m
    }

    /// Mean next-token loss on up to `windows` non-overlapping windows of seq_len + 1 held-out tokens
    /// of each corpus (inference routing: no capacity limit). Returns (name, loss, tokens).
    public func evaluate(windows: Int? = nil) throws -> [(String, Double, Int)] {
        let saved = model.moe
        model.moe.capacityFactor = 0
        defer { model.moe = saved }
        var out: [(String, Double, Int)] = []
        let t = config.seqLen
        for c in corpora {
            let n = min(windows ?? config.evalWindows, (c.heldOut.count - 1) / t)
            if n <= 0 { continue }
            var total: Double = 0, count = 0
            var w = 0
            while w < n {
                let b = min(config.batchSize, n - w)
                var x = [Int32](), y = [Int32]()
                for i in w..<(w + b) {
                    x.append(contentsOf: c.heldOut[(i * t)..<(i * t + t)])
                    y.append(contentsOf: c.heldOut[(i * t + 1)..<(i * t + t + 1)])
                }
                let r = try model.pass(tokens: x, targets: y, batch: b, seqLen: t, backward: false)
                total += r.loss * Double(r.tokens)
                count += r.tokens
                w += b
            }
            out.append((c.name, count > 0 ? total / Double(count) : 0, count))
        }
        return out
    }

    // MARK: - State checkpoints

    /// Saves parameters, AdamW moments and the step to `path` (safetensors, f32): resuming from it
    /// continues exactly as if the run had not stopped.
    public func saveState(to path: String) throws {
        var items: [SafetensorsWriter.Item] = []
        for p in model.params.all + model.params.adapters {
            for (prefix, b) in [("", p.value), ("adam_m.", p.m), ("adam_v.", p.v)] {
                items.append(SafetensorsWriter.Item(name: prefix + p.name, shape: p.shape,
                                                    floats: Array(UnsafeBufferPointer(start: b.p, count: p.count))))
            }
        }
        try SafetensorsWriter.write(items, metadata: [("format", "hunyuan-trainer-state"), ("step", String(optimizer.step)),
                                                      ("seed", String(config.seed))], to: path)
    }

    /// Restores a state saved by `saveState` (names and shapes must match this model).
    public func loadState(from path: String) throws {
        let f = try SafetensorsFile(path: path)
        guard let stepText = f.metadata.first(where: { $0.0 == "step" })?.1, let s = Int(stepText), s >= 0 else {
            throw HYError.format("\(path): not a trainer state (no step in its metadata)")
        }
        for p in model.params.all + model.params.adapters {
            for (prefix, b) in [("", p.value), ("adam_m.", p.m), ("adam_v.", p.v)] {
                guard let t = f.tensor(prefix + p.name) else { throw HYError.format("\(path): missing tensor \(prefix + p.name)") }
                try t.expectShape(p.shape)
                guard t.dtype == .f32 else { throw HYError.format("\(path): tensor \(t.name) is not f32") }
                t.copyFloats(into: b.p)
            }
        }
        optimizer.step = s
    }

    /// Saves the model as an HF checkpoint folder in the configured dtype.
    public func saveCheckpoint(to dir: String) throws {
        try model.saveCheckpoint(to: dir, configJSON: modelJSON, dtype: config.saveDType)
    }
}


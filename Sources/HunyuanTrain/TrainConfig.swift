import HunyuanLM

/// A training run, decoded from the JSON file `hunyuan-cli train CONFIG.json` reads. Every key but
/// `model`/`init_from`, `data` and `output` is optional:
///
///     { "model": { …HF config.json of the model… } | "init_from": "checkpoint folder",
///       "init_std": 0.02,
///       "tokenizer": "folder or hy.tiktoken", "data": ["a.txt", "b.txt"], "holdout_fraction": 0.05,
///       "output": "run folder", "seq_len": 128, "batch_size": 16, "grad_accum": 1, "steps": 1000,
///       "learning_rate": 1e-3, "min_lr_ratio": 0.1, "warmup_steps": 50, "weight_decay": 0.1,
///       "clip_norm": 1.0, "beta1": 0.9, "beta2": 0.95, "expert_lr": true, "b_noise": null,
///       "capacity_factor": 1.25, "recycle_routing": true, "aux_loss_coef": 0.01,
///       "eval_every": 100, "eval_windows": 64, "checkpoint_every": 200, "save_dtype": "bf16",
///       "seed": 1, "threads": 0, "resume": true, "time_budget_seconds": 0,
///       "lora": { "rank": 8, "alpha": 16, "targets": ["attention", "experts"] } }
///
/// Relative paths are resolved against `baseDirectory` (the config file's folder).
public struct TrainConfig: Sendable {
    public var model: JSONValue? = nil
    public var initFrom: String? = nil
    public var initStd: Float = 0.02
    public var tokenizer: String? = nil
    public var data: [String] = []
    public var holdoutFraction: Double = 0.05
    public var output: String = "train-run"
    public var seqLen = 128
    public var batchSize = 16
    public var gradAccum = 1
    public var steps = 100
    public var optimizer = OptimizerOptions()
    public var moe = MoETrainingOptions()
    /// LoRA fine-tuning instead of full training (nil = full).
    public var lora: LoRAOptions? = nil
    public var evalEvery = 0
    public var evalWindows = 64
    public var checkpointEvery = 0
    public var saveDType: DType = .f32
    public var seed: UInt64 = 1
    public var threads = 0
    public var resume = true
    public var timeBudgetSeconds: Double = 0

    public init() {}

    /// Tokens per optimizer step.
    public var batchTokens: Int { seqLen * batchSize * gradAccum }

    public static func decode(_ json: JSONValue, context: String, baseDirectory: String = ".") throws -> TrainConfig {
        func bad(_ m: String) -> HYError { HYError.format("\(context): \(m)") }
        guard case .object(let entries) = json else { throw bad("not a JSON object") }
        func path(_ s: String) -> String { s.hasPrefix("/") ? s : FileSystem.join(baseDirectory, s) }
        var c = TrainConfig()
        func int(_ v: JSONValue, _ k: String, min lo: Int = 0) throws -> Int {
            guard let i = v.intValue, i >= Int64(lo), i <= Int64(Int32.max) else { throw bad("\(k) must be an integer ≥ \(lo)") }
            return Int(i)
        }
        func num(_ v: JSONValue, _ k: String) throws -> Double {
            guard let d = v.doubleValue, d.isFinite, d >= 0 else { throw bad("\(k) must be a non-negative number") }
            return d
        }
        func bool(_ v: JSONValue, _ k: String) throws -> Bool {
            guard let b = v.boolValue else { throw bad("\(k) must be true or false") }
            return b
        }
        func str(_ v: JSONValue, _ k: String) throws -> String {
            guard let s = v.stringValue, !s.isEmpty else { throw bad("\(k) must be a non-empty string") }
            return s
        }
        for (k, v) in entries {
            switch k {
            case "model":
                guard case .object = v else { throw bad("model must be an HF config object") }
                c.model = v
            case "init_from": c.initFrom = path(try str(v, k))
            case "init_std": c.initStd = Float(try num(v, k))
            case "tokenizer": c.tokenizer = path(try str(v, k))
            case "data":
                guard let a = v.arrayValue else { throw bad("data must be a list of text files") }
                c.data = try a.map { path(try str($0, "data entry")) }
            case "holdout_fraction":
                c.holdoutFraction = try num(v, k)
                guard c.holdoutFraction < 1 else { throw bad("holdout_fraction must be below 1") }
            case "output": c.output = path(try str(v, k))
            case "seq_len": c.seqLen = try int(v, k, min: 2)
            case "batch_size": c.batchSize = try int(v, k, min: 1)
            case "grad_accum": c.gradAccum = try int(v, k, min: 1)
            case "steps": c.steps = try int(v, k, min: 0)
            case "learning_rate": c.optimizer.learningRate = try num(v, k)
            case "min_lr_ratio": c.optimizer.minLRRatio = try num(v, k)
            case "warmup_steps": c.optimizer.warmupSteps = try int(v, k)
            case "weight_decay": c.optimizer.weightDecay = try num(v, k)
            case "clip_norm": c.optimizer.clipNorm = try num(v, k)
            case "beta1": c.optimizer.beta1 = try num(v, k)
            case "beta2": c.optimizer.beta2 = try num(v, k)
            case "adam_eps": c.optimizer.epsilon = try num(v, k)
            case "expert_lr": c.optimizer.expertLearningRates = try bool(v, k)
            case "b_noise": c.optimizer.noiseScale = v == .null ? nil : try num(v, k)
            case "capacity_factor": c.moe.capacityFactor = try num(v, k)
            case "recycle_routing": c.moe.recycleRouting = try bool(v, k)
            case "aux_loss_coef": c.moe.auxLossCoefficient = try num(v, k)
            case "eval_every": c.evalEvery = try int(v, k)
            case "eval_windows": c.evalWindows = try int(v, k, min: 1)
            case "checkpoint_every": c.checkpointEvery = try int(v, k)
            case "save_dtype":
                switch try str(v, k) {
                case "f32", "float32": c.saveDType = .f32
                case "bf16", "bfloat16": c.saveDType = .bf16
                default: throw bad("save_dtype must be \"f32\" or \"bf16\"")
                }
            case "seed":
                guard let i = v.intValue, i >= 0 else { throw bad("seed must be a non-negative integer") }
                c.seed = UInt64(i)
            case "threads": c.threads = try int(v, k)
            case "resume": c.resume = try bool(v, k)
            case "time_budget_seconds": c.timeBudgetSeconds = try num(v, k)
            case "lora":
                guard case .object(let lo) = v else { throw bad("lora must be an object {rank, alpha, targets}") }
                var o = LoRAOptions()
                for (lk, lv) in lo {
                    switch lk {
                    case "rank": o.rank = try int(lv, "lora.rank", min: 1)
                    case "alpha": o.alpha = try num(lv, "lora.alpha")
                    case "targets":
                        guard let t = lv.arrayValue?.compactMap(\.stringValue), !t.isEmpty,
                              t.allSatisfy({ $0 == "attention" || $0 == "experts" }) else {
                            throw bad("lora.targets must list \"attention\" and/or \"experts\"")
                        }
                        o.attention = t.contains("attention"); o.experts = t.contains("experts")
                    default: throw bad("unknown key lora.\(lk)")
                    }
                }
                c.lora = o
            default:
                if !k.hasPrefix("_") && k != "comment" { throw bad("unknown key \"\(k)\"") }
            }
        }
        guard c.model != nil || c.initFrom != nil else { throw bad("needs \"model\" (an HF config) or \"init_from\" (a checkpoint)") }
        c.optimizer.totalSteps = max(1, c.steps)
        return c
    }

    /// Reads and decodes a config file.
    public static func load(path: String) throws -> TrainConfig {
        let base: String
        if let slash = path.lastIndex(of: "/") { base = String(path[..<slash]).isEmpty ? "/" : String(path[..<slash]) } else { base = "." }
        return try decode(try JSONValue.parse(contentsOf: path), context: path, baseDirectory: base)
    }
}

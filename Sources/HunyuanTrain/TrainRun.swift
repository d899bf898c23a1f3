import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a run, reported after every optimizer step.
public struct TrainProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var metrics: StepMetrics
    /// Tokens per second over the steps of this process.
    public var tokensPerSecond: Double
    public var elapsed: Double
    public var eta: Double
    /// Latest held-out losses (name, loss), when evaluated.
    public var validation: [(String, Double)]
}

/// A whole run from a `TrainConfig`: data (tokenized, last `holdout_fraction` of each file held out),
/// model (from `init_from` or initialized from `model`), resume from `output/state.safetensors`, the
/// loop with evaluation and checkpoints, and the final HF checkpoint + metrics in `output`:
///   output/state.safetensors   trainer state (exact resume)
///   output/model/              HF checkpoint (config.json, generation_config.json, model.safetensors, hy.tiktoken)
///   output/metrics.json        the final metrics (also returned)
///   output/loss.tsv            step, loss, lr, grad norm, balance, dropped, recycled per step
///   output/experts.tsv         per step and layer: capacity, dropped, recycled, tokens and choices per expert
public enum TrainRun {
    /// Loads data and model and builds the trainer (resuming when a state exists and `resume`).
    public static func prepare(_ c: TrainConfig, log: (String) -> Void = { _ in }) throws -> Trainer {
        var modelJSON: JSONValue
        let model: TrainerModel
        if let from = c.initFrom {
            modelJSON = try JSONValue.parse(contentsOf: FileSystem.join(from, "config.json"))
            model = try TrainerModel(checkpoint: from, threads: c.threads)
            log("fine-tuning from \(from)")
        } else if let json = c.model {
            modelJSON = json
            model = try TrainerModel(config: try HunyuanConfig.decode(json, context: "train config: model"), threads: c.threads)
            model.params.initializeRandom(std: c.initStd, seed: c.seed)
        } else {
            throw HYError.invalidArgument("train config needs \"model\" or \"init_from\"")
        }
        if let lora = c.lora {
            try model.enableLoRA(lora, seed: c.seed)
            log("LoRA rank \(lora.rank) on \(lora.attention ? "attention " : "")\(lora.experts ? "experts" : ""): \(model.trainableNames.count) adapter tensors")
        }
        guard let tokPath = c.tokenizer else { throw HYError.invalidArgument("train config needs \"tokenizer\" to read the data") }
        let enc = try BPEEncoder(path: tokPath)
        guard enc.count <= model.config.vocabSize else {
            throw HYError.invalidArgument("tokenizer has \(enc.count) ranks but the model's vocab_size is \(model.config.vocabSize)")
        }
        guard !c.data.isEmpty else { throw HYError.invalidArgument("train config has no \"data\" files") }
        var corpora: [TrainCorpus] = []
        for path in c.data {
            let bytes = try FileSystem.readAll(path)
            // Held-out tail: the last fraction of the bytes, starting at a line boundary.
            var cut = Int(Double(bytes.count) * (1 - c.holdoutFraction))
            while cut < bytes.count && cut > 0 && bytes[cut - 1] != 0x0A { cut += 1 }
            let train = try enc.encode(Array(bytes[..<cut]))
            let held = try enc.encode(Array(bytes[cut...]))
            let name = String(path.split(separator: "/").last ?? Substring(path))
            log("\(name): \(train.count) training tokens, \(held.count) held out")
            corpora.append(TrainCorpus(name: name, train: train, heldOut: held))
        }
        let trainer = try Trainer(config: c, model: model, modelJSON: modelJSON, corpora: corpora)
        let state = FileSystem.join(c.output, "state.safetensors")
        if c.resume && FileSystem.exists(state) {
            try trainer.loadState(from: state)
            log("resumed from \(state) at step \(trainer.step)")
        }
        return trainer
    }

    /// Runs the remaining steps; `progress` returning false stops early (state is saved). Returns the
    /// final metrics (also written to output/metrics.json).
    public static func run(_ trainer: Trainer, progress: (TrainProgress) -> Bool = { _ in true }) throws -> JSONValue {
        let c = trainer.config
        try makeDirectory(c.output)
        let statePath = FileSystem.join(c.output, "state.safetensors")
        let tsvPath = FileSystem.join(c.output, "loss.tsv")
        var tsv = FileSystem.exists(tsvPath) && trainer.step > 0 ? (try FileSystem.readAll(tsvPath)) : Array("step\tloss\tlr\tgrad_norm\timbalance\tdropped\trecycled\trouter_imbalance\n".utf8)
        // Per-layer expert load of every step: tokens per expert (after capacity/recycling), the router's
        // own choices, dropped and recycled slots.
        let expertsPath = FileSystem.join(c.output, "experts.tsv")
        var experts = FileSystem.exists(expertsPath) && trainer.step > 0 ? (try FileSystem.readAll(expertsPath))
            : Array("step\tlayer\tcapacity\tdropped\trecycled\ttokens_per_expert\tchosen_per_expert\n".utf8)
        let start = Clock.seconds()
        var tokens = 0
        var validation: [(String, Double)] = []
        var stopped = false
        let first = trainer.step
        while trainer.step < c.steps {
            let m = try trainer.trainStep()
            tokens += m.tokens
            tsv.append(contentsOf: "\(m.step)\t\(m.loss)\t\(m.learningRate)\t\(m.gradNorm)\t\(m.imbalance)\t\(m.dropped)\t\(m.recycled)\t\(m.routerImbalance)\n".utf8)
            for (l, st) in m.stats.enumerated() {
                let cap = st.capacity == Int.max ? -1 : st.capacity
                experts.append(contentsOf: ("\(m.step)\t\(l)\t\(cap)\t\(st.dropped)\t\(st.recycled)\t"
                    + st.tokensPerExpert.map(String.init).joined(separator: ",") + "\t"
                    + st.chosenPerExpert.map(String.init).joined(separator: ",") + "\n").utf8)
            }
            if c.evalEvery > 0 && (m.step % c.evalEvery == 0 || m.step == c.steps) {
                validation = try trainer.evaluate().map { ($0.0, $0.1) }
                tsv.append(contentsOf: "# eval \(m.step) \(validation.map { "\($0.0)=\($0.1)" }.joined(separator: " "))\n".utf8)
            }
            let elapsed = Clock.seconds() - start
            let done = m.step - first
            let tps = Double(tokens) / max(elapsed, 1e-9)
            let eta = done > 0 ? elapsed / Double(done) * Double(c.steps - m.step) : 0
            let budgetHit = c.timeBudgetSeconds > 0 && elapsed >= c.timeBudgetSeconds
            if c.checkpointEvery > 0 && m.step % c.checkpointEvery == 0 {
                try trainer.saveState(to: statePath)
                try writeBytes(tsv, to: tsvPath)
                try writeBytes(experts, to: expertsPath)
            }
            if !progress(TrainProgress(step: m.step, totalSteps: c.steps, metrics: m, tokensPerSecond: tps, elapsed: elapsed,
                                       eta: eta, validation: validation)) || budgetHit {
                stopped = true
                break
            }
        }
        try trainer.saveState(to: statePath)
        try writeBytes(tsv, to: tsvPath)
        try writeBytes(experts, to: expertsPath)
        let modelDir = FileSystem.join(c.output, "model")
        try trainer.saveCheckpoint(to: modelDir)
        if let tok = c.tokenizer {
            let src = FileSystem.isDirectory(tok) ? FileSystem.join(tok, "hy.tiktoken") : tok
            let ranks = try FileSystem.readAll(src)
            try writeBytes(ranks, to: FileSystem.join(modelDir, "hy.tiktoken"))
            try TokenizerTrainer.writeConfig(rankCount: ranks.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }, folder: modelDir)
        }
        let val = try trainer.evaluate()
        let elapsed = Clock.seconds() - start
        let recent = trainer.history.suffix(20)
        let last = trainer.history.last
        var obj: [(String, JSONValue)] = [
            ("steps", .int(Int64(trainer.step))), ("stopped_early", .bool(stopped)),
            ("parameters", .int(Int64(trainer.model.parameterCount))),
            ("tokens_trained", .int(Int64(tokens))), ("seconds", .double(elapsed)),
            ("tokens_per_second", .double(Double(tokens) / max(elapsed, 1e-9))),
            ("train_loss", .double(recent.isEmpty ? 0 : recent.reduce(0) { $0 + $1.loss } / Double(recent.count))),
            ("validation", .object(val.map { ($0.0, .object([("loss", .double($0.1)), ("perplexity", .double(exp($0.1))),
                                                             ("tokens", .int(Int64($0.2)))])) })),
        ]
        if let last {
            obj.append(("expert_balance", .array(last.stats.map { .double($0.imbalance) })))
            obj.append(("router_balance", .array(last.stats.map { .double($0.routerImbalance) })))
            obj.append(("expert_load_last_step", .array(last.stats.map { st in
                .object([("tokens_per_expert", .array(st.tokensPerExpert.map { .int(Int64($0)) })),
                         ("chosen_per_expert", .array(st.chosenPerExpert.map { .int(Int64($0)) })),
                         ("dropped", .int(Int64(st.dropped))), ("recycled", .int(Int64(st.recycled)))])
            })))
            obj.append(("dropped_last_step", .int(Int64(last.dropped))))
            obj.append(("recycled_last_step", .int(Int64(last.recycled))))
        }
        obj.append(("checkpoint", .string(modelDir)))
        let metrics = JSONValue.object(obj)
        try writeBytes(Array((metrics.serialized() + "\n").utf8), to: FileSystem.join(c.output, "metrics.json"))
        return metrics
    }

    static func makeDirectory(_ path: String) throws {
        if FileSystem.isDirectory(path) { return }
        guard mkdir(path, 0o755) == 0 else { throw HYError.io("\(path): cannot create folder") }
    }

    static func writeBytes(_ b: [UInt8], to path: String) throws {
        try FileSystem.writeAtomically(path, overwrite: true) { w in try b.withUnsafeBytes { try w($0) } }
    }
}

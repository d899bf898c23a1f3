import ArgumentParser
import HunyuanCore
import HunyuanLM
import HunyuanTrain
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

// Training commands: train (the MoE trainer), train-tokenizer (a small BPE in hy.tiktoken format),
// perplexity (strided windows, llama.cpp style).

func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "--:--" }
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(String(format2(t % 3600 / 60)))m" : "\(t / 60)m\(format2(t % 60))s"
}

func format2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

func fixed(_ v: Double, _ digits: Int) -> String {
    guard v.isFinite else { return "\(v)" }
    var p: Double = 1
    for _ in 0..<digits { p *= 10 }
    let r = (v * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    }
    return s
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train or fine-tune a Hunyuan MoE model from a JSON run config (see TrainConfig).",
        discussion: "Progress (step, loss, tokens/s, ETA, expert balance) goes to stderr; the final metrics JSON to stdout. Re-running with the same output folder resumes exactly.")
    @Argument(help: "Run config JSON.") var config: String
    @Option(help: "Override the number of steps.") var steps: Int?
    @Option(help: "Override the output folder.") var output: String?
    @Flag(help: "Start from scratch even when the output folder holds a state.") var noResume = false

    func run() throws {
        try runReporting {
            var c = try TrainConfig.load(path: config)
            if let steps { c.steps = steps; c.optimizer.totalSteps = max(1, steps) }
            if let output { c.output = output }
            if noResume { c.resume = false }
            let trainer = try TrainRun.prepare(c, log: { writeStderr("train: \($0)\n") })
            writeStderr("train: \(trainer.model.parameterCount) parameters, \(c.batchTokens) tokens per step, steps \(trainer.step)..<\(c.steps)\n")
            var lastDraw = 0.0
            let metrics = try TrainRun.run(trainer) { p in
                let m = p.metrics
                let now = p.elapsed
                if now - lastDraw >= 0.5 || p.step == p.totalSteps || !p.validation.isEmpty && p.step % max(1, c.evalEvery) == 0 {
                    lastDraw = now
                    let width = 24
                    let filled = p.totalSteps > 0 ? min(width, width * p.step / p.totalSteps) : width
                    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                    var line = "\r[\(bar)] step \(p.step)/\(p.totalSteps) loss \(fixed(m.loss, 4)) lr \(String(describing: Float(m.learningRate))) "
                        + "\(Int(p.tokensPerSecond)) tok/s ETA \(formatDuration(p.eta)) balance \(fixed(m.imbalance, 2)) (router \(fixed(m.routerImbalance, 2)))"
                    if m.dropped > 0 || m.recycled > 0 { line += " dropped \(m.dropped) recycled \(m.recycled)" }
                    if !p.validation.isEmpty { line += " val " + p.validation.map { "\($0.0)=\(fixed($0.1, 3))" }.joined(separator: " ") }
                    writeStderr(line + "\u{1B}[K")
                }
                return true
            }
            writeStderr("\n")
            printOut(metrics.serialized() + "\n")
        }
    }
}

struct TrainTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-tokenizer",
        abstract: "Train a byte-level BPE (Hunyuan's NFC + pre-tokenizer) and write it as hy.tiktoken.")
    @Argument(help: "Text files (UTF-8).") var files: [String]
    @Option(name: .customLong("vocab-size"), help: "Number of ranks (≥ 256).") var vocabSize = 4096
    @Option(name: .shortAndLong, help: "Output hy.tiktoken path (or a folder to write hy.tiktoken into).") var output: String
    @Option(name: .customLong("holdout-fraction"), help: "Leave out the last fraction of each file (as the trainer does).") var holdout = 0.0

    func run() throws {
        try runReporting {
            guard !files.isEmpty else { throw HYError.invalidArgument("no input files") }
            guard holdout >= 0 && holdout < 1 else { throw HYError.invalidArgument("--holdout-fraction must be in [0, 1)") }
            var texts: [[UInt8]] = []
            for f in files {
                let b = try FileSystem.readAll(f)
                var cut = Int(Double(b.count) * (1 - holdout))
                while cut < b.count && cut > 0 && b[cut - 1] != 0x0A { cut += 1 }
                texts.append(Array(b[..<cut]))
            }
            let start = Clock.seconds()
            let ranks = try TokenizerTrainer.train(texts: texts, vocabSize: vocabSize) { merges in
                writeStderr("\rmerges \(merges)/\(vocabSize - 256)")
            }
            writeStderr("\n")
            let path = FileSystem.isDirectory(output) ? FileSystem.join(output, "hy.tiktoken") : output
            try TokenizerTrainer.write(ranks: ranks, to: path)
            if FileSystem.isDirectory(output) { try TokenizerTrainer.writeConfig(rankCount: ranks.count, folder: output) }
            writeStderr("wrote \(ranks.count) ranks to \(path) in \(fixed(Clock.seconds() - start, 1)) s\n")
            printOut("{\"ranks\":\(ranks.count),\"path\":\"\(path)\"}\n")
        }
    }
}

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a model on a text file over strided windows (like llama.cpp's tool); the last line is the estimate.",
        discussion: "Each window of --ctx tokens advances by --stride; only tokens not scored by an earlier window are scored, each with at least ctx − stride tokens of context (except in the first window).")
    @Argument(help: "Model folder.") var model: String
    @Argument(help: "UTF-8 text file.") var file: String
    @Option(help: "Tokenizer (hy.tiktoken or its folder; default: the model folder).") var tokenizer: String?
    @Option(name: .customLong("ctx"), help: "Window length in tokens.") var ctx = 256
    @Option(help: "Window stride (default ctx / 2).") var stride: Int?
    @Option(name: .customLong("max-tokens"), help: "Score at most this many tokens of the file (0 = all).") var maxTokens = 0
    @Option(name: .shortAndLong, help: "Threads (0 = all processors).") var threads = 0
    @Option(name: .customLong("kv-type"), help: "KV cache storage: auto (f32 up to 8,192 positions, q8_0 above), f32, f16 or q8_0.") var kvType = KVChoice.auto
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try runReporting {
            guard ctx >= 2 else { throw HYError.invalidArgument("--ctx must be at least 2") }
            let st = stride ?? ctx / 2
            guard st >= 1 && st <= ctx else { throw HYError.invalidArgument("--stride must be in 1...ctx") }
            let enc = try BPEEncoder(path: tokenizer ?? model)
            var ids = try enc.encode(try FileSystem.readAll(file))
            if maxTokens > 0 && ids.count > maxTokens { ids = Array(ids[..<maxTokens]) }
            guard ids.count >= 2 else { throw HYError.invalidArgument("\(file): fewer than 2 tokens") }
            let m = try HunyuanModel(path: model)
            guard enc.count <= m.config.vocabSize else {
                throw HYError.invalidArgument("tokenizer has \(enc.count) ranks, model vocab_size \(m.config.vocabSize)")
            }
            let s = try InferenceSession(model: m, contextLength: ctx, threads: threads, kvType: kvType.type)
            let v = m.config.vocabSize
            var nll: Double = 0, nll2: Double = 0, count = 0
            var scoredUpTo = 1            // next target index to score
            var begin = 0
            var out = StdoutWriter()
            var window = 0
            while scoredUpTo < ids.count {
                let end = min(begin + ctx, ids.count)
                s.reset()
                try s.eval(Array(ids[begin..<end]), allLogits: true)
                let logits = s.allLogits
                for target in max(scoredUpTo, begin + 1)..<end {
                    let row = (target - 1 - begin) * v
                    var mx = -Float.infinity
                    for j in 0..<v { mx = max(mx, logits[row + j]) }
                    var sum: Double = 0
                    for j in 0..<v { sum += Double(expf(logits[row + j] - mx)) }
                    let l = log(sum) + Double(mx) - Double(logits[row + Int(ids[target])])
                    nll += l; nll2 += l * l; count += 1
                }
                scoredUpTo = end
                window += 1
                if !json { out.write("[\(window)]\(fixed(exp(nll / Double(count)), 4)),"); out.flush() }
                if end == ids.count { break }
                begin += st
            }
            let mean = nll / Double(count)
            let ppl = exp(mean)
            let variance = max(0, nll2 / Double(count) - mean * mean)
            let err = ppl * (variance / Double(max(1, count - 1))).squareRoot()
            if json {
                out.write("{\"tokens\":\(count),\"windows\":\(window),\"ctx\":\(ctx),\"stride\":\(st),\"nll\":\(mean),\"perplexity\":\(ppl)}\n")
            } else {
                out.write("\nscored \(count) tokens in \(window) windows (ctx \(ctx), stride \(st))\n")
                out.write("Final estimate: PPL = \(fixed(ppl, 4)) +/- \(fixed(err, 4))\n")
            }
            out.flush()
        }
    }
}

struct BPEEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bpe-encode",
        abstract: "Encode a UTF-8 file with any hy.tiktoken-format vocabulary (e.g. one from train-tokenizer); ids on stdout, space-separated.")
    @Argument(help: "hy.tiktoken file or its folder.") var vocabulary: String
    @Argument(help: "UTF-8 text file.") var file: String

    func run() throws {
        try runReporting {
            let enc = try BPEEncoder(path: vocabulary)
            let ids = try enc.encode(try FileSystem.readAll(file))
            var out = StdoutWriter()
            for (i, id) in ids.enumerated() { out.write(i == 0 ? "\(id)" : " \(id)") }
            out.write("\n")
            out.flush()
        }
    }
}

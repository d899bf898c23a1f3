import ArgumentParser
import HunyuanCore
import HunyuanLM
import HunyuanTrain
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

// Language-model commands: logits (parity dumps), generate (token ids), random-model (checkpoints
// with random weights for any supported config), bench (prefill / decode speed).

func parseTokenList(_ s: String) throws -> [Int32] {
    var out: [Int32] = []
    for part in s.split(whereSeparator: { $0 == "," || $0 == " " }) {
        guard let v = Int32(part) else { throw HYError.invalidArgument("--tokens: \"\(part)\" is not an integer token id") }
        out.append(v)
    }
    return out
}


struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Write the float32 [T, V] logits of every position of a token sequence as .npy.")
    @Argument(help: "Model folder (config.json + safetensors).") var model: String
    @Option(help: "Comma-separated token ids.") var tokens: String
    @Option(name: .shortAndLong, help: "Output .npy path.") var output: String
    @Option(name: .shortAndLong, help: "Threads (0 = all processors).") var threads = 0
    @Option(name: .customLong("kv-type"), help: "KV cache storage: auto (f32 up to 8,192 positions, q8_0 above), f32, f16 or q8_0.") var kvType = KVChoice.auto
    @Option(help: "Write only the logits of the last N positions (0 = all): [N, V].") var last = 0
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            try checkOutput(output, overwrite: overwrite)
            let ids = try parseTokenList(tokens)
            guard last >= 0 else { throw HYError.invalidArgument("--last \(last) is negative") }
            let m = try HunyuanModel(path: model)
            let s = try InferenceSession(model: m, contextLength: max(ids.count, 1), threads: threads, kvType: kvType.type)
            let keep = last > 0 ? min(last, ids.count) : ids.count
            if keep < ids.count { try s.eval(Array(ids[..<(ids.count - keep)])) }
            try s.eval(Array(ids[(ids.count - keep)...]), allLogits: true)
            try NpyWriter.write(output, shape: [keep, m.config.vocabSize], data: s.allLogits, overwrite: overwrite)
        }
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate after a prompt: token ids in, new ids out (space-separated); or --prompt text in, text out.",
        discussion: "Sampling defaults come from the model's generation_config.json; flags override them.")
    @Argument(help: "Model folder.") var model: String
    @Option(help: "Comma-separated prompt token ids.") var tokens: String?
    @Option(help: "Text prompt (encoded with the tokenizer); the output is streamed UTF-8 text.") var prompt: String?
    @Option(help: "Tokenizer file or folder for --prompt (default: the model folder).") var tokenizer: String?
    @Option(name: .customLong("max-tokens"), help: "Maximum new tokens.") var maxTokens = 64
    @Flag(help: "Greedy decoding (argmax).") var greedy = false
    @Option(help: "Sampling temperature.") var temperature: Float?
    @Option(name: .customLong("top-k")) var topK: Int?
    @Option(name: .customLong("top-p")) var topP: Float?
    @Option(name: .customLong("min-p")) var minP: Float?
    @Option(name: .customLong("repeat-penalty"), help: "HF repetition penalty (1 = off).") var repeatPenalty: Float?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("ctx"), help: "Context length (0 = model default).") var contextLength = 0
    @Option(name: .shortAndLong, help: "Threads (0 = all processors).") var threads = 0
    @Option(name: .customLong("kv-type"), help: "KV cache storage: auto (f32 up to 8,192 positions, q8_0 above), f32, f16 or q8_0.") var kvType = KVChoice.auto
    @Option(name: .customLong("stop"), help: ArgumentHelp("With --prompt: stop when the text contains this string "
            + "(not printed). Repeatable.", valueName: "STR")) var stop: [String] = []

    func run() throws {
        try runReporting {
            guard (tokens == nil) != (prompt == nil) else { throw HYError.invalidArgument("give exactly one of --tokens and --prompt") }
            guard stop.isEmpty || prompt != nil else { throw HYError.invalidArgument("--stop needs --prompt") }
            var text: TextGenerator? = nil
            let ids: [Int32]
            if let prompt {
                let g = try TextGenerator(tokenizer: try Tokenizer.load(path: tokenizer ?? model), stopStrings: stop)
                ids = try g.encodePrompt(prompt)
                text = g
            } else {
                ids = try parseTokenList(tokens ?? "")
            }
            let m = try HunyuanModel(path: model)
            let ctx = contextLength > 0 ? contextLength : min(m.defaultContextLength, ids.count + maxTokens)
            let s = try InferenceSession(model: m, contextLength: max(ctx, 1), threads: threads, kvType: kvType.type)
            var o = GenerateOptions()
            o.maxTokens = maxTokens
            var p = SamplerParams(m.generation)
            let sampling = temperature != nil || topK != nil || topP != nil || minP != nil
            if greedy { p.greedy = true } else if sampling { p.greedy = false }
            if let temperature { p.temperature = temperature }
            if let topK { p.topK = topK }
            if let topP { p.topP = topP }
            if let minP { p.minP = minP }
            if let repeatPenalty { p.repetitionPenalty = repeatPenalty }
            p.seed = seed
            o.sampler = p
            var out = StdoutWriter()
            let started = Clock.seconds()
            let reason: StopReason, count: Int
            if let text {
                let r = try text.generate(session: s, prompt: ids, options: o, onText: { piece in
                    out.write(piece)
                    out.flush()
                    return true
                })
                reason = r.reason; count = r.tokens.count
            } else {
                var first = true
                let r = try Generator.generate(session: s, prompt: ids, options: o, onToken: { id in
                    out.write(first ? "\(id)" : " \(id)")
                    first = false
                    out.flush()
                    return true
                })
                reason = r.reason; count = r.tokens.count
            }
            out.write("\n")
            out.flush()
            let seconds = Clock.seconds() - started
            let rate = seconds > 0 ? Double(count) / seconds : 0
            writeStderr("stop: \(reason), \(count) tokens, prompt \(ids.count) tokens, "
                        + "\(Int(rate.rounded())) tokens/s overall\n")
        }
    }
}

struct RandomModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "random-model",
        abstract: "Write a checkpoint with random weights for a Hunyuan config (official tensor names).")
    @Argument(help: "A config.json of a supported architecture.") var config: String
    @Option(name: .shortAndLong, help: "Output folder (created).") var output: String
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Weight dtype: f32 or bf16.") var dtype = DType.f32

    func run() throws {
        try runReporting {
            guard dtype == .f32 || dtype == .bf16 else { throw HYError.invalidArgument("--dtype must be f32 or bf16") }
            let raw = try FileSystem.readAll(config)
            let json = try raw.withUnsafeBytes { try JSONValue.parse($0, context: config) }
            let c = try HunyuanConfig.decode(json, context: config)
            if !FileSystem.isDirectory(output) {
                guard mkdir(output, 0o755) == 0 else { throw HYError.io("\(output): cannot create folder") }
            }
            try RandomCheckpoint.write(config: c, configBytes: raw, to: output, seed: seed, dtype: dtype)
        }
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prefill and decode tokens/s of a model (random prompt, greedy decode), llama-bench style.",
        discussion: """
        One row per thread count: prefill (-p tokens in one eval) and decode (-n single-token steps after \
        the prompt) tokens/s as mean ± sd over --reps repetitions after one warm-up (--no-warmup skips \
        it), peak RSS of the process, stored model bytes, KV-cache bytes per token and the weight type. \
        -d DEPTH first fills the context with DEPTH tokens (untimed, every repetition), so both \
        measurements run at that depth, as llama-bench's -d. -p 0 or -n 0 skips that measurement (null \
        in JSON). --json prints exactly one JSON array, one object per row.
        """)
    @Argument(help: "Model folder.") var model: String
    @Option(name: .short, help: "Prompt tokens (0 = skip prefill).") var p = 128
    @Option(name: .short, help: "Decoded tokens (0 = skip decode).") var n = 64
    @Option(name: .short, help: "Context depth: tokens evaluated (untimed) before each measurement.") var d = 0
    @Option(name: .short, help: "Comma-separated thread counts.") var t = "1,2"
    @Option(help: "Repetitions per measurement.") var reps = 3
    @Option(name: .customLong("kv-type"), help: "KV cache storage: auto (f32 up to 8,192 positions, q8_0 above), f32, f16 or q8_0.") var kvType = KVChoice.auto
    @Flag(help: "Skip the warm-up repetition (long runs).") var noWarmup = false
    @Flag(help: "Print one JSON array on stdout.") var json = false

    func run() throws {
        try runReporting {
            guard p >= 0, n >= 0, p + n > 0 else { throw HYError.invalidArgument("-p and -n must be ≥ 0 and not both 0") }
            guard d >= 0 else { throw HYError.invalidArgument("-d must be ≥ 0") }
            guard reps >= 1 else { throw HYError.invalidArgument("--reps must be ≥ 1") }
            let threadCounts = try t.split(separator: ",").map { s -> Int in
                guard let v = Int(s), v > 0 else { throw HYError.invalidArgument("-t: bad thread count \(s)") }
                return v
            }
            let m = try HunyuanModel(path: model)
            var rng = SplitMix64(seed: 1)
            let prompt = (0..<max(p, 1)).map { _ in Int32(rng.next() % UInt64(m.config.vocabSize)) }
            let depth = (0..<d).map { _ in Int32(rng.next() % UInt64(m.config.vocabSize)) }
            var rows: [JSONValue] = []
            var out = StdoutWriter()
            if !json {
                out.write("type\tthreads\tparams\tmodel_bytes\tkv_bytes_per_token\tprefill_tok_s (p\(p) d\(d))\tdecode_tok_s (n\(n) d\(d))\tpeak_rss\n")
            }
            for threads in threadCounts {
                let s = try InferenceSession(model: m, contextLength: d + prompt.count + n + 1, threads: threads,
                                             kvType: kvType.type)
                var pre: [Double] = [], dec: [Double] = []
                for rep in (noWarmup ? 1 : 0)...reps {  // rep 0 is the warm-up (pages in the weights)
                    s.reset()
                    if d > 0 { try s.eval(depth) }
                    let t0 = Clock.seconds()
                    try s.eval(p > 0 ? prompt : [prompt[0]])
                    let t1 = Clock.seconds()
                    for _ in 0..<n {
                        let l = s.lastLogits
                        var best = 0
                        for i in 1..<l.count where l[i] > l[best] { best = i }
                        try s.eval(token: Int32(best))
                    }
                    let t2 = Clock.seconds()
                    if rep == 0 { continue }
                    if p > 0 { pre.append(Double(p) / (t1 - t0)) }
                    if n > 0 { dec.append(Double(n) / (t2 - t1)) }
                }
                let (pm, ps) = meanSD(pre), (dm, ds) = meanSD(dec)
                let rss = peakRSSBytes()
                let kv = s.cache.bytesPerToken
                writeStderr("threads \(threads): prefill \(p) tokens, decode \(n) tokens at depth \(d), \(reps) reps\n")
                if json {
                    func num(_ v: Double?) -> JSONValue { v.map { .double(($0 * 100).rounded() / 100) } ?? .null }
                    rows.append(.object([
                        ("model", .string(model)), ("architecture", .string(m.config.architecture.rawValue)),
                        ("type", .string(m.weightType)), ("threads", .int(Int64(threads))),
                        ("n_prompt", .int(Int64(p))), ("n_gen", .int(Int64(n))), ("n_depth", .int(Int64(d))),
                        ("reps", .int(Int64(reps))),
                        ("prefill_tps", num(pm)), ("prefill_tps_sd", num(ps)),
                        ("decode_tps", num(dm)), ("decode_tps_sd", num(ds)),
                        ("peak_rss", .int(Int64(rss))), ("model_bytes", .int(Int64(m.weightBytes))),
                        ("params", .int(Int64(m.parameterCount))), ("kv_bytes_per_token", .int(Int64(kv))),
                        ("kv_bytes", .int(Int64(kv * s.contextLength))),
                        ("kv_type", .string(s.cache.type.rawValue)),
                        ("cpu", .string(CPUFeatures.summary))]))
                } else {
                    func f(_ m: Double?, _ sd: Double?) -> String {
                        guard let m, let sd else { return "-" }
                        return "\(fmt(m)) ± \(fmt(sd))"
                    }
                    out.write("\(m.weightType)\t\(threads)\t\(m.parameterCount)\t\(m.weightBytes)\t\(kv)\t\(f(pm, ps))\t\(f(dm, ds))\t\(rss)\n")
                }
            }
            if json { out.write(JSONValue.array(rows).serialized() + "\n") }
            out.flush()
        }
    }

    /// Mean and sample standard deviation; nil for no samples (sd 0 for one).
    func meanSD(_ v: [Double]) -> (Double?, Double?) {
        if v.isEmpty { return (nil, nil) }
        let mean = v.reduce(0, +) / Double(v.count)
        if v.count == 1 { return (mean, 0) }
        let varc = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)
        return (mean, varc.squareRoot())
    }

    /// Peak resident set size of this process so far, in bytes.
    func peakRSSBytes() -> Int {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Int(u.ru_maxrss) * 1024
    }

    func fmt(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return "\(r)"
    }
}

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Convert a checkpoint folder's matrices to q8_0, q4_0, q4_k, fp8 (or f16/bf16/f32).",
        discussion: "The layout is documented on WeightFormat (HunyuanCore/Quantization.swift) and in BENCHMARKS.md. The MoE router and norms stay f32; the tied embedding/output matrix gets --type unless --output-type is given.")
    @Argument(help: "Input model folder.") var input: String
    @Argument(help: "Output folder (created).") var output: String
    @Option(name: .customLong("type"), help: "q8_0, q4_0, q4_k, fp8, f16, bf16 or f32.") var type: WeightFormat
    @Option(name: .customLong("output-type"), help: "Format of the embedding/output matrix (default: --type).") var outputType: WeightFormat?
    @Option(name: .shortAndLong, help: "Threads (0 = all processors).") var threads = 0

    func run() throws {
        try runReporting {
            try QuantizeCheckpoint.run(input: input, output: output, type: type, outputType: outputType, threads: threads)
        }
    }
}

struct ExportGGUFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-gguf",
        abstract: "Write a HunYuanMoEV1 checkpoint as llama.cpp's hunyuan-moe GGUF (f16, q8_0 or q4_0 matrices).",
        discussion: "The tokenizer (the model folder's hy.tiktoken, or --tokenizer) is written as llama.cpp's converter writes Hunyuan's (gpt2 BPE, pre-tokenizer hunyuan, merges); without one, as no_vocab (see GGUFExport).")
    @Argument(help: "Model folder.") var model: String
    @Argument(help: "Output .gguf path.") var output: String
    @Option(name: .customLong("type"), help: "f16, q8_0, q4_0 (or f32).") var type = GGUFExport.TensorType.f16
    @Option(help: "hy.tiktoken or its folder (default: the model folder's, if any).") var tokenizer: String?
    @Option(name: .shortAndLong, help: "Threads (0 = all processors).") var threads = 0

    func run() throws {
        try runReporting {
            let t = type
            try GGUFExport.run(model: model, output: output, type: t, threads: threads, tokenizer: tokenizer)
        }
    }
}

import ArgumentParser
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanDiffusion
import HunyuanNN

// `t2i-random` (a random-weight HunyuanDiT v1.1 `hunyuanDiT/` folder, laid out and named as diffusers /
// transformers save it) and `t2i-bench` (per-component timings of the text-to-image stage with a
// GEMM-bound estimate). Benchmarks and memory checks only: the weights are noise.

// MARK: - Shapes

/// The networks of a `hunyuanDiT/` folder: `full` is the release's (HunyuanDiT v1.1, chinese-roberta
/// BERT-large, the mT5-XL encoder, the SDXL fp16-fix VAE), `tiny` the shapes of `fixtures/t2i/hunyuandit-tiny`.
struct T2IShapes: Equatable {
    var dit: HunyuanDiTConfig
    var bert: BertConfig
    var t5: T5Config
    var vae: AutoencoderKLConfig

    static var full: T2IShapes {
        var vae = AutoencoderKLConfig.stableDiffusion2   // the same network; SDXL fp16-fix's config values
        vae.sampleSize = 512; vae.scalingFactor = 0.13025; vae.forceUpcast = false
        return T2IShapes(dit: .v1_1, bert: .hunyuanDiT, t5: .mT5XL, vae: vae)
    }

    /// The tiny fixture's configs as our decoders read them.
    static func tiny(fixture: String) throws -> T2IShapes {
        func dir(_ c: String) -> String { FileSystem.join(fixture, c) }
        return T2IShapes(dit: try Component.config(HunyuanDiTConfig.self, dir("transformer")),
                         bert: try Component.config(BertConfig.self, dir("text_encoder")),
                         t5: try Component.config(T5Config.self, dir("text_encoder_2")),
                         vae: try Component.config(AutoencoderKLConfig.self, dir("vae")))
    }

    /// BertModel as transformers saves it: the declared tensors and the pooler (which we do not run).
    static func bertTable(_ c: BertConfig) throws -> WeightTable {
        try WeightTable { t in
            _ = try BertTensors.model(c, t)
            _ = try t.linear("pooler.dense", in: c.hiddenSize, out: c.hiddenSize)
        }
    }
    func ditTable() throws -> WeightTable { try WeightTable { _ = try HunyuanDiTTensors.declare(dit, $0) } }
}

/// `$HUNYUAN_SHARED/fixtures/t2i/hunyuandit-tiny` (default `../shared`, from the current folder).
func t2iTinyFixture() -> String {
    let shared = getenv("HUNYUAN_SHARED").map { String(cString: $0) } ?? "../shared"
    return FileSystem.join(shared, "fixtures/t2i/hunyuandit-tiny")
}

// MARK: - Config files

/// The component configs with the keys the release's files (and the tiny fixture's, saved by
/// diffusers 0.31 / transformers 4.46) carry, so both libraries and our decoders read them alike.
enum T2IConfigFiles {
    typealias F = MVDConfigFiles
    static func int(_ v: Int) -> JSONValue { .int(Int64(v)) }

    static func transformer(_ c: HunyuanDiTConfig) -> JSONValue {
        .object([
            ("_class_name", .string("HunyuanDiT2DModel")), ("_diffusers_version", .string("0.31.0")),
            ("activation_fn", .string(c.activationFn)), ("attention_head_dim", int(c.attentionHeadDim)),
            ("cross_attention_dim", int(c.crossAttentionDim)), ("cross_attention_dim_t5", int(c.crossAttentionDimT5)),
            ("hidden_size", int(c.hiddenSize)), ("in_channels", int(c.inChannels)), ("learn_sigma", .bool(c.learnSigma)),
            ("mlp_ratio", .double(c.mlpRatio)), ("norm_type", .string(c.normType)),
            ("num_attention_heads", int(c.numAttentionHeads)), ("num_layers", int(c.numLayers)),
            ("patch_size", int(c.patchSize)), ("pooled_projection_dim", int(c.pooledProjectionDim)),
            ("sample_size", int(c.sampleSize)), ("text_len", int(c.textLen)), ("text_len_t5", int(c.textLenT5)),
        ])
    }

    static func bert(_ c: BertConfig, dtype: DType) -> JSONValue {
        .object([
            ("architectures", F.strings(["BertModel"])), ("attention_probs_dropout_prob", .double(0.1)),
            ("bos_token_id", .int(0)), ("classifier_dropout", .null), ("directionality", .string("bidi")),
            ("eos_token_id", .int(2)), ("hidden_act", .string(c.hiddenAct)), ("hidden_dropout_prob", .double(0.1)),
            ("hidden_size", int(c.hiddenSize)), ("initializer_range", .double(0.02)),
            ("intermediate_size", int(c.intermediateSize)), ("layer_norm_eps", F.num(c.layerNormEps)),
            ("max_position_embeddings", int(c.maxPositionEmbeddings)), ("model_type", .string("bert")),
            ("num_attention_heads", int(c.numAttentionHeads)), ("num_hidden_layers", int(c.numHiddenLayers)),
            ("output_past", .bool(true)), ("pad_token_id", .int(0)), ("pooler_fc_size", .int(768)),
            ("pooler_num_attention_heads", .int(12)), ("pooler_num_fc_layers", .int(3)), ("pooler_size_per_head", .int(128)),
            ("pooler_type", .string("first_token_transform")), ("position_embedding_type", .string(c.positionEmbeddingType)),
            ("torch_dtype", .string(F.torchDType(dtype))), ("transformers_version", .string("4.46.3")),
            ("type_vocab_size", int(c.typeVocabSize)), ("use_cache", .bool(true)), ("vocab_size", int(c.vocabSize)),
        ])
    }

    static func t5(_ c: T5Config, dtype: DType) -> JSONValue {
        let gated = c.feedForwardProj.hasPrefix("gated-")
        let act = c.feedForwardProj == "gated-gelu" ? "gelu_new" : String(c.feedForwardProj.split(separator: "-").last ?? "relu")
        return .object([
            ("architectures", F.strings(["T5EncoderModel"])), ("classifier_dropout", .double(0)),
            ("d_ff", int(c.dFf)), ("d_kv", int(c.dKv)), ("d_model", int(c.dModel)), ("decoder_start_token_id", .int(0)),
            ("dense_act_fn", .string(act)), ("dropout_rate", .double(0.1)), ("eos_token_id", .int(1)),
            ("feed_forward_proj", .string(c.feedForwardProj)), ("initializer_factor", .double(1)),
            ("is_encoder_decoder", .bool(true)), ("is_gated_act", .bool(gated)),
            ("layer_norm_epsilon", F.num(c.layerNormEpsilon)), ("model_type", .string("t5")),
            ("num_decoder_layers", int(c.numLayers)), ("num_heads", int(c.numHeads)), ("num_layers", int(c.numLayers)),
            ("output_past", .bool(true)), ("pad_token_id", .int(0)),
            ("relative_attention_max_distance", int(c.relativeAttentionMaxDistance)),
            ("relative_attention_num_buckets", int(c.relativeAttentionNumBuckets)), ("tie_word_embeddings", .bool(false)),
            ("tokenizer_class", .string("T5Tokenizer")), ("torch_dtype", .string(F.torchDType(dtype))),
            ("transformers_version", .string("4.46.3")), ("use_cache", .bool(true)), ("vocab_size", int(c.vocabSize)),
        ])
    }

    /// HunyuanDiT v1.1's DDPM scheduler (scaled-linear betas to 0.03, v-prediction, leading spacing).
    static let scheduler: JSONValue = .object([
        ("_class_name", .string("DDPMScheduler")), ("_diffusers_version", .string("0.31.0")),
        ("beta_end", .double(0.03)), ("beta_schedule", .string("scaled_linear")), ("beta_start", .double(0.00085)),
        ("clip_sample", .bool(false)), ("clip_sample_range", .double(1)), ("dynamic_thresholding_ratio", .double(0.995)),
        ("num_train_timesteps", .int(1000)), ("prediction_type", .string("v_prediction")),
        ("rescale_betas_zero_snr", .bool(false)), ("sample_max_value", .double(1)), ("set_alpha_to_one", .bool(false)),
        ("skip_prk_steps", .bool(true)), ("steps_offset", .int(1)), ("thresholding", .bool(false)),
        ("timestep_spacing", .string("leading")), ("trained_betas", .null), ("variance_type", .string("fixed_small")),
    ])

    static var modelIndex: JSONValue {
        func lib(_ l: String, _ c: String) -> JSONValue { F.strings([l, c]) }
        return .object([
            ("_class_name", .string("HunyuanDiTPipeline")), ("_diffusers_version", .string("0.31.0")),
            ("feature_extractor", .array([.null, .null])), ("requires_safety_checker", .bool(true)),
            ("safety_checker", .array([.null, .null])), ("scheduler", lib("diffusers", "DDPMScheduler")),
            ("text_encoder", lib("transformers", "BertModel")), ("text_encoder_2", lib("transformers", "T5EncoderModel")),
            ("tokenizer", lib("transformers", "BertTokenizer")), ("tokenizer_2", lib("transformers", "T5Tokenizer")),
            ("transformer", lib("diffusers", "HunyuanDiT2DModel")), ("vae", lib("diffusers", "AutoencoderKL")),
        ])
    }
}

// MARK: - FLOPs

extension FlopCount {
    /// Which part of a HunyuanDiT evaluation: the step-independent conditioning (`condition`: text
    /// embedder, attention pooler, extra embedder), the per-step `forward`, or both (diffusers' forward).
    enum DiTPart { case condition, forward, all }

    /// One HunyuanDiT evaluation of `batch` latents of h × w (counting as FlopCount.unet: 2·MACs per
    /// row of each linear / patch conv, QKᵀ + PV per attention). `identityRows` batch rows run PAG's
    /// identity self-attention (to_out(to_v(x)): no query, key or attention) in the `pagLayers` blocks.
    static func dit(_ c: HunyuanDiTConfig, _ t: WeightTable, batch: Int, height h: Int, width w: Int,
                    identityRows: Int = 0, pagLayers: Set<Int> = [], part: DiTPart = .all) -> FlopCount {
        let n = Double((h / c.patchSize) * (w / c.patchSize)), b = Double(batch), d = Double(c.innerDim)
        let texts = Double(c.textTokens), t5 = Double(c.textLenT5)
        var f = FlopCount()
        for e in t.entries where e.isMatrix {
            let name = e.name, size = Double(e.shape.reduce(1, *))
            let conditioning = name.hasPrefix("text_embedder.") || name.hasPrefix("time_extra_emb.pooler.")
                || name.hasPrefix("time_extra_emb.extra_embedder.")
            if (part == .condition && !conditioning) || (part == .forward && conditioning) { continue }
            var rows = n
            if name.hasPrefix("text_embedder.") { rows = t5 }
            else if name.hasPrefix("time_extra_emb.pooler.") { rows = name.contains(".k_proj.") || name.contains(".v_proj.") ? t5 + 1 : 1 }
            else if name.hasPrefix("time_extra_emb.") || name.hasSuffix(".norm1.linear.weight") || name.hasPrefix("norm_out.") { rows = 1 }
            else if name.contains(".attn2.to_k.") || name.contains(".attn2.to_v.") { rows = texts }
            var rowsTotal = rows * b
            let block = level(name, "blocks.")
            let identity = block.map { pagLayers.contains($0) } ?? false
            if identity && (name.contains(".attn1.to_q.") || name.contains(".attn1.to_k.")) { rowsTotal -= rows * Double(identityRows) }
            f.matrix += 2 * rowsTotal * size
            if name.hasSuffix(".attn1.to_q.weight") {
                f.attention += 2 * 2 * n * n * d * (b - (identity ? Double(identityRows) : 0))
            } else if name.hasSuffix(".attn2.to_q.weight") {
                f.attention += 2 * 2 * n * texts * d * b
            }
        }
        return f
    }

    /// BertModel over `tokens` tokens (the word embedding is a lookup; the pooler, 1 row, when declared).
    static func bert(_ c: BertConfig, _ t: WeightTable, tokens: Int) -> FlopCount {
        var f = FlopCount()
        let tk = Double(tokens)
        for e in t.entries where e.isMatrix && !e.name.contains("word_embeddings") {
            f.matrix += 2 * (e.name.hasPrefix("pooler.") ? 1 : tk) * Double(e.shape.reduce(1, *))
            if e.name.hasSuffix(".attention.self.query.weight") { f.attention += 2 * 2 * tk * tk * Double(e.shape[0]) }
        }
        return f
    }

    /// T5EncoderModel over `tokens` tokens (the shared embedding is a lookup).
    static func t5(_ c: T5Config, _ t: WeightTable, tokens: Int) -> FlopCount {
        var f = FlopCount()
        let tk = Double(tokens)
        for e in t.entries where e.isMatrix && e.name != "shared.weight" && e.name != "encoder.embed_tokens.weight" {
            f.matrix += 2 * tk * Double(e.shape.reduce(1, *))
            if e.name.hasSuffix(".SelfAttention.q.weight") { f.attention += 2 * 2 * tk * tk * Double(c.inner) }
        }
        return f
    }
}

// MARK: - t2i-random

/// `t2i-random`: a complete random-weight HunyuanDiT v1.1 pipeline folder.
struct T2IRandomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t2i-random",
        abstract: "Write a random-weight HunyuanDiT v1.1 text-to-image folder (hunyuanDiT/ layout) for benchmarks.",
        discussion: """
            Writes OUT_DIR as diffusers' HunyuanDiTPipeline.save_pretrained lays it out: model_index.json
            (HunyuanDiTPipeline and its component classes); transformer/ and vae/ (config.json +
            diffusion_pytorch_model.safetensors); text_encoder/ (BertModel, with its pooler) and text_encoder_2/
            (T5EncoderModel, the mT5-XL encoder) (config.json + model.safetensors, split into transformers' 5 GB
            shards with model.safetensors.index.json when larger, i.e. mT5 at f32); scheduler/ (DDPM,
            v-prediction); tokenizer/ and tokenizer_2/: copies of the tiny fixture's tokenizer files
            ($HUNYUAN_SHARED/fixtures/t2i/hunyuandit-tiny, default ../shared; --fixture). The ids they produce
            (below 397 for BERT, 1,012 for mT5) are valid rows of the full embeddings (47,020 and 250,112 rows).
            --size full: HunyuanDiT v1.1 (1,516.5 M parameters), BERT-large (352.0 M with the pooler), mT5-XL
            encoder (1,670.0 M), SDXL fp16-fix VAE (83.7 M), checked against fixtures/t2i/hunyuandit-full-config.json
            when present (configs and parameter counts; our FLOP counts shown beside its torch counts); --size
            tiny: the tiny fixture's shapes. Tensor names and shapes come from the library's own declarations.
            Weights are seeded noise at ~1/√fan_in, norms 1, biases 0 (not a trained model). Built as
            OUT_DIR.partial and renamed at the end; an existing OUT_DIR is replaced only with --overwrite.
            Memory stays at a few MB; disk: 6.8 GB at f16, 13.5 GB at f32.
            """)

    enum Size: String, ExpressibleByArgument, CaseIterable { case full, tiny }

    @Argument(help: "Output folder.") var output: String
    @Option(help: "Stored dtype of the weights: f16, bf16 or f32.") var dtype = DType.f16
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "full (the release's shapes) or tiny (the tiny fixture's).") var size = Size.full
    @Option(help: "The tiny fixture folder (tokenizers; tiny shapes). Default $HUNYUAN_SHARED/fixtures/t2i/hunyuandit-tiny.")
    var fixture: String?
    @Option(help: "Largest shard of the text encoders' model.safetensors, in bytes (transformers' default 5 GB; smaller to test sharded loading).")
    var shardBytes: Int = 5_000_000_000
    @Flag(help: "Replace an existing OUT_DIR.") var overwrite = false

    func run() throws {
        try runReporting {
            guard [.f32, .f16, .bf16].contains(dtype) else { throw HYError.invalidArgument("--dtype \(dtype.name): f16, bf16 or f32") }
            guard shardBytes > 0 else { throw HYError.invalidArgument("--shard-bytes must be > 0") }
            let fx = fixture ?? t2iTinyFixture()
            guard FileSystem.isDirectory(FileSystem.join(fx, "tokenizer")), FileSystem.isDirectory(FileSystem.join(fx, "tokenizer_2")) else {
                throw HYError.io("\(fx): no tokenizer/ and tokenizer_2/ (set HUNYUAN_SHARED or pass --fixture)")
            }
            let shapes = size == .full ? T2IShapes.full : try T2IShapes.tiny(fixture: fx)
            if size == .full { try Self.checkFull(shapes, fixture: fx) }
            try BenchSupport.publishFolder(output, overwrite: overwrite) { partial in
                try Self.write(shapes: shapes, dtype: dtype, seed: seed, tokenizers: fx, shardBytes: shardBytes, to: partial)
            }
        }
    }

    /// Compares the full shapes with `hunyuandit-full-config.json` (next to the tiny fixture): each
    /// component's config decoded by our decoders, its parameter count (BERT with the pooler), and
    /// shows our FLOP counts beside the file's (torch FlopCounterMode). Skipped when the file is absent.
    static func checkFull(_ s: T2IShapes, fixture: String) throws {
        let path = FileSystem.join(FileSystem.join(fixture, ".."), "hunyuandit-full-config.json")
        guard FileSystem.exists(path) else { writeStderr("(no \(path): full shapes not cross-checked)\n"); return }
        let j = try JSONValue.parse(contentsOf: path)
        func cfg<T: Decodable>(_ c: String, _ t: T.Type) throws -> T {
            guard let v = j[c]?["config"] else { throw HYError.format("\(path): no \(c).config") }
            return try v.decode(t, context: "\(path): \(c).config")
        }
        let vae = try cfg("vae", AutoencoderKLConfig.self)
        guard try cfg("transformer", HunyuanDiTConfig.self) == s.dit, try cfg("text_encoder", BertConfig.self) == s.bert,
              try cfg("text_encoder_2", T5Config.self) == s.t5, vae == s.vae else {
            throw HYError.internal("\(path): a component config differs from the built-in full shapes")
        }
        let counts: [(String, Int)] = [
            ("transformer", try s.ditTable().parameterCount), ("text_encoder", try T2IShapes.bertTable(s.bert).parameterCount),
            ("text_encoder_2", try T5Tensors.table(for: s.t5).parameterCount),
            ("vae", try AutoencoderKLTensors.table(for: s.vae).parameterCount),
        ]
        for (c, n) in counts {
            let want = Int(j[c]?["params"]?.intValue ?? -1)
            writeStderr("\(c): \(n) parameters, hunyuandit-full-config.json \(want) \(n == want ? "✓" : "✗")\n")
            guard n == want else { throw HYError.internal("\(c): \(n) declared parameters, \(want) in \(path)") }
        }
        let fl = j["flops_per_forward"]
        let dt = try s.ditTable()
        let ours: [(String, Double)] = [
            ("dit_1024px_batch1", FlopCount.dit(s.dit, dt, batch: 1, height: 128, width: 128).total),
            ("dit_512px_batch1", FlopCount.dit(s.dit, dt, batch: 1, height: 64, width: 64).total),
            ("mt5_xl_encoder_256tok", FlopCount.t5(s.t5, try T5Tensors.table(for: s.t5), tokens: 256).total),
            ("bert_77tok", FlopCount.bert(s.bert, try T2IShapes.bertTable(s.bert), tokens: 77).total),
            ("vae_decode_1024px", FlopCount.vae(s.vae, try AutoencoderKLTensors.table(for: s.vae), imageHeight: 1024,
                                                imageWidth: 1024, encoder: false).total),
        ]
        for (k, v) in ours {
            let ref = fl?[k]?.doubleValue ?? .nan
            writeStderr("FLOPs \(k): ours \(BenchSupport.fmt(v / 1e9)) GFLOP, torch \(BenchSupport.fmt(ref / 1e9)) GFLOP (\(BenchSupport.fmt(100 * v / ref))%)\n")
        }
    }

    /// Writes the whole folder into `dir` (created; must not exist). Each config is read back with the
    /// library's decoder and must equal the intended one; the folder must then open as a TextToImage.
    static func write(shapes s: T2IShapes, dtype: DType, seed: UInt64, tokenizers: String,
                      shardBytes: Int = 5_000_000_000, to dir: String) throws {
        try BenchSupport.makeFolder(dir)
        for c in TextToImage.components { try BenchSupport.makeFolder(FileSystem.join(dir, c)) }
        func path(_ c: String, _ f: String) -> String { FileSystem.join(FileSystem.join(dir, c), f) }

        try writeText(FileSystem.join(dir, "model_index.json"), T2IConfigFiles.modelIndex.serialized())
        try writeText(path("transformer", "config.json"), T2IConfigFiles.transformer(s.dit).serialized())
        try writeText(path("text_encoder", "config.json"), T2IConfigFiles.bert(s.bert, dtype: dtype).serialized())
        try writeText(path("text_encoder_2", "config.json"), T2IConfigFiles.t5(s.t5, dtype: dtype).serialized())
        try writeText(path("vae", "config.json"), MVDConfigFiles.vae(s.vae).serialized())
        try writeText(path("scheduler", "scheduler_config.json"), T2IConfigFiles.scheduler.serialized())
        for tok in ["tokenizer", "tokenizer_2"] {
            let src = FileSystem.join(tokenizers, tok)
            for name in try FileSystem.list(src) {
                try FileSystem.writeAtomically(path(tok, name), bytes: try FileSystem.readAll(FileSystem.join(src, name)), overwrite: false)
            }
        }

        // Read back: what we wrote is what we meant.
        let back = T2IShapes(dit: try Component.config(HunyuanDiTConfig.self, FileSystem.join(dir, "transformer")),
                             bert: try Component.config(BertConfig.self, FileSystem.join(dir, "text_encoder")),
                             t5: try Component.config(T5Config.self, FileSystem.join(dir, "text_encoder_2")),
                             vae: try Component.config(AutoencoderKLConfig.self, FileSystem.join(dir, "vae")))
        guard back == s else { throw HYError.internal("\(dir): a written config.json does not read back as the intended configuration") }

        // Weights, component by component (transformers' 5 GB shards for the encoders).
        var files: [(path: String, table: WeightTable)] = [(path("transformer", "diffusion_pytorch_model.safetensors"), try s.ditTable())]
        files += try RandomSafetensors.layout(try T2IShapes.bertTable(s.bert), base: "model.safetensors",
                                              in: FileSystem.join(dir, "text_encoder"), dtype: dtype, maxBytes: shardBytes)
        files += try RandomSafetensors.layout(try T5Tensors.table(for: s.t5), base: "model.safetensors",
                                              in: FileSystem.join(dir, "text_encoder_2"), dtype: dtype, maxBytes: shardBytes)
        files.append((path("vae", "diffusion_pytorch_model.safetensors"), try AutoencoderKLTensors.table(for: s.vae)))
        try RandomSafetensors.writeAll(files, dtype: dtype, seed: seed)
        _ = try TextToImage(folder: dir)   // model_index, tokenizers, scheduler, configs, weights' headers
    }
}

// MARK: - t2i-bench

/// `t2i-bench`: per-component timings of the text-to-image stage on a folder.
struct T2IBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t2i-bench",
        abstract: "Time the text-to-image stage component by component (encoders, one DiT step, VAE decode) with a GEMM-bound estimate.",
        discussion: """
            Each component is opened, run once and released (times include the first touch of its mapped weights;
            `load` is the opening): BERT on both prompts (the official prompt with its style suffix and the
            negative prompt, 77 tokens each; after one untimed warm-up run, it being cheap), the mT5 encoder on
            both (256 tokens each, no warm-up), the DiT conditioning of the CFG + PAG batch of 3 (once per run), one
            DiT step on that batch at --height × --width (PAG's identity self-attention for the third row in the
            default slot, the four blocks before the middle) at the first of 25 timesteps, and the VAE decode at
            that size. --skip-encoders feeds the DiT seeded random text states instead.
            Columns: seconds; GFLOP counted from the declared shapes (linears and convs 2·MACs, attention QKᵀ + PV);
            `bound s` = matrix GFLOP at the measured GEMM rate of the stored weight type (Linear.forward on 2048 ×
            1408 → 6144, a DiT feed-forward; bf16 products with --compute bf16 for the DiT and the VAE) + attention
            GFLOP at the fp32 rate (bf16 with --compute bf16); `% of bound` = bound / seconds; peak RSS of the
            process so far (ru_maxrss). A markdown table on stdout (or JSON with --json); progress on stderr.
            bench/t2i-bench.sh runs this beside bench/t2i-diffusers.py.
            """)

    @Argument(help: "The hunyuanDiT/ folder.") var model: String
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Option(help: "Image height (multiple of 16).") var height: Int = 1024
    @Option(help: "Image width (multiple of 16).") var width: Int = 1024
    @Option(help: "Products of the DiT and the VAE: fp32 or bf16 (AVX512_BF16).") var compute: String = "fp32"
    @Flag(help: "Skip BERT and mT5 (the DiT gets random text states).") var skipEncoders = false
    @Option(help: "Seed of the synthetic latents and states.") var seed: UInt64 = 0
    @Flag(help: "Print JSON instead of the markdown table.") var json = false

    func run() throws {
        try runReporting {
            guard threads >= 0 else { throw HYError.invalidArgument("--threads must be ≥ 0") }
            let precision = try parseCompute(compute)
            guard precision.isAvailable else { throw HYError.unsupported("--compute bf16 needs a CPU with AVX512_BF16") }
            let pool = ThreadPool(threads: threads)
            let t2i = try TextToImage(folder: model, compute: precision)
            let dc = t2i.ditConfig, vc = t2i.vaeConfig, f = vc.scaleFactor, ps = dc.patchSize
            guard height >= 16, width >= 16, height % (f * ps) == 0, width % (f * ps) == 0 else {
                throw HYError.invalidArgument("--height \(height) --width \(width): multiples of \(f * ps) (the VAE factor × the patch)")
            }
            func dir(_ c: String) -> String { FileSystem.join(model, c) }
            let lh = height / f, lw = width / f

            // A DiT feed-forward product (2048 of the 3 × 4096 rows at 1024², 1408 → 6144).
            let gemm = GEMMRates.measure(bf16: precision == .bf16, rows: 2048, inF: 1408, outF: 6144, pool: pool)
            let rate32 = gemm.f32, rate16 = gemm.f16, rateBF16 = gemm.bf16
            func rates(_ component: String) -> (matrix: Double, attention: Double) {
                if precision == .bf16 && (component == "transformer" || component == "vae") { return (rateBF16, rateBF16) }
                let dt = BenchSupport.storedType(dir(component))
                return (dt == .f16 || dt == .bf16 ? rate16 : rate32, rate32)
            }

            var rows: [BenchRow] = []
            func time<T>(_ body: () throws -> T) rethrows -> (T, Double) { try BenchSupport.timed(body) }
            func add(_ stage: String, _ component: String, load: Double?, _ s: Double, _ fl: FlopCount?) {
                let r = rates(component)
                rows.append(.logged(stage, load: load, seconds: s, flops: fl, matrixRate: r.matrix, attentionRate: r.attention))
            }
            let noise = SeededNoise(seed: seed)
            // The pipeline's prompts: [prompt + style suffix, negative].
            let tokens = [t2i.tokenize("a lovely rabbit eating carrots" + TextToImage.styleSuffix), t2i.tokenize(TextToImage.negativePrompt)]
            let l1 = dc.textLen, l2 = dc.textLenT5
            let bert: [[Float]], t5: [[Float]]
            if skipEncoders {
                bert = (0..<2).map { noise.draw("bert_\($0)", count: l1 * dc.crossAttentionDim) }
                t5 = (0..<2).map { noise.draw("t5_\($0)", count: l2 * dc.crossAttentionDimT5) }
            } else {
                writeStderr("BERT …\n")
                do {
                    let (m, tl) = try time { try BertModel(folder: dir("text_encoder")) }
                    _ = try m.forward(ids: tokens[0].bert.ids, mask: tokens[0].bert.mask, pool: pool)   // warm-up
                    let (out, ts) = try time { try tokens.map { try m.forward(ids: $0.bert.ids, mask: $0.bert.mask, pool: pool) } }
                    bert = out
                    add("BERT (2 × \(l1) tokens)", "text_encoder", load: tl, ts,
                        FlopCount.bert(m.config, try BertTensors.table(for: m.config), tokens: l1) * 2)
                }
                writeStderr("mT5 encoder …\n")
                do {
                    let (m, tl) = try time { try T5EncoderModel(folder: dir("text_encoder_2")) }
                    let (out, ts) = try time { try tokens.map { try m.forward(ids: $0.t5.ids, mask: $0.t5.mask, pool: pool) } }
                    t5 = out
                    add("mT5 encoder (2 × \(l2) tokens)", "text_encoder_2", load: tl, ts,
                        FlopCount.t5(m.config, try T5Tensors.table(for: m.config), tokens: l2) * 2)
                }
            }

            // The CFG + PAG batch: [negative, prompt, prompt perturbed], PAG in the official slot.
            let rowsText = [1, 0, 0], batch = 3, identity = [false, false, true]
            let pagLayers = Set(TextToImage.defaultPAGLayers(blocks: dc.numLayers))
            writeStderr("DiT …\n")
            do {
                let (dit, tl) = try time { try HunyuanDiT2DModel(folder: dir("transformer"), compute: precision) }
                let table = try WeightTable { _ = try HunyuanDiTTensors.declare(dc, $0) }
                let meta: [Float] = [1024, 1024, Float(height), Float(width), 0, 0]
                let (cond, tc) = try time {
                    try dit.condition(batch: batch, bert: rowsText.flatMap { bert[$0] }, bertMask: rowsText.flatMap { tokens[$0].bert.mask },
                                      t5: rowsText.flatMap { t5[$0] }, t5Mask: rowsText.flatMap { tokens[$0].t5.mask },
                                      imageMetaSize: Array((0..<batch).map { _ in meta }.joined()), pool: pool)
                }
                add("DiT conditioning (batch 3, once per run)", "transformer", load: tl, tc,
                    FlopCount.dit(dc, table, batch: batch, height: lh, width: lw, part: .condition))
                let rope = dit.rotaryTables(latentHeight: lh, latentWidth: lw)
                let latents = noise.draw("initial_noise", count: dc.inChannels * lh * lw)
                let timestep = Float(try t2i.scheduler.timesteps(steps: 25).timesteps[0])
                let (out, ts) = try time {
                    try dit.forward(latents: Array((0..<batch).map { _ in latents }.joined()), batch: batch, height: lh, width: lw,
                                    timestep: timestep, cond: cond, rope: rope, identityAttention: identity, pagLayers: pagLayers,
                                    pool: pool)
                }
                guard out.allSatisfy({ $0.isFinite }) else { throw HYError.format("\(model): the DiT output is not finite") }
                add("DiT step (batch 3, \(height)×\(width))", "transformer", load: nil, ts,
                    FlopCount.dit(dc, table, batch: batch, height: lh, width: lw, identityRows: 1, pagLayers: pagLayers, part: .forward))
            }

            writeStderr("VAE decode …\n")
            do {
                let (vae, tl) = try time { try AutoencoderKL(folder: dir("vae"), compute: precision) }
                let z = noise.draw("decode", count: vc.latentChannels * lh * lw)
                let (img, ts) = try time { try vae.decode(z, height: lh, width: lw, pool: pool) }
                guard img.allSatisfy({ $0.isFinite }) else { throw HYError.format("\(model): the decoded image is not finite") }
                add("VAE decode (\(height)×\(width))", "vae", load: tl, ts,
                    FlopCount.vae(vc, try AutoencoderKLTensors.table(for: vc), imageHeight: height, imageWidth: width, encoder: false))
            }

            var out = StdoutWriter()
            if json {
                func num(_ v: Double?) -> JSONValue { v.map { $0.isFinite ? .double($0) : .null } ?? .null }
                let doc = JSONValue.object([
                    ("engine", .string("hunyuan")), ("model", .string(model)), ("threads", .int(Int64(pool.threadCount))),
                    ("height", .int(Int64(height))), ("width", .int(Int64(width))), ("compute", .string(compute)),
                    ("gemm_gflops", .object([("f32", num(rate32 / 1e9)), ("f16", num(rate16 / 1e9)), ("bf16", num(rateBF16 / 1e9))])),
                    ("rows", .array(rows.map { r in
                        .object([("stage", .string(r.stage)), ("load_s", num(r.load)), ("seconds", num(r.seconds)),
                                 ("gflop", num(r.flops.map { $0.total / 1e9 })), ("bound_s", num(r.bound)),
                                 ("peak_rss_gb", num(Double(r.rss) / 1e9))])
                    })),
                ])
                out.write(doc.serialized() + "\n")
            } else {
                out.write("t2i-bench \(model): \(pool.threadCount) threads, \(height)×\(width), \(gemm.summary)\n\n")
                out.write(BenchRow.table(rows))
            }
            out.flush()
        }
    }
}

import ArgumentParser
import Glibc
import Hunyuan3D
import HunyuanCore
import HunyuanDiffusion
import HunyuanImage
import HunyuanNN

// `mvd-random` (a random-weight Hunyuan3D-1.0 lite multi-view diffusion folder, laid out and named as
// the release and diffusers / transformers write it) and `mvd-bench` (per-stage timings of that
// pipeline with a GEMM-bound estimate). Benchmarks and memory checks only: the weights are noise.

// MARK: - Shapes

/// The networks and image sizes of a lite folder: `full` is the release's (SD2 UNet, SD VAE,
/// OpenCLIP-H text, ViT-H/14 vision with a 1024 projection), `tiny` the same layout at toy sizes
/// (the shapes of `fixtures/mvd/mvd-lite-tiny`, with the full 49,408-token tokenizer and 77 tokens).
struct MVDLiteShapes {
    var unet: UNetConfig
    var vae: AutoencoderKLConfig
    var text: CLIPTextConfig
    var vision: CLIPVisionConfig
    /// feature_extractor_vae's square crop (the condition image; latent = this / VAE factor).
    var condPixels: Int
    /// feature_extractor_clip's square crop (= vision image_size).
    var clipPixels: Int

    static var full: MVDLiteShapes {
        var t = CLIPTextConfig.openCLIPH
        // SD2's text config: projection 512 (unused by CLIPTextModel), ids as its tokenizer numbers them
        t.projectionDim = 512; t.bosTokenId = 0; t.eosTokenId = 2; t.padTokenId = 1
        return MVDLiteShapes(unet: .stableDiffusion2, vae: .stableDiffusion2, text: t, vision: .vitH14,
                             condPixels: 640, clipPixels: 224)
    }

    static var tiny: MVDLiteShapes {
        var u = UNetConfig()
        u.blockOutChannels = [32, 64]
        u.downBlockTypes = ["CrossAttnDownBlock2D", "DownBlock2D"]
        u.upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D"]
        u.layersPerBlock = [1, 1]; u.heads = [2, 4]; u.transformerLayersPerBlock = [1, 1]
        u.crossAttentionDim = 32; u.useLinearProjection = true; u.normNumGroups = 8; u.sampleSize = 80
        var vae = AutoencoderKLConfig()
        vae.blockOutChannels = [8, 16]
        vae.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 2)
        vae.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 2)
        vae.layersPerBlock = 1; vae.normNumGroups = 4; vae.sampleSize = 160
        var t = CLIPTextConfig()
        t.hiddenSize = 32; t.numHiddenLayers = 2; t.numAttentionHeads = 2; t.intermediateSize = 64
        t.hiddenAct = "gelu"; t.projectionDim = 32; t.bosTokenId = 0; t.eosTokenId = 2; t.padTokenId = 1
        var v = CLIPVisionConfig()
        v.hiddenSize = 32; v.numHiddenLayers = 2; v.numAttentionHeads = 2; v.intermediateSize = 64
        v.patchSize = 8; v.imageSize = 32; v.projectionDim = 32; v.hiddenAct = "gelu"
        return MVDLiteShapes(unet: u, vae: vae, text: t, vision: v, condPixels: 160, clipPixels: 32)
    }
}

/// The latent of the official 960 × 640 grid (3 × 2 views): the guidance mask's rows and columns.
let mvdLatentHeight = 120, mvdLatentWidth = 80

// MARK: - Config files

/// The component config files as diffusers 0.31 / transformers 4.46 save them (every key their
/// `save_pretrained` writes, so both libraries and our decoders read them without defaults guessing).
enum MVDConfigFiles {
    static func ints(_ a: [Int]) -> JSONValue { .array(a.map { .int(Int64($0)) }) }
    static func strings(_ a: [String]) -> JSONValue { .array(a.map { .string($0) }) }
    static func num(_ f: Float) -> JSONValue { .double(Double(String(f)) ?? Double(f)) }
    /// One integer when every level has the same value (as diffusers writes SD2), else the list.
    static func perLevel(_ a: [Int]) -> JSONValue { Set(a).count == 1 ? .int(Int64(a[0])) : ints(a) }

    static func torchDType(_ d: DType) -> String {
        switch d {
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        default: return "float32"
        }
    }

    static func unet(_ c: UNetConfig) -> JSONValue {
        .object([
            ("_class_name", .string("UNet2DConditionModel")), ("_diffusers_version", .string("0.31.0")),
            ("act_fn", .string("silu")), ("addition_embed_type", .null), ("addition_embed_type_num_heads", .int(64)),
            ("addition_time_embed_dim", .null), ("attention_head_dim", ints(c.heads)), ("attention_type", .string("default")),
            ("block_out_channels", ints(c.blockOutChannels)), ("center_input_sample", .bool(false)),
            ("class_embed_type", .null), ("class_embeddings_concat", .bool(false)),
            ("conv_in_kernel", .int(Int64(c.convInKernel))), ("conv_out_kernel", .int(Int64(c.convOutKernel))),
            ("cross_attention_dim", .int(Int64(c.crossAttentionDim))), ("cross_attention_norm", .null),
            ("down_block_types", strings(c.downBlockTypes)), ("downsample_padding", .int(Int64(c.downsamplePadding))),
            ("dropout", .double(0)), ("dual_cross_attention", .bool(false)), ("encoder_hid_dim", .null),
            ("encoder_hid_dim_type", .null), ("flip_sin_to_cos", .bool(c.flipSinToCos)), ("freq_shift", .int(Int64(c.freqShift))),
            ("in_channels", .int(Int64(c.inChannels))), ("layers_per_block", perLevel(c.layersPerBlock)),
            ("mid_block_only_cross_attention", .null), ("mid_block_scale_factor", .int(1)),
            ("mid_block_type", .string("UNetMidBlock2DCrossAttn")), ("norm_eps", num(c.normEps)),
            ("norm_num_groups", .int(Int64(c.normNumGroups))), ("num_attention_heads", .null), ("num_class_embeds", .null),
            ("only_cross_attention", .bool(false)), ("out_channels", .int(Int64(c.outChannels))),
            ("projection_class_embeddings_input_dim", .null), ("resnet_out_scale_factor", .double(1)),
            ("resnet_skip_time_act", .bool(false)), ("resnet_time_scale_shift", .string("default")),
            ("reverse_transformer_layers_per_block", .null), ("sample_size", c.sampleSize.map { .int(Int64($0)) } ?? .null),
            ("time_cond_proj_dim", .null), ("time_embedding_act_fn", .null),
            ("time_embedding_dim", c.timeEmbeddingDim.map { .int(Int64($0)) } ?? .null),
            ("time_embedding_type", .string("positional")), ("timestep_post_act", .null),
            ("transformer_layers_per_block", perLevel(c.transformerLayersPerBlock)), ("up_block_types", strings(c.upBlockTypes)),
            ("upcast_attention", .bool(c.upcastAttention)), ("use_linear_projection", .bool(c.useLinearProjection)),
        ])
    }

    static func vae(_ c: AutoencoderKLConfig) -> JSONValue {
        .object([
            ("_class_name", .string("AutoencoderKL")), ("_diffusers_version", .string("0.31.0")),
            ("act_fn", .string(c.actFn)), ("block_out_channels", ints(c.blockOutChannels)),
            ("down_block_types", strings(c.downBlockTypes)), ("force_upcast", .bool(c.forceUpcast)),
            ("in_channels", .int(Int64(c.inChannels))), ("latent_channels", .int(Int64(c.latentChannels))),
            ("latents_mean", .null), ("latents_std", .null), ("layers_per_block", .int(Int64(c.layersPerBlock))),
            ("mid_block_add_attention", .bool(c.midBlockAddAttention)), ("norm_num_groups", .int(Int64(c.normNumGroups))),
            ("out_channels", .int(Int64(c.outChannels))), ("sample_size", .int(Int64(c.sampleSize))),
            ("scaling_factor", num(c.scalingFactor)), ("shift_factor", .null), ("up_block_types", strings(c.upBlockTypes)),
            ("use_post_quant_conv", .bool(c.usePostQuantConv)), ("use_quant_conv", .bool(c.useQuantConv)),
        ])
    }

    static func text(_ c: CLIPTextConfig, dtype: DType) -> JSONValue {
        .object([
            ("architectures", strings(["CLIPTextModel"])), ("attention_dropout", .double(0)),
            ("bos_token_id", .int(Int64(c.bosTokenId))), ("dropout", .double(0)), ("eos_token_id", .int(Int64(c.eosTokenId))),
            ("hidden_act", .string(c.hiddenAct)), ("hidden_size", .int(Int64(c.hiddenSize))),
            ("initializer_factor", .double(1)), ("initializer_range", .double(0.02)),
            ("intermediate_size", .int(Int64(c.intermediateSize))), ("layer_norm_eps", num(c.layerNormEps)),
            ("max_position_embeddings", .int(Int64(c.maxPositionEmbeddings))), ("model_type", .string("clip_text_model")),
            ("num_attention_heads", .int(Int64(c.numAttentionHeads))), ("num_hidden_layers", .int(Int64(c.numHiddenLayers))),
            ("pad_token_id", .int(Int64(c.padTokenId))), ("projection_dim", .int(Int64(c.projectionDim))),
            ("torch_dtype", .string(torchDType(dtype))), ("transformers_version", .string("4.46.3")),
            ("vocab_size", .int(Int64(c.vocabSize))),
        ])
    }

    static func vision(_ c: CLIPVisionConfig, dtype: DType) -> JSONValue {
        .object([
            ("architectures", strings(["CLIPVisionModelWithProjection"])), ("attention_dropout", .double(0)),
            ("dropout", .double(0)), ("hidden_act", .string(c.hiddenAct)), ("hidden_size", .int(Int64(c.hiddenSize))),
            ("image_size", .int(Int64(c.imageSize))), ("initializer_factor", .double(1)), ("initializer_range", .double(0.02)),
            ("intermediate_size", .int(Int64(c.intermediateSize))), ("layer_norm_eps", num(c.layerNormEps)),
            ("model_type", .string("clip_vision_model")), ("num_attention_heads", .int(Int64(c.numAttentionHeads))),
            ("num_channels", .int(Int64(c.numChannels))), ("num_hidden_layers", .int(Int64(c.numHiddenLayers))),
            ("patch_size", .int(Int64(c.patchSize))), ("projection_dim", .int(Int64(c.projectionDim))),
            ("torch_dtype", .string(torchDType(dtype))), ("transformers_version", .string("4.46.3")),
        ])
    }

    /// transformers' CLIPImageProcessor: resize the shortest edge to `size` (bicubic), centre-crop
    /// `size` × `size`, /255, normalise.
    static func imageProcessor(size: Int, mean: [Double], std: [Double]) -> JSONValue {
        .object([
            ("crop_size", .object([("height", .int(Int64(size))), ("width", .int(Int64(size)))])),
            ("do_center_crop", .bool(true)), ("do_convert_rgb", .bool(true)), ("do_normalize", .bool(true)),
            ("do_rescale", .bool(true)), ("do_resize", .bool(true)), ("image_mean", .array(mean.map { .double($0) })),
            ("image_processor_type", .string("CLIPImageProcessor")), ("image_std", .array(std.map { .double($0) })),
            ("resample", .int(3)), ("rescale_factor", .double(1.0 / 255)),
            ("size", .object([("shortest_edge", .int(Int64(size)))])),
        ])
    }

    /// The lite release's scheduler: Euler-ancestral, v-prediction, linspace spacing, linear betas.
    static let scheduler: JSONValue = .object([
        ("_class_name", .string("EulerAncestralDiscreteScheduler")), ("_diffusers_version", .string("0.31.0")),
        ("beta_end", .double(0.012)), ("beta_schedule", .string("linear")), ("beta_start", .double(0.00085)),
        ("num_train_timesteps", .int(1000)), ("prediction_type", .string("v_prediction")),
        ("rescale_betas_zero_snr", .bool(false)), ("steps_offset", .int(1)), ("timestep_spacing", .string("linspace")),
        ("trained_betas", .null),
    ])

    /// model_index.json: the official pipeline class, each component's library and class, the ramp.
    static func modelIndex(ramp: [Float]) -> JSONValue {
        func lib(_ l: String, _ c: String) -> JSONValue { strings([l, c]) }
        return .object([
            ("_class_name", .string("Hunyuan3d_MVD_Lite_Pipeline")), ("_diffusers_version", .string("0.31.0")),
            ("feature_extractor_clip", lib("transformers", "CLIPImageProcessor")),
            ("feature_extractor_vae", lib("transformers", "CLIPImageProcessor")),
            ("ramping_coefficients", .array(ramp.map { num($0) })),
            ("scheduler", lib("diffusers", "EulerAncestralDiscreteScheduler")),
            ("text_encoder", lib("transformers", "CLIPTextModel")), ("tokenizer", lib("transformers", "CLIPTokenizer")),
            ("unet", lib("diffusers", "UNet2DConditionModel")), ("vae", lib("diffusers", "AutoencoderKL")),
            ("vision_encoder", lib("transformers", "CLIPVisionModelWithProjection")),
        ])
    }
}

// MARK: - Tokenizer files

/// A CLIP BPE tokenizer folder with OpenAI CLIP's vocabulary layout (49,408 ids): the 256 byte-level
/// characters (GPT-2's byte → unicode map, in CLIP's order, so "!" is 0), their `</w>` forms
/// (256…511), 48,894 merged tokens (synthetic pairs of byte characters, each merge written to
/// merges.txt in id order), `<|startoftext|>` 49406 and `<|endoftext|>` 49407; pad "!" as SD2's
/// tokenizer. Readable by transformers' `CLIPTokenizer` (which reads exactly 48,894 merges) and ours.
enum MVDTokenizerFiles {
    static let vocabSize = 49408
    static let mergeCount = 49408 - 512 - 2

    /// GPT-2 bytes_to_unicode, in its dict order (printable bytes first, then the remapped ones).
    static func byteCharacters() -> [String] {
        var bs: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) { bs.append(b); cs.append(256 + n); n += 1 }
        return cs.map { String(Character(Unicode.Scalar(UInt32($0))!)) }
    }

    /// (vocab in id order, merges lines).
    static func make() -> (vocab: [String], merges: [String]) {
        let chars = byteCharacters()
        var vocab = chars + chars.map { $0 + "</w>" }
        var merges: [String] = []
        outer: for a in chars {
            for b in chars {
                if merges.count == mergeCount { break outer }
                merges.append(a + " " + b); vocab.append(a + b)
                merges.append(a + " " + b + "</w>"); vocab.append(a + b + "</w>")
            }
        }
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        return (vocab, merges)
    }

    static func special(_ s: String) -> JSONValue {
        .object([("content", .string(s)), ("lstrip", .bool(false)), ("normalized", .bool(true)), ("rstrip", .bool(false)),
                 ("single_word", .bool(false))])
    }

    static func write(to dir: String, maxLength: Int) throws {
        let (vocab, merges) = make()
        guard vocab.count == vocabSize, merges.count == mergeCount else {
            throw HYError.internal("tokenizer: \(vocab.count) tokens and \(merges.count) merges made, \(vocabSize) / \(mergeCount) meant")
        }
        let v = JSONValue.object(vocab.enumerated().map { ($0.element, .int(Int64($0.offset))) })
        try writeText(FileSystem.join(dir, "vocab.json"), v.serialized())
        try writeText(FileSystem.join(dir, "merges.txt"), "#version: 0.2\n" + merges.joined(separator: "\n") + "\n")
        func added(_ s: String, normalized: Bool) -> JSONValue {
            .object([("content", .string(s)), ("lstrip", .bool(false)), ("normalized", .bool(normalized)),
                     ("rstrip", .bool(false)), ("single_word", .bool(false)), ("special", .bool(true))])
        }
        let config = JSONValue.object([
            ("add_prefix_space", .bool(false)),
            ("added_tokens_decoder", .object([("0", added("!", normalized: false)), ("49406", added("<|startoftext|>", normalized: true)),
                                             ("49407", added("<|endoftext|>", normalized: true))])),
            ("bos_token", .string("<|startoftext|>")), ("clean_up_tokenization_spaces", .bool(true)),
            ("do_lower_case", .bool(true)), ("eos_token", .string("<|endoftext|>")), ("errors", .string("replace")),
            ("model_max_length", .int(Int64(maxLength))), ("pad_token", .string("!")),
            ("tokenizer_class", .string("CLIPTokenizer")), ("unk_token", .string("<|endoftext|>")),
        ])
        try writeText(FileSystem.join(dir, "tokenizer_config.json"), config.serialized())
        let map = JSONValue.object([("bos_token", special("<|startoftext|>")), ("eos_token", special("<|endoftext|>")),
                                    ("pad_token", .string("!")), ("unk_token", special("<|endoftext|>"))])
        try writeText(FileSystem.join(dir, "special_tokens_map.json"), map.serialized())
    }
}

/// Writes a small text file (atomically; never over an existing file).
func writeText(_ path: String, _ text: String) throws {
    try FileSystem.writeAtomically(path, bytes: Array(text.utf8), overwrite: false)
}

// MARK: - Random safetensors

/// Streams a safetensors file of random tensors: the header from `table` (names, shapes, `dtype`,
/// in declaration order), then each tensor generated and converted in 1 M-value chunks, so memory
/// stays at a few MB whatever the model size. Values: biases 0, 1-D `.weight`s (norms) 1, embeddings
/// uniform with std 0.02, every other matrix uniform with std 1/√fan_in (fan_in = the product of
/// all but the first dimension). Each tensor draws from its own seeded xorshift stream, so a file
/// depends only on (table, seed).
enum RandomSafetensors {
    static func std(_ e: WeightTable.Entry) -> (std: Float, constant: Float?) {
        if e.name.hasSuffix(".bias") { return (0, 0) }
        if e.shape.count == 1 && e.name.hasSuffix(".weight") { return (0, 1) }
        if e.name.contains("embedding") && !e.name.contains("patch_embedding") { return (0.02, nil) }
        let fanIn = e.shape.dropFirst().reduce(1, *)
        return (1 / Float(max(fanIn, 1)).squareRoot(), nil)
    }

    static func write(_ table: WeightTable, dtype: DType, seed: UInt64, to path: String,
                      progress: ((Int) -> Void)? = nil) throws {
        var header: [(String, JSONValue)] = [("__metadata__", .object([("format", .string("pt"))]))]
        var offset = 0
        for e in table.entries {
            let n = e.shape.reduce(1, *) * dtype.size
            header.append((e.name, .object([
                ("dtype", .string(dtype.safetensorsName)), ("shape", .array(e.shape.map { .int(Int64($0)) })),
                ("data_offsets", .array([.int(Int64(offset)), .int(Int64(offset + n))])),
            ])))
            offset += n
        }
        var text = Array(JSONValue.object(header).serialized().utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        var len = UInt64(text.count).littleEndian
        let chunk = 1 << 20
        var bytes = [UInt8](repeating: 0, count: chunk * 4)
        try FileSystem.writeAtomically(path, overwrite: false) { write in
            try withUnsafeBytes(of: &len) { try write($0) }
            try text.withUnsafeBytes { try write($0) }
            for (index, e) in table.entries.enumerated() {
                let n = e.shape.reduce(1, *)
                let (s, constant) = std(e)
                let a = s * Float(3).squareRoot()
                var state = (seed &+ UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15) | 1
                for _ in 0..<4 { state ^= state >> 12; state ^= state << 25; state ^= state >> 27 }
                var done = 0
                while done < n {
                    let m = min(chunk, n - done)
                    let size = dtype.size
                    bytes.withUnsafeMutableBytes { raw in
                        for i in 0..<m {
                            let v: Float
                            if let constant { v = constant } else {
                                state ^= state >> 12; state ^= state << 25; state ^= state >> 27
                                let u = Float((state &* 2_685_821_657_736_338_717) >> 40) / Float(1 << 23) - 1
                                v = a * u
                            }
                            switch dtype {
                            case .f16: raw.storeBytes(of: FloatBits.floatToF16(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                            case .bf16: raw.storeBytes(of: FloatBits.floatToBF16(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                            default: raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                            }
                        }
                    }
                    try bytes.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<(m * size)])) }
                    done += m
                    progress?(m)
                }
            }
        }
    }
}

/// Removes a folder tree this tool wrote (regular files and folders only).
func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for name in (try? FileSystem.list(path)) ?? [] { removeTree(FileSystem.join(path, name)) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

// MARK: - mvd-random

/// `mvd-random`: a complete random-weight lite multi-view diffusion folder.
struct MVDRandomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mvd-random",
        abstract: "Write a random-weight Hunyuan3D-1.0 lite multi-view diffusion folder (mvd_lite/ layout) for benchmarks.",
        discussion: """
            Writes OUT_DIR exactly as the release's mvd_lite/ folder is laid out and as diffusers / transformers save it:
            model_index.json (Hunyuan3d_MVD_Lite_Pipeline, 77 ramping_coefficients), unet/ vae/
            (diffusion_pytorch_model.safetensors), text_encoder/ vision_encoder/ (model.safetensors), each with its
            config.json, tokenizer/ (49,408-token CLIP BPE files), feature_extractor_vae/ feature_extractor_clip/
            (preprocessor_config.json) and scheduler/ (scheduler_config.json). --size full: SD2 UNet (865.9 M), SD VAE
            (83.7 M), OpenCLIP-H text (340.4 M), ViT-H/14 + 1024 projection (632.1 M); --size tiny: the same layout at
            the shapes of fixtures/mvd/mvd-lite-tiny. Tensor names and shapes come from the library's own
            declarations. Weights are seeded noise at ~1/√fan_in (not a trained model). The folder is built as
            OUT_DIR.partial and renamed at the end; an existing OUT_DIR is replaced only with --overwrite.
            Memory stays at a few MB (tensors are streamed); disk: ~3.9 GB at f16, ~7.7 GB at f32.
            """)

    enum Size: String, ExpressibleByArgument, CaseIterable { case full, tiny }

    @Argument(help: "Output folder.") var output: String
    @Option(help: "Stored dtype of the weights: f16, f32 or bf16.") var dtype = DType.f16
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "full (the release's shapes) or tiny.") var size = Size.full
    @Flag(help: "Replace an existing OUT_DIR.") var overwrite = false

    func run() throws {
        try runReporting {
            guard [.f32, .f16, .bf16].contains(dtype) else { throw HYError.invalidArgument("--dtype \(dtype.name): f16, f32 or bf16") }
            let out = try BenchSupport.publishFolder(output, overwrite: overwrite) { partial in
                try Self.write(shapes: size == .full ? .full : .tiny, dtype: dtype, seed: seed, to: partial)
            }
            writeStderr("→ \(out)\n")
        }
    }

    /// Writes the whole folder into `dir` (created; must not exist). Each config is read back with the
    /// library's decoder and must equal the intended one; the tensor tables are declared from it.
    static func write(shapes s: MVDLiteShapes, dtype: DType, seed: UInt64, to dir: String) throws {
        try BenchSupport.makeFolder(dir)
        for c in MultiViewDiffusion.components { try BenchSupport.makeFolder(FileSystem.join(dir, c)) }
        func path(_ c: String, _ f: String) -> String { FileSystem.join(FileSystem.join(dir, c), f) }

        // Small files.
        var rng = seed &* 0x2545_F491_4F6C_DD1D | 1
        let ramp: [Float] = (0..<s.text.maxPositionEmbeddings).map { _ in
            rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27
            return Float((rng &* 2_685_821_657_736_338_717) >> 40) / Float(1 << 24)
        }
        try writeText(FileSystem.join(dir, "model_index.json"), MVDConfigFiles.modelIndex(ramp: ramp).serialized())
        try writeText(path("unet", "config.json"), MVDConfigFiles.unet(s.unet).serialized())
        try writeText(path("vae", "config.json"), MVDConfigFiles.vae(s.vae).serialized())
        try writeText(path("text_encoder", "config.json"), MVDConfigFiles.text(s.text, dtype: dtype).serialized())
        try writeText(path("vision_encoder", "config.json"), MVDConfigFiles.vision(s.vision, dtype: dtype).serialized())
        try writeText(path("scheduler", "scheduler_config.json"), MVDConfigFiles.scheduler.serialized())
        try writeText(path("feature_extractor_vae", "preprocessor_config.json"),
                      MVDConfigFiles.imageProcessor(size: s.condPixels, mean: [0.5, 0.5, 0.5], std: [0.8, 0.8, 0.8]).serialized())
        try writeText(path("feature_extractor_clip", "preprocessor_config.json"),
                      MVDConfigFiles.imageProcessor(size: s.clipPixels, mean: [0.48145466, 0.4578275, 0.40821073],
                                                    std: [0.26862954, 0.26130258, 0.27577711]).serialized())
        try MVDTokenizerFiles.write(to: FileSystem.join(dir, "tokenizer"), maxLength: s.text.maxPositionEmbeddings)

        // Read back: what we wrote is what we meant.
        let unet = try Component.config(UNetConfig.self, FileSystem.join(dir, "unet"))
        let vae = try Component.config(AutoencoderKLConfig.self, FileSystem.join(dir, "vae"))
        let text = try Component.config(CLIPTextConfig.self, FileSystem.join(dir, "text_encoder"))
        let vision = try Component.config(CLIPVisionConfig.self, FileSystem.join(dir, "vision_encoder"))
        guard unet == s.unet, vae == s.vae, text == s.text, vision == s.vision else {
            throw HYError.internal("\(dir): a written config.json does not read back as the intended configuration")
        }
        _ = try MultiViewDiffusion(folder: dir)   // model_index, tokenizer, processors, scheduler

        // Weights, component by component.
        let tables: [(String, String, WeightTable)] = [
            ("unet", "diffusion_pytorch_model.safetensors", try UNetTensors.table(for: unet)),
            ("vae", "diffusion_pytorch_model.safetensors", try AutoencoderKLTensors.table(for: vae)),
            ("text_encoder", "model.safetensors", try CLIPTensors.textTable(for: text)),
            ("vision_encoder", "model.safetensors", try CLIPTensors.visionTable(for: vision)),
        ]
        try RandomSafetensors.writeAll(tables.map { (path($0.0, $0.1), $0.2) }, dtype: dtype, seed: seed)
    }
}

// MARK: - FLOP counter

/// Floating-point operations of the pipeline's networks, counted from the declared tensor shapes
/// and the spatial sizes: every conv / linear weight [out, in, (kh, kw)] costs 2·out·in·kh·kw per
/// output position (row), and each attention 2·Tq·Tk·d for QKᵀ plus as much for PV per batch item.
/// Norms, activations, softmax and embeddings lookups are not counted. Split into the matrix part
/// (runs at the weights' GEMM rate) and the attention part (fp32 activations on both sides).
struct FlopCount {
    var matrix: Double = 0
    var attention: Double = 0
    var total: Double { matrix + attention }
    static func + (a: FlopCount, b: FlopCount) -> FlopCount { FlopCount(matrix: a.matrix + b.matrix, attention: a.attention + b.attention) }
    static func * (a: FlopCount, k: Double) -> FlopCount { FlopCount(matrix: a.matrix * k, attention: a.attention * k) }

    static func level(_ name: String, _ prefix: String) -> Int? {
        guard name.hasPrefix(prefix) else { return nil }
        return Int(name.dropFirst(prefix.count).prefix { $0.isNumber })
    }

    /// One UNet pass: batch × (latent h × w), context of `contextLength` tokens; `refPixels` > 0 adds
    /// that many reference tokens (at level 0, scaled down with the level) to every attn1's keys.
    static func unet(_ c: UNetConfig, _ t: WeightTable, batch: Int, height h: Int, width w: Int, contextLength: Int,
                     refHeight: Int = 0, refWidth: Int = 0) -> FlopCount {
        let n = c.levels
        func pixels(_ l: Int) -> Double { Double((h >> l) * (w >> l)) }
        func refPixels(_ l: Int) -> Double { Double((refHeight >> l) * (refWidth >> l)) }
        var f = FlopCount()
        for e in t.entries where e.isMatrix {
            let name = e.name
            var l = 0
            if let i = level(name, "down_blocks.") { l = name.contains(".downsamplers.") ? i + 1 : i }
            else if name.hasPrefix("mid_block.") { l = n - 1 }
            else if let i = level(name, "up_blocks.") { l = name.contains(".upsamplers.") ? n - 2 - i : n - 1 - i }
            var rows = pixels(l)
            if name.hasPrefix("time_embedding.") || name.contains(".time_emb_proj.") { rows = 1 }
            if name.contains(".attn2.to_k.") || name.contains(".attn2.to_v.") { rows = Double(contextLength) }
            f.matrix += 2 * rows * Double(e.shape.reduce(1, *))
            if name.hasSuffix(".attn1.to_q.weight") {
                let d = Double(e.shape[0]), p = pixels(l)
                f.attention += 2 * 2 * p * (p + refPixels(l)) * d
            } else if name.hasSuffix(".attn2.to_q.weight") {
                f.attention += 2 * 2 * pixels(l) * Double(contextLength) * Double(e.shape[0])
            }
        }
        return f * Double(batch)
    }

    /// The VAE encoder on one image (h × w pixels) or the decoder on one latent (image h × w).
    static func vae(_ c: AutoencoderKLConfig, _ t: WeightTable, imageHeight h: Int, imageWidth w: Int, encoder: Bool) -> FlopCount {
        let n = c.blockOutChannels.count
        func pixels(_ l: Int) -> Double { Double((h >> l) * (w >> l)) }
        var f = FlopCount()
        for e in t.entries where e.isMatrix {
            let name = e.name
            var l: Int
            if encoder {
                if name == "quant_conv.weight" { l = n - 1 }
                else if !name.hasPrefix("encoder.") { continue }
                else if let i = level(name, "encoder.down_blocks.") { l = name.contains(".downsamplers.") ? i + 1 : i }
                else if name.hasPrefix("encoder.conv_in") { l = 0 }
                else { l = n - 1 }   // mid block, conv_out
            } else {
                if name == "post_quant_conv.weight" { l = n - 1 }
                else if !name.hasPrefix("decoder.") { continue }
                else if let i = level(name, "decoder.up_blocks.") { l = name.contains(".upsamplers.") ? n - 2 - i : n - 1 - i }
                else if name.hasPrefix("decoder.conv_out") { l = 0 }
                else { l = n - 1 }   // conv_in, mid block
            }
            f.matrix += 2 * pixels(l) * Double(e.shape.reduce(1, *))
            if name.hasSuffix("mid_block.attentions.0.to_q.weight") {
                f.attention += 2 * 2 * pixels(l) * pixels(l) * Double(e.shape[0])
            }
        }
        return f
    }

    /// A CLIP tower over `tokens` tokens (`patches` rows for the patch embedding; 1 row for the
    /// projection; the token embedding is a lookup).
    static func clip(_ t: WeightTable, tokens: Int, patches: Int = 0) -> FlopCount {
        var f = FlopCount()
        let tk = Double(tokens)
        for e in t.entries where e.isMatrix {
            if e.name.contains("token_embedding") { continue }
            let rows = e.name.contains("patch_embedding") ? Double(patches) : e.name.hasPrefix("visual_projection") ? 1 : tk
            f.matrix += 2 * rows * Double(e.shape.reduce(1, *))
            if e.name.hasSuffix(".self_attn.q_proj.weight") { f.attention += 2 * 2 * tk * tk * Double(e.shape[0]) }
        }
        return f
    }
}

// MARK: - mvd-bench

/// Peak resident set size of this process so far (getrusage ru_maxrss), in bytes.
func peakRSS() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Int(u.ru_maxrss) * 1024
}

/// Owned raw bytes (the storage of a synthetic weight tensor).
final class RawStorage {
    let bytes: UnsafeMutableRawBufferPointer
    init(_ n: Int) { bytes = .allocate(byteCount: n, alignment: 64) }
    deinit { bytes.deallocate() }
}

/// `mvd-bench`: per-stage timings of the lite multi-view diffusion on a folder.
struct MVDBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mvd-bench",
        abstract: "Time the lite multi-view diffusion stage by stage (and whole runs) with a GEMM-bound estimate.",
        discussion: """
            Stages (each component opened, run once, released; times include the first touch of its mapped weights,
            shown separately as `load` for the opening): CLIP vision on the clip crop, VAE encode of the condition
            and of the negative (zeros) at the vae crop, the text encoder on the empty prompt, one denoising step as
            the UNet's write pass (batch 2 on the condition latent, e.g. 80×80) and read pass (batch 2 on the 120×80
            latent, classifier-free guidance), and the VAE decode of the 120×80 latent. --steps N adds a whole
            N-step run through MultiViewDiffusion.generate on a synthetic image. The stages run when --steps is 0
            (the default) or with --stages.
            Columns: seconds; GFLOP counted from the declared shapes (convs and linears 2·MACs, attention QKᵀ + PV);
            `bound s` = matrix GFLOP at the measured GEMM rate of the stored weight type (Linear.forward, fp32 or f16
            weights; bf16 products with --compute bf16 for the UNet and the VAE) + attention GFLOP at the fp32 rate (the
            bf16 rate with --compute bf16, UNet and VAE); `% of bound` = bound / seconds; peak RSS of the process so
            far (ru_maxrss). A markdown table on stdout; progress on stderr.
            """)

    @Argument(help: "The mvd_lite/ folder.") var model: String
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Option(help: "Also time a whole run of this many steps (0 = none).") var steps: Int = 0
    @Flag(help: "Time the single stages too when --steps is given.") var stages = false
    @Option(help: "Seed of the synthetic input and noise.") var seed: UInt64 = 0
    @Option(help: "Products of the UNet and the VAE: fp32 or bf16 (AVX512_BF16).") var compute: String = "fp32"

    func run() throws {
        try runReporting {
            guard threads >= 0, steps >= 0 else { throw HYError.invalidArgument("--threads and --steps must be ≥ 0") }
            let precision = try parseCompute(compute)
            guard precision.isAvailable else { throw HYError.unsupported("--compute bf16 needs a CPU with AVX512_BF16") }
            let pool = ThreadPool(threads: threads)
            let mvd = try MultiViewDiffusion(folder: model, compute: precision)
            func dir(_ c: String) -> String { FileSystem.join(model, c) }
            let unetConfig = try Component.config(UNetConfig.self, dir("unet"))
            let vaeConfig = try Component.config(AutoencoderKLConfig.self, dir("vae"))
            let f = vaeConfig.scaleFactor
            let lh = mvdLatentHeight, lw = mvdLatentWidth
            let (gridH, gridW) = (lh * f, lw * f)

            // GEMM rates.
            let rates = GEMMRates.measure(bf16: precision == .bf16, pool: pool)
            let rate32 = rates.f32, rate16 = rates.f16, rateBF16 = rates.bf16
            /// The matrix rate of a component: bf16 products for the UNet and the VAE with --compute bf16.
            func rate(_ component: String) -> Double {
                if precision == .bf16 && (component == "unet" || component == "vae") { return rateBF16 }
                let dt = BenchSupport.storedType(dir(component))
                return dt == .f16 || dt == .bf16 ? rate16 : rate32
            }

            // Synthetic input: a coloured disk on a transparent background.
            let im = try Self.syntheticImage(size: 512)
            var rows: [BenchRow] = []
            func time<T>(_ body: () throws -> T) rethrows -> (T, Double) { try BenchSupport.timed(body) }
            func add(_ stage: String, load: Double?, _ s: Double, _ fl: FlopCount?, _ r: Double) {
                rows.append(.logged(stage, load: load, seconds: s, flops: fl, matrixRate: r,
                                    attentionRate: r == rateBF16 ? rateBF16 : rate32))
            }

            if steps == 0 || stages {
                let rgb = MVDPreprocess.conditionRGB(im)
                let pv = mvd.vaeProcessor.preprocess(rgb: rgb, width: im.width, height: im.height)
                let pc = mvd.clipProcessor.preprocess(rgb: rgb, width: im.width, height: im.height)
                let noise = SeededNoise(seed: seed)

                writeStderr("CLIP vision …\n")
                let imageEmbeds: [Float]
                do {
                    let (vision, tl) = try time { try CLIPVisionModel(folder: dir("vision_encoder")) }
                    let c = vision.config
                    let (e, ts) = try time { try vision.imageEmbeds(pixels: pc.pixels, pool: pool) }
                    imageEmbeds = e
                    let fl = FlopCount.clip(try CLIPTensors.visionTable(for: c), tokens: c.tokens, patches: c.grid * c.grid)
                    add("CLIP vision", load: tl, ts, fl, rate("vision_encoder"))
                }

                writeStderr("VAE encode …\n")
                let condLat: [Float], ch: Int, cw: Int
                do {
                    let (vae, tl) = try time { try AutoencoderKL(folder: dir("vae"), compute: precision) }
                    ch = pv.height / f; cw = pv.width / f
                    let n = vaeConfig.latentChannels * ch * cw
                    var lat = [Float](repeating: 0, count: 2 * n)
                    let (_, ts) = try time {
                        for (b, pixels) in [(0, [Float](repeating: 0, count: pv.pixels.count)), (1, pv.pixels)] {
                            let post = try vae.encode(pixels, height: pv.height, width: pv.width, pool: pool)
                            let eps = noise.draw("vae_posterior_noise_\(b)", count: n)
                            for i in 0..<n { lat[b * n + i] = post.mean[i] + expf(0.5 * post.logvar[i]) * eps[i] }
                        }
                    }
                    condLat = lat
                    let fl = FlopCount.vae(vaeConfig, try AutoencoderKLTensors.table(for: vaeConfig), imageHeight: pv.height,
                                           imageWidth: pv.width, encoder: true) * 2
                    add("VAE encode (cond + negative)", load: tl, ts, fl, rate("vae"))
                }

                writeStderr("text encoder …\n")
                let text: [Float]
                do {
                    let (te, tl) = try time { try CLIPTextModel(folder: dir("text_encoder")) }
                    let ids = mvd.tokenizer.encode("")
                    let (tx, ts) = try time { try te.forward(ids: ids, pool: pool) }
                    text = tx
                    add("text encoder", load: tl, ts, FlopCount.clip(try CLIPTensors.textTable(for: te.config), tokens: ids.count),
                        rate("text_encoder"))
                }

                // One step at the first timestep: prompt_embeds = [text, text + ramp ⊗ image_embeds].
                let L = mvd.tokenizer.maxLength, D = text.count / L
                guard imageEmbeds.count == D, D == unetConfig.crossAttentionDim else {
                    throw HYError.format("\(model): text (\(D)), image embedding (\(imageEmbeds.count)) and cross-attention (\(unetConfig.crossAttentionDim)) widths differ")
                }
                var context = text + text
                for t in 0..<L { for j in 0..<D { context[(L + t) * D + j] += imageEmbeds[j] * mvd.ramp[t] } }
                let sched = try mvd.scheduler.schedule(steps: max(steps, 50))
                let t = sched.timesteps[0], sigma = sched.sigmas[0]
                writeStderr("UNet …\n")
                do {
                    let (unet, tl) = try time { try UNet2DConditionModel(folder: dir("unet"), compute: precision) }
                    let table = try UNetTensors.table(for: unetConfig)
                    let refNoise = noise.draw("step0_ref_noise", count: condLat.count)
                    let d = (sigma * sigma + 1).squareRoot()
                    let refIn = (0..<condLat.count).map { (condLat[$0] + refNoise[$0] * sigma) / d }
                    let reference = ReferenceAttention(mode: .write)
                    let (_, tw) = try time {
                        try unet.forward(sample: refIn, batch: 2, height: ch, width: cw, timestep: t, context: context,
                                         reference: reference, pool: pool)
                    }
                    let fw = FlopCount.unet(unetConfig, table, batch: 2, height: ch, width: cw, contextLength: L)
                    add("UNet write pass (\(ch)×\(cw), batch 2)", load: tl, tw, fw, rate("unet"))
                    reference.mode = .read
                    let lat = noise.draw("initial_noise", count: unetConfig.inChannels * lh * lw).map { $0 * sched.initNoiseSigma / d }
                    let (out, tr) = try time {
                        try unet.forward(sample: lat + lat, batch: 2, height: lh, width: lw, timestep: t, context: context,
                                         reference: reference, pool: pool)
                    }
                    guard out.allSatisfy({ $0.isFinite }) else { throw HYError.format("\(model): the UNet output is not finite") }
                    let fr = FlopCount.unet(unetConfig, table, batch: 2, height: lh, width: lw, contextLength: L,
                                            refHeight: ch, refWidth: cw)
                    add("UNet read pass (\(lh)×\(lw), batch 2)", load: nil, tr, fr, rate("unet"))
                    add("denoising step (write + read)", load: nil, tw + tr, fw + fr, rate("unet"))
                }

                writeStderr("VAE decode …\n")
                do {
                    let (vae, tl) = try time { try AutoencoderKL(folder: dir("vae"), compute: precision) }
                    let z = noise.draw("decode", count: vaeConfig.latentChannels * lh * lw)
                    let (img, ts) = try time { try vae.decode(z, height: lh, width: lw, pool: pool) }
                    guard img.allSatisfy({ $0.isFinite }) else { throw HYError.format("\(model): the decoded image is not finite") }
                    let fl = FlopCount.vae(vaeConfig, try AutoencoderKLTensors.table(for: vaeConfig), imageHeight: gridH,
                                           imageWidth: gridW, encoder: false)
                    add("VAE decode (\(lh)×\(lw) → \(gridH)×\(gridW))", load: tl, ts, fl, rate("vae"))
                }
            }

            if steps > 0 {
                writeStderr("whole run, \(steps) steps …\n")
                let bar = StageProgress()
                let (_, ts) = try time {
                    try mvd.generate(image: im, steps: steps, height: gridH, width: gridW, noise: SeededNoise(seed: seed), pool: pool,
                                     progress: { bar.update($0) })
                }
                bar.finish()
                add("whole run (\(steps) steps)", load: nil, ts, nil, rate32)
            }

            var out = StdoutWriter()
            out.write("mvd-bench \(model): \(pool.threadCount) threads, \(rates.summary)\n\n")
            out.write(BenchRow.table(rows))
            out.flush()
        }
    }

    /// An RGBA image: a shaded disk on a transparent background (the pipeline whites it out).
    static func syntheticImage(size n: Int) throws -> ByteImage {
        var px = [UInt8](repeating: 0, count: n * n * 4)
        for y in 0..<n {
            for x in 0..<n {
                let dx = Double(x - n / 2), dy = Double(y - n / 2), r = (dx * dx + dy * dy).squareRoot()
                guard r < Double(n) * 0.35 else { continue }
                let i = 4 * (y * n + x)
                px[i] = UInt8(60 + x * 150 / n); px[i + 1] = UInt8(40 + y * 150 / n); px[i + 2] = 120; px[i + 3] = 255
            }
        }
        return try ByteImage(width: n, height: n, channels: 4, pixels: px)
    }
}

import HunyuanNN

/// The configuration of diffusers' `UNet2DConditionModel` as its `config.json` spells it, restricted
/// to what Stable Diffusion 1/2-style UNets use (the Hunyuan3D-1.0 multi-view diffusion UNet is an
/// SD2 UNet). Absent keys take diffusers' constructor defaults. Keys that would change the network
/// in a way this port does not implement (class / addition embeddings, time-scale-shift resnets,
/// dual or cross-only attention, other block types, …) are rejected at decoding with
/// `HYError.unsupported` naming the key, rather than silently computing something else.
///
/// Per-level values are resolved as diffusers resolves them: `heads[i]` is
/// `num_attention_heads ?? attention_head_dim` (diffusers' naming quirk: with `num_attention_heads`
/// null, `attention_head_dim` is the number of heads; the head size is channels / heads); the mid
/// block uses the last level's values and the up blocks the reversed lists.
public struct UNetConfig: Sendable, Equatable {
    public var inChannels = 4
    public var outChannels = 4
    /// Channels of each level, top (full resolution) first.
    public var blockOutChannels = [320, 640, 1280, 1280]
    /// "CrossAttnDownBlock2D" or "DownBlock2D", one per level.
    public var downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    /// "UpBlock2D" or "CrossAttnUpBlock2D", one per level, bottom (lowest resolution) first.
    public var upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    /// Resnets per down level (up levels have one more), per level, top first.
    public var layersPerBlock = [2, 2, 2, 2]
    /// Attention heads per level, top first (see the type's note on `attention_head_dim`).
    public var heads = [8, 8, 8, 8]
    /// Transformer blocks per Transformer2DModel, per level, top first.
    public var transformerLayersPerBlock = [1, 1, 1, 1]
    public var crossAttentionDim = 1280
    /// Linear proj_in / proj_out (SD2) instead of 1×1 convolutions (SD1).
    public var useLinearProjection = false
    public var normNumGroups = 32
    /// Epsilon of the resnets' and the output's GroupNorm (the transformers' GroupNorm uses 1e-6 and
    /// their LayerNorms 1e-5, fixed by diffusers).
    public var normEps: Float = 1e-5
    public var flipSinToCos = true
    public var freqShift: Float = 0
    /// Width of the time embedding (diffusers' `time_embedding_dim`; default 4 × the top level's channels).
    public var timeEmbeddingDim: Int? = nil
    /// Padding of the stride-2 downsampling convolutions (0: diffusers pads right/bottom by one).
    public var downsamplePadding = 1
    public var convInKernel = 3
    public var convOutKernel = 3
    /// fp16-only in diffusers (scores upcast to fp32); this port computes in fp32 either way.
    public var upcastAttention = false
    public var sampleSize: Int? = nil

    public init() {}

    /// The Stable Diffusion 2 UNet (stabilityai/stable-diffusion-2 `unet/config.json`), 865,910,724
    /// parameters — the UNet of Hunyuan3D-1.0's lite multi-view diffusion.
    public static var stableDiffusion2: UNetConfig {
        var c = UNetConfig()
        c.heads = [5, 10, 20, 20]
        c.crossAttentionDim = 1024
        c.useLinearProjection = true
        c.sampleSize = 96
        return c
    }

    // MARK: derived sizes

    public var levels: Int { blockOutChannels.count }
    public var timeEmbedDim: Int { timeEmbeddingDim ?? 4 * blockOutChannels[0] }
    /// Whether down level i has cross-attention transformers.
    public func downHasAttention(_ i: Int) -> Bool { downBlockTypes[i] == "CrossAttnDownBlock2D" }
    /// Whether up block i (bottom first) has cross-attention transformers.
    public func upHasAttention(_ i: Int) -> Bool { upBlockTypes[i] == "CrossAttnUpBlock2D" }
    /// H and W of a sample must be multiples of this (2^(levels − 1)).
    public var sizeMultiple: Int { 1 << (levels - 1) }

    /// Checks the cross-field constraints; `HYError.unsupported` / `.format` naming the key.
    public func validate(context: String = "UNet config") throws {
        let n = levels
        func bad(_ m: String) -> HYError { HYError.format("\(context): \(m)") }
        guard n >= 1 else { throw bad("block_out_channels is empty") }
        guard downBlockTypes.count == n else { throw bad("down_block_types has \(downBlockTypes.count) entries, block_out_channels \(n)") }
        guard upBlockTypes.count == n else { throw bad("up_block_types has \(upBlockTypes.count) entries, block_out_channels \(n)") }
        for t in downBlockTypes where t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
            throw HYError.unsupported("\(context): down_block_types: \(t) is not supported (CrossAttnDownBlock2D, DownBlock2D)")
        }
        for t in upBlockTypes where t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
            throw HYError.unsupported("\(context): up_block_types: \(t) is not supported (CrossAttnUpBlock2D, UpBlock2D)")
        }
        for (key, list) in [("layers_per_block", layersPerBlock), ("attention_head_dim", heads),
                            ("transformer_layers_per_block", transformerLayersPerBlock)] where list.count != n {
            throw bad("\(key) has \(list.count) entries, block_out_channels \(n)")
        }
        guard normNumGroups > 0 else { throw bad("norm_num_groups must be > 0") }
        for (i, c) in blockOutChannels.enumerated() {
            guard c > 0, c % normNumGroups == 0 else {
                throw bad("block_out_channels[\(i)] = \(c) is not a positive multiple of norm_num_groups \(normNumGroups)")
            }
            guard heads[i] > 0, c % heads[i] == 0 else {
                throw bad("block_out_channels[\(i)] = \(c) is not a multiple of the \(heads[i]) heads (attention_head_dim[\(i)])")
            }
            guard layersPerBlock[i] >= 1 else { throw bad("layers_per_block[\(i)] must be ≥ 1") }
            guard transformerLayersPerBlock[i] >= 1 else { throw bad("transformer_layers_per_block[\(i)] must be ≥ 1") }
        }
        guard inChannels > 0, outChannels > 0, crossAttentionDim > 0, timeEmbedDim > 0 else {
            throw bad("in_channels, out_channels, cross_attention_dim and time_embedding_dim must be > 0")
        }
        guard convInKernel % 2 == 1, convOutKernel % 2 == 1 else {
            throw HYError.unsupported("\(context): conv_in_kernel / conv_out_kernel must be odd")
        }
        guard downsamplePadding == 0 || downsamplePadding == 1 else {
            throw HYError.unsupported("\(context): downsample_padding \(downsamplePadding) is not supported (0 or 1)")
        }
    }
}

extension UNetConfig: Decodable {
    private enum Keys: String, CodingKey {
        case in_channels, out_channels, block_out_channels, down_block_types, up_block_types, mid_block_type
        case layers_per_block, attention_head_dim, num_attention_heads, transformer_layers_per_block
        case reverse_transformer_layers_per_block, cross_attention_dim, use_linear_projection, norm_num_groups, norm_eps
        case flip_sin_to_cos, freq_shift, downsample_padding, conv_in_kernel, conv_out_kernel, upcast_attention
        case sample_size, act_fn, only_cross_attention, mid_block_only_cross_attention, resnet_time_scale_shift
        case class_embed_type, num_class_embeds, class_embeddings_concat, addition_embed_type, encoder_hid_dim
        case encoder_hid_dim_type, time_cond_proj_dim, time_embedding_type, time_embedding_dim
        case time_embedding_act_fn, timestep_post_act, center_input_sample, dual_cross_attention, attention_type
        case cross_attention_norm, mid_block_scale_factor, resnet_out_scale_factor, resnet_skip_time_act
    }

    /// An integer or a list of integers (diffusers accepts both for per-level values).
    private enum IntOrList: Decodable {
        case int(Int), list([Int])
        init(from d: Decoder) throws {
            if let i = try? d.singleValueContainer().decode(Int.self) { self = .int(i); return }
            self = .list(try [Int](from: d))
        }
        func perLevel(_ n: Int) -> [Int] {
            switch self {
            case .int(let i): return Array(repeating: i, count: n)
            case .list(let l): return l
            }
        }
    }

    public init(from decoder: Decoder) throws {
        self.init()
        let k = try decoder.container(keyedBy: Keys.self)
        let ctx = "UNet config"
        func unsupported(_ key: Keys, _ value: String, _ supported: String) -> HYError {
            HYError.unsupported("\(ctx): \(key.rawValue) = \(value) is not supported (only \(supported))")
        }
        func requireNull(_ key: Keys) throws {
            if !(try k.decodeNil(forKey: key)) {
                let shown = (try? k.decode(String.self, forKey: key)).map { "\"\($0)\"" }
                    ?? (try? k.decode(Double.self, forKey: key)).map { "\($0)" }
                    ?? (try? k.decode([Int].self, forKey: key)).map { "\($0)" } ?? "non-null"
                throw unsupported(key, shown, "null")
            }
        }
        func requireString(_ key: Keys, _ allowed: [String?]) throws {
            let v = try k.decodeIfPresent(String.self, forKey: key)
            guard allowed.contains(v) else { throw unsupported(key, v.map { "\"\($0)\"" } ?? "null", allowed.map { $0 ?? "null" }.joined(separator: ", ")) }
        }
        func requireBool(_ key: Keys, _ allowed: Bool) throws {
            if let v = try k.decodeIfPresent(Bool.self, forKey: key), v != allowed { throw unsupported(key, "\(v)", "\(allowed)") }
        }
        func requireNumber(_ key: Keys, _ allowed: Double) throws {
            if let v = try k.decodeIfPresent(Double.self, forKey: key), v != allowed { throw unsupported(key, "\(v)", "\(allowed)") }
        }

        inChannels = try k.decode(.in_channels, default: inChannels)
        outChannels = try k.decode(.out_channels, default: outChannels)
        blockOutChannels = try k.decode(.block_out_channels, default: blockOutChannels)
        let n = blockOutChannels.count
        downBlockTypes = try k.decode(.down_block_types, default: downBlockTypes)
        upBlockTypes = try k.decode(.up_block_types, default: upBlockTypes)
        layersPerBlock = try k.decodeIfPresent(IntOrList.self, forKey: .layers_per_block)?.perLevel(n) ?? [Int](repeating: 2, count: n)
        try requireNull(.num_attention_heads)   // diffusers itself refuses it (issue #2011)
        heads = try k.decodeIfPresent(IntOrList.self, forKey: .attention_head_dim)?.perLevel(n) ?? [Int](repeating: 8, count: n)
        if k.contains(.transformer_layers_per_block) {
            guard let t = try? k.decode(IntOrList.self, forKey: .transformer_layers_per_block) else {
                throw unsupported(.transformer_layers_per_block, "a nested list", "an integer or a list of integers")
            }
            transformerLayersPerBlock = t.perLevel(n)
        } else {
            transformerLayersPerBlock = [Int](repeating: 1, count: n)
        }
        try requireNull(.reverse_transformer_layers_per_block)
        if k.contains(.cross_attention_dim), !(try k.decodeNil(forKey: .cross_attention_dim)) {
            guard let c = try? k.decode(Int.self, forKey: .cross_attention_dim) else {
                throw unsupported(.cross_attention_dim, "a list", "one integer")
            }
            crossAttentionDim = c
        }
        useLinearProjection = try k.decode(.use_linear_projection, default: useLinearProjection)
        guard let groups = try k.decodeIfPresent(Int.self, forKey: .norm_num_groups) ?? (k.contains(.norm_num_groups) ? nil : 32) else {
            throw unsupported(.norm_num_groups, "null", "an integer")
        }
        normNumGroups = groups
        normEps = try k.decode(.norm_eps, default: normEps)
        flipSinToCos = try k.decode(.flip_sin_to_cos, default: flipSinToCos)
        freqShift = try k.decode(.freq_shift, default: freqShift)
        timeEmbeddingDim = try k.decodeIfPresent(Int.self, forKey: .time_embedding_dim)
        downsamplePadding = try k.decode(.downsample_padding, default: downsamplePadding)
        convInKernel = try k.decode(.conv_in_kernel, default: convInKernel)
        convOutKernel = try k.decode(.conv_out_kernel, default: convOutKernel)
        upcastAttention = try k.decode(.upcast_attention, default: upcastAttention)
        sampleSize = try? k.decodeIfPresent(Int.self, forKey: .sample_size)

        // What this port does not implement.
        if k.contains(.mid_block_type) {   // absent: diffusers' default; null: no mid block
            try requireString(.mid_block_type, ["UNetMidBlock2DCrossAttn"])
        }
        try requireString(.act_fn, ["silu", "swish", nil])
        try requireString(.resnet_time_scale_shift, ["default", nil])
        try requireString(.time_embedding_type, ["positional", nil])
        try requireString(.attention_type, ["default", nil])
        for key in [Keys.class_embed_type, .num_class_embeds, .addition_embed_type, .encoder_hid_dim, .encoder_hid_dim_type,
                    .time_cond_proj_dim, .time_embedding_act_fn, .timestep_post_act, .cross_attention_norm] {
            try requireNull(key)
        }
        if k.contains(.only_cross_attention), !(try k.decodeNil(forKey: .only_cross_attention)) {
            if let b = try? k.decode(Bool.self, forKey: .only_cross_attention) {
                if b { throw unsupported(.only_cross_attention, "true", "false") }
            } else if let l = try? k.decode([Bool].self, forKey: .only_cross_attention) {
                if l.contains(true) { throw unsupported(.only_cross_attention, "\(l)", "false") }
            } else {
                throw unsupported(.only_cross_attention, "a non-boolean", "false")
            }
        }
        if k.contains(.mid_block_only_cross_attention), !(try k.decodeNil(forKey: .mid_block_only_cross_attention)) {
            try requireBool(.mid_block_only_cross_attention, false)
        }
        try requireBool(.class_embeddings_concat, false)
        try requireBool(.center_input_sample, false)
        try requireBool(.dual_cross_attention, false)
        try requireBool(.resnet_skip_time_act, false)
        try requireNumber(.mid_block_scale_factor, 1)
        try requireNumber(.resnet_out_scale_factor, 1)
        try validate(context: ctx)
    }
}

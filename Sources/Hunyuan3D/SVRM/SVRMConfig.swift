import HunyuanNN

/// Sizes and conventions of the Hunyuan3D-1.0 sparse-view reconstruction model (SVRM).
///
/// Defaults are the released model's: `svrm/configs/svrm.yaml` (triplane transformer and renderer)
/// plus the DINOv2 ViT-B/14 constructor defaults (`encoders/dinov2/hub/backbones.py:18-31`) and the
/// predictor's 504 px input (`svrm/predictor.py:51-55`). A checkpoint folder may carry a `config.json`
/// in the key names of the yaml (`model.params.img_encoder_config` / `img_to_triplane_config` /
/// `render_config`), with the ViT keywords under `img_encoder_config.vit_kwargs` and the input size
/// under `shapes.input_size` (the layout of the svrm fixtures); absent keys keep the defaults.
public struct SVRMConfig: Sendable, Equatable {
    // Image encoder (DINOv2 with camera-modulated AdaNorm).
    /// Size of the position table's image (518 → a 37×37 table + CLS).
    public var encoderTableImageSize = 518
    public var patchSize = 14
    public var inChannels = 3
    public var encoderWidth = 768
    public var encoderDepth = 12
    public var encoderHeads = 12
    public var encoderMLPRatio = 4.0
    public var interpolateOffset = 0.1
    public var cameraDim = 20
    public var adaNormEps: Float = 1e-6

    // Triplane transformer + upsampler (`translator/img_to_triplane.py`).
    /// Triplane query grid side P (3·P² learned queries).
    public var triplaneQuerySize = 64
    /// Query width W.
    public var triplaneWidth = 1024
    public var triplaneHeads = 16
    public var triplaneHeadDim = 64
    public var triplaneDepth = 16
    /// Triplane channels C.
    public var triplaneChannels = 120
    /// Pixel-shuffle factor of the Linear upsampler (`img_to_triplane.py:91`).
    public var upsampleRatio = 4
    public var feedForwardMult = 4
    public var blockLayerNormEps: Float = 1e-5
    public var finalLayerNormEps: Float = 1e-6

    // Decoder (`rendering_neus/synthesizer.py` OSGDecoder) and box.
    public var decoderHidden = 64
    /// Linear layers in the decoder MLP (≥ 2).
    public var decoderLayers = 2
    /// Optional sphere prior: sdf += |p| − radius (the official `OSGDecoder.get_shifted_sdf`,
    /// `synthesizer.py:119-128`, which the released model leaves disabled). Our key
    /// `render_config.decoder.sphere_prior_radius`; used for random-weight test models only.
    public var spherePriorRadius: Double? = nil
    public var boxWarp = 1.2
    public var boxMin = -0.6
    public var boxMax = 0.6

    // Inputs (`svrm/predictor.py`).
    public var numViews = 7
    public var imageSize = 504

    public init() {}

    // MARK: derived sizes
    /// Position-table side N (img_size / patch).
    public var tableGrid: Int { encoderTableImageSize / patchSize }
    /// Patches per side g of an input image.
    public var patchGrid: Int { imageSize / patchSize }
    public var tokensPerView: Int { 1 + patchGrid * patchGrid }
    public var encoderMLPHidden: Int { Int(Double(encoderWidth) * encoderMLPRatio) }
    public var triplaneQueries: Int { 3 * triplaneQuerySize * triplaneQuerySize }
    public var triplaneInner: Int { triplaneHeads * triplaneHeadDim }
    public var triplaneResolution: Int { triplaneQuerySize * upsampleRatio }
    public var decoderInputs: Int { 3 * triplaneChannels }
    /// (in, out) of each decoder Linear (checkpoint `net.0`, `net.2`, …, ReLUs in between).
    public var decoderLayerShapes: [(Int, Int)] {
        var s = [(decoderInputs, decoderHidden)]
        for _ in 0..<max(0, decoderLayers - 2) { s.append((decoderHidden, decoderHidden)) }
        s.append((decoderHidden, 4))
        return s
    }

    /// Reads `config.json` from a checkpoint folder (or next to a checkpoint file); the defaults when
    /// there is none. Malformed values are `HYError.format` naming the file and key.
    public static func load(checkpointPath path: String) throws -> SVRMConfig {
        let dir: String
        if FileSystem.isDirectory(path) {
            dir = path
        } else if let slash = path.lastIndex(of: "/") {
            dir = String(path[..<slash])
        } else {
            dir = "."
        }
        let file = FileSystem.join(dir, "config.json")
        guard FileSystem.exists(file) else { return SVRMConfig() }
        let mapped = try MappedFile(path: file)
        let json = try withExtendedLifetime(mapped) { try JSONValue.parse(mapped.bytes, context: file) }
        return try SVRMConfig(json: json, context: file)
    }

    /// Decodes the fixture / yaml layout described above.
    public init(json: JSONValue, context: String) throws {
        self.init()
        guard case .object = json else { throw HYError.format("\(context): not a JSON object") }
        let params = json["model"]?["params"] ?? json
        let r = Reader(context: context)
        if let enc = params["img_encoder_config"] {
            if let v = enc["params"]?["version"]?.stringValue, v != "dinov2_vitb14" {
                throw HYError.unsupported("\(context): image encoder version \(v) (only dinov2_vitb14 is implemented)")
            }
            if let vk = enc["vit_kwargs"] {
                encoderTableImageSize = try r.int(vk, "img_size", encoderTableImageSize)
                patchSize = try r.int(vk, "patch_size", patchSize)
                inChannels = try r.int(vk, "in_chans", inChannels)
                encoderWidth = try r.int(vk, "embed_dim", encoderWidth)
                encoderDepth = try r.int(vk, "depth", encoderDepth)
                encoderHeads = try r.int(vk, "num_heads", encoderHeads)
                encoderMLPRatio = try r.double(vk, "mlp_ratio", encoderMLPRatio)
                interpolateOffset = try r.double(vk, "interpolate_offset", interpolateOffset)
                cameraDim = try r.int(vk, "cam_cond_dim", cameraDim)
                if let regs = vk["num_register_tokens"]?.intValue, regs != 0 {
                    throw HYError.unsupported("\(context): num_register_tokens \(regs) (the SVRM encoder has none)")
                }
                if let aa = vk["interpolate_antialias"]?.boolValue, aa {
                    throw HYError.unsupported("\(context): interpolate_antialias true (the SVRM encoder uses false)")
                }
                if let f = vk["ffn_layer"]?.stringValue, f != "mlp" {
                    throw HYError.unsupported("\(context): ffn_layer \(f) (only mlp is implemented)")
                }
            }
            adaNormEps = Float(try r.double(enc, "adanorm_eps", Double(adaNormEps)))
        }
        if let tri = params["img_to_triplane_config"] {
            let p = tri["params"] ?? .object([])
            triplaneQuerySize = try r.int(p, "pos_emb_size", triplaneQuerySize)
            triplaneWidth = try r.int(p, "pos_emb_dim", triplaneWidth)
            triplaneHeads = try r.int(p, "n_heads", triplaneHeads)
            triplaneHeadDim = try r.int(p, "d_head", triplaneHeadDim)
            triplaneDepth = try r.int(p, "depth", triplaneDepth)
            triplaneChannels = try r.int(p, "triplane_dim", triplaneChannels)
            if let cd = p["context_dim"]?.intValue, cd != Int64(encoderWidth) {
                throw HYError.format("\(context): context_dim \(cd) differs from the encoder width \(encoderWidth)")
            }
            upsampleRatio = try r.int(tri, "upsample_ratio", upsampleRatio)
            feedForwardMult = try r.int(tri, "ff_mult", feedForwardMult)
            blockLayerNormEps = Float(try r.double(tri, "block_layernorm_eps", Double(blockLayerNormEps)))
            finalLayerNormEps = Float(try r.double(tri, "final_layernorm_eps", Double(finalLayerNormEps)))
        }
        if let ren = params["render_config"] {
            if let c = ren["params"]?["triplane_dim"]?.intValue, c != Int64(triplaneChannels) {
                throw HYError.format("\(context): render triplane_dim \(c) differs from the translator's \(triplaneChannels)")
            }
            if let d = ren["decoder"] {
                decoderHidden = try r.int(d, "hidden_dim", decoderHidden)
                decoderLayers = try r.int(d, "num_layers", decoderLayers)
                if d["sphere_prior_radius"] != nil {
                    spherePriorRadius = try r.double(d, "sphere_prior_radius", 0)
                }
            }
            if let k = ren["rendering_kwargs"] {
                boxWarp = try r.double(k, "box_warp", boxWarp)
                boxMin = try r.double(k, "sampler_bbox_min", boxMin)
                boxMax = try r.double(k, "sampler_bbox_max", boxMax)
            }
        }
        if let s = json["shapes"] {
            imageSize = try r.int(s, "input_size", imageSize)
            numViews = try r.int(s, "num_views", numViews)
        }
        try validate(context: context)
    }

    /// Checks that every size is positive and consistent.
    public func validate(context: String) throws {
        let positives: [(String, Int)] = [
            ("img_size", encoderTableImageSize), ("patch_size", patchSize), ("in_chans", inChannels),
            ("embed_dim", encoderWidth), ("depth", encoderDepth), ("num_heads", encoderHeads),
            ("cam_cond_dim", cameraDim), ("pos_emb_size", triplaneQuerySize), ("pos_emb_dim", triplaneWidth),
            ("n_heads", triplaneHeads), ("d_head", triplaneHeadDim), ("triplane depth", triplaneDepth),
            ("triplane_dim", triplaneChannels), ("upsample_ratio", upsampleRatio), ("ff_mult", feedForwardMult),
            ("hidden_dim", decoderHidden), ("input_size", imageSize), ("num_views", numViews),
        ]
        for (name, v) in positives where v <= 0 || v > 1 << 20 {
            throw HYError.format("\(context): \(name) = \(v) is out of range")
        }
        guard encoderWidth % encoderHeads == 0 else {
            throw HYError.format("\(context): embed_dim \(encoderWidth) is not a multiple of num_heads \(encoderHeads)")
        }
        guard decoderLayers >= 2 && decoderLayers <= 64 else {
            throw HYError.format("\(context): decoder num_layers \(decoderLayers) (2...64 expected)")
        }
        guard encoderMLPRatio > 0 && encoderMLPRatio <= 64 else { throw HYError.format("\(context): mlp_ratio \(encoderMLPRatio)") }
        guard interpolateOffset.magnitude < 1e6 else { throw HYError.format("\(context): interpolate_offset \(interpolateOffset)") }
        guard boxWarp > 0, boxMax > boxMin else { throw HYError.format("\(context): box_warp / sampler box invalid") }
        guard tableGrid >= 1, imageSize % patchSize == 0 else {
            throw HYError.format("\(context): input size \(imageSize) is not a multiple of the patch size \(patchSize)")
        }
    }

    private struct Reader {
        let context: String
        func int(_ obj: JSONValue, _ key: String, _ def: Int) throws -> Int {
            guard let v = obj[key] else { return def }
            guard let i = v.intValue, i > Int64(Int32.min), i < Int64(Int32.max) else {
                throw HYError.format("\(context): \(key) is not an integer")
            }
            return Int(i)
        }
        func double(_ obj: JSONValue, _ key: String, _ def: Double) throws -> Double {
            guard let v = obj[key] else { return def }
            guard let d = v.doubleValue, d.isFinite else { throw HYError.format("\(context): \(key) is not a number") }
            return d
        }
    }
}

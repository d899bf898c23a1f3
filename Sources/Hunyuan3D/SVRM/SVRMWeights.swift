import HunyuanNN

/// The SVRM's weights under the official state-dict names of `svrm.ldm.models.svrm.SVRMModel` (which
/// `svrm/predictor.py:61-62` loads strictly from `svrm.safetensors`). `SVRMWeights.table(for:)` is the
/// one place names and shapes are written down; loading checks every tensor against it (a missing,
/// unexpected, mis-shaped or non-float tensor is `HYError.format` naming it) and widens f32/f16/bf16
/// to fp32 once. Immutable after load; shareable across threads.
public struct SVRMWeights: @unchecked Sendable {
    /// AdaNorm's modulation: [shift | scale] = Linear(D, 2D)(SiLU(cam_emb)) (`attention.py:367-390`).
    public struct AdaNorm: Sendable { public let modulation: Linear }

    public struct EncoderBlock: Sendable {
        public let norm1: AdaNorm, qkv: Linear, proj: Linear, ls1: [Float]
        public let norm2: AdaNorm, fc1: Linear, fc2: Linear, ls2: [Float]
    }

    public struct Encoder: Sendable {
        public let clsToken: [Float]            // [D]
        public let posEmbed: [Float]            // [1 + N², D]
        public let patchEmbed: Linear       // Conv2d(3, D, p, stride p) as [D, 3·p·p]
        public let camEmbed0: Linear        // Linear(20, D)
        public let camEmbed2: Linear        // Linear(D, D)
        public let blocks: [EncoderBlock]
        public let norm: AdaNorm
    }

    public struct TriplaneBlock: Sendable {
        public let norm1W: [Float], norm1B: [Float]
        public let crossQ: Linear, crossK: Linear, crossV: Linear, crossOut: Linear
        public let norm2W: [Float], norm2B: [Float]
        public let selfQ: Linear, selfK: Linear, selfV: Linear, selfOut: Linear
        public let norm3W: [Float], norm3B: [Float]
        public let ffProj: Linear           // GEGLU: Linear(W, 2·mult·W)
        public let ffOut: Linear            // Linear(mult·W, W)
    }

    public struct Triplane: Sendable {
        public let posEmb: [Float]              // [3·P², W]
        public let blocks: [TriplaneBlock]
        public let normW: [Float], normB: [Float]
        public let upsampler: Linear        // Linear(W, C·r²)
    }

    public let encoder: Encoder
    public let triplane: Triplane
    /// Decoder MLP layers: Linear(3C, H) → ReLU → … → Linear(H, 4).
    public let decoder: [Linear]

    static let encPrefix = "img_encoder.model."
    static let triPrefix = "img_to_triplane_decoder."
    static let triBlocks = "img_to_triplane_decoder.img_to_triplane_decoder.transformer_blocks."

    /// Every tensor of the checkpoint with its expected shape, in the official names.
    public static func table(for c: SVRMConfig) -> [(String, [Int])] {
        let d = c.encoderWidth, e = encPrefix
        var t: [(String, [Int])] = [
            (e + "cls_token", [1, 1, d]),
            (e + "pos_embed", [1, 1 + c.tableGrid * c.tableGrid, d]),
            (e + "mask_token", [1, d]),
            (e + "cam_embed.0.weight", [d, c.cameraDim]), (e + "cam_embed.0.bias", [d]),
            (e + "cam_embed.2.weight", [d, d]), (e + "cam_embed.2.bias", [d]),
            (e + "patch_embed.proj.weight", [d, c.inChannels, c.patchSize, c.patchSize]),
            (e + "patch_embed.proj.bias", [d]),
        ]
        for i in 0..<c.encoderDepth {
            let b = e + "blocks.\(i)."
            t += [
                (b + "norm1.adaLN_modulation.1.weight", [2 * d, d]), (b + "norm1.adaLN_modulation.1.bias", [2 * d]),
                (b + "attn.qkv.weight", [3 * d, d]), (b + "attn.qkv.bias", [3 * d]),
                (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d]),
                (b + "ls1.gamma", [d]),
                (b + "norm2.adaLN_modulation.1.weight", [2 * d, d]), (b + "norm2.adaLN_modulation.1.bias", [2 * d]),
                (b + "mlp.fc1.weight", [c.encoderMLPHidden, d]), (b + "mlp.fc1.bias", [c.encoderMLPHidden]),
                (b + "mlp.fc2.weight", [d, c.encoderMLPHidden]), (b + "mlp.fc2.bias", [d]),
                (b + "ls2.gamma", [d]),
            ]
        }
        t += [(e + "norm.adaLN_modulation.1.weight", [2 * d, d]), (e + "norm.adaLN_modulation.1.bias", [2 * d])]

        let w = c.triplaneWidth, inner = c.triplaneInner, ff = c.feedForwardMult * w
        t.append((triPrefix + "pos_emb", [1, c.triplaneQueries, w]))
        for i in 0..<c.triplaneDepth {
            let b = triBlocks + "\(i)."
            t += [
                (b + "attn1.to_q.weight", [inner, w]), (b + "attn1.to_k.weight", [inner, d]),
                (b + "attn1.to_v.weight", [inner, d]),
                (b + "attn1.to_out.0.weight", [w, inner]), (b + "attn1.to_out.0.bias", [w]),
                (b + "attn2.to_q.weight", [inner, w]), (b + "attn2.to_k.weight", [inner, w]),
                (b + "attn2.to_v.weight", [inner, w]),
                (b + "attn2.to_out.0.weight", [w, inner]), (b + "attn2.to_out.0.bias", [w]),
                (b + "norm1.weight", [w]), (b + "norm1.bias", [w]),
                (b + "norm2.weight", [w]), (b + "norm2.bias", [w]),
                (b + "norm3.weight", [w]), (b + "norm3.bias", [w]),
                (b + "ff.net.0.proj.weight", [2 * ff, w]), (b + "ff.net.0.proj.bias", [2 * ff]),
                (b + "ff.net.2.weight", [w, ff]), (b + "ff.net.2.bias", [w]),
            ]
        }
        let up = c.triplaneChannels * c.upsampleRatio * c.upsampleRatio
        t += [
            (triPrefix + "img_to_triplane_decoder.norm.weight", [w]),
            (triPrefix + "img_to_triplane_decoder.norm.bias", [w]),
            (triPrefix + "upsampler.weight", [up, w]), (triPrefix + "upsampler.bias", [up]),
            ("render.renderer.ray_marcher.variance._inv_std", []),
        ]
        for (i, (n, m)) in decoderLayerShapes(c).enumerated() {
            t += [("render.decoder.net.\(2 * i).weight", [m, n]), ("render.decoder.net.\(2 * i).bias", [m])]
        }
        return t
    }

    /// (in, out) of each decoder Linear; they sit at `net.0`, `net.2`, … (ReLUs in between).
    static func decoderLayerShapes(_ c: SVRMConfig) -> [(Int, Int)] {
        var s = [(c.decoderInputs, c.decoderHidden)]
        for _ in 0..<(c.decoderLayers - 2) { s.append((c.decoderHidden, c.decoderHidden)) }
        s.append((c.decoderHidden, 4))
        return s
    }

    /// Validates `checkpoint` against the table and loads it.
    public init(checkpoint ck: Checkpoint, config c: SVRMConfig) throws {
        let table = Self.table(for: c)
        var byName: [String: Tensor] = [:]
        for (name, shape) in table {
            guard let t = ck.tensor(name) else { throw HYError.format("\(ck.path): missing tensor \(name)") }
            guard t.shape == shape else {
                throw HYError.format("\(ck.path): tensor \(name) has shape \(t.shape), expected \(shape)")
            }
            guard t.dtype == .f32 || t.dtype == .f16 || t.dtype == .bf16 else {
                throw HYError.unsupported("\(ck.path): tensor \(name) is \(t.dtype.safetensorsName) (f32, f16 or bf16 expected)")
            }
            byName[name] = t
        }
        if ck.tensors.count != table.count {
            let known = Set(table.map(\.0))
            let extra = ck.names.filter { !known.contains($0) }
            throw HYError.format("\(ck.path): unexpected tensor\(extra.count == 1 ? "" : "s") \(extra.prefix(5).joined(separator: ", "))"
                                 + (extra.count > 5 ? " (and \(extra.count - 5) more)" : "") + " for this SVRM configuration")
        }
        func t(_ n: String) throws -> Tensor {
            guard let x = byName[n] else { throw HYError.internal("SVRM weight table has no entry \(n)") }
            return x
        }
        func vec(_ n: String) throws -> [Float] { try t(n).floats() }
        func dense(_ n: String, _ i: Int, _ o: Int, bias: Bool = true) throws -> Linear {
            try Linear(weight: t(n + ".weight"), bias: bias ? try t(n + ".bias") : nil, inFeatures: i, outFeatures: o)
        }
        let d = c.encoderWidth, e = Self.encPrefix
        func ada(_ n: String) throws -> AdaNorm { AdaNorm(modulation: try dense(n + ".adaLN_modulation.1", d, 2 * d)) }

        let pw = try t(e + "patch_embed.proj.weight")
        let kIn = c.inChannels * c.patchSize * c.patchSize
        let patchFlat = Tensor(name: pw.name, dtype: pw.dtype, shape: [d, kIn], data: pw.data, owner: pw.owner)
        var blocks: [EncoderBlock] = []
        for i in 0..<c.encoderDepth {
            let b = e + "blocks.\(i)."
            blocks.append(EncoderBlock(
                norm1: try ada(b + "norm1"), qkv: try dense(b + "attn.qkv", d, 3 * d), proj: try dense(b + "attn.proj", d, d),
                ls1: try vec(b + "ls1.gamma"), norm2: try ada(b + "norm2"),
                fc1: try dense(b + "mlp.fc1", d, c.encoderMLPHidden), fc2: try dense(b + "mlp.fc2", c.encoderMLPHidden, d),
                ls2: try vec(b + "ls2.gamma")))
        }
        encoder = Encoder(
            clsToken: try vec(e + "cls_token"), posEmbed: try vec(e + "pos_embed"),
            patchEmbed: try Linear(weight: patchFlat, bias: try t(e + "patch_embed.proj.bias"), inFeatures: kIn, outFeatures: d),
            camEmbed0: try dense(e + "cam_embed.0", c.cameraDim, d), camEmbed2: try dense(e + "cam_embed.2", d, d),
            blocks: blocks, norm: try ada(e + "norm"))

        let w = c.triplaneWidth, inner = c.triplaneInner, ff = c.feedForwardMult * w
        var tblocks: [TriplaneBlock] = []
        for i in 0..<c.triplaneDepth {
            let b = Self.triBlocks + "\(i)."
            tblocks.append(TriplaneBlock(
                norm1W: try vec(b + "norm1.weight"), norm1B: try vec(b + "norm1.bias"),
                crossQ: try dense(b + "attn1.to_q", w, inner, bias: false), crossK: try dense(b + "attn1.to_k", d, inner, bias: false),
                crossV: try dense(b + "attn1.to_v", d, inner, bias: false), crossOut: try dense(b + "attn1.to_out.0", inner, w),
                norm2W: try vec(b + "norm2.weight"), norm2B: try vec(b + "norm2.bias"),
                selfQ: try dense(b + "attn2.to_q", w, inner, bias: false), selfK: try dense(b + "attn2.to_k", w, inner, bias: false),
                selfV: try dense(b + "attn2.to_v", w, inner, bias: false), selfOut: try dense(b + "attn2.to_out.0", inner, w),
                norm3W: try vec(b + "norm3.weight"), norm3B: try vec(b + "norm3.bias"),
                ffProj: try dense(b + "ff.net.0.proj", w, 2 * ff), ffOut: try dense(b + "ff.net.2", ff, w)))
        }
        let tp = Self.triPrefix
        triplane = Triplane(
            posEmb: try vec(tp + "pos_emb"), blocks: tblocks,
            normW: try vec(tp + "img_to_triplane_decoder.norm.weight"), normB: try vec(tp + "img_to_triplane_decoder.norm.bias"),
            upsampler: try dense(tp + "upsampler", w, c.triplaneChannels * c.upsampleRatio * c.upsampleRatio))

        decoder = try Self.decoderLayerShapes(c).enumerated().map { i, s in
            try dense("render.decoder.net.\(2 * i)", s.0, s.1)
        }
    }
}

import HunyuanNN

/// The SVRM's tensors under the official state-dict names of `svrm.ldm.models.svrm.SVRMModel` (which
/// `svrm/predictor.py:61-62` loads strictly from `svrm.safetensors`), generic over what a declared
/// tensor becomes (`WeightBinder`): `declare(_:_:)` is the one place names and shapes are written
/// down. `SVRMWeights` is the loaded form: every tensor present with its shape and none left over
/// (`HYError.format` naming it), matrices used in their stored format (f32/f16/bf16, or quantized),
/// vectors as fp32. Immutable after load; shareable across threads.
public struct SVRMWeightSet<M, V> {
    /// AdaNorm's modulation: [shift | scale] = Linear(D, 2D)(SiLU(cam_emb)) (`attention.py:367-390`).
    public struct AdaNorm { public let modulation: LinearLayer<M, V> }

    public struct EncoderBlock {
        public let norm1: AdaNorm, qkv: LinearLayer<M, V>, proj: LinearLayer<M, V>, ls1: V
        public let norm2: AdaNorm, fc1: LinearLayer<M, V>, fc2: LinearLayer<M, V>, ls2: V
    }

    public struct Encoder {
        public let clsToken: V                  // [1, 1, D]
        public let posEmbed: V                  // [1, 1 + N², D]
        public let maskToken: V                 // [1, D] (unused at inference)
        public let patchEmbed: LinearLayer<M, V>  // Conv2d(3, D, p, stride p) as [D, 3·p·p]
        public let camEmbed0: LinearLayer<M, V>   // Linear(20, D)
        public let camEmbed2: LinearLayer<M, V>   // Linear(D, D)
        public let blocks: [EncoderBlock]
        public let norm: AdaNorm
    }

    public struct TriplaneBlock {
        public let crossQ: LinearLayer<M, V>, crossK: LinearLayer<M, V>, crossV: LinearLayer<M, V>, crossOut: LinearLayer<M, V>
        public let selfQ: LinearLayer<M, V>, selfK: LinearLayer<M, V>, selfV: LinearLayer<M, V>, selfOut: LinearLayer<M, V>
        public let norm1W: V, norm1B: V
        public let norm2W: V, norm2B: V
        public let norm3W: V, norm3B: V
        public let ffProj: LinearLayer<M, V>      // GEGLU: Linear(W, 2·mult·W)
        public let ffOut: LinearLayer<M, V>       // Linear(mult·W, W)
    }

    public struct Triplane {
        public let posEmb: V                    // [1, 3·P², W]
        public let blocks: [TriplaneBlock]
        public let normW: V, normB: V
        public let upsampler: LinearLayer<M, V>   // Linear(W, C·r²)
    }

    public let encoder: Encoder
    public let triplane: Triplane
    /// The renderer's SDF variance (unused by the mesh path).
    public let invStd: V
    /// Decoder MLP layers: Linear(3C, H) → ReLU → … → Linear(H, 4).
    public let decoder: [LinearLayer<M, V>]
}

extension SVRMWeightSet.AdaNorm: Sendable where M: Sendable, V: Sendable {}
extension SVRMWeightSet.EncoderBlock: Sendable where M: Sendable, V: Sendable {}
extension SVRMWeightSet.Encoder: Sendable where M: Sendable, V: Sendable {}
extension SVRMWeightSet.TriplaneBlock: Sendable where M: Sendable, V: Sendable {}
extension SVRMWeightSet.Triplane: Sendable where M: Sendable, V: Sendable {}
extension SVRMWeightSet: Sendable where M: Sendable, V: Sendable {}

/// The loaded SVRM.
public typealias SVRMWeights = SVRMWeightSet<WeightMatrix, [Float]>

public enum SVRMTensors {
    static let encPrefix = "img_encoder.model."
    static let triPrefix = "img_to_triplane_decoder."
    static let triBlocks = "img_to_triplane_decoder.img_to_triplane_decoder.transformer_blocks."

    /// Every tensor of the checkpoint, in the official names and file order, bound by `b`.
    public static func declare<B: WeightBinder>(_ c: SVRMConfig, _ b: B) throws -> SVRMWeightSet<B.Matrix, B.Vector> {
        typealias Set = SVRMWeightSet<B.Matrix, B.Vector>
        let d = c.encoderWidth, e = encPrefix
        func ada(_ n: String) throws -> Set.AdaNorm { Set.AdaNorm(modulation: try b.linear(n + ".adaLN_modulation.1", in: d, out: 2 * d)) }
        let cls = try b.vector(e + "cls_token", shape: [1, 1, d])
        let pos = try b.vector(e + "pos_embed", shape: [1, 1 + c.tableGrid * c.tableGrid, d])
        let mask = try b.vector(e + "mask_token", shape: [1, d])
        let cam0 = try b.linear(e + "cam_embed.0", in: c.cameraDim, out: d)
        let cam2 = try b.linear(e + "cam_embed.2", in: d, out: d)
        let patch = try b.conv2d(e + "patch_embed.proj", in: c.inChannels, out: d, kernel: (c.patchSize, c.patchSize))
        var blocks: [Set.EncoderBlock] = []
        for i in 0..<c.encoderDepth {
            let p = e + "blocks.\(i)."
            let n1 = try ada(p + "norm1")
            let qkv = try b.linear(p + "attn.qkv", in: d, out: 3 * d), proj = try b.linear(p + "attn.proj", in: d, out: d)
            let ls1 = try b.vector(p + "ls1.gamma", d)
            let n2 = try ada(p + "norm2")
            let fc1 = try b.linear(p + "mlp.fc1", in: d, out: c.encoderMLPHidden)
            let fc2 = try b.linear(p + "mlp.fc2", in: c.encoderMLPHidden, out: d)
            let ls2 = try b.vector(p + "ls2.gamma", d)
            blocks.append(Set.EncoderBlock(norm1: n1, qkv: qkv, proj: proj, ls1: ls1, norm2: n2, fc1: fc1, fc2: fc2, ls2: ls2))
        }
        let encoder = Set.Encoder(clsToken: cls, posEmbed: pos, maskToken: mask, patchEmbed: patch, camEmbed0: cam0,
                                  camEmbed2: cam2, blocks: blocks, norm: try ada(e + "norm"))

        let w = c.triplaneWidth, inner = c.triplaneInner, ff = c.feedForwardMult * w
        let posEmb = try b.vector(triPrefix + "pos_emb", shape: [1, c.triplaneQueries, w])
        var tblocks: [Set.TriplaneBlock] = []
        for i in 0..<c.triplaneDepth {
            let p = triBlocks + "\(i)."
            // attn1 is the cross-attention to the image tokens (keys/values of width D), attn2 the self-attention.
            let cq = try b.linear(p + "attn1.to_q", in: w, out: inner, bias: false)
            let ck = try b.linear(p + "attn1.to_k", in: d, out: inner, bias: false)
            let cv = try b.linear(p + "attn1.to_v", in: d, out: inner, bias: false)
            let co = try b.linear(p + "attn1.to_out.0", in: inner, out: w)
            let sq = try b.linear(p + "attn2.to_q", in: w, out: inner, bias: false)
            let sk = try b.linear(p + "attn2.to_k", in: w, out: inner, bias: false)
            let sv = try b.linear(p + "attn2.to_v", in: w, out: inner, bias: false)
            let so = try b.linear(p + "attn2.to_out.0", in: inner, out: w)
            let n1w = try b.vector(p + "norm1.weight", w), n1b = try b.vector(p + "norm1.bias", w)
            let n2w = try b.vector(p + "norm2.weight", w), n2b = try b.vector(p + "norm2.bias", w)
            let n3w = try b.vector(p + "norm3.weight", w), n3b = try b.vector(p + "norm3.bias", w)
            let ffp = try b.linear(p + "ff.net.0.proj", in: w, out: 2 * ff), ffo = try b.linear(p + "ff.net.2", in: ff, out: w)
            tblocks.append(Set.TriplaneBlock(crossQ: cq, crossK: ck, crossV: cv, crossOut: co, selfQ: sq, selfK: sk, selfV: sv,
                                             selfOut: so, norm1W: n1w, norm1B: n1b, norm2W: n2w, norm2B: n2b, norm3W: n3w,
                                             norm3B: n3b, ffProj: ffp, ffOut: ffo))
        }
        let normW = try b.vector(triPrefix + "img_to_triplane_decoder.norm.weight", w)
        let normB = try b.vector(triPrefix + "img_to_triplane_decoder.norm.bias", w)
        let up = try b.linear(triPrefix + "upsampler", in: w, out: c.triplaneChannels * c.upsampleRatio * c.upsampleRatio)
        let triplane = Set.Triplane(posEmb: posEmb, blocks: tblocks, normW: normW, normB: normB, upsampler: up)
        let invStd = try b.vector("render.renderer.ray_marcher.variance._inv_std", shape: [])
        let decoder = try c.decoderLayerShapes.enumerated().map { i, s in try b.linear("render.decoder.net.\(2 * i)", in: s.0, out: s.1) }
        return Set(encoder: encoder, triplane: triplane, invStd: invStd, decoder: decoder)
    }

    /// The tensor list of a configuration (name, shape), in declaration order.
    public static func table(for c: SVRMConfig) throws -> [(String, [Int])] {
        let t = WeightTable()
        _ = try declare(c, t)
        return t.entries.map { ($0.name, $0.shape) }
    }

}

extension SVRMWeightSet where M == WeightMatrix, V == [Float] {
    /// Validates `checkpoint` against the declaration and loads it.
    public init(checkpoint ck: Checkpoint, config c: SVRMConfig) throws {
        let binder = CheckpointBinder(ck)
        self = try SVRMTensors.declare(c, binder)
        try binder.finish(context: "this SVRM configuration")
    }
}

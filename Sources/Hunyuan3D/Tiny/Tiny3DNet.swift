#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

/// Sizes of `hunyuan3d-tiny`, the built-in text-to-3D model (config.json, snake_case keys): a small
/// text transformer over the built-in tokenizer's ids; a triplane transformer over 3·P² learned
/// tokens whose layers alternate cross-attention to the text (even layers) and self-attention (odd
/// layers); a Linear pixel-shuffle head (as the SVRM's upsampler) that turns each token into a u×u
/// patch of C-channel texels, so the planes are R = P·u texels a side; and the SVRM's triplane decoder
/// (SDF + RGB) in the box [-box, box]³.
public struct Tiny3DConfig: Decodable, Sendable, Equatable {
    public var modelType = "hunyuan3d-tiny"
    /// Where the tokenizer is (a path or `builtin:NAME`; relative paths are resolved from the model folder).
    public var tokenizer = "builtin:hunyuan-tiny"
    /// The tokenizer ids the model knows, in embedding order; embedding row 0 is every other id.
    public var vocab: [Int32] = []
    public var maxTokens = 48
    /// Part slots (the most objects a prompt may name).
    public var parts = 2
    public var textWidth = 128
    public var textLayers = 2
    public var textHeads = 4
    public var textMLP = 256
    /// Triplane tokens per plane side P (3·P² tokens).
    public var triplaneTokens = 8
    /// Texels per token side u (the planes are R = P·u a side).
    public var triplaneUpsample = 4
    public var triplaneWidth = 128
    public var triplaneLayers = 4
    public var triplaneHeads = 4
    public var triplaneMLP = 256
    /// Channels C per texel and plane.
    public var triplaneChannels = 16
    public var decoderHidden = 64
    /// Linear layers of the decoder MLP (≥ 2).
    public var decoderLayers = 3
    /// Half side of the scene box.
    public var box = 1.0
    public var normEps: Float = 1e-5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", tokenizer, vocab, maxTokens = "max_tokens", parts
        case textWidth = "text_width", textLayers = "text_layers", textHeads = "text_heads", textMLP = "text_mlp"
        case triplaneTokens = "triplane_tokens", triplaneUpsample = "triplane_upsample", triplaneWidth = "triplane_width"
        case triplaneLayers = "triplane_layers", triplaneHeads = "triplane_heads", triplaneMLP = "triplane_mlp"
        case triplaneChannels = "triplane_channels", decoderHidden = "decoder_hidden", decoderLayers = "decoder_layers"
        case box, normEps = "norm_eps"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decode(.modelType, default: modelType)
        tokenizer = try c.decode(.tokenizer, default: tokenizer)
        vocab = try c.decode(.vocab, default: vocab)
        maxTokens = try c.decode(.maxTokens, default: maxTokens)
        parts = try c.decode(.parts, default: parts)
        textWidth = try c.decode(.textWidth, default: textWidth)
        textLayers = try c.decode(.textLayers, default: textLayers)
        textHeads = try c.decode(.textHeads, default: textHeads)
        textMLP = try c.decode(.textMLP, default: textMLP)
        triplaneTokens = try c.decode(.triplaneTokens, default: triplaneTokens)
        triplaneUpsample = try c.decode(.triplaneUpsample, default: triplaneUpsample)
        triplaneWidth = try c.decode(.triplaneWidth, default: triplaneWidth)
        triplaneLayers = try c.decode(.triplaneLayers, default: triplaneLayers)
        triplaneHeads = try c.decode(.triplaneHeads, default: triplaneHeads)
        triplaneMLP = try c.decode(.triplaneMLP, default: triplaneMLP)
        triplaneChannels = try c.decode(.triplaneChannels, default: triplaneChannels)
        decoderHidden = try c.decode(.decoderHidden, default: decoderHidden)
        decoderLayers = try c.decode(.decoderLayers, default: decoderLayers)
        box = try c.decode(.box, default: box)
        normEps = try c.decode(.normEps, default: normEps)
    }

    /// config.json's content.
    public var json: JSONValue {
        .object([
            (CodingKeys.modelType.rawValue, .string(modelType)), (CodingKeys.tokenizer.rawValue, .string(tokenizer)),
            (CodingKeys.maxTokens.rawValue, .int(Int64(maxTokens))), (CodingKeys.parts.rawValue, .int(Int64(parts))),
            (CodingKeys.textWidth.rawValue, .int(Int64(textWidth))), (CodingKeys.textLayers.rawValue, .int(Int64(textLayers))),
            (CodingKeys.textHeads.rawValue, .int(Int64(textHeads))), (CodingKeys.textMLP.rawValue, .int(Int64(textMLP))),
            (CodingKeys.triplaneTokens.rawValue, .int(Int64(triplaneTokens))),
            (CodingKeys.triplaneUpsample.rawValue, .int(Int64(triplaneUpsample))),
            (CodingKeys.triplaneWidth.rawValue, .int(Int64(triplaneWidth))),
            (CodingKeys.triplaneLayers.rawValue, .int(Int64(triplaneLayers))),
            (CodingKeys.triplaneHeads.rawValue, .int(Int64(triplaneHeads))),
            (CodingKeys.triplaneMLP.rawValue, .int(Int64(triplaneMLP))),
            (CodingKeys.triplaneChannels.rawValue, .int(Int64(triplaneChannels))),
            (CodingKeys.decoderHidden.rawValue, .int(Int64(decoderHidden))),
            (CodingKeys.decoderLayers.rawValue, .int(Int64(decoderLayers))),
            (CodingKeys.box.rawValue, .double(box)), (CodingKeys.normEps.rawValue, .double(Double(normEps))),
            (CodingKeys.vocab.rawValue, .array(vocab.map { .int(Int64($0)) })),
        ])
    }

    /// Embedding rows: the known ids plus row 0 for the rest.
    public var embeddingRows: Int { vocab.count + 1 }
    /// Triplane tokens 3·P².
    public var tokens: Int { 3 * triplaneTokens * triplaneTokens }
    /// Plane side R = P·u.
    public var triplaneResolution: Int { triplaneTokens * triplaneUpsample }
    /// Texels 3·R².
    public var texels: Int { 3 * triplaneResolution * triplaneResolution }
    /// Whether triplane layer i cross-attends to the text (else it is self-attention).
    public func crossAttends(_ i: Int) -> Bool { i % 2 == 0 }

    /// Checks what the network relies on; `.format` naming the key otherwise.
    public func validate(_ context: String) throws {
        func need(_ ok: Bool, _ what: String) throws { if !ok { throw HYError.format("\(context): \(what)") } }
        try need(modelType == "hunyuan3d-tiny", "model_type \(modelType) (hunyuan3d-tiny expected)")
        try need(maxTokens >= 2 && maxTokens <= 4096, "max_tokens \(maxTokens)")
        try need(parts >= 1 && parts <= 8, "parts \(parts) (1...8 expected)")
        for (v, n) in [(textWidth, "text_width"), (textLayers, "text_layers"), (textHeads, "text_heads"), (textMLP, "text_mlp"),
                       (triplaneTokens, "triplane_tokens"), (triplaneUpsample, "triplane_upsample"), (triplaneWidth, "triplane_width"), (triplaneLayers, "triplane_layers"),
                       (triplaneHeads, "triplane_heads"), (triplaneMLP, "triplane_mlp"), (triplaneChannels, "triplane_channels"),
                       (decoderHidden, "decoder_hidden")] {
            try need(v >= 1 && v <= 8192, "\(n) \(v) (1...8192 expected)")
        }
        try need(textWidth % textHeads == 0, "text_width must be a multiple of text_heads")
        try need(triplaneWidth % triplaneHeads == 0, "triplane_width must be a multiple of triplane_heads")
        try need(decoderLayers >= 2 && decoderLayers <= 16, "decoder_layers \(decoderLayers) (2...16 expected)")
        try need(box > 0 && box.isFinite, "box \(box)")
        try need(normEps > 0 && normEps.isFinite, "norm_eps")
        try need(vocab.allSatisfy { $0 >= 0 }, "vocab ids must be ≥ 0")
    }

    /// The SVRM decoder's view of this model (box, channels, decoder sizes).
    public var decoderConfig: SVRMConfig {
        var c = SVRMConfig()
        c.triplaneQuerySize = triplaneResolution
        c.upsampleRatio = 1
        c.triplaneChannels = triplaneChannels
        c.decoderHidden = decoderHidden
        c.decoderLayers = decoderLayers
        c.boxWarp = 2 * box
        c.boxMin = -box
        c.boxMax = box
        return c
    }
}

/// The parameters of `hunyuan3d-tiny` as fp32 buffers under their checkpoint names (declared once,
/// here). The same type holds gradients while training.
public final class Tiny3DParams: @unchecked Sendable {
    public let config: Tiny3DConfig
    public let names: [String]
    public let shapes: [[Int]]
    public let buffers: [FloatBuffer]
    let index: [String: Int]

    /// (name, shape) of every parameter, in checkpoint order.
    public static func declare(_ c: Tiny3DConfig) -> [(String, [Int])] {
        var d: [(String, [Int])] = [("text.embed", [c.embeddingRows, c.textWidth]), ("text.pos", [c.maxTokens, c.textWidth])]
        func block(_ p: String, width w: Int, context dc: Int, mlp f: Int) {
            d += [("\(p).attn_norm", [w]), ("\(p).q", [w, w]), ("\(p).k", [w, dc]), ("\(p).v", [w, dc]), ("\(p).o", [w, w]),
                  ("\(p).mlp_norm", [w]), ("\(p).gate", [f, w]), ("\(p).up", [f, w]), ("\(p).down", [w, f])]
        }
        for i in 0..<c.textLayers { block("text.layers.\(i)", width: c.textWidth, context: c.textWidth, mlp: c.textMLP) }
        d.append(("text.norm", [c.textWidth]))
        d.append(("slots.queries", [c.parts, c.textWidth]))
        block("slots.layers.0", width: c.textWidth, context: c.textWidth, mlp: c.textMLP)
        d += [("slots.norm", [c.textWidth]), ("slots.center.weight", [3, c.textWidth]), ("slots.center.bias", [3]),
              ("slots.presence.weight", [1, c.textWidth]), ("slots.presence.bias", [1])]
        d += [("triplane.queries", [c.tokens, c.triplaneWidth]), ("triplane.slot_embed", [c.parts, c.triplaneWidth])]
        for i in 0..<c.triplaneLayers {
            block("triplane.layers.\(i)", width: c.triplaneWidth, context: c.crossAttends(i) ? c.textWidth : c.triplaneWidth,
                  mlp: c.triplaneMLP)
        }
        let u2 = c.triplaneUpsample * c.triplaneUpsample
        d += [("triplane.norm", [c.triplaneWidth]), ("triplane.out.weight", [u2 * c.triplaneChannels, c.triplaneWidth]),
              ("triplane.out.bias", [u2 * c.triplaneChannels])]
        for (i, s) in c.decoderConfig.decoderLayerShapes.enumerated() {
            d += [("decoder.layers.\(i).weight", [s.1, s.0]), ("decoder.layers.\(i).bias", [s.1])]
        }
        return d
    }

    /// Zero-filled parameters of `config`.
    public init(config: Tiny3DConfig) {
        self.config = config
        let d = Self.declare(config)
        names = d.map(\.0)
        shapes = d.map(\.1)
        buffers = d.map { FloatBuffer($0.1.reduce(1, *)) }
        index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    }

    /// The parameters stored in `checkpoint` (every declared name, with its shape, any float dtype).
    public convenience init(config: Tiny3DConfig, checkpoint ck: Checkpoint, context: String) throws {
        self.init(config: config)
        for (i, name) in names.enumerated() {
            guard let t = ck.tensor(name) else { throw HYError.format("\(context): tensor \(name) missing") }
            guard t.shape == shapes[i] else {
                throw HYError.format("\(context): tensor \(name) has shape \(t.shape), expected \(shapes[i])")
            }
            guard t.dtype == .f32 || t.dtype == .f16 || t.dtype == .bf16 else {
                throw HYError.format("\(context): tensor \(name) is \(t.dtype.rawValue) (f32, f16 or bf16 expected)")
            }
            t.copyFloats(into: buffers[i].p)
            for j in 0..<buffers[i].count where !buffers[i].p[j].isFinite {
                throw HYError.format("\(context): tensor \(name) holds a non-finite value")
            }
        }
    }

    /// The buffer of `name` (a declared name).
    public subscript(_ name: String) -> UnsafeMutablePointer<Float> { buffers[index[name]!].p }

    public var parameterCount: Int { buffers.reduce(0) { $0 + $1.count } }

    public func zero() { for b in buffers { b.zero() } }

    /// self += other, element by element (gradients of several workers).
    public func add(_ other: Tiny3DParams) {
        for (a, b) in zip(buffers, other.buffers) { for j in 0..<a.count { a.p[j] += b.p[j] } }
    }

    /// Items for `SafetensorsWriter`, in declaration order.
    public func safetensorsItems(dtype: DType = .f32) -> [SafetensorsWriter.Item] {
        names.indices.map { i in SafetensorsWriter.Item(name: names[i], shape: shapes[i], floats: buffers[i].array, as: dtype) }
    }

    /// The decoder as the SVRM runs it (Linear layers over copies of these weights).
    public func decoder() throws -> SVRMDecoder {
        let shapes = config.decoderConfig.decoderLayerShapes
        let layers = try shapes.enumerated().map { i, s -> Linear in
            let w = "decoder.layers.\(i).weight", b = "decoder.layers.\(i).bias"
            return try Linear(weight: Tensor(name: w, shape: [s.1, s.0], floats: Array(UnsafeBufferPointer(start: self[w], count: s.0 * s.1))),
                              bias: Tensor(name: b, shape: [s.1], floats: Array(UnsafeBufferPointer(start: self[b], count: s.1))),
                              inFeatures: s.0, outFeatures: s.1)
        }
        return SVRMDecoder(config: config.decoderConfig, layers: layers)
    }

    /// Pointers of one transformer block.
    struct Block {
        let attnNorm, q, k, v, o, mlpNorm, gate, up, down: UnsafeMutablePointer<Float>
    }

    func block(_ prefix: String) -> Block {
        Block(attnNorm: self["\(prefix).attn_norm"], q: self["\(prefix).q"], k: self["\(prefix).k"], v: self["\(prefix).v"],
              o: self["\(prefix).o"], mlpNorm: self["\(prefix).mlp_norm"], gate: self["\(prefix).gate"], up: self["\(prefix).up"],
              down: self["\(prefix).down"])
    }
}

/// What a forward pass keeps for the backward (one prompt).
public final class Tiny3DTape {
    final class BlockTape {
        let x, a, q, attn, x2, m, g, u, h: FloatBuffer
        let k, v, lse, rinvA, rinvM: FloatBuffer
        init(rows n: Int, contextRows nk: Int, width w: Int, mlp f: Int, heads: Int) {
            x = FloatBuffer(n * w); a = FloatBuffer(n * w); q = FloatBuffer(n * w); attn = FloatBuffer(n * w)
            x2 = FloatBuffer(n * w); m = FloatBuffer(n * w)
            g = FloatBuffer(n * f); u = FloatBuffer(n * f); h = FloatBuffer(n * f)
            k = FloatBuffer(nk * w); v = FloatBuffer(nk * w); lse = FloatBuffer(heads * n)
            rinvA = FloatBuffer(n); rinvM = FloatBuffer(n)
        }
    }
    /// A block stack's tape: its blocks, the input of the final norm, its 1/rms and its output.
    final class StackTape {
        var blocks: [BlockTape] = []
        var pre = FloatBuffer(0), rinv = FloatBuffer(0), out = FloatBuffer(0)
    }
    var ids: [Int32] = []
    let text = StackTape(), slots = StackTape()
    var triplanes: [StackTape] = []
    public init() {}
}

/// The forward (and, for training, backward) of `hunyuan3d-tiny`: text transformer → part slots →
/// one triplane per slot. Pre-RMSNorm blocks: x += Wo·attn(RMSNorm(x)), x += W_down(silu(W_gate m) ⊙
/// W_up m) with m = RMSNorm(x). The text blocks self-attend over the prompt; `parts` learned slot
/// queries cross-attend to the text (slot k is the k-th object the prompt names); each slot's normed
/// vector gives its presence logit and its part's centre (Linear heads). Part k's triplane comes from
/// the triplane transformer over the learned tokens plus slot k's embedding, its cross-attention
/// layers attending to the text; the tokens become the part's triplane in its own frame (centred at
/// the origin). The scene is the
/// union of the present parts: sdf(p) = min_k decoder(triplane_k, p − centre_k).
/// Triplanes are channels-last [3·R², C] (plane-major, then row = the plane's second coordinate,
/// column = its first, as `SVRMTriplane.channelsLast`).
public enum Tiny3DNet {
    /// Embedding rows of tokenizer ids (0 for an id the model does not know), cut to `maxTokens`.
    public static func rows(_ ids: [Int32], _ c: Tiny3DConfig) -> [Int32] {
        var map: [Int32: Int32] = [:]
        for (i, v) in c.vocab.enumerated() { map[v] = Int32(i + 1) }
        return ids.prefix(c.maxTokens).map { map[$0] ?? 0 }
    }

    /// What `forward` returns: each slot's triplane (channels-last [3·R², C]), centre and presence
    /// logit (> 0: the prompt names a k-th object).
    public struct Output {
        public var triplanes: [FloatBuffer]
        public var centers: [SIMD3<Float>]
        public var presence: [Float]
    }

    /// Embedding rows [T] → every part's triplane and centre; `tape` (if given) keeps the activations.
    public static func forward(_ p: Tiny3DParams, rows ids: [Int32], tape: Tiny3DTape?, pool: ThreadPool?) -> Output {
        let c = p.config
        let t = ids.count, d = c.textWidth
        let x = FloatBuffer(t * d)
        embeddingForward(p["text.embed"], ids: ids, dim: d, x.p)
        addInPlace(x.p, p["text.pos"], t * d, pool: nil)
        tape?.ids = ids
        let text = stack(p, "text", x: x, rows: t, width: d, heads: c.textHeads, mlp: c.textMLP, layers: c.textLayers,
                         context: { _ in nil }, tape: tape?.text, pool: pool)
        let k = c.parts
        let sx = FloatBuffer(k * d)
        sx.p.update(from: p["slots.queries"], count: k * d)
        let slots = stack(p, "slots", x: sx, rows: k, width: d, heads: c.textHeads, mlp: c.textMLP, layers: 1,
                          context: { _ in (UnsafePointer(text.p), t, d) }, tape: tape?.slots, pool: pool)
        var centers: [SIMD3<Float>] = [], presence: [Float] = []
        let cw = p["slots.center.weight"], cb = p["slots.center.bias"]
        let pw = p["slots.presence.weight"], pb = p["slots.presence.bias"]
        for s in 0..<k {
            var v = SIMD3<Float>(cb[0], cb[1], cb[2])
            var z = pb[0]
            for j in 0..<d {
                v += SIMD3(cw[j], cw[d + j], cw[2 * d + j]) * slots.p[s * d + j]
                z += pw[j] * slots.p[s * d + j]
            }
            centers.append(v)
            presence.append(z)
        }
        var planes: [FloatBuffer] = []
        let n = c.tokens, w = c.triplaneWidth
        let patch = c.triplaneUpsample * c.triplaneUpsample * c.triplaneChannels
        for s in 0..<k {
            let y = FloatBuffer(n * w)
            y.p.update(from: p["triplane.queries"], count: n * w)
            let embed = p["triplane.slot_embed"] + s * w
            for r in 0..<n { for j in 0..<w { y.p[r * w + j] += embed[j] } }
            let st = tape.map { _ in Tiny3DTape.StackTape() }
            if let st { tape!.triplanes.append(st) }
            let normed = stack(p, "triplane", x: y, rows: n, width: w, heads: c.triplaneHeads, mlp: c.triplaneMLP,
                               layers: c.triplaneLayers, context: { i in c.crossAttends(i) ? (UnsafePointer(text.p), t, d) : nil },
                               tape: st, pool: pool)
            let tokensOut = FloatBuffer(n * patch)
            linearForward(normed.p, p["triplane.out.weight"], rows: n, inF: w, outF: patch, tokensOut.p, pool: pool)
            let bias = p["triplane.out.bias"]
            for r in 0..<n { for j in 0..<patch { tokensOut.p[r * patch + j] += bias[j] } }
            let out = FloatBuffer(c.texels * c.triplaneChannels, zeroed: false)
            pixelShuffle(tokensOut.p, out.p, c, inverse: false)
            planes.append(out)
        }
        return Output(triplanes: planes, centers: centers, presence: presence)
    }

    /// Blocks `prefix.layers.i` over x [rows, width] (in place), then the final norm `prefix.norm`:
    /// returns the normed output. `context(i)` is layer i's cross-attention context (pointer, rows,
    /// width) or nil for self-attention.
    static func stack(_ p: Tiny3DParams, _ prefix: String, x: FloatBuffer, rows n: Int, width w: Int, heads: Int, mlp f: Int,
                      layers: Int, context: (Int) -> (UnsafePointer<Float>, Int, Int)?, tape: Tiny3DTape.StackTape?,
                      pool: ThreadPool?) -> FloatBuffer {
        let eps = p.config.normEps
        for i in 0..<layers {
            let ctx = context(i)
            let bt = tape.map { _ in Tiny3DTape.BlockTape(rows: n, contextRows: ctx?.1 ?? n, width: w, mlp: f, heads: heads) }
            if let bt { tape!.blocks.append(bt) }
            blockForward(p.block("\(prefix).layers.\(i)"), x: x, rows: n, width: w, heads: heads, mlp: f, context: ctx?.0,
                         contextRows: ctx?.1 ?? n, contextWidth: ctx?.2 ?? w, eps: eps, tape: bt, pool: pool)
        }
        let out = FloatBuffer(n * w), rinv = FloatBuffer(n)
        rmsnorm(x.p, p["\(prefix).norm"], rows: n, dim: w, eps: eps, out.p, rinv: rinv.p)
        if let tape { tape.pre = x; tape.rinv = rinv; tape.out = out }
        return out
    }

    /// Backward of `stack`: dOut [rows, width] → d(input x), returned; weight and context gradients accumulate.
    static func stackBackward(_ p: Tiny3DParams, _ g: Tiny3DParams, _ prefix: String, tape: Tiny3DTape.StackTape,
                              dOut: UnsafePointer<Float>, rows n: Int, width w: Int, heads: Int, mlp f: Int,
                              context: (Int) -> (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int)?) -> FloatBuffer {
        let dx = FloatBuffer(n * w)
        rmsnormBackward(tape.pre.p, p["\(prefix).norm"], rinv: tape.rinv.p, dOut, rows: n, dim: w, dx: dx.p,
                        accumulate: false, dw: g["\(prefix).norm"])
        for i in stride(from: tape.blocks.count - 1, through: 0, by: -1) {
            let ctx = context(i)
            blockBackward(p.block("\(prefix).layers.\(i)"), g.block("\(prefix).layers.\(i)"), tape: tape.blocks[i], dx: dx,
                          rows: n, width: w, heads: heads, mlp: f, context: ctx?.0, dContext: ctx?.1,
                          contextRows: ctx?.2 ?? n, contextWidth: ctx?.3 ?? w)
        }
        return dx
    }

    /// Token patches [3·P², u·u·C] ↔ channels-last texels [3·R², C]: token (plane, i, j)'s value
    /// (a·u + b)·C + ch is texel (plane, row i·u + a, column j·u + b), channel ch. `inverse` maps
    /// texels back to patches (the backward: a permutation).
    static func pixelShuffle(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ c: Tiny3DConfig, inverse: Bool) {
        let pp = c.triplaneTokens, u = c.triplaneUpsample, ch = c.triplaneChannels, r = c.triplaneResolution
        for pl in 0..<3 {
            for i in 0..<pp {
                for j in 0..<pp {
                    let token = (pl * pp + i) * pp + j
                    for a in 0..<u {
                        for b in 0..<u {
                            let patchAt = (token * u * u + a * u + b) * ch
                            let texelAt = ((pl * r + i * u + a) * r + j * u + b) * ch
                            if inverse {
                                (dst + patchAt).update(from: src + texelAt, count: ch)
                            } else {
                                (dst + texelAt).update(from: src + patchAt, count: ch)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of `forward` from each part's dTriplane [3·R², C] and dCenters [parts, 3]: gradients
    /// accumulate (+=) into `g`.
    public static func backward(_ p: Tiny3DParams, tape: Tiny3DTape, dTriplanes: [UnsafePointer<Float>?], dCenters: [SIMD3<Float>],
                                dPresence: [Float], into g: Tiny3DParams) {
        let c = p.config
        let n = c.tokens, w = c.triplaneWidth, k = c.parts
        let patch = c.triplaneUpsample * c.triplaneUpsample * c.triplaneChannels
        let t = tape.ids.count, d = c.textWidth
        let slots = tape.slots.out
        let dSlots = FloatBuffer(k * d), dText = FloatBuffer(t * d)
        for s in 0..<k {
            guard let dTriplane = dTriplanes[s] else { continue }
            // Output head (through the pixel shuffle's inverse permutation), then the triplane stack.
            let dTokens = FloatBuffer(n * patch, zeroed: false)
            pixelShuffle(UnsafeMutablePointer(mutating: dTriplane), dTokens.p, c, inverse: true)
            let db = g["triplane.out.bias"]
            for r in 0..<n { for j in 0..<patch { db[j] += dTokens.p[r * patch + j] } }
            let dNormed = FloatBuffer(n * w)
            linearBackward(tape.triplanes[s].out.p, p["triplane.out.weight"], dTokens.p, rows: n, inF: w, outF: patch,
                           dW: g["triplane.out.weight"], dx: dNormed.p, accumulate: false, pool: nil)
            let dy = stackBackward(p, g, "triplane", tape: tape.triplanes[s], dOut: dNormed.p, rows: n, width: w,
                                   heads: c.triplaneHeads, mlp: c.triplaneMLP,
                                   context: { i in c.crossAttends(i) ? (UnsafePointer(tape.text.out.p), dText.p, t, d) : nil })
            addInPlace(g["triplane.queries"], dy.p, n * w, pool: nil)
            let dEmbed = g["triplane.slot_embed"] + s * w
            for r in 0..<n { for j in 0..<w { dEmbed[j] += dy.p[r * w + j] } }
        }
        // Centre and presence heads.
        let cw = p["slots.center.weight"], gw = g["slots.center.weight"], gb = g["slots.center.bias"]
        let pw = p["slots.presence.weight"], gpw = g["slots.presence.weight"], gpb = g["slots.presence.bias"]
        for s in 0..<k {
            gpb[0] += dPresence[s]
            for j in 0..<d {
                gpw[j] += dPresence[s] * slots.p[s * d + j]
                dSlots.p[s * d + j] += dPresence[s] * pw[j]
            }
        }
        for s in 0..<k {
            let dc = dCenters[s]
            for a in 0..<3 {
                gb[a] += dc[a]
                for j in 0..<d {
                    gw[a * d + j] += dc[a] * slots.p[s * d + j]
                    dSlots.p[s * d + j] += dc[a] * cw[a * d + j]
                }
            }
        }
        let dq = stackBackward(p, g, "slots", tape: tape.slots, dOut: dSlots.p, rows: k, width: d, heads: c.textHeads,
                               mlp: c.textMLP, context: { _ in (UnsafePointer(tape.text.out.p), dText.p, t, d) })
        addInPlace(g["slots.queries"], dq.p, k * d, pool: nil)
        let dx = stackBackward(p, g, "text", tape: tape.text, dOut: dText.p, rows: t, width: d, heads: c.textHeads,
                               mlp: c.textMLP, context: { _ in nil })
        embeddingBackward(ids: tape.ids, dim: d, dx.p, dE: g["text.embed"])
        addInPlace(g["text.pos"], dx.p, t * d, pool: nil)
    }

    /// One block over x [rows, width] in place; `context` nil = self-attention.
    static func blockForward(_ b: Tiny3DParams.Block, x: FloatBuffer, rows n: Int, width w: Int, heads: Int, mlp f: Int,
                             context: UnsafePointer<Float>?, contextRows nk: Int, contextWidth dc: Int, eps: Float,
                             tape bt: Tiny3DTape.BlockTape?, pool: ThreadPool?) {
        if let bt { bt.x.p.update(from: x.p, count: n * w) }
        let a = bt?.a ?? FloatBuffer(n * w), rinvA = bt?.rinvA ?? FloatBuffer(n)
        rmsnorm(x.p, b.attnNorm, rows: n, dim: w, eps: eps, a.p, rinv: rinvA.p)
        let q = bt?.q ?? FloatBuffer(n * w)
        let k = bt?.k ?? FloatBuffer(nk * w), v = bt?.v ?? FloatBuffer(nk * w)
        linearForward(a.p, b.q, rows: n, inF: w, outF: w, q.p, pool: pool)
        let src = context ?? UnsafePointer(a.p)
        linearForward(src, b.k, rows: nk, inF: dc, outF: w, k.p, pool: pool)
        linearForward(src, b.v, rows: nk, inF: dc, outF: w, v.p, pool: pool)
        let attn = bt?.attn ?? FloatBuffer(n * w)
        let hd = w / heads
        attention(q: q.p, qStride: w, nq: n, keys: k.p, kStride: w, values: v.p, vStride: w, nk: nk, heads: heads,
                  kvHeads: heads, headDim: hd, scale: 1 / Float(hd).squareRoot(), out: attn.p, outStride: w,
                  lse: bt?.lse.p, pool: pool)
        let o = FloatBuffer(n * w, zeroed: false)
        linearForward(attn.p, b.o, rows: n, inF: w, outF: w, o.p, pool: pool)
        addInPlace(x.p, o.p, n * w, pool: nil)
        if let bt { bt.x2.p.update(from: x.p, count: n * w) }
        let m = bt?.m ?? FloatBuffer(n * w), rinvM = bt?.rinvM ?? FloatBuffer(n)
        rmsnorm(x.p, b.mlpNorm, rows: n, dim: w, eps: eps, m.p, rinv: rinvM.p)
        let gg = bt?.g ?? FloatBuffer(n * f), u = bt?.u ?? FloatBuffer(n * f), h = bt?.h ?? FloatBuffer(n * f)
        linearForward(m.p, b.gate, rows: n, inF: w, outF: f, gg.p, pool: pool)
        linearForward(m.p, b.up, rows: n, inF: w, outF: f, u.p, pool: pool)
        swiglu(gg.p, u.p, n * f, into: h.p)
        linearForward(h.p, b.down, rows: n, inF: f, outF: w, o.p, pool: pool)
        addInPlace(x.p, o.p, n * w, pool: nil)
    }

    /// Backward of `blockForward`: dx [rows, width] holds d(output) and becomes d(input); weight
    /// gradients and dContext accumulate.
    static func blockBackward(_ b: Tiny3DParams.Block, _ gb: Tiny3DParams.Block, tape bt: Tiny3DTape.BlockTape, dx: FloatBuffer,
                              rows n: Int, width w: Int, heads: Int, mlp f: Int, context: UnsafePointer<Float>?,
                              dContext: UnsafeMutablePointer<Float>?, contextRows nk: Int, contextWidth dc: Int) {
        // MLP: out = x2 + down(h)
        let dh = FloatBuffer(n * f, zeroed: false)
        linearBackward(bt.h.p, b.down, dx.p, rows: n, inF: f, outF: w, dW: gb.down, dx: dh.p, accumulate: false, pool: nil)
        let dg = FloatBuffer(n * f, zeroed: false), du = FloatBuffer(n * f, zeroed: false)
        swigluBackward(bt.g.p, bt.u.p, dh.p, n * f, dg: dg.p, du: du.p)
        let dm = FloatBuffer(n * w, zeroed: false)
        linearBackward(bt.m.p, b.gate, dg.p, rows: n, inF: w, outF: f, dW: gb.gate, dx: dm.p, accumulate: false, pool: nil)
        linearBackward(bt.m.p, b.up, du.p, rows: n, inF: w, outF: f, dW: gb.up, dx: dm.p, accumulate: true, pool: nil)
        rmsnormBackward(bt.x2.p, b.mlpNorm, rinv: bt.rinvM.p, dm.p, rows: n, dim: w, dx: dx.p, accumulate: true, dw: gb.mlpNorm)
        // Attention: x2 = x + o(attn)
        let dAttn = FloatBuffer(n * w, zeroed: false)
        linearBackward(bt.attn.p, b.o, dx.p, rows: n, inF: w, outF: w, dW: gb.o, dx: dAttn.p, accumulate: false, pool: nil)
        let dq = FloatBuffer(n * w), dk = FloatBuffer(nk * w), dv = FloatBuffer(nk * w)
        let hd = w / heads
        attentionBackward(q: bt.q.p, qStride: w, nq: n, k: bt.k.p, kStride: w, v: bt.v.p, vStride: w, nk: nk, heads: heads,
                          kvHeads: heads, headDim: hd, scale: 1 / Float(hd).squareRoot(), mask: .none, lse: bt.lse.p,
                          dOut: dAttn.p, dOutStride: w, dq: dq.p, dk: dk.p, dv: dv.p, pool: nil)
        let da = FloatBuffer(n * w, zeroed: false)
        linearBackward(bt.a.p, b.q, dq.p, rows: n, inF: w, outF: w, dW: gb.q, dx: da.p, accumulate: false, pool: nil)
        if let context, let dContext {
            linearBackward(context, b.k, dk.p, rows: nk, inF: dc, outF: w, dW: gb.k, dx: dContext, accumulate: true, pool: nil)
            linearBackward(context, b.v, dv.p, rows: nk, inF: dc, outF: w, dW: gb.v, dx: dContext, accumulate: true, pool: nil)
        } else {
            linearBackward(bt.a.p, b.k, dk.p, rows: n, inF: w, outF: w, dW: gb.k, dx: da.p, accumulate: true, pool: nil)
            linearBackward(bt.a.p, b.v, dv.p, rows: n, inF: w, outF: w, dW: gb.v, dx: da.p, accumulate: true, pool: nil)
        }
        rmsnormBackward(bt.x.p, b.attnNorm, rinv: bt.rinvA.p, da.p, rows: n, dim: w, dx: dx.p, accumulate: true, dw: gb.attnNorm)
    }

    /// The decoder over n points as `SVRMDecoder.query` runs it, keeping its activations: returns the
    /// raw outputs [n, 4] (sdf, then the colour logits); `acts` receives the sampled features and each
    /// layer's output (after ReLU for the hidden layers).
    public static func decode(_ p: Tiny3DParams, decoder: SVRMDecoder, triplane: SVRMTriplane, points: UnsafePointer<Float>,
                              count n: Int, acts: inout [FloatBuffer]) -> FloatBuffer {
        let c = p.config
        let shapes = c.decoderConfig.decoderLayerShapes
        let feat = FloatBuffer(n * 3 * c.triplaneChannels, zeroed: false)
        decoder.sampleFeatures(triplane, points: points, count: n, feat.p)
        acts = [feat]
        for (i, s) in shapes.enumerated() {
            let y = FloatBuffer(n * s.1, zeroed: false)
            linearForward(acts[i].p, p["decoder.layers.\(i).weight"], rows: n, inF: s.0, outF: s.1, y.p, pool: nil)
            let b = p["decoder.layers.\(i).bias"]
            let last = i == shapes.count - 1
            for r in 0..<n {
                let row = y.p + r * s.1
                for j in 0..<s.1 { let v = row[j] + b[j]; row[j] = last ? v : max(v, 0) }
            }
            acts.append(y)
        }
        return acts.last!
    }

    /// Backward of `decode` from dOut [n, 4]: weight gradients and dTriplane [3·R², C] (channels-last) accumulate.
    public static func decodeBackward(_ p: Tiny3DParams, decoder: SVRMDecoder, points: UnsafePointer<Float>, count n: Int,
                                      acts: [FloatBuffer], dOut: UnsafePointer<Float>, into g: Tiny3DParams,
                                      dTriplane: UnsafeMutablePointer<Float>) {
        let c = p.config
        let shapes = c.decoderConfig.decoderLayerShapes
        var dy = FloatBuffer(n * 4, zeroed: false)
        dy.p.update(from: dOut, count: n * 4)
        for i in stride(from: shapes.count - 1, through: 0, by: -1) {
            let s = shapes[i]
            let db = g["decoder.layers.\(i).bias"]
            for r in 0..<n { for j in 0..<s.1 { db[j] += dy.p[r * s.1 + j] } }
            let dx = FloatBuffer(n * s.0, zeroed: false)
            linearBackward(acts[i].p, p["decoder.layers.\(i).weight"], dy.p, rows: n, inF: s.0, outF: s.1,
                           dW: g["decoder.layers.\(i).weight"], dx: dx.p, accumulate: false, pool: nil)
            if i > 0 { for j in 0..<(n * s.0) where acts[i].p[j] <= 0 { dx.p[j] = 0 } }
            dy = dx
        }
        decoder.sampleFeaturesBackward(channels: c.triplaneChannels, resolution: c.triplaneResolution, points: points, count: n,
                                       dFeatures: dy.p, dPlanes: dTriplane)
    }

    /// The triplane as the SVRM decoder takes it.
    public static func triplane(_ channelsLast: FloatBuffer, _ c: Tiny3DConfig) throws -> SVRMTriplane {
        let r = c.triplaneResolution, ch = c.triplaneChannels
        var planes = [Float](repeating: 0, count: 3 * ch * r * r)
        for pl in 0..<3 {
            for i in 0..<(r * r) {
                for j in 0..<ch { planes[(pl * ch + j) * r * r + i] = channelsLast.p[(pl * r * r + i) * ch + j] }
            }
        }
        return try SVRMTriplane(planes: planes, channels: ch, resolution: r)
    }
}

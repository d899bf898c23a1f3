#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
import HunyuanNN
@testable import HunyuanDiffusion

/// diffusers' UNet2DConditionModel with Hunyuan3D-1.0's reference attention, against the official
/// mvd-lite-tiny run (README convention 5: write pass on the noised condition latent, read pass on
/// the scaled latents), plus loading errors and the full-size SD2 parameter count.
final class UNetTests: XCTestCase {
    static let pool = ThreadPool(threads: 0)

    func model() throws -> UNet2DConditionModel { try UNet2DConditionModel(folder: try MVDFixture.dir() + "/unet") }

    /// The write pass of step 0, returning the filled reference.
    func writePass(_ unet: UNet2DConditionModel, _ ref: Checkpoint) throws -> ([Float], ReferenceAttention) {
        let refIn = try XCTUnwrap(ref.tensor("step0_ref_in")), emb = try XCTUnwrap(ref.tensor("prompt_embeds"))
        let t = try XCTUnwrap(ref.tensor("timesteps")).floats()[0]
        let reference = ReferenceAttention(mode: .write)
        let out = try unet.forward(sample: refIn.floats(), batch: refIn.shape[0], height: refIn.shape[2], width: refIn.shape[3],
                                   timestep: t, context: emb.floats(), reference: reference, pool: Self.pool)
        return (out, reference)
    }

    func testWritePassMatchesReference() throws {
        let unet = try model(), ref = try MVDFixture.reference()
        let start = now()
        let (out, reference) = try writePass(unet, ref)
        let ms = (now() - start) * 1e3
        let e = scaledMaxError(out, try XCTUnwrap(ref.tensor("step0_ref_out")).floats())
        print("UNet write pass (B=2, 80×80): step0_ref_out scaled error \(e), \(String(format: "%.1f", ms)) ms")
        XCTAssertLessThanOrEqual(e, 1e-4)

        XCTAssertEqual(reference.layers.map(\.name), unet.selfAttentionNames)
        XCTAssertEqual(reference.layers.count, 4)   // down_blocks.0 (1), mid (1), up_blocks.1 (2)
        let name = "mid_block.attentions.0.transformer_blocks.0.attn1"
        let feat = try XCTUnwrap(reference.feature(name))
        let want = try XCTUnwrap(ref.tensor("step0_ref_feat_" + name))
        XCTAssertEqual([feat.batch, feat.tokens, feat.dim], want.shape)
        let fe = scaledMaxError(feat.values.array, want.floats())
        print("UNet write pass: stored \(name) scaled error \(fe); reference holds \(reference.byteCount) bytes")
        XCTAssertLessThanOrEqual(fe, 1e-4)
    }

    func testReadPassMatchesReference() throws {
        let unet = try model(), ref = try MVDFixture.reference()
        let (_, reference) = try writePass(unet, ref)
        reference.mode = .read
        let lat = try XCTUnwrap(ref.tensor("latents_T")), sigma = try XCTUnwrap(ref.tensor("sigmas")).floats()[0]
        let s = 1 / (sigma * sigma + 1).squareRoot()
        let one = lat.floats().map { $0 * s }
        let t = try XCTUnwrap(ref.tensor("timesteps")).floats()[0]
        let emb = try XCTUnwrap(ref.tensor("prompt_embeds")).floats()
        let (h, w) = (lat.shape[2], lat.shape[3])
        let start = now()
        let out = try unet.forward(sample: one + one, batch: 2, height: h, width: w, timestep: t, context: emb,
                                   reference: reference, pool: Self.pool)
        let ms = (now() - start) * 1e3
        let e = scaledMaxError(out, try XCTUnwrap(ref.tensor("step0_unet_out")).floats())
        print("UNet read pass (B=2, \(h)×\(w), reference 80×80): step0_unet_out scaled error \(e), \(String(format: "%.1f", ms)) ms")
        XCTAssertLessThanOrEqual(e, 1e-4)
        // The reference is not consumed (the pipeline may read it again).
        XCTAssertEqual(reference.layers.map(\.name), unet.selfAttentionNames)

        // Without the reference the result differs (the reference attention is exercised).
        let plain = try unet.forward(sample: one + one, batch: 2, height: h, width: w, timestep: t, context: emb, pool: Self.pool)
        XCTAssertGreaterThan(scaledMaxError(plain, out), 1e-3)
    }

    /// With bf16 products (`ComputePrecision.bf16`) both passes stay near the reference: bf16 rounds
    /// each product's inputs to 8 significant bits (relative 2⁻⁹), so the tolerance is that of bf16
    /// autocast, not of fp32. Where the CPU lacks AVX512_BF16 the products are fp32 and the fp32 bound holds.
    func testBF16ProductsStayNearReference() throws {
        let unet = try UNet2DConditionModel(folder: try MVDFixture.dir() + "/unet", compute: .bf16)
        let ref = try MVDFixture.reference()
        let (out, reference) = try writePass(unet, ref)
        let bound: Float = CPUFeatures.avx512bf16 ? 2e-2 : 1e-4
        let ew = scaledMaxError(out, try XCTUnwrap(ref.tensor("step0_ref_out")).floats())
        reference.mode = .read
        let lat = try XCTUnwrap(ref.tensor("latents_T")), sigma = try XCTUnwrap(ref.tensor("sigmas")).floats()[0]
        let one = lat.floats().map { $0 / (sigma * sigma + 1).squareRoot() }
        let read = try unet.forward(sample: one + one, batch: 2, height: lat.shape[2], width: lat.shape[3],
                                    timestep: try XCTUnwrap(ref.tensor("timesteps")).floats()[0],
                                    context: try XCTUnwrap(ref.tensor("prompt_embeds")).floats(), reference: reference, pool: Self.pool)
        let er = scaledMaxError(read, try XCTUnwrap(ref.tensor("step0_unet_out")).floats())
        print("UNet bf16 products: write pass scaled error \(ew), read pass \(er) (bound \(bound))")
        XCTAssertLessThanOrEqual(ew, bound)
        XCTAssertLessThanOrEqual(er, bound)
    }

    func testForwardArgumentsAndCancellation() throws {
        let unet = try model(), ref = try MVDFixture.reference()
        let emb = try XCTUnwrap(ref.tensor("prompt_embeds")).floats()
        let x = [Float](repeating: 0.1, count: 2 * 4 * 8 * 8)
        expectError(.invalidArgument, "multiple of 2") {
            _ = try unet.forward(sample: [Float](repeating: 0, count: 2 * 4 * 7 * 8), batch: 2, height: 7, width: 8,
                                 timestep: 1, context: emb, pool: nil)
        }
        expectError(.invalidArgument, "sample has") {
            _ = try unet.forward(sample: x, batch: 2, height: 8, width: 4, timestep: 1, context: emb, pool: nil)
        }
        expectError(.invalidArgument, "self-attentions") {
            _ = try unet.forward(sample: x, batch: 2, height: 8, width: 8, timestep: 1, context: emb,
                                 reference: ReferenceAttention(mode: .read), pool: nil)
        }
        var polls = 0
        expectError(.aborted, "stopped") {
            _ = try unet.forward(sample: x, batch: 2, height: 8, width: 8, timestep: 1, context: emb, pool: nil,
                                 shouldStop: { polls += 1; return polls > 3 })
        }
        XCTAssertEqual(polls, 4)
        // A different batch than the written reference is refused.
        let w = ReferenceAttention(mode: .write)
        _ = try unet.forward(sample: x, batch: 2, height: 8, width: 8, timestep: 1, context: emb, reference: w, pool: nil)
        w.mode = .read
        expectError(.invalidArgument, "batch") {
            _ = try unet.forward(sample: Array(x[0..<(4 * 64)]), batch: 1, height: 8, width: 8, timestep: 1,
                                 context: Array(emb[0..<(emb.count / 2)]), reference: w, pool: nil)
        }
    }

    // MARK: errors

    func testLoadingErrorsNameTheTensorOrKey() throws {
        let missing = "mid_block.attentions.0.transformer_blocks.0.attn1.to_k.weight"
        var dir = try componentCopy("unet") { $0.removeAll { $0.name == missing } }
        expectError(.format, missing) { _ = try UNet2DConditionModel(folder: dir) }

        let misshapen = "up_blocks.1.resnets.0.conv1.weight"
        dir = try componentCopy("unet") { items in
            let i = items.firstIndex { $0.name == misshapen }!
            let it = items[i]
            items[i] = .init(name: it.name, dtype: it.dtype, shape: [it.shape[1], it.shape[0], 3, 3], bytes: it.bytes)
        }
        expectError(.format, misshapen) { _ = try UNet2DConditionModel(folder: dir) }

        dir = try componentCopy("unet") { $0.append(.init(name: "down_blocks.0.extra.weight", shape: [2], floats: [1, 2])) }
        expectError(.format, "down_blocks.0.extra.weight") { _ = try UNet2DConditionModel(folder: dir) }

        // Configurations we do not implement: errors naming the key.
        func withKey(_ key: String, _ value: String) throws -> String {
            try componentCopy("unet", config: { text in
                guard let o = (try? JSONValue.parse(text, context: "config"))?.objectValue,
                      let v = try? JSONValue.parse(value, context: "value") else { return text }
                return JSONValue.object(o.map { $0.0 == key ? ($0.0, v) : $0 }).serialized()
            })
        }
        for (key, value) in [("resnet_time_scale_shift", "\"scale_shift\""), ("class_embed_type", "\"timestep\""),
                             ("only_cross_attention", "true"), ("addition_embed_type", "\"text\""),
                             ("num_attention_heads", "[2, 4]"), ("down_block_types", "[\"AttnDownBlock2D\", \"DownBlock2D\"]"),
                             ("mid_block_type", "\"UNetMidBlock2DSimpleCrossAttn\""), ("act_fn", "\"gelu\"")] {
            dir = try withKey(key, value)
            expectError(.unsupported, key) { _ = try UNet2DConditionModel(folder: dir) }
        }
        dir = try withKey("attention_head_dim", "[3, 4]")
        expectError(.format, "attention_head_dim") { _ = try UNet2DConditionModel(folder: dir) }
        dir = try withKey("layers_per_block", "\"two\"")
        expectError(.format, "layers_per_block") { _ = try UNet2DConditionModel(folder: dir) }
        expectError(.io, "/nowhere") { _ = try UNet2DConditionModel(folder: "/nowhere") }
    }

    // MARK: configurations

    /// stabilityai/stable-diffusion-2 `unet/config.json` (diffusers 0.8-era keys).
    static let sd2ConfigJSON = """
    {
      "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.8.0",
      "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
      "center_input_sample": false, "cross_attention_dim": 1024,
      "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
      "downsample_padding": 1, "dual_cross_attention": false, "flip_sin_to_cos": true, "freq_shift": 0,
      "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
      "out_channels": 4, "sample_size": 96,
      "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
      "use_linear_projection": true
    }
    """

    func testFullSizeSD2ParameterCount() throws {
        let c = try JSONValue.parse(Self.sd2ConfigJSON, context: "sd2").decode(UNetConfig.self, context: "sd2 unet/config.json")
        XCTAssertEqual(c.heads, [5, 10, 20, 20])
        XCTAssertEqual(c.layersPerBlock, [2, 2, 2, 2])
        XCTAssertEqual(c, UNetConfig.stableDiffusion2)
        let table = try UNetTensors.table(for: c)
        print("SD2 UNet: \(table.entries.count) tensors, \(table.parameterCount) parameters")
        XCTAssertEqual(table.parameterCount, 865_910_724)
        XCTAssertEqual(table.entries.count, 686)
        XCTAssertEqual(table.entry("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight")?.shape, [640, 1024])
        XCTAssertEqual(table.entry("up_blocks.3.resnets.2.conv_shortcut.weight")?.shape, [320, 640, 1, 1])
        XCTAssertEqual(UNetTensors.selfAttentionNames(c).count, 16)
        // SD1-style 1×1 conv projections.
        var sd1 = c
        sd1.useLinearProjection = false
        XCTAssertEqual(try UNetTensors.table(for: sd1).entry("mid_block.attentions.0.proj_in.weight")?.shape, [1280, 1280, 1, 1])
    }

    /// The fixture's declared table is exactly its checkpoint (names and shapes).
    func testFixtureTableMatchesCheckpoint() throws {
        let dir = try MVDFixture.dir() + "/unet"
        let c = try Component.config(UNetConfig.self, dir)
        XCTAssertEqual(c.heads, [2, 4])
        let table = try UNetTensors.table(for: c)
        let ck = try Checkpoint(component: dir)
        XCTAssertEqual(Set(table.entries.map(\.name)), Set(ck.tensors.map(\.name)))
        for e in table.entries { XCTAssertEqual(ck.tensor(e.name)?.shape, e.shape, e.name) }
    }

    /// The plain UNet (no reference) with 1×1-conv projections, two resnets per level and two
    /// transformer layers: checked against the same network written with Linear projections
    /// (the weights reshaped), which must agree exactly.
    func testConvProjectionEqualsLinearProjection() throws {
        var c = try Component.config(UNetConfig.self, try MVDFixture.dir() + "/unet")
        c.layersPerBlock = [2, 1]
        c.transformerLayersPerBlock = [2, 1]
        let lin = RandomWeights(seed: 3)
        let wl = try UNetTensors.declare(c, lin)
        var cc = c
        cc.useLinearProjection = false
        let conv = RandomWeights(seed: 3)
        let wc = try UNetTensors.declare(cc, conv)
        let a = try UNet2DConditionModel(config: c, weights: wl), b = try UNet2DConditionModel(config: cc, weights: wc)
        var rng = SplitMix(seed: 7)
        let x = (0..<(2 * 4 * 16 * 24)).map { _ in rng.normal() }, ctx = (0..<(2 * 5 * 32)).map { _ in rng.normal() }
        let ya = try a.forward(sample: x, batch: 2, height: 16, width: 24, timestep: 500, context: ctx, pool: Self.pool)
        let yb = try b.forward(sample: x, batch: 2, height: 16, width: 24, timestep: 500, context: ctx, pool: Self.pool)
        XCTAssertEqual(ya, yb)
        // Batch items are independent: item 1 alone gives the same result (to fp32 reassociation: with
        // another thread count the attention may split its keys and merge partial softmaxes differently).
        let y1 = try a.forward(sample: Array(x[(4 * 16 * 24)...]), batch: 1, height: 16, width: 24, timestep: 500,
                               context: Array(ctx[(5 * 32)...]), pool: nil)
        XCTAssertLessThanOrEqual(scaledMaxError(y1, Array(ya[(4 * 16 * 24)...])), 5e-6)
    }

    // MARK: speed
}

#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
import HunyuanNN
@testable import HunyuanDiffusion

/// The hunyuandit-tiny fixture (`$HUNYUAN_SHARED/fixtures/t2i/hunyuandit-tiny`): diffusers'
/// HunyuanDiT PAG pipeline as Hunyuan3D-1.0 calls it, tiny random components, every intermediate.
enum DiTFixture {
    static func dir() throws -> String {
        let d = MVDFixture.sharedDir + "/fixtures/t2i/hunyuandit-tiny"
        guard FileSystem.isDirectory(d) else { throw XCTSkip("no t2i fixture at \(d) (set HUNYUAN_SHARED)") }
        return d
    }
    static func reference() throws -> Checkpoint { try Checkpoint(path: try dir() + "/reference.safetensors") }
    static func inputs() throws -> Checkpoint { try Checkpoint(path: try dir() + "/inputs.safetensors") }
}

/// HunyuanDiT2DModel, its conditioning and rotary tables, PAG + CFG guidance and the DDPM scheduler
/// against the reference pipeline's recorded tensors (tolerance 1e-4 scaled by max(1, max|ref|)).
final class HunyuanDiTTests: XCTestCase {
    func floats(_ ck: Checkpoint, _ name: String) throws -> [Float] { try ck.require(name).floats() }
    func ints(_ ck: Checkpoint, _ name: String) throws -> [Int32] { try ck.require(name).int64s().map { Int32($0) } }

    func testConfigAndRotaryTables() throws {
        let dir = try DiTFixture.dir(), ref = try DiTFixture.reference()
        let c = try Component.config(HunyuanDiTConfig.self, dir + "/transformer")
        XCTAssertEqual(c.innerDim, 32)
        XCTAssertEqual(c.ffDim, 139)
        XCTAssertTrue(c.useStyleCondAndImageMetaSize)  // absent key → diffusers' default
        XCTAssertEqual(c.extraInDim, 1592)
        let r = HunyuanDiTRoPE.region(gridH: 7, gridW: 5)
        XCTAssertEqual([r.top, r.left, r.bottom, r.right], [0, 4, 32, 27])  // half-to-even: round(4.5) = 4
        let full = HunyuanDiTRoPE.region(gridH: 64, gridW: 64)
        XCTAssertEqual([full.top, full.left, full.bottom, full.right], [0, 0, 32, 32])
        let t = HunyuanDiTRoPE.tables(gridH: 7, gridW: 5, headDim: 16)
        XCTAssertLessThan(scaledMaxError(t.cos, try floats(ref, "rope_cos")), 1e-6)
        XCTAssertLessThan(scaledMaxError(t.sin, try floats(ref, "rope_sin")), 1e-6)
        XCTAssertEqual(HunyuanDiTConfig.v1_1.ffDim, 6144)
    }

    func testSchedulerMatchesDiffusers() throws {
        let dir = try DiTFixture.dir(), ref = try DiTFixture.reference()
        let s = try DDPMScheduler(folder: dir + "/scheduler")
        XCTAssertLessThan(scaledMaxError(s.alphasCumprod, try floats(ref, "alphas_cumprod")), 1e-7)  // ≤ 1 ulp
        let (t, prev) = try s.timesteps(steps: 3)
        XCTAssertEqual(t, [667, 334, 1])
        XCTAssertEqual(prev, [334, 1, -332])
        XCTAssertEqual(try s.timesteps(steps: 25).timesteps.prefix(3), [961, 921, 881])
        XCTAssertEqual(try s.timesteps(steps: 25).timesteps.last, 1)
        XCTAssertThrowsError(try s.timesteps(steps: 0))
        var bad = SchedulerConfig()
        bad.variance_type = "learned_range"
        XCTAssertThrowsError(try DDPMScheduler(config: bad))
    }

    /// The step-independent conditioning, every step's DiT output (CFG + PAG batch), the guidance,
    /// the DDPM step, then the VAE decode and the uint8 image.
    func testDenoisingLoopMatchesReference() throws {
        let dir = try DiTFixture.dir(), ref = try DiTFixture.reference(), inp = try DiTFixture.inputs()
        let model = try HunyuanDiT2DModel(folder: dir + "/transformer")
        let cond = try model.condition(batch: 3, bert: try floats(ref, "dit_encoder_hidden_states"),
                                       bertMask: try ints(ref, "dit_text_embedding_mask"),
                                       t5: try floats(ref, "dit_encoder_hidden_states_t5"),
                                       t5Mask: try ints(ref, "dit_text_embedding_mask_t5"),
                                       imageMetaSize: try floats(ref, "image_meta_size"), pool: nil)
        for (name, ours) in [("text_states_after_padding", cond.text), ("pooled_t5", cond.pooled), ("extra_cond", cond.extraInput)] {
            let e = scaledMaxError(ours, try floats(ref, name))
            print("\(name) max scaled error \(e)")
            XCTAssertLessThan(e, 1e-4, name)
        }

        let sched = try DDPMScheduler(folder: dir + "/scheduler")
        let (ts, prev) = try sched.timesteps(steps: 3)
        let rope = model.rotaryTables(latentHeight: 14, latentWidth: 10)
        let n = 4 * 14 * 10
        var x = try floats(inp, "initial_noise")
        let pool = ThreadPool(threads: 2)
        for i in 0..<3 {
            XCTAssertLessThan(scaledMaxError(x, try floats(ref, "step\(i)_latents_in")), 1e-4, "step \(i) latents in")
            // The model sees the reference's own input, so each step's error is its own.
            let xin = try floats(ref, "step\(i)_latents_in")
            var temb: [Float] = []
            let trace: Trace = { name, _, v in if name == "temb" { temb = Array(v) } }
            let out = try model.forward(latents: xin + xin + xin, batch: 3, height: 14, width: 10, timestep: Float(ts[i]),
                                        cond: cond, rope: rope, identityAttention: [false, false, true],
                                        pagLayers: [1, 2, 3, 4], pool: pool, trace: trace)
            XCTAssertLessThan(scaledMaxError(temb, try floats(ref, "step\(i)_temb")), 1e-4, "step \(i) temb")
            let e = scaledMaxError(out, try floats(ref, "step\(i)_dit_out"))
            print("step\(i)_dit_out max scaled error \(e)")
            XCTAssertLessThan(e, 1e-4, "step \(i) dit_out")
            // g = u + 5·(c − u) + 1.3·(c − p) on the first 4 of 8 channels.
            let refOut = try floats(ref, "step\(i)_dit_out"), per = 8 * 14 * 10
            var g = [Float](repeating: 0, count: n)
            for j in 0..<n {
                let u = refOut[j], c = refOut[per + j], p = refOut[2 * per + j]
                g[j] = u + 5 * (c - u) + 1.3 * (c - p)
            }
            XCTAssertLessThan(scaledMaxError(g, try floats(ref, "step\(i)_guided")), 1e-5, "step \(i) guided")
            var y = xin, x0 = [Float](repeating: 0, count: n)
            let noise = try floats(inp, "step\(i)_variance_noise")
            try sched.step(&y, modelOut: g, noise: noise, n, timestep: ts[i], previous: prev[i], x0: &x0)
            XCTAssertLessThan(scaledMaxError(x0, try floats(ref, "step\(i)_pred_x0")), 1e-5, "step \(i) x0")
            XCTAssertLessThan(scaledMaxError(y, try floats(ref, "step\(i)_latents_out")), 1e-5, "step \(i) latents out")
            // Our own chain, from our own output.
            var gg = [Float](repeating: 0, count: n)
            for j in 0..<n { gg[j] = out[j] + 5 * (out[per + j] - out[j]) + 1.3 * (out[per + j] - out[2 * per + j]) }
            try sched.step(&x, modelOut: gg, noise: noise, n, timestep: ts[i], previous: prev[i])
        }
        XCTAssertLessThan(scaledMaxError(x, try floats(ref, "step2_latents_out")), 1e-4, "final latents")
        let vae = try AutoencoderKL(folder: dir + "/vae")
        let decoded = try vae.decode(x.map { $0 / vae.config.scalingFactor }, height: 14, width: 10, pool: pool)
        print("decoded max scaled error \(scaledMaxError(decoded, try floats(ref, "decoded")))")
        XCTAssertLessThan(scaledMaxError(decoded, try floats(ref, "decoded")), 1e-4, "decoded")
        let u8 = try ref.require("image_u8")
        let refU8 = Array(u8.data)
        var worst = 0
        for yy in 0..<112 {
            for xx in 0..<80 {
                for ch in 0..<3 {
                    let v = min(max(decoded[(ch * 112 + yy) * 80 + xx] / 2 + 0.5, 0), 1) * 255
                    let q = Int(v.rounded(.toNearestOrEven))
                    worst = max(worst, abs(q - Int(refU8[(yy * 80 + xx) * 3 + ch])))
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "image_u8")
    }

    /// blocks.4.attn1 at step 0 under PAG: rows 0-1 attend, row 2 is to_out(to_v(x)).
    func testPAGIdentityAttention() throws {
        let dir = try DiTFixture.dir(), ref = try DiTFixture.reference()
        let model = try HunyuanDiT2DModel(folder: dir + "/transformer")
        let cond = try model.condition(batch: 3, bert: try floats(ref, "dit_encoder_hidden_states"),
                                       bertMask: try ints(ref, "dit_text_embedding_mask"),
                                       t5: try floats(ref, "dit_encoder_hidden_states_t5"),
                                       t5Mask: try ints(ref, "dit_text_embedding_mask_t5"),
                                       imageMetaSize: try floats(ref, "image_meta_size"), pool: nil)
        let xin = try floats(ref, "step0_latents_in")
        // PAG in blocks 1-4, then in 1-3 only: block 4 sees the same input and attends normally.
        for pag in [true, false] {
            var seenIn: [Float] = [], seenOut: [Float] = []
            let trace: Trace = { name, _, v in
                if name == "blocks.4.attn1.in" { seenIn = Array(v) }
                if name == "blocks.4.attn1.out" { seenOut = Array(v) }
            }
            _ = try model.forward(latents: xin + xin + xin, batch: 3, height: 14, width: 10, timestep: 667, cond: cond,
                                  rope: model.rotaryTables(latentHeight: 14, latentWidth: 10),
                                  identityAttention: [false, false, true], pagLayers: pag ? [1, 2, 3, 4] : [1, 2, 3],
                                  pool: nil, trace: trace)
            XCTAssertLessThan(scaledMaxError(seenIn, try floats(ref, "step0_block4_attn1_in")), 1e-4)
            let expected = try floats(ref, pag ? "step0_block4_attn1_out_pag" : "step0_block4_attn1_out_normal")
            XCTAssertLessThan(scaledMaxError(seenOut, expected), 1e-4, pag ? "PAG" : "normal")
        }
    }

    func testBadInputsAreErrors() throws {
        let dir = try DiTFixture.dir(), ref = try DiTFixture.reference()
        let model = try HunyuanDiT2DModel(folder: dir + "/transformer")
        XCTAssertThrowsError(try model.condition(batch: 2, bert: try floats(ref, "dit_encoder_hidden_states"),
                                                 bertMask: [], t5: [], t5Mask: [], imageMetaSize: [], pool: nil))
        let cond = try model.condition(batch: 3, bert: try floats(ref, "dit_encoder_hidden_states"),
                                       bertMask: try ints(ref, "dit_text_embedding_mask"),
                                       t5: try floats(ref, "dit_encoder_hidden_states_t5"),
                                       t5Mask: try ints(ref, "dit_text_embedding_mask_t5"),
                                       imageMetaSize: try floats(ref, "image_meta_size"), pool: nil)
        let rope = model.rotaryTables(latentHeight: 14, latentWidth: 10)
        XCTAssertThrowsError(try model.forward(latents: [Float](repeating: 0, count: 3 * 4 * 14 * 10), batch: 3, height: 13,
                                               width: 10, timestep: 1, cond: cond, rope: rope, pool: nil))
        XCTAssertThrowsError(try model.forward(latents: [Float](repeating: 0, count: 3 * 4 * 14 * 10), batch: 3, height: 14,
                                               width: 10, timestep: 1, cond: cond, rope: rope, pool: nil,
                                               shouldStop: { true })) { e in
            XCTAssertEqual((e as? HYError)?.kind, .aborted)
        }
        XCTAssertThrowsError(try HunyuanDiT2DModel(folder: dir + "/vae"))
    }
}

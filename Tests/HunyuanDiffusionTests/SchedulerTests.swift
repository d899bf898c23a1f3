import XCTest
import HunyuanCore
@testable import HunyuanDiffusion

/// The Euler-ancestral scheduler and the CLIP image processor against the official run recorded in
/// the mvd-lite-tiny fixture (diffusers 0.31 / transformers 4.46).
final class SchedulerTests: XCTestCase {
    func testScheduleMatchesDiffusers() throws {
        let d = try MVDFixture.dir(), ref = try MVDFixture.reference(), inp = try MVDFixture.inputs()
        let s = try EulerAncestralScheduler(folder: d + "/scheduler")
        XCTAssertEqual(s.prediction, .vPrediction)
        let sched = try s.schedule(steps: 2)
        let t = try ref.require("timesteps").floats(), sig = try ref.require("sigmas").floats()
        XCTAssertEqual(sched.timesteps, t)
        let e = scaledMaxError(sched.sigmas, sig)
        print("sigmas max scaled error \(e)")
        XCTAssertLessThan(e, 1e-6)
        // latents_T = initial_noise · init_noise_sigma (σ_max for linspace spacing)
        let noise = try inp.require("initial_noise").floats()
        let lat = noise.map { $0 * sched.initNoiseSigma }
        XCTAssertLessThan(scaledMaxError(lat, try ref.require("latents_T").floats()), 1e-6)
    }

    func testStepReproducesTheRecordedLatents() throws {
        let d = try MVDFixture.dir(), ref = try MVDFixture.reference(), inp = try MVDFixture.inputs()
        let s = try EulerAncestralScheduler(folder: d + "/scheduler")
        let sched = try s.schedule(steps: 2)
        var x = try ref.require("latents_T").floats()
        for i in 0..<2 {
            let guided = try ref.require("step\(i)_guided").floats()
            let noise = try inp.require("step\(i)_ancestral_noise").floats()
            x.withUnsafeMutableBufferPointer { xp in
                s.step(xp.baseAddress!, modelOut: guided, noise: noise, xp.count, schedule: sched, index: i)
            }
            let e = scaledMaxError(x, try ref.require("step\(i)_latents").floats())
            print("step \(i) latents scaled error \(e)")
            XCTAssertLessThan(e, 1e-5)
        }
    }

    func testOtherSpacingsAndErrors() throws {
        var c = EulerAncestralScheduler.Config()
        c.beta_schedule = "scaled_linear"; c.beta_start = 0.00085; c.beta_end = 0.012
        c.timestep_spacing = "leading"; c.steps_offset = 1
        let lead = try EulerAncestralScheduler(config: c).schedule(steps: 50)
        // diffusers: arange(0, 50)·20, reversed, + 1
        XCTAssertEqual(lead.timesteps.first, 981); XCTAssertEqual(lead.timesteps.last, 1)
        XCTAssertGreaterThan(lead.initNoiseSigma, lead.sigmas[0])
        c.timestep_spacing = "trailing"
        let trail = try EulerAncestralScheduler(config: c).schedule(steps: 3)
        XCTAssertEqual(trail.timesteps, [999, 666, 332])   // round([1000, 666.67, 333.33]) − 1
        c.timestep_spacing = "karras"
        XCTAssertThrowsError(try EulerAncestralScheduler(config: c))
        c.timestep_spacing = "linspace"; c.prediction_type = "sample"
        XCTAssertThrowsError(try EulerAncestralScheduler(config: c))
        c.prediction_type = "epsilon"
        XCTAssertThrowsError(try EulerAncestralScheduler(config: c).schedule(steps: 0))
        XCTAssertThrowsError(try EulerAncestralScheduler(config: c).schedule(steps: 1001))
    }

    func testImageProcessorsReproduceThePixelValues() throws {
        let d = try MVDFixture.dir(), inp = try MVDFixture.inputs()
        let rgb = try inp.require("cond_rgb_u8")
        let bytes = Array(rgb.data)
        for (folder, name) in [("feature_extractor_vae", "pixel_values_vae"), ("feature_extractor_clip", "pixel_values_clip")] {
            let p = try CLIPImageProcessor(folder: d + "/" + folder)
            let out = p.preprocess(rgb: bytes, width: rgb.shape[1], height: rgb.shape[0])
            let ref = try inp.require(name)
            XCTAssertEqual([1, 3, out.height, out.width], ref.shape)
            let e = scaledMaxError(out.pixels, ref.floats())
            print("\(name) max scaled error \(e)")
            XCTAssertLessThan(e, 1e-6)
        }
    }
}

/// The CLIP tokenizer on the fixture's tokenizer folder (the pipeline's empty prompt and the tiny
/// vocabulary's words).
final class CLIPTokenizerTests: XCTestCase {
    func testEmptyPromptAndWords() throws {
        let d = try MVDFixture.dir()
        let tok = try CLIPTokenizer(folder: d + "/tokenizer")
        let ref = try MVDFixture.inputs().require("input_ids")
        let ids = ref.data.bindMemory(to: Int64.self).map { Int32($0) }
        XCTAssertEqual(tok.encode(""), ids)
        XCTAssertEqual(tok.maxLength, 8)
        // "a" and "b" are whole words of the vocabulary; "A  b\n" normalises to the same
        XCTAssertEqual(tok.encode("a b"), [1, 3, 4, 2, 0, 0, 0, 0])
        XCTAssertEqual(tok.encode("A \t B\n"), [1, 3, 4, 2, 0, 0, 0, 0])
        // truncation keeps eos last
        XCTAssertEqual(tok.encode("a a a a a a a a a"), [1, 3, 3, 3, 3, 3, 3, 2])
        XCTAssertEqual(CLIPTokenizer.pieces("it's 12 cats!!"), ["it", "'s", "1", "2", "cats", "!!"])
        XCTAssertThrowsError(try CLIPTokenizer(folder: d + "/unet"))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
import HunyuanNN
@testable import HunyuanDiffusion

/// diffusers AutoencoderKL against the mvd-lite-tiny fixture (convention 2 and the final decode).
final class VAETests: XCTestCase {
    func testEncodeMatchesConditionLatents() throws {
        let d = try MVDFixture.dir(), inp = try MVDFixture.inputs(), ref = try MVDFixture.reference()
        let vae = try AutoencoderKL(folder: d + "/vae")
        XCTAssertEqual(vae.scaleFactor, 2)
        XCTAssertEqual(vae.config.scalingFactor, 0.18215)
        let pool = ThreadPool()
        let px = inp.tensor("pixel_values_vae")!.floats()
        let condLat = ref.tensor("cond_lat")!.floats()
        let n = condLat.count / 2
        for (which, image, noiseName) in [(1, px, "vae_posterior_noise_cond"), (0, [Float](repeating: 0, count: px.count), "vae_posterior_noise_neg")] {
            let noise = inp.tensor(noiseName)!.floats()
            let t0 = now()
            let (mean, logvar) = try vae.encode(image, height: 160, width: 160, pool: pool)
            let ms = (now() - t0) * 1000
            XCTAssertEqual(mean.count, n)
            let sample = (0..<n).map { mean[$0] + expf(0.5 * logvar[$0]) * noise[$0] }
            let err = scaledMaxError(sample, Array(condLat[(which * n)..<((which + 1) * n)]))
            print("VAE encode → cond_lat[\(which)]: scaled max error \(err), \(String(format: "%.1f", ms)) ms")
            XCTAssertLessThanOrEqual(err, 1e-4)
        }
    }

    func testDecodeMatchesReference() throws {
        let d = try MVDFixture.dir(), ref = try MVDFixture.reference()
        let vae = try AutoencoderKL(folder: d + "/vae")
        let pool = ThreadPool()
        let z = ref.tensor("decode_in")!.floats()
        let t0 = now()
        let out = try vae.decode(z, height: 120, width: 80, pool: pool)
        let ms = (now() - t0) * 1000
        let err = scaledMaxError(out, ref.tensor("decoded")!.floats())
        print("VAE decode → decoded: scaled max error \(err), \(String(format: "%.1f", ms)) ms")
        XCTAssertLessThanOrEqual(err, 1e-4)
    }

    /// bf16 products (`ComputePrecision.bf16`): encode and decode near the reference at bf16 autocast
    /// tolerance (fp32's where the CPU lacks AVX512_BF16).
    func testBF16ProductsStayNearReference() throws {
        let d = try MVDFixture.dir(), inp = try MVDFixture.inputs(), ref = try MVDFixture.reference()
        let vae = try AutoencoderKL(folder: d + "/vae", compute: .bf16)
        let pool = ThreadPool()
        let bound: Float = CPUFeatures.avx512bf16 ? 2e-2 : 1e-4
        let out = try vae.decode(ref.tensor("decode_in")!.floats(), height: 120, width: 80, pool: pool)
        let ed = scaledMaxError(out, ref.tensor("decoded")!.floats())
        let (mean, logvar) = try vae.encode(inp.tensor("pixel_values_vae")!.floats(), height: 160, width: 160, pool: pool)
        let noise = inp.tensor("vae_posterior_noise_cond")!.floats(), condLat = ref.tensor("cond_lat")!.floats()
        let n = condLat.count / 2
        let sample = (0..<n).map { mean[$0] + expf(0.5 * logvar[$0]) * noise[$0] }
        let ee = scaledMaxError(sample, Array(condLat[n..<(2 * n)]))
        print("VAE bf16 products: decode scaled error \(ed), encode \(ee) (bound \(bound))")
        XCTAssertLessThanOrEqual(ed, bound)
        XCTAssertLessThanOrEqual(ee, bound)
    }

    func testTraceAndStop() throws {
        let d = try MVDFixture.dir()
        let vae = try AutoencoderKL(folder: d + "/vae")
        var names: [String] = []
        _ = try vae.decode([Float](repeating: 0.1, count: 4 * 6 * 4), height: 6, width: 4, pool: nil,
                           trace: { n, _, _ in names.append(n) })
        XCTAssertEqual(names, ["decoder.conv_in", "decoder.mid_block", "decoder.up_blocks.0", "decoder.up_blocks.1"])
        XCTAssertThrowsError(try vae.encode([Float](repeating: 0, count: 3 * 8 * 8), height: 8, width: 8, pool: nil,
                                            shouldStop: { true })) { e in
            XCTAssertEqual((e as? HYError)?.kind, .aborted)
        }
    }

    func testInputErrors() throws {
        let d = try MVDFixture.dir()
        let vae = try AutoencoderKL(folder: d + "/vae")
        XCTAssertThrowsError(try vae.encode([Float](repeating: 0, count: 3 * 161 * 160), height: 161, width: 160, pool: nil)) { e in
            XCTAssertTrue("\(e)".contains("161×160") && "\(e)".contains("scale factor 2"), "\(e)")
        }
        XCTAssertThrowsError(try vae.encode([Float](repeating: 0, count: 10), height: 160, width: 160, pool: nil))
        XCTAssertThrowsError(try vae.decode([Float](repeating: 0, count: 10), height: 4, width: 4, pool: nil))
    }

    func testCheckpointErrorsNameTheTensor() throws {
        let name = "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"
        let missing = try componentCopy("vae") { $0.removeAll { $0.name == name } }
        expectError(.format, name) { _ = try AutoencoderKL(folder: missing) }
        let misshapen = try componentCopy("vae") { items in
            let i = items.firstIndex { $0.name == name }!
            items[i] = .init(name: name, dtype: .f32, shape: [8, 16, 1, 2], bytes: items[i].bytes + items[i].bytes)
        }
        expectError(.format, name) { _ = try AutoencoderKL(folder: misshapen) }
        let leftover = try componentCopy("vae") { $0.append(.init(name: "encoder.extra.weight", shape: [2], floats: [1, 2])) }
        expectError(.format, "encoder.extra.weight") { _ = try AutoencoderKL(folder: leftover) }
        // no mid attention in the config: its tensors are left over
        let noAttn = try componentCopy("vae", config: { $0.replacingOccurrences("\"mid_block_add_attention\": true", "\"mid_block_add_attention\": false") })
        expectError(.format, "mid_block.attentions.0") { _ = try AutoencoderKL(folder: noAttn) }
        let badType = try componentCopy("vae", config: { $0.replacingOccurrences("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\"") })
        expectError(.unsupported, "act_fn") { _ = try AutoencoderKL(folder: badType) }
    }

    /// Files written before diffusers 0.14 name the mid attention query/key/value/proj_attn.
    func testLegacyAttentionNamesLoad() throws {
        let renames = ["to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"]
        let legacy = try componentCopy("vae") { items in
            for i in items.indices {
                for (new, old) in renames where items[i].name.contains("attentions.0.\(new).") {
                    items[i].name = items[i].name.replacingOccurrences("attentions.0.\(new).", "attentions.0.\(old).")
                }
            }
        }
        let a = try AutoencoderKL(folder: legacy), b = try AutoencoderKL(folder: try MVDFixture.dir() + "/vae")
        let z: [Float] = (0..<(4 * 6 * 4)).map { (i: Int) -> Float in Float(i % 7) * 0.1 - 0.3 }
        XCTAssertEqual(try a.decode(z, height: 6, width: 4, pool: nil), try b.decode(z, height: 6, width: 4, pool: nil))
    }

    /// SD2's VAE (stabilityai/stable-diffusion-2 vae/config.json): 83,653,863 parameters.
    func testFullSizeParameterCount() throws {
        let c = AutoencoderKLConfig.stableDiffusion2
        let t = try AutoencoderKLTensors.table(for: c)
        XCTAssertEqual(t.parameterCount, 83_653_863)
        XCTAssertEqual(c.scaleFactor, 8)
        XCTAssertEqual(t.entry("decoder.up_blocks.3.resnets.0.conv_shortcut.weight")?.shape, [128, 256, 1, 1])
        XCTAssertEqual(t.entry("encoder.down_blocks.2.downsamplers.0.conv.weight")?.shape, [512, 512, 3, 3])
        XCTAssertNil(t.entry("encoder.down_blocks.3.downsamplers.0.conv.weight"))
    }
}

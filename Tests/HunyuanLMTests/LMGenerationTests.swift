import XCTest
import Foundation
@testable import HunyuanLM
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

/// Abort, generation and sampling; weight formats and threading on the generation path.
final class LMGenerationTests: LMFixtureTestCase {
    // MARK: - Abort, generation, sampling

    func testAbortDuringPrefillLeavesSessionUsable() throws {
        let dir = FileSystem.join(Self.fixturesRoot, "hunyuan-large-tiny")
        guard FileSystem.isDirectory(dir) else { throw XCTSkip("fixture hunyuan-large-tiny not found at \(dir)") }
        let ref = try reference(dir)
        let model = try HunyuanModel(path: dir)
        let s = try InferenceSession(model: model, threads: 1)
        try s.eval(Array(ref.inputIds[0..<4]))
        var polls = 0
        // Polled once per layer: stop in the middle of the second layer's turn.
        assertStatus(.aborted, "abort") {
            try s.eval(Array(ref.inputIds[4...]), shouldAbort: { polls += 1; return polls > 1 })
        }
        XCTAssertEqual(polls, 2)
        XCTAssertEqual(s.count, 4)
        try s.eval(Array(ref.inputIds[4...]), allLogits: true)
        let v = ref.vocab
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(s.allLogits, Array(ref.logits[(4 * v)...])), 1e-4)
    }

    func testGeneratorGreedyMatchesReferenceAndStops() throws {
        for dir in try fixtureDirs() {
            let ref = try reference(dir)
            let model = try HunyuanModel(path: dir)
            let s = try InferenceSession(model: model, threads: 2)
            var o = GenerateOptions()
            o.maxTokens = ref.greedy.count
            o.sampler.greedy = true
            o.eosTokenIds = []
            var streamed: [Int32] = []
            let r = try Generator.generate(session: s, prompt: ref.inputIds, options: o, onToken: { streamed.append($0); return true })
            XCTAssertEqual(r.tokens, ref.greedy, dir)
            XCTAssertEqual(streamed, ref.greedy, dir)
            XCTAssertEqual(r.reason, .maxTokens)
            // Stop at an eos id: the first greedy token is declared eos.
            s.reset()
            o.eosTokenIds = [Int(ref.greedy[0])]
            let r2 = try Generator.generate(session: s, prompt: ref.inputIds, options: o)
            XCTAssertEqual(r2.tokens, [ref.greedy[0]])
            XCTAssertEqual(r2.reason, .eos)
            // Abort before the first token.
            s.reset()
            assertStatus(.aborted, "abort generate") {
                _ = try Generator.generate(session: s, prompt: ref.inputIds, options: o, shouldAbort: { true })
            }
        }
    }

    func testSamplerSemantics() throws {
        // logits: token 0..4
        let logits: [Float] = [2.0, 1.0, -1.0, 0.5, 1.9]
        func run(_ p: SamplerParams, history: [Int32] = [], n: Int = 400) throws -> [Int32: Int] {
            let smp = try Sampler(params: p, vocabSize: logits.count)
            var hist: [Int32: Int] = [:]
            for _ in 0..<n { logits.withUnsafeBufferPointer { hist[smp.sample($0, history: history), default: 0] += 1 } }
            return hist
        }
        var p = SamplerParams()
        p.greedy = true
        XCTAssertEqual(try run(p, n: 1), [0: 1])
        // HF repetition penalty: positive logits divided (2.0/1.5 = 1.33 < 1.9), negative multiplied.
        p.repetitionPenalty = 1.5
        XCTAssertEqual(try run(p, history: [0, 0], n: 1), [4: 1])
        // top-k 2 keeps tokens 0 and 4 only.
        p = SamplerParams(); p.topK = 2; p.seed = 7
        XCTAssertEqual(Set(try run(p).keys), [0, 4])
        // top-p: probabilities ∝ e^l: p0 ≈ .38, p4 ≈ .34, p1 ≈ .14 ... top_p 0.5 keeps {0, 4}; 0.3 keeps {0}.
        p = SamplerParams(); p.topP = 0.5; p.seed = 3
        XCTAssertEqual(Set(try run(p).keys), [0, 4])
        p.topP = 0.3
        XCTAssertEqual(Set(try run(p).keys), [0])
        // min-p 0.3: keeps tokens with e^(l-2) ≥ 0.3 → l ≥ 0.796: {0, 1, 4}.
        p = SamplerParams(); p.minP = 0.3; p.seed = 5
        XCTAssertEqual(Set(try run(p, n: 2000).keys), [0, 1, 4])
        // Same seed, same draws; frequencies follow the softmax (p0 ≈ 0.378).
        p = SamplerParams(); p.seed = 11
        let a = try run(p, n: 4000), b = try run(p, n: 4000)
        XCTAssertEqual(a, b)
        let z = logits.map { exp(Double($0)) }.reduce(0, +)
        XCTAssertEqual(Double(a[0] ?? 0) / 4000, exp(2.0) / z, accuracy: 0.03)
        // Large vocabulary: top-k / top-p / min-p sets equal a brute-force reference.
        var gen = SplitMix64(seed: 99)
        let big = (0..<5000).map { _ in Float(gen.nextDouble() * 12 - 6) }
        let maxL = big.max()!
        let probs = big.map { exp(Double($0 - maxL)) }
        let z2 = probs.reduce(0, +)
        let ranked = (0..<big.count).sorted { big[$0] > big[$1] || (big[$0] == big[$1] && $0 < $1) }
        var topPSet = Set<Int32>(), cum = 0.0
        for i in ranked { topPSet.insert(Int32(i)); cum += probs[i] / z2; if cum >= 0.3 { break } }
        for (params, expected) in [({ var q = SamplerParams(); q.topK = 7; return q }(), Set(ranked.prefix(7).map { Int32($0) })),
                                   ({ var q = SamplerParams(); q.topP = 0.3; return q }(), topPSet)] {
            var q = params
            q.seed = 1
            let smp = try Sampler(params: q, vocabSize: big.count)
            var seen = Set<Int32>()
            for _ in 0..<3000 { _ = big.withUnsafeBufferPointer { seen.insert(smp.sample($0, history: [])) } }
            XCTAssertTrue(seen.isSubset(of: expected), "sampled outside the reference set")
            XCTAssertGreaterThan(seen.count, expected.count / 2)
        }
        // Invalid values are errors.
        p = SamplerParams(); p.topP = 0
        XCTAssertThrowsError(try Sampler(params: p, vocabSize: 5))
    }

    /// f16 weights: the same values stored as f16 and as f32 (f16 → f32 is exact) must give the same
    /// logits, so the f16 path is checked against the f32 path the fixtures verify.
    func testF16WeightsMatchSameValuesInF32() throws {
        let dir = FileSystem.join(Self.fixturesRoot, "hunyuan-a13b-tiny")
        guard FileSystem.isDirectory(dir) else { throw XCTSkip("fixture hunyuan-a13b-tiny not found at \(dir)") }
        let ref = try reference(dir)
        let f16 = try rewrittenCheckpoint(dir, "f16") { t in
            SafetensorsWriter.Item(name: t.name, shape: t.shape, floats: t.floats(), as: .f16)
        }
        let f32 = try rewrittenCheckpoint(dir, "f16as32") { t in
            let v = t.floats().map { FloatBits.f16ToFloat(FloatBits.floatToF16($0)) }
            return SafetensorsWriter.Item(name: t.name, shape: t.shape, floats: v, as: .f32)
        }
        var outs: [[Float]] = []
        for d in [f16, f32] {
            let m = try HunyuanModel(path: d)
            let s = try InferenceSession(model: m, threads: 2)
            try s.eval(ref.inputIds, allLogits: true)
            outs.append(s.allLogits)
        }
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(outs[0], outs[1]), 1e-5)
        // And f16 rounding of the weights keeps the logits near the reference.
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(outs[0], ref.logits), 0.05)
    }

    /// Hunyuan-A13B-style config (per-layer lists, keys omitted) runs end to end on random weights,
    /// and full-sequence logits equal incremental ones.
    func testPerLayerListConfigRuns() throws {
        let text = """
        {"architectures": ["HunYuanMoEV1ForCausalLM"], "hidden_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 24,
         "moe_intermediate_size": [16, 20], "moe_topk": [1, 3], "num_shared_expert": [1, 2],
         "num_experts": 4, "vocab_size": 50, "rope_scaling": {"alpha": 1000.0, "type": "dynamic"},
         "rope_theta": 10000.0, "eos_token_id": [7, 8], "max_position_embeddings": 64}
        """
        let c = try HunyuanConfig.decode(try JSONValue.parse(text, context: "t"), context: "t")
        let dir = try tempDir("a13b")
        try RandomCheckpoint.write(config: c, configBytes: Array(text.utf8), to: dir, seed: 9, dtype: .bf16)
        let m = try HunyuanModel(path: dir)
        XCTAssertEqual(m.eosTokenIds, [7, 8])
        let ck = try Checkpoint(path: dir)
        XCTAssertEqual(ck.tensor("model.layers.1.mlp.shared_mlp.gate_proj.weight")?.shape, [48, 32])
        XCTAssertEqual(ck.tensor("model.layers.1.mlp.experts.3.down_proj.weight")?.shape, [32, 20])
        let ids: [Int32] = [3, 9, 27, 4, 49, 0, 12]
        let full = try InferenceSession(model: m, threads: 1)
        try full.eval(ids, allLogits: true)
        let inc = try InferenceSession(model: m, threads: 2)
        var all: [Float] = []
        for id in ids { try inc.eval([id]); all.append(contentsOf: inc.lastLogits) }
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(all, full.allLogits), 1e-5)
        XCTAssertTrue(full.allLogits.allSatisfy { $0.isFinite })
    }

    /// One model, several sessions evaluating at the same time on different threads.
    func testModelSharedAcrossConcurrentSessions() throws {
        let dir = FileSystem.join(Self.fixturesRoot, "hunyuan-large-tiny-bf16-sharded")
        guard FileSystem.isDirectory(dir) else { throw XCTSkip("fixture hunyuan-large-tiny-bf16-sharded not found at \(dir)") }
        let ref = try reference(dir)
        let model = try HunyuanModel(path: dir)
        let results = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4)
        defer { results.deallocate() }
        results.initialize(repeating: .infinity)
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            guard let s = try? InferenceSession(model: model, threads: 1 + k % 2),
                  (try? s.eval(ref.inputIds, allLogits: true)) != nil else { return }
            results[k] = Self.maxAbsDiff(s.allLogits, ref.logits)
        }
        for k in 0..<4 { XCTAssertLessThanOrEqual(results[k], 1e-4, "session \(k)") }
    }

    /// Matrices large enough for the threaded kernels: 2-thread decode (our matvecs, split over the
    /// pool) equals the 1-thread full forward (OpenBLAS GEMMs), for f32 and bf16 weights.
    func testThreadedDecodeMatchesGEMMForwardOnLargerModel() throws {
        let text = """
        {"architectures": ["HunYuanForCausalLM"], "hidden_size": 256, "num_hidden_layers": 3,
         "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 512, "num_experts": 3,
         "moe_topk": 2, "num_shared_expert": 1, "use_mixed_mlp_moe": true, "use_qk_norm": true,
         "use_cla": true, "cla_share_factor": 2, "vocab_size": 600, "rope_theta": 10000.0,
         "rope_scaling": {"alpha": 1000.0, "type": "dynamic"}, "max_position_embeddings": 64}
        """
        let c = try HunyuanConfig.decode(try JSONValue.parse(text, context: "t"), context: "t")
        for dtype in [DType.f32, .bf16] {
            let dir = try tempDir("threaded")
            try RandomCheckpoint.write(config: c, configBytes: Array(text.utf8), to: dir, seed: 21, dtype: dtype)
            let m = try HunyuanModel(path: dir)
            let ids: [Int32] = (0..<20).map { Int32(($0 * 37 + 11) % 600) }
            let full = try InferenceSession(model: m, threads: 1)
            try full.eval(ids, allLogits: true)
            let inc = try InferenceSession(model: m, threads: 2)
            try inc.eval(Array(ids[0..<3]), allLogits: true)
            var all = inc.allLogits
            for id in ids[3...] { try inc.eval(token: id); all.append(contentsOf: inc.lastLogits) }
            XCTAssertLessThanOrEqual(Self.maxAbsDiff(all, full.allLogits), 1e-4, "\(dtype)")
            let full2 = try InferenceSession(model: m, threads: 2)  // GEMMs split over 2 threads
            try full2.eval(ids, allLogits: true)
            XCTAssertLessThanOrEqual(Self.maxAbsDiff(full2.allLogits, full.allLogits), 1e-4, "\(dtype)")
            XCTAssertGreaterThan(full.allLogits.map(abs).max() ?? 0, 0.1)
        }
    }
}

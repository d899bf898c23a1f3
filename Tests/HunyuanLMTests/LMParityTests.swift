import XCTest
import Foundation
@testable import HunyuanLM
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

/// Parity of the language engine with the reference implementations on every fixture: full-sequence
/// logits, the trace, greedy continuation through the KV cache, f16/q8_0 caches, and CLA.
final class LMParityTests: LMFixtureTestCase {
    // MARK: - Parity

    func testFullSequenceLogitsMatchReference() throws {
        for dir in try fixtureDirs() {
            let ref = try reference(dir)
            let model = try HunyuanModel(path: dir)
            XCTAssertEqual(model.config.vocabSize, ref.vocab, dir)
            let s = try InferenceSession(model: model, threads: 1)
            try s.eval(ref.inputIds, allLogits: true)
            let d = Self.maxAbsDiff(s.allLogits, ref.logits)
            print("[parity] \(dir.split(separator: "/").last!): max |Δlogit| = \(d) over \(ref.inputIds.count) positions")
            XCTAssertLessThanOrEqual(d, 1e-4, "\(dir): max |Δlogit| \(d)")
        }
    }

    /// The trace names every stage in graph order, with shapes, and its `result_output` is the
    /// reference's logits (prefill in chunks of 8, so several chunks are traced).
    func testTraceNamesStagesAndCarriesReferenceLogits() throws {
        for dir in try fixtureDirs() {
            let ref = try reference(dir)
            let model = try HunyuanModel(path: dir)
            let c = model.config
            let s = try InferenceSession(model: model, threads: 2, chunk: 8)
            var names: [String] = [], logits: [Float] = []
            s.trace = { name, shape, values in
                names.append(name)
                if name == "result_output" { XCTAssertEqual(shape[1], c.vocabSize); logits += values }
                if name.hasPrefix("l_out.") || name.hasPrefix("attn_out.") { XCTAssertEqual(shape[1], c.hiddenSize) }
            }
            try s.eval(ref.inputIds, allLogits: true)
            let perChunk = ["inp_embd"] + (0..<c.numLayers).flatMap { ["attn_out.\($0)", "l_out.\($0)"] } + ["result_norm", "result_output"]
            let chunks = (ref.inputIds.count + 7) / 8
            XCTAssertEqual(names, Array((0..<chunks).map { _ in perChunk }.joined()), dir)
            XCTAssertLessThanOrEqual(Self.maxAbsDiff(logits, ref.logits), 1e-4, dir)
        }
    }

    func testGreedyThroughKVCacheOneAndTwoThreads() throws {
        for dir in try fixtureDirs() {
            let ref = try reference(dir)
            let model = try HunyuanModel(path: dir)
            for threads in [1, 2] {
                let s = try InferenceSession(model: model, threads: threads)
                try s.eval(ref.inputIds)
                let got = try Self.greedy(s, ref.greedy.count)
                XCTAssertEqual(got, ref.greedy, "\(dir) with \(threads) thread(s)")
            }
        }
    }

    func testIncrementalDecodeEqualsFullForward() throws {
        for dir in try fixtureDirs() {
            let ref = try reference(dir)
            let model = try HunyuanModel(path: dir)
            let full = try InferenceSession(model: model, threads: 2)
            try full.eval(ref.inputIds, allLogits: true)
            // Prefill in two uneven chunks then one token at a time, with a small GEMM chunk.
            let inc = try InferenceSession(model: model, threads: 2, chunk: 5)
            let split = ref.inputIds.count / 3
            let all = try Self.prefillThenDecode(inc, ref.inputIds, split: split)
            let d = Self.maxAbsDiff(all, full.allLogits)
            XCTAssertLessThanOrEqual(d, 1e-5, "\(dir): incremental vs full max |Δ| \(d)")
            XCTAssertLessThanOrEqual(Self.maxAbsDiff(all, ref.logits), 1e-4, dir)
        }
    }

    /// An f16 KV cache: half the bytes per token; prefill + decode logits within 5e-3 of the reference
    /// on every fixture (keys/values rounded to f16, relative error 2^-11), and the greedy tokens of the
    /// reference, per-layer (CLA reference) layout included.
    func testF16KVCacheAgainstReference() throws {
        for dir in try fixtureDirs() {
            let ref = try reference(dir)
            let model = try HunyuanModel(path: dir)
            let c = model.config
            for shared in [true, false] {
                let s = try InferenceSession(model: model, threads: 2, chunk: 7, sharedKVAcrossLayers: shared, kvType: .f16)
                let groups = shared ? c.kvGroups : c.numLayers
                XCTAssertEqual(s.cache.bytesPerToken, groups * 2 * c.numKVHeads * c.headDim * 2)
                let all = try Self.prefillThenDecode(s, ref.inputIds, split: ref.inputIds.count / 2)
                let d = Self.maxAbsDiff(all, ref.logits)
                print("[kv f16] \(dir.split(separator: "/").last!) shared \(shared): max |Δlogit| = \(d)")
                XCTAssertLessThanOrEqual(d, 5e-3, "\(dir): f16 KV max |Δlogit| \(d)")
                let got = try Self.greedy(s, ref.greedy.count)
                XCTAssertEqual(got, ref.greedy, "\(dir) f16 KV greedy")
            }
        }
    }

    /// A q8_0 KV cache on the built-in model (head_dim 64; the fixtures' head dims of 8–16 are not
    /// multiples of 32 and must be refused): 0.27 of the fp32 bytes; prefill + decode logits against
    /// the fp32 cache (itself checked against the reference on every fixture) within 0.5% of the logit range.
    func testQ8KVCache() throws {
        let model = try HunyuanModel(path: "builtin:hunyuan-tiny")
        let c = model.config
        let ref = try InferenceSession(model: model, threads: 2)
        let q8 = try InferenceSession(model: model, threads: 2, chunk: 9, kvType: .q8_0)
        XCTAssertEqual(q8.cache.bytesPerToken, c.kvGroups * 2 * c.numKVHeads * c.headDim / 32 * 34)
        let ids: [Int32] = (0..<40).map { Int32(($0 * 977 + 13) % 8192) }
        try ref.eval(ids, allLogits: true)
        let all = try Self.prefillThenDecode(q8, ids, split: 25)
        let range = (ref.allLogits.max() ?? 0) - (ref.allLogits.min() ?? 0)
        let d = Self.maxAbsDiff(all, ref.allLogits)
        print("[kv q8_0] hunyuan-tiny: max |Δlogit| = \(d) (logit range \(range))")
        XCTAssertLessThanOrEqual(d, 0.005 * range)
        for dir in try fixtureDirs() {
            let m = try HunyuanModel(path: dir)
            if m.config.headDim % 32 == 0 { continue }
            XCTAssertThrowsError(try InferenceSession(model: m, kvType: .q8_0)) { e in
                XCTAssertEqual((e as? HYError)?.kind, .unsupported, dir)
            }
        }
    }

    // MARK: - CLA

    func testCLACacheIsHalfOfPerLayerWithIdenticalLogits() throws {
        let dir = FileSystem.join(Self.fixturesRoot, "hunyuan-large-tiny")
        guard FileSystem.isDirectory(dir) else { throw XCTSkip("fixture hunyuan-large-tiny not found at \(dir)") }
        let ref = try reference(dir)
        let model = try HunyuanModel(path: dir)
        XCTAssertTrue(model.config.useCLA)
        XCTAssertEqual(model.config.claShareFactor, 2)
        let shared = try InferenceSession(model: model, threads: 1)
        let perLayer = try InferenceSession(model: model, threads: 1, sharedKVAcrossLayers: false)
        // Independent arithmetic: per layer, K and V of num_key_value_heads × head_dim fp32 values.
        let c = model.config
        let perLayerBytes = c.numLayers * 2 * c.numKVHeads * c.headDim * 4
        XCTAssertEqual(perLayer.cache.bytesPerToken, perLayerBytes)
        XCTAssertEqual(shared.cache.bytesPerToken * 2, perLayer.cache.bytesPerToken)
        try shared.eval(ref.inputIds, allLogits: true)
        try perLayer.eval(ref.inputIds, allLogits: true)
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(shared.allLogits, perLayer.allLogits), 1e-5)
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(perLayer.allLogits, ref.logits), 1e-4)
    }
}

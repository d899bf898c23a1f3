import XCTest
import Foundation
@testable import HunyuanLM
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

/// Parity of the language engine with the reference implementations, on every fixture folder in
/// $HUNYUAN_SHARED/fixtures/lm (default ../shared, relative to the package root), plus the KV-cache,
/// CLA and error contracts. Fixtures absent → skipped with the reason.
final class LanguageModelTests: XCTestCase {
    static var sharedRoot: String {
        if let p = getenv("HUNYUAN_SHARED") { return String(cString: p) }
        return "../shared"
    }
    static var fixturesRoot: String { FileSystem.join(sharedRoot, "fixtures/lm") }

    struct Reference {
        let inputIds: [Int32]
        let logits: [Float]
        let greedy: [Int32]
        let vocab: Int
    }

    func fixtureDirs() throws -> [String] {
        let root = Self.fixturesRoot
        guard FileSystem.isDirectory(root) else {
            throw XCTSkip("LM fixtures not found at \(root) (set HUNYUAN_SHARED to the shared folder)")
        }
        let dirs = try FileSystem.list(root).sorted().map { FileSystem.join(root, $0) }
            .filter { FileSystem.exists(FileSystem.join($0, "reference.safetensors")) }
        guard !dirs.isEmpty else { throw XCTSkip("no fixture folders with reference.safetensors in \(root)") }
        return dirs
    }

    func reference(_ dir: String) throws -> Reference {
        let f = try SafetensorsFile(path: FileSystem.join(dir, "reference.safetensors"))
        guard let ids = f.tensor("input_ids"), let lg = f.tensor("logits"), let g = f.tensor("greedy_ids") else {
            throw HYError.format("\(dir): reference.safetensors lacks input_ids/logits/greedy_ids")
        }
        return Reference(inputIds: ids.int64s().map { Int32($0) }, logits: lg.floats(),
                         greedy: g.int64s().map { Int32($0) }, vocab: lg.shape.last ?? 0)
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    static func argmax(_ p: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<p.count where p[i] > p[best] { best = i }
        return Int32(best)
    }

    /// Logits of every position of `ids`: the first `split` in one prefill, then one token at a time
    /// through the KV cache.
    static func prefillThenDecode(_ s: InferenceSession, _ ids: [Int32], split: Int) throws -> [Float] {
        try s.eval(Array(ids[0..<split]), allLogits: true)
        var all = s.allLogits
        for id in ids[split...] {
            try s.eval([id])
            all.append(contentsOf: s.lastLogits)
        }
        return all
    }

    /// n greedy tokens continuing the session's context.
    static func greedy(_ s: InferenceSession, _ n: Int) throws -> [Int32] {
        var got: [Int32] = []
        for _ in 0..<n {
            let id = argmax(s.lastLogits)
            got.append(id)
            try s.eval([id])
        }
        return got
    }

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

    // MARK: - Errors

    func tempDir(_ name: String) throws -> String {
        var template = Array("/tmp/hy-lmtest-\(name)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw HYError.io("mkdtemp failed")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func copyFile(_ src: String, _ dst: String) throws {
        let b = try FileSystem.readAll(src)
        try FileSystem.writeAtomically(dst, overwrite: true) { w in try b.withUnsafeBytes { try w($0) } }
    }

    /// A copy of `src` with the tensors transformed by `edit` (return nil to drop one).
    func rewrittenCheckpoint(_ src: String, _ name: String,
                             _ edit: (Tensor) -> SafetensorsWriter.Item?) throws -> String {
        let dir = try tempDir(name)
        try copyFile(FileSystem.join(src, "config.json"), FileSystem.join(dir, "config.json"))
        let ck = try Checkpoint(path: src)
        let items = ck.tensors.compactMap(edit)
        try SafetensorsWriter.write(items, to: FileSystem.join(dir, "model.safetensors"))
        return dir
    }

    static func item(_ t: Tensor) -> SafetensorsWriter.Item {
        SafetensorsWriter.Item(name: t.name, dtype: t.dtype, shape: t.shape, bytes: Array(t.data))
    }

    func assertStatus(_ status: HYError.Kind, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("\(what): no error")
        } catch let e as HYError {
            XCTAssertEqual(e.kind, status, "\(what): \(e.message)")
            XCTAssertFalse(e.message.isEmpty)
        } catch {
            XCTFail("\(what): unexpected error \(error)")
        }
    }

    func testCorruptAndMismatchedCheckpointsAreFormatErrors() throws {
        let dir = FileSystem.join(Self.fixturesRoot, "hunyuan-large-tiny")
        guard FileSystem.isDirectory(dir) else { throw XCTSkip("fixture hunyuan-large-tiny not found at \(dir)") }
        let missing = try rewrittenCheckpoint(dir, "missing") { $0.name == "model.layers.2.self_attn.k_proj.weight" ? nil : Self.item($0) }
        assertStatus(.format, "missing tensor") { _ = try HunyuanModel(path: missing) }
        do { _ = try HunyuanModel(path: missing) } catch let e as HYError {
            XCTAssertTrue(e.message.contains("model.layers.2.self_attn.k_proj.weight"), e.message)
        }
        let wrongShape = try rewrittenCheckpoint(dir, "shape") { t in
            if t.name == "model.layers.0.mlp.experts.1.up_proj.weight" {
                return SafetensorsWriter.Item(name: t.name, shape: [t.shape[0] - 1, t.shape[1]],
                                              floats: Array(t.floats().dropLast(t.shape[1])))
            }
            return Self.item(t)
        }
        assertStatus(.format, "wrong shape") { _ = try HunyuanModel(path: wrongShape) }
        // Truncated safetensors file.
        let trunc = try tempDir("trunc")
        try copyFile(FileSystem.join(dir, "config.json"), FileSystem.join(trunc, "config.json"))
        let bytes = try FileSystem.readAll(FileSystem.join(dir, "model.safetensors"))
        try FileSystem.writeAtomically(FileSystem.join(trunc, "model.safetensors"), overwrite: true) { w in
            try bytes.withUnsafeBytes { try w(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count / 2)])) }
        }
        assertStatus(.format, "truncated") { _ = try HunyuanModel(path: trunc) }
        // Config that says "no CLA" for CLA weights: the follower layers' k/v are missing.
        let nocla = try tempDir("nocla")
        try copyFile(FileSystem.join(dir, "model.safetensors"), FileSystem.join(nocla, "model.safetensors"))
        let cfg = String(decoding: try FileSystem.readAll(FileSystem.join(dir, "config.json")), as: UTF8.self)
            .replacingOccurrences(of: "\"use_cla\": true", with: "\"use_cla\": false")
        try FileSystem.writeAtomically(FileSystem.join(nocla, "config.json"), overwrite: true) { w in
            try Array(cfg.utf8).withUnsafeBytes { try w($0) }
        }
        assertStatus(.format, "config/weights mismatch") { _ = try HunyuanModel(path: nocla) }
        // Unsupported architecture.
        let arch = try tempDir("arch")
        try copyFile(FileSystem.join(dir, "model.safetensors"), FileSystem.join(arch, "model.safetensors"))
        let cfg2 = String(decoding: try FileSystem.readAll(FileSystem.join(dir, "config.json")), as: UTF8.self)
            .replacingOccurrences(of: "HunYuanForCausalLM", with: "LlamaForCausalLM")
        try FileSystem.writeAtomically(FileSystem.join(arch, "config.json"), overwrite: true) { w in
            try Array(cfg2.utf8).withUnsafeBytes { try w($0) }
        }
        assertStatus(.unsupported, "architecture") { _ = try HunyuanModel(path: arch) }
        assertStatus(.io, "no folder") { _ = try HunyuanModel(path: "/nonexistent/model") }
    }

    func testBadTokensAndContextFull() throws {
        let dir = FileSystem.join(Self.fixturesRoot, "hunyuan-large-tiny")
        guard FileSystem.isDirectory(dir) else { throw XCTSkip("fixture hunyuan-large-tiny not found at \(dir)") }
        let ref = try reference(dir)
        let model = try HunyuanModel(path: dir)
        let s = try InferenceSession(model: model, contextLength: 10, threads: 1)
        assertStatus(.invalidArgument, "empty") { try s.eval([]) }
        assertStatus(.invalidArgument, "id ≥ vocab") { try s.eval([1, Int32(model.config.vocabSize)]) }
        assertStatus(.invalidArgument, "negative id") { try s.eval([-1]) }
        XCTAssertEqual(s.count, 0)
        try s.eval(Array(ref.inputIds[0..<8]))
        assertStatus(.contextFull, "context full") { try s.eval(Array(ref.inputIds[8..<11])) }
        XCTAssertEqual(s.count, 8)
        // Still usable: drop tokens and continue; the result matches the reference prefix.
        try s.truncate(keep: 6)
        try s.eval(Array(ref.inputIds[6..<10]), allLogits: true)
        let v = ref.vocab
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(s.allLogits, Array(ref.logits[(6 * v)..<(10 * v)])), 1e-4)
        assertStatus(.contextFull, "context full again") { try s.eval([1]) }
        s.reset()
        try s.eval(Array(ref.inputIds[0..<4]), allLogits: true)
        XCTAssertLessThanOrEqual(Self.maxAbsDiff(s.allLogits, Array(ref.logits[0..<(4 * v)])), 1e-4)
    }

    func testConfigSpellings() throws {
        // A13B-style config: per-layer lists, keys omitted, rope_theta inside rope_scaling.
        let text = """
        {"architectures": ["HunYuanMoEV1ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 96,
         "moe_intermediate_size": [32, 48], "moe_topk": [2, 3], "num_shared_expert": [1, 1],
         "num_experts": 4, "vocab_size": 100, "rope_scaling": {"alpha": 1000.0, "rope_theta": 500.0, "type": "dynamic"},
         "eos_token_id": [7, 8]}
        """
        let c = try HunyuanConfig.decode(try JSONValue.parse(text, context: "test"), context: "test")
        XCTAssertEqual(c.moeTopK, [2, 3])
        XCTAssertEqual(c.moeIntermediate, [32, 48])
        XCTAssertTrue(c.useQKNorm)
        XCTAssertFalse(c.useCLA)
        XCTAssertEqual(c.ropeTheta, 500)
        XCTAssertEqual(c.eosTokenIds, [7, 8])
        // 500 · 1000^(16/14)
        XCTAssertEqual(c.ropeBase, 500 * pow(1000.0, 16.0 / 14.0), accuracy: 1e-6)
        XCTAssertTrue(c.renormalizeRouting(layer: 0))

        // Broken configs: a status naming the problem, never a trap.
        let base = #"{"architectures": ["HunYuanForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 8, "num_experts": 2, "moe_topk": 1, "vocab_size": 10"#
        let cases: [(String, HYError.Kind?)] = [
            (base + "}", nil),
            (#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}"#, .unsupported),
            (#"{"hidden_size": 64}"#, .format),
            ("[1, 2]", .format),
            (base + #", "num_key_value_heads": 3}"#, .format),
            (base + #", "moe_topk": [1, 1, 1]}"#.replacingOccurrences(of: #""moe_topk": 1, "#, with: ""), .format),
            (base.replacingOccurrences(of: #""moe_topk": 1"#, with: #""moe_topk": 3"#) + "}", .format),
            (base.replacingOccurrences(of: #""hidden_size": 64"#, with: #""hidden_size": "64""#) + "}", .format),
            (base.replacingOccurrences(of: #""hidden_size": 64"#, with: #""hidden_size": -64"#) + "}", .format),
            (base + #", "head_dim": 7}"#, .format),
            (base + #", "rope_scaling": {"alpha": -1}}"#, .format),
        ]
        for (text, expected) in cases {
            do {
                _ = try HunyuanConfig.decode(try JSONValue.parse(text, context: "cfg"), context: "cfg")
                XCTAssertNil(expected, text)
            } catch let e as HYError {
                XCTAssertEqual(e.kind, expected, "\(text): \(e.message)")
            }
        }
    }

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

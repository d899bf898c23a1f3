import XCTest
import Foundation
@testable import HunyuanLM
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

/// The language engine's error contracts: corrupt or mismatched checkpoints, bad tokens, a full
/// context and config spellings give a status naming the problem, never a trap.
final class LMErrorTests: LMFixtureTestCase {
    // MARK: - Errors

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

    /// A context whose KV cache cannot fit in this machine's memory is refused when the session is
    /// made (before any work), naming the bytes; a context that fits works.
    func testKVCacheThatCannotFitIsRefusedUpFront() throws {
        let src = FileSystem.join(Self.fixturesRoot, "hunyuan-a13b-tiny")
        guard FileSystem.isDirectory(src) else { throw XCTSkip("fixture hunyuan-a13b-tiny not found at \(src)") }
        // One layer, 8 KV heads of 1,024 values: 64 KB of keys and values per position in f32.
        var text = String(decoding: try FileSystem.readAll(FileSystem.join(src, "config.json")), as: UTF8.self)
        let json = try JSONValue.parse(text, context: "cfg")
        guard case .object(var pairs) = json else { return XCTFail("config is not an object") }
        func set(_ k: String, _ v: Int) {
            pairs.removeAll { $0.0 == k }
            pairs.append((k, .int(Int64(v))))
        }
        set("num_hidden_layers", 1); set("num_attention_heads", 8); set("num_key_value_heads", 8); set("head_dim", 1024)
        set("max_position_embeddings", 1 << 24)
        text = JSONValue.object(pairs).serialized()
        let c = try HunyuanConfig.decode(try JSONValue.parse(text, context: "cfg"), context: "cfg")
        let dir = try tempDir("kv-too-big")
        try RandomCheckpoint.write(config: c, configBytes: Array(text.utf8), to: dir, seed: 1, dtype: .f32)
        let model = try HunyuanModel(path: dir)
        // f32 keys + values of 1.3× the machine's memory: each half alone is below it, so malloc (which
        // overcommits) would accept both and the process would be killed mid-prompt.
        let n = Int(1.3 * Double(CPUFeatures.physicalMemoryBytes)) / 65_536
        do {
            _ = try InferenceSession(model: model, contextLength: n, threads: 1, kvType: .f32)
            XCTFail("an f32 cache of \(n) positions was accepted")
        } catch let e as HYError {
            XCTAssertEqual(e.kind, .outOfMemory, e.message)
            XCTAssertTrue(e.message.contains("KV cache") && e.message.contains("bytes"), e.message)
        }
        let s = try InferenceSession(model: model, contextLength: 64, threads: 1)
        try s.eval([1, 2, 3])
        XCTAssertEqual(s.count, 3)
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
}

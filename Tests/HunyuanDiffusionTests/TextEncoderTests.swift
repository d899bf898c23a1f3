#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
import HunyuanNN
@testable import HunyuanDiffusion

/// The hunyuandit-tiny fixture (`$HUNYUAN_SHARED/fixtures/t2i/hunyuandit-tiny`): HunyuanDiT's pipeline
/// folder, its recorded inputs and the reference intermediates of transformers 4.46.3.
enum T2IEncoderFixture {
    /// The fixture folder, or XCTSkip naming what is missing.
    static func dir() throws -> String {
        let d = MVDFixture.sharedDir + "/fixtures/t2i/hunyuandit-tiny"
        guard FileSystem.isDirectory(d) else { throw XCTSkip("no t2i fixture at \(d) (set HUNYUAN_SHARED)") }
        return d
    }

    static func inputs() throws -> Checkpoint { try Checkpoint(path: try dir() + "/inputs.safetensors") }
    static func reference() throws -> Checkpoint { try Checkpoint(path: try dir() + "/reference.safetensors") }

    /// Row `row` of an int64 [rows, n] input as Int32.
    static func ids(_ name: String, row: Int) throws -> [Int32] {
        let t = try inputs().tensor(name)!
        let n = t.shape[1]
        return t.int64s()[(row * n)..<((row + 1) * n)].map { Int32($0) }
    }

    /// Slice `index` of `count` consecutive blocks of `size` floats of reference tensor `name`.
    static func slice(_ name: String, _ index: Int, size: Int) throws -> [Float] {
        Array(try reference().tensor(name)!.floats()[(index * size)..<((index + 1) * size)])
    }
}

/// transformers BertModel / T5EncoderModel (HunyuanDiT's text_encoder/, text_encoder_2/) against the
/// hunyuandit-tiny fixture: last_hidden_state and the per-layer states of both rows [pos, neg].
final class TextEncoderTests: XCTestCase {
    /// Runs `forward` on both fixture rows; returns per row (output, traced intermediates).
    func runRows(_ idsName: String, _ maskName: String,
                 _ forward: ([Int32], [Int32], Trace?) throws -> [Float]) throws -> [([Float], [String: [Float]])] {
        try (0..<2).map { row in
            var traced: [String: [Float]] = [:]
            let out = try forward(try T2IEncoderFixture.ids(idsName, row: row), try T2IEncoderFixture.ids(maskName, row: row)) {
                name, _, values in traced[name] = Array(values)
            }
            return (out, traced)
        }
    }

    func testBertMatchesReference() throws {
        let bert = try BertModel(folder: try T2IEncoderFixture.dir() + "/text_encoder")
        let t = 77, d = 48, pool = ThreadPool()
        let t0 = now()
        let rows = try runRows("bert_input_ids", "bert_attention_mask") { try bert.forward(ids: $0, mask: $1, pool: pool, trace: $2) }
        print("BERT: 2 rows in \(String(format: "%.2f", (now() - t0) * 1000)) ms")
        for (r, (out, traced)) in rows.enumerated() {
            let err = scaledMaxError(out, try T2IEncoderFixture.slice("bert_hidden", r, size: t * d))
            print("BERT row \(r) → bert_hidden: scaled max error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4)
            for (s, name) in ["bert.embeddings", "bert.layer.0", "bert.layer.1"].enumerated() {
                let e = scaledMaxError(traced[name]!, try T2IEncoderFixture.slice("debug_bert_layers", r * 3 + s, size: t * d))
                print("BERT row \(r) \(name) → debug_bert_layers[\(r),\(s)]: scaled max error \(e)")
                XCTAssertLessThanOrEqual(e, 1e-4, name)
            }
        }
    }

    func testT5MatchesReference() throws {
        let t5 = try T5EncoderModel(folder: try T2IEncoderFixture.dir() + "/text_encoder_2")
        let t = 256, d = 40, pool = ThreadPool()
        let t0 = now()
        let rows = try runRows("t5_input_ids", "t5_attention_mask") { try t5.forward(ids: $0, mask: $1, pool: pool, trace: $2) }
        print("mT5: 2 rows in \(String(format: "%.2f", (now() - t0) * 1000)) ms")
        for (r, (out, traced)) in rows.enumerated() {
            let err = scaledMaxError(out, try T2IEncoderFixture.slice("t5_hidden", r, size: t * d))
            print("mT5 row \(r) → t5_hidden: scaled max error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4)
            for (s, name) in ["t5.embeddings", "t5.layer.0", "t5.final_norm"].enumerated() {
                let e = scaledMaxError(traced[name]!, try T2IEncoderFixture.slice("debug_t5_layers", r * 3 + s, size: t * d))
                print("mT5 row \(r) \(name) → debug_t5_layers[\(r),\(s)]: scaled max error \(e)")
                XCTAssertLessThanOrEqual(e, 1e-4, name)
            }
        }
        // The padding changes nothing of the tokens: masked keys are out of every softmax.
        let ids = try T2IEncoderFixture.ids("t5_input_ids", row: 0), mask = try T2IEncoderFixture.ids("t5_attention_mask", row: 0)
        let n = mask.firstIndex(of: 0)!
        var other = ids
        for i in n..<ids.count { other[i] = 5 }
        let changed = try t5.forward(ids: other, mask: mask, pool: nil)
        XCTAssertLessThanOrEqual(scaledMaxError(Array(changed[0..<(n * d)]), Array(rows[0].0[0..<(n * d)])), 1e-6)
    }

    /// The fixture's weights stored as f16 / bf16 (read in place), against the fp32 reference: the
    /// bound is that of the weights' rounding (2⁻¹¹ / 2⁻⁸ relative) through two layers.
    func testHalfPrecisionWeights() throws {
        let dir = try T2IEncoderFixture.dir()
        for (dtype, bound) in [(DType.f16, Float(5e-3)), (.bf16, 4e-2)] {
            func convert(_ items: inout [SafetensorsWriter.Item]) {
                items = items.map { it in
                    let f = it.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    return SafetensorsWriter.Item(name: it.name, shape: it.shape, floats: f, as: dtype)
                }
            }
            let bertDir = try componentCopy("text_encoder", fixture: dir, convert)
            XCTAssertEqual(try Checkpoint(component: bertDir).tensor("encoder.layer.0.attention.self.query.weight")?.dtype, dtype)
            let bert = try BertModel(folder: bertDir)
            let t5 = try T5EncoderModel(folder: try componentCopy("text_encoder_2", fixture: dir, convert))
            for r in 0..<2 {
                let b = try bert.forward(ids: try T2IEncoderFixture.ids("bert_input_ids", row: r),
                                         mask: try T2IEncoderFixture.ids("bert_attention_mask", row: r), pool: nil)
                let be = scaledMaxError(b, try T2IEncoderFixture.slice("bert_hidden", r, size: 77 * 48))
                let t = try t5.forward(ids: try T2IEncoderFixture.ids("t5_input_ids", row: r),
                                       mask: try T2IEncoderFixture.ids("t5_attention_mask", row: r), pool: nil)
                let te = scaledMaxError(t, try T2IEncoderFixture.slice("t5_hidden", r, size: 256 * 40))
                print("\(dtype) weights row \(r): BERT scaled max error \(be), mT5 \(te)")
                XCTAssertLessThanOrEqual(be, bound, "BERT \(dtype)")
                XCTAssertLessThanOrEqual(te, bound, "mT5 \(dtype)")
            }
        }
    }

    /// A sharded text_encoder_2 (`model.safetensors.index.json` + 2 shards) loads and gives the same
    /// states; BERT tensors under "bert." with pre-training heads (BertForPreTraining files) too.
    func testShardedT5AndPrefixedBert() throws {
        let dir = try T2IEncoderFixture.dir()
        let src = try Checkpoint(component: dir + "/text_encoder_2")
        let sharded = try componentCopy("text_encoder_2", fixture: dir) { $0.removeAll() }
        unlink(sharded + "/model.safetensors")
        var map: [(String, JSONValue)] = []
        for (s, part) in [src.tensors.filter { $0.name.hasPrefix("encoder.block.0.") }, src.tensors.filter { !$0.name.hasPrefix("encoder.block.0.") }].enumerated() {
            let file = "model-0000\(s + 1)-of-00002.safetensors"
            try SafetensorsWriter.write(part.map { .init(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: Array($0.data)) },
                                        to: sharded + "/" + file)
            map += part.map { ($0.name, JSONValue.string(file)) }
        }
        let index = JSONValue.object([("metadata", .object([])), ("weight_map", .object(map))]).serialized()
        try FileSystem.writeAtomically(sharded + "/model.safetensors.index.json", overwrite: true) { w in
            try Array(index.utf8).withUnsafeBytes { try w($0) }
        }
        let ids = try T2IEncoderFixture.ids("t5_input_ids", row: 0), mask = try T2IEncoderFixture.ids("t5_attention_mask", row: 0)
        let whole = try T5EncoderModel(folder: dir + "/text_encoder_2").forward(ids: ids, mask: mask, pool: nil)
        XCTAssertEqual(try T5EncoderModel(folder: sharded).forward(ids: ids, mask: mask, pool: nil), whole)

        let prefixed = try componentCopy("text_encoder", fixture: dir) { items in
            for i in items.indices { items[i].name = "bert." + items[i].name }
            items.append(.init(name: "cls.predictions.bias", shape: [397], floats: [Float](repeating: 0, count: 397)))
        }
        let bids = try T2IEncoderFixture.ids("bert_input_ids", row: 1), bmask = try T2IEncoderFixture.ids("bert_attention_mask", row: 1)
        XCTAssertEqual(try BertModel(folder: prefixed).forward(ids: bids, mask: bmask, pool: nil),
                       try BertModel(folder: dir + "/text_encoder").forward(ids: bids, mask: bmask, pool: nil))
    }

    func testErrors() throws {
        let dir = try T2IEncoderFixture.dir()
        // missing and misshapen tensors are named
        let q = "encoder.layer.1.attention.self.query.weight"
        expectError(.format, q) { _ = try BertModel(folder: try self.componentCopy("text_encoder", fixture: dir) { $0.removeAll { $0.name == q } }) }
        let wi = "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"
        expectError(.format, wi) { _ = try T5EncoderModel(folder: try self.componentCopy("text_encoder_2", fixture: dir) { $0.removeAll { $0.name == wi } }) }
        let rel = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        let misshapen = try componentCopy("text_encoder_2", fixture: dir) { items in
            let i = items.firstIndex { $0.name == rel }!
            items[i] = .init(name: rel, dtype: .f32, shape: [4, 32], bytes: items[i].bytes)
        }
        expectError(.format, rel) { _ = try T5EncoderModel(folder: misshapen) }
        let pos = "embeddings.position_embeddings.weight"
        let shortPos = try componentCopy("text_encoder", fixture: dir) { items in
            let i = items.firstIndex { $0.name == pos }!
            items[i] = .init(name: pos, dtype: .f32, shape: [77, 48], bytes: Array(items[i].bytes[0..<(77 * 48 * 4)]))
        }
        expectError(.format, pos) { _ = try BertModel(folder: shortPos) }
        let leftover = try componentCopy("text_encoder_2", fixture: dir) { $0.append(.init(name: "encoder.block.0.extra", shape: [1], floats: [0])) }
        expectError(.format, "encoder.block.0.extra") { _ = try T5EncoderModel(folder: leftover) }
        let corrupt = try componentCopy("text_encoder", fixture: dir)
        try FileSystem.writeAtomically(corrupt + "/model.safetensors", overwrite: true) { w in try [UInt8](repeating: 7, count: 64).withUnsafeBytes { try w($0) } }
        XCTAssertThrowsError(try BertModel(folder: corrupt))

        // config keys are named
        let relKey = try componentCopy("text_encoder", fixture: dir, config: { $0.replacingOccurrences("\"absolute\"", "\"relative_key\"") })
        expectError(.unsupported, "position_embedding_type") { _ = try BertModel(folder: relKey) }
        let act = try componentCopy("text_encoder", fixture: dir, config: { $0.replacingOccurrences("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\"") })
        expectError(.unsupported, "hidden_act") { _ = try BertModel(folder: act) }
        let heads = try componentCopy("text_encoder", fixture: dir, config: { $0.replacingOccurrences("\"num_attention_heads\": 2", "\"num_attention_heads\": 5") })
        expectError(.format, "num_attention_heads") { _ = try BertModel(folder: heads) }
        let ffn = try componentCopy("text_encoder_2", fixture: dir, config: { $0.replacingOccurrences("\"gated-gelu\"", "\"gated-swish\"") })
        expectError(.unsupported, "feed_forward_proj") { _ = try T5EncoderModel(folder: ffn) }
        let dkv = try componentCopy("text_encoder_2", fixture: dir, config: { $0.replacingOccurrences("\"d_kv\": 8", "\"d_kv\": 0") })
        expectError(.format, "d_kv") { _ = try T5EncoderModel(folder: dkv) }
        let typed = try componentCopy("text_encoder_2", fixture: dir, config: { $0.replacingOccurrences("\"num_heads\": 4", "\"num_heads\": \"4\"") })
        expectError(.format, "num_heads") { _ = try T5EncoderModel(folder: typed) }
        let noConfig = try componentCopy("text_encoder_2", fixture: dir)
        unlink(noConfig + "/config.json")
        expectError(.io, "config.json") { _ = try T5EncoderModel(folder: noConfig) }

        // inputs
        let bert = try BertModel(folder: dir + "/text_encoder"), t5 = try T5EncoderModel(folder: dir + "/text_encoder_2")
        expectError(.invalidArgument, "token id 397") { _ = try bert.forward(ids: [101, 397], pool: nil) }
        expectError(.invalidArgument, "token id -1") { _ = try t5.forward(ids: [-1, 1], pool: nil) }
        expectError(.invalidArgument, "token id 1012") { _ = try t5.forward(ids: [1012], pool: nil) }
        expectError(.invalidArgument, "513 tokens") { _ = try bert.forward(ids: Array(repeating: 1, count: 513), pool: nil) }
        expectError(.invalidArgument, "no tokens") { _ = try t5.forward(ids: [], pool: nil) }
        expectError(.invalidArgument, "3 values for 2 tokens") { _ = try bert.forward(ids: [101, 102], mask: [1, 1, 0], pool: nil) }
        expectError(.invalidArgument, "1 values for 2 tokens") { _ = try t5.forward(ids: [5, 1], mask: [1], pool: nil) }
        expectError(.invalidArgument, "mask value 2") { _ = try t5.forward(ids: [5, 1], mask: [1, 2], pool: nil) }
    }

    /// Relative position buckets (32 buckets, max distance 128) at the exact/log boundary and the
    /// float32 log boundaries, both directions; parameter counts of the full-size encoders.
    func testBucketsAndFullSizeCounts() throws {
        let c = T5Config.mT5XL
        let expected: [(Int, Int)] = [(0, 0), (-1, 1), (1, 17), (-7, 7), (-8, 8), (-12, 9), (-16, 10), (-32, 12),
                                      (-64, 14), (-127, 15), (-128, 15), (-500, 15), (16, 26), (500, 31)]
        for (rel, bucket) in expected { XCTAssertEqual(c.relativePositionBucket(rel), bucket, "relative \(rel)") }
        XCTAssertEqual(try BertTensors.table(for: .hunyuanDiT).parameterCount, 350_986_240)
        XCTAssertEqual(try T5Tensors.table(for: .mT5XL).parameterCount, 1_669_958_656)
        let mt5 = try JSONValue.parse(#"{"model_type": "mt5", "d_model": 2048}"#, context: "config.json").decode(T5Config.self, context: "config.json")
        XCTAssertEqual(mt5.vocabSize, 250112)
        XCTAssertEqual(mt5.feedForwardProj, "gated-gelu")
        XCTAssertTrue(try mt5.feedForward().gated)
        let t5 = try JSONValue.parse("{}", context: "config.json").decode(T5Config.self, context: "config.json")
        XCTAssertEqual(t5.feedForwardProj, "relu")
        XCTAssertEqual(try t5.feedForward().act, .relu)
        XCTAssertEqual(try T5Tensors.table(for: t5).entry("encoder.block.0.layer.1.DenseReluDense.wi.weight")?.shape, [2048, 512])
    }
}

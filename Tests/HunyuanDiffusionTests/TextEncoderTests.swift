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
    /// Runs `forward` on both fixture rows [pos, neg] (inputs `<prefix>_input_ids`, `<prefix>_attention_mask`)
    /// and compares the output with reference `<prefix>_hidden` and the traced `stages` with
    /// `debug_<prefix>_layers` (each [tokens, width]); returns the outputs.
    @discardableResult
    func checkRows(_ label: String, _ prefix: String, tokens: Int, width: Int, stages: [String],
                   _ forward: ([Int32], [Int32], Trace?) throws -> [Float]) throws -> [[Float]] {
        let size = tokens * width
        return try (0..<2).map { r in
            var traced: [String: [Float]] = [:]
            let t0 = now()
            let out = try forward(try T2IEncoderFixture.ids(prefix + "_input_ids", row: r),
                                  try T2IEncoderFixture.ids(prefix + "_attention_mask", row: r)) { name, _, values in
                traced[name] = Array(values)
            }
            let ms = (now() - t0) * 1000
            let err = scaledMaxError(out, try T2IEncoderFixture.slice(prefix + "_hidden", r, size: size))
            print("\(label) row \(r) → \(prefix)_hidden: scaled max error \(err) (\(String(format: "%.2f", ms)) ms)")
            XCTAssertLessThanOrEqual(err, 1e-4, "\(label) row \(r)")
            for (s, name) in stages.enumerated() {
                let e = scaledMaxError(traced[name] ?? [], try T2IEncoderFixture.slice("debug_\(prefix)_layers", r * stages.count + s, size: size))
                print("\(label) row \(r) \(name) → debug_\(prefix)_layers[\(r),\(s)]: scaled max error \(e)")
                XCTAssertLessThanOrEqual(e, 1e-4, "\(label) row \(r) \(name)")
            }
            return out
        }
    }

    func testBertMatchesReference() throws {
        let bert = try BertModel(folder: try T2IEncoderFixture.dir() + "/text_encoder")
        let pool = ThreadPool()
        try checkRows("BERT", "bert", tokens: 77, width: 48, stages: ["bert.embeddings", "bert.layer.0", "bert.layer.1"]) {
            try bert.forward(ids: $0, mask: $1, pool: pool, trace: $2)
        }
    }

    func testT5MatchesReference() throws {
        let t5 = try T5EncoderModel(folder: try T2IEncoderFixture.dir() + "/text_encoder_2")
        let d = 40, pool = ThreadPool()
        let rows = try checkRows("mT5", "t5", tokens: 256, width: d, stages: ["t5.embeddings", "t5.layer.0", "t5.final_norm"]) {
            try t5.forward(ids: $0, mask: $1, pool: pool, trace: $2)
        }
        // The padding changes nothing of the tokens: masked keys are out of every softmax.
        let ids = try T2IEncoderFixture.ids("t5_input_ids", row: 0), mask = try T2IEncoderFixture.ids("t5_attention_mask", row: 0)
        let n = mask.firstIndex(of: 0)!
        var other = ids
        for i in n..<ids.count { other[i] = 5 }
        let changed = try t5.forward(ids: other, mask: mask, pool: nil)
        XCTAssertLessThanOrEqual(scaledMaxError(Array(changed[0..<(n * d)]), Array(rows[0][0..<(n * d)])), 1e-6)
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
        let sharded = try componentCopy("text_encoder_2", fixture: dir, { $0.removeAll() })
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

        let prefixed = try componentCopy("text_encoder", fixture: dir, { items in
            for i in items.indices { items[i].name = "bert." + items[i].name }
            items.append(.init(name: "cls.predictions.bias", shape: [397], floats: [Float](repeating: 0, count: 397)))
        })
        let bids = try T2IEncoderFixture.ids("bert_input_ids", row: 1), bmask = try T2IEncoderFixture.ids("bert_attention_mask", row: 1)
        XCTAssertEqual(try BertModel(folder: prefixed).forward(ids: bids, mask: bmask, pool: nil),
                       try BertModel(folder: dir + "/text_encoder").forward(ids: bids, mask: bmask, pool: nil))
    }

    func testErrors() throws {
        let dir = try T2IEncoderFixture.dir()
        // missing and misshapen tensors are named
        let q = "encoder.layer.1.attention.self.query.weight"
        expectError(.format, q) { _ = try BertModel(folder: try self.componentCopy("text_encoder", fixture: dir, { $0.removeAll { $0.name == q } })) }
        let wi = "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"
        expectError(.format, wi) { _ = try T5EncoderModel(folder: try self.componentCopy("text_encoder_2", fixture: dir, { $0.removeAll { $0.name == wi } })) }
        let rel = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        let misshapen = try componentCopy("text_encoder_2", fixture: dir, { items in
            let i = items.firstIndex { $0.name == rel }!
            items[i] = .init(name: rel, dtype: .f32, shape: [4, 32], bytes: items[i].bytes)
        })
        expectError(.format, rel) { _ = try T5EncoderModel(folder: misshapen) }
        let pos = "embeddings.position_embeddings.weight"
        let shortPos = try componentCopy("text_encoder", fixture: dir, { items in
            let i = items.firstIndex { $0.name == pos }!
            items[i] = .init(name: pos, dtype: .f32, shape: [77, 48], bytes: Array(items[i].bytes[0..<(77 * 48 * 4)]))
        })
        expectError(.format, pos) { _ = try BertModel(folder: shortPos) }
        let leftover = try componentCopy("text_encoder_2", fixture: dir, { $0.append(.init(name: "encoder.block.0.extra", shape: [1], floats: [0])) })
        expectError(.format, "encoder.block.0.extra") { _ = try T5EncoderModel(folder: leftover) }
        let corrupt = try componentCopy("text_encoder", fixture: dir)
        try FileSystem.writeAtomically(corrupt + "/model.safetensors", overwrite: true) { w in try [UInt8](repeating: 7, count: 64).withUnsafeBytes { try w($0) } }
        XCTAssertThrowsError(try BertModel(folder: corrupt))

        // config keys are named
        let edits: [(folder: String, from: String, to: String, kind: HYError.Kind, key: String)] = [
            ("text_encoder", "\"absolute\"", "\"relative_key\"", .unsupported, "position_embedding_type"),
            ("text_encoder", "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\"", .unsupported, "hidden_act"),
            ("text_encoder", "\"num_attention_heads\": 2", "\"num_attention_heads\": 5", .format, "num_attention_heads"),
            ("text_encoder_2", "\"gated-gelu\"", "\"gated-swish\"", .unsupported, "feed_forward_proj"),
            ("text_encoder_2", "\"d_kv\": 8", "\"d_kv\": 0", .format, "d_kv"),
            ("text_encoder_2", "\"num_heads\": 4", "\"num_heads\": \"4\"", .format, "num_heads"),
        ]
        for e in edits {
            let edited = try componentCopy(e.folder, fixture: dir, config: { $0.replacingOccurrences(e.from, e.to) })
            expectError(e.kind, e.key) {
                if e.folder == "text_encoder" { _ = try BertModel(folder: edited) } else { _ = try T5EncoderModel(folder: edited) }
            }
        }
        let noConfig = try componentCopy("text_encoder_2", fixture: dir)
        unlink(noConfig + "/config.json")
        expectError(.io, "config.json") { _ = try T5EncoderModel(folder: noConfig) }
        let badJSON = try componentCopy("text_encoder", fixture: dir, config: { _ in "{\"hidden_size\": " })
        expectError(.format, "config.json") { _ = try BertModel(folder: badJSON) }

        // inputs
        let bert = try BertModel(folder: dir + "/text_encoder"), t5 = try T5EncoderModel(folder: dir + "/text_encoder_2")
        expectError(.invalidArgument, "token id 397") { _ = try bert.forward(ids: [101, 397], pool: nil) }
        expectError(.invalidArgument, "token id -1") { _ = try t5.forward(ids: [-1, 1], pool: nil) }
        expectError(.invalidArgument, "token id 1012") { _ = try t5.forward(ids: [1012], pool: nil) }
        expectError(.invalidArgument, "513 tokens") { _ = try bert.forward(ids: Array(repeating: 1, count: 513), pool: nil) }
        expectError(.invalidArgument, "0 tokens") { _ = try t5.forward(ids: [], pool: nil) }
        expectError(.invalidArgument, "2049 tokens") { _ = try t5.forward(ids: Array(repeating: 1, count: 2049), pool: nil) }
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

import XCTest
import HunyuanCore
import HunyuanNN
@testable import HunyuanDiffusion

/// transformers CLIPTextModel / CLIPVisionModelWithProjection against the mvd-lite-tiny fixture
/// (convention 3).
final class CLIPTests: XCTestCase {
    func testTextHiddenMatchesReference() throws {
        let d = try MVDFixture.dir(), inp = try MVDFixture.inputs(), ref = try MVDFixture.reference()
        let text = try CLIPTextModel(folder: d + "/text_encoder")
        let ids = inp.tensor("input_ids")!.int64s().map { Int32($0) }
        let t0 = now()
        let h = try text.forward(ids: ids, pool: ThreadPool())
        let ms = (now() - t0) * 1000
        let err = scaledMaxError(h, ref.tensor("text_hidden")!.floats())
        print("CLIP text → text_hidden: scaled max error \(err), \(String(format: "%.2f", ms)) ms")
        XCTAssertLessThanOrEqual(err, 1e-4)
        // causal: a token's state does not depend on later tokens
        var changed = ids
        changed[ids.count - 1] = ids[ids.count - 1] == 3 ? 4 : 3
        let h2 = try text.forward(ids: changed, pool: nil)
        let dd = text.config.hiddenSize, keep = (ids.count - 1) * dd
        XCTAssertEqual(Array(h2[0..<keep]), Array(h[0..<keep]))
        XCTAssertNotEqual(Array(h2[keep...]), Array(h[keep...]))
    }

    func testImageEmbedsMatchReference() throws {
        let d = try MVDFixture.dir(), inp = try MVDFixture.inputs(), ref = try MVDFixture.reference()
        let vision = try CLIPVisionModel(folder: d + "/vision_encoder")
        let px = inp.tensor("pixel_values_clip")!.floats()
        let t0 = now()
        let (hidden, emb) = try vision.forward(pixels: px, pool: ThreadPool())
        let ms = (now() - t0) * 1000
        XCTAssertEqual(hidden.count, 17 * 32)
        let err = scaledMaxError(emb, ref.tensor("image_embeds")!.floats())
        print("CLIP vision → image_embeds: scaled max error \(err), \(String(format: "%.2f", ms)) ms")
        XCTAssertLessThanOrEqual(err, 1e-4)
        XCTAssertEqual(try vision.imageEmbeds(pixels: px, pool: nil), emb)
    }

    func testActivations() throws {
        let xs: [Float] = [-3, -1, -0.25, 0, 0.5, 2]
        func run(_ a: CLIPActivation) -> [Float] { var v = xs; a.apply(&v, v.count); return v }
        let quick = run(.quickGelu), erf = run(.gelu), tanhG = run(.geluTanh)
        for (i, x) in xs.enumerated() {
            XCTAssertEqual(quick[i], x / (1 + expf(-1.702 * x)), accuracy: 1e-6)
            XCTAssertEqual(erf[i], 0.5 * x * (1 + erff(x / Float(2).squareRoot())), accuracy: 1e-6)
            XCTAssertEqual(tanhG[i], 0.5 * x * (1 + tanhf(0.7978845608 * (x + 0.044715 * x * x * x))), accuracy: 1e-6)
        }
    }

    func testConfigsFlatAndNested() throws {
        let d = try MVDFixture.dir()
        let flat = try Component.config(CLIPTextConfig.self, d + "/text_encoder")
        XCTAssertEqual(flat.hiddenSize, 32)
        XCTAssertEqual(flat.maxPositionEmbeddings, 8)
        XCTAssertFalse(flat.fromCombinedConfig)
        let combined = #"{"model_type": "clip", "projection_dim": 1024, "text_config": {"hidden_size": 1024, "num_hidden_layers": 23, "hidden_act": "gelu"}, "vision_config": {"hidden_size": 1280, "patch_size": 14, "projection_dim": 1024}}"#
        let j = try JSONValue.parse(combined, context: "config.json")
        let t = try j.decode(CLIPTextConfig.self, context: "config.json")
        XCTAssertEqual(t.hiddenSize, 1024)
        XCTAssertEqual(t.numHiddenLayers, 23)
        XCTAssertEqual(t.vocabSize, 49408)
        XCTAssertTrue(t.fromCombinedConfig)
        let v = try j.decode(CLIPVisionConfig.self, context: "config.json")
        XCTAssertEqual(v.hiddenSize, 1280)
        XCTAssertEqual(v.hiddenAct, "quick_gelu")
        XCTAssertEqual(v.tokens, 257)
    }

    func testCheckpointAndConfigErrors() throws {
        let name = "text_model.encoder.layers.1.mlp.fc2.bias"
        let missing = try componentCopy("text_encoder") { $0.removeAll { $0.name == name } }
        expectError(.format, name) { _ = try CLIPTextModel(folder: missing) }
        let vname = "vision_model.embeddings.position_embedding.weight"
        let misshapen = try componentCopy("vision_encoder") { items in
            let i = items.firstIndex { $0.name == vname }!
            items[i] = .init(name: vname, dtype: .f32, shape: [16, 32], bytes: Array(items[i].bytes[0..<(16 * 32 * 4)]))
        }
        expectError(.format, vname) { _ = try CLIPVisionModel(folder: misshapen) }
        let leftover = try componentCopy("vision_encoder") { $0.append(.init(name: "text_projection.weight", shape: [1], floats: [0])) }
        expectError(.format, "text_projection.weight") { _ = try CLIPVisionModel(folder: leftover) }
        // the position_ids buffer older transformers files store is ignored
        let buffers = try componentCopy("text_encoder") { $0.append(.init(name: "text_model.embeddings.position_ids", shape: [1, 8], int64s: Array(0..<8))) }
        XCTAssertNoThrow(try CLIPTextModel(folder: buffers))
        let relu = try componentCopy("text_encoder", config: { $0.replacingOccurrences("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"") })
        expectError(.unsupported, "hidden_act") { _ = try CLIPTextModel(folder: relu) }
        let quick = try componentCopy("vision_encoder", config: { $0.replacingOccurrences("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"quick_gelu\"") })
        XCTAssertNoThrow(try CLIPVisionModel(folder: quick))

        let d = try MVDFixture.dir()
        let text = try CLIPTextModel(folder: d + "/text_encoder")
        expectError(.invalidArgument, "9 tokens") { _ = try text.forward(ids: Array(repeating: 1, count: 9), pool: nil) }
        expectError(.invalidArgument, "token id 16") { _ = try text.forward(ids: [1, 16], pool: nil) }
        let vision = try CLIPVisionModel(folder: d + "/vision_encoder")
        expectError(.invalidArgument, "image_size 32") { _ = try vision.forward(pixels: [Float](repeating: 0, count: 3 * 40 * 40), pool: nil) }
    }

    /// OpenCLIP-H text as a transformers CLIPTextModel (stabilityai/stable-diffusion-2 text_encoder):
    /// hidden 1024, 23 layers, 16 heads, intermediate 4096, 77 positions, vocab 49408.
    /// CLIP ViT-H/14 vision with a 1024 projection: hidden 1280, 32 layers, 16 heads, intermediate
    /// 5120, patch 14 at 224.
    func testFullSizeParameterCounts() throws {
        let t = CLIPTextConfig.openCLIPH
        XCTAssertEqual(try CLIPTensors.textTable(for: t).parameterCount, 340_387_840)
        let v = CLIPVisionConfig.vitH14
        let vt = try CLIPTensors.visionTable(for: v)
        XCTAssertEqual(vt.parameterCount, 632_076_800)
        XCTAssertEqual(vt.entry("vision_model.embeddings.position_embedding.weight")?.shape, [257, 1280])
        XCTAssertEqual(vt.entry("visual_projection.weight")?.shape, [1024, 1280])
    }
}

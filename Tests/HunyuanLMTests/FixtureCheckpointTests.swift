import XCTest
import Glibc
import HunyuanLM

/// Every language-model fixture written by the reference implementations opens through our
/// checkpoint reader (single file, sharded + index, f32 and bf16) and its reference outputs have the
/// shapes its config promises.
final class FixtureCheckpointTests: XCTestCase {
    static var shared: String {
        getenv("HUNYUAN_SHARED").map { String(cString: $0) } ?? "../shared"
    }

    func testEveryFixtureCheckpointOpens() throws {
        let root = Self.shared + "/fixtures/lm"
        guard FileSystem.isDirectory(root) else { throw XCTSkip("\(root) not present (set HUNYUAN_SHARED)") }
        let folders = try FileSystem.list(root).filter { FileSystem.isDirectory(root + "/" + $0) }
        XCTAssertFalse(folders.isEmpty)
        for name in folders {
            let dir = root + "/" + name
            let ck = try Checkpoint(path: dir)
            XCTAssertNotNil(ck.tensor("model.embed_tokens.weight"), name)
            let config = try JSONValue.parse(contentsOf: dir + "/config.json")
            let vocab = try XCTUnwrap(config["vocab_size"]?.intValue, name)
            let hidden = try XCTUnwrap(config["hidden_size"]?.intValue, name)
            XCTAssertEqual(ck.tensor("model.embed_tokens.weight")?.shape, [Int(vocab), Int(hidden)], name)
            let ref = try SafetensorsFile(path: dir + "/reference.safetensors")
            let ids = try XCTUnwrap(ref.tensor("input_ids"), name)
            let logits = try XCTUnwrap(ref.tensor("logits"), name)
            XCTAssertEqual(logits.shape, [ids.count, Int(vocab)], name)
            XCTAssertTrue(ids.int64s().allSatisfy { $0 >= 0 && $0 < vocab }, name)
        }
    }
}

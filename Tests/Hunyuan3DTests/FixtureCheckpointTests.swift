import XCTest
import Glibc
import Hunyuan3D

/// The reconstruction fixtures written by the official code open through our checkpoint reader.
final class SVRMFixtureCheckpointTests: XCTestCase {
    func testSVRMFixturesOpen() throws {
        let shared = getenv("HUNYUAN_SHARED").map { String(cString: $0) } ?? "../shared"
        let root = shared + "/fixtures/svrm"
        guard FileSystem.isDirectory(root) else { throw XCTSkip("\(root) not present (set HUNYUAN_SHARED)") }
        for name in try FileSystem.list(root) where FileSystem.isDirectory(root + "/" + name) {
            let dir = root + "/" + name
            let weights = try Checkpoint(path: dir + "/model.safetensors")
            XCTAssertGreaterThan(weights.tensors.count, 10, name)
            let inputs = try SafetensorsFile(path: dir + "/inputs.safetensors")
            let images = try XCTUnwrap(inputs.tensor("images"), name)
            XCTAssertEqual(images.shape.first, 7, name)
            XCTAssertEqual(inputs.tensor("cameras")?.shape, [7, 20], name)
        }
    }
}

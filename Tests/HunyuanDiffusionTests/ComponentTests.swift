import XCTest
import HunyuanCore
@testable import HunyuanDiffusion

/// Loading of component folders and configs as diffusers writes them.
final class ComponentTests: XCTestCase {
    private struct SchedulerKeys: Decodable {
        let beta_start: Double, beta_end: Double, num_train_timesteps: Int, prediction_type: String
        let trained_betas: [Double]?
    }

    func testConfigDecodingAndErrors() throws {
        let d = try MVDFixture.dir()
        let s = try Component.config(SchedulerKeys.self, d + "/scheduler", file: "scheduler_config.json")
        XCTAssertEqual(s.num_train_timesteps, 1000)
        XCTAssertEqual(s.prediction_type, "v_prediction")
        XCTAssertNil(s.trained_betas)
        struct Wrong: Decodable { let beta_start: Int }
        XCTAssertThrowsError(try Component.config(Wrong.self, d + "/scheduler", file: "scheduler_config.json")) { e in
            XCTAssertTrue("\(e)".contains("beta_start"), "\(e)")
        }
        struct Missing: Decodable { let no_such_key: Int }
        XCTAssertThrowsError(try Component.config(Missing.self, d + "/scheduler", file: "scheduler_config.json")) { e in
            XCTAssertTrue("\(e)".contains("no_such_key") && "\(e)".contains("scheduler_config.json"), "\(e)")
        }
        XCTAssertThrowsError(try Component.config(SchedulerKeys.self, d + "/nothing_here"))
    }

    func testComponentWeightsOpenAsDiffusersNamesThem() throws {
        let d = try MVDFixture.dir()
        XCTAssertTrue(try Checkpoint(component: d + "/unet").path.hasSuffix("diffusion_pytorch_model.safetensors"))
        XCTAssertTrue(try Checkpoint(component: d + "/text_encoder").path.hasSuffix("model.safetensors"))
        XCTAssertThrowsError(try Checkpoint(component: d + "/unet", variant: "fp16")) { e in
            XCTAssertTrue("\(e)".contains("diffusion_pytorch_model.fp16.safetensors"), "\(e)")
        }
        XCTAssertThrowsError(try Checkpoint(component: d + "/scheduler"))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
import HunyuanImage
@testable import Hunyuan3D

/// Hunyuan3D-1.0's background removal against the rembg fixture (`$HUNYUAN_SHARED/fixtures/rembg`,
/// written by the real rembg + onnxruntime + Removebg code): the post-processing bit-exact from the
/// reference's own intermediates, U²-Net from the state_dict and from the ONNX export (README §10
/// tolerances), end to end within the README's bounds, the full U²-Net's 119 convolutions against its
/// shape table, and corrupt files / degenerate images as errors.
final class BackgroundRemovalTests: XCTestCase {
    static let pool = ThreadPool(threads: 2)

    static func root() throws -> String {
        let shared = getenv("HUNYUAN_SHARED").map { String(cString: $0) } ?? "../shared"
        let d = FileSystem.join(shared, "fixtures/rembg")
        guard FileSystem.isDirectory(d) else { throw XCTSkip("no rembg fixture at \(d) (set HUNYUAN_SHARED)") }
        return d
    }
    static func tiny() throws -> String { FileSystem.join(try root(), "u2netp-tiny") }
    static func file(_ name: String) throws -> SafetensorsFile { try SafetensorsFile(path: FileSystem.join(try tiny(), name)) }

    func bytes(_ f: SafetensorsFile, _ name: String) throws -> (shape: [Int], v: [UInt8]) {
        let t = try XCTUnwrap(f.tensor(name), name)
        XCTAssertEqual(t.dtype, .u8, name)
        return (t.shape, Array(t.data))
    }
    func maxDiff(_ a: [UInt8], _ b: [UInt8]) -> Int { zip(a, b).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) } }
    func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

    /// README §10.1: every u8 stage from the stored previous stage, bit for bit.
    func testPostProcessingIsBitExactFromTheReferenceStages() throws {
        let inp = try Self.file("inputs.safetensors"), ref = try Self.file("reference.safetensors")
        for (c, channels) in [("rgb", 3), ("rgba", 4)] {
            let (shape, image) = try bytes(inp, "\(c).image_u8")
            let (h, w) = (shape[0], shape[1])
            var rgb = [UInt8](repeating: 0, count: 3 * h * w)
            for i in 0..<(h * w) { for k in 0..<3 { rgb[3 * i + k] = image[channels * i + k] } }
            if c == "rgb" {
                let (resized, x) = BackgroundRemoval.inputTensor(rgb: rgb, width: w, height: h)
                XCTAssertEqual(resized, try bytes(ref, "rgb.resized320_u8").v, "LANCZOS 320")
                XCTAssertEqual(maxDiff(x, try XCTUnwrap(ref.tensor("rgb.input_tensor")).floats()), 0, "input tensor")
            }
            let m320 = try bytes(ref, "\(c).mask320_u8").v
            let mask = Resize.pillow(m320, channels: 1, width: 320, height: 320, toWidth: w, toHeight: h, filter: .lanczos)
            XCTAssertEqual(mask, try bytes(ref, "\(c).mask_u8").v, "\(c) mask back to \(w)×\(h)")
            let cut = BackgroundRemoval.cutout(rgb: rgb, mask: try bytes(ref, "\(c).mask_u8").v)
            XCTAssertEqual(cut, try bytes(ref, "\(c).rembg_rgba_u8").v, "\(c) cut-out")
            let white = MVDPreprocess.whiteOut(try ByteImage(width: w, height: h, channels: 4, pixels: try bytes(ref, "\(c).rembg_rgba_u8").v))
            XCTAssertEqual(white.pixels, try bytes(ref, "\(c).whiteout_rgba_u8").v, "\(c) white-out")
            let (padded, final) = try BackgroundRemoval.recenter(rgba: try bytes(ref, "\(c).whiteout_rgba_u8").v, width: w, height: h)
            if let p = ref.tensor("\(c).padded_rgba_u8") {
                XCTAssertEqual([padded.height, padded.width, 4], p.shape)
                XCTAssertEqual(padded.pixels, Array(p.data), "\(c) padded square")
            }
            XCTAssertEqual(final.pixels, try bytes(ref, "\(c).final_rgba_u8").v, "\(c) final 512×512")
        }
    }

    /// README §10.2: d0 within 5e-4, the side logits within 1e-3, from both weight files.
    func testNetworkFromStateDictAndONNX() throws {
        let ref = try Self.file("reference.safetensors")
        let x = try XCTUnwrap(ref.tensor("rgb.input_tensor")).floats()
        var outs: [[Float]] = []
        for name in ["model.safetensors", "u2netp.onnx"] {
            let net = try U2Net(path: FileSystem.join(try Self.tiny(), name))
            XCTAssertEqual(net.config, .u2netp)
            var traced: [String: [Float]] = [:]
            let d0 = try net.forward(x, height: 320, width: 320, pool: Self.pool, trace: { n, _, v in traced[n] = Array(v) })
            let e = maxDiff(d0, try XCTUnwrap(ref.tensor("rgb.d0")).floats())
            print("U²-NetP from \(name): d0 max |Δ| \(e)")
            XCTAssertLessThanOrEqual(e, 5e-4, name)
            for k in 1...6 {
                let s = try XCTUnwrap(ref.tensor("rgb.side\(k)_logit"))
                let got = try XCTUnwrap(traced["side\(k)_logit"])
                XCTAssertEqual(got.count, s.count)
                XCTAssertLessThanOrEqual(maxDiff(got, s.floats()), 1e-3, "\(name) side\(k)")
            }
            outs.append(d0)
        }
        // The exporter folded the BatchNorms in float32, we fold the state_dict's in float64 (weights
        // ~2e-7 apart relatively, README §8.2): the two maps agree within the network tolerance.
        XCTAssertLessThanOrEqual(maxDiff(outs[0], outs[1]), 2e-4, "state_dict vs ONNX")
    }

    /// End to end on both cases (README §10.3 bounds): masks ±1, final alpha ≤ 16, premultiplied RGB
    /// ≤ 3 levels, RGB where both alphas ≥ 64 ≤ 4.
    func testEndToEndWithinTheReadmeBounds() throws {
        let inp = try Self.file("inputs.safetensors"), ref = try Self.file("reference.safetensors")
        let net = try U2Net(path: try Self.tiny())
        for (c, channels) in [("rgb", 3), ("rgba", 4)] {
            let (shape, image) = try bytes(inp, "\(c).image_u8")
            let im = try ByteImage(width: shape[1], height: shape[0], channels: channels, pixels: image)
            let r = try BackgroundRemoval.run(im, net: net, pool: Self.pool)
            XCTAssertLessThanOrEqual(maxDiff(try XCTUnwrap(r.mask320), try bytes(ref, "\(c).mask320_u8").v), 1, c)
            XCTAssertLessThanOrEqual(maxDiff(try XCTUnwrap(r.mask), try bytes(ref, "\(c).mask_u8").v), 1, c)
            XCTAssertLessThanOrEqual(maxDiff(r.cutout.pixels, try bytes(ref, "\(c).rembg_rgba_u8").v), 1, c)
            let want = try bytes(ref, "\(c).final_rgba_u8").v, got = r.final.pixels
            XCTAssertEqual(got.count, want.count)
            var alpha = 0, pre = 0.0, rgb64 = 0
            for i in 0..<(got.count / 4) {
                let ag = Int(got[4 * i + 3]), aw = Int(want[4 * i + 3])
                alpha = max(alpha, abs(ag - aw))
                for k in 0..<3 {
                    let g = Double(got[4 * i + k]) * Double(ag) / 255, wv = Double(want[4 * i + k]) * Double(aw) / 255
                    pre = max(pre, abs(g - wv))
                    if ag >= 64 && aw >= 64 { rgb64 = max(rgb64, abs(Int(got[4 * i + k]) - Int(want[4 * i + k]))) }
                }
            }
            print("\(c) end to end: final alpha ≤ \(alpha), premultiplied RGB ≤ \(pre), RGB (α ≥ 64) ≤ \(rgb64)")
            XCTAssertLessThanOrEqual(alpha, 16, c)
            XCTAssertLessThanOrEqual(pre, 3, c)
            XCTAssertLessThanOrEqual(rgb64, 4, c)
        }
        // keepAlpha: an RGBA input keeps its alpha and skips the network.
        let (shape, image) = try bytes(inp, "rgba.image_u8")
        let im = try ByteImage(width: shape[1], height: shape[0], channels: 4, pixels: image)
        let kept = try BackgroundRemoval.run(im, net: net, keepAlpha: true, pool: Self.pool)
        XCTAssertNil(kept.mask)
        XCTAssertEqual(kept.cutout.pixels, image)
        XCTAssertEqual(kept.whiteout.pixels, MVDPreprocess.whiteOut(im).pixels)
    }

    /// The full U²-Net's 119 convolutions (order, shapes, dilations, pads) against its shape table
    /// (u2net-full-tensors.json, read off the real export), and u2netp's against the fixture's.
    func testConvolutionTablesMatchTheExports() throws {
        struct Binding: Decodable { let shape: [Int]; let dilations: [Int]; let pads: [Int]; let torch_conv: String; let torch_bn: String? }
        struct Table: Decodable { let onnx_conv_bindings: [Binding] }
        for (config, path) in [(U2NetConfig.u2net, FileSystem.join(try Self.root(), "u2net-full-tensors.json")),
                               (.u2netp, FileSystem.join(try Self.tiny(), "fixture_meta.json"))] {
            let table = try JSONValue.decode(Table.self, contentsOf: path).onnx_conv_bindings
            let specs = config.convolutions
            XCTAssertEqual(specs.count, table.count, config.name)
            for (s, b) in zip(specs, table) {
                XCTAssertEqual([s.outChannels, s.inChannels, s.kernel, s.kernel], b.shape, s.prefix)
                XCTAssertEqual([s.dilation, s.dilation], b.dilations, s.prefix)
                XCTAssertEqual([Int](repeating: s.padding, count: 4), b.pads, s.prefix)
                XCTAssertEqual(s.prefix + (s.batchNorm ? ".conv_s1" : ""), b.torch_conv)
                XCTAssertEqual(s.batchNorm, b.torch_bn != nil, s.prefix)
            }
        }
    }

    /// Truncated, bit-flipped and mislabelled ONNX files, a state_dict with a missing or extra tensor,
    /// and degenerate images: errors with a message, never a crash.
    func testCorruptFilesAndDegenerateImagesAreErrors() throws {
        let onnx = try FileSystem.readAll(FileSystem.join(try Self.tiny(), "u2netp.onnx"))
        let dir = FileManagerTemp.make()
        defer { FileManagerTemp.remove(dir) }
        func expectError(_ bytes: [UInt8], _ what: String) {
            let p = FileSystem.join(dir, "bad.onnx")
            try? FileSystem.writeAtomically(p, bytes: bytes, overwrite: true)
            XCTAssertThrowsError(try U2Net(path: p), what) { e in
                XCTAssertFalse((e as? HYError)?.message.isEmpty ?? true, what)
            }
        }
        for cut in [0, 1, 7, 100, 5_000, onnx.count / 2, onnx.count - 1] { expectError(Array(onnx[0..<cut]), "truncated at \(cut)") }
        var rng: UInt64 = 5
        for trial in 0..<40 {
            var b = onnx
            for _ in 0..<8 {
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                let i = Int(rng >> 33) % min(b.count, 4096)                  // the graph's structure is at the front
                b[i] ^= UInt8(truncatingIfNeeded: rng >> 17) | 1
            }
            let p = FileSystem.join(dir, "fuzz.onnx")
            try FileSystem.writeAtomically(p, bytes: b, overwrite: true)
            _ = try? U2Net(path: p)                                        // may load or fail; must not crash
            _ = trial
        }
        expectError(Array("not a protobuf at all".utf8), "text")

        let net = try U2Net(path: try Self.tiny())
        let blank = try ByteImage(width: 40, height: 30, channels: 4, pixels: [UInt8](repeating: 0, count: 40 * 30 * 4))
        XCTAssertThrowsError(try BackgroundRemoval.run(blank, net: net, keepAlpha: true, pool: nil))  // empty mask
        let one = try ByteImage(width: 1, height: 1, channels: 3, pixels: [200, 100, 50])
        XCTAssertThrowsError(try BackgroundRemoval.run(one, net: net, pool: nil))
        XCTAssertThrowsError(try net.forward([0, 0], height: 1, width: 1, pool: nil))
        var stopped = false
        XCTAssertThrowsError(try net.forward([Float](repeating: 0, count: 3 * 64 * 64), height: 64, width: 64, pool: nil,
                                             shouldStop: { stopped = true; return true })) { e in
            XCTAssertEqual((e as? HYError)?.kind, .aborted)
        }
        XCTAssertTrue(stopped)
    }
}

/// A scratch folder under /tmp for one test.
enum FileManagerTemp {
    static func make() -> String {
        var t = Array("/tmp/hy-rembg-XXXXXX".utf8CString)
        return t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    static func remove(_ dir: String) {
        if let names = try? FileSystem.list(dir) { for n in names { unlink(FileSystem.join(dir, n)) } }
        rmdir(dir)
    }
}

import XCTest
import Foundation
@testable import HunyuanCore
@testable import HunyuanLM
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

/// quantize → load → logits against the reference f32 logits of every fixture in
/// $HUNYUAN_SHARED/fixtures/lm, for each weight format, within that format's documented tolerance
/// (BENCHMARKS.md, "Quantized weights and kernels"). Logits are taken both from prefill (the integer
/// GEMM; fp8: dequantized tiles + sgemm) and token by token (the integer decode kernels, on the AVX2
/// and the VNNI path).
final class QuantizationTests: XCTestCase {
    struct Drift { var maxAbs: Float = 0; var sumAbs: Double = 0; var n = 0; var kl: Double = 0; var agree = 0; var rows = 0
        var meanAbs: Double { sumAbs / Double(max(n, 1)) }
        var meanKL: Double { kl / Double(max(rows, 1)) }
        var top1: Double { Double(agree) / Double(max(rows, 1)) }
        /// Adds one position: reference row r, our row q.
        mutating func add(_ r: UnsafeBufferPointer<Float>, _ q: UnsafeBufferPointer<Float>) {
            var mr = -Float.infinity, mq = -Float.infinity, ar = 0, aq = 0
            for i in 0..<r.count {
                let d = abs(r[i] - q[i]); maxAbs = max(maxAbs, d); sumAbs += Double(d); n += 1
                if r[i] > mr { mr = r[i]; ar = i }
                if q[i] > mq { mq = q[i]; aq = i }
            }
            var zr = 0.0, zq = 0.0
            for i in 0..<r.count { zr += exp(Double(r[i] - mr)); zq += exp(Double(q[i] - mq)) }
            let lzr = log(zr), lzq = log(zq)
            var k = 0.0
            for i in 0..<r.count {
                let lp = Double(r[i] - mr) - lzr, lq = Double(q[i] - mq) - lzq
                k += exp(lp) * (lp - lq)
            }
            kl += k; rows += 1; if ar == aq { agree += 1 }
        }
    }

    /// Documented tolerances vs f32 on the fixtures (random tiny models, |logit| ≲ 3, hidden 48-64):
    /// max |Δ|, mean |Δ|, mean KL(ref ‖ ours). Max |Δ| in decode includes MoE routing flips caused by
    /// the int8 activation (a near-tie expert choice changes), hence the wider max than mean bounds.
    static let tolerance: [WeightFormat: (Float, Double, Double)] = [
        .q8_0: (1.0, 0.05, 3e-3), .fp8: (1.5, 0.12, 0.01), .q4_k: (2.0, 0.3, 0.06), .q4_0: (2.5, 0.3, 0.06),
    ]

    func testQuantizedCheckpointsStayWithinTolerance() throws {
        let root = LMFixtureTestCase.fixturesRoot
        guard FileSystem.isDirectory(root) else { throw XCTSkip("LM fixtures not found at \(root) (set HUNYUAN_SHARED)") }
        let dirs = try FileSystem.list(root).sorted().map { FileSystem.join(root, $0) }
            .filter { FileSystem.exists(FileSystem.join($0, "reference.safetensors")) }
        guard !dirs.isEmpty else { throw XCTSkip("no fixtures with reference.safetensors in \(root)") }
        let tmp = FileSystem.join(NSTemporaryDirectoryPath(), "hy-quant-\(getpid())")
        _ = mkdir(tmp, 0o755)
        defer { quantKernelPathOverride = .auto; try? FileManager.default.removeItem(atPath: tmp) }
        for dir in dirs {
            let f = try SafetensorsFile(path: FileSystem.join(dir, "reference.safetensors"))
            let ids = try XCTUnwrap(f.tensor("input_ids")).int64s().map { Int32($0) }
            let ref = try XCTUnwrap(f.tensor("logits")).floats()
            let name = String(dir.split(separator: "/").last ?? "")
            for fmt in [WeightFormat.q8_0, .q4_0, .q4_k, .fp8] {
                let out = FileSystem.join(tmp, "\(name)-\(fmt.rawValue)")
                try QuantizeCheckpoint.run(input: dir, output: out, type: fmt, threads: 2)
                let m = try HunyuanModel(path: out)
                XCTAssertEqual(m.weightType, fmt.rawValue, name)
                let v = m.config.vocabSize
                let s = try InferenceSession(model: m, contextLength: ids.count, threads: 2)
                try s.eval(ids, allLogits: true)
                var pre = Drift()
                ref.withUnsafeBufferPointer { r in s.allLogits.withUnsafeBufferPointer { q in
                    for i in 0..<ids.count {
                        pre.add(UnsafeBufferPointer(rebasing: r[(i * v)..<((i + 1) * v)]), UnsafeBufferPointer(rebasing: q[(i * v)..<((i + 1) * v)]))
                    } } }
                // Decode: one token at a time through the integer kernels, on each path.
                var decByPath: [[Float]] = []
                for path in (CPUFeatures.avx512vnni ? [QuantKernelPath.avx2, .vnni] : [.avx2]) {
                    quantKernelPathOverride = path
                    s.reset()
                    var dec = Drift(), all: [Float] = []
                    for (i, id) in ids.enumerated() {
                        try s.eval(token: id)
                        ref.withUnsafeBufferPointer { r in dec.add(UnsafeBufferPointer(rebasing: r[(i * v)..<((i + 1) * v)]), s.lastLogits) }
                        all.append(contentsOf: s.lastLogits)
                    }
                    decByPath.append(all)
                    let (tMax, tMean, tKL) = Self.tolerance[fmt]!
                    for (what, d) in [("prefill", pre), ("decode-\(path)", dec)] {
                        print(String(format: "quant %@ %@ %@: max|Δ| %.4f mean|Δ| %.5f KL %.2e top1 %.3f",
                                     name, fmt.rawValue, what, d.maxAbs, d.meanAbs, d.meanKL, d.top1))
                        XCTAssertLessThanOrEqual(d.maxAbs, tMax, "\(name) \(fmt) \(what) max")
                        XCTAssertLessThanOrEqual(d.meanAbs, tMean, "\(name) \(fmt) \(what) mean")
                        XCTAssertLessThanOrEqual(d.meanKL, tKL, "\(name) \(fmt) \(what) KL")
                    }
                }
                if decByPath.count == 2 {
                    // Same integer sums, different float summation order: tiny differences, except
                    // where one flips a near-tie MoE routing choice, which then carries through the
                    // cache to every later position (1.3e-3 to 5e-3 on the tiny fixtures, depending on
                    // where the flips fall) — so compare the mean, with room for flips; a wrong kernel
                    // moves it by ~1e-1. Each kernel path is checked against float64 in KernelTests.
                    var m: Float = 0, sum: Double = 0
                    for i in 0..<decByPath[0].count {
                        let d = abs(decByPath[0][i] - decByPath[1][i]); m = max(m, d); sum += Double(d)
                    }
                    let mean = sum / Double(decByPath[0].count)
                    print("quant \(name) \(fmt) AVX2 vs VNNI decode: max|Δ| \(m) mean|Δ| \(mean)")
                    XCTAssertLessThan(mean, 1e-2, "\(name) \(fmt): AVX2 and VNNI decode differ")
                }
            }
        }
    }

    func testF32RoundTripThroughQuantizeKeepsParity() throws {
        let root = LMFixtureTestCase.fixturesRoot
        let dir = FileSystem.join(root, "hunyuan-large-tiny-bf16-sharded")
        guard FileSystem.exists(FileSystem.join(dir, "reference.safetensors")) else { throw XCTSkip("fixture \(dir) not found") }
        let f = try SafetensorsFile(path: FileSystem.join(dir, "reference.safetensors"))
        let ids = try XCTUnwrap(f.tensor("input_ids")).int64s().map { Int32($0) }
        let ref = try XCTUnwrap(f.tensor("logits")).floats()
        let out = FileSystem.join(NSTemporaryDirectoryPath(), "hy-quant-f32-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try QuantizeCheckpoint.run(input: dir, output: out, type: .f32)
        let m = try HunyuanModel(path: out)
        let s = try InferenceSession(model: m, contextLength: ids.count, threads: 1)
        try s.eval(ids, allLogits: true)
        XCTAssertLessThanOrEqual(LMFixtureTestCase.maxAbsDiff(s.allLogits, ref), 1e-4)
    }

    func NSTemporaryDirectoryPath() -> String {
        if let t = getenv("TMPDIR") { return String(cString: t) }
        return "/tmp"
    }
}

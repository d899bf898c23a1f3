import XCTest
import CKernels
@testable import HunyuanCore

/// The quantized prefill GEMM (linearQuantized, quant_gemm.c) on every format × kernel path × odd
/// shapes. References, both independent of the C code: the Double product of the weights dequantized
/// by the scalar Swift dequantizer with the activations quantized by a Swift re-implementation of the
/// int8 block quantizer (only fp32 summation order differs: tight bound), and the Double product of
/// the original f32 weights and activations (format error bounds).
final class QuantGEMMTests: XCTestCase {
    typealias Bytes = WeightTestData.Bytes
    typealias RNG = WeightTestData.RNG
    static func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] {
        WeightTestData.randomMatrix(rows, cols, seed: seed)
    }
    static func quantized(_ w: [Float], _ rows: Int, _ cols: Int, _ f: WeightFormat) throws -> (WeightMatrix, [AnyObject]) {
        try WeightTestData.quantized(w, rows, cols, f)
    }

    /// The int8 activation quantization written out independently: per block of 32, d = max|x|/127,
    /// code = round-half-even(x · 127/max|x|); returns the dequantized values d·code.
    static func dequantizedActivations(_ x: [Float], _ cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for row in 0..<(x.count / cols) {
            var b = 0
            while b < cols {
                let n = min(32, cols - b)
                var amax: Float = 0
                for i in 0..<n { amax = max(amax, abs(x[row * cols + b + i])) }
                let d = amax / 127, inv: Float = amax > 0 ? 127 / amax : 0
                for i in 0..<n {
                    let c = max(-127, min(127, (x[row * cols + b + i] * inv).rounded(.toNearestOrEven)))
                    out[row * cols + b + i] = d * c
                }
                b += 32
            }
        }
        return out
    }

    /// Y[t, rows] = X[t, cols] · Wᵀ in Double.
    static func reference(_ w: [Float], _ x: [Float], _ rows: Int, _ cols: Int, _ t: Int) -> [Float] {
        var y = [Float](repeating: 0, count: t * rows)
        for i in 0..<t {
            for r in 0..<rows {
                var s: Double = 0
                for c in 0..<cols { s += Double(w[r * cols + c]) * Double(x[i * cols + c]) }
                y[i * rows + r] = Float(s)
            }
        }
        return y
    }

    static func relErr(_ a: [Float], _ b: [Float]) -> Float {
        var num: Double = 0, den: Double = 0
        for i in 0..<a.count {
            num += Double(a[i] - b[i]) * Double(a[i] - b[i])
            den += Double(b[i]) * Double(b[i])
        }
        return Float((num / max(den, 1e-30)).squareRoot())
    }

    static func run(_ m: WeightMatrix, _ x: [Float], _ t: Int, pool: ThreadPool?) -> ([Float], Bool) {
        var y = [Float](repeating: .nan, count: t * m.rows)
        let handled = x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in linearQuantized(m, xb.baseAddress!, t, yb.baseAddress!, pool: pool) }
        }
        return (y, handled)
    }

    /// Output error bound vs the f32 product (weight quantization + int8 activations; as KernelTests).
    static let outputBound: [WeightFormat: Float] = [.q8_0: 0.02, .q4_0: 0.16, .q4_k: 0.13]

    var paths: [QuantKernelPath] { CPUFeatures.avx512 && CPUFeatures.avx512vnni ? [.scalar, .avx2, .vnni] : [.scalar, .avx2] }

    func testAllFormatsPathsAndOddShapes() throws {
        defer { quantKernelPathOverride = .auto }
        let pool = ThreadPool(threads: 2)
        // rows: below, at and past one 16-row panel; cols: a padded last block (200, 520), a q4_k
        // partial super-block (200, 520, 2080 = 8 super-blocks + 1 sub-block), more than one 64-block
        // repack chunk (2080, 2336).
        let shapes = [(37, 200), (16, 256), (1, 64), (50, 520), (19, 2080), (24, 2336)]
        var worst: [WeightFormat: (Float, Float)] = [:]
        for (rows, cols) in shapes {
            let w = Self.randomMatrix(rows, cols, seed: UInt64(rows * 7919 + cols))
            for f in [WeightFormat.q8_0, .q4_0, .q4_k] {
                let (m, keep) = try Self.quantized(w, rows, cols, f)
                var deq = [Float](repeating: 0, count: rows * cols)
                deq.withUnsafeMutableBufferPointer { d in
                    for r in 0..<rows { Quantizer.dequantizeRow(f, m.row(r), cols: cols, d.baseAddress! + r * cols) }
                }
                for t in [1, 2, 3, 7, 33] {
                    var g = RNG(s: UInt64(t * 31 + cols))
                    let x = (0..<(t * cols)).map { _ in g.next() * (g.next() > 0.97 ? 6 : 1) }
                    let exact = Self.reference(w, x, rows, cols, t)
                    let deqRef = Self.reference(deq, Self.dequantizedActivations(x, cols), rows, cols, t)
                    var results: [QuantKernelPath: [Float]] = [:]
                    for path in paths {
                        quantKernelPathOverride = path
                        let (y, handled) = Self.run(m, x, t, pool: pool)
                        XCTAssertTrue(handled)
                        let tag = "\(f) \(path) \(rows)x\(cols) t=\(t)"
                        XCTAssertFalse(y.contains { !$0.isFinite }, "\(tag): unwritten or non-finite outputs")
                        let eTight = Self.relErr(y, deqRef), eF32 = Self.relErr(y, exact)
                        XCTAssertLessThan(eTight, 2e-6, "\(tag) vs dequantized product")
                        // The format bounds are statistical: a handful of outputs (1 row × 7 tokens)
                        // scatter more widely around the format's error.
                        let bound = Self.outputBound[f]! * (rows * t < 64 ? 1.5 : 1)
                        XCTAssertLessThan(eF32, bound, "\(tag) vs f32 product")
                        worst[f, default: (0, 0)] = (max(worst[f]?.0 ?? 0, eTight), max(worst[f]?.1 ?? 0, eF32))
                        results[path] = y
                    }
                    if let a = results[.avx2], let s = results[.scalar] {
                        XCTAssertLessThan(Self.relErr(a, s), 1e-6, "\(f) avx2 vs scalar \(rows)x\(cols) t=\(t)")
                    }
                    if let v = results[.vnni], let a = results[.avx2] {
                        XCTAssertLessThan(Self.relErr(v, a), 1e-6, "\(f) vnni vs avx2 \(rows)x\(cols) t=\(t)")
                    }
                }
                withExtendedLifetime(keep) {}
            }
        }
        for (f, e) in worst.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print("quant GEMM \(f): worst rel.err vs dequantized product \(e.0), vs f32 product \(e.1)")
        }
    }

    func testThreadSplitDoesNotChangeResults() throws {
        // Large enough to be split over the pool (several 16-row parts per thread); every row is
        // computed by one thread in the same order, so pooled and single-thread outputs are equal.
        defer { quantKernelPathOverride = .auto }
        let rows = 200, cols = 1000, t = 20
        let w = Self.randomMatrix(rows, cols, seed: 3)
        var g = RNG(s: 11)
        let x = (0..<(t * cols)).map { _ in g.next() }
        let pool = ThreadPool(threads: 2)
        for f in [WeightFormat.q8_0, .q4_0, .q4_k] {
            let (m, keep) = try Self.quantized(w, rows, cols, f)
            for path in paths {
                quantKernelPathOverride = path
                let (a, _) = Self.run(m, x, t, pool: pool)
                let (b, _) = Self.run(m, x, t, pool: nil)
                XCTAssertEqual(a, b, "\(f) \(path)")
            }
            withExtendedLifetime(keep) {}
        }
    }

    func testRowsQuantizerEqualsDecodeQuantizer() {
        // The prefill quantizer (AVX2) must give the decode quantizer's codes, scales and sums exactly.
        for cols in [32, 200, 2048, 7] {
            let t = 3, nb = (cols + 31) / 32
            var g = RNG(s: UInt64(cols))
            var x = (0..<(t * cols)).map { _ in g.next() * 3 }
            for i in 0..<min(32, cols) { x[i] = 0 }  // an all-zero block
            if cols > 40 { x[cols + 5] = 1e30; x[cols + 6] = -1e-30 }
            var q = [Int8](repeating: 0, count: t * nb * 32), d = [Float](repeating: 0, count: t * nb)
            var s = [Int32](repeating: 0, count: t * nb)
            hyi_quantize_rows_q8(x, Int64(t), Int64(cols), Int64(cols), &q, &d, &s)
            for i in 0..<t {
                var q1 = [Int8](repeating: 0, count: nb * 32), d1 = [Float](repeating: 0, count: nb)
                var s1 = [Int32](repeating: 0, count: nb)
                Array(x[(i * cols)..<((i + 1) * cols)]).withUnsafeBufferPointer {
                    hyi_quantize_act_q8($0.baseAddress!, Int64(cols), &q1, &d1, &s1)
                }
                XCTAssertEqual(Array(q[(i * nb * 32)..<((i + 1) * nb * 32)]), q1, "codes cols=\(cols) row \(i)")
                XCTAssertEqual(Array(d[(i * nb)..<((i + 1) * nb)]), d1, "scales cols=\(cols) row \(i)")
                XCTAssertEqual(Array(s[(i * nb)..<((i + 1) * nb)]), s1, "sums cols=\(cols) row \(i)")
            }
        }
    }

    func testFloatFormatsAreNotHandled() throws {
        let b = Bytes([UInt8](repeating: 0, count: 4 * 8 * 4))
        let t = Tensor(name: "f", dtype: .f32, shape: [4, 8], data: UnsafeRawBufferPointer(b.p), owner: b)
        let m = try WeightMatrix(t, rows: 4, cols: 8)
        let (y, handled) = Self.run(m, [Float](repeating: 1, count: 16), 2, pool: nil)
        XCTAssertFalse(handled)
        XCTAssertTrue(y.allSatisfy { $0.isNaN }, "y must be left untouched")
    }
}

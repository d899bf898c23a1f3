import XCTest
import CKernels
@testable import HunyuanCore

/// Quantized weight kernels against the f32 reference on random data. The references are
/// independent of the code under test: plain f32 dot products over the original weights (error
/// bounds per format), a brute-force nearest-value search for the E4M3 encoder (FloatBits), and each
/// integer path (scalar, AVX2, AVX-512 VNNI) against the f32 product of the dequantized weights.
final class KernelTests: XCTestCase {
    typealias Bytes = WeightTestData.Bytes
    typealias RNG = WeightTestData.RNG
    func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] { WeightTestData.randomMatrix(rows, cols, seed: seed) }
    func quantized(_ w: [Float], _ rows: Int, _ cols: Int, _ f: WeightFormat) throws -> (WeightMatrix, [AnyObject]) {
        try WeightTestData.quantized(w, rows, cols, f)
    }

    func relErr(_ a: [Float], _ b: [Float]) -> Float {
        var num: Float = 0, den: Float = 0
        for i in 0..<a.count { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i] }
        return (num / max(den, 1e-30)).squareRoot()
    }

    func referenceMatvec(_ w: [Float], _ x: [Float], _ rows: Int, _ cols: Int) -> [Float] {
        (0..<rows).map { r in
            var s: Double = 0
            for c in 0..<cols { s += Double(w[r * cols + c]) * Double(x[c]) }
            return Float(s)
        }
    }

    /// Documented error bounds (relative RMS over the matrix / output vector) per format.
    /// (Output errors of a few rows scatter around the weight error: bounds are ~1.6x wider.)
    static let weightBound: [WeightFormat: Float] = [.q8_0: 0.008, .q4_0: 0.12, .q4_k: 0.09, .fp8: 0.035]
    static let outputBound: [WeightFormat: Float] = [.q8_0: 0.02, .q4_0: 0.16, .q4_k: 0.13, .fp8: 0.07]

    func testQuantizedMatvecAgainstF32OnAllPaths() throws {
        let pool = ThreadPool(threads: 2)
        defer { quantKernelPathOverride = .auto }
        for (rows, cols) in [(67, 200), (48, 512), (5, 2048)] {
            let w = randomMatrix(rows, cols, seed: UInt64(rows * 1000 + cols))
            var g = RNG(s: 99)
            let x = (0..<cols).map { _ in g.next() }
            let exact = referenceMatvec(w, x, rows, cols)
            for f in [WeightFormat.q8_0, .q4_0, .q4_k, .fp8] {
                let (m, keep) = try quantized(w, rows, cols, f)
                // Dequantized weights vs original.
                var deq = [Float](repeating: 0, count: rows * cols)
                deq.withUnsafeMutableBufferPointer { d in for r in 0..<rows { m.copyRow(r, into: d.baseAddress! + r * cols) } }
                if f.isBlockQuantized {
                    // The vectorized C dequantizer (prefill tiles) equals the scalar Swift one exactly.
                    var ref = [Float](repeating: 0, count: cols)
                    for r in [0, rows - 1] {
                        ref.withUnsafeMutableBufferPointer { Quantizer.dequantizeRow(f, m.row(r), cols: cols, $0.baseAddress!) }
                        XCTAssertEqual(Array(deq[(r * cols)..<((r + 1) * cols)]), ref, "\(f) dequantizers differ")
                    }
                }
                let we = relErr(deq, w)
                XCTAssertLessThan(we, Self.weightBound[f]!, "\(f) weights \(rows)x\(cols)")
                let yDeq = referenceMatvec(deq, x, rows, cols)
                var results: [QuantKernelPath: [Float]] = [:]
                let paths: [QuantKernelPath] = CPUFeatures.avx512vnni ? [.scalar, .avx2, .vnni] : [.scalar, .avx2]
                for path in paths {
                    quantKernelPathOverride = path
                    var y = [Float](repeating: 0, count: rows)
                    x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                        matvec(m, xb.baseAddress!, yb.baseAddress!, pool: pool) } }
                    let eOut = relErr(y, exact)
                    XCTAssertLessThan(eOut, Self.outputBound[f]!, "\(f) \(path) output vs f32 \(rows)x\(cols)")
                    // Against the dequantized weights only activation rounding remains (fp8 has none).
                    XCTAssertLessThan(relErr(y, yDeq), f == .fp8 ? 1e-5 : 0.01, "\(f) \(path) vs dequantized")
                    results[path] = y
                    if path == .avx2 && rows == 67 {
                        print("kernel \(f) \(rows)x\(cols): weight rel.err \(we), output rel.err \(eOut)")
                    }
                }
                // The integer paths compute the same integer sums: equal up to float summation order
                // (AVX-512 pairs blocks, so its order differs from AVX2's).
                if let a = results[.avx2], let s = results[.scalar] { XCTAssertLessThan(relErr(a, s), 1e-5, "\(f) avx2 vs scalar") }
                if let v = results[.vnni], let a = results[.avx2] { XCTAssertLessThan(relErr(v, a), 1e-5, "\(f) vnni vs avx2") }
                // Prefill (t > 1 tokens): block formats run the integer GEMM on int8 activations (as decode
                // does; QuantGEMMTests checks it tightly), fp8 dequantizes tiles for sgemm (exact).
                let t = 3
                var xs = [Float](repeating: 0, count: t * cols)
                for i in 0..<(t * cols) { xs[i] = g.next() }
                var ys = [Float](repeating: 0, count: t * rows)
                xs.withUnsafeBufferPointer { xb in ys.withUnsafeMutableBufferPointer { yb in
                    linear(m, xb.baseAddress!, t, yb.baseAddress!, pool: pool) } }
                for i in 0..<t {
                    let ref = referenceMatvec(deq, Array(xs[(i * cols)..<((i + 1) * cols)]), rows, cols)
                    XCTAssertLessThan(relErr(Array(ys[(i * rows)..<((i + 1) * rows)]), ref), f.isBlockQuantized ? 0.01 : 1e-5,
                                      "\(f) prefill token \(i)")
                }
                withExtendedLifetime(keep) {}
            }
        }
    }

    /// Prefill GEMM on f32/f16/bf16 weights, AVX-512 tiled kernel and the portable sgemm path, against
    /// a float64 product of the stored (rounded) weights: odd token counts (tile 6, token block 48),
    /// rows not a multiple of the 4-row tile, columns with a 16-lane tail, 1 and 2 threads.
    func testFloatGEMMPathsAgainstFloat64() throws {
        defer { floatGEMMKernelEnabled = true }
        let pools = [ThreadPool(threads: 1), ThreadPool(threads: 2)]
        for (t, rows, cols) in [(2, 5, 37), (7, 13, 100), (33, 67, 200), (50, 130, 513), (97, 256, 1024)] {
            let w = randomMatrix(rows, cols, seed: UInt64(t * 7 + rows))
            var g = RNG(s: UInt64(cols))
            let x = (0..<(t * cols)).map { _ in g.next() }
            for dt in [DType.f32, .f16, .bf16] {
                var bytes = [UInt8](repeating: 0, count: rows * cols * (dt == .f32 ? 4 : 2))
                var stored = w
                bytes.withUnsafeMutableBytes { b in
                    for i in 0..<w.count {
                        switch dt {
                        case .f32: b.storeBytes(of: w[i], toByteOffset: 4 * i, as: Float.self)
                        case .f16:
                            let h = FloatBits.floatToF16(w[i]); stored[i] = FloatBits.f16ToFloat(h)
                            b.storeBytes(of: h, toByteOffset: 2 * i, as: UInt16.self)
                        default:
                            let h = FloatBits.floatToBF16(w[i]); stored[i] = FloatBits.bf16ToFloat(h)
                            b.storeBytes(of: h, toByteOffset: 2 * i, as: UInt16.self)
                        }
                    }
                }
                let keep = Bytes(bytes)
                let m = try WeightMatrix(Tensor(name: "w", dtype: dt, shape: [rows, cols], data: UnsafeRawBufferPointer(keep.p), owner: keep),
                                         rows: rows, cols: cols)
                var ref = [Float](repeating: 0, count: t * rows)
                var scale = [Float](repeating: 0, count: t * rows)
                for i in 0..<t {
                    for r in 0..<rows {
                        var acc = 0.0, mag = 0.0
                        for c in 0..<cols {
                            acc += Double(stored[r * cols + c]) * Double(x[i * cols + c])
                            mag += abs(Double(stored[r * cols + c]) * Double(x[i * cols + c]))
                        }
                        ref[i * rows + r] = Float(acc); scale[i * rows + r] = Float(mag)
                    }
                }
                for kernel in [true, false] {
                    floatGEMMKernelEnabled = kernel
                    for pool in pools {
                        var y = [Float](repeating: .nan, count: t * rows)
                        x.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { linear(m, xp.baseAddress!, t, $0.baseAddress!, pool: pool) }
                        }
                        for j in 0..<y.count {
                            // fp32 accumulation: error ≲ cols · eps · Σ|terms|
                            XCTAssertLessThanOrEqual(abs(y[j] - ref[j]), 4e-7 * Float(cols).squareRoot() * scale[j] + 1e-30,
                                                     "\(dt) kernel \(kernel) t \(t) rows \(rows) cols \(cols) at \(j)")
                            if abs(y[j] - ref[j]) > 4e-7 * Float(cols).squareRoot() * scale[j] + 1e-30 { return }
                        }
                    }
                }
                withExtendedLifetime(keep) {}
            }
        }
    }

    /// The q8_0 KV-cache loader reads what the C dequantizer (hyi_dequant_row) reads from the same blocks.
    func testQ8_0LoaderMatchesDequantRow() throws {
        let cols = 256
        let w = randomMatrix(3, cols, seed: 5)
        let (m, keep) = try quantized(w, 3, cols, .q8_0)
        for r in 0..<3 {
            var ref = [Float](repeating: 0, count: cols)
            ref.withUnsafeMutableBufferPointer { hyi_dequant_row(WeightFormat.q8_0.kernelCode, m.row(r), Int64(cols), $0.baseAddress!) }
            for i in stride(from: 0, to: cols, by: 8) {
                let v = Q8_0Loader.load8(m.row(r), i)
                for l in 0..<8 { XCTAssertEqual(v[l], ref[i + l], "row \(r) element \(i + l)") }
                XCTAssertEqual(Q8_0Loader.load1(m.row(r), i + 3), ref[i + 3])
            }
            XCTAssertEqual(Q8_0Loader.byteOffset(64), 68)
        }
        withExtendedLifetime(keep) {}
    }

    func testQ4KBeatsQ4_0OnGaussianWeights() throws {
        // Weights of trained layers are roughly Gaussian with outliers; q4_k's fitted asymmetric
        // sub-block ranges must reconstruct them better than q4_0's symmetric max-scaled blocks.
        var g = RNG(s: 5)
        let rows = 32, cols = 1024
        let w: [Float] = (0..<(rows * cols)).map { _ in
            let u = max(1e-7, (g.next() + 1) / 2), v = g.next() * .pi
            return (-2 * log(u)).squareRoot() * cos(v) * 0.02
        }
        var errs: [WeightFormat: Float] = [:]
        for f in [WeightFormat.q4_0, .q4_k] {
            let (m, keep) = try quantized(w, rows, cols, f)
            var deq = [Float](repeating: 0, count: rows * cols)
            deq.withUnsafeMutableBufferPointer { d in for r in 0..<rows { m.copyRow(r, into: d.baseAddress! + r * cols) } }
            errs[f] = relErr(deq, w)
            withExtendedLifetime(keep) {}
        }
        print("gaussian weights rel.err: q4_0 \(errs[.q4_0]!), q4_k \(errs[.q4_k]!)")
        XCTAssertLessThan(errs[.q4_k]!, errs[.q4_0]!)
    }

    func testE4M3EncoderMatchesBruteForce() {
        // Every code round-trips; random values pick the same code as the exhaustive search.
        for code in UInt8(0)...UInt8(0x7E) {
            XCTAssertEqual(Quantizer.e4m3(FloatBits.e4m3Decode(code)), code)
            XCTAssertEqual(Quantizer.e4m3(-FloatBits.e4m3Decode(code)), code == 0 ? 0x80 : code | 0x80)
        }
        var g = RNG(s: 7)
        for _ in 0..<3000 {
            let v = g.next() * Float(pow(2, Double(Int(g.next() * 12))))
            XCTAssertEqual(Quantizer.e4m3(v), FloatBits.floatToE4M3(v), "\(v)")
        }
        // The f16-based widening used by the fp8 kernel decodes every code (×256) exactly.
        for code in UInt8(0)...UInt8(0x7E) {
            var b: [UInt8] = [code, code | 0x80, 0, 0, 0, 0, 0, 0]
            let v = b.withUnsafeMutableBytes { FP8Loader.load8(UnsafeRawPointer($0.baseAddress!), 0) }
            XCTAssertEqual(v[0] * 256, FloatBits.e4m3Decode(code))
            XCTAssertEqual(v[1] * 256, -FloatBits.e4m3Decode(code))
        }
    }

    func testMalformedQuantizedTensorIsAFormatError() {
        let b = Bytes([UInt8](repeating: 0, count: 4 * 2 * 34))
        let t = Tensor(name: "bad", dtype: .u8, shape: [4, 2, 34], data: UnsafeRawBufferPointer(b.p), owner: b)
        XCTAssertThrowsError(try WeightMatrix(t, rows: 4, cols: 100))  // 100 cols need 4 blocks
        XCTAssertNoThrow(try WeightMatrix(t, rows: 4, cols: 64))
        let t2 = Tensor(name: "bad2", dtype: .u8, shape: [4, 2, 35], data: UnsafeRawBufferPointer(b.p), owner: b)
        XCTAssertThrowsError(try WeightMatrix(t2, rows: 4, cols: 64))
        let f8 = Tensor(name: "f8", dtype: .f8e4m3, shape: [4, 64], data: UnsafeRawBufferPointer(b.p), owner: b)
        XCTAssertThrowsError(try WeightMatrix(f8, rows: 4, cols: 64))  // no scale
    }
}

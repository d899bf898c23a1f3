import XCTest
@testable import HunyuanNN

/// Conv2d against a float64 direct convolution (PyTorch's definition written out loop by loop) over
/// the shapes the networks use — 3×3 stride 1 and 2 (symmetric and asymmetric padding), 1×1, 7×7
/// dilated, the nearest-2× up-sampled input — on odd sizes, f32 and f16 weights, with and without
/// bias, inline and on 2 threads, and with the scratch shrunk so several chunks and weight tiles run.
final class Conv2dTests: XCTestCase {
    static let pool = ThreadPool(threads: 2)
    var seed: UInt64 = 11
    func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1 }

    struct Shape: CustomStringConvertible {
        var cin: Int, cout: Int, k: Int, stride = 1, pad = Padding2D(0), dil = 1, up = false
        var description: String { "\(cin)→\(cout) \(k)×\(k) s\(stride) pad \(pad.top),\(pad.left),\(pad.bottom),\(pad.right) d\(dil)\(up ? " up2x" : "")" }
    }

    /// A [cout, cin, k, k] weight tensor of `values` in `dtype` (f32 or f16) and the values it holds.
    func weightTensor(_ values: [Float], _ s: Shape, f16: Bool) -> (Tensor, [Float]) {
        let shape = [s.cout, s.cin, s.k, s.k]
        if !f16 { return (Tensor(name: "w", shape: shape, floats: values), values) }
        let bits = values.map { Float16($0).bitPattern }
        let box = FloatBuffer((bits.count + 1) / 2, zeroed: false)
        bits.withUnsafeBytes { UnsafeMutableRawPointer(box.p).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let t = Tensor(name: "w", dtype: .f16, shape: shape, data: UnsafeRawBufferPointer(start: box.p, count: 2 * bits.count), owner: box)
        return (t, values.map { Float(Float16($0)) })
    }

    /// The direct convolution of x[cin, h, w] (read up-sampled when s.up) in float64.
    func reference(_ s: Shape, _ w: [Float], _ b: [Float]?, _ x: [Float], h: Int, wd: Int, ho: Int, wo: Int) -> [Double] {
        let u = s.up ? 1 : 0, hv = h << u, wv = wd << u
        var ref = [Double](repeating: 0, count: s.cout * ho * wo)
        for o in 0..<s.cout { for oy in 0..<ho { for ox in 0..<wo {
            var acc = Double(b?[o] ?? 0)
            for i in 0..<s.cin { for ky in 0..<s.k { for kx in 0..<s.k {
                let iy = oy * s.stride - s.pad.top + ky * s.dil, ix = ox * s.stride - s.pad.left + kx * s.dil
                if iy < 0 || iy >= hv || ix < 0 || ix >= wv { continue }
                acc += Double(w[((o * s.cin + i) * s.k + ky) * s.k + kx]) * Double(x[(i * h + (iy >> u)) * wd + (ix >> u)])
            } } }
            ref[(o * ho + oy) * wo + ox] = acc
        } } }
        return ref
    }

    /// x rounded to bf16, nearest even (the bits written out, independent of the library's rounding).
    static func bf16(_ x: Float) -> Float {
        let u = x.bitPattern
        return Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000)
    }

    /// With `bf16`, the convolution runs on the weight's bf16 form (`ComputePrecision.bf16`): the
    /// reference then uses bf16-rounded weights and inputs where the CPU has AVX512_BF16 (elsewhere
    /// the products stay fp32 and so does the reference).
    func check(_ s: Shape, sizes: [(Int, Int)], bf16: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let rounded = bf16 && CPUFeatures.avx512bf16
        for f16 in [false, true] { for withBias in [false, true] {
            var (wt, wv) = weightTensor((0..<(s.cout * s.cin * s.k * s.k)).map { _ in rnd() }, s, f16: f16)
            let bv = withBias ? (0..<s.cout).map { _ in rnd() } : nil
            var conv = try Conv2d(weight: wt, bias: bv.map { Tensor(name: "b", shape: [s.cout], floats: $0) }, inChannels: s.cin,
                                  outChannels: s.cout, kernel: (s.k, s.k), stride: s.stride, padding: s.pad, dilation: s.dil)
            if bf16 {
                conv = try Conv2d(Linear(weight: conv.linear.weight.withBF16(taps: s.k * s.k), bias: conv.linear.bias),
                                  inChannels: s.cin, kernel: (s.k, s.k), stride: s.stride, padding: s.pad, dilation: s.dil)
                if rounded { wv = wv.map(Self.bf16) }
            }
            for (h, w) in sizes {
                let x = (0..<(s.cin * h * w)).map { _ in rnd() }
                let (ho, wo) = conv.outputSize(height: h, width: w, upsample2x: s.up)
                let ref = reference(s, wv, bv, rounded ? x.map(Self.bf16) : x, h: h, wd: w, ho: ho, wo: wo)
                for pool in [nil, Self.pool] {
                    var out = [Float](repeating: .nan, count: ref.count)
                    x.withUnsafeBufferPointer { xp in
                        out.withUnsafeMutableBufferPointer {
                            conv.forward(xp.baseAddress!, height: h, width: w, $0.baseAddress!, pool: pool, upsample2x: s.up)
                        }
                    }
                    let err = zip(out, ref).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
                    XCTAssertLessThan(err, 1e-5 * Double(s.cin * s.k * s.k).squareRoot(),
                                      "\(s) \(h)×\(w) f16 \(f16) bias \(withBias) threads \(pool?.threadCount ?? 1)", file: file, line: line)
                }
            }
        } }
    }

    static let odd = [(1, 1), (1, 17), (2, 5), (5, 2), (5, 17), (17, 5), (17, 17)]

    func testThreeByThree() throws {
        try check(Shape(cin: 5, cout: 7, k: 3, pad: Padding2D(1)), sizes: Self.odd)
        try check(Shape(cin: 5, cout: 7, k: 3, stride: 2, pad: Padding2D(1)), sizes: Self.odd)
        try check(Shape(cin: 5, cout: 7, k: 3, stride: 2, pad: Padding2D(top: 0, left: 0, bottom: 1, right: 1)), sizes: Self.odd)
    }

    func testPointwiseAndGeneralKernels() throws {
        try check(Shape(cin: 6, cout: 5, k: 1), sizes: Self.odd)
        try check(Shape(cin: 3, cout: 4, k: 1, stride: 2, pad: Padding2D(1)), sizes: Self.odd)
        try check(Shape(cin: 3, cout: 4, k: 7, pad: Padding2D(6), dil: 2), sizes: Self.odd)
        try check(Shape(cin: 2, cout: 3, k: 7, stride: 3, pad: Padding2D(top: 3, left: 1, bottom: 0, right: 2)), sizes: Self.odd)
    }

    func testUpsampledInput() throws {
        try check(Shape(cin: 5, cout: 7, k: 3, pad: Padding2D(1), up: true), sizes: Self.odd)
        try check(Shape(cin: 4, cout: 3, k: 3, stride: 2, pad: Padding2D(1), dil: 2, up: true), sizes: Self.odd)
        try check(Shape(cin: 4, cout: 3, k: 1, up: true), sizes: [(2, 5), (5, 17)])
    }

    /// Sizes large enough for the per-pixel thread split, and a scratch so small that the weight is
    /// widened in several row tiles and the pixels go in many chunks.
    func testChunksAndWeightTiles() throws {
        let sizes = [(40, 33), (23, 40)]
        try check(Shape(cin: 16, cout: 24, k: 3, pad: Padding2D(1)), sizes: sizes)
        try check(Shape(cin: 16, cout: 24, k: 1), sizes: sizes)
        let (s0, c0) = (Conv2d.scratchFloats, Conv2d.chunkFloats)
        defer { Conv2d.scratchFloats = s0; Conv2d.chunkFloats = c0 }
        Conv2d.scratchFloats = 1000; Conv2d.chunkFloats = 1000
        try check(Shape(cin: 16, cout: 24, k: 3, pad: Padding2D(1), up: true), sizes: [(20, 17), (3, 40)])
        try check(Shape(cin: 16, cout: 24, k: 3, stride: 2, pad: Padding2D(top: 0, left: 0, bottom: 1, right: 1)), sizes: sizes)
        try check(Shape(cin: 16, cout: 24, k: 1), sizes: sizes)
    }

    /// bf16 products (implicit GEMM over a padded channel-last copy): every geometry above, channel
    /// counts below, at and above the kernel's 32-value step, and sizes that split over the threads.
    func testBF16Products() throws {
        try check(Shape(cin: 5, cout: 7, k: 3, pad: Padding2D(1)), sizes: Self.odd, bf16: true)
        try check(Shape(cin: 40, cout: 9, k: 3, stride: 2, pad: Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
                  sizes: Self.odd, bf16: true)
        try check(Shape(cin: 32, cout: 5, k: 1), sizes: Self.odd, bf16: true)
        try check(Shape(cin: 3, cout: 4, k: 7, pad: Padding2D(6), dil: 2), sizes: Self.odd, bf16: true)
        try check(Shape(cin: 2, cout: 3, k: 7, stride: 3, pad: Padding2D(top: 3, left: 1, bottom: 0, right: 2)), sizes: Self.odd,
                  bf16: true)
        try check(Shape(cin: 33, cout: 6, k: 3, pad: Padding2D(1), up: true), sizes: Self.odd, bf16: true)
        try check(Shape(cin: 16, cout: 24, k: 3, pad: Padding2D(1)), sizes: [(40, 33), (23, 40)], bf16: true)
    }

    /// The direct 3×3 stride-1 kernel (fp32 weights, AVX-512): dilation 1/2/4/8 with padding = dilation,
    /// asymmetric and no padding, channel counts off the 8-channel block and the 16-pixel vector,
    /// 1×W and H×1 images, widths over several 48-pixel tiles, rows split over the threads; and the
    /// same shapes on the im2col path with the direct kernel switched off.
    func testDirectThreeByThree() throws {
        let sizes = Self.odd + [(1, 40), (40, 1), (3, 49), (9, 70), (40, 33), (2, 97)]
        let shapes = [Shape(cin: 5, cout: 7, k: 3, pad: Padding2D(1)),
                      Shape(cin: 19, cout: 13, k: 3, pad: Padding2D(2), dil: 2),
                      Shape(cin: 3, cout: 17, k: 3, pad: Padding2D(4), dil: 4),
                      Shape(cin: 6, cout: 9, k: 3, pad: Padding2D(8), dil: 8),
                      Shape(cin: 4, cout: 8, k: 3),
                      Shape(cin: 7, cout: 5, k: 3, pad: Padding2D(top: 0, left: 2, bottom: 1, right: 0)),
                      Shape(cin: 16, cout: 33, k: 3, pad: Padding2D(1))]
        if CPUFeatures.avx512 {
            let s = shapes[0]
            let conv = try Conv2d(weight: weightTensor((0..<(s.cout * s.cin * 9)).map { _ in rnd() }, s, f16: false).0, bias: nil,
                                  inChannels: s.cin, outChannels: s.cout, kernel: (3, 3), padding: s.pad)
            XCTAssertNotNil(conv.direct3x3)
        }
        for s in shapes { try check(s, sizes: sizes) }
        // Enough pixels for several row bands × channel-block groups on 2 threads.
        try check(Shape(cin: 8, cout: 12, k: 3, pad: Padding2D(1)), sizes: [(70, 64), (64, 70)])
        let saved = Conv2d.directEnabled
        defer { Conv2d.directEnabled = saved }
        Conv2d.directEnabled = false
        for s in shapes.prefix(3) { try check(s, sizes: [(5, 17), (17, 17), (40, 33)]) }
    }

    /// The up-sampled read equals materializing the up-sampling, then convolving.
    func testUpsampleOptionEqualsUpsampleThenConv() throws {
        let s = Shape(cin: 8, cout: 6, k: 3, pad: Padding2D(1))
        let (wt, _) = weightTensor((0..<(s.cout * s.cin * 9)).map { _ in rnd() }, s, f16: true)
        let conv = try Conv2d(weight: wt, bias: Tensor(name: "b", shape: [s.cout], floats: (0..<s.cout).map { _ in rnd() }),
                              inChannels: s.cin, outChannels: s.cout, kernel: (3, 3), padding: Padding2D(1))
        for (h, w) in [(1, 1), (5, 17), (24, 31)] {
            let x = (0..<(s.cin * h * w)).map { _ in rnd() }
            var up = [Float](repeating: 0, count: s.cin * 4 * h * w)
            var a = [Float](repeating: .nan, count: s.cout * 4 * h * w), b = a
            x.withUnsafeBufferPointer { xp in
                up.withUnsafeMutableBufferPointer { upsampleNearest2x(xp.baseAddress!, channels: s.cin, height: h, width: w, $0.baseAddress!, pool: Self.pool) }
                a.withUnsafeMutableBufferPointer { conv.forward(xp.baseAddress!, height: h, width: w, $0.baseAddress!, pool: Self.pool, upsample2x: true) }
            }
            up.withUnsafeBufferPointer { u in
                b.withUnsafeMutableBufferPointer { conv.forward(u.baseAddress!, height: 2 * h, width: 2 * w, $0.baseAddress!, pool: Self.pool) }
            }
            XCTAssertEqual(a, b, "\(h)×\(w)")
        }
    }
}

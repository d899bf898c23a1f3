import XCTest
import Foundation
@testable import HunyuanNN
#if canImport(Glibc)
import Glibc
#endif

/// The shared layers against float64 evaluations of their definitions (PyTorch's formulas, written
/// out loop by loop): convolution with stride, dilation and padding, GroupNorm, LayerNorm, resampling,
/// pooling, timestep embeddings, GELU against libm, RMSNorm's backward against finite differences.
final class LayerTests: XCTestCase {
    var seed: UInt64 = 7
    func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1 }
    func maxErr(_ a: [Float], _ b: [Double]) -> Double { zip(a, b).reduce(0) { max($0, abs(Double($1.0) - $1.1)) } }

    func testConv2dEqualsDirectConvolution() throws {
        let configs: [(cin: Int, cout: Int, k: Int, stride: Int, pad: Padding2D, dil: Int, h: Int, w: Int)] = [
            (3, 5, 3, 1, Padding2D(1), 1, 9, 7),       // UNet/VAE 3×3
            (4, 6, 1, 1, Padding2D(0), 1, 5, 6),       // 1×1
            (3, 4, 3, 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1), 1, 8, 9),  // VAE downsample
            (2, 3, 3, 1, Padding2D(2), 2, 10, 11),     // U²-Net dilated
            (2, 2, 3, 1, Padding2D(8), 8, 6, 5),       // dilation larger than the image
        ]
        for c in configs {
            let wv = (0..<(c.cout * c.cin * c.k * c.k)).map { _ in rnd() }, bv = (0..<c.cout).map { _ in rnd() }
            let x = (0..<(c.cin * c.h * c.w)).map { _ in rnd() }
            let conv = try Conv2d(weight: Tensor(name: "w", shape: [c.cout, c.cin, c.k, c.k], floats: wv),
                                  bias: Tensor(name: "b", shape: [c.cout], floats: bv), inChannels: c.cin,
                                  outChannels: c.cout, kernel: (c.k, c.k), stride: c.stride, padding: c.pad, dilation: c.dil)
            let (ho, wo) = conv.outputSize(height: c.h, width: c.w)
            var ref = [Double](repeating: 0, count: c.cout * ho * wo)
            for o in 0..<c.cout { for oy in 0..<ho { for ox in 0..<wo {
                var acc = Double(bv[o])
                for i in 0..<c.cin { for ky in 0..<c.k { for kx in 0..<c.k {
                    let iy = oy * c.stride - c.pad.top + ky * c.dil, ix = ox * c.stride - c.pad.left + kx * c.dil
                    if iy < 0 || iy >= c.h || ix < 0 || ix >= c.w { continue }
                    acc += Double(wv[((o * c.cin + i) * c.k + ky) * c.k + kx]) * Double(x[(i * c.h + iy) * c.w + ix])
                } } }
                ref[(o * ho + oy) * wo + ox] = acc
            } } }
            var out = [Float](repeating: .nan, count: ref.count)
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { conv.forward(xp.baseAddress!, height: c.h, width: c.w, $0.baseAddress!, pool: ThreadPool(threads: 2)) } }
            XCTAssertLessThan(maxErr(out, ref), 1e-5, "\(c)")
        }
    }

    /// Linear over the bf16 form of its weight (`ComputePrecision.bf16`): against float64 sums of
    /// bf16-rounded weights and inputs where the CPU has AVX512_BF16 (else of the fp32 values), for
    /// widths below, at and past the kernel's 32-value step, row counts off its 4 × 6 tile, one row (the
    /// stored weight's matvec), inline and on 2 threads.
    func testLinearBF16Products() throws {
        let pool = ThreadPool(threads: 2)
        for (inF, outF) in [(5, 3), (32, 4), (70, 9), (640, 37)] {
            let wv = (0..<(inF * outF)).map { _ in rnd() }, bv = (0..<outF).map { _ in rnd() }
            let plain = try Linear(weight: Tensor(name: "w", shape: [outF, inF], floats: wv),
                                   bias: Tensor(name: "b", shape: [outF], floats: bv), inFeatures: inF, outFeatures: outF)
            let lin = Linear(weight: plain.weight.withBF16(taps: 1), bias: plain.bias)
            for t in [1, 2, 7, 50] {
                let x = (0..<(t * inF)).map { _ in rnd() }
                let rounded = t > 1 && CPUFeatures.avx512bf16
                let r: (Float) -> Double = { rounded ? Double(Conv2dTests.bf16($0)) : Double($0) }
                var ref = [Double](repeating: 0, count: t * outF)
                for i in 0..<t { for o in 0..<outF {
                    var acc = Double(bv[o])
                    for k in 0..<inF { acc += r(wv[o * inF + k]) * r(x[i * inF + k]) }
                    ref[i * outF + o] = acc
                } }
                for p in [nil, pool] {
                    var y = [Float](repeating: .nan, count: t * outF)
                    x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { lin.forward(xp.baseAddress!, rows: t, $0.baseAddress!, pool: p) } }
                    XCTAssertLessThan(maxErr(y, ref), 1e-5 * Double(inF).squareRoot(), "\(inF)→\(outF) rows \(t) threads \(p?.threadCount ?? 1)")
                }
            }
        }
    }

    func testGroupNormAndLayerNorm() {
        let c = 6, hw = 10, groups = 3, eps: Float = 1e-6
        let x = (0..<(c * hw)).map { _ in rnd() * 3 + 0.5 }, w = (0..<c).map { _ in rnd() }, b = (0..<c).map { _ in rnd() }
        var ref = [Double](repeating: 0, count: c * hw)
        for g in 0..<groups {
            let vals = (g * 2 * hw..<(g + 1) * 2 * hw).map { Double(x[$0]) }
            let m = vals.reduce(0, +) / Double(vals.count)
            let v = vals.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(vals.count)
            for ch in (2 * g)..<(2 * g + 2) { for i in 0..<hw {
                ref[ch * hw + i] = (Double(x[ch * hw + i]) - m) / (v + Double(eps)).squareRoot() * Double(w[ch]) + Double(b[ch])
            } }
        }
        var out = [Float](repeating: .nan, count: c * hw)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in
            out.withUnsafeMutableBufferPointer {
                groupNorm(xp.baseAddress!, channels: c, spatial: hw, groups: groups, eps: eps, weight: wp.baseAddress,
                          bias: bp.baseAddress, $0.baseAddress!, pool: ThreadPool(threads: 2))
            } } } }
        XCTAssertLessThan(maxErr(out, ref), 2e-6)
        // LayerNorm = GroupNorm of each row as one group.
        let ln = LayerNorm(dim: hw, eps: eps, weight: nil, bias: nil)
        var lo = [Float](repeating: .nan, count: c * hw)
        x.withUnsafeBufferPointer { xp in lo.withUnsafeMutableBufferPointer { ln.forward(xp.baseAddress!, rows: c, $0.baseAddress!, pool: nil) } }
        for r in 0..<c {
            let vals = (0..<hw).map { Double(x[r * hw + $0]) }
            let m = vals.reduce(0, +) / Double(hw), v = vals.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(hw)
            for i in 0..<hw { XCTAssertEqual(Double(lo[r * hw + i]), (vals[i] - m) / (v + Double(eps)).squareRoot(), accuracy: 2e-6) }
        }
    }

    func testResamplingAndPooling() {
        let c = 2, h = 5, w = 7
        let x = (0..<(c * h * w)).map { _ in rnd() }
        var up = [Float](repeating: .nan, count: c * 4 * h * w)
        x.withUnsafeBufferPointer { xp in up.withUnsafeMutableBufferPointer { upsampleNearest2x(xp.baseAddress!, channels: c, height: h, width: w, $0.baseAddress!, pool: nil) } }
        for ch in 0..<c { for y in 0..<(2 * h) { for xx in 0..<(2 * w) {
            XCTAssertEqual(up[(ch * 2 * h + y) * 2 * w + xx], x[(ch * h + y / 2) * w + xx / 2])
        } } }
        // Bilinear, align_corners=False (PyTorch's area-pixel source index, clamped at 0 and the border).
        for (ho, wo) in [(11, 3), (2, 14), (5, 7)] {
            var out = [Float](repeating: .nan, count: c * ho * wo)
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { resizeBilinear(xp.baseAddress!, channels: c, height: h, width: w, toHeight: ho, width: wo, $0.baseAddress!, pool: nil) } }
            for ch in 0..<c { for oy in 0..<ho { for ox in 0..<wo {
                func src(_ d: Int, _ n: Int, _ m: Int) -> (Int, Int, Double) {
                    let s = max((Double(d) + 0.5) * Double(n) / Double(m) - 0.5, 0)
                    let i0 = min(Int(s.rounded(.down)), n - 1)
                    return (i0, min(i0 + 1, n - 1), s - Double(i0))
                }
                let (y0, y1, fy) = src(oy, h, ho), (x0, x1, fx) = src(ox, w, wo)
                func at(_ y: Int, _ xx: Int) -> Double { Double(x[(ch * h + y) * w + xx]) }
                let e = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1))
                XCTAssertEqual(Double(out[(ch * ho + oy) * wo + ox]), e, accuracy: 1e-6)
            } } }
        }
        var pooled = [Float](repeating: .nan, count: c * 3 * 4)
        let (ph, pw) = x.withUnsafeBufferPointer { xp in pooled.withUnsafeMutableBufferPointer { maxPool2d(xp.baseAddress!, channels: c, height: h, width: w, kernel: 2, ceilMode: true, $0.baseAddress!, pool: nil) } }
        XCTAssertEqual(ph, 3); XCTAssertEqual(pw, 4)
        for ch in 0..<c { for oy in 0..<3 { for ox in 0..<4 {
            var m = -Float.infinity
            for y in (2 * oy)..<min(2 * oy + 2, h) { for xx in (2 * ox)..<min(2 * ox + 2, w) { m = max(m, x[(ch * h + y) * w + xx]) } }
            XCTAssertEqual(pooled[(ch * 3 + oy) * 4 + ox], m)
        } } }
    }

    /// diffusers' get_timestep_embedding in float64.
    func testTimestepEmbedding() {
        let ts: [Float] = [0, 1, 999, 500.5], dim = 9
        for (flip, shift) in [(true, Float(0)), (false, Float(1))] {
            var out = [Float](repeating: .nan, count: ts.count * dim)
            out.withUnsafeMutableBufferPointer { timestepEmbedding(ts, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift, $0.baseAddress!) }
            let half = dim / 2
            for (n, t) in ts.enumerated() {
                for i in 0..<half {
                    let e = Double(t) * Glibc.exp(-Glibc.log(10000) * Double(i) / (Double(half) - Double(shift)))
                    let (a, b) = flip ? (Glibc.cos(e), Glibc.sin(e)) : (Glibc.sin(e), Glibc.cos(e))
                    XCTAssertEqual(Double(out[n * dim + i]), a, accuracy: 2e-4 * max(1, Double(t) / 100))
                    XCTAssertEqual(Double(out[n * dim + half + i]), b, accuracy: 2e-4 * max(1, Double(t) / 100))
                }
                XCTAssertEqual(out[n * dim + dim - 1], 0)
            }
        }
    }

    /// The 2-D rotary tables against the official HunyuanDiT call path's `rope_cos` / `rope_sin`
    /// (fixtures/t2i/hunyuandit-tiny: a 7×5 grid, head_dim 16, crop region ((0, 4), (32, 27)) as its
    /// README derives it), and the interleaved apply against its formula.
    func testRope2DTablesMatchHunyuanDiTFixture() throws {
        let shared = ProcessInfo.processInfo.environment["HUNYUAN_SHARED"] ?? "../shared"
        let path = shared + "/fixtures/t2i/hunyuandit-tiny/reference.safetensors"
        guard FileSystem.exists(path) else { throw XCTSkip("\(path) absent (set HUNYUAN_SHARED)") }
        let ref = try SafetensorsFile(path: path)
        guard let rc = ref.tensor("rope_cos"), let rs = ref.tensor("rope_sin") else { return XCTFail("no rope tables") }
        let (c, s) = rope2DTables(gridH: 7, gridW: 5, headDim: 16, start: (0, 4), stop: (32, 27))
        XCTAssertEqual(rc.shape, [35, 16])
        XCTAssertLessThan(maxErr(c, rc.floats().map(Double.init)), 2e-6)
        XCTAssertLessThan(maxErr(s, rs.floats().map(Double.init)), 2e-6)
        var x: [Float] = (0..<16).map { _ in rnd() }
        let x0 = x
        let o = 9 * 16
        c.withUnsafeBufferPointer { cp in s.withUnsafeBufferPointer { sp in
            ropeInterleaved(&x, headDim: 16, cos: cp.baseAddress! + o, sin: sp.baseAddress! + o)
        } }
        for i in stride(from: 0, to: 16, by: 2) {
            XCTAssertEqual(x[i], x0[i] * c[o + i] - x0[i + 1] * s[o + i], accuracy: 1e-6)
            XCTAssertEqual(x[i + 1], x0[i + 1] * c[o + i + 1] + x0[i] * s[o + i + 1], accuracy: 1e-6)
        }
    }

    /// diffusers' get_2d_sincos_pos_embed (numpy, float64) written out for a non-square grid.
    func testSinCosPositionEmbedding2D() {
        let gh = 3, gw = 5, dim = 8
        let got = sincosPositionEmbedding2D(gridH: gh, gridW: gw, dim: dim, baseSize: 4, interpolationScale: 2)
        // grid_h = arange(gh) / (gh / base) / scale; meshgrid(grid_w, grid_h); emb = [emb(grid[0]) | emb(grid[1])]
        let omega = (0..<2).map { 1.0 / Glibc.pow(10000.0, Double($0) / 2.0) }
        for i in 0..<gh { for j in 0..<gw {
            let hv = Double(Float(i) / (Float(gh) / 4) / 2), wv = Double(Float(j) / (Float(gw) / 4) / 2)
            let row = [Glibc.sin(wv * omega[0]), Glibc.sin(wv * omega[1]), Glibc.cos(wv * omega[0]), Glibc.cos(wv * omega[1]),
                       Glibc.sin(hv * omega[0]), Glibc.sin(hv * omega[1]), Glibc.cos(hv * omega[0]), Glibc.cos(hv * omega[1])]
            for k in 0..<dim { XCTAssertEqual(Double(got[(i * gw + j) * dim + k]), row[k], accuracy: 1e-7) }
        } }
    }

    /// The vectorized GELU (erf8) against glibc's erf in double precision over [-12, 12].
    func testGeluErfAgainstLibm() {
        let n = 24_003
        var x = (0..<n).map { Float(-12 + 24 * Double($0) / Double(n - 1)) }
        let exact = x.map { 0.5 * Double($0) * (1 + erf(Double($0) / 2.0.squareRoot())) }
        x.withUnsafeMutableBufferPointer { geluErf($0.baseAddress!, n) }
        for i in 0..<n {
            XCTAssertLessThanOrEqual(abs(Double(x[i]) - exact[i]), 3e-7 * max(1, abs(exact[i])), "gelu at \(i)")
        }
    }

    /// The row-parallel RMSNorm (T5's LayerNorm) against the float64 definition, in place, 1 and 2 threads.
    func testRMSNormRowsMatchDefinition() {
        let rows = 70, dim = 40
        let x = (0..<(rows * dim)).map { _ in rnd() }, w = (0..<dim).map { _ in rnd() }
        for pool in [nil, ThreadPool(threads: 2)] {
            var out = x
            out.withUnsafeMutableBufferPointer { o in rmsnorm(o.baseAddress!, w, rows: rows, dim: dim, eps: 1e-6, o.baseAddress!, pool: pool) }
            for i in 0..<rows {
                let ms = (0..<dim).reduce(0.0) { $0 + Double(x[i * dim + $1]) * Double(x[i * dim + $1]) } / Double(dim)
                for j in 0..<dim {
                    let e = Double(x[i * dim + j]) / (ms + 1e-6).squareRoot() * Double(w[j])
                    XCTAssertEqual(Double(out[i * dim + j]), e, accuracy: 1e-5 * max(1, abs(e)))
                }
            }
        }
    }

    func testRMSNormBackwardMatchesFiniteDifferences() {
        let rows = 3, dim = 8
        var x = (0..<(rows * dim)).map { _ in rnd() }, w = (0..<dim).map { _ in rnd() }
        let r = (0..<(rows * dim)).map { _ in rnd() }
        func loss() -> Double {
            var s = 0.0
            for i in 0..<rows {
                let ms = (0..<dim).reduce(0.0) { $0 + Double(x[i * dim + $1]) * Double(x[i * dim + $1]) } / Double(dim)
                for j in 0..<dim { s += Double(x[i * dim + j]) / (ms + 1e-6).squareRoot() * Double(w[j]) * Double(r[i * dim + j]) }
            }
            return s
        }
        var out = [Float](repeating: 0, count: rows * dim), rinv = [Float](repeating: 0, count: rows)
        var dx = [Float](repeating: 0, count: rows * dim), dw = [Float](repeating: 0, count: dim)
        rmsnorm(x, w, rows: rows, dim: dim, eps: 1e-6, &out, rinv: &rinv)
        rmsnormBackward(x, w, rinv: rinv, r, rows: rows, dim: dim, dx: &dx, accumulate: false, dw: &dw)
        for i in 0..<x.count {
            let x0 = x[i]; x[i] = x0 + 1e-3; let lp = loss(); x[i] = x0 - 1e-3; let lm = loss(); x[i] = x0
            XCTAssertEqual(Double(dx[i]), (lp - lm) / 2e-3, accuracy: 2e-3)
        }
        for j in 0..<dim {
            let w0 = w[j]; w[j] = w0 + 1e-3; let lp = loss(); w[j] = w0 - 1e-3; let lm = loss(); w[j] = w0
            XCTAssertEqual(Double(dw[j]), (lp - lm) / 2e-3, accuracy: 2e-3)
        }
    }
}

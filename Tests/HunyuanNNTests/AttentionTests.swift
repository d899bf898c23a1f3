import XCTest
@testable import HunyuanNN
#if canImport(Glibc)
import Glibc
#endif

/// The one attention against a plain float64 softmax attention written out from the definition:
/// both strategies (GEMM tiles, in-place rows), causal and full masks, GQA, strided rows, f16 and q8_0
/// keys; and its backward against central finite differences of the float64 reference.
final class AttentionTests: XCTestCase {
    struct Case {
        var nq = 37, nk = 53, heads = 4, kvHeads = 2, hd = 8
        var scale: Float = 0.35
        var mask: AttentionMask = .none
        /// Additive scores (h, i, j) at bias[h·strides.head + i·strides.row + j].
        var bias: [Float]? = nil
        var biasStrides = (head: 0, row: 0)
    }

    var seed: UInt64 = 42
    func rnd() -> Float { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: seed >> 11) % 2000) / 500 - 2 }

    /// out[nq, heads·hd] and lse[heads, nq] in float64 from the definition.
    func reference(_ c: Case, q: [Float], qs: Int, k: [Float], ks: Int, v: [Float], vs: Int) -> ([Double], [Double]) {
        let group = c.heads / c.kvHeads
        var out = [Double](repeating: 0, count: c.nq * c.heads * c.hd), lse = [Double](repeating: 0, count: c.heads * c.nq)
        for h in 0..<c.heads {
            let g = h / group
            for i in 0..<c.nq {
                let n = c.mask.visible(i, c.nk)
                var s = [Double](repeating: 0, count: n)
                for j in 0..<n {
                    var d = 0.0
                    for x in 0..<c.hd { d += Double(q[i * qs + h * c.hd + x]) * Double(k[j * ks + g * c.hd + x]) }
                    s[j] = d * Double(c.scale) + Double(c.bias.map { $0[h * c.biasStrides.head + i * c.biasStrides.row + j] } ?? 0)
                }
                let m = s.max() ?? 0
                let e = s.map { Glibc.exp($0 - m) }
                let z = e.reduce(0, +)
                lse[h * c.nq + i] = m + Glibc.log(z)
                for x in 0..<c.hd {
                    var acc = 0.0
                    for j in 0..<n { acc += e[j] / z * Double(v[j * vs + g * c.hd + x]) }
                    out[(i * c.heads + h) * c.hd + x] = acc
                }
            }
        }
        return (out, lse)
    }

    /// Runs `attention` (or, with `tiles`, the tiled kernel with forced block sizes and key splits)
    /// and returns the worst |Δ| of the output and of the lse against the float64 definition.
    /// With `bf16` the products are bf16 (`ComputePrecision.bf16`); where they run as such (AVX512_BF16,
    /// hd a multiple of 16) the reference sees q, k and v rounded to bf16.
    func run(_ c: Case, kvType: KVElementType = .f32, tiles: (q: Int, k: Int, splits: Int)? = nil,
             bf16: Bool = false) -> (err: Double, lseErr: Double) {
        let inner = c.heads * c.hd, kvInner = c.kvHeads * c.hd
        let qs = inner + 5, ks = kvInner + (kvType == .q8_0 ? 0 : 3), vs = kvInner + (kvType == .q8_0 ? 0 : 1), os = inner + 1
        let q = (0..<(c.nq * qs)).map { _ in rnd() }
        var k = (0..<(c.nk * ks)).map { _ in rnd() }, v = (0..<(c.nk * vs)).map { _ in rnd() }
        // Keys/values as stored in the cache's type; the reference sees the same rounded values.
        var kb: [UInt8] = [], vb: [UInt8] = []
        func store(_ x: inout [Float], _ bytes: inout [UInt8]) {
            switch kvType {
            case .f32: bytes = x.withUnsafeBytes { Array($0) }
            case .f16:
                x = x.map { Float(Float16($0)) }
                bytes = x.map { Float16($0) }.withUnsafeBytes { Array($0) }
            case .q8_0:
                bytes = [UInt8](repeating: 0, count: x.count / 32 * 34)
                x.withUnsafeBufferPointer { xp in bytes.withUnsafeMutableBytes { b in
                    for blk in 0..<(x.count / 32) { Quantizer.quantizeRow(.q8_0, xp.baseAddress! + 32 * blk, cols: 32, b.baseAddress! + 34 * blk) }
                } }
                bytes.withUnsafeBytes { b in for i in 0..<x.count { x[i] = Q8_0Loader.load1(b.baseAddress!, i) } }
            }
        }
        store(&k, &kb); store(&v, &vb)
        let rounded = bf16 && CPUFeatures.avx512bf16 && c.hd % 16 == 0
        let r: ([Float]) -> [Float] = { rounded ? $0.map(Conv2dTests.bf16) : $0 }
        let (ref, refLSE) = reference(c, q: r(q), qs: qs, k: r(k), ks: ks, v: r(v), vs: vs)
        var out = [Float](repeating: .nan, count: c.nq * os), lse = [Float](repeating: .nan, count: c.heads * c.nq)
        let pool = ThreadPool(threads: 2)
        (c.bias ?? [0]).withUnsafeBufferPointer { bp in
        let bias = c.bias == nil ? nil : AttentionBias(bp.baseAddress!, headStride: c.biasStrides.head, rowStride: c.biasStrides.row)
        q.withUnsafeBufferPointer { qp in kb.withUnsafeBytes { kp in vb.withUnsafeBytes { vp in
            out.withUnsafeMutableBufferPointer { op in lse.withUnsafeMutableBufferPointer { lp in
                if let t = tiles {
                    var sh = AttentionShape(nq: c.nq, nk: c.nk, heads: c.heads, kvHeads: c.kvHeads, headDim: c.hd,
                                            scale: c.scale, mask: c.mask)
                    sh.blockQ = t.q; sh.blockK = t.k; sh.splits = t.splits; sh.bf16 = bf16; sh.bias = bias
                    func go<L: WeightLoader>(_ l: L.Type) {
                        attentionTiled(l, sh, q: qp.baseAddress!, qStride: qs, keys: kp.baseAddress!, kStride: ks,
                                       values: vp.baseAddress!, vStride: vs, out: op.baseAddress!, outStride: os,
                                       lse: lp.baseAddress!, pool: pool)
                    }
                    switch kvType { case .f32: go(F32Loader.self); case .f16: go(F16Loader.self); case .q8_0: go(Q8_0Loader.self) }
                } else {
                    attention(q: qp.baseAddress!, qStride: qs, nq: c.nq, keys: kp.baseAddress!, kStride: ks,
                              values: vp.baseAddress!, vStride: vs, nk: c.nk, kvType: kvType, heads: c.heads,
                              kvHeads: c.kvHeads, headDim: c.hd, scale: c.scale, mask: c.mask, bias: bias,
                              out: op.baseAddress!, outStride: os, lse: lp.baseAddress!, precision: bf16 ? .bf16 : .fp32,
                              pool: pool)
                }
            } }
        } } }
        }
        var err = 0.0, lseErr = 0.0
        for i in 0..<c.nq { for x in 0..<inner { err = max(err, abs(Double(out[i * os + x]) - ref[i * inner + x])) } }
        for i in 0..<(c.heads * c.nq) { lseErr = max(lseErr, abs(Double(lse[i]) - refLSE[i])) }
        return (err, lseErr)
    }

    /// Every tiling: query blocks of 1 to all, key blocks of 1 to all, 1–5 key splits (merged partial
    /// softmaxes), causal offsets that leave a block's first queries seeing nothing of a key block,
    /// GQA groups of 1, 2 and 4, for every stored K/V type.
    func testTilesEqualDefinitionForEveryTiling() {
        for kv in KVElementType.allCases {
            for (heads, kvHeads) in [(4, 4), (4, 2), (4, 1)] {
                for mask in [AttentionMask.none, .causal(offset: 0), .causal(offset: 16)] {
                    for t in [(1, 1, 1), (4, 7, 1), (5, 16, 3), (37, 53, 1), (3, 8, 5), (128, 256, 2)] {
                        var c = Case(); c.heads = heads; c.kvHeads = kvHeads; c.mask = mask
                        if kv == .q8_0 { c.hd = 32 }
                        let r = run(c, kvType: kv, tiles: t)
                        XCTAssertLessThan(r.err, 1e-5, "\(kv) \(heads)/\(kvHeads) \(mask) tiles \(t)")
                        XCTAssertLessThan(r.lseErr, 1e-4, "lse \(kv) \(heads)/\(kvHeads) \(mask) tiles \(t)")
                    }
                }
            }
        }
    }

    /// bf16 products (K/V packed in pairs, key blocks of multiples of 32): every tiling, masks, GQA,
    /// f16 keys, the public entry on several key blocks; probabilities are rounded to bf16 too, so the
    /// output bound is bf16's (lse stays fp32-accurate). A head size off 16 stays fp32.
    func testBF16Products() {
        let bound = CPUFeatures.avx512bf16 ? 1e-2 : 1e-5
        for kv in [KVElementType.f32, .f16] {
            for (heads, kvHeads) in [(4, 4), (4, 2)] {
                for mask in [AttentionMask.none, .causal(offset: 0), .causal(offset: 16)] {
                    for t in [(1, 1, 1), (5, 16, 3), (37, 53, 1), (128, 256, 2)] {
                        var c = Case(); c.heads = heads; c.kvHeads = kvHeads; c.mask = mask; c.hd = 16
                        let r = run(c, kvType: kv, tiles: t, bf16: true)
                        XCTAssertLessThan(r.err, bound, "\(kv) \(heads)/\(kvHeads) \(mask) tiles \(t)")
                        XCTAssertLessThan(r.lseErr, 1e-4, "lse \(kv) \(heads)/\(kvHeads) \(mask) tiles \(t)")
                    }
                }
            }
        }
        var c = Case(); c.nq = 300; c.nk = 2500; c.heads = 2; c.kvHeads = 2; c.hd = 64; c.scale = 0.125
        XCTAssertLessThan(run(c, bf16: true).err, bound, "several key blocks")
        c.hd = 24; c.nk = 100
        XCTAssertLessThan(run(c, bf16: true).err, 1e-5, "head size 24 stays fp32")
    }

    /// Additive score biases: a per-head, per-query bias (T5's relative positions) with masked keys
    /// folded in, and a key-padding mask shared by every head and query, over every tiling (a key
    /// block wholly masked, split keys), causal too, f32 and f16 keys, bf16 products, the public entry.
    func testAdditiveBias() {
        for kv in [KVElementType.f32, .f16] {
            for mask in [AttentionMask.none, .causal(offset: 16)] {
                for shared in [false, true] {
                    for t in [(1, 1, 1), (4, 7, 1), (5, 16, 3), (37, 53, 1), (3, 8, 5)] {
                        var c = Case(); c.mask = mask; c.hd = 16
                        // keys 8..<16 and 40..<45 padded
                        let padded: (Int) -> Bool = { (8..<16).contains($0) || (40..<45).contains($0) }
                        if shared {
                            c.bias = (0..<c.nk).map { padded($0) ? AttentionBias.masked : 0 }
                        } else {
                            c.bias = (0..<(c.heads * c.nq * c.nk)).map { padded($0 % c.nk) ? AttentionBias.masked : rnd() }
                            c.biasStrides = (c.nq * c.nk, c.nk)
                        }
                        let r = run(c, kvType: kv, tiles: t)
                        XCTAssertLessThan(r.err, 1e-5, "\(kv) \(mask) shared \(shared) tiles \(t)")
                        XCTAssertLessThan(r.lseErr, 1e-4, "lse \(kv) \(mask) shared \(shared) tiles \(t)")
                        if t.0 == 37 {
                            XCTAssertLessThan(run(c, kvType: kv).err, 1e-5, "public \(kv) \(mask) shared \(shared)")
                            let bound = CPUFeatures.avx512bf16 ? 1e-2 : 1e-5
                            XCTAssertLessThan(run(c, kvType: kv, bf16: true).err, bound, "bf16 \(kv) \(mask) shared \(shared)")
                        }
                    }
                }
            }
        }
    }

    /// The public entry with its own tiling: prefill-sized and decode-sized calls (the latter split the
    /// keys over the threads), every stored K/V type.
    func testStoredKVTypesPrefillAndDecode() {
        for kv in KVElementType.allCases {
            for (nq, nk) in [(1, 45), (3, 45), (40, 45), (1, 3000), (2, 2500)] {
                var c = Case(); c.nq = nq; c.hd = 32; c.nk = nk; c.mask = .causal(offset: nk - nq)
                XCTAssertLessThan(run(c, kvType: kv).err, 1e-5, "\(kv) nq \(nq) nk \(nk)")
            }
        }
        var c = Case(); c.nq = 7; c.nk = 300; c.mask = .none
        XCTAssertLessThan(run(c).err, 1e-5, "cross attention")
        // Head sizes that leave the in-place kernels' value tiles partly filled (16·k lanes, k < 4).
        for kv in KVElementType.allCases {
            for hd in kv == .q8_0 ? [96, 128, 160] : [24, 80, 128] {
                for (nq, nk) in [(1, 700), (70, 700)] {
                    var c = Case(); c.nq = nq; c.nk = nk; c.hd = hd; c.scale = 0.1; c.mask = .causal(offset: nk - nq)
                    XCTAssertLessThan(run(c, kvType: kv).err, 1e-5, "\(kv) hd \(hd) nq \(nq)")
                }
            }
        }
    }

    /// Gradients of L = Σ out ⊙ R (R random) against float64 central differences of the reference.
    func testBackwardMatchesFiniteDifferences() {
        var c = Case(); c.nq = 20; c.nk = 20; c.heads = 4; c.kvHeads = 2; c.hd = 4; c.mask = .causal(offset: 0)
        let inner = c.heads * c.hd, kvInner = c.kvHeads * c.hd
        var q = (0..<(c.nq * inner)).map { _ in rnd() }, k = (0..<(c.nk * kvInner)).map { _ in rnd() }
        var v = (0..<(c.nk * kvInner)).map { _ in rnd() }
        let r = (0..<(c.nq * inner)).map { _ in rnd() }
        func loss() -> Double {
            let (o, _) = reference(c, q: q, qs: inner, k: k, ks: kvInner, v: v, vs: kvInner)
            return zip(o, r).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        var out = [Float](repeating: 0, count: c.nq * inner), lse = [Float](repeating: 0, count: c.heads * c.nq)
        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in lse.withUnsafeMutableBufferPointer { lp in
                attention(q: qp.baseAddress!, qStride: inner, nq: c.nq, keys: kp.baseAddress!, kStride: kvInner,
                          values: vp.baseAddress!, vStride: kvInner, nk: c.nk, heads: c.heads, kvHeads: c.kvHeads,
                          headDim: c.hd, scale: c.scale, mask: c.mask, out: op.baseAddress!, outStride: inner,
                          lse: lp.baseAddress!, pool: nil)
                r.withUnsafeBufferPointer { rp in
                    attentionBackward(q: qp.baseAddress!, qStride: inner, nq: c.nq, k: kp.baseAddress!, kStride: kvInner,
                                      v: vp.baseAddress!, vStride: kvInner, nk: c.nk, heads: c.heads, kvHeads: c.kvHeads,
                                      headDim: c.hd, scale: c.scale, mask: c.mask, lse: lp.baseAddress!,
                                      dOut: rp.baseAddress!, dOutStride: inner, dq: &dq, dk: &dk, dv: &dv, pool: ThreadPool(threads: 2))
                }
            } }
        } } }
        func set(_ which: Int, _ i: Int, _ value: Float) {
            switch which { case 0: q[i] = value; case 1: k[i] = value; default: v[i] = value }
        }
        for (which, name, g) in [(0, "dq", dq), (1, "dk", dk), (2, "dv", dv)] {
            let x = which == 0 ? q : (which == 1 ? k : v)
            var worst = 0.0
            for i in stride(from: 0, to: x.count, by: 3) {
                let h: Float = 1e-2
                set(which, i, x[i] + h); let lp = loss()
                set(which, i, x[i] - h); let lm = loss()
                set(which, i, x[i])
                worst = max(worst, abs((lp - lm) / Double(2 * h) - Double(g[i])))
            }
            XCTAssertLessThan(worst, 2e-3, name)
        }
    }
}

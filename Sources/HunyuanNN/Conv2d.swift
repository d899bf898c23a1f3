// Convolution and resampling over channel-major images x[C, H, W] (one image at a time; batch by
// looping): conv2d as the stored weight (any format) × im2col chunks, optionally over the nearest 2×
// up-sampled input (3×3 stride-1 convs with fp32 weights: a direct AVX-512 kernel instead, `forwardDirect`),
// nearest and bilinear up-sampling, max pooling — what the UNet, the VAE and U²-Net are built from.

import Glibc

/// Zero padding of a convolution, per side.
public struct Padding2D: Sendable, Equatable {
    public var top, left, bottom, right: Int
    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }
    /// The same padding on every side (PyTorch's `padding=p`).
    public init(_ p: Int) { self.init(top: p, left: p, bottom: p, right: p) }
}

/// A 2-D convolution (PyTorch Conv2d, groups = 1): weight [out, in, kh, kw] (used as a [out, in·kh·kw]
/// matrix in its stored format), optional bias [out], stride, dilation and zero padding. Immutable.
public struct Conv2d: @unchecked Sendable {
    public let linear: Linear
    public let inChannels: Int, outChannels: Int
    public let kernelH: Int, kernelW: Int
    public let stride: Int, dilation: Int
    public let padding: Padding2D
    /// The weight packed for the direct 3×3 kernel (`conv3x3Direct`), when this conv takes it: 3×3,
    /// stride 1, fp32 weights, more than `fewOutputs` outputs, packed size ≤ `directMaxBytes`, AVX-512F.
    public let direct3x3: FloatBuffer?

    /// Whether new 3×3 convs pack their weight for the direct kernel (HY_CONV_DIRECT=0: not; for A/B runs).
    nonisolated(unsafe) static var directEnabled: Bool = getenv("HY_CONV_DIRECT").map { String(cString: $0) != "0" } ?? true
    /// Largest packed weight of the direct kernel (bytes).
    static let directMaxBytes = 16 << 20

    /// `weight`: [out, in, kh, kw] (f32/f16/bf16, or a block-quantized [out, blocks, bytes] of the
    /// flattened rows); `bias` [out] or nil. Shape mismatches are format errors naming the tensor.
    public init(weight: Tensor, bias: Tensor?, inChannels: Int, outChannels: Int, kernel: (Int, Int),
                stride: Int = 1, padding: Padding2D = Padding2D(0), dilation: Int = 1) throws {
        let k = inChannels * kernel.0 * kernel.1
        var w = weight
        if weight.dtype != .u8 {
            try weight.expectShape([outChannels, inChannels, kernel.0, kernel.1])
            w = Tensor(name: weight.name, dtype: weight.dtype, shape: [outChannels, k], data: weight.data, owner: weight.owner)
        }
        try self.init(try Linear(weight: w, bias: bias, inFeatures: k, outFeatures: outChannels), inChannels: inChannels,
                      kernel: kernel, stride: stride, padding: padding, dilation: dilation)
    }

    /// A declared convolution (`WeightBinder.conv2d`): its weight as an [out, in·kh·kw] matrix.
    public init(_ layer: Linear, inChannels: Int, kernel: (Int, Int), stride: Int = 1, padding: Padding2D = Padding2D(0),
                dilation: Int = 1) throws {
        guard stride >= 1, dilation >= 1, kernel.0 >= 1, kernel.1 >= 1 else {
            throw HYError.invalidArgument("conv \(layer.weight.tensor.name): kernel, stride and dilation must be ≥ 1")
        }
        guard layer.inFeatures == inChannels * kernel.0 * kernel.1 else {
            throw HYError.format("conv \(layer.weight.tensor.name): \(layer.inFeatures) weights per output, \(inChannels)·\(kernel.0)·\(kernel.1) expected")
        }
        linear = layer
        self.inChannels = inChannels; outChannels = layer.outFeatures
        kernelH = kernel.0; kernelW = kernel.1
        self.stride = stride; self.dilation = dilation; self.padding = padding
        let wm = layer.weight, oc = layer.outFeatures, blk = conv3x3DirectBlock
        if Self.directEnabled && CPUFeatures.avx512 && kernel == (3, 3) && stride == 1 && wm.format == .f32
            && oc > Self.fewOutputs && (oc + blk - 1) / blk * blk * layer.inFeatures * 4 <= Self.directMaxBytes {
            direct3x3 = packConv3x3Direct(outChannels: oc, inChannels: inChannels) { o, p in wm.copyRow(o, into: p) }
        } else {
            direct3x3 = nil
        }
    }

    /// Output size for an h × w input (PyTorch's floor formula); with `upsample2x`, for the 2h × 2w
    /// nearest up-sampled input.
    public func outputSize(height h: Int, width w: Int, upsample2x: Bool = false) -> (Int, Int) {
        let s = upsample2x ? 1 : 0
        let nh = (h << s) + padding.top + padding.bottom - dilation * (kernelH - 1) - 1
        let nw = (w << s) + padding.left + padding.right - dilation * (kernelW - 1) - 1
        // floor(n / stride) + 1, which is ≤ 0 (no output) for a negative n, as PyTorch computes it.
        return (nh < 0 ? 0 : nh / stride + 1, nw < 0 ? 0 : nw / stride + 1)
    }

    /// Floats of scratch one call may hold for im2col chunks and a widened weight tile (each ≤ 32 MB).
    /// Variables so tests can force several chunks and weight tiles on small shapes.
    nonisolated(unsafe) static var scratchFloats = 8 << 20
    /// im2col floats per thread chunk (≤ 8 MB, and all threads' chunks ≤ scratchFloats: enough pixels
    /// per GEMM to reuse each weight row, few enough that the chunk is still cached when it is packed).
    /// Chunks are at least 128 pixels, so a conv with K > 65,536 takes more.
    nonisolated(unsafe) static var chunkFloats = 2 << 20
    /// The chunk for a conv with at most `narrowOutputs` output channels (≤ 2 MB): its weight block is
    /// small, so packing it again per chunk is cheap, and a chunk that stays in L2 between im2col and
    /// the GEMM's packing is what counts (U²-Net at 320², 2 threads: 3×3 convs at 36 → 49 GFLOP/s).
    nonisolated(unsafe) static var narrowChunkFloats = 512 << 10
    static let narrowOutputs = 128

    /// out[outC, Ho, Wo] = conv(x[inC, h, w]); with `upsample2x`, the convolution of the nearest 2×
    /// up-sampled input (PyTorch `interpolate(scale_factor=2, mode="nearest")` then this conv: diffusers'
    /// Upsample2D) without materializing it, (Ho, Wo) = `outputSize(height: h, width: w, upsample2x: true)`.
    /// out must not overlap x. Splits over `pool` (output pixels, or output channels when there are few
    /// pixels); scratch per call ≤ 32 MB of im2col chunks plus, for weights not stored as fp32, ≤ 32 MB
    /// of widened weight rows.
    ///
    /// As a GEMM: out[outC, pixels] = W[outC, K] · cols[K, pixels] + b, K = inC·kh·kw, with cols built
    /// per chunk of output pixels (rows of cols are contiguous runs of input rows: copies for stride 1)
    /// and written straight into `out`; a 1×1 stride-1 unpadded conv multiplies x itself (no copy).
    public func forward(_ x: UnsafePointer<Float>, height h: Int, width w: Int, _ out: UnsafeMutablePointer<Float>,
                        pool: ThreadPool?, upsample2x: Bool = false) {
        let (ho, wo) = outputSize(height: h, width: w, upsample2x: upsample2x)
        if ho == 0 || wo == 0 || h == 0 || w == 0 { return }
        if let d = linear.weight.bf16, forwardBF16(d, x, h, w, out, ho, wo, pool, upsample2x) { return }
        if let pk = direct3x3, !upsample2x, forwardDirect(pk, x, h, w, out, ho, wo, pool) { return }
        let n = ho * wo, k = inChannels * kernelH * kernelW, oc = outChannels
        let threads = max(1, pool?.threadCount ?? 1)
        let direct = !upsample2x && kernelH == 1 && kernelW == 1 && stride == 1 && padding == Padding2D(0)
        let wm = linear.weight
        let inPlace = wm.format == .f32 && Int(bitPattern: wm.base) % 4 == 0
        if inPlace && !direct && oc <= Self.fewOutputs && stride == 1 && !upsample2x {
            forwardFewOutputs(wm.base.assumingMemoryBound(to: Float.self), x, h, w, out, ho, wo, pool)
            return
        }
        // Weight rows per GEMM: all of them in place, else tiles widened to fp32 (≤ scratchFloats).
        let tileRows = inPlace ? oc : max(1, min(oc, Self.scratchFloats / k))
        let wide = inPlace ? nil : FloatBuffer(tileRows * k, zeroed: false)
        // Pixel chunks: with enough pixels, chunks of ≤ chunkFloats per thread, balanced over the
        // threads; else, on several threads, one chunk as large as the scratch allows, its GEMM split
        // over output channels (on one thread, the per-thread chunks).
        let chunkBudget = oc <= Self.narrowOutputs ? min(Self.chunkFloats, Self.narrowChunkFloats) : Self.chunkFloats
        var chunk = min(n, max(128, min(4096, min(chunkBudget, Self.scratchFloats / threads) / k)))
        var chunks = (n + chunk - 1) / chunk
        let perPixel = threads > 1 && chunks >= threads && n >= 256 * threads
        if perPixel {
            chunks = (chunks + threads - 1) / threads * threads
            chunk = (n + chunks - 1) / chunks
            chunks = (n + chunk - 1) / chunk
        } else if threads > 1 {
            chunk = min(n, max(128, Self.scratchFloats / k))
        }
        let slots = perPixel ? threads : 1
        let cols = direct ? nil : FloatBuffer(slots * chunk * k, zeroed: false)
        let bias = linear.bias
        var r0 = 0
        while r0 < oc {
            let nr = min(tileRows, oc - r0)
            let a: UnsafePointer<Float>
            if let wide {
                parallelRows(pool, nr, minChunk: 16) { rr in for r in rr { wm.copyRow(r0 + r, into: wide.p + r * k) } }
                a = UnsafePointer(wide.p)
            } else {
                a = wm.base.assumingMemoryBound(to: Float.self)
            }
            // Output pixels p0 ..< p0 + cnt for weight rows r0 ..< r0 + nr, the GEMM split over `gp`.
            func run(_ p0: Int, _ cnt: Int, slot: Int, _ gp: ThreadPool?) {
                let b: UnsafePointer<Float>, ldb: Int
                if let cols {
                    let c = cols.p + slot * chunk * k
                    if gp != nil {
                        parallelRows(gp, inChannels, minChunk: 8) { cr in im2col(x, h, w, upsample2x, wo, p0, cnt, cr, c) }
                    } else {
                        im2col(x, h, w, upsample2x, wo, p0, cnt, 0..<inChannels, c)
                    }
                    b = UnsafePointer(c); ldb = cnt
                } else {
                    b = x + p0; ldb = n
                }
                // The bias is the GEMM's initial C (β = 1), which also spares sgemm its zeroing pass.
                let y = out + r0 * n + p0
                if let bias {
                    for r in 0..<nr { (y + r * n).update(repeating: bias[r0 + r], count: cnt) }
                }
                gemm(m: nr, n: cnt, k: k, a: a, lda: k, b: b, ldb: ldb, beta: bias == nil ? 0 : 1, c: y, ldc: n, pool: gp)
            }
            if perPixel, let pool {
                pool.parallelFor(threads) { t in
                    var c = t
                    while c < chunks {
                        let p0 = c * chunk
                        run(p0, min(chunk, n - p0), slot: t, nil)
                        c += threads
                    }
                }
            } else {
                var p0 = 0
                while p0 < n {
                    run(p0, min(chunk, n - p0), slot: 0, pool)
                    p0 += chunk
                }
            }
            r0 += nr
        }
    }

    /// The direct 3×3 stride-1 convolution (`conv3x3Direct`, AVX-512): no im2col copy, no GEMM
    /// packing; the input read in place. Threads take (band of output rows, group of 8-channel blocks)
    /// tasks dynamically.
    private func forwardDirect(_ pk: FloatBuffer, _ x: UnsafePointer<Float>, _ h: Int, _ w: Int,
                               _ out: UnsafeMutablePointer<Float>, _ ho: Int, _ wo: Int, _ pool: ThreadPool?) -> Bool {
        let blocks = (outChannels + conv3x3DirectBlock - 1) / conv3x3DirectBlock
        let threads = pool?.threadCount ?? 1
        func run(_ b: UnsafePointer<Float>?) -> Bool {
            func call(_ rows: Range<Int>, _ bl: Range<Int>) -> Bool {
                conv3x3Direct(x, inChannels: inChannels, height: h, width: w, packed: pk.p, bias: b,
                              outChannels: outChannels, padTop: padding.top, padLeft: padding.left, dilation: dilation,
                              out, outHeight: ho, outWidth: wo, rows: rows, blocks: bl)
            }
            guard let pool, threads > 1, ho * blocks > 1 else { return call(0..<ho, 0..<blocks) }
            // About 4 tasks per thread: bands of ≥ 1024 output pixels (the kernel's 48-pixel tiles run
            // across row ends), then groups of channel blocks for the rest.
            let bands = max(1, min(ho, min(4 * threads, ho * wo / 1024)))
            let groups = max(1, min(blocks, (4 * threads + bands - 1) / bands))
            pool.parallelFor(bands * groups) { t in
                let b = t % bands, g = t / bands
                _ = call(ho * b / bands ..< ho * (b + 1) / bands, blocks * g / groups ..< blocks * (g + 1) / groups)
            }
            return true
        }
        if let bias = linear.bias { return bias.withUnsafeBufferPointer { run($0.baseAddress) } }
        return run(nil)
    }

    /// Output channels up to which a stride-1 convolution with fp32 weights is computed directly
    /// (`forwardFewOutputs`) instead of as a GEMM over im2col columns.
    static let fewOutputs = 4

    /// out[o, oy, ·] = b[o] + Σ_(c, ky, kx) W[o, c, ky, kx] · x[c, oy − pt + ky·d, · + kx·d − pl] (stride
    /// 1, zero padding), one output row per step, split over `pool` by rows: with one to four output
    /// channels a GEMM has almost no reuse of its columns, so building and packing the K × pixels im2col
    /// block (9× the input for a 3×3) costs more than these row-wise multiply-adds (U²-Net's side outputs,
    /// 64→1 at 320²: 41 → ~10 ms).
    private func forwardFewOutputs(_ wp: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ h: Int, _ w: Int,
                                   _ out: UnsafeMutablePointer<Float>, _ ho: Int, _ wo: Int, _ pool: ThreadPool?) {
        let k = inChannels * kernelH * kernelW, n = ho * wo
        let bias = linear.bias
        parallelRows(pool, ho, minChunk: 4) { rows in
            for oy in rows {
                for o in 0..<outChannels {
                    let y = out + o * n + oy * wo
                    y.update(repeating: bias.map { $0[o] } ?? 0, count: wo)
                    for c in 0..<inChannels {
                        let xc = x + c * h * w, wc = wp + o * k + c * kernelH * kernelW
                        for ky in 0..<kernelH {
                            let iy = oy - padding.top + ky * dilation
                            if iy < 0 || iy >= h { continue }
                            let src = UnsafePointer(xc + iy * w)
                            for kx in 0..<kernelW {
                                let off = kx * dilation - padding.left      // ix = ox + off
                                let lo = max(0, -off), hi = min(wo, w - off)
                                if lo >= hi { continue }
                                let wv = wc[ky * kernelW + kx], s = src + off
                                for ox in lo..<hi { y[ox] += wv * s[ox] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The `ComputePrecision.bf16` form of `forward` (false, nothing written, without AVX512_BF16): the
    /// input rounded to bf16 into a zero-padded channel-last copy xp[hp, wp, C] (of the 2× up-sampled
    /// input with `up`), then one implicit GEMM with a tap per kernel position over the tap-major weights:
    /// out[o, p] = b[o] + Σ_(ky,kx) Σ_c W[o, ky, kx, c] · xp[oy·s + ky·d, ox·s + kx·d, c].
    private func forwardBF16(_ d: BF16Weights, _ x: UnsafePointer<Float>, _ h: Int, _ w: Int,
                             _ out: UnsafeMutablePointer<Float>, _ ho: Int, _ wo: Int, _ pool: ThreadPool?,
                             _ up: Bool) -> Bool {
        guard CPUFeatures.avx512bf16, d.taps == kernelH * kernelW, d.seg == inChannels else { return false }
        let c = inChannels, u = up ? 1 : 0, hv = h << u, wv = w << u
        // The padded extent, grown to what the last output's taps reach (they read zeros there, as
        // the im2col path's bounds checks do).
        let hp = max(hv + padding.top + padding.bottom, (ho - 1) * stride + (kernelH - 1) * dilation + 1)
        let wp = max(wv + padding.left + padding.right, (wo - 1) * stride + (kernelW - 1) * dilation + 1)
        let padded = padding != Padding2D(0) || hp > hv || wp > wv
        let xp = BF16Buffer(hp * wp * c, zeroed: padded)
        // Channel-last copy, one input row per task: each channel's row rounded then scattered.
        parallelRows(pool, h, minChunk: 4) { rows in
            let tmp = BF16Buffer(w)
            for iy in rows {
                let dst = xp.p + ((padding.top + (iy << u)) * wp + padding.left) * c
                for ch in 0..<c {
                    roundToBF16(x + (ch * h + iy) * w, tmp.p, count: w)
                    if u == 0 {
                        for ix in 0..<w { dst[ix * c + ch] = tmp.p[ix] }
                    } else {
                        for ix in 0..<w { let v = tmp.p[ix]; dst[2 * ix * c + ch] = v; dst[(2 * ix + 1) * c + ch] = v }
                    }
                }
                if u == 1 { (dst + wp * c).update(from: dst, count: wv * c) }
            }
        }
        var offsets = [Int]()
        for ky in 0..<kernelH { for kx in 0..<kernelW { offsets.append((ky * dilation * wp + kx * dilation) * c) } }
        let n = ho * wo
        func run(_ bias: UnsafePointer<Float>?) -> Bool {
            bf16GEMM(d, xp.p, columns: n, columnsPerRow: wo, rowStep: stride * wp * c, colStep: stride * c,
                     tapOffsets: offsets, out: out, outRowStride: n, outColStride: 1, bias: bias, pool: pool)
        }
        if let bias = linear.bias { return bias.withUnsafeBufferPointer { run($0.baseAddress) } }
        return run(nil)
    }

    /// cols[(c, ky, kx), i] (row length `cnt`) = the input under tap (ky, kx) of channel c for output
    /// pixel p0 + i (row-major over the wo-wide output), 0 in the padding, for channels `cr`. With `up`,
    /// the input is read as its nearest 2× up-sampling: virtual (iy, ix) → x[iy >> 1, ix >> 1].
    private func im2col(_ x: UnsafePointer<Float>, _ h: Int, _ w: Int, _ up: Bool, _ wo: Int, _ p0: Int, _ cnt: Int,
                        _ cr: Range<Int>, _ cols: UnsafeMutablePointer<Float>) {
        let u = up ? 1 : 0, hv = h << u, wv = w << u, s = stride
        let oyFirst = p0 / wo, oyLast = (p0 + cnt - 1) / wo
        for kx in 0..<kernelW {
            // Output columns whose tap kx lands inside the (virtual) input: lo ..< hi.
            let off = kx * dilation - padding.left                       // ix = ox·s + off
            let lo = min(wo, max(0, off >= 0 ? 0 : (-off + s - 1) / s))
            let hi = max(lo, min(wo, wv - 1 - off < 0 ? 0 : (wv - 1 - off) / s + 1))
            for c in cr {
                let xc = x + c * h * w
                for ky in 0..<kernelH {
                    var d = cols + ((c * kernelH + ky) * kernelW + kx) * cnt
                    for oy in oyFirst...oyLast {
                        let a = oy == oyFirst ? p0 - oy * wo : 0
                        let b = oy == oyLast ? p0 + cnt - oy * wo : wo
                        let iy = oy * s - padding.top + ky * dilation
                        if iy < 0 || iy >= hv {
                            d.update(repeating: 0, count: b - a)
                            d += b - a
                            continue
                        }
                        let src = xc + (iy >> u) * w
                        let l = min(max(lo, a), b), r = max(min(hi, b), l)
                        if l > a { d.update(repeating: 0, count: l - a) }
                        let o = d + (l - a)
                        if u == 0 && s == 1 {
                            o.update(from: src + l + off, count: r - l)
                        } else if s == 1 {
                            for ox in l..<r { o[ox - l] = src[(ox + off) >> 1] }
                        } else {
                            for ox in l..<r { o[ox - l] = src[(ox * s + off) >> u] }
                        }
                        if b > r { (d + (r - a)).update(repeating: 0, count: b - r) }
                        d += b - a
                    }
                }
            }
        }
    }
}

extension WeightBinder {
    /// `prefix.weight` [out, in, kh, kw] and, when `bias`, `prefix.bias` [out] (PyTorch's nn.Conv2d).
    public func conv2d(_ prefix: String, in inC: Int, out outC: Int, kernel: (Int, Int), bias: Bool = true) throws
        -> LinearLayer<Matrix, Vector> {
        LinearLayer(weight: try matrix(prefix + ".weight", shape: [outC, inC, kernel.0, kernel.1]),
                    bias: bias ? try vector(prefix + ".bias", outC) : nil)
    }
}

/// Nearest-neighbour up-sampling by 2 (PyTorch `interpolate(scale_factor=2, mode="nearest")`):
/// x[C, h, w] → out[C, 2h, 2w].
public func upsampleNearest2x(_ x: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int,
                              _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    parallelRows(pool, c * h, minChunk: 16) { rr in
        for r in rr {
            let src = x + r * w
            let d0 = out + (r / h * 2 * h + (r % h) * 2) * 2 * w, d1 = d0 + 2 * w
            for j in 0..<w { let v = src[j]; d0[2 * j] = v; d0[2 * j + 1] = v; d1[2 * j] = v; d1[2 * j + 1] = v }
        }
    }
}

/// Bilinear resampling x[C, h, w] → out[C, ho, wo] as PyTorch `interpolate(mode="bilinear",
/// align_corners=False)` computes it for a given output size: source = (dst + 0.5)·(in/out) − 0.5,
/// clamped at 0, neighbours clamped at the border.
public func resizeBilinear(_ x: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int,
                           toHeight ho: Int, width wo: Int, _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
    func taps(_ n: Int, _ m: Int) -> [(Int, Int, Float)] {
        let scale = Float(n) / Float(m)
        return (0..<m).map { d in
            let s = max((Float(d) + 0.5) * scale - 0.5, 0)
            let i0 = min(Int(s), n - 1), i1 = min(i0 + 1, n - 1)
            return (i0, i1, s - Float(i0))
        }
    }
    let ty = taps(h, ho), tx = taps(w, wo)
    parallelRows(pool, c * ho, minChunk: 16) { rr in
        for r in rr {
            let ch = r / ho, (y0, y1, fy) = ty[r % ho]
            let a = x + (ch * h + y0) * w, b = x + (ch * h + y1) * w, o = out + r * wo
            for j in 0..<wo {
                let (x0, x1, fx) = tx[j]
                let top = a[x0] + (a[x1] - a[x0]) * fx, bottom = b[x0] + (b[x1] - b[x0]) * fx
                o[j] = top + (bottom - top) * fy
            }
        }
    }
}

/// Max pooling with a k × k window and stride k over x[C, h, w] (PyTorch `MaxPool2d(k, stride=k,
/// ceil_mode:)`; with ceil_mode a partial window at the right/bottom edge is kept). Returns (ho, wo).
@discardableResult
public func maxPool2d(_ x: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int, kernel k: Int,
                      ceilMode: Bool, _ out: UnsafeMutablePointer<Float>, pool: ThreadPool?) -> (Int, Int) {
    let ho = ceilMode ? (h + k - 1) / k : h / k, wo = ceilMode ? (w + k - 1) / k : w / k
    parallelRows(pool, c * ho, minChunk: 16) { rr in
        for r in rr {
            let ch = r / ho, oy = r % ho
            let o = out + r * wo
            for ox in 0..<wo {
                var m = -Float.infinity
                for ky in (oy * k)..<min(oy * k + k, h) {
                    let row = x + (ch * h + ky) * w
                    for kx in (ox * k)..<min(ox * k + k, w) { m = max(m, row[kx]) }
                }
                o[ox] = m
            }
        }
    }
    return (ho, wo)
}

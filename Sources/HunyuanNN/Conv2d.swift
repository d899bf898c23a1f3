// Convolution and resampling over channel-major images x[C, H, W] (one image at a time; batch by
// looping): conv2d as im2col bands × the stored weight (any format, through `linear`), nearest and
// bilinear up-sampling, max pooling — what the UNet, the VAE and U²-Net are built from.

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
    }

    /// Output size for an h × w input (PyTorch's floor formula).
    public func outputSize(height h: Int, width w: Int) -> (Int, Int) {
        let ho = (h + padding.top + padding.bottom - dilation * (kernelH - 1) - 1) / stride + 1
        let wo = (w + padding.left + padding.right - dilation * (kernelW - 1) - 1) / stride + 1
        return (max(ho, 0), max(wo, 0))
    }

    /// out[outC, Ho, Wo] = conv(x[inC, h, w]). Output rows are processed in bands so the im2col
    /// buffer stays ≤ ~32 MB; the bias is added per channel. out must not overlap x.
    public func forward(_ x: UnsafePointer<Float>, height h: Int, width w: Int, _ out: UnsafeMutablePointer<Float>,
                        pool: ThreadPool?) {
        let (ho, wo) = outputSize(height: h, width: w)
        if ho == 0 || wo == 0 { return }
        let k = inChannels * kernelH * kernelW, oc = outChannels
        let pointwise = kernelH == 1 && kernelW == 1 && stride == 1 && padding == Padding2D(0)
        let bandRows = max(1, min(ho, (8 << 20) / max(k * wo, 1)))
        let cols = FloatBuffer(bandRows * wo * k, zeroed: false)
        let y = FloatBuffer(bandRows * wo * oc, zeroed: false)
        var r0 = 0
        while r0 < ho {
            let nr = min(bandRows, ho - r0), pixels = nr * wo
            // cols[p, (c, ky, kx)] for the band's output pixels p
            parallelRows(pool, pixels, minChunk: 64) { pr in
                for pi in pr {
                    let oy = r0 + pi / wo, ox = pi % wo
                    let row = cols.p + pi * k
                    if pointwise {
                        for c in 0..<inChannels { row[c] = x[(c * h + oy) * w + ox] }
                        continue
                    }
                    var idx = 0
                    for c in 0..<inChannels {
                        let xc = x + c * h * w
                        for ky in 0..<kernelH {
                            let iy = oy * stride - padding.top + ky * dilation
                            for kx in 0..<kernelW {
                                let ix = ox * stride - padding.left + kx * dilation
                                row[idx] = iy >= 0 && iy < h && ix >= 0 && ix < w ? xc[iy * w + ix] : 0
                                idx += 1
                            }
                        }
                    }
                }
            }
            linear.forward(cols.p, rows: pixels, y.p, pool: pool)
            // y[p, oc] → out[oc, r0·wo + p]
            parallelRows(pool, oc, minChunk: 4) { cr in
                for c in cr {
                    let o = out + c * ho * wo + r0 * wo
                    for p in 0..<pixels { o[p] = y.p[p * oc + c] }
                }
            }
            r0 += nr
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

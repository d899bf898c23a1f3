#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN

/// Input preparation as `svrm/predictor.py:51-55, 70-125` does it: each view is resized with
/// torchvision's `Resize(504, BICUBIC)` on a PIL image (Pillow's own bicubic, reproduced bit-exactly
/// below: a = −0.5 kernel widened when shrinking, weights renormalised, 22-bit fixed point, horizontal
/// pass first with a uint8 intermediate), then `ToTensor()` (u8 / 255) and
/// `Normalize(mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225))` in float32. RGBA input is first
/// composited over white as `svrm/utils/img_utils.py:21-34` (`rgba_to_rgb`) does (float64, truncated).
public enum SVRMPreprocess {
    public static let mean: [Float] = [0.485, 0.456, 0.406]
    public static let std: [Float] = [0.229, 0.224, 0.225]

    /// An 8-bit image, row-major, `channels` 3 (RGB) or 4 (RGBA) interleaved.
    public struct Image {
        public var width: Int, height: Int, channels: Int
        public var pixels: [UInt8]
        public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
            guard width > 0, height > 0, channels == 3 || channels == 4 else {
                throw HYError.invalidArgument("image: \(width)×\(height)×\(channels) (RGB or RGBA with a positive size expected)")
            }
            guard pixels.count == (try checkedMul(try checkedMul(width, height, "image size"), channels, "image size")) else {
                throw HYError.invalidArgument("image: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
            }
            self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
        }
    }

    /// RGBA → RGB over white: c·α + 255·(1 − α), α = a/255, in float64 truncated to u8; RGB unchanged.
    public static func compositeOverWhite(_ im: Image) -> [UInt8] {
        if im.channels == 3 { return im.pixels }
        let n = im.width * im.height
        var out = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let a = Double(im.pixels[4 * i + 3]) / 255.0
            for ch in 0..<3 {
                let v = Double(im.pixels[4 * i + ch]) * a + 255.0 * (1 - a)
                out[3 * i + ch] = UInt8(max(0, min(255, v)))
            }
        }
        return out
    }

    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bicubic filter over the full box.
    static func coefficients(inSize: Int, outSize: Int) -> (bounds: [(Int, Int)], ksize: Int, k: [Int32]) {
        func cubic(_ xIn: Double) -> Double {
            let a = -0.5, x = abs(xIn)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 2.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var kk = [Int32](repeating: 0, count: outSize * ksize)
        let precision = Double(1 << 22)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var w = [Double](repeating: 0, count: max(xmax, 0))
            var ww = 0.0
            for x in 0..<max(xmax, 0) {
                w[x] = cubic((Double(x + xmin) - center + 0.5) * ss)
                ww += w[x]
            }
            for x in 0..<max(xmax, 0) {
                let v = ww != 0 ? w[x] / ww : w[x]
                kk[xx * ksize + x] = Int32(v < 0 ? (-0.5 + v * precision) : (0.5 + v * precision))
            }
            bounds.append((xmin, max(xmax, 0)))
        }
        return (bounds, ksize, kk)
    }

    @inline(__always) static func clip8(_ v: Int) -> UInt8 {
        let s = v >> 22
        return UInt8(max(0, min(255, s)))
    }

    /// Pillow's `Image.resize((w, h), BICUBIC)` of an RGB u8 image (horizontal pass, then vertical).
    public static func resizeBicubic(rgb: [UInt8], width: Int, height: Int, toWidth ow: Int, toHeight oh: Int) -> [UInt8] {
        var cur = rgb, cw = width
        if ow != width {
            let (bounds, ks, k) = coefficients(inSize: width, outSize: ow)
            var out = [UInt8](repeating: 0, count: ow * height * 3)
            for y in 0..<height {
                for xx in 0..<ow {
                    let (x0, n) = bounds[xx]
                    for ch in 0..<3 {
                        var ss = 1 << 21
                        for x in 0..<n { ss += Int(cur[(y * cw + x0 + x) * 3 + ch]) * Int(k[xx * ks + x]) }
                        out[(y * ow + xx) * 3 + ch] = clip8(ss)
                    }
                }
            }
            cur = out; cw = ow
        }
        if oh != height {
            let (bounds, ks, k) = coefficients(inSize: height, outSize: oh)
            var out = [UInt8](repeating: 0, count: cw * oh * 3)
            for yy in 0..<oh {
                let (y0, n) = bounds[yy]
                for x in 0..<cw {
                    for ch in 0..<3 {
                        var ss = 1 << 21
                        for y in 0..<n { ss += Int(cur[((y0 + y) * cw + x) * 3 + ch]) * Int(k[yy * ks + y]) }
                        out[(yy * cw + x) * 3 + ch] = clip8(ss)
                    }
                }
            }
            cur = out
        }
        return cur
    }

    /// One view → [3, size, size] normalised floats. The shorter side is resized to `size` (torchvision's
    /// rule: the longer becomes int(size · long / short)); the result must be square, since the encoder
    /// takes size × size views.
    public static func prepare(_ im: Image, size: Int) throws -> [Float] {
        guard size > 0 else { throw HYError.invalidArgument("preprocess: size \(size)") }
        let short = min(im.width, im.height), long = max(im.width, im.height)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        let (ow, oh) = im.width <= im.height ? (size, newLong) : (newLong, size)
        guard ow == size && oh == size else {
            throw HYError.invalidArgument("preprocess: a \(im.width)×\(im.height) image resizes to \(ow)×\(oh); views must be square")
        }
        let rgb = compositeOverWhite(im)
        let resized = (im.width == size && im.height == size) ? rgb
            : resizeBicubic(rgb: rgb, width: im.width, height: im.height, toWidth: size, toHeight: size)
        var out = [Float](repeating: 0, count: 3 * size * size)
        for ch in 0..<3 {
            let m = mean[ch], s = std[ch]
            for i in 0..<(size * size) {
                out[ch * size * size + i] = (Float(resized[3 * i + ch]) / 255 - m) / s
            }
        }
        return out
    }

    /// The camera vectors of the predictor (`predictor.py:70-92, 109-113, 125`): for each (elevation,
    /// azimuth) in degrees the 4×4 camera-to-world matrix row-major (camera at distance 1.5 looking at
    /// the origin, Z up, columns right, up, −forward) then (35/32, 35/32, 0.5, 0.5); the last view
    /// (the condition image) all zeros. Returns views × 20 floats.
    public static func cameras(elevations: [Double] = [0, 0, 0, 0, 0, 0, 0],
                               azimuths: [Double] = [0, 60, 120, 180, 240, 300, 0],
                               distance: Double = 1.5, zeroLast: Bool = true) -> [Float] {
        var out: [Float] = []
        let n = min(elevations.count, azimuths.count)
        for v in 0..<n {
            let el = elevations[v] * Double.pi / 180, az = azimuths[v] * Double.pi / 180
            let pos = [cos(el) * cos(az) * distance, cos(el) * sin(az) * distance, sin(el) * distance]
            func norm(_ a: [Double]) -> [Double] { let l = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).squareRoot(); return a.map { $0 / l } }
            func cross(_ a: [Double], _ b: [Double]) -> [Double] {
                [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
            }
            let fwd = norm(pos.map { -$0 })
            let right = norm(cross(fwd, [0, 0, 1]))
            let up = norm(cross(right, fwd))
            var m = [Double](repeating: 0, count: 16)
            for r in 0..<3 {
                m[4 * r] = right[r]; m[4 * r + 1] = up[r]; m[4 * r + 2] = -fwd[r]; m[4 * r + 3] = pos[r]
            }
            m[15] = 1
            var row = m.map { Float($0) } + [35.0 / 32, 35.0 / 32, 0.5, 0.5]
            if zeroLast && v == n - 1 { row = [Float](repeating: 0, count: 20) }
            out += row
        }
        return out
    }
}

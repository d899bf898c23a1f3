/// Pillow's `Image.resize((w, h), BICUBIC)`, reproduced bit-exactly: a = −0.5 kernel widened when
/// shrinking, weights renormalised, 22-bit fixed point, horizontal pass first with a uint8
/// intermediate (`libImaging/Resample.c`). torchvision's `Resize(…, BICUBIC)` on a PIL image calls it.
public enum Resize {
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

    /// Resizes an RGB u8 image (`rgb`: width·height·3 bytes) to `ow`×`oh` (horizontal pass, then vertical).
    public static func bicubic(rgb: [UInt8], width: Int, height: Int, toWidth ow: Int, toHeight oh: Int) -> [UInt8] {
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
}

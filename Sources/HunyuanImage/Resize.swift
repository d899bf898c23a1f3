#if canImport(Glibc)
import Glibc
#endif
/// Pillow's 8-bit `Image.resize((w, h), filter)`, reproduced bit-exactly: the filter widened when
/// shrinking, weights renormalised, 22-bit fixed point, horizontal pass first with a uint8
/// intermediate, a pass skipped when its size does not change (`libImaging/Resample.c`).
/// torchvision's `Resize(…, BICUBIC)` on a PIL image calls it; rembg resizes with LANCZOS.
public enum Resize {
    /// Pillow's filters: BICUBIC (a = −0.5, support 2) and LANCZOS (sinc·sinc(x/3), support 3).
    public enum Filter: Sendable { case bicubic, lanczos }

    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for `filter` over the full box.
    static func coefficients(inSize: Int, outSize: Int, filter: Filter = .bicubic) -> (bounds: [(Int, Int)], ksize: Int, k: [Int32]) {
        func cubic(_ xIn: Double) -> Double {
            let a = -0.5, x = abs(xIn)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
        func sinc(_ x: Double) -> Double {
            if x == 0 { return 1 }
            let px = x * Double.pi
            return sin(px) / px
        }
        func kernel(_ x: Double) -> Double {
            switch filter {
            case .bicubic: return cubic(x)
            case .lanczos: return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
            }
        }
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = (filter == .bicubic ? 2.0 : 3.0) * filterScale
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
                w[x] = kernel((Double(x + xmin) - center + 0.5) * ss)
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

    /// Resizes an RGB u8 image (`rgb`: width·height·3 bytes) to `ow`×`oh` with Pillow's BICUBIC.
    public static func bicubic(rgb: [UInt8], width: Int, height: Int, toWidth ow: Int, toHeight oh: Int) -> [UInt8] {
        pillow(rgb, channels: 3, width: width, height: height, toWidth: ow, toHeight: oh, filter: .bicubic)
    }

    /// Resizes an interleaved u8 image of `channels` channels (width·height·channels bytes, each
    /// channel independent — for RGBA the caller premultiplies as Pillow does) to `ow`×`oh`.
    public static func pillow(_ px: [UInt8], channels c: Int, width: Int, height: Int, toWidth ow: Int, toHeight oh: Int,
                              filter: Filter) -> [UInt8] {
        var cur = px, cw = width
        if ow != width {
            let (bounds, ks, k) = coefficients(inSize: width, outSize: ow, filter: filter)
            var out = [UInt8](repeating: 0, count: ow * height * c)
            for y in 0..<height {
                for xx in 0..<ow {
                    let (x0, n) = bounds[xx]
                    for ch in 0..<c {
                        var ss = 1 << 21
                        for x in 0..<n { ss += Int(cur[(y * cw + x0 + x) * c + ch]) * Int(k[xx * ks + x]) }
                        out[(y * ow + xx) * c + ch] = clip8(ss)
                    }
                }
            }
            cur = out; cw = ow
        }
        if oh != height {
            let (bounds, ks, k) = coefficients(inSize: height, outSize: oh, filter: filter)
            var out = [UInt8](repeating: 0, count: cw * oh * c)
            for yy in 0..<oh {
                let (y0, n) = bounds[yy]
                for x in 0..<cw {
                    for ch in 0..<c {
                        var ss = 1 << 21
                        for y in 0..<n { ss += Int(cur[((y0 + y) * cw + x) * c + ch]) * Int(k[yy * ks + y]) }
                        out[(yy * cw + x) * c + ch] = clip8(ss)
                    }
                }
            }
            cur = out
        }
        return cur
    }
}

import HunyuanNN
import HunyuanImage

/// Hunyuan3D-1.0's background removal (`infer/removebg.py`, `Removebg.__call__`) with rembg's `u2net`
/// session, step by step as the fixture README (fixtures/rembg/u2netp-tiny) states it, [RB] = rembg
/// 2.0.86, [HY] = Tencent/Hunyuan3D-1:
/// 1. RGBA input with `force` (the default) drops its alpha, keeping the colours under it; RGBA
///    without `force` (`keepAlpha`) skips rembg; RGB goes to rembg.
/// 2. rembg `U2netSession.predict`: LANCZOS to 320×320, x / max(x) then (x − mean)/std in float64
///    cast to float32 ([RB] base.py:81-106), U²-Net → sigmoid(d0), min–max normalised in float32 and
///    truncated to u8 (u2net.py:38-44), LANCZOS back to the input size.
/// 3. `naive_cutout`: RGB premultiplied by the mask (Pillow's DIV255), alpha = mask ([RB] bg.py:99-112).
/// 4. `white_out_background` ([HY] removebg.py:38-51, = `MVDPreprocess.whiteOut`).
/// 5. `preprocess`: crop to the rows/columns with alpha > 0.1 (end-exclusive), pad to a square of
///    int(max(h, w)·1.15) on (255, 255, 255, 0), BICUBIC to 512×512 through Pillow's premultiplied RGBA
///    path ([HY] removebg.py:53-77).
public enum BackgroundRemoval {
    /// Pillow's DIV255: (x + 128 + ((x + 128) >> 8)) >> 8.
    @inline(__always) static func div255(_ x: Int) -> Int { ((x + 128) + ((x + 128) >> 8)) >> 8 }

    /// rembg's network input from an RGB image: the 320×320 LANCZOS resize and the [3, 320, 320] tensor.
    public static func inputTensor(rgb: [UInt8], width: Int, height: Int, size: Int = 320) -> (resized: [UInt8], tensor: [Float]) {
        let r = Resize.pillow(rgb, channels: 3, width: width, height: height, toWidth: size, toHeight: size, filter: .lanczos)
        let mx = max(Double(r.max() ?? 0), 1e-6)
        let mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225]
        var t = [Float](repeating: 0, count: 3 * size * size)
        for i in 0..<(size * size) {
            for c in 0..<3 { t[c * size * size + i] = Float((Double(r[3 * i + c]) / mx - mean[c]) / std[c]) }
        }
        return (r, t)
    }

    /// The 8-bit mask of sigmoid(d0): (p − min)/(max − min) in float32, clipped, ·255 truncated. A
    /// constant map (max = min) gives an all-zero mask.
    public static func mask(fromD0 d0: [Float]) -> [UInt8] {
        guard let mi = d0.min(), let ma = d0.max(), ma > mi else { return [UInt8](repeating: 0, count: d0.count) }
        let range = ma - mi
        return d0.map { v in
            let p = min(max((v - mi) / range, 0), 1)
            return UInt8(p * 255)
        }
    }

    /// `naive_cutout`: RGBA with RGB = DIV255(c·m) and A = m.
    public static func cutout(rgb: [UInt8], mask: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: mask.count * 4)
        for i in 0..<mask.count {
            let m = Int(mask[i])
            for c in 0..<3 { out[4 * i + c] = UInt8(div255(Int(rgb[3 * i + c]) * m)) }
            out[4 * i + 3] = mask[i]
        }
        return out
    }

    /// `preprocess(rgba, (size, size), 1.15)`: the padded square (before the resize) and the result.
    /// Throws `HYError.invalidArgument` when no pixel has alpha > 0.1 (an all-background image) or the
    /// crop is empty.
    public static func recenter(rgba: [UInt8], width: Int, height: Int, size: Int = 512) throws -> (padded: ByteImage, result: ByteImage) {
        var r0 = Int.max, r1 = -1, c0 = Int.max, c1 = -1
        for y in 0..<height {
            for x in 0..<width where rgba[4 * (y * width + x) + 3] >= 26 {   // a/255 > 0.1
                r0 = min(r0, y); r1 = max(r1, y); c0 = min(c0, x); c1 = max(c1, x)
            }
        }
        guard r1 >= 0 else { throw HYError.invalidArgument("background removal: the mask is empty (the whole image is background)") }
        let h = r1 - r0, w = c1 - c0                                          // end-exclusive, as the official slice
        guard h > 0, w > 0 else {
            throw HYError.invalidArgument("background removal: the object is \(h + 1)×\(w + 1) pixels, too small to crop")
        }
        let side = Int(Double(max(h, w)) * 1.15)
        let top = (side - h) / 2, left = (side - w) / 2
        var sq = [UInt8](repeating: 0, count: side * side * 4)
        for i in 0..<(side * side) { sq[4 * i] = 255; sq[4 * i + 1] = 255; sq[4 * i + 2] = 255 }
        for y in 0..<h {
            let src = 4 * ((r0 + y) * width + c0), dst = 4 * ((top + y) * side + left)
            for k in 0..<(4 * w) { sq[dst + k] = rgba[src + k] }
        }
        let padded = try ByteImage(width: side, height: side, channels: 4, pixels: sq)
        if side == size { return (padded, padded) }
        // Pillow: RGBA → RGBa, resample every channel, RGBa → RGBA.
        var pm = sq
        for i in 0..<(side * side) {
            let a = Int(sq[4 * i + 3])
            for c in 0..<3 { pm[4 * i + c] = UInt8(div255(Int(sq[4 * i + c]) * a)) }
        }
        var out = Resize.pillow(pm, channels: 4, width: side, height: side, toWidth: size, toHeight: size, filter: .bicubic)
        for i in 0..<(size * size) {
            let a = Int(out[4 * i + 3])
            if a == 0 || a == 255 { continue }
            for c in 0..<3 { out[4 * i + c] = UInt8(min(255, 255 * Int(out[4 * i + c]) / a)) }
        }
        return (padded, try ByteImage(width: size, height: size, channels: 4, pixels: out))
    }

    /// Every stage of one removal (what `rembg-eval` writes and a caller may keep).
    public struct Result: Sendable {
        /// rembg's network input [3, 320, 320] and its resized RGB (nil when rembg was skipped).
        public var inputTensor: [Float]?
        public var resized: [UInt8]?
        /// sigmoid(d0) [320·320], the 320×320 mask and the mask at the input size (nil when skipped).
        public var d0: [Float]?
        public var mask320: [UInt8]?
        public var mask: [UInt8]?
        /// rembg's cut-out, after the white-out, the padded square and the final 512×512 RGBA.
        public var cutout: ByteImage
        public var whiteout: ByteImage
        public var padded: ByteImage
        public var final: ByteImage
    }

    /// Runs the steps above on `image` (RGB or RGBA) with `net`. `keepAlpha`: an RGBA input keeps
    /// its alpha and skips the network (the official `force=False`); RGB input always runs it.
    public static func run(_ image: ByteImage, net: U2Net, keepAlpha: Bool = false, size: Int = 512, pool: ThreadPool?,
                           trace: Trace? = nil, shouldStop: (() -> Bool)? = nil) throws -> Result {
        let n = image.width * image.height
        var result: Result
        let rgba: [UInt8]
        if keepAlpha && image.channels == 4 {
            rgba = image.pixels
            let im = try ByteImage(width: image.width, height: image.height, channels: 4, pixels: rgba)
            result = Result(cutout: im, whiteout: im, padded: im, final: im)
        } else {
            var rgb = [UInt8](repeating: 0, count: 3 * n)
            let c = image.channels
            for i in 0..<n { for k in 0..<3 { rgb[3 * i + k] = image.pixels[c * i + k] } }
            let (resized, x) = inputTensor(rgb: rgb, width: image.width, height: image.height)
            x.withUnsafeBufferPointer { trace.emit("input_tensor", [1, 3, 320, 320], $0.baseAddress!) }
            let d0 = try net.forward(x, height: 320, width: 320, pool: pool, trace: trace, shouldStop: shouldStop)
            let m320 = mask(fromD0: d0)
            let m = Resize.pillow(m320, channels: 1, width: 320, height: 320, toWidth: image.width, toHeight: image.height,
                                  filter: .lanczos)
            rgba = cutout(rgb: rgb, mask: m)
            let im = try ByteImage(width: image.width, height: image.height, channels: 4, pixels: rgba)
            result = Result(inputTensor: x, resized: resized, d0: d0, mask320: m320, mask: m, cutout: im, whiteout: im,
                            padded: im, final: im)
        }
        result.whiteout = MVDPreprocess.whiteOut(result.cutout)
        let (padded, final) = try recenter(rgba: result.whiteout.pixels, width: image.width, height: image.height, size: size)
        result.padded = padded
        result.final = final
        return result
    }
}

import HunyuanNN
import HunyuanImage

/// The condition image as `Hunyuan3d_MVD_Lite_Pipeline.__call__` prepares it
/// (`mvd/hunyuan3d_mvd_lite_pipeline.py:315-317`, `mvd/utils.py`): on RGBA input,
/// `white_out_background` (called through `recenter_img`, whose result is discarded) rewrites the
/// pixels in place — alpha < 16 → (255, 255, 255, 0); R, G and B all > 235 → 235 each — and
/// `to_rgb_image` pastes the result on white with its alpha as the mask (Pillow's integer blend
/// (c·a + 255·(255 − a) + 128) / 255 with the rounding of `paste`). RGB input is used as it is.
public enum MVDPreprocess {
    /// The RGBA pixels after `white_out_background` (RGB input is returned unchanged).
    public static func whiteOut(_ im: ByteImage) -> ByteImage {
        guard im.channels == 4 else { return im }
        var out = im
        for i in 0..<(im.width * im.height) {
            let p = 4 * i
            if im.pixels[p + 3] < 16 {
                out.pixels[p] = 255; out.pixels[p + 1] = 255; out.pixels[p + 2] = 255; out.pixels[p + 3] = 0
            } else if im.pixels[p] > 235 && im.pixels[p + 1] > 235 && im.pixels[p + 2] > 235 {
                out.pixels[p] = 235; out.pixels[p + 1] = 235; out.pixels[p + 2] = 235
            }
        }
        return out
    }

    /// The condition RGB (width·height·3 bytes): white-out, then pasted on white by alpha.
    public static func conditionRGB(_ im: ByteImage) -> [UInt8] {
        guard im.channels == 4 else { return im.pixels }
        let w = whiteOut(im)
        let n = im.width * im.height
        var out = [UInt8](repeating: 255, count: 3 * n)
        for i in 0..<n {
            let a = Int(w.pixels[4 * i + 3])
            for c in 0..<3 {
                let t = Int(w.pixels[4 * i + c]) * a + 255 * (255 - a) + 128
                out[3 * i + c] = UInt8(((t >> 8) + t) >> 8)
            }
        }
        return out
    }
}

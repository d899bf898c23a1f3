import HunyuanNN
import HunyuanImage

/// transformers' `CLIPImageProcessor` as configured by a `preprocessor_config.json`: RGB u8 →
/// resize (shortest edge to `size.shortest_edge`, the other as int(size·long/short), Pillow's
/// bicubic bit-exactly: `Resize.bicubic`) → centre crop (top = (H − h)/2, left = (W − w)/2) →
/// ·rescale_factor (float64, then float32) → (x − mean)/std in float32 → channel-major [3, h, w].
public struct CLIPImageProcessor: Sendable, Decodable {
    public struct Size: Sendable, Decodable {
        public var shortest_edge: Int?
        public var height: Int?
        public var width: Int?
    }
    public var size: Size
    public var crop_size: Size?
    public var do_resize: Bool?
    public var do_center_crop: Bool?
    public var do_rescale: Bool?
    public var do_normalize: Bool?
    public var rescale_factor: Double?
    public var image_mean: [Float]?
    public var image_std: [Float]?
    /// PIL resample code; 3 (bicubic) is the one CLIP processors use and the one implemented.
    public var resample: Int?

    /// Reads `preprocessor_config.json` of `dir`; fails on options this implementation lacks.
    public init(folder dir: String) throws {
        self = try Component.config(CLIPImageProcessor.self, dir, file: "preprocessor_config.json")
        let ctx = FileSystem.join(dir, "preprocessor_config.json")
        guard (resample ?? 3) == 3 else { throw HYError.unsupported("\(ctx): resample \(resample!) (only 3, bicubic)") }
        if do_resize ?? true {
            guard let s = size.shortest_edge, s > 0, s <= 8192 else {
                throw HYError.format("\(ctx): size.shortest_edge missing or out of range")
            }
        }
        if do_center_crop ?? true {
            guard let h = crop_size?.height, let w = crop_size?.width, h > 0, w > 0, h <= 8192, w <= 8192 else {
                throw HYError.format("\(ctx): crop_size missing or out of range")
            }
        }
        guard (image_mean?.count ?? 3) == 3, (image_std?.count ?? 3) == 3, (image_std ?? [1, 1, 1]).allSatisfy({ $0 != 0 }) else {
            throw HYError.format("\(ctx): image_mean / image_std must have 3 non-zero entries")
        }
    }

    /// The output side lengths (height, width).
    public var outputSize: (Int, Int) {
        if do_center_crop ?? true { return (crop_size!.height!, crop_size!.width!) }
        return (size.shortest_edge!, size.shortest_edge!)
    }

    /// `rgb`: width·height·3 bytes, rows from the top. Returns [3, h, w] fp32 and (h, w).
    public func preprocess(rgb: [UInt8], width: Int, height: Int) -> (pixels: [Float], height: Int, width: Int) {
        var img = rgb, w = width, h = height
        if do_resize ?? true, let s = size.shortest_edge {
            let (nh, nw) = h <= w ? (s, Int(Double(s) * Double(w) / Double(h))) : (Int(Double(s) * Double(h) / Double(w)), s)
            if nh != h || nw != w {
                img = Resize.bicubic(rgb: img, width: w, height: h, toWidth: nw, toHeight: nh)
                h = nh; w = nw
            }
        }
        var top = 0, left = 0, oh = h, ow = w
        if do_center_crop ?? true, let ch = crop_size?.height, let cw = crop_size?.width {
            // transformers' center_crop pads with zeros when the image is smaller than the crop
            top = (h - ch) / 2; left = (w - cw) / 2
            if h < ch { top = -((ch - h + 1) / 2) }
            if w < cw { left = -((cw - w + 1) / 2) }
            oh = ch; ow = cw
        }
        let mean = image_mean ?? [0, 0, 0], std = image_std ?? [1, 1, 1]
        let scale = (do_rescale ?? true) ? (rescale_factor ?? 1.0 / 255.0) : 1.0
        let normalize = do_normalize ?? true
        var out = [Float](repeating: 0, count: 3 * oh * ow)
        for y in 0..<oh {
            for x in 0..<ow {
                let sy = y + top, sx = x + left
                let inside = sy >= 0 && sy < h && sx >= 0 && sx < w
                for c in 0..<3 {
                    var v = inside ? Float(Double(img[(sy * w + sx) * 3 + c]) * scale) : 0
                    if normalize { v = (v - mean[c]) / std[c] }
                    out[(c * oh + y) * ow + x] = v
                }
            }
        }
        return (out, oh, ow)
    }
}

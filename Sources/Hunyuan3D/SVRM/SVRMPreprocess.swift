#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN
import HunyuanImage

/// Input preparation as `svrm/predictor.py:51-55, 70-125` does it: each view is resized with
/// torchvision's `Resize(504, BICUBIC)` on a PIL image (Pillow's own bicubic: `Resize.bicubic`), then
/// `ToTensor()` (u8 / 255) and `Normalize(mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225))` in
/// float32. RGBA input is first composited over white (`ByteImage.compositedOverWhite`, the official
/// `rgba_to_rgb`).
public enum SVRMPreprocess {
    public static let mean: [Float] = [0.485, 0.456, 0.406]
    public static let std: [Float] = [0.229, 0.224, 0.225]

    /// One view → [3, size, size] normalised floats. The shorter side is resized to `size` (torchvision's
    /// rule: the longer becomes int(size · long / short)); the result must be square, since the encoder
    /// takes size × size views.
    public static func prepare(_ im: ByteImage, size: Int) throws -> [Float] {
        guard size > 0 else { throw HYError.invalidArgument("preprocess: size \(size)") }
        let short = min(im.width, im.height), long = max(im.width, im.height)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        let (ow, oh) = im.width <= im.height ? (size, newLong) : (newLong, size)
        guard ow == size && oh == size else {
            throw HYError.invalidArgument("preprocess: a \(im.width)×\(im.height) image resizes to \(ow)×\(oh); views must be square")
        }
        let rgb = im.compositedOverWhite()
        let resized = (im.width == size && im.height == size) ? rgb
            : Resize.bicubic(rgb: rgb, width: im.width, height: im.height, toWidth: size, toHeight: size)
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

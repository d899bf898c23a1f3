import HunyuanCore

/// An 8-bit image, row-major from the top row, `channels` 3 (RGB) or 4 (RGBA) interleaved: what the
/// decoders return and what the reconstruction pipeline takes as a view. The initializer checks the
/// size and the pixel count (`invalidArgument`), so a value always holds width·height·channels bytes.
public struct ByteImage: Sendable {
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

    /// RGBA → RGB over white as `svrm/utils/img_utils.py:21-34` (`rgba_to_rgb`) does it:
    /// c·α + 255·(1 − α), α = a/255, in float64 truncated to u8. An RGB image is returned unchanged.
    public func compositedOverWhite() -> [UInt8] {
        if channels == 3 { return pixels }
        let n = width * height
        var out = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let a = Double(pixels[4 * i + 3]) / 255.0
            for ch in 0..<3 {
                let v = Double(pixels[4 * i + ch]) * a + 255.0 * (1 - a)
                out[3 * i + ch] = UInt8(max(0, min(255, v)))
            }
        }
        return out
    }
}

/// An 8-bit RGBA image, row-major from the top row: mesh textures and preview renders.
public struct RGBAImage: Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: SIMD4<UInt8> = SIMD4(0, 0, 0, 255)) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 4)
        for i in 0..<(width * height) {
            pixels[4 * i] = fill.x; pixels[4 * i + 1] = fill.y; pixels[4 * i + 2] = fill.z; pixels[4 * i + 3] = fill.w
        }
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

import CZlib
import HunyuanCore

/// A small PNG reader for view images: non-interlaced, bit depth 8 or 16 (16 is reduced to its high
/// byte), grey, grey+alpha, RGB, RGBA and 8-bit palette (with tRNS alpha). Output is 8-bit RGB or RGBA
/// (alpha kept when the file has any). Chunk CRCs are not verified; every length and size is checked,
/// and a malformed file is `HYError.format` naming it (never a trap). Files are read through `ImageFile`.
public enum PNGDecoder {
    public static let maxSide = 1 << 15

    public static func decode(_ b: UnsafeRawBufferPointer, context: String) throws -> ByteImage {
        func bad(_ m: String) -> HYError { HYError.format("\(context): \(m)") }
        let sig: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard b.count >= 8, Array(b[0..<8]) == sig else { throw bad("not a PNG file") }
        func be32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        var pos = 8
        var width = 0, height = 0, depth = 0, colorType = -1
        var palette: [UInt8] = [], trns: [UInt8] = [], idat: [UInt8] = []
        var ended = false
        while pos + 12 <= b.count && !ended {
            let len = be32(pos)
            let type = String(decoding: b[(pos + 4)..<(pos + 8)], as: UTF8.self)
            guard len >= 0, len <= b.count - pos - 12 else { throw bad("chunk \(type) runs past the end (truncated?)") }
            let data = UnsafeRawBufferPointer(rebasing: b[(pos + 8)..<(pos + 8 + len)])
            switch type {
            case "IHDR":
                guard len == 13 else { throw bad("IHDR has \(len) bytes") }
                width = be32(pos + 8); height = be32(pos + 12)
                depth = Int(data[8]); colorType = Int(data[9])
                guard data[10] == 0, data[11] == 0 else { throw bad("unknown compression or filter method") }
                guard data[12] == 0 else { throw HYError.unsupported("\(context): interlaced PNG is not supported") }
            case "PLTE": palette = Array(data)
            case "tRNS": trns = Array(data)
            case "IDAT": idat.append(contentsOf: data)
            case "IEND": ended = true
            default: break
            }
            pos += 12 + len
        }
        guard width > 0, height > 0, width <= maxSide, height <= maxSide else { throw bad("image size \(width)x\(height)") }
        let channels: Int
        switch colorType {
        case 0: channels = 1
        case 2: channels = 3
        case 3: channels = 1
        case 4: channels = 2
        case 6: channels = 4
        default: throw bad("missing IHDR or unknown colour type \(colorType)")
        }
        let validDepths: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
        guard validDepths[colorType]?.contains(depth) ?? false else {
            throw bad("bit depth \(depth) is invalid for colour type \(colorType)")
        }
        guard depth == 8 || (depth == 16 && colorType != 3) else {
            throw HYError.unsupported("\(context): bit depth \(depth) for colour type \(colorType) is not supported (8 or 16)")
        }
        let bpp = channels * depth / 8
        let rowBytes = try checkedMul(width, bpp, "\(context): row size")
        let rawSize = try checkedMul(height, rowBytes + 1, "\(context): image size")
        var raw = [UInt8](repeating: 0, count: rawSize)
        var destLen = uLongf(rawSize)
        let rc = raw.withUnsafeMutableBufferPointer { d in
            idat.withUnsafeBufferPointer { s in
                uncompress(d.baseAddress, &destLen, s.baseAddress, uLong(s.count))
            }
        }
        guard rc == Z_OK, Int(destLen) == rawSize else { throw bad("corrupt image data (zlib status \(rc), \(destLen) of \(rawSize) bytes)") }
        // Undo the per-row filters in place (row r's data starts at r·(rowBytes+1)+1).
        var prev = [UInt8](repeating: 0, count: rowBytes)
        var pixels = [UInt8](repeating: 0, count: height * rowBytes)
        for r in 0..<height {
            let base = r * (rowBytes + 1)
            let filter = raw[base]
            var cur = Array(raw[(base + 1)..<(base + 1 + rowBytes)])
            for i in 0..<rowBytes {
                let a = i >= bpp ? Int(cur[i - bpp]) : 0, up = Int(prev[i]), c = i >= bpp ? Int(prev[i - bpp]) : 0
                let x = Int(cur[i])
                switch filter {
                case 0: break
                case 1: cur[i] = UInt8((x + a) & 0xFF)
                case 2: cur[i] = UInt8((x + up) & 0xFF)
                case 3: cur[i] = UInt8((x + (a + up) / 2) & 0xFF)
                case 4:
                    let p = a + up - c, pa = abs(p - a), pb = abs(p - up), pc = abs(p - c)
                    let pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? up : c)
                    cur[i] = UInt8((x + pred) & 0xFF)
                default: throw bad("row \(r): unknown filter type \(filter)")
                }
            }
            for i in 0..<rowBytes { pixels[r * rowBytes + i] = cur[i] }
            prev = cur
        }
        // Convert to 8-bit RGB(A).
        let n = width * height
        let hasAlpha = colorType == 4 || colorType == 6 || (colorType == 3 && !trns.isEmpty)
        let outCh = hasAlpha ? 4 : 3
        var out = [UInt8](repeating: 255, count: n * outCh)
        let step = depth / 8
        for i in 0..<n {
            func sample(_ ch: Int) -> UInt8 { pixels[(i * channels + ch) * step] }  // high byte for 16-bit
            var rgba: (UInt8, UInt8, UInt8, UInt8)
            switch colorType {
            case 0: rgba = (sample(0), sample(0), sample(0), 255)
            case 2: rgba = (sample(0), sample(1), sample(2), 255)
            case 3:
                let k = Int(sample(0))
                guard 3 * k + 2 < palette.count else { throw bad("palette index \(k) outside PLTE") }
                rgba = (palette[3 * k], palette[3 * k + 1], palette[3 * k + 2], k < trns.count ? trns[k] : 255)
            case 4: rgba = (sample(0), sample(0), sample(0), sample(1))
            default: rgba = (sample(0), sample(1), sample(2), sample(3))
            }
            out[i * outCh] = rgba.0; out[i * outCh + 1] = rgba.1; out[i * outCh + 2] = rgba.2
            if hasAlpha { out[i * outCh + 3] = rgba.3 }
        }
        return try ByteImage(width: width, height: height, channels: outCh, pixels: out)
    }
}

/// PNG encoder (8-bit RGB or RGBA, filter 0 on every row, zlib through the system library).
public enum PNGEncoder {
    public static func encode(_ img: RGBAImage) throws -> [UInt8] {
        try encode(width: img.width, height: img.height, channels: 4, pixels: img.pixels)
    }

    /// An RGB (3 channels) or RGBA (4) image.
    public static func encode(_ img: ByteImage) throws -> [UInt8] {
        try encode(width: img.width, height: img.height, channels: img.channels, pixels: img.pixels)
    }

    static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws -> [UInt8] {
        guard width > 0, height > 0, channels == 3 || channels == 4, pixels.count == width * height * channels else {
            throw HYError.invalidArgument("image \(width)x\(height)x\(channels) with \(pixels.count) bytes")
        }
        let row = width * channels
        var raw = [UInt8](); raw.reserveCapacity((row + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw += pixels[(y * row)..<((y + 1) * row)]
        }
        var destLen = compressBound(uLong(raw.count))
        var z = [UInt8](repeating: 0, count: Int(destLen))
        let rc = compress2(&z, &destLen, raw, uLong(raw.count), 6)
        guard rc == Z_OK else { throw HYError.internal("zlib compress2 failed (\(rc))") }
        z.removeSubrange(Int(destLen)...)
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            out += be32(UInt32(data.count))
            let td = Array(type.utf8) + data
            out += td
            out += be32(td.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) })
        }
        chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [8, channels == 4 ? 6 : 2, 0, 0, 0])
        chunk("IDAT", z)
        chunk("IEND", [])
        return out
    }

    /// Writes `img` as PNG to `path` atomically (existing file replaced only with `overwrite`).
    public static func write(_ img: RGBAImage, to path: String, overwrite: Bool) throws {
        try FileSystem.writeAtomically(path, bytes: try encode(img), overwrite: overwrite)
    }

    /// Writes an RGB or RGBA `img` as PNG to `path`, as `write(_:to:overwrite:)` for RGBAImage.
    public static func write(_ img: ByteImage, to path: String, overwrite: Bool) throws {
        try FileSystem.writeAtomically(path, bytes: try encode(img), overwrite: overwrite)
    }
}

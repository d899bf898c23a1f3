#if canImport(Glibc)
import Glibc
#endif
import CJPEG
import HunyuanCore

/// JPEG reader through libjpeg(-turbo) (`Sources/CJPEG`): baseline and progressive, grey, YCbCr and
/// CMYK all become 8-bit RGB. Corrupt, truncated (libjpeg would pad it with grey) or oversized data is
/// `HYError.format` naming the file. Files are read through `ImageFile`.
public enum JPEGDecoder {
    public static func decode(_ b: UnsafeRawBufferPointer, context: String) throws -> ByteImage {
        guard let base = b.baseAddress else { throw HYError.format("\(context): empty file") }
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        var w: Int32 = 0, h: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let rc = hyi_jpeg_decode(base.assumingMemoryBound(to: UInt8.self), b.count, PNGDecoder.maxSide, &pixels, &w, &h,
                                 &message, message.count)
        guard rc == 0, let pixels else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw HYError.format("\(context): JPEG: \(text)")
        }
        defer { free(pixels) }
        let n = Int(w) * Int(h) * 3
        return try ByteImage(width: Int(w), height: Int(h), channels: 3,
                             pixels: Array(UnsafeBufferPointer(start: pixels, count: n)))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CHunyuan
import HunyuanNN

/// View images from files: PNG (our decoder, `PNGDecoder`) or JPEG (libjpeg-turbo), chosen by the
/// file's signature, not its name. Output is 8-bit RGB or RGBA (`SVRMPreprocess.Image`); a malformed,
/// truncated or oversized file is `HYError.format` naming it.
public enum ImageFile {
    public static func read(_ path: String) throws -> SVRMPreprocess.Image {
        let f = try MappedFile(path: path)
        return try withExtendedLifetime(f) { try decode(f.bytes, context: path) }
    }

    public static func decode(_ b: UnsafeRawBufferPointer, context: String) throws -> SVRMPreprocess.Image {
        if b.count >= 8 && b[0] == 0x89 && b[1] == 0x50 && b[2] == 0x4E && b[3] == 0x47 {
            return try PNGDecoder.decode(b, context: context)
        }
        if b.count >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF { return try decodeJPEG(b, context: context) }
        throw HYError.format("\(context): not a PNG or JPEG file")
    }

    static func decodeJPEG(_ b: UnsafeRawBufferPointer, context: String) throws -> SVRMPreprocess.Image {
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
        return try SVRMPreprocess.Image(width: Int(w), height: Int(h), channels: 3,
                                        pixels: Array(UnsafeBufferPointer(start: pixels, count: n)))
    }
}

import HunyuanCore

/// Images from files: PNG (`PNGDecoder`) or JPEG (`JPEGDecoder`), chosen by the file's signature, not
/// its name. Output is 8-bit RGB or RGBA (`ByteImage`); a malformed, truncated or oversized file is
/// `HYError.format` naming it.
public enum ImageFile {
    public static func read(_ path: String) throws -> ByteImage {
        let f = try MappedFile(path: path)
        return try withExtendedLifetime(f) { try decode(f.bytes, context: path) }
    }

    public static func decode(_ b: UnsafeRawBufferPointer, context: String) throws -> ByteImage {
        if b.count >= 8 && b[0] == 0x89 && b[1] == 0x50 && b[2] == 0x4E && b[3] == 0x47 {
            return try PNGDecoder.decode(b, context: context)
        }
        if b.count >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF { return try JPEGDecoder.decode(b, context: context) }
        throw HYError.format("\(context): not a PNG or JPEG file")
    }
}

// Unicode normalization shared by the tokenizers (the LM's Hunyuan tokenizer, the diffusion
// tokenizers): the standard library's NFC with its one known flaw worked around, and its NFD.
@_spi(_Unicode) import Swift

/// NFC of valid UTF-8 through the standard library, working around its one flaw found by
/// fuzzing against Python's unicodedata: U+0F73, U+0F75 and U+0F81 (combining class 0, but
/// decomposing into marks 129/130, 129/132, 129/130) are not reordered before preceding marks of
/// a higher class. They are composition exclusions (never in NFC output), so replacing them by
/// their canonical decompositions first gives the same NFC, and the standard library then orders
/// the marks correctly.
package func unicodeNFC(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    var needsFix = false
    var i = 0
    let n = bytes.count
    while i + 2 < n {
        if bytes[i] == 0xE0 && ((bytes[i + 1] == 0xBD && (bytes[i + 2] == 0xB3 || bytes[i + 2] == 0xB5))
                                || (bytes[i + 1] == 0xBE && bytes[i + 2] == 0x81)) {
            needsFix = true
            break
        }
        i += 1
    }
    guard needsFix else { return String(decoding: bytes, as: UTF8.self)._nfcCodeUnits }
    var fixed: [UInt8] = []
    fixed.reserveCapacity(n + 16)
    i = 0
    while i < n {
        if i + 2 < n && bytes[i] == 0xE0 {
            let b1 = bytes[i + 1], b2 = bytes[i + 2]
            let second: UInt8? = b1 == 0xBD && b2 == 0xB3 ? 0xB2 : b1 == 0xBD && b2 == 0xB5 ? 0xB4
                : b1 == 0xBE && b2 == 0x81 ? 0x80 : nil
            if let second {                      // U+0F71 followed by U+0F72 / U+0F74 / U+0F80
                fixed += [0xE0, 0xBD, 0xB1, 0xE0, second == 0x80 ? 0xBE : 0xBD, second]
                i += 3
                continue
            }
        }
        fixed.append(bytes[i])
        i += 1
    }
    return String(decoding: fixed, as: UTF8.self)._nfcCodeUnits
}

/// The canonical decomposition (NFD) of `text`, as scalars (the standard library's `_nfd`).
package func unicodeNFD(_ text: String) -> [Unicode.Scalar] { Array(text._nfd) }

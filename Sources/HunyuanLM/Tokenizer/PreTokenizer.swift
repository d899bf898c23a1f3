/// The pre-tokenizer of Hunyuan's tokenizer: splits NFC-normalized UTF-8 text into the pieces that the
/// official regular expression (tokenization_hy.py, `PAT_STR`) produces with tiktoken,
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N} | ?[^\s\p{L}\p{N}]+[\r\n]*
///     | \s*[\r\n]+ | \s+(?!\S) | \s+
///
/// as a hand-written scanner over Unicode scalars: no regex engine, linear time (every byte is looked
/// at a bounded number of times), no recursion, no allocation. The alternatives are tried in the
/// regex's order at each position, with the backtracking outcome of each worked out in closed form:
///
/// - `\s*[\r\n]+` on a whitespace run W ends right after the last CR/LF inside W (fails without one);
/// - `\s+(?!\S)` takes all of W at the end of the text, otherwise W minus its last character (fails
///   when W is a single character followed by a non-space);
/// - `\s+` takes W.
///
/// Character classes are tiktoken's own (UnicodeClasses.swift, generated from tiktoken): letters are
/// Lu/Ll/Lt/Lm/Lo, numbers Nd/Nl/No, `\s` is White_Space, in the Unicode version of tiktoken's regex
/// tables (16), not the standard library's (17 here), so characters assigned since stay "other".
/// `(?i:…)` matches case-insensitively with Unicode simple case folding, so `'ſ` (U+017F) counts as `'s`.
package enum PreTokenizer {
    // Character class bits.
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 4      // \s (White_Space)
    static let newline: UInt8 = 8    // \r or \n (also `space`)

    /// Two-stage class table over all code points: `blockIndex[cp >> 8]` picks a 256-entry block of
    /// `blocks`. Blocks beyond the last classified code point (planes 4-16 hold only tags, selectors
    /// and private use) share one block of zeros. Built once from the ranges (well under 1 ms).
    struct ClassTable: Sendable {
        let blockIndex: [UInt16]
        let blocks: [UInt8]

        init() {
            let sets: [([UInt32], UInt8)] = [(UnicodeClasses.letters, PreTokenizer.letter),
                                            (UnicodeClasses.numbers, PreTokenizer.number),
                                            (UnicodeClasses.whitespace, PreTokenizer.space)]
            var top: UInt32 = 0
            for (r, _) in sets { top = max(top, r.last ?? 0) }
            let nb = Int(top >> 8) + 1                    // blocks holding classified code points
            blockIndex = (0..<0x1100).map { UInt16($0 < nb ? $0 : nb) }
            var b = [UInt8](repeating: 0, count: (nb + 1) << 8)
            for (r, bit) in sets {
                for k in stride(from: 0, to: r.count - 1, by: 2) {
                    for cp in Int(r[k])...Int(r[k + 1]) { b[cp] |= bit }
                }
            }
            b[0x0A] |= PreTokenizer.newline
            b[0x0D] |= PreTokenizer.newline
            blocks = b
        }

        /// Class bits of one code point (0 for "other"; out-of-range values are "other").
        func lookup(_ cp: UInt32) -> UInt8 {
            guard cp < 0x110000 else { return 0 }
            return blocks[Int(blockIndex[Int(cp >> 8)]) << 8 | Int(cp & 0xFF)]
        }
    }

    static let table = ClassTable()

    /// Calls `emit(start, end)` for every piece of `text[0..<count]` (valid UTF-8), in order. The
    /// pieces tile the text exactly.
    @inline(__always)
    package static func split(_ text: UnsafePointer<UInt8>, _ count: Int, _ emit: (Int, Int) -> Void) {
        table.blocks.withUnsafeBufferPointer { blocks in
            table.blockIndex.withUnsafeBufferPointer { index in
                let scanner = Scanner(p: text, n: count, blocks: blocks.baseAddress!, index: index.baseAddress!)
                var i = 0
                while i < count {
                    let e = scanner.pieceEnd(at: i)
                    emit(i, e)
                    i = e
                }
            }
        }
    }

    /// The scanning state: the text and the class table, as raw pointers for the hot loop.
    struct Scanner {
        let p: UnsafePointer<UInt8>
        let n: Int
        let blocks: UnsafePointer<UInt8>
        let index: UnsafePointer<UInt16>

        /// The scalar at byte offset `i` (< n) and its length in bytes. The text is valid UTF-8.
        @inline(__always)
        func scalar(_ i: Int) -> (UInt32, Int) {
            let b0 = UInt32(p[i])
            if b0 < 0x80 { return (b0, 1) }
            if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
            if b0 < 0xF0 {
                return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
            }
            return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
                    | UInt32(p[i + 3] & 0x3F), 4)
        }

        @inline(__always)
        func cls(_ cp: UInt32) -> UInt8 {
            blocks[Int(index[Int(cp >> 8)]) << 8 | Int(cp & 0xFF)]
        }

        /// Class of the scalar at `i`, and its length; (0xFF, 0) at the end of the text.
        @inline(__always)
        func classAt(_ i: Int) -> (UInt8, Int) {
            if i >= n { return (0xFF, 0) }
            let (c, l) = scalar(i)
            return (cls(c), l)
        }

        /// End of the run of letters starting at `i`.
        @inline(__always)
        func lettersEnd(_ i: Int) -> Int {
            var j = i
            while j < n {
                let (c, l) = scalar(j)
                if cls(c) & PreTokenizer.letter == 0 { break }
                j += l
            }
            return j
        }

        /// End of `[^\s\p{L}\p{N}]+[\r\n]*` starting at `i` (the first character is known to qualify).
        @inline(__always)
        func punctEnd(_ i: Int) -> Int {
            var j = i
            while j < n {
                let (c, l) = scalar(j)
                if cls(c) != 0 { break }
                j += l
            }
            while j < n && (p[j] == 0x0D || p[j] == 0x0A) { j += 1 }
            return j
        }

        /// Length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, any case) at `i`,
        /// where p[i] is an apostrophe; 0 when there is none.
        @inline(__always)
        func contraction(_ i: Int) -> Int {
            guard i + 1 < n else { return 0 }
            let a = p[i + 1] | 0x20
            switch a {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
                return p[i + 1] == a || p[i + 1] == a - 0x20 ? 2 : 0
            case UInt8(ascii: "r"), UInt8(ascii: "v"):
                guard p[i + 1] == a || p[i + 1] == a - 0x20, i + 2 < n else { return 0 }
                return p[i + 2] | 0x20 == UInt8(ascii: "e") && (p[i + 2] == 0x65 || p[i + 2] == 0x45) ? 3 : 0
            case UInt8(ascii: "l"):
                guard p[i + 1] == a || p[i + 1] == a - 0x20, i + 2 < n else { return 0 }
                return p[i + 2] == 0x6C || p[i + 2] == 0x4C ? 3 : 0
            default:
                // U+017F LATIN SMALL LETTER LONG S folds to "s".
                return p[i + 1] == 0xC5 && i + 2 < n && p[i + 2] == 0xBF ? 3 : 0
            }
        }

        /// End of the piece that starts at byte offset `i` (< n).
        @inline(__always)
        func pieceEnd(at i: Int) -> Int {
            let (c, len) = scalar(i)
            let k = cls(c)
            if c == 0x27 {                                   // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                let m = contraction(i)
                if m > 0 { return i + m }
            }
            if k & PreTokenizer.letter != 0 {                // \p{L}+
                return lettersEnd(i + len)
            }
            let (k1, _) = classAt(i + len)
            if k & (PreTokenizer.number | PreTokenizer.newline) == 0 && k1 != 0xFF && k1 & PreTokenizer.letter != 0 {
                return lettersEnd(i + len)                   // [^\r\n\p{L}\p{N}]\p{L}+
            }
            if k & PreTokenizer.number != 0 { return i + len }   // \p{N}
            if k == 0 { return punctEnd(i + len) }           // [^\s\p{L}\p{N}]+[\r\n]*
            if c == 0x20 && k1 == 0 { return punctEnd(i + 1) }   // " "[^\s\p{L}\p{N}]+[\r\n]*
            // Whitespace: find the run W = i..<j, the end of its last CR/LF and the start of its last char.
            var j = i
            var lastNewlineEnd = -1
            var lastStart = i
            while j < n {
                let (cj, lj) = scalar(j)
                let kj = cls(cj)
                if kj & PreTokenizer.space == 0 { break }
                lastStart = j
                j += lj
                if kj & PreTokenizer.newline != 0 { lastNewlineEnd = j }
            }
            if lastNewlineEnd >= 0 { return lastNewlineEnd }  // \s*[\r\n]+
            if j >= n { return j }                           // \s+(?!\S) at the end
            if lastStart > i { return lastStart }            // \s+(?!\S): all but the last
            return j                                         // \s+
        }
    }
}

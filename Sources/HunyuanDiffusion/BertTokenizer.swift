import HunyuanNN

/// transformers' slow `BertTokenizer` (v4.46) from a `tokenizer/` folder: vocab.txt (one token a
/// line, the line number is its id) and tokenizer_config.json (do_lower_case, do_basic_tokenize,
/// never_split, strip_accents, tokenize_chinese_chars, model_max_length, the special tokens).
///
/// `tokenize` follows `PreTrainedTokenizer.tokenize` + `BertTokenizer._tokenize`:
/// 1. special-token strings ([UNK] [SEP] [PAD] [CLS] [MASK] and the config's added tokens) are
///    split out whole (leftmost, longest); with do_lower_case the rest is lower-cased (Python's
///    `str.lower`, one character at a time as transformers' regex does it);
/// 2. basic tokenizer: U+0000, U+FFFD and category C* (except tab, newline, return) dropped,
///    whitespace (tab, newline, return, Zs) → space; spaces around CJK ideographs; NFC; split on
///    whitespace; per word (unless never_split) lower-case and strip accents (NFD, drop Mn); split on
///    punctuation (ASCII 33-47, 58-64, 91-96, 123-126 and every P*);
/// 3. WordPiece: greedy longest match from the left, `##` before non-initial pieces; a word longer
///    than 100 characters or with any unmatched position is one [UNK].
/// `encode` is `tokenizer(text, padding="max_length", max_length:, truncation=True)`:
/// `[CLS] + pieces[:maxLength-2] + [SEP]`, `[PAD]` up to maxLength, mask 1 on the real tokens.
///
/// Text is a Swift `String`, so it is valid Unicode: a caller holding raw bytes decides what
/// invalid UTF-8 becomes (`String(decoding:as:)` gives U+FFFD, which this tokenizer drops, as
/// Python's `errors="replace"` would). Character properties come from the Swift standard library's
/// Unicode tables, with the characters of Unicode versions after 14 treated as unassigned, as
/// Python 3.11's unicodedata (Unicode 14) sees them. Immutable and `Sendable`: share it across threads.
public struct BertTokenizer: Sendable {
    /// Token (as UTF-8 bytes, compared exactly, not up to canonical equivalence) → id.
    let vocab: [[UInt8]: Int32]
    public let cls: Int32, sep: Int32, pad: Int32, unk: Int32
    public let unkToken: String
    /// The config's model_max_length (77 for HunyuanDiT); `encode` takes its length explicitly.
    public let modelMaxLength: Int
    let doLowerCase: Bool, doBasicTokenize: Bool, tokenizeChineseChars: Bool
    /// nil: strip accents when lower-casing (transformers' default); true / false: always / never.
    let stripAccents: Bool?
    /// Strings split out of the text whole (the special and added tokens), longest first.
    let specialTokens: [[Unicode.Scalar]]
    /// The basic tokenizer's never_split: these words are neither lower-cased nor split.
    let neverSplit: Set<[Unicode.Scalar]>

    private struct Config: Decodable {
        let do_lower_case: Bool?, do_basic_tokenize: Bool?, tokenize_chinese_chars: Bool?, strip_accents: Bool?
        let never_split: [String]?
        let model_max_length: Double?
        let unk_token: TokenName?, sep_token: TokenName?, pad_token: TokenName?, cls_token: TokenName?
        let mask_token: TokenName?
        let additional_special_tokens: [TokenName]?
        let added_tokens_decoder: [String: TokenName]?
    }

    /// Loads `dir/vocab.txt` and `dir/tokenizer_config.json` (optional; BertTokenizer's defaults).
    /// Errors: `HYError.io` (no vocab.txt), `HYError.format` (vocab.txt not UTF-8, a bad config, a
    /// special token [CLS] / [SEP] / [PAD] / [UNK] — or the config's names for them — not in the vocabulary).
    public init(folder dir: String) throws {
        let vpath = FileSystem.join(dir, "vocab.txt")
        guard FileSystem.exists(vpath) else { throw HYError.io("\(dir): no vocab.txt") }
        let bytes = try FileSystem.readAll(vpath)
        guard String(validating: bytes, as: UTF8.self) != nil else { throw HYError.format("\(vpath): not UTF-8 text") }
        var v: [[UInt8]: Int32] = [:]
        var line: [UInt8] = [], index: Int32 = 0, i = 0
        while i < bytes.count {                        // Python's universal newlines: \n, \r\n, \r
            let b = bytes[i]
            if b == 0x0A || b == 0x0D {
                v[line] = index; index += 1; line = []
                if b == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A { i += 1 }
            } else {
                line.append(b)
            }
            i += 1
        }
        if !line.isEmpty { v[line] = index }
        guard !v.isEmpty else { throw HYError.format("\(vpath): empty vocabulary") }

        let cpath = FileSystem.join(dir, "tokenizer_config.json")
        let c = FileSystem.exists(cpath) ? try JSONValue.decode(Config.self, contentsOf: cpath) : nil
        func id(_ t: TokenName?, _ def: String) throws -> Int32 {
            let name = t?.content ?? def
            guard let i = v[Array(name.utf8)] else { throw HYError.format("\(dir): special token \(name) is not in vocab.txt") }
            return i
        }
        cls = try id(c?.cls_token, "[CLS]"); sep = try id(c?.sep_token, "[SEP]")
        pad = try id(c?.pad_token, "[PAD]"); unk = try id(c?.unk_token, "[UNK]")
        unkToken = c?.unk_token?.content ?? "[UNK]"
        var specials = [c?.unk_token, c?.sep_token, c?.pad_token, c?.cls_token, c?.mask_token].enumerated().map {
            $0.element?.content ?? ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"][$0.offset]
        }
        specials += (c?.additional_special_tokens ?? []).map(\.content)
        specials += (c?.added_tokens_decoder ?? [:]).values.map(\.content)
        specialTokens = Set(specials.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) })
            .sorted { $0.count > $1.count || ($0.count == $1.count && $0.lexicographicallyPrecedes($1) { $0.value < $1.value }) }
        neverSplit = Set((c?.never_split ?? []).map { Array($0.unicodeScalars) })
        doLowerCase = c?.do_lower_case ?? true
        doBasicTokenize = c?.do_basic_tokenize ?? true
        tokenizeChineseChars = c?.tokenize_chinese_chars ?? true
        stripAccents = c?.strip_accents
        let ml = c?.model_max_length ?? 512
        modelMaxLength = ml >= 2 && ml <= 1_048_576 ? Int(ml) : 512
        vocab = v
    }

    /// The WordPiece pieces of `text` (special-token strings kept whole), without [CLS] / [SEP].
    public func tokenize(_ text: String) -> [String] {
        splitAddedTokens(Array(text.unicodeScalars), specialTokens).flatMap { chunk in
            chunk.special != nil ? [Self.string(chunk.text)] : tokenizeText(doLowerCase ? Self.lower(chunk.text) : chunk.text)
        }
    }

    /// `[CLS] + ids(pieces[:maxLength-2]) + [SEP]`, padded with [PAD] to `maxLength` (at least 2);
    /// `mask` is 1 on [CLS] … [SEP] and 0 on the padding.
    public func encode(_ text: String, maxLength: Int = 77) -> (ids: [Int32], mask: [Int32]) {
        let n = max(2, maxLength)
        let body = tokenize(text).prefix(n - 2).map { vocab[Array($0.utf8)] ?? unk }
        let ids = [cls] + body + [sep]
        return (ids + [Int32](repeating: pad, count: n - ids.count),
                [Int32](repeating: 1, count: ids.count) + [Int32](repeating: 0, count: n - ids.count))
    }

    // MARK: - Steps

    /// BasicTokenizer (when do_basic_tokenize) then WordPiece of one text chunk.
    private func tokenizeText(_ t: [Unicode.Scalar]) -> [String] {
        guard doBasicTokenize else { return Self.splitWhitespace(t).flatMap(wordPiece) }
        var out: [String] = []
        for word in basicTokenize(t) {
            if neverSplit.contains(word) { out.append(Self.string(word)) } else { out += wordPiece(word) }
        }
        return out
    }

    private func basicTokenize(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var cleaned = String.UnicodeScalarView()
        for s in text {
            if s.value == 0 || s.value == 0xFFFD { continue }
            if s == "\t" || s == "\n" || s == "\r" || s == " " || s.properties.generalCategory == .spaceSeparator {
                cleaned.append(" ")
            } else if Self.isOther(s) {
                continue
            } else if tokenizeChineseChars && CLIPTokenizer.isCJK(s.value) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        var utf8 = Array(String(cleaned).utf8)
        utf8 = utf8.withUnsafeBytes { unicodeNFC($0) }
        var pieces: [[Unicode.Scalar]] = []
        for var word in Self.splitWhitespace(Array(String(decoding: utf8, as: UTF8.self).unicodeScalars)) {
            if !neverSplit.contains(word) {
                if doLowerCase {
                    word = Self.lower(word)
                    if stripAccents != false { word = Self.stripAccents(word) }
                } else if stripAccents == true {
                    word = Self.stripAccents(word)
                }
            }
            if neverSplit.contains(word) { pieces.append(word); continue }
            var cur: [Unicode.Scalar] = []
            for s in word {
                if Self.isPunctuation(s) {
                    if !cur.isEmpty { pieces.append(cur); cur = [] }
                    pieces.append([s])
                } else {
                    cur.append(s)
                }
            }
            if !cur.isEmpty { pieces.append(cur) }
        }
        return pieces.flatMap(Self.splitWhitespace)
    }

    /// WordPiece of one word: greedy longest match, `##` continuations; [UNK] for the whole word
    /// when it is longer than 100 characters or some position has no match.
    private func wordPiece(_ word: [Unicode.Scalar]) -> [String] {
        if word.count > 100 { return [unkToken] }
        let bytes = word.map { Array(String($0).utf8) }
        var out: [String] = [], start = 0
        while start < word.count {
            var end = word.count, found: [UInt8]? = nil
            while start < end {
                var sub: [UInt8] = start > 0 ? [0x23, 0x23] : []
                for k in start..<end { sub += bytes[k] }
                if vocab[sub] != nil { found = sub; break }
                end -= 1
            }
            guard let piece = found else { return [unkToken] }
            out.append(String(decoding: piece, as: UTF8.self))
            start = end
        }
        return out
    }

    // MARK: - Character classes (Python's unicodedata semantics)

    static func string(_ s: [Unicode.Scalar]) -> String { var r = ""; r.unicodeScalars.append(contentsOf: s); return r }

    /// Python's `str.split()` with no argument: runs of whitespace separate, none is kept.
    static func splitWhitespace(_ s: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        s.split(whereSeparator: isPythonSpace).map(Array.init)
    }

    /// Python's `str.isspace` (bidirectional class WS / B / S, or category Zs).
    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Category C* (control, format, surrogate, private use, unassigned) in Unicode 14, Python
    /// 3.11's version: characters the standard library knows from a later version are unassigned there.
    static func isOther(_ s: Unicode.Scalar) -> Bool {
        if isAfterUnicode14(s) { return true }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// Assigned by a Unicode version after 14 (unassigned for Python 3.11).
    static func isAfterUnicode14(_ s: Unicode.Scalar) -> Bool { (s.properties.age?.major ?? 0) > 14 }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// Python's `str.lower` of each character alone (full lower-case mapping; transformers lower-cases
    /// one character at a time, so capital sigma never takes its final form).
    static func lower(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        for c in s {
            if c.isASCII {
                out.append(c.properties.isUppercase ? Unicode.Scalar(UInt8(c.value + 32)) : c)
            } else if isAfterUnicode14(c) {
                out.append(c)
            } else {
                out += c.properties.lowercaseMapping.unicodeScalars
            }
        }
        return out
    }

    /// NFD, then every nonspacing mark (Mn) dropped.
    static func stripAccents(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if s.allSatisfy({ $0.isASCII }) { return s }
        return unicodeNFD(string(s)).filter { $0.properties.generalCategory != .nonspacingMark }
    }
}

/// `s` cut around occurrences of `tokens` (ordered longest first), as transformers' added-token trie
/// splits text: scanning left to right, the longest token starting at a position is taken whole.
/// Each chunk is either plain text (`special` nil) or the index of the token it is.
func splitAddedTokens(_ s: [Unicode.Scalar], _ tokens: [[Unicode.Scalar]]) -> [(text: [Unicode.Scalar], special: Int?)] {
    var out: [(text: [Unicode.Scalar], special: Int?)] = [], start = 0, i = 0
    while i < s.count {
        if let t = tokens.firstIndex(where: { i + $0.count <= s.count && s[i..<(i + $0.count)].elementsEqual($0) }) {
            if start < i { out.append((Array(s[start..<i]), nil)) }
            out.append((tokens[t], t))
            i += tokens[t].count; start = i
        } else {
            i += 1
        }
    }
    if start < s.count { out.append((Array(s[start...]), nil)) }
    return out
}

#if canImport(Glibc)
import Glibc
#endif

/// Hunyuan's tokenizer (Hunyuan-Large, tokenization_hy.py): byte-level BPE over the 127,957 ranks of
/// `hy.tiktoken`, then 209 special tokens from id 127957. Encoding matches tiktoken with the official
/// pattern and specials on NFC-normalized text, id for id.
///
/// Immutable after `load`: shareable across threads; every call allocates its own scratch space.
public final class Tokenizer: @unchecked Sendable {
    /// Number of mergeable (BPE) ranks; also the id of the first special token.
    public static let mergeableCount = 127_957
    public static let endOfText: Int32 = 127_957     // <|endoftext|>
    public static let startOfText: Int32 = 127_958   // <|startoftext|>
    public static let bos: Int32 = 127_959           // <|bos|>
    public static let eos: Int32 = 127_960           // <|eos|>
    public static let pad: Int32 = 127_961           // <|pad|>
    public static let extraCount = 204
    /// `<|extra_i|>`, 0 ≤ i < 204.
    public static func extra(_ i: Int) -> Int32 { Int32(127_962 + i) }

    /// Number of mergeable ranks of this vocabulary = the id of its first special token (127,957 for
    /// Hunyuan's hy.tiktoken; a smaller vocabulary trained with our tool declares its count in
    /// tokenizer_config.json as `num_mergeable_ranks`). The specials follow in the same order.
    public let firstSpecial: Int
    public var endOfText: Int32 { Int32(firstSpecial) }
    public var startOfText: Int32 { Int32(firstSpecial + 1) }
    public var eos: Int32 { Int32(firstSpecial + 3) }
    public var pad: Int32 { Int32(firstSpecial + 4) }
    /// `<|extra_i|>` of this vocabulary.
    public func extraId(_ i: Int) -> Int32 { Int32(firstSpecial + 5 + i) }
    /// Maps an id of Hunyuan's vocabulary layout (the static constants) onto this vocabulary.
    package func mapHunyuanId(_ id: Int32) -> Int32 {
        Int(id) >= Self.mergeableCount ? Int32(Int(id) - Self.mergeableCount + firstSpecial) : id
    }

    /// Ids 0..<vocabSize are valid: ranks, then specials (128,166 in all for Hunyuan's vocabulary).
    public var vocabSize: Int { firstSpecial + specialNames.count }
    /// Surface forms of the specials, index = id − firstSpecial.
    public let specialNames: [String]
    /// Where the vocabulary was read from.
    public let path: String
    /// The chat format named by the folder's tokenizer_config.json (ChatTemplate.swift).
    public let chatFormat: ChatFormat
    /// Ids that end generation: generation_config.json's `eos_token_id` when present, otherwise
    /// <|endoftext|>, <|eos|> and <|extra_5|>.
    public let stopIds: [Int32]

    package let vocab: Vocabulary
    package let specialBytes: [[UInt8]]
    let specialIds: [[UInt8]: Int32]

    init(path: String, vocab: Vocabulary, chatFormat: ChatFormat, stopIds: [Int32]) {
        var names = ["<|endoftext|>", "<|startoftext|>", "<|bos|>", "<|eos|>", "<|pad|>"]
        for i in 0..<Self.extraCount { names.append("<|extra_\(i)|>") }
        specialNames = names
        specialBytes = names.map { Array($0.utf8) }
        var ids: [[UInt8]: Int32] = [:]
        for (i, b) in specialBytes.enumerated() { ids[b] = Int32(vocab.count + i) }
        firstSpecial = vocab.count
        specialIds = ids
        self.path = path
        self.vocab = vocab
        self.chatFormat = chatFormat
        self.stopIds = stopIds
    }

    /// Loads `path`: an hy.tiktoken file or a folder holding one. tokenizer_config.json and
    /// generation_config.json next to it, when present, give the chat format and stop ids.
    /// Errors: `.io` (missing/unreadable), `.format` (corrupt vocabulary or config, with the line).
    public static func load(path given: String) throws -> Tokenizer {
        let path = try BuiltinModels.resolve(given)
        let dir: String
        let file: String
        if FileSystem.isDirectory(path) {
            dir = path
            file = FileSystem.join(path, "hy.tiktoken")
            guard FileSystem.exists(file) else { throw HYError.io("\(path): folder has no hy.tiktoken") }
        } else {
            file = path
            if let slash = path.lastIndex(of: "/") { dir = String(path[..<slash]).isEmpty ? "/" : String(path[..<slash]) } else { dir = "." }
        }
        var expected = Self.mergeableCount
        let tokConfig = FileSystem.join(dir, "tokenizer_config.json")
        if FileSystem.exists(tokConfig), let n = try JSONValue.parse(contentsOf: tokConfig)["num_mergeable_ranks"] {
            guard let c = n.intValue, c >= 256, c <= Int64(Self.mergeableCount) else {
                throw HYError.format("\(tokConfig): num_mergeable_ranks must be an integer in 256...\(Self.mergeableCount)")
            }
            expected = Int(c)
        }
        let vocab = try MappedFile(path: file).withBytes { try Vocabulary(parsing: $0, path: file, expectedCount: expected) }
        let chat = try ChatFormat.detect(folder: dir)
        let first = vocab.count
        var stops: [Int32] = [Int32(first), Int32(first + 3), Int32(first + 5 + 5)]
        let gen = FileSystem.join(dir, "generation_config.json")
        if FileSystem.exists(gen) {
            let g = try FileSystem.readAll(gen)
            let json = try g.withUnsafeBytes { try JSONValue.parse($0, context: gen) }
            if let e = json["eos_token_id"] {
                let values = e.arrayValue ?? [e]
                var ids: [Int32] = []
                for v in values {
                    guard let i = v.intValue, i >= 0, i < Int64(first + 209) else {
                        throw HYError.format("\(gen): eos_token_id must be token ids below \(first + 209)")
                    }
                    ids.append(Int32(i))
                }
                if !ids.isEmpty { stops = ids }
            }
        }
        return Tokenizer(path: file, vocab: vocab, chatFormat: chat, stopIds: stops)
    }

    // MARK: Encoding

    /// Encodes UTF-8 text: NFC, then (with `parseSpecial`) special surface forms such as `<|eos|>`
    /// become their ids, the rest is split by the pre-tokenizer and BPE-merged. `wrap` surrounds the
    /// result with <|startoftext|> … <|endoftext|> like the official encode. The official default is
    /// both on; text from an untrusted user should be encoded with `parseSpecial: false`.
    /// Invalid UTF-8 → `.invalidArgument` with the byte offset.
    public func encode(bytes: UnsafeRawBufferPointer, wrap: Bool = true, parseSpecial: Bool = true) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 2)
        if wrap { out.append(startOfText) }
        try appendEncoded(bytes, parseSpecial: parseSpecial, to: &out)
        if wrap { out.append(endOfText) }
        return out
    }

    public func encode(bytes: [UInt8], wrap: Bool = true, parseSpecial: Bool = true) throws -> [Int32] {
        try bytes.withUnsafeBytes { try encode(bytes: $0, wrap: wrap, parseSpecial: parseSpecial) }
    }

    public func encode(_ text: String, wrap: Bool = true, parseSpecial: Bool = true) throws -> [Int32] {
        var t = text
        return try t.withUTF8 { try encode(bytes: UnsafeRawBufferPointer($0), wrap: wrap, parseSpecial: parseSpecial) }
    }

    /// Ids of a plain-text generation prompt: <|startoftext|> + the text, no end marker, special
    /// surface forms not parsed (the prompt may come from an untrusted user).
    public func encodePrompt(_ text: String) throws -> [Int32] {
        var out: [Int32] = [startOfText]
        var t = text
        try t.withUTF8 { try appendEncoded(UnsafeRawBufferPointer($0), parseSpecial: false, to: &out) }
        return out
    }

    /// Appends the ids of `bytes` (no wrap) to `out`.
    public func appendEncoded(_ bytes: UnsafeRawBufferPointer, parseSpecial: Bool, to out: inout [Int32]) throws {
        var ascii = true
        for b in bytes where b >= 0x80 { ascii = false; break }
        var text: [UInt8]
        if ascii {
            text = Array(bytes)
        } else {
            let (bad, mayChange) = Self.inspectUTF8(bytes)
            if let bad { throw HYError.invalidArgument("text is not valid UTF-8 (byte offset \(bad))") }
            text = mayChange ? Self.nfc(bytes) : Array(bytes)
        }
        let n = text.count
        text.append(contentsOf: repeatElement(0, count: 8))   // hashing reads whole 8-byte words
        var scratch = BPEScratch()
        defer { scratch.release() }
        text.withUnsafeBufferPointer { tb in
            let p = tb.baseAddress!
            var segment = 0
            if parseSpecial {
                var i = 0
                while i + 1 < n {
                    if p[i] == UInt8(ascii: "<"), p[i + 1] == UInt8(ascii: "|"), let (id, end) = special(p, i, n) {
                        encodeOrdinary(p + segment, i - segment, &out, &scratch)
                        out.append(id)
                        segment = end
                        i = end
                    } else {
                        i += 1
                    }
                }
            }
            encodeOrdinary(p + segment, n - segment, &out, &scratch)
        }
    }

    /// The special token whose surface form starts at p[i] ("<|"), and the offset after it.
    private func special(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (Int32, Int)? {
        var j = i + 2
        while j < n && j < i + 20 && p[j] != UInt8(ascii: "|") { j += 1 }
        guard j + 1 < n, p[j] == UInt8(ascii: "|"), p[j + 1] == UInt8(ascii: ">") else { return nil }
        let key = Array(UnsafeBufferPointer(start: p + i, count: j + 2 - i))
        guard let id = specialIds[key] else { return nil }
        return (id, j + 2)
    }

    /// Encodes ordinary text (valid NFC UTF-8, 8 readable bytes past the end) without specials.
    @inline(__always)
    private func encodeOrdinary(_ p: UnsafePointer<UInt8>, _ n: Int, _ out: inout [Int32], _ scratch: inout BPEScratch) {
        guard n > 0 else { return }
        let v = vocab
        PreTokenizer.split(p, n) { s, e in
            v.encodePiece(p + s, e - s, &out, &scratch)
        }
    }

    /// NFC of valid UTF-8 (`unicodeNFC`, shared with the diffusion tokenizers).
    package static func nfc(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { unicodeNFC(bytes) }

    /// Validates UTF-8: the byte offset of the first invalid sequence (nil if none), and whether NFC
    /// could change the text — false when every scalar lies in ranges checked (against Python's
    /// unicodedata) to be NFC-stable: combining class 0, no canonical decomposition, never the second
    /// half of a composition. Plain CJK, kana, Hangul syllables, punctuation and emoji skip NFC.
    package static func inspectUTF8(_ b: UnsafeRawBufferPointer) -> (Int?, Bool) {
        let n = b.count
        guard let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return (nil, false) }
        var i = 0
        var mayChange = false
        while i < n {
            let c = p[i]
            if c < 0x80 { i &+= 1; continue }
            guard let (length, lo, hi) = utf8Lead(c) else { return (i, mayChange) }
            let need = length - 1
            guard i + need < n else { return (i, mayChange) }
            let c1 = p[i &+ 1]
            if c1 < lo || c1 > hi { return (i, mayChange) }
            var cp = UInt32(c) & (0x7F >> UInt32(need + 1))
            cp = cp << 6 | UInt32(c1 & 0x3F)
            var k = 2
            while k <= need {
                let ck = p[i &+ k]
                if ck & 0xC0 != 0x80 { return (i, mayChange) }
                cp = cp << 6 | UInt32(ck & 0x3F)
                k &+= 1
            }
            if !mayChange && !nfcStable(cp) { mayChange = true }
            i &+= need &+ 1
        }
        return (nil, mayChange)
    }

    /// For a UTF-8 lead byte ≥ 0x80: the sequence length (2…4) and the allowed range of the second
    /// byte (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF); nil for an invalid lead.
    @inline(__always)
    static func utf8Lead(_ c: UInt8) -> (length: Int, lo: UInt8, hi: UInt8)? {
        switch c {
        case 0xC2...0xDF: return (2, 0x80, 0xBF)
        case 0xE0: return (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE, 0xEF: return (3, 0x80, 0xBF)
        case 0xED: return (3, 0x80, 0x9F)
        case 0xF0: return (4, 0x90, 0xBF)
        case 0xF1...0xF3: return (4, 0x80, 0xBF)
        case 0xF4: return (4, 0x80, 0x8F)
        default: return nil
        }
    }

    @inline(__always)
    static func nfcStable(_ cp: UInt32) -> Bool {
        switch cp {
        case 0..<0x300, 0x2010...0x205E, 0x2190...0x2328, 0x232B...0x23FF, 0x2460...0x27BF,
             0x3001...0x3029, 0x3030...0x303F, 0x3041...0x3096, 0x30A1...0x30FA, 0x3400...0x4DBF,
             0x4E00...0x9FFF, 0xAC00...0xD7A3, 0xFF01...0xFFEF, 0x1F300...0x1FAFF:
            return true
        default:
            return false
        }
    }

    // MARK: Decoding

    /// The bytes of one token (a special's surface form for specials); nil for an id out of range.
    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        if id >= 0 && Int(id) < firstSpecial { return vocab.bytes(of: Int(id)) }
        let s = Int(id) - firstSpecial
        if s >= 0 && s < specialBytes.count { return specialBytes[s] }
        return nil
    }

    /// True for the special ids (firstSpecial …).
    public func isSpecial(_ id: Int32) -> Bool {
        Int(id) >= firstSpecial && Int(id) < vocabSize
    }

    /// Concatenated token bytes. An id out of range → `.invalidArgument` naming it and its position.
    public func decode(_ ids: [Int32]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for (k, id) in ids.enumerated() {
            guard let b = tokenBytes(id) else {
                throw HYError.invalidArgument("token id \(id) at position \(k) is out of range (vocabulary has \(vocabSize))")
            }
            out.append(contentsOf: b)
        }
        return out
    }

    /// Decoded text; invalid UTF-8 (a character cut between ids) becomes U+FFFD, as the official
    /// decode does with errors="replace".
    public func decodeText(_ ids: [Int32]) throws -> String {
        String(decoding: try decode(ids), as: UTF8.self)
    }
}

/// Turns a stream of ids into text without ever emitting half a UTF-8 character: bytes of an
/// incomplete character wait for the next ids; a sequence that cannot become valid is emitted as
/// U+FFFD. One per stream; not shareable across threads (it is a value type).
public struct StreamingDetokenizer {
    public let tokenizer: Tokenizer
    /// When true, special tokens produce no text.
    public var skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// The text completed by `id` ("" while a character is still incomplete). An unknown id gives
    /// U+FFFD.
    public mutating func push(_ id: Int32) -> String {
        if skipSpecial && tokenizer.isSpecial(id) { return "" }
        guard let b = tokenizer.tokenBytes(id) else { return flush() + "\u{FFFD}" }
        pending.append(contentsOf: b)
        let keep = Self.incompleteTail(pending)
        let cut = pending.count - keep
        if cut == 0 { return "" }
        let s = String(decoding: pending[0..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return s
    }

    /// Whatever is pending (an incomplete character becomes U+FFFD); resets the stream.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the trailing bytes that are a valid but incomplete UTF-8 sequence (0…3).
    static func incompleteTail(_ b: [UInt8]) -> Int {
        let n = b.count
        var k = n - 1
        while k >= 0 && k >= n - 3 && b[k] & 0xC0 == 0x80 { k -= 1 }
        guard k >= 0 && k >= n - 3 else { return 0 }
        let lead = b[k]
        let have = n - k
        guard let (need, lo, hi) = Tokenizer.utf8Lead(lead) else { return 0 }
        guard have < need else { return 0 }
        if have >= 2 && (b[k + 1] < lo || b[k + 1] > hi) { return 0 }
        return have
    }
}

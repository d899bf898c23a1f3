import HunyuanNN

/// transformers' `CLIPTokenizer` (the slow one, without ftfy) from a `tokenizer/` folder:
/// vocab.json, merges.txt, tokenizer_config.json (model_max_length, bos/eos/pad/unk tokens).
/// Text → BERT-style basic clean-up (control characters dropped, whitespace collapsed, CJK
/// characters split) and lower-casing → CLIP's pre-tokenizer pattern (`<|startoftext|>`,
/// `<|endoftext|>`, 's 't 're 've 'm 'll 'd, runs of letters, single digits, runs of other
/// non-space characters) → GPT-2 byte-to-unicode → BPE with `</w>` on each word's last symbol.
/// `encode` frames the ids as `[bos] + ids + [eos]`, truncated to `maxLength` keeping eos, and
/// padded with the pad id (`padding="max_length"`, as the diffusion pipelines call it). Immutable.
public struct CLIPTokenizer: Sendable {
    public let vocab: [String: Int32]
    public let ranks: [Pair: Int]
    public let bos: Int32, eos: Int32, pad: Int32, unk: Int32
    public let maxLength: Int

    public struct Pair: Hashable, Sendable { let a: String, b: String }

    private struct TokenizerConfig: Decodable {
        let model_max_length: Double?
        let bos_token: TokenName?, eos_token: TokenName?, pad_token: TokenName?, unk_token: TokenName?
    }
    public init(folder dir: String) throws {
        let vpath = FileSystem.join(dir, "vocab.json"), mpath = FileSystem.join(dir, "merges.txt")
        guard FileSystem.exists(vpath), FileSystem.exists(mpath) else { throw HYError.io("\(dir): no vocab.json / merges.txt") }
        guard let vobj = try JSONValue.parse(contentsOf: vpath).objectValue else { throw HYError.format("\(vpath): not an object") }
        var v: [String: Int32] = [:]
        for (k, val) in vobj {
            guard let i = val.intValue, i >= 0, i < Int64(Int32.max) else { throw HYError.format("\(vpath): bad id for \(k)") }
            v[k] = Int32(i)
        }
        let mtext = try MappedFile(path: mpath).withBytes { String(decoding: $0, as: UTF8.self) }
        var r: [Pair: Int] = [:]
        for line in mtext.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) where !line.hasPrefix("#version") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            let p = Pair(a: String(parts[0]), b: String(parts[1]))
            if r[p] == nil { r[p] = r.count }
        }
        let cpath = FileSystem.join(dir, "tokenizer_config.json")
        let c = FileSystem.exists(cpath) ? try JSONValue.decode(TokenizerConfig.self, contentsOf: cpath) : nil
        func id(_ t: TokenName?, _ def: String) throws -> Int32 {
            let name = t?.content ?? def
            guard let i = v[name] else { throw HYError.format("\(dir): special token \(name) is not in vocab.json") }
            return i
        }
        let eosID = try id(c?.eos_token, "<|endoftext|>")
        bos = try id(c?.bos_token, "<|startoftext|>"); eos = eosID
        unk = try id(c?.unk_token, "<|endoftext|>")
        pad = c?.pad_token == nil ? eosID : try id(c?.pad_token, "")
        let ml = c?.model_max_length ?? 77
        maxLength = ml >= 2 && ml <= 4096 ? Int(ml) : 77
        vocab = v; ranks = r
    }

    /// GPT-2's reversible byte → printable character map.
    static let byteEncoder: [Character] = {
        var bs: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) { bs.append(b); cs.append(256 + n); n += 1 }
        var map = [Character](repeating: " ", count: 256)
        for (b, c) in zip(bs, cs) { map[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return map
    }()

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// BERT's basic clean-up + lower-casing, words joined by single spaces.
    static func normalize(_ text: String) -> String {
        var words: [String] = [], cur = ""
        func flush() { if !cur.isEmpty { words.append(cur); cur = "" } }
        for s in text.unicodeScalars {
            let v = s.value
            if v == 0 || v == 0xFFFD { continue }
            let ws = s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
            if ws { flush(); continue }
            if s.properties.generalCategory == .control || s.properties.generalCategory == .format { continue }
            if isCJK(v) { flush(); words.append(String(s)); continue }
            cur.unicodeScalars.append(s)
        }
        flush()
        return words.joined(separator: " ").lowercased()
    }

    /// CLIP's pre-tokenizer pattern over normalized text.
    static func pieces(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var out: [String] = []
        var i = 0
        func str(_ a: Int, _ b: Int) -> String { var r = ""; r.unicodeScalars.append(contentsOf: s[a..<b]); return r }
        func matches(_ lit: String, at k: Int) -> Bool {
            let l = Array(lit.unicodeScalars)
            return k + l.count <= s.count && Array(s[k..<(k + l.count)]) == l
        }
        while i < s.count {
            if s[i] == " " { i += 1; continue }
            if let sp = ["<|startoftext|>", "<|endoftext|>"].first(where: { matches($0, at: i) }) {
                out.append(sp); i += sp.unicodeScalars.count; continue
            }
            if s[i] == "'", let c = ["s", "t", "re", "ve", "m", "ll", "d"].first(where: { matches("'" + $0, at: i) }) {
                out.append("'" + c); i += 1 + c.count; continue
            }
            var j = i
            if isLetter(s[i]) {
                while j < s.count && isLetter(s[j]) { j += 1 }
            } else if isNumber(s[i]) {
                j += 1
            } else {
                while j < s.count && s[j] != " " && !isLetter(s[j]) && !isNumber(s[j]) { j += 1 }
            }
            out.append(str(i, j)); i = j
        }
        return out
    }

    /// BPE of one pre-token (already byte-encoded); `</w>` marks the last symbol.
    func bpe(_ token: String) -> [String] {
        var word = token.map { String($0) }
        guard !word.isEmpty else { return [] }
        word[word.count - 1] += "</w>"
        while word.count > 1 {
            var best = Int.max, at = -1
            for k in 0..<(word.count - 1) {
                if let r = ranks[Pair(a: word[k], b: word[k + 1])], r < best { best = r; at = k }
            }
            if at < 0 { break }
            let a = word[at], b = word[at + 1]
            var merged: [String] = []
            var k = 0
            while k < word.count {
                if k < word.count - 1 && word[k] == a && word[k + 1] == b { merged.append(a + b); k += 2 } else { merged.append(word[k]); k += 1 }
            }
            word = merged
        }
        return word
    }

    /// The ids of `text` without framing (unknown symbols → unk).
    public func tokenize(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for p in Self.pieces(Self.normalize(text)) {
            if p == "<|startoftext|>" || p == "<|endoftext|>" { ids.append(vocab[p] ?? unk); continue }
            let enc = String(p.utf8.map { Self.byteEncoder[Int($0)] })
            for sym in bpe(enc) { ids.append(vocab[sym] ?? unk) }
        }
        return ids
    }

    /// `[bos] + ids + [eos]`, truncated to `length` (default `maxLength`) and padded with `pad`.
    public func encode(_ text: String, length: Int? = nil) -> [Int32] {
        let n = max(2, length ?? maxLength)
        let body = tokenize(text).prefix(n - 2)
        var ids = [bos] + body + [eos]
        while ids.count < n { ids.append(pad) }
        return ids
    }
}

/// A special token of a tokenizer_config.json, given as a string or as `{"content": …}`.
struct TokenName: Decodable, Sendable {
    let content: String
    init(from d: Decoder) throws {
        if let s = try? d.singleValueContainer().decode(String.self) { content = s; return }
        enum K: String, CodingKey { case content }
        content = try d.container(keyedBy: K.self).decode(String.self, forKey: .content)
    }
}

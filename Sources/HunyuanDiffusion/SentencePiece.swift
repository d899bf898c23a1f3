import HunyuanNN

/// A SentencePiece unigram model read from a `.model` file (a `ModelProto`), encoding text exactly
/// as sentencepiece 0.2's `SentencePieceProcessor.encode` does (no bos / eos, no sampling):
/// 1. normalization by the model's `precompiled_charsmap` (for mT5 `nmt_nfkc`: NFKC plus whitespace
///    rules): a longest-prefix match over the UTF-8 text in the charsmap's double-array trie, each
///    match replaced by its NUL-terminated string; user-defined pieces pass through unchanged;
///    elsewhere a character is copied;
/// 2. whitespace: with remove_extra_whitespaces, leading, trailing and repeated spaces go; with
///    add_dummy_prefix a space is put in front (behind with treat_whitespace_as_suffix); with
///    escape_whitespaces every space becomes `▁` (U+2581);
/// 3. unigram Viterbi over the pieces (NORMAL, USER_DEFINED, UNUSED; the best sum of float scores,
///    user-defined pieces preferred, unused ones skipped — sentencepiece's optimized encoder); a
///    character no piece covers is `<unk>` (score min − 10), which with byte_fallback becomes one
///    `<0xXX>` piece per UTF-8 byte.
///
/// Only model_type unigram is implemented. Text is a Swift `String`, hence valid UTF-8 (callers
/// with raw bytes choose how to decode them). Immutable and `Sendable`: share it across threads.
public struct SentencePieceModel: Sendable {
    public enum PieceType: Int, Sendable { case normal = 1, unknown, control, userDefined, unused, byte }
    public struct Piece: Sendable {
        public var piece: String
        public var score: Float
        public var type: PieceType
    }

    public let pieces: [Piece]
    /// Id of the UNKNOWN piece (exactly one is required).
    public let unkID: Int32
    public let byteFallback: Bool
    public let addDummyPrefix: Bool, removeExtraWhitespaces: Bool, escapeWhitespaces: Bool
    public let treatWhitespaceAsSuffix: Bool
    /// The normalizer_spec's name (informational: the charsmap is what normalizes).
    public let normalizerName: String
    let charsMap: CharsMap?
    /// NORMAL / USER_DEFINED / UNUSED pieces by their bytes (Viterbi), user-defined ones alone (normalizer).
    let trie: ByteTrie, userTrie: ByteTrie
    /// Every piece's id by its bytes.
    let ids: [[UInt8]: Int32]
    /// `<0x00>` … `<0xFF>` ids when byte_fallback is on.
    let byteIDs: [Int32]
    let minScore: Float, maxScore: Float

    /// Reads a `.model` file. Errors: `HYError.io` (unreadable), `HYError.format` (not a well-formed
    /// ModelProto: truncated or corrupt protobuf, an empty or repeated piece, no or two UNKNOWN
    /// pieces, byte pieces without byte_fallback or byte_fallback without all 256 of them, a broken
    /// precompiled_charsmap), `HYError.unsupported` (a model_type other than unigram).
    public init(path: String) throws {
        let bytes = try FileSystem.readAll(path)
        var pieces: [Piece] = []
        var modelType = 1, byteFallback = false, suffix = false
        var name = "", charsmap: [UInt8] = [], dummy = true, removeWS = true, escapeWS = true
        try bytes.withUnsafeBytes { raw in
            var r = ProtobufReader(raw, 0, raw.count, "\(path): malformed SentencePiece model")
            while let (field, wire) = try r.key() {
                switch (field, wire) {
                case (1, 2):                                   // ModelProto.pieces
                    var p = try r.sub()
                    var piece = Piece(piece: "", score: 0, type: .normal)
                    while let (f, w) = try p.key() {
                        switch (f, w) {
                        case (1, 2): piece.piece = try p.string()
                        case (2, 5): piece.score = Float(bitPattern: try p.fixed32())
                        case (3, 0): piece.type = PieceType(rawValue: try p.int()) ?? .normal
                        default: try p.skip(w)
                        }
                    }
                    pieces.append(piece)
                case (2, 2):                                   // ModelProto.trainer_spec
                    var t = try r.sub()
                    while let (f, w) = try t.key() {
                        switch (f, w) {
                        case (3, 0): modelType = try t.int()
                        case (24, 0): suffix = try t.bool()
                        case (35, 0): byteFallback = try t.bool()
                        default: try t.skip(w)
                        }
                    }
                case (3, 2):                                   // ModelProto.normalizer_spec
                    var n = try r.sub()
                    while let (f, w) = try n.key() {
                        switch (f, w) {
                        case (1, 2): name = try n.string()
                        case (2, 2): charsmap = try n.bytes()
                        case (3, 0): dummy = try n.bool()
                        case (4, 0): removeWS = try n.bool()
                        case (5, 0): escapeWS = try n.bool()
                        default: try n.skip(w)
                        }
                    }
                default:
                    try r.skip(wire)
                }
            }
        }
        guard modelType == 1 else {
            let names = [2: "BPE", 3: "WORD", 4: "CHAR"]
            throw HYError.unsupported("\(path): SentencePiece model_type \(names[modelType] ?? String(modelType)) is not supported (only UNIGRAM)")
        }
        guard !pieces.isEmpty, pieces.count < Int(Int32.max) else { throw HYError.format("\(path): no pieces") }

        var ids: [[UInt8]: Int32] = [:], trie = ByteTrie(), userTrie = ByteTrie()
        var unk: Int32? = nil, byteIDs = [Int32](repeating: -1, count: 256)
        var minScore = Float.greatestFiniteMagnitude, maxScore = Float.leastNormalMagnitude
        for (i, p) in pieces.enumerated() {
            let key = Array(p.piece.utf8), id = Int32(i)
            guard !key.isEmpty else { throw HYError.format("\(path): piece \(i) is empty") }
            guard ids.updateValue(id, forKey: key) == nil else { throw HYError.format("\(path): piece \(p.piece) is defined twice") }
            switch p.type {
            case .normal, .userDefined, .unused:
                trie.insert(key, id)
                if p.type == .userDefined { userTrie.insert(key, id) }
                if p.type == .normal { minScore = min(minScore, p.score); maxScore = max(maxScore, p.score) }
            case .unknown:
                guard unk == nil else { throw HYError.format("\(path): two UNKNOWN pieces (\(unk ?? 0) and \(i))") }
                unk = id
            case .byte:
                guard byteFallback else { throw HYError.format("\(path): byte piece \(p.piece) although byte_fallback is false") }
                guard let b = Self.pieceByte(key) else { throw HYError.format("\(path): byte piece \(p.piece) is not <0xXX>") }
                byteIDs[Int(b)] = id
            case .control:
                break
            }
        }
        guard let unk else { throw HYError.format("\(path): no UNKNOWN piece") }
        if byteFallback, let b = byteIDs.firstIndex(of: -1) {
            throw HYError.format("\(path): byte_fallback is true but there is no byte piece for 0x\(String(b, radix: 16, uppercase: true))")
        }
        self.pieces = pieces; self.ids = ids; self.trie = trie; self.userTrie = userTrie
        self.unkID = unk; self.byteIDs = byteIDs; self.byteFallback = byteFallback
        self.minScore = minScore; self.maxScore = maxScore
        self.addDummyPrefix = dummy; self.removeExtraWhitespaces = removeWS; self.escapeWhitespaces = escapeWS
        self.treatWhitespaceAsSuffix = suffix; self.normalizerName = name
        self.charsMap = charsmap.isEmpty ? nil : try CharsMap(charsmap, context: path)
    }

    /// The id of `piece` (exact bytes), nil if the model has no such piece.
    public func id(of piece: String) -> Int32? { ids[Array(piece.utf8)] }

    /// The normalized text as sentencepiece's normalizer gives it (UTF-8 bytes; spaces as `▁` when escaping).
    public func normalize(_ text: String) -> [UInt8] { normalize(bytes: Array(text.utf8)) }

    /// The pieces of `text` and their ids.
    public func encode(_ text: String) -> [(piece: String, id: Int32)] {
        let s = normalize(text)
        var out: [(String, Int32)] = []
        for (lo, hi, id) in viterbi(s) {
            if id == unkID && byteFallback {
                for b in s[lo..<hi] { out.append((Self.bytePiece(b), byteIDs[Int(b)])) }
            } else {
                out.append((String(decoding: s[lo..<hi], as: UTF8.self), id))
            }
        }
        return out
    }

    // MARK: - Normalizer

    func normalize(bytes input: [UInt8]) -> [UInt8] {
        let space: [UInt8] = escapeWhitespaces ? [0xE2, 0x96, 0x81] : [0x20]
        var out: [UInt8] = [], i = 0
        if removeExtraWhitespaces {                       // leading spaces (after normalization) go
            while i < input.count {
                let (rep, n) = normalizePrefix(input, i)
                guard rep.elementsEqual([0x20]) else { break }
                i += n
            }
        }
        if i == input.count { return [] }
        if addDummyPrefix && !treatWhitespaceAsSuffix { out += space }
        var prevSpace = removeExtraWhitespaces
        while i < input.count {
            let (rep, n) = normalizePrefix(input, i)
            var sp = rep[...]
            while prevSpace && sp.first == 0x20 { sp = sp.dropFirst() }
            if !sp.isEmpty {
                for b in sp { if escapeWhitespaces && b == 0x20 { out += space } else { out.append(b) } }
                prevSpace = sp.last == 0x20
            }
            i += n
            if !removeExtraWhitespaces { prevSpace = false }
        }
        if removeExtraWhitespaces {
            while out.count >= space.count && out[(out.count - space.count)...].elementsEqual(space) {
                out.removeLast(space.count)
            }
        }
        if addDummyPrefix && treatWhitespaceAsSuffix { out += space }
        return out
    }

    /// The replacement of the longest rule at `input[i...]` and how many bytes it consumes:
    /// a user-defined piece as is, else the charsmap's longest match, else one character copied
    /// (malformed UTF-8: U+FFFD for one byte, as sentencepiece does).
    private func normalizePrefix(_ input: [UInt8], _ i: Int) -> ([UInt8], Int) {
        if let n = userTrie.longestMatch(input, i) { return (Array(input[i..<(i + n)]), n) }
        if let m = charsMap?.longestMatch(input, i) { return m }
        if let n = Self.utf8Length(input, i) { return (Array(input[i..<(i + n)]), n) }
        return ([0xEF, 0xBF, 0xBD], 1)
    }

    /// The length of the well-formed UTF-8 character at `s[i]`, nil if malformed.
    static func utf8Length(_ s: [UInt8], _ i: Int) -> Int? {
        let b = s[i]
        let n = b < 0x80 ? 1 : b >= 0xC2 && b < 0xE0 ? 2 : b >= 0xE0 && b < 0xF0 ? 3 : b >= 0xF0 && b < 0xF5 ? 4 : 0
        guard n > 0, i + n <= s.count else { return nil }
        return String(validating: s[i..<(i + n)], as: UTF8.self) != nil ? n : nil
    }

    // MARK: - Unigram Viterbi

    /// sentencepiece's `Model::EncodeOptimized`: the best path over byte positions, each end
    /// keeping its best (score, start, id); pieces of a position tried shortest first and a later
    /// candidate kept only when strictly better. Returns (start, end, id) segments.
    func viterbi(_ s: [UInt8]) -> [(Int, Int, Int32)] {
        let n = s.count
        if n == 0 { return [] }
        let unkScore = minScore - 10
        var score = [Float](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var idAt = [Int32](repeating: -1, count: n + 1)
        var start = 0
        while start < n {
            let base = score[start]
            let charLen = min(Self.oneCharLen(s[start]), n - start)
            var hasSingle = false
            var node = 0, k = start
            while k < n, let next = trie.child(node, s[k]) {
                node = next; k += 1
                let id = trie.value(node)
                guard id >= 0 && pieces[Int(id)].type != .unused else { continue }
                let length = k - start
                // As sentencepiece computes it: float sums, a user-defined piece's bonus in double.
                let candidate = pieces[Int(id)].type == .userDefined
                    ? Double(Float(length) * maxScore) - 0.1 + Double(base) : Double(pieces[Int(id)].score + base)
                if from[k] == -1 || candidate > Double(score[k]) { score[k] = Float(candidate); from[k] = start; idAt[k] = id }
                if length == charLen { hasSingle = true }
            }
            if !hasSingle {
                let e = start + charLen, candidate = unkScore + base
                if from[e] == -1 || candidate > score[e] { score[e] = candidate; from[e] = start; idAt[e] = unkID }
            }
            start += charLen
        }
        var out: [(Int, Int, Int32)] = [], end = n
        while end > 0 {
            let lo = from[end]
            guard lo >= 0 && lo < end else { break }   // unreachable: every character start is reached
            out.append((lo, end, idAt[end])); end = lo
        }
        return out.reversed()
    }

    /// sentencepiece's `OneCharLen`: the length a UTF-8 lead byte announces (1 for a stray byte).
    static func oneCharLen(_ b: UInt8) -> Int { [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][Int(b >> 4)] }

    static func bytePiece(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (b < 16 ? "0" : "") + hex + ">"
    }
    /// The byte of a `<0xXX>` piece.
    static func pieceByte(_ key: [UInt8]) -> UInt8? {
        guard key.count == 6, key.starts(with: Array("<0x".utf8)), key[5] == 0x3E else { return nil }
        return UInt8(String(decoding: key[3..<5], as: UTF8.self), radix: 16)
    }
}

/// A byte trie: each node's children in one dictionary keyed by (node, byte); a value per node.
struct ByteTrie: Sendable {
    private var edges: [Int: Int32] = [:]
    private var values: [Int32] = [-1]

    mutating func insert(_ key: [UInt8], _ id: Int32) {
        var node = 0
        for b in key {
            if let c = edges[node << 8 | Int(b)] { node = Int(c); continue }
            values.append(-1)
            edges[node << 8 | Int(b)] = Int32(values.count - 1)
            node = values.count - 1
        }
        values[node] = id
    }
    func child(_ node: Int, _ b: UInt8) -> Int? { edges[node << 8 | Int(b)].map(Int.init) }
    func value(_ node: Int) -> Int32 { values[node] }

    /// The byte length of the longest key that is a prefix of `s[i...]`.
    func longestMatch(_ s: [UInt8], _ i: Int) -> Int? {
        if edges.isEmpty { return nil }
        var node = 0, k = i, best: Int? = nil
        while k < s.count, let c = child(node, s[k]) {
            node = c; k += 1
            if values[node] >= 0 { best = k - i }
        }
        return best
    }
}

/// sentencepiece's precompiled charsmap: a little-endian uint32 byte size of a Darts-clone double
/// array, the array (uint32 units), then the NUL-separated replacement strings its values point into.
struct CharsMap: Sendable {
    let units: [UInt32]
    let strings: [UInt8]

    init(_ blob: [UInt8], context: String) throws {
        guard blob.count > 4 else { throw HYError.format("\(context): precompiled_charsmap is broken (\(blob.count) bytes)") }
        let size = Int(Self.le32(blob, 0))
        guard size <= blob.count - 4 else {
            throw HYError.format("\(context): precompiled_charsmap's trie (\(size) bytes) exceeds the blob (\(blob.count))")
        }
        units = (0..<(size / 4)).map { Self.le32(blob, 4 + 4 * $0) }
        strings = Array(blob[(4 + size)...])
    }

    /// Darts' `commonPrefixSearch` from `s[i]`, keeping the longest match: its replacement and
    /// length. Indices outside the array or the strings end the search (a corrupt map never traps).
    func longestMatch(_ s: [UInt8], _ i: Int) -> ([UInt8], Int)? {
        guard let root = units.first else { return nil }
        var id = Self.offset(root), best: (Int, Int)? = nil
        var k = i
        while k < s.count {
            id ^= Int(s[k])
            guard id < units.count else { break }
            let u = units[id]
            guard u & 0x8000_00FF == UInt32(s[k]) else { break }   // label
            id ^= Self.offset(u)
            k += 1
            if (u >> 8) & 1 == 1, id < units.count {                // has_leaf
                let value = Int(units[id] & 0x7FFF_FFFF)
                if value < strings.count { best = (value, k - i) }
            }
        }
        guard let (value, length) = best else { return nil }
        let end = strings[value...].firstIndex(of: 0) ?? strings.count
        return (Array(strings[value..<end]), length)
    }

    /// The little-endian uint32 at `b[at]` (the caller checks the bounds).
    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in (0..<4).reversed() { v = v << 8 | UInt32(b[at + k]) }
        return v
    }

    static func offset(_ u: UInt32) -> Int { Int(u >> 10) << Int((u & (1 << 9)) >> 6) }
}

/// transformers' slow `T5Tokenizer` (v4.46, `legacy: true`) over a `tokenizer_2/` folder:
/// spiece.model and tokenizer_config.json (eos / pad / unk tokens, additional special tokens,
/// added_tokens_decoder). Special-token strings in the text (`</s>`, `<pad>`, `<unk>`, …) are split
/// out whole; every other chunk is `sp.encode(chunk)`. `encode` is
/// `tokenizer(text, padding="max_length", max_length:, truncation=True)`: the ids truncated to
/// `maxLength − 1`, `</s>` appended (unless the ids already end with it, as T5 does), `<pad>` up to
/// `maxLength`, mask 1 on everything but the padding. Immutable and `Sendable`.
public struct T5Tokenizer: Sendable {
    public let model: SentencePieceModel
    public let eos: Int32, pad: Int32, unk: Int32
    /// Special-token strings and their ids, longest first.
    let specials: [(text: [Unicode.Scalar], id: Int32)]

    private struct Config: Decodable {
        let eos_token: TokenName?, pad_token: TokenName?, unk_token: TokenName?
        let additional_special_tokens: [TokenName]?
        let added_tokens_decoder: [String: TokenName]?
    }

    /// Loads `dir/spiece.model` and `dir/tokenizer_config.json` (optional: `</s>`, `<pad>`, `<unk>`).
    /// Errors: those of `SentencePieceModel(path:)`, `HYError.io` (no spiece.model), `HYError.format`
    /// (a bad config; a special token that is neither in added_tokens_decoder nor a piece).
    public init(folder dir: String) throws {
        let mpath = FileSystem.join(dir, "spiece.model")
        guard FileSystem.exists(mpath) else { throw HYError.io("\(dir): no spiece.model") }
        let m = try SentencePieceModel(path: mpath)
        let cpath = FileSystem.join(dir, "tokenizer_config.json")
        let c = FileSystem.exists(cpath) ? try JSONValue.decode(Config.self, contentsOf: cpath) : nil
        var added: [String: Int32] = [:]
        for (k, t) in c?.added_tokens_decoder ?? [:] {
            guard let i = Int32(k), i >= 0 else { throw HYError.format("\(cpath): added_tokens_decoder key \(k) is not an id") }
            added[t.content] = i
        }
        func id(_ name: String) throws -> Int32 {
            guard let i = added[name] ?? m.id(of: name) else { throw HYError.format("\(dir): special token \(name) is not a piece of spiece.model") }
            return i
        }
        let eosName = c?.eos_token?.content ?? "</s>", padName = c?.pad_token?.content ?? "<pad>"
        let unkName = c?.unk_token?.content ?? "<unk>"
        eos = try id(eosName); pad = try id(padName); unk = try id(unkName)
        let names = Set([eosName, padName, unkName] + (c?.additional_special_tokens ?? []).map(\.content) + added.keys)
        specials = try names.filter { !$0.isEmpty }.map { (Array($0.unicodeScalars), try id($0)) }
            .sorted { $0.text.count > $1.text.count || ($0.text.count == $1.text.count && $0.id < $1.id) }
        model = m
    }

    /// The pieces of `text` (special-token strings kept whole), without `</s>`.
    public func tokenize(_ text: String) -> [String] { pieces(text).map(\.piece) }

    /// `ids(text[:maxLength-1]) + [</s>]`, padded with `<pad>` to `maxLength` (at least 1); `mask` is
    /// 1 on the pieces and `</s>`, 0 on the padding.
    public func encode(_ text: String, maxLength: Int = 256) -> (ids: [Int32], mask: [Int32]) {
        let n = max(1, maxLength)
        var ids = Array(pieces(text).prefix(n - 1).map(\.id))
        if ids.last != eos { ids.append(eos) }
        return (ids + [Int32](repeating: pad, count: n - ids.count),
                [Int32](repeating: 1, count: ids.count) + [Int32](repeating: 0, count: n - ids.count))
    }

    private func pieces(_ text: String) -> [(piece: String, id: Int32)] {
        splitAddedTokens(Array(text.unicodeScalars), specials.map(\.text)).flatMap { chunk in
            chunk.special.map { [(BertTokenizer.string(chunk.text), specials[$0].id)] }
                ?? model.encode(BertTokenizer.string(chunk.text))
        }
    }
}

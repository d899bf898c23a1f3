import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// Trains a small byte-level BPE in Hunyuan's format: text is NFC-normalized and split by Hunyuan's
/// pre-tokenizer (the official regex, PreTokenizer.swift), the 256 single bytes are ranks 0..<256 and
/// every merge of the most frequent adjacent pair (ties: smallest pair of ids) becomes the next rank.
/// The result is written as `hy.tiktoken` (`base64(bytes) rank` per line), the file Hunyuan's
/// tokenizer reads. Pair counts are updated incrementally (only words holding the merged pair are
/// revisited) with a lazily-invalidated max-heap, so 8k merges over a few MB take seconds.
public enum TokenizerTrainer {
    /// Ranks (token byte strings, index = rank) learned from `texts` up to `vocabSize` ranks (≥ 256).
    /// `progress(merges done)` is called every 256 merges on the calling thread.
    public static func train(texts: [[UInt8]], vocabSize: Int, progress: ((Int) -> Void)? = nil) throws -> [[UInt8]] {
        guard vocabSize >= 256 else { throw HYError.invalidArgument("vocabulary size \(vocabSize) must be at least 256") }
        // Unique pieces with counts.
        var pieceCount: [[UInt8]: Int] = [:]
        for text in texts {
            let norm = try normalized(text)
            norm.withUnsafeBufferPointer { b in
                PreTokenizer.split(b.baseAddress!, norm.count - 8) { s, e in
                    pieceCount[Array(b[s..<e]), default: 0] += 1
                }
            }
        }
        var words: [[Int32]] = []
        var counts: [Int] = []
        for (p, c) in pieceCount.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) where p.count > 1 {
            words.append(p.map { Int32($0) })
            counts.append(c)
        }
        var ranks: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        @inline(__always) func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
        var pairCount: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        for (w, sym) in words.enumerated() {
            for i in 0..<(sym.count - 1) {
                let k = key(sym[i], sym[i + 1])
                pairCount[k, default: 0] += counts[w]
                pairWords[k, default: []].append(Int32(w))
            }
        }
        var heap = MaxHeap()
        for (k, c) in pairCount { heap.push(c, k) }
        var lastSeen = [Int](repeating: -1, count: words.count)
        while ranks.count < vocabSize {
            guard let (c, k) = heap.pop() else { break }
            guard let cur = pairCount[k], cur == c, c > 0 else { continue }   // stale entry
            let a = Int32(truncatingIfNeeded: k >> 32), b = Int32(truncatingIfNeeded: k & 0xFFFF_FFFF)
            let newId = Int32(ranks.count)
            ranks.append(ranks[Int(a)] + ranks[Int(b)])
            var touched: [UInt64: Int] = [:]
            for wi in pairWords[k] ?? [] {
                let w = Int(wi)
                if lastSeen[w] == Int(newId) { continue }
                lastSeen[w] = Int(newId)
                let sym = words[w]
                var hasPair = false
                for i in 0..<(sym.count - 1) where sym[i] == a && sym[i + 1] == b { hasPair = true; break }
                if !hasPair { continue }
                let cnt = counts[w]
                for i in 0..<(sym.count - 1) { touched[key(sym[i], sym[i + 1]), default: 0] -= cnt }
                var merged: [Int32] = []
                merged.reserveCapacity(sym.count)
                var i = 0
                while i < sym.count {
                    if i + 1 < sym.count && sym[i] == a && sym[i + 1] == b { merged.append(newId); i += 2 } else { merged.append(sym[i]); i += 1 }
                }
                words[w] = merged
                for i in 0..<max(0, merged.count - 1) {
                    let nk = key(merged[i], merged[i + 1])
                    touched[nk, default: 0] += cnt
                    if merged[i] == newId || merged[i + 1] == newId { pairWords[nk, default: []].append(Int32(w)) }
                }
            }
            for (tk, delta) in touched where delta != 0 {
                let v = (pairCount[tk] ?? 0) + delta
                pairCount[tk] = v
                if v > 0 { heap.push(v, tk) }
            }
            pairCount[k] = 0
            pairWords[k] = nil
            if ranks.count % 256 == 0 { progress?(ranks.count - 256) }
        }
        return ranks
    }

    /// NFC-normalized valid UTF-8 with 8 zero bytes appended (the pre-tokenizer's contract).
    static func normalized(_ text: [UInt8]) throws -> [UInt8] {
        var out = try text.withUnsafeBytes { b -> [UInt8] in
            let (bad, mayChange) = Tokenizer.inspectUTF8(b)
            if let bad { throw HYError.invalidArgument("text is not valid UTF-8 (byte offset \(bad))") }
            return mayChange ? Tokenizer.nfc(b) : Array(b)
        }
        out.append(contentsOf: repeatElement(0, count: 8))
        return out
    }

    /// Writes ranks as hy.tiktoken (`base64 rank` lines), atomically.
    public static func write(ranks: [[UInt8]], to path: String) throws {
        var text: [UInt8] = []
        for (i, r) in ranks.enumerated() {
            text.append(contentsOf: base64(r))
            text.append(0x20)
            text.append(contentsOf: String(i).utf8)
            text.append(0x0A)
        }
        try FileSystem.writeAtomically(path, overwrite: true) { w in try text.withUnsafeBytes { try w($0) } }
    }

    /// Writes tokenizer_config.json in `folder`, declaring the rank count of its hy.tiktoken
    /// (`num_mergeable_ranks`): Tokenizer.load needs it for any vocabulary other than Hunyuan's own.
    /// A base model's config: no chat template.
    public static func writeConfig(rankCount: Int, folder: String) throws {
        let json = JSONValue.object([("tokenizer_class", .string("HYTokenizer")),
                                     ("num_mergeable_ranks", .int(Int64(rankCount)))])
        let text = Array((json.serialized() + "\n").utf8)
        try FileSystem.writeAtomically(FileSystem.join(folder, "tokenizer_config.json"), overwrite: true) { w in
            try text.withUnsafeBytes { try w($0) }
        }
    }

    static func base64(_ bytes: [UInt8]) -> [UInt8] {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(table[Int(v >> 18 & 63)])
            out.append(table[Int(v >> 12 & 63)])
            out.append(i + 1 < bytes.count ? table[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return out
    }
}

/// A max-heap of (count, pair key); ties pop the smaller key first (deterministic merges).
struct MaxHeap {
    private var items: [(Int, UInt64)] = []
    @inline(__always) private func above(_ x: (Int, UInt64), _ y: (Int, UInt64)) -> Bool { x.0 > y.0 || (x.0 == y.0 && x.1 < y.1) }
    mutating func push(_ c: Int, _ k: UInt64) {
        items.append((c, k))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !above(items[i], items[p]) { break }
            items.swapAt(i, p); i = p
        }
    }
    mutating func pop() -> (Int, UInt64)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && above(items[l], items[m]) { m = l }
                if r < items.count && above(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}

/// A byte-level BPE encoder over any tiktoken-format rank file (the trained small vocabularies as
/// well as Hunyuan's 127,957 ranks), with Hunyuan's NFC + pre-tokenizer. Specials are not parsed:
/// this encodes training text. Immutable; shareable across threads.
public final class BPEEncoder: @unchecked Sendable {
    public let ranks: [[UInt8]]
    private let rankOf: [[UInt8]: Int32]

    public init(ranks: [[UInt8]]) throws {
        self.ranks = ranks
        var m: [[UInt8]: Int32] = [:]
        for (i, r) in ranks.enumerated() { m[r] = Int32(i) }
        for b in 0..<256 where m[[UInt8(b)]] == nil {
            throw HYError.format("vocabulary: the single byte 0x\(String(b, radix: 16)) has no rank")
        }
        rankOf = m
    }

    /// Reads `base64 rank` lines (ranks 0, 1, 2, … in order).
    public convenience init(path: String) throws {
        let file = FileSystem.isDirectory(path) ? FileSystem.join(path, "hy.tiktoken") : path
        let bytes = try FileSystem.readAll(file)
        var ranks: [[UInt8]] = []
        var line = 0
        for raw in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            line += 1
            let parts = raw.split(separator: 0x20)
            guard parts.count == 2, let r = Int(String(decoding: parts[1].filter { $0 != 0x0D }, as: UTF8.self)), r == ranks.count,
                  let tok = Self.base64Decode(Array(parts[0])), !tok.isEmpty else {
                throw HYError.format("\(file): line \(line): expected `base64 rank` with rank \(ranks.count)")
            }
            ranks.append(tok)
        }
        try self.init(ranks: ranks)
    }

    public var count: Int { ranks.count }

    /// Token ids of `text` (UTF-8; NFC-normalized first).
    public func encode(_ text: [UInt8]) throws -> [Int32] {
        let norm = try TokenizerTrainer.normalized(text)
        var out: [Int32] = []
        out.reserveCapacity(norm.count / 3)
        var cache: [[UInt8]: [Int32]] = [:]
        norm.withUnsafeBufferPointer { b in
            PreTokenizer.split(b.baseAddress!, norm.count - 8) { s, e in
                let piece = Array(b[s..<e])
                if let c = cache[piece] { out.append(contentsOf: c); return }
                let ids = encodePiece(piece)
                if piece.count <= 64 { cache[piece] = ids }
                out.append(contentsOf: ids)
            }
        }
        return out
    }

    /// tiktoken's rule: merge the adjacent pair whose concatenation has the lowest rank, leftmost first.
    func encodePiece(_ p: [UInt8]) -> [Int32] {
        if let r = rankOf[p] { return [r] }
        var parts: [[UInt8]] = p.map { [$0] }
        while parts.count > 1 {
            var best = Int32.max, bi = -1
            for i in 0..<(parts.count - 1) {
                if let r = rankOf[parts[i] + parts[i + 1]], r < best { best = r; bi = i }
            }
            if bi < 0 { break }
            parts[bi] += parts[bi + 1]
            parts.remove(at: bi + 1)
        }
        return parts.map { rankOf[$0] ?? 0 }
    }

    /// The bytes of `ids` (ids ≥ count are skipped).
    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < ranks.count { out.append(contentsOf: ranks[Int(id)]) }
        return out
    }

    static func base64Decode(_ s: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0, bits = 0
        for c in s {
            let v: UInt32
            switch c {
            case 0x41...0x5A: v = UInt32(c - 0x41)
            case 0x61...0x7A: v = UInt32(c - 0x61 + 26)
            case 0x30...0x39: v = UInt32(c - 0x30 + 52)
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 { bits -= 8; out.append(UInt8(acc >> UInt32(bits) & 0xFF)) }
        }
        return out
    }
}

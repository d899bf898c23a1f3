import HunyuanLM

/// Hunyuan's tokenizer in llama.cpp's GGUF representation, as llama.cpp's converter writes it
/// (convert_hf_to_gguf.py, `HunYuanMoEModel.set_vocab`):
///
/// - `tokenizer.ggml.model` "gpt2" (byte-level BPE) and `tokenizer.ggml.pre` "hunyuan" (llama.cpp's
///   LLAMA_VOCAB_PRE_TYPE_HUNYUAN: the same split regex as tokenization_hy.py's PAT_STR);
/// - `tokens`: for every rank of hy.tiktoken its bytes mapped through GPT-2's byte→unicode table,
///   then the specials' surface forms (`<|endoftext|>` …), then `[PAD<i>]` up to the model's
///   vocab_size (Hunyuan-Large's embedding has 129,024 rows for 128,166 ids);
/// - `token_type`: NORMAL (1) for ranks, CONTROL (3) for specials, UNUSED (5) for the padding;
/// - `merges`: recovered from the ranks (tiktoken stores none): for each rank R of two or more
///   bytes, BPE of its bytes using only ranks below R; when that stops at exactly two parts they
///   are the merge "left right" (both byte→unicode encoded), listed in rank order;
/// - special ids as the converter's `SpecialVocab` reads them from config.json (`eos_token_id`,
///   `pad_token_id`, … when an integer id inside the vocabulary), `add_*_token` and `chat_template`
///   from tokenizer_config.json, and `bos_token_id` fixed to `<|bos|>` (the converter's override).
///
/// Value type built once per export; no shared state.
struct GGUFVocab {
    static let pre = "hunyuan"
    static let normal: Int32 = 1, control: Int32 = 3, unused: Int32 = 5

    /// Token strings (UTF-8 bytes), one per id of the model's vocabulary.
    var tokens: [[UInt8]] = []
    var types: [Int32] = []
    /// "left right", in the order of the merged token's rank.
    var merges: [[UInt8]] = []
    /// (GGUF key, id): bos first, then eos, unk, sep, pad, mask (the converter's order; it has no
    /// GGUF key for cls).
    var specialIds: [(String, Int)] = []
    /// (GGUF key, value) of tokenizer_config.json's add_bos_token / add_eos_token / add_sep_token
    /// when they are booleans (the only three the converter writes).
    var addSpecial: [(String, Bool)] = []
    var chatTemplate: String?

    /// GPT-2's bytes_to_unicode: byte b → the UTF-8 of the character standing for it (printable
    /// Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 … U+0143 in byte order).
    static let byteEncoder: [[UInt8]] = {
        func printable(_ b: Int) -> Bool { (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) }
        var table = [[UInt8]](repeating: [], count: 256)
        var next = 256
        for b in 0..<256 {
            var cp = b
            if !printable(b) { cp = next; next += 1 }
            table[b] = cp < 0x80 ? [UInt8(cp)] : [UInt8(0xC0 | cp >> 6), UInt8(0x80 | cp & 0x3F)]   // cp < 0x800
        }
        return table
    }()

    static func encode<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(contentsOf: byteEncoder[Int(b)]) }
        return out
    }

    /// Builds the representation of `tokenizer` for a model with `vocabSize` embedding rows.
    /// `config` is the model's config.json, `tokenizerConfig` the tokenizer's tokenizer_config.json
    /// (nil when absent). Errors: `.unsupported` when the tokenizer has more ids than the model,
    /// `.format` when two ids would get the same token string (llama.cpp refuses such a vocabulary).
    static func build(tokenizer tk: Tokenizer, vocabSize: Int, config: JSONValue?, tokenizerConfig: JSONValue?) throws -> GGUFVocab {
        guard tk.vocabSize <= vocabSize else {
            throw HYError.unsupported("\(tk.path): the tokenizer has \(tk.vocabSize) ids but the model's vocab_size is \(vocabSize)")
        }
        var v = GGUFVocab()
        v.tokens.reserveCapacity(vocabSize)
        v.types.reserveCapacity(vocabSize)
        for id in 0..<tk.firstSpecial {
            v.tokens.append(encode(tk.vocab.bytes(of: id)))
            v.types.append(normal)
        }
        for s in tk.specialBytes {
            v.tokens.append(s)
            v.types.append(control)
        }
        while v.tokens.count < vocabSize {
            v.tokens.append(Array("[PAD\(v.tokens.count)]".utf8))
            v.types.append(unused)
        }
        var seen = Set<[UInt8]>(minimumCapacity: vocabSize)
        for (id, t) in v.tokens.enumerated() where !seen.insert(t).inserted {
            throw HYError.format("\(tk.path): token \(id) has the same GGUF string as an earlier token (\(String(decoding: t, as: UTF8.self)))")
        }
        v.merges = recoverMerges(tk.vocab)

        v.specialIds.append(("tokenizer.ggml.bos_token_id", Int(tk.mapHunyuanId(Tokenizer.bos))))
        let idKeys = [("eos", "eos_token_id"), ("unk", "unknown_token_id"), ("sep", "seperator_token_id"),
                      ("pad", "padding_token_id"), ("mask", "mask_token_id")]   // gguf-py's spellings
        for (typ, key) in idKeys {
            if let id = config?["\(typ)_token_id"]?.intValue, id >= 0, id < Int64(vocabSize) {
                v.specialIds.append(("tokenizer.ggml.\(key)", Int(id)))
            }
        }
        for typ in ["bos", "eos", "sep"] {
            if let b = tokenizerConfig?["add_\(typ)_token"]?.boolValue { v.addSpecial.append(("tokenizer.ggml.add_\(typ)_token", b)) }
        }
        v.chatTemplate = tokenizerConfig?["chat_template"]?.stringValue
        return v
    }

    /// The merges of `vocab`'s ranks (see the type's doc). Quadratic in a token's length only;
    /// about a second for Hunyuan's 127,957 ranks.
    static func recoverMerges(_ vocab: Vocabulary) -> [[UInt8]] {
        var merges: [[UInt8]] = []
        merges.reserveCapacity(vocab.count)
        var buf: [UInt8] = []
        var cuts: [Int] = []          // part boundaries: part k is buf[cuts[k]..<cuts[k + 1]]
        for rank in 0..<vocab.count {
            let token = vocab.bytes(of: rank)
            let n = token.count
            guard n >= 2 else { continue }
            buf.removeAll(keepingCapacity: true)
            buf.append(contentsOf: token)
            buf.append(contentsOf: repeatElement(0, count: 8))   // Vocabulary.rank reads whole words
            cuts.removeAll(keepingCapacity: true)
            cuts.append(contentsOf: 0...n)
            buf.withUnsafeBufferPointer { bp in
                let p = bp.baseAddress!
                while cuts.count > 2 {
                    var best = -1
                    var bestRank = Int32(rank)
                    for k in 0..<(cuts.count - 2) {
                        let r = vocab.rank(p + cuts[k], cuts[k + 2] - cuts[k])
                        if r >= 0 && r < bestRank { best = k; bestRank = r }
                    }
                    if best < 0 { break }
                    cuts.remove(at: best + 1)
                }
            }
            if cuts.count == 3 {
                var m = encode(token[0..<cuts[1]])
                m.append(0x20)
                m.append(contentsOf: encode(token[cuts[1]..<n]))
                merges.append(m)
            }
        }
        return merges
    }
}

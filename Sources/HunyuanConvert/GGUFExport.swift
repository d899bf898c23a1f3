import HunyuanLM

/// Writes a HunYuanMoEV1 checkpoint as a GGUF file for llama.cpp's `hunyuan-moe` architecture
/// (`hunyuan-cli export-gguf`): its tensor names (token_embd, blk.N.attn_q, ffn_gate_exps, …; experts
/// stacked [n_expert, rows, cols]), its metadata keys (hunyuan-moe.*, RoPE base with the NTK alpha
/// folded in as llama.cpp's converter does) and GGUF v3 layout (little-endian, 32-byte alignment).
/// Matrices are stored as f16, q8_0 or q4_0 — our q8_0/q4_0 blocks are byte-identical to ggml's, so
/// both engines can run identical weights; norms and the router stay f32.
///
/// Tokenizer: when the model folder (or `tokenizer`, an hy.tiktoken file or its folder) has one, it
/// is written as llama.cpp's converter writes Hunyuan's (GGUFVocab.swift): "gpt2" byte-level BPE with
/// pre-tokenizer "hunyuan", byte→unicode token strings, token types, merges recovered from the
/// tiktoken ranks, special ids from config.json with bos = <|bos|>, and tokenizer_config.json's chat
/// template — so llama.cpp tokenizes text exactly as our Tokenizer does (for NFC input: llama.cpp does
/// not normalize). Without a tokenizer the file says "no_vocab" with the vocabulary size (enough for
/// llama-bench and for feeding token ids).
///
/// Single call, no shared state; tensors are converted on `threads` workers (0 = all processors) and
/// streamed to a temporary file renamed over `output` at the end.
public enum GGUFExport {
    public enum TensorType: UInt32 { case f32 = 0, f16 = 1, q4_0 = 2, q8_0 = 8 }

    public static func run(model dir: String, output: String, type: TensorType, threads: Int = 0, tokenizer: String? = nil) throws {
        let c = try HunyuanConfig.load(directory: dir)
        guard c.architecture == .moeV1, !c.useCLA else {
            throw HYError.unsupported("\(dir): export-gguf supports HunYuanMoEV1ForCausalLM checkpoints without CLA (got \(c.architecture.rawValue), use_cla \(c.useCLA))")
        }
        let ck = try Checkpoint(path: dir)
        let w = try ModelWeights(config: c, checkpoint: ck)
        let pool = ThreadPool(threads: threads)
        guard Set(c.moeTopK).count == 1, Set(c.moeIntermediate).count == 1, Set(c.numSharedExpert).count == 1 else {
            throw HYError.unsupported("\(dir): llama.cpp's hunyuan-moe needs the same top-k / expert width / shared experts in every layer")
        }
        let vocab = try loadVocab(model: dir, tokenizer: tokenizer, vocabSize: c.vocabSize)
        let arch = "hunyuan-moe"
        var kv = Writer()
        var n = 0
        func key(_ k: String, _ t: UInt32, _ body: (inout Writer) -> Void) { kv.string(k); kv.u32(t); body(&kv); n += 1 }
        func u32(_ k: String, _ v: Int) { key(k, 4) { $0.u32(UInt32(v)) } }
        func f32(_ k: String, _ v: Float) { key(k, 6) { $0.u32(v.bitPattern) } }
        func str(_ k: String, _ v: String) { key(k, 8) { $0.string(v) } }
        str("general.architecture", arch)
        str("general.name", "hunyuan")
        u32("general.alignment", 32)
        u32("general.file_type", type == .f16 ? 1 : (type == .q8_0 ? 7 : (type == .q4_0 ? 2 : 0)))
        u32("\(arch).context_length", c.maxPositionEmbeddings)
        u32("\(arch).embedding_length", c.hiddenSize)
        u32("\(arch).block_count", c.numLayers)
        u32("\(arch).feed_forward_length", c.intermediateSize)
        u32("\(arch).attention.head_count", c.numHeads)
        u32("\(arch).attention.head_count_kv", c.numKVHeads)
        u32("\(arch).attention.key_length", c.headDim)
        u32("\(arch).attention.value_length", c.headDim)
        f32("\(arch).attention.layer_norm_rms_epsilon", c.rmsNormEps)
        f32("\(arch).rope.freq_base", Float(c.ropeBase))
        u32("\(arch).rope.dimension_count", c.headDim)
        u32("\(arch).expert_count", c.numExperts)
        u32("\(arch).expert_used_count", c.moeTopK[0])
        u32("\(arch).expert_feed_forward_length", c.moeIntermediate[0])
        u32("\(arch).expert_shared_feed_forward_length", c.sharedMLPWidth[0])
        u32("\(arch).expert_shared_count", c.numSharedExpert[0])
        u32("\(arch).vocab_size", c.vocabSize)
        if let v = vocab {
            func strings(_ k: String, _ items: [[UInt8]]) {
                key(k, 9) { w in
                    w.u32(8); w.u64(UInt64(items.count))
                    for s in items { w.u64(UInt64(s.count)); w.bytes(s) }
                }
            }
            str("tokenizer.ggml.model", "gpt2")
            str("tokenizer.ggml.pre", GGUFVocab.pre)
            strings("tokenizer.ggml.tokens", v.tokens)
            key("tokenizer.ggml.token_type", 9) { w in
                w.u32(5); w.u64(UInt64(v.types.count))
                for t in v.types { w.u32(UInt32(bitPattern: t)) }
            }
            strings("tokenizer.ggml.merges", v.merges)
            for (k, id) in v.specialIds { u32(k, id) }
            for (k, b) in v.addSpecial { key(k, 7) { $0.out.append(b ? 1 : 0) } }
            if let t = v.chatTemplate { str("tokenizer.chat_template", t) }
        } else {
            str("tokenizer.ggml.model", "no_vocab")
        }

        // Tensors: (gguf name, ggml dims innermost first, type, matrices to stack in order).
        struct Entry { let name: String; let dims: [Int]; let type: TensorType; let mats: [WeightMatrix]; let vec: [Float]? }
        var entries: [Entry] = []
        func mat(_ name: String, _ ms: [WeightMatrix], _ t: TensorType) {
            var dims = [ms[0].cols, ms[0].rows]
            if ms.count > 1 { dims.append(ms.count) }
            entries.append(Entry(name: name, dims: dims, type: t, mats: ms, vec: nil))
        }
        func vec(_ name: String, _ v: [Float]) { entries.append(Entry(name: name, dims: [v.count], type: .f32, mats: [], vec: v)) }
        mat("token_embd.weight", [w.embed], type)
        vec("output_norm.weight", w.norm)
        if !c.tieWordEmbeddings { mat("output.weight", [w.lmHead], type) }
        for (l, L) in w.layers.enumerated() {
            let b = "blk.\(l)."
            vec(b + "attn_norm.weight", L.inputNorm)
            if let k = L.k, let v = L.v {
                mat(b + "attn_q.weight", [L.q], type); mat(b + "attn_k.weight", [k], type); mat(b + "attn_v.weight", [v], type)
            }
            mat(b + "attn_output.weight", [L.o], type)
            if let qn = L.queryNorm, let kn = L.keyNorm { vec(b + "attn_q_norm.weight", qn); vec(b + "attn_k_norm.weight", kn) }
            vec(b + "ffn_norm.weight", L.postNorm)
            if let r = L.router { mat(b + "ffn_gate_inp.weight", [r], .f32) }
            mat(b + "ffn_gate_exps.weight", L.experts.map(\.gate), type)
            mat(b + "ffn_up_exps.weight", L.experts.map(\.up), type)
            mat(b + "ffn_down_exps.weight", L.experts.map(\.down), type)
            if let s = L.shared {
                mat(b + "ffn_gate_shexp.weight", [s.gate], type)
                mat(b + "ffn_up_shexp.weight", [s.up], type)
                mat(b + "ffn_down_shexp.weight", [s.down], type)
            }
        }
        func rowBytes(_ t: TensorType, _ cols: Int) throws -> Int {
            switch t {
            case .f32: return cols * 4
            case .f16: return cols * 2
            case .q8_0, .q4_0:
                guard cols % 32 == 0 else { throw HYError.unsupported("\(dir): \(cols) columns are not a multiple of 32, which ggml's \(t) needs") }
                return cols / 32 * (t == .q8_0 ? 34 : 18)
            }
        }
        var info = Writer()
        var offset = 0
        for e in entries {
            info.string(e.name)
            info.u32(UInt32(e.dims.count))
            for d in e.dims { info.u64(UInt64(d)) }
            info.u32(e.type.rawValue)
            info.u64(UInt64(offset))
            let bytes = try checkedMul(try rowBytes(e.type, e.dims[0]), e.dims.dropFirst().reduce(1, *), e.name)
            offset = (offset + bytes + 31) / 32 * 32
        }
        var head = Writer()
        head.bytes(Array("GGUF".utf8)); head.u32(3); head.u64(UInt64(entries.count)); head.u64(UInt64(n))
        head.bytes(kv.out); head.bytes(info.out)
        while head.out.count % 32 != 0 { head.out.append(0) }
        let headBytes = head.out
        try FileSystem.writeAtomically(output, overwrite: true) { write in
            try headBytes.withUnsafeBytes { try write($0) }
            for e in entries {
                var data: [UInt8]
                if let v = e.vec {
                    data = v.withUnsafeBytes { Array($0) }
                } else {
                    let rb = try rowBytes(e.type, e.dims[0])
                    let rowsPer = e.dims[1]
                    data = [UInt8](repeating: 0, count: rb * rowsPer * e.mats.count)
                    for (mi, m) in e.mats.enumerated() {
                        data.withUnsafeMutableBytes { out in
                            let base = out.baseAddress! + mi * rowsPer * rb
                            pool.parallelRanges(m.rows, minChunk: 16) { rr in
                                var row = [Float](repeating: 0, count: m.cols)
                                row.withUnsafeMutableBufferPointer { rp in
                                    let p = rp.baseAddress!
                                    for r in rr {
                                        m.copyRow(r, into: p)
                                        let dst = base + r * rb
                                        switch e.type {
                                        case .f32: dst.copyMemory(from: p, byteCount: rb)
                                        case .f16: for i in 0..<m.cols { dst.storeBytes(of: Float16(p[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self) }
                                        case .q8_0: Quantizer.quantizeRow(.q8_0, p, cols: m.cols, dst)
                                        case .q4_0: Quantizer.quantizeRow(.q4_0, p, cols: m.cols, dst)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                while data.count % 32 != 0 { data.append(0) }
                try data.withUnsafeBytes { try write($0) }
            }
        }
    }

    /// The tokenizer to write: `tokenizer` if given, else the model folder's hy.tiktoken, else nil.
    static func loadVocab(model dir: String, tokenizer: String?, vocabSize: Int) throws -> GGUFVocab? {
        let path: String
        if let tokenizer { path = tokenizer } else {
            guard FileSystem.exists(FileSystem.join(dir, "hy.tiktoken")) else { return nil }
            path = dir
        }
        let tk = try Tokenizer.load(path: path)
        let config = try JSONValue.parse(contentsOf: FileSystem.join(dir, "config.json"))
        let slash = tk.path.lastIndex(of: "/")
        let tokDir = slash.map { String(tk.path[..<$0]) } ?? "."
        let tokConfigPath = FileSystem.join(tokDir.isEmpty ? "/" : tokDir, "tokenizer_config.json")
        let tokConfig = FileSystem.exists(tokConfigPath) ? try JSONValue.parse(contentsOf: tokConfigPath) : nil
        return try GGUFVocab.build(tokenizer: tk, vocabSize: vocabSize, config: config, tokenizerConfig: tokConfig)
    }

    /// Little-endian GGUF encoding helpers.
    struct Writer {
        var out: [UInt8] = []
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        mutating func string(_ s: String) { let u = Array(s.utf8); u64(UInt64(u.count)); out.append(contentsOf: u) }
        mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
    }
}

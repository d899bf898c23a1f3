import HunyuanNN
#if canImport(Glibc)
import Glibc
#endif

/// A loaded Hunyuan language model: config, generation defaults and weights (memory-mapped, used in
/// their stored dtype). Immutable after load: shareable by many sessions on many threads.
public final class HunyuanModel: @unchecked Sendable {
    public let path: String
    public let config: HunyuanConfig
    public let generation: GenerationConfig
    /// The tokenizer of the checkpoint folder (its hy.tiktoken), nil when the folder has none.
    public let tokenizer: Tokenizer?
    let weights: ModelWeights
    let invFreq: [Float]

    /// Loads a checkpoint folder (config.json, optional generation_config.json, safetensors single or
    /// sharded), or a built-in model as `builtin:NAME` (BuiltinModels). `progress` (0...1, return
    /// false to cancel) is called on the calling thread.
    public init(path given: String, progress: ((Float) -> Bool)? = nil) throws {
        let path = try BuiltinModels.resolve(given)
        guard FileSystem.isDirectory(path) else { throw HYError.io("\(path): not a model folder") }
        if progress?(0) == false { throw HYError.aborted("model load cancelled") }
        config = try HunyuanConfig.load(directory: path)
        generation = try GenerationConfig.load(directory: path)
        if progress?(0.1) == false { throw HYError.aborted("model load cancelled") }
        let ck = try Checkpoint(path: path)
        if progress?(0.5) == false { throw HYError.aborted("model load cancelled") }
        weights = try ModelWeights(config: config, checkpoint: ck)
        invFreq = HunyuanAttention.inverseFrequencies(config)
        tokenizer = FileSystem.exists(FileSystem.join(path, "hy.tiktoken")) ? try Tokenizer.load(path: path) : nil
        self.path = path
        _ = progress?(1)
    }

    /// Stop tokens: generation_config.json's eos_token_id (int or list), else config.json's.
    public var eosTokenIds: [Int] { generation.eosTokenIds.isEmpty ? config.eosTokenIds : generation.eosTokenIds }

    /// Number of stored parameters.
    public var parameterCount: Int { weights.parameterCount }
    /// Bytes of stored weights.
    public var weightBytes: Int { weights.checkpoint.tensors.reduce(0) { $0 + $1.data.count } }
    /// The storage format of the matrices ("q4_k", "bf16", …; "mixed" when they differ).
    public var weightType: String { weights.weightType }

    /// max_position_embeddings, capped so the KV cache takes at most a quarter of physical memory.
    public var defaultContextLength: Int { defaultContextLength(kvType: .f32) }

    /// max_position_embeddings, capped so a cache of `kvType` takes at most 1/4 of physical memory.
    public func defaultContextLength(kvType: KVCache.ElementType) -> Int {
        let phys = CPUFeatures.physicalMemoryBytes
        let per = max(1, KVCache.bytesPerToken(config, type: kvType))
        let cap = max(256, phys / 4 / per)
        return max(1, min(config.maxPositionEmbeddings, cap))
    }
}

/// Activation buffers for chunks of up to `chunk` tokens, allocated once per session (llama2.c's
/// RunState): nothing is allocated per token.
final class RunState {
    let chunk: Int
    let maxTopK: Int
    let x, xn, q, k, v, att, tmp, ffn, cosSin, router, topWeight, expertWeight: UnsafeMutablePointer<Float>
    let gathered, expertOut, gate, up, lastLogits: UnsafeMutablePointer<Float>
    let topIndex, expertToken: UnsafeMutablePointer<Int>
    /// Owners of the buffers above (freed with the state).
    private let owned: [FloatBuffer]
    private let ownedInts: [UnsafeMutableBufferPointer<Int>]

    init(config c: HunyuanConfig, chunk: Int) {
        self.chunk = chunk
        let d = c.hiddenSize, qw = c.numHeads * c.headDim, kw = c.numKVHeads * c.headDim
        maxTopK = max(1, c.moeTopK.max() ?? 1)
        let width = max(c.intermediateSize, c.moeIntermediate.max() ?? 0, c.sharedMLPWidth.max() ?? 0)
        var floats: [FloatBuffer] = [], ints: [UnsafeMutableBufferPointer<Int>] = []
        func f(_ n: Int) -> UnsafeMutablePointer<Float> {
            let b = FloatBuffer(n)
            floats.append(b)
            return b.p
        }
        func i(_ n: Int) -> UnsafeMutablePointer<Int> {
            let b = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(n, 1))
            b.initialize(repeating: 0)
            ints.append(b)
            return b.baseAddress!
        }
        x = f(chunk * d); xn = f(chunk * d); q = f(chunk * qw); k = f(chunk * kw); v = f(chunk * kw)
        att = f(chunk * qw); tmp = f(chunk * d); ffn = f(chunk * d); cosSin = f(chunk * c.headDim)
        router = f(chunk * max(c.numExperts, 1)); topWeight = f(chunk * maxTopK); expertWeight = f(chunk * maxTopK)
        gathered = f(chunk * d); expertOut = f(chunk * d); gate = f(chunk * width); up = f(chunk * width)
        lastLogits = f(c.vocabSize)
        topIndex = i(chunk * maxTopK); expertToken = i(chunk * maxTopK)
        owned = floats
        ownedInts = ints
    }

    deinit { for b in ownedInts { b.deallocate() } }
}

/// A conversation with a model: its KV cache, activation buffers and logits. One thread at a time;
/// many sessions may share one model.
public final class InferenceSession {
    public let model: HunyuanModel
    public let cache: KVCache
    public let pool: ThreadPool
    let state: RunState
    /// Logits of every position of the last eval when it asked for them: [n, vocab].
    public private(set) var allLogits: [Float] = []
    public private(set) var hasLogits = false
    /// Tokens currently in the cache (for repetition penalty and truncation).
    public private(set) var tokens: [Int32] = []
    /// Receives the named intermediates of every evaluated chunk (llama.cpp's graph names):
    /// `inp_embd` [t, d]; per layer l `attn_out.l` (the residual stream after attention) and `l_out.l`
    /// [t, d]; `result_norm` [rows, d] and `result_output` [rows, vocab] for the rows whose logits are
    /// computed (all with `allLogits`, else the chunk's last). nil (the default) copies nothing.
    public var trace: Trace? = nil

    /// - contextLength: positions the cache holds (0 → model.defaultContextLength).
    /// - threads: worker threads including the caller (0 → all processors).
    /// - chunk: prefill tokens processed per GEMM pass.
    /// - sharedKVAcrossLayers: false selects the per-layer cache layout (see KVCache; for tests).
    /// - kvType: storage of cached keys/values (f16 halves the cache); nil = `KVCache.automaticType`
    ///   (f32 up to `KVCache.automaticF32Max` positions, q8_0 above).
    public init(model: HunyuanModel, contextLength: Int = 0, threads: Int = 0, chunk: Int = 128,
                sharedKVAcrossLayers: Bool = true, kvType: KVCache.ElementType? = nil) throws {
        var n = contextLength <= 0 ? model.defaultContextLength(kvType: kvType ?? .f32) : contextLength
        if contextLength <= 0, kvType == nil, KVCache.automaticType(model.config, contextLength: n) != .f32 {
            n = max(n, model.defaultContextLength(kvType: KVCache.automaticType(model.config, contextLength: n)))
        }
        guard n <= 1 << 24 else { throw HYError.invalidArgument("context length \(n) is too large") }
        self.model = model
        cache = try KVCache(config: model.config, capacity: n, sharedAcrossLayers: sharedKVAcrossLayers,
                            type: kvType ?? KVCache.automaticType(model.config, contextLength: n))
        pool = ThreadPool(threads: threads)
        state = RunState(config: model.config, chunk: max(1, min(chunk, n)))
        tokens.reserveCapacity(n)
    }

    public var contextLength: Int { cache.capacity }
    public var count: Int { cache.count }
    public var vocabSize: Int { model.config.vocabSize }

    /// Logits of the last evaluated position [vocab]; valid until the next eval/reset/truncate.
    public var lastLogits: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: state.lastLogits, count: vocabSize) }

    public func reset() { cache.reset(); tokens.removeAll(keepingCapacity: true); hasLogits = false }

    /// Keeps the first n cached tokens (n ≥ count is a no-op). Logits become unavailable.
    public func truncate(keep n: Int) throws {
        guard n >= 0 else { throw HYError.invalidArgument("n_keep \(n) is negative") }
        if n >= cache.count { return }
        cache.truncate(n)
        tokens.removeLast(tokens.count - n)
        hasLogits = false
    }

    /// Appends `ids` to the context and runs them through the model. Afterwards `lastLogits` holds the
    /// logits of the last position, and `allLogits` those of every position of `ids` when asked.
    /// `shouldAbort` is polled before each layer of each chunk; on abort (HY_ERR_ABORTED) or any error
    /// the session keeps its previous state. Past the context: HY_ERR_CONTEXT_FULL, nothing changed.
    public func eval(_ ids: [Int32], allLogits wantAll: Bool = false, shouldAbort: (() -> Bool)? = nil) throws {
        try ids.withUnsafeBufferPointer { try eval($0, allLogits: wantAll, shouldAbort: shouldAbort) }
    }

    /// One token (the decode step); allocates nothing.
    public func eval(token: Int32, shouldAbort: (() -> Bool)? = nil) throws {
        var id = token
        try withUnsafePointer(to: &id) { try eval(UnsafeBufferPointer(start: $0, count: 1), allLogits: false, shouldAbort: shouldAbort) }
    }

    public func eval(_ ids: UnsafeBufferPointer<Int32>, allLogits wantAll: Bool, shouldAbort: (() -> Bool)?) throws {
        guard !ids.isEmpty else { throw HYError.invalidArgument("no tokens to evaluate (empty input)") }
        let c = model.config
        for (i, id) in ids.enumerated() where id < 0 || Int(id) >= c.vocabSize {
            throw HYError.invalidArgument("token id \(id) at index \(i) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        let start = cache.count
        guard ids.count <= cache.capacity - start else {
            throw HYError.contextFull("context full: \(start) cached + \(ids.count) new tokens > context length \(cache.capacity); reset or truncate the session")
        }
        if wantAll {
            let n = try checkedMul(ids.count, c.vocabSize, "logits")
            guard n <= CPUFeatures.physicalMemoryBytes / 8 else {
                throw HYError.outOfMemory("logits of all \(ids.count) positions (\(n) floats) would not fit in memory; evaluate fewer tokens at a time")
            }
            allLogits = [Float](repeating: 0, count: n)
        }
        hasLogits = false
        var done = 0
        do {
            while done < ids.count {
                let t = min(state.chunk, ids.count - done)
                try forward(UnsafeBufferPointer(rebasing: ids[done..<(done + t)]), pos0: start + done,
                            logitsOut: wantAll ? done : nil, isLast: done + t == ids.count, shouldAbort: shouldAbort)
                done += t
                cache.count = start + done
            }
        } catch {
            cache.count = start
            throw error
        }
        tokens.append(contentsOf: ids)
        hasLogits = true
    }

    /// One chunk of t tokens at positions pos0..<pos0+t.
    private func forward(_ ids: UnsafeBufferPointer<Int32>, pos0: Int, logitsOut: Int?, isLast: Bool,
                         shouldAbort: (() -> Bool)?) throws {
        let c = model.config, s = state, w = model.weights
        let t = ids.count, d = c.hiddenSize, hd = c.headDim
        for i in 0..<t {
            w.embed.copyRow(Int(ids[i]), into: s.x + i * d)
            model.invFreq.withUnsafeBufferPointer {
                ropeTable(position: pos0 + i, invFreq: $0.baseAddress!, headDim: hd, s.cosSin + i * hd)
            }
        }
        trace.emit("inp_embd", [t, d], s.x)
        for l in 0..<c.numLayers {
            if let shouldAbort, shouldAbort() { throw HYError.aborted("evaluation aborted at layer \(l)") }
            HunyuanAttention.forward(layer: l, t: t, pos0: pos0, model: model, state: s, cache: cache, pool: pool)
            trace.emit("attn_out.\(l)", [t, d], s.x)
            HunyuanMoE.forward(layer: l, t: t, model: model, state: s, pool: pool)
            trace.emit("l_out.\(l)", [t, d], s.x)
        }
        let rows = logitsOut != nil ? 0..<t : (isLast ? (t - 1)..<t : t..<t)
        w.norm.withUnsafeBufferPointer { nw in
            for i in rows { rmsnorm(s.x + i * d, nw.baseAddress, d, eps: c.rmsNormEps, s.xn + i * d) }
        }
        if !rows.isEmpty { trace.emit("result_norm", [rows.count, d], s.xn + rows.lowerBound * d) }
        if let off = logitsOut {
            let v = c.vocabSize
            let p = pool
            allLogits.withUnsafeMutableBufferPointer { out in
                let base = out.baseAddress! + off * v
                linear(w.lmHead, s.xn, t, base, pool: p)
                if isLast { s.lastLogits.update(from: base + (t - 1) * v, count: v) }
                trace.emit("result_output", [t, v], base)
            }
        } else if isLast {
            matvec(w.lmHead, s.xn + (t - 1) * d, s.lastLogits, pool: pool)
            trace.emit("result_output", [1, c.vocabSize], s.lastLogits)
        }
    }
}

import CHunyuanABI
import HunyuanCore
import HunyuanLM

// @_cdecl entry points of the "Language models" section of hunyuan.h: argument checks, conversions,
// calls into HunyuanLM. No logic of their own.

/// The object behind `hy_model *`.
final class ModelHandle {
    let model: HunyuanModel
    let threads: Int
    init(_ m: HunyuanModel, threads: Int) { model = m; self.threads = threads }
}

/// The object behind `hy_session *`: the session plus a C-visible copy of its last logits.
final class SessionHandle {
    let session: InferenceSession
    var logits: UnsafeMutableBufferPointer<Float> = .init(start: nil, count: 0)
    var rows = 0
    init(_ s: InferenceSession) { session = s }
    deinit { logits.deallocate() }

    /// Copies the session's logits (all positions when `all`, else the last) into C-owned storage.
    func publish(all: Bool) {
        let v = session.vocabSize
        let n = all ? session.allLogits.count : v
        if logits.count < n {
            logits.deallocate()
            logits = .allocate(capacity: n)
        }
        guard let dst = logits.baseAddress, n > 0 else { rows = 0; return }
        if all {
            session.allLogits.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: n) }
        } else if let src = session.lastLogits.baseAddress {
            dst.update(from: src, count: n)
        }
        rows = n / max(v, 1)
    }
}

private func modelArg(_ m: OpaquePointer?) throws -> ModelHandle {
    guard let h = handleObject(m, ModelHandle.self) else { throw HYError.invalidArgument("model is NULL") }
    return h
}

private func sessionArg(_ s: OpaquePointer?) throws -> SessionHandle {
    guard let h = handleObject(s, SessionHandle.self) else { throw HYError.invalidArgument("session is NULL") }
    return h
}

private func tokensArg(_ p: UnsafePointer<Int32>?, _ n: Int, allowEmpty: Bool) throws -> [Int32] {
    if n == 0 {
        guard allowEmpty else { throw HYError.invalidArgument("no tokens (n is 0)") }
        return []
    }
    guard let p else { throw HYError.invalidArgument("tokens is NULL") }
    guard n > 0, n <= 1 << 26 else { throw HYError.invalidArgument("n \(n) is out of range") }
    return Array(UnsafeBufferPointer(start: p, count: n))
}

@_cdecl("hy_model_default_params")
public func hy_model_default_params_impl() -> hy_model_params {
    hy_model_params(struct_size: UInt32(MemoryLayout<hy_model_params>.size), n_threads: 0, progress: nil, progress_user: nil)
}

@_cdecl("hy_model_load")
public func hy_model_load_impl(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<hy_model_params>?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        let p = try utf8Arg(path, "path")
        let prm = try readParams(params, defaults: hy_model_default_params_impl(), minimum: 8, "hy_model_params")
        guard prm.n_threads >= 0 else { throw HYError.invalidArgument("n_threads \(prm.n_threads) is negative") }
        let cb = prm.progress, user = prm.progress_user
        let m = try HunyuanModel(path: p, progress: cb.map { f in { f($0, user) } })
        out.pointee = retainHandle(ModelHandle(m, threads: Int(prm.n_threads)))
    }
}

@_cdecl("hy_model_free")
public func hy_model_free_impl(_ m: OpaquePointer?) { releaseHandle(m, ModelHandle.self) }

@_cdecl("hy_model_tokenizer")
public func hy_model_tokenizer_impl(_ m: OpaquePointer?) -> OpaquePointer? {
    guard let h = handleObject(m, ModelHandle.self), let tok = h.model.tokenizer else { return nil }
    return OpaquePointer(Unmanaged.passUnretained(tok).toOpaque())
}

@_cdecl("hy_model_get_info")
public func hy_model_get_info_impl(_ m: OpaquePointer?, _ out: UnsafeMutablePointer<hy_model_info>?) -> hy_status {
    guarded {
        let h = try modelArg(m)
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        let size = Int(UnsafeRawPointer(out).load(as: UInt32.self))
        try checkStructSize(UInt32(size), minimum: 8, "hy_model_info")
        let c = h.model.config
        var info = hy_model_info()
        info.struct_size = UInt32(MemoryLayout<hy_model_info>.size)
        info.arch = cArch(c.architecture)
        info.n_vocab = Int32(c.vocabSize); info.n_embd = Int32(c.hiddenSize); info.n_layer = Int32(c.numLayers)
        info.n_head = Int32(c.numHeads); info.n_head_kv = Int32(c.numKVHeads); info.head_dim = Int32(c.headDim)
        info.n_ctx_train = Int32(clamping: c.maxPositionEmbeddings)
        info.n_expert = Int32(c.numExperts); info.n_expert_used = Int32(c.moeTopK.max() ?? 0)
        info.cla_share_factor = Int32(c.kvShare)
        info.bos_token_id = Int32(clamping: c.bosTokenId ?? -1)
        let eos = h.model.eosTokenIds.prefix(Int(HY_MAX_EOS_TOKENS))
        info.n_eos = Int32(eos.count)
        withUnsafeMutableBytes(of: &info.eos_token_ids) { raw in
            let e = raw.bindMemory(to: Int32.self)
            for (i, id) in eos.enumerated() { e[i] = Int32(clamping: id) }
        }
        info.n_params = UInt64(h.model.parameterCount)
        info.weight_bytes = UInt64(h.model.weightBytes)
        info.kv_bytes_per_token = UInt64(KVCache.bytesPerToken(c))
        withUnsafeBytes(of: &info) { src in
            UnsafeMutableRawPointer(out).copyMemory(from: src.baseAddress!, byteCount: min(size, src.count))
        }
        UnsafeMutableRawPointer(out).storeBytes(of: UInt32(min(size, MemoryLayout<hy_model_info>.size)), as: UInt32.self)
    }
}

@_cdecl("hy_session_default_params")
public func hy_session_default_params_impl() -> hy_session_params {
    hy_session_params(struct_size: UInt32(MemoryLayout<hy_session_params>.size), n_ctx: 0, n_threads: 0, n_batch: 0,
                      kv_type: Int32(HY_KV_AUTO.rawValue))
}

@_cdecl("hy_session_new")
public func hy_session_new_impl(_ m: OpaquePointer?, _ params: UnsafePointer<hy_session_params>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        let h = try modelArg(m)
        let p = try readParams(params, defaults: hy_session_default_params_impl(), minimum: 8, "hy_session_params")
        guard p.n_threads >= 0 else { throw HYError.invalidArgument("n_threads \(p.n_threads) is negative") }
        let kv: KVCache.ElementType?
        switch p.kv_type {
        case Int32(HY_KV_AUTO.rawValue): kv = nil
        case Int32(HY_KV_F32.rawValue): kv = .f32
        case Int32(HY_KV_F16.rawValue): kv = .f16
        case Int32(HY_KV_Q8_0.rawValue): kv = .q8_0
        default: throw HYError.invalidArgument("hy_session_params.kv_type \(p.kv_type) is not a hy_kv_type")
        }
        let s = try InferenceSession(model: h.model, contextLength: Int(p.n_ctx),
                                     threads: p.n_threads > 0 ? Int(p.n_threads) : h.threads,
                                     chunk: p.n_batch > 0 ? Int(p.n_batch) : 128, kvType: kv)
        out.pointee = retainHandle(SessionHandle(s))
    }
}

@_cdecl("hy_session_free")
public func hy_session_free_impl(_ s: OpaquePointer?) { releaseHandle(s, SessionHandle.self) }

@_cdecl("hy_session_reset")
public func hy_session_reset_impl(_ s: OpaquePointer?) {
    guard let h = handleObject(s, SessionHandle.self) else { return }
    h.session.reset(); h.rows = 0
}

@_cdecl("hy_session_truncate")
public func hy_session_truncate_impl(_ s: OpaquePointer?, _ nKeep: Int) -> hy_status {
    guarded {
        let h = try sessionArg(s)
        guard nKeep >= 0 else { throw HYError.invalidArgument("n_keep is out of range") }
        if nKeep < h.session.count { h.rows = 0 }
        try h.session.truncate(keep: nKeep)
    }
}

@_cdecl("hy_session_n_past")
public func hy_session_n_past_impl(_ s: OpaquePointer?) -> Int { handleObject(s, SessionHandle.self)?.session.count ?? 0 }

@_cdecl("hy_session_n_ctx")
public func hy_session_n_ctx_impl(_ s: OpaquePointer?) -> Int { handleObject(s, SessionHandle.self)?.session.contextLength ?? 0 }

@_cdecl("hy_session_kv_type")
public func hy_session_kv_type_impl(_ s: OpaquePointer?) -> hy_kv_type {
    switch handleObject(s, SessionHandle.self)?.session.cache.type {
    case .f16: return HY_KV_F16
    case .q8_0: return HY_KV_Q8_0
    case .f32, nil: return HY_KV_F32
    }
}

@_cdecl("hy_session_kv_bytes")
public func hy_session_kv_bytes_impl(_ s: OpaquePointer?) -> Int { handleObject(s, SessionHandle.self)?.session.cache.totalBytes ?? 0 }

@_cdecl("hy_eval_default_params")
public func hy_eval_default_params_impl() -> hy_eval_params {
    hy_eval_params(struct_size: UInt32(MemoryLayout<hy_eval_params>.size), all_logits: false, abort: nil, abort_user: nil)
}

@_cdecl("hy_session_eval")
public func hy_session_eval_impl(_ s: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int,
                                 _ params: UnsafePointer<hy_eval_params>?) -> hy_status {
    guarded {
        let h = try sessionArg(s)
        let p = try readParams(params, defaults: hy_eval_default_params_impl(), minimum: 5, "hy_eval_params")
        let ids = try tokensArg(tokens, n, allowEmpty: false)
        let abort = p.abort, user = p.abort_user
        try h.session.eval(ids, allLogits: p.all_logits, shouldAbort: abort.map { f in { f(user) } })
        h.publish(all: p.all_logits)
    }
}

@_cdecl("hy_session_logits")
public func hy_session_logits_impl(_ s: OpaquePointer?, _ logits: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                                   _ nRows: UnsafeMutablePointer<Int>?, _ nVocab: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        let h = try sessionArg(s)
        guard let logits else { throw HYError.invalidArgument("logits is NULL") }
        guard h.session.hasLogits, h.rows > 0, let base = h.logits.baseAddress else {
            throw HYError.invalidArgument("no logits: nothing evaluated since the session was created, reset or truncated")
        }
        logits.pointee = UnsafePointer(base)
        nRows?.pointee = h.rows
        nVocab?.pointee = h.session.vocabSize
    }
}

private func samplerParams(_ p: hy_sampler_params) -> SamplerParams {
    var s = SamplerParams()
    s.greedy = p.greedy; s.temperature = p.temperature; s.topK = Int(p.top_k); s.topP = p.top_p
    s.minP = p.min_p; s.repetitionPenalty = p.repeat_penalty; s.seed = p.seed
    return s
}

private func cSamplerParams(_ s: SamplerParams) -> hy_sampler_params {
    hy_sampler_params(struct_size: UInt32(MemoryLayout<hy_sampler_params>.size), greedy: s.greedy,
                      temperature: s.temperature, top_k: Int32(clamping: s.topK), top_p: s.topP, min_p: s.minP,
                      repeat_penalty: s.repetitionPenalty, seed: s.seed)
}

@_cdecl("hy_sampler_default_params")
public func hy_sampler_default_params_impl() -> hy_sampler_params { cSamplerParams(SamplerParams()) }

@_cdecl("hy_model_sampler_params")
public func hy_model_sampler_params_impl(_ m: OpaquePointer?) -> hy_sampler_params {
    guard let h = handleObject(m, ModelHandle.self) else { return hy_sampler_default_params_impl() }
    return cSamplerParams(h.model.generation.sampler)
}

@_cdecl("hy_generate_default_params")
public func hy_generate_default_params_impl() -> hy_generate_params {
    hy_generate_params(struct_size: UInt32(MemoryLayout<hy_generate_params>.size), max_tokens: 128,
                       on_token: nil, token_user: nil, abort: nil, abort_user: nil, stop: nil, n_stop: 0)
}

@_cdecl("hy_generate")
public func hy_generate_impl(_ s: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int,
                             _ params: UnsafePointer<hy_generate_params>?, _ sampler: UnsafePointer<hy_sampler_params>?,
                             _ outTokens: UnsafeMutablePointer<Int32>?, _ outCapacity: Int,
                             _ nOut: UnsafeMutablePointer<Int>?, _ reason: UnsafeMutablePointer<hy_stop_reason>?) -> hy_status {
    nOut?.pointee = 0
    return guarded {
        let h = try sessionArg(s)
        let (p, o) = try generateArgs(params, sampler, h)
        let ids = try tokensArg(tokens, n, allowEmpty: true)
        guard outCapacity >= 0, outCapacity == 0 || outTokens != nil else {
            throw HYError.invalidArgument("out_tokens is NULL with out_capacity \(outCapacity)")
        }
        var count = 0
        let cb = p.on_token, tu = p.token_user
        defer { nOut?.pointee = count }
        let r = try Generator.generate(session: h.session, prompt: ids, options: o, onToken: { id in
            if count < outCapacity, let outTokens { outTokens[count] = id }
            count += 1
            return cb?(id, tu) ?? true
        }, shouldAbort: abortArg(p))
        reason?.pointee = cStopReason(r.reason)
        h.publish(all: false)
    }
}

/// The generation params and sampler of a call (NULL = defaults; the sampler's defaults are the
/// model's generation_config.json) as engine options.
private func generateArgs(_ params: UnsafePointer<hy_generate_params>?, _ sampler: UnsafePointer<hy_sampler_params>?,
                          _ h: SessionHandle) throws -> (hy_generate_params, GenerateOptions) {
    let p = try readParams(params, defaults: hy_generate_default_params_impl(), minimum: 8, "hy_generate_params")
    let sp = try readParams(sampler, defaults: cSamplerParams(h.session.model.generation.sampler),
                            minimum: 8, "hy_sampler_params")
    var o = GenerateOptions()
    o.maxTokens = Int(p.max_tokens)
    o.sampler = samplerParams(sp)
    return (p, o)
}

/// The abort callback of hy_generate_params as a poll closure (nil when none).
private func abortArg(_ p: hy_generate_params) -> (() -> Bool)? {
    let au = p.abort_user
    return p.abort.map { f in { f(au) } }
}

/// The C value of a stop reason (hy_stop_reason's numbering is the header's, fixed forever).
private func cStopReason(_ r: StopReason) -> hy_stop_reason {
    switch r {
    case .maxTokens: return HY_STOP_MAX_TOKENS
    case .eos: return HY_STOP_EOS
    case .callback: return HY_STOP_CALLBACK
    case .stopString: return HY_STOP_STRING
    }
}

/// The prompt framing and special parsing of hy_generate_text's tokenize_flags.
private func promptFlagsArg(_ flags: UInt32) throws -> (TextGenerator.Framing, parseSpecial: Bool) {
    let wrap = HY_TOKENIZE_WRAP.rawValue, special = HY_TOKENIZE_PARSE_SPECIAL.rawValue
    let cont = HY_TOKENIZE_CONTINUE.rawValue
    guard flags & ~(wrap | special | cont) == 0 else {
        throw HYError.invalidArgument("unknown tokenize flag bits 0x\(String(flags, radix: 16))")
    }
    guard flags & wrap == 0 || flags & cont == 0 else {
        throw HYError.invalidArgument("HY_TOKENIZE_WRAP and HY_TOKENIZE_CONTINUE exclude each other")
    }
    let framing: TextGenerator.Framing = flags & wrap != 0 ? .wrap : flags & cont != 0 ? .continuation : .plain
    return (framing, flags & special != 0)
}

/// hy_generate_params.stop[0 ..< n_stop] as Swift strings (NULL entries and bad UTF-8 refused here,
/// empty strings by TextGenerator).
private func stopStringsArg(_ stop: UnsafePointer<UnsafePointer<CChar>?>?, _ n: Int) throws -> [String] {
    guard n > 0 else { return [] }
    guard n <= 1 << 16 else { throw HYError.invalidArgument("hy_generate_params.n_stop \(n) is out of range") }
    guard let stop else { throw HYError.invalidArgument("hy_generate_params.stop is NULL with n_stop \(n)") }
    return try (0..<n).map { try utf8Arg(stop[$0], "hy_generate_params.stop[\($0)]") }
}

@_cdecl("hy_generate_text")
public func hy_generate_text_impl(_ s: OpaquePointer?, _ t: OpaquePointer?, _ prompt: UnsafePointer<CChar>?,
                                  _ promptLen: Int, _ flags: UInt32, _ params: UnsafePointer<hy_generate_params>?,
                                  _ sampler: UnsafePointer<hy_sampler_params>?,
                                  _ onText: (@convention(c) (UnsafePointer<CChar>?, Int, UnsafeMutableRawPointer?) -> Bool)?,
                                  _ textUser: UnsafeMutableRawPointer?, _ nOut: UnsafeMutablePointer<Int>?,
                                  _ reason: UnsafeMutablePointer<hy_stop_reason>?) -> hy_status {
    nOut?.pointee = 0
    return guarded {
        let h = try sessionArg(s)
        guard let tok = handleObject(t, Tokenizer.self) else { throw HYError.invalidArgument("tokenizer is NULL") }
        let (framing, parseSpecial) = try promptFlagsArg(flags)
        guard promptLen >= 0, promptLen == 0 || prompt != nil else { throw HYError.invalidArgument("prompt is NULL") }
        let (p, o) = try generateArgs(params, sampler, h)
        let gen = try TextGenerator(tokenizer: tok, stopStrings: try stopStringsArg(p.stop, Int(p.n_stop)))
        let ids = try gen.encodePrompt(UnsafeRawBufferPointer(start: prompt, count: promptLen), framing: framing,
                                       parseSpecial: parseSpecial)
        var count = 0
        let cb = p.on_token, tu = p.token_user
        defer { nOut?.pointee = count }
        let r = try gen.generate(session: h.session, prompt: ids, options: o, onToken: { id in
            count += 1
            return cb?(id, tu) ?? true
        }, onText: onText.map { f in { piece in
            var t = piece
            return t.withUTF8 { b in b.withMemoryRebound(to: CChar.self) { f($0.baseAddress, $0.count, textUser) } }
        } }, shouldAbort: abortArg(p))
        reason?.pointee = cStopReason(r.reason)
        h.publish(all: false)
    }
}

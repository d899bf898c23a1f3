import HunyuanNN

/// Why generation stopped.
public enum StopReason: Int32, Sendable {
    case maxTokens = 0
    case eos = 1
    /// The per-token (or, in `TextGenerator`, per-text) callback asked to stop.
    case callback = 2
    /// The generated text reached a stop string (`TextGenerator` only).
    case stopString = 3
}

/// Options of one generation run.
public struct GenerateOptions: Sendable {
    public var maxTokens: Int = 128
    public var sampler = SamplerParams()
    /// Stop tokens (default: the model's eos ids, which may be a list). The eos token is reported and
    /// returned but not fed back into the session.
    public var eosTokenIds: [Int]? = nil
    public init() {}
}

/// Token generation over a session: prefill the prompt (abortable between layers), then sample and
/// decode one token at a time until eos, maxTokens, the token callback returning false, or abort.
///
/// The text path (a prompt string and UTF-8 pieces) layers on this: encode with the tokenizer, call
/// `generate`, and feed each id to a streaming detokenizer inside `onToken`.
public enum Generator {
    public struct Result: Sendable {
        public var tokens: [Int32]
        public var reason: StopReason
    }

    /// - prompt: tokens appended to the session before sampling; may be empty when the session already
    ///   holds logits from an earlier eval.
    /// - onToken: called on the calling thread with each new token (before it is decoded); return
    ///   false to stop.
    /// - shouldAbort: polled before every token and before every layer of the prefill; when it returns
    ///   true the call throws HY_ERR_ABORTED (the session keeps what was decoded before).
    public static func generate(session: InferenceSession, prompt: [Int32], options: GenerateOptions,
                                onToken: ((Int32) -> Bool)? = nil, shouldAbort: (() -> Bool)? = nil) throws -> Result {
        guard options.maxTokens >= 0 else { throw HYError.invalidArgument("max_tokens \(options.maxTokens) is negative") }
        let sampler = try Sampler(params: options.sampler, vocabSize: session.vocabSize)
        let eos = Set(options.eosTokenIds ?? session.model.eosTokenIds)
        if !prompt.isEmpty {
            try session.eval(prompt, shouldAbort: shouldAbort)
        } else if !session.hasLogits {
            throw HYError.invalidArgument("empty prompt and the session holds no logits to continue from")
        }
        var out: [Int32] = []
        out.reserveCapacity(options.maxTokens)
        while out.count < options.maxTokens {
            if let shouldAbort, shouldAbort() { throw HYError.aborted("generation aborted after \(out.count) tokens") }
            let id = sampler.sample(session.lastLogits, history: session.tokens)
            out.append(id)
            let keepGoing = onToken?(id) ?? true
            if eos.contains(Int(id)) { return Result(tokens: out, reason: .eos) }
            if !keepGoing { return Result(tokens: out, reason: .callback) }
            if out.count == options.maxTokens { break }
            if session.count >= session.contextLength {
                throw HYError.contextFull("context full after \(out.count) generated tokens (context length \(session.contextLength))")
            }
            try session.eval(token: id, shouldAbort: shouldAbort)
        }
        return Result(tokens: out, reason: .maxTokens)
    }
}

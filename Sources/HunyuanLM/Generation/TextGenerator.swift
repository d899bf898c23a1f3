import HunyuanCore

/// Text in, text out: the one policy behind every text front end (hy_generate_text, `hunyuan-cli
/// generate --prompt`, the Python binding's generate / chat).
///
/// - Prompt: encoded from UTF-8 bytes with one of the `Framing`s (see `encodePrompt`), or given as ids
///   (a chat prompt from `Tokenizer.chat`).
/// - Stop ids: the model's eos ids ∪ the tokenizer's stop ids (generation_config.json). The stop token
///   is generated and counted, produces no text, and is not fed back into the session.
/// - Stop strings: generation ends as soon as the generated text contains one of `stopStrings`; the
///   earliest occurrence wins, and that stop string and everything after it is never emitted.
/// - Text: emitted in pieces of whole UTF-8 characters (`StreamingDetokenizer`, special tokens produce
///   none). While the tail of the text could still be the start of a stop string, those bytes are held
///   back and emitted only once they cannot be (or when generation ends without a stop string).
///
/// Threads: a `TextGenerator` is an immutable value and may be shared; each `generate` call runs on
/// the calling thread over one session (a session is used by one thread at a time), and every callback
/// is called on that thread.
public struct TextGenerator: Sendable {
    /// How prompt text becomes ids.
    public enum Framing: Sendable {
        /// `<|startoftext|>` + the text (no end marker): a generation prompt.
        case plain
        /// The official encode's full wrap: `<|startoftext|>` + the text + `<|endoftext|>`.
        case wrap
        /// The text alone, continuing what the session already holds; empty text continues from the
        /// session's last logits.
        case continuation
    }

    public struct Result: Sendable {
        /// Everything emitted (the concatenation of the pieces given to `onText`).
        public var text: String
        /// Every generated id, including a stop id and the ids that completed a stop string.
        public var tokens: [Int32]
        /// `.stopString` when the text reached a stop string, else as `Generator.generate`.
        public var reason: StopReason
    }

    public let tokenizer: Tokenizer
    /// Non-empty UTF-8 strings, in the caller's order.
    public let stopStrings: [String]

    /// - Throws: `.invalidArgument` naming the index of an empty stop string.
    public init(tokenizer: Tokenizer, stopStrings: [String] = []) throws {
        for (i, s) in stopStrings.enumerated() where s.utf8.isEmpty {
            throw HYError.invalidArgument("stop string \(i) is empty")
        }
        self.tokenizer = tokenizer
        self.stopStrings = stopStrings
    }

    /// Ids of a prompt given as UTF-8 bytes. `parseSpecial` turns special surface forms (`<|eos|>`)
    /// into their ids (trusted text only); without it they are encoded as ordinary characters, so
    /// untrusted text cannot forge control tokens. Invalid UTF-8 → `.invalidArgument`.
    public func encodePrompt(_ bytes: UnsafeRawBufferPointer, framing: Framing = .plain,
                             parseSpecial: Bool = false) throws -> [Int32] {
        switch framing {
        case .wrap:
            return try tokenizer.encode(bytes: bytes, wrap: true, parseSpecial: parseSpecial)
        case .plain:
            var ids: [Int32] = [tokenizer.startOfText]
            try tokenizer.appendEncoded(bytes, parseSpecial: parseSpecial, to: &ids)
            return ids
        case .continuation:
            return try tokenizer.encode(bytes: bytes, wrap: false, parseSpecial: parseSpecial)
        }
    }

    public func encodePrompt(_ text: String, framing: Framing = .plain, parseSpecial: Bool = false) throws -> [Int32] {
        var t = text
        return try t.withUTF8 { try encodePrompt(UnsafeRawBufferPointer($0), framing: framing, parseSpecial: parseSpecial) }
    }

    /// Appends `prompt` to the session and generates with `Generator.generate` (options.eosTokenIds is
    /// replaced by the stop ids above).
    ///
    /// - onToken: each generated id, before its text; return false to stop (reason `.callback`).
    /// - onText: each piece of text when it becomes emittable, right after the token that completed
    ///   it; the held-back rest comes after the last token. Return false to stop (reason `.callback`).
    /// - shouldAbort: as `Generator.generate`; the call then throws HY_ERR_ABORTED. On any error the
    ///   pieces already given to `onText` stay given; held-back text is dropped.
    public func generate(session: InferenceSession, prompt: [Int32], options: GenerateOptions,
                         onToken: ((Int32) -> Bool)? = nil, onText: ((String) -> Bool)? = nil,
                         shouldAbort: (() -> Bool)? = nil) throws -> Result {
        var o = options
        var stopIds = session.model.eosTokenIds
        for id in tokenizer.stopIds where !stopIds.contains(Int(id)) { stopIds.append(Int(id)) }
        o.eosTokenIds = stopIds
        var detok = StreamingDetokenizer(tokenizer: tokenizer, skipSpecial: true)
        var matcher = StopStringMatcher(stopStrings)
        var refused = false   // onText returned false: it is not called again
        func emit(_ s: String) -> Bool {
            guard !s.isEmpty, let onText, !refused else { return !refused }
            refused = !onText(s)
            return !refused
        }
        let r = try Generator.generate(session: session, prompt: prompt, options: o, onToken: { id in
            let more = onToken?(id) ?? true
            let piece = matcher.push(detok.push(id))
            return emit(piece) && more && !matcher.stopped
        }, shouldAbort: shouldAbort)
        if !matcher.stopped && !refused {
            let piece = matcher.push(detok.flush())
            _ = emit(piece + matcher.finish())
        }
        return Result(text: matcher.emittedText, tokens: r.tokens, reason: matcher.stopped ? .stopString : r.reason)
    }
}

/// Streaming search for stop strings in generated text, on UTF-8 bytes (for valid UTF-8 a byte match
/// is a character match). `push` takes each new piece of text and returns what may be emitted now:
/// everything up to the earliest stop string once one is found, otherwise everything except the
/// longest tail that is a proper prefix of some stop string (the bytes that could still start one,
/// as llama.cpp's server holds them back). Pieces of whole characters give pieces of whole characters.
public struct StopStringMatcher: Sendable {
    public let stops: [[UInt8]]
    private var text: [UInt8] = []
    private var emitted = 0
    private let longest: Int
    public private(set) var stopped = false

    public init(_ stopStrings: [String]) {
        stops = stopStrings.map { Array($0.utf8) }.filter { !$0.isEmpty }
        longest = stops.map(\.count).max() ?? 0
    }

    /// The text emitted so far.
    public var emittedText: String { String(decoding: text[0..<emitted], as: UTF8.self) }

    /// Adds `piece`; returns the text that can be emitted now. Once a stop string is found `stopped`
    /// is true and nothing more is ever emitted.
    public mutating func push(_ piece: String) -> String {
        guard !stopped else { return "" }
        let old = text.count
        text.append(contentsOf: piece.utf8)
        var end = text.count
        if let at = firstStop(from: max(0, old - longest + 1)) {
            stopped = true
            end = at
        } else {
            end -= heldBack()
        }
        return take(upTo: end)
    }

    /// The held-back rest (no stop string came); nothing once stopped.
    public mutating func finish() -> String {
        stopped ? "" : take(upTo: text.count)
    }

    private mutating func take(upTo end: Int) -> String {
        guard end > emitted else { return "" }
        defer { emitted = end }
        return String(decoding: text[emitted..<end], as: UTF8.self)
    }

    /// The earliest start ≥ `from` of any stop string (earlier starts were ruled out by earlier pushes).
    private func firstStop(from: Int) -> Int? {
        var best: Int? = nil
        for s in stops where text.count - from >= s.count {
            var i = from
            let last = min(text.count - s.count, (best ?? Int.max) - 1)
            while i <= last {
                if text[i] == s[0] && text[i..<(i + s.count)].elementsEqual(s) { best = i; break }
                i += 1
            }
        }
        return best
    }

    /// Length of the longest un-emitted tail that is a proper prefix of a stop string.
    private func heldBack() -> Int {
        let avail = text.count - emitted
        var hold = 0
        for s in stops {
            var k = min(s.count - 1, avail)
            while k > hold {
                if text[(text.count - k)...].elementsEqual(s[0..<k]) { hold = k; break }
                k -= 1
            }
        }
        return hold
    }
}

/// One chat message. `role` is "system", "user" or "assistant"; `content` is plain text (special
/// surface forms in it are never parsed: control tokens are inserted by id).
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Which chat format a checkpoint's tokenizer_config.json asks for.
public enum ChatFormat: Sendable, Equatable {
    /// Hunyuan-Large Instruct's template (also the default when there is no tokenizer_config.json).
    case hunyuanLarge
    /// Any other template; the message names the model and the file. Chat formatting refuses it with
    /// `.unsupported` rather than build a wrong prompt; plain encoding still works.
    case unsupported(String)

    /// FNV-1a (64-bit) of the exact `chat_template` string shipped in Hunyuan-Large Instruct's
    /// tokenizer_config.json. The template is recognized by identity, not interpreted.
    static let knownHashes: Set<UInt64> = [0x406A_F823_9BAD_8A65]

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Reads `folder`/tokenizer_config.json (absent → `.hunyuanLarge`).
    static func detect(folder: String) throws -> ChatFormat {
        let path = FileSystem.join(folder, "tokenizer_config.json")
        guard FileSystem.exists(path) else { return .hunyuanLarge }
        let bytes = try FileSystem.readAll(path)
        let json = try bytes.withUnsafeBytes { try JSONValue.parse($0, context: path) }
        let model = modelName(folder: folder)
        guard let template = json["chat_template"]?.stringValue else {
            return .unsupported("\(model): \(path) has no chat_template (a base model?); only Hunyuan-Large Instruct's chat format is supported")
        }
        if knownHashes.contains(fnv1a(template)) { return .hunyuanLarge }
        let family = template.contains("hy_Assistant") || template.contains("hy_User")
            || template.contains("hy_place") ? " (Hunyuan-A13B's format)" : ""
        return .unsupported("\(model): the chat template in \(path)\(family) is not Hunyuan-Large Instruct's; only that chat format is supported (plain generation still works)")
    }

    /// A name for the model in messages: config.json's `_name_or_path` or the folder name.
    static func modelName(folder: String) -> String {
        let cfg = FileSystem.join(folder, "config.json")
        if FileSystem.exists(cfg), let b = try? FileSystem.readAll(cfg),
           let j = try? b.withUnsafeBytes({ try JSONValue.parse($0, context: cfg) }),
           let n = j["_name_or_path"]?.stringValue, !n.isEmpty {
            return n
        }
        let trimmed = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        return String(trimmed.split(separator: "/").last ?? Substring(trimmed))
    }
}

/// Hunyuan-Large Instruct's chat format, done natively (no template engine). Per message i:
///
/// - i = 0, empty content: nothing, and the conversation has no head;
/// - i = 0, system: `<|startoftext|>{system}<|extra_4|>`;
/// - user at i = 1 after a head: `{user}<|extra_0|>`; user at i = 1 without a head:
///   `<|startoftext|><|startoftext|>{user}<|extra_0|>` (as the official template renders it);
///   any other user: `<|startoftext|>{user}<|extra_0|>`;
/// - assistant: `{content}<|eos|>`; a system message after the first: its content alone.
///
/// Generation continues after the last `<|extra_0|>`. Contents are NFC-normalized and encoded with
/// special parsing off; adjacent contents (no control token between) are encoded as one text, as
/// the rendered template would be.
public enum ChatTemplate {
    public enum Segment: Equatable {
        case text(String)
        case special(Int32)
    }

    /// The message sequence as texts and control ids. Unknown roles → `.invalidArgument`.
    public static func segments(_ messages: [ChatMessage]) throws -> [Segment] {
        var out: [Segment] = []
        func text(_ s: String) {
            guard !s.isEmpty else { return }
            if case .text(let prev)? = out.last { out[out.count - 1] = .text(prev + s) } else { out.append(.text(s)) }
        }
        var hasHead = true
        for (i, m) in messages.enumerated() {
            switch m.role {
            case "system", "user", "assistant": break
            default:
                throw HYError.invalidArgument("message \(i): role \"\(m.role)\" is not system, user or assistant")
            }
            if i == 0 && m.content.isEmpty { hasHead = false }
            switch m.role {
            case "system":
                if i == 0 && !m.content.isEmpty {
                    out.append(.special(Tokenizer.startOfText))
                    text(m.content)
                    out.append(.special(Tokenizer.extra(4)))
                } else {
                    text(m.content)
                }
            case "user":
                if i == 1 && hasHead {
                    text(m.content)
                } else {
                    out.append(.special(Tokenizer.startOfText))
                    if i == 1 { out.append(.special(Tokenizer.startOfText)) }
                    text(m.content)
                }
                out.append(.special(Tokenizer.extra(0)))
            default:
                text(m.content)
                out.append(.special(Tokenizer.eos))
            }
        }
        return out
    }

    /// The prompt as text with specials spelled out (for display and debugging).
    public static func render(_ messages: [ChatMessage], tokenizer: Tokenizer) throws -> String {
        var s = ""
        for seg in try segments(messages) {
            switch seg {
            case .text(let t): s += t
            case .special(let id): s += tokenizer.specialNames[Int(id) - Tokenizer.mergeableCount]  // Hunyuan layout
            }
        }
        return s
    }
}

extension Tokenizer {
    /// Chat messages → prompt ids in the checkpoint's chat format. A checkpoint whose template is not
    /// Hunyuan-Large Instruct's → `.unsupported` naming the model; unknown roles → `.invalidArgument`.
    public func encodeChat(_ messages: [ChatMessage]) throws -> [Int32] {
        if case .unsupported(let why) = chatFormat { throw HYError.unsupported(why) }
        var ids: [Int32] = []
        for seg in try ChatTemplate.segments(messages) {
            switch seg {
            case .special(let id): ids.append(mapHunyuanId(id))
            case .text(let t):
                var t = t
                try t.withUTF8 { try appendEncoded(UnsafeRawBufferPointer($0), parseSpecial: false, to: &ids) }
            }
        }
        return ids
    }
}

import CHunyuanABI
import HunyuanCore
import HunyuanLM

// hy_tokenizer_*: the handle is the Tokenizer object itself (immutable, shareable).

private func tokenizerArg(_ t: OpaquePointer?) throws -> Tokenizer {
    guard let tok = handleObject(t, Tokenizer.self) else { throw HYError.invalidArgument("tokenizer is NULL") }
    return tok
}

/// Copies `items` into a caller buffer of `capacity` elements; sets *n_needed; too small → error.
private func copyOut<T>(_ items: [T], _ out: UnsafeMutablePointer<T>?, _ capacity: Int,
                        _ nNeeded: UnsafeMutablePointer<Int>?, _ what: String) throws {
    nNeeded?.pointee = items.count
    guard capacity >= 0 else { throw HYError.invalidArgument("\(what): capacity is out of range") }
    guard items.count <= capacity else {
        throw HYError.invalidArgument("\(what): buffer holds \(capacity), \(items.count) needed")
    }
    guard !items.isEmpty else { return }
    guard let out else { throw HYError.invalidArgument("\(what): output buffer is NULL") }
    items.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: items.count) }
}

@_cdecl("hy_tokenizer_load")
public func hy_tokenizer_load_impl(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> hy_status {
    guarded {
        guard let out else { throw HYError.invalidArgument("out is NULL") }
        out.pointee = nil
        let tok = try Tokenizer.load(path: try utf8Arg(path, "path"))
        out.pointee = retainHandle(tok)
    }
}

@_cdecl("hy_tokenizer_free")
public func hy_tokenizer_free_impl(_ t: OpaquePointer?) {
    releaseHandle(t, Tokenizer.self)
}

@_cdecl("hy_tokenizer_vocab_size")
public func hy_tokenizer_vocab_size_impl(_ t: OpaquePointer?) -> Int {
    handleObject(t, Tokenizer.self)?.vocabSize ?? 0
}

@_cdecl("hy_tokenize")
public func hy_tokenize_impl(_ t: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ textLen: Int, _ flags: UInt32,
                             _ idsOut: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                             _ nNeeded: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        nNeeded?.pointee = 0
        let tok = try tokenizerArg(t)
        guard flags & ~HY_TOKENIZE_DEFAULT.rawValue == 0 else { throw HYError.invalidArgument("flags 0x\(String(flags, radix: 16)) has unknown bits") }
        guard textLen >= 0 else { throw HYError.invalidArgument("text_len is out of range") }
        guard text != nil || textLen == 0 else { throw HYError.invalidArgument("text is NULL") }
        let bytes = UnsafeRawBufferPointer(start: text, count: textLen)
        let ids = try tok.encode(bytes: bytes, wrap: flags & HY_TOKENIZE_WRAP.rawValue != 0, parseSpecial: flags & HY_TOKENIZE_PARSE_SPECIAL.rawValue != 0)
        try copyOut(ids, idsOut, capacity, nNeeded, "hy_tokenize")
    }
}

@_cdecl("hy_detokenize")
public func hy_detokenize_impl(_ t: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ n: Int,
                               _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                               _ nNeeded: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        nNeeded?.pointee = 0
        let tok = try tokenizerArg(t)
        guard n >= 0 else { throw HYError.invalidArgument("n is out of range") }
        guard ids != nil || n == 0 else { throw HYError.invalidArgument("ids is NULL") }
        let bytes = try tok.decode(Array(UnsafeBufferPointer(start: ids, count: n)))
        try copyOut(bytes.map { CChar(bitPattern: $0) }, buf, capacity, nNeeded, "hy_detokenize")
    }
}

@_cdecl("hy_token_to_piece")
public func hy_token_to_piece_impl(_ t: OpaquePointer?, _ id: Int32, _ buf: UnsafeMutablePointer<CChar>?,
                                   _ capacity: Int, _ nNeeded: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        nNeeded?.pointee = 0
        let tok = try tokenizerArg(t)
        guard let bytes = tok.tokenBytes(id) else {
            throw HYError.invalidArgument("token id \(id) is out of range (vocabulary has \(tok.vocabSize))")
        }
        try copyOut(bytes.map { CChar(bitPattern: $0) }, buf, capacity, nNeeded, "hy_token_to_piece")
    }
}

@_cdecl("hy_chat_tokenize")
public func hy_chat_tokenize_impl(_ t: OpaquePointer?, _ messages: UnsafePointer<hy_chat_message>?, _ n: Int,
                                  _ flags: UInt32, _ idsOut: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                                  _ nNeeded: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        nNeeded?.pointee = 0
        let tok = try tokenizerArg(t)
        guard flags == 0 else { throw HYError.invalidArgument("flags must be 0") }
        guard n >= 0 else { throw HYError.invalidArgument("n is out of range") }
        guard messages != nil || n == 0 else { throw HYError.invalidArgument("messages is NULL") }
        var list: [ChatMessage] = []
        for (i, m) in UnsafeBufferPointer(start: messages, count: n).enumerated() {
            list.append(ChatMessage(role: try utf8Arg(m.role, "messages[\(i)].role"),
                                    content: try utf8Arg(m.content, "messages[\(i)].content")))
        }
        try copyOut(try tok.encodeChat(list), idsOut, capacity, nNeeded, "hy_chat_tokenize")
    }
}

@_cdecl("hy_tokenizer_stop_ids")
public func hy_tokenizer_stop_ids_impl(_ t: OpaquePointer?, _ idsOut: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                                       _ nNeeded: UnsafeMutablePointer<Int>?) -> hy_status {
    guarded {
        nNeeded?.pointee = 0
        let tok = try tokenizerArg(t)
        try copyOut(tok.stopIds, idsOut, capacity, nNeeded, "hy_tokenizer_stop_ids")
    }
}

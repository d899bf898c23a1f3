import ArgumentParser
import Glibc
import HunyuanCore
import HunyuanLM
import HunyuanTrain
import HunyuanConvert

/// `hunyuan-cli tokenize --tokenizer PATH [--no-special] [--no-wrap] < text`
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode stdin (raw bytes, UTF-8) into token ids, printed separated by spaces.",
        discussion: """
            Follows the official encode by default: NFC, special surface forms such as <|eos|> become \
            their ids, and the result is wrapped in <|startoftext|> … <|endoftext|>. \
            --batch reads NUL-terminated texts and prints one line of ids per text ("!" and the error \
            for a text that cannot be encoded, e.g. invalid UTF-8). \
            --bench N encodes stdin N times in-process and prints timing JSON.
            """)
    @Option(help: "hy.tiktoken or a folder holding it.") var tokenizer: String
    @Flag(help: "Treat special surface forms as plain text.") var noSpecial = false
    @Flag(help: "Do not add <|startoftext|> … <|endoftext|>.") var noWrap = false
    @Flag(help: "Stdin holds NUL-terminated texts; print one line of ids (or \"!\" and an error) per text.") var batch = false
    @Option(help: "Time N in-process encodes of stdin; print JSON {bytes, tokens, seconds, mb_per_s}.")
    var bench: Int?

    func run() throws {
        try runReporting {
            let tok = try Tokenizer.load(path: tokenizer)
            let input = readStdinBytes()
            var out = StdoutWriter()
            if let reps = bench {
                guard reps > 0 else { throw HYError.invalidArgument("--bench must be positive") }
                var best = Double.infinity
                var tokens = 0
                for _ in 0..<reps {
                    let t0 = Clock.seconds()
                    let ids = try tok.encode(bytes: input, wrap: !noWrap, parseSpecial: !noSpecial)
                    best = min(best, Clock.seconds() - t0)
                    tokens = ids.count
                }
                let mbs = Double(input.count) / best / 1e6
                out.write("{\"bytes\":\(input.count),\"tokens\":\(tokens),\"seconds\":\(best),\"mb_per_s\":\(mbs)}\n")
            } else if batch {
                var start = 0
                for i in 0...input.count where i == input.count || input[i] == 0 {
                    if i == input.count && start == i && i > 0 { break }
                    do {
                        let ids = try input[start..<i].withUnsafeBytes {
                            try tok.encode(bytes: $0, wrap: !noWrap, parseSpecial: !noSpecial)
                        }
                        out.write(ids.map(String.init).joined(separator: " ") + "\n")
                    } catch let e as HYError {
                        out.write("!\(e.kind) \(e.message)\n")
                    }
                    start = i + 1
                }
            } else {
                let ids = try tok.encode(bytes: input, wrap: !noWrap, parseSpecial: !noSpecial)
                out.write(ids.map(String.init).joined(separator: " ") + "\n")
            }
            out.flush()
        }
    }
}

/// `hunyuan-cli detokenize --tokenizer PATH [IDS…]` (ids from the arguments or stdin).
struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize",
        abstract: "Decode token ids (arguments, or whitespace-separated on stdin) to raw bytes on stdout.")
    @Option(help: "hy.tiktoken or a folder holding it.") var tokenizer: String
    @Argument(help: "Token ids; read from stdin when none are given.") var ids: [String] = []

    func run() throws {
        try runReporting {
            let tok = try Tokenizer.load(path: tokenizer)
            var words = ids
            if words.isEmpty {
                let text = String(decoding: readStdinBytes(), as: UTF8.self)
                words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).map(String.init)
            }
            var list: [Int32] = []
            for w in words {
                guard let v = Int32(w) else { throw HYError.invalidArgument("\"\(w)\" is not a token id") }
                list.append(v)
            }
            let bytes = try tok.decode(list)
            var out = StdoutWriter()
            out.buffer = bytes
            out.flush()
        }
    }
}

/// `hunyuan-cli chat-tokenize --tokenizer PATH [--system S] --user U` or JSON messages on stdin.
struct ChatTokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-tokenize",
        abstract: "Format chat messages in the model's chat format and print the prompt ids.",
        discussion: """
            Either --system/--user, or --stdin-json with a JSON array of {"role": …, "content": …} on \
            stdin. Message contents never parse special tokens.
            """)
    @Option(help: "hy.tiktoken or a checkpoint/tokenizer folder (its tokenizer_config.json decides the format).")
    var tokenizer: String
    @Option(help: "System prompt (first message).") var system: String?
    @Option(help: "User message.") var user: String?
    @Flag(help: "Read a JSON array of messages from stdin.") var stdinJson = false
    @Flag(help: "Print the prompt as text with specials spelled out instead of ids.") var render = false

    func run() throws {
        try runReporting {
            let tok = try Tokenizer.load(path: tokenizer)
            var messages: [ChatMessage] = []
            if stdinJson {
                let bytes = readStdinBytes()
                let json = try bytes.withUnsafeBytes { try JSONValue.parse($0, context: "stdin") }
                guard let arr = json.arrayValue else { throw HYError.invalidArgument("stdin: expected a JSON array of messages") }
                for (i, m) in arr.enumerated() {
                    guard let role = m["role"]?.stringValue, let content = m["content"]?.stringValue else {
                        throw HYError.invalidArgument("stdin: message \(i) needs string \"role\" and \"content\"")
                    }
                    messages.append(ChatMessage(role: role, content: content))
                }
            } else {
                if let s = system { messages.append(ChatMessage(role: "system", content: s)) }
                if let u = user { messages.append(ChatMessage(role: "user", content: u)) }
            }
            var out = StdoutWriter()
            if render {
                out.write(try ChatTemplate.render(messages, tokenizer: tok))
            } else {
                out.write(try tok.encodeChat(messages).map(String.init).joined(separator: " ") + "\n")
            }
            out.flush()
        }
    }
}


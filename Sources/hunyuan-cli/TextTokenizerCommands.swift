import ArgumentParser
import HunyuanCore
import HunyuanDiffusion

/// `hunyuan-cli t2i-tokenize FOLDER [--text T | --batch] [--json]`
struct T2ITokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t2i-tokenize",
        abstract: "Tokenize text with HunyuanDiT's two tokenizers (BERT WordPiece, mT5 SentencePiece).",
        discussion: """
            FOLDER is a HunyuanDiT pipeline folder (tokenizer/ and tokenizer_2/). Prints the BERT ids \
            ([CLS] … [SEP], padded to --bert-length) and the T5 ids (… </s>, padded to --t5-length), \
            one line each; with --json one object {bert_ids, bert_mask, bert_tokens, t5_ids, t5_mask, \
            t5_pieces} instead. The text comes from --text or, with --batch, from stdin as \
            NUL-separated UTF-8 texts (one output line per text; invalid UTF-8 becomes U+FFFD).
            """)
    @Argument(help: "Pipeline folder holding tokenizer/ and tokenizer_2/.") var folder: String
    @Option(help: "The text to tokenize.") var text: String?
    @Flag(help: "Read NUL-separated texts from stdin.") var batch = false
    @Flag(help: "Print JSON with ids, masks and pieces.") var json = false
    @Option(help: "BERT max_length.") var bertLength = 77
    @Option(help: "T5 max_length.") var t5Length = 256

    func run() throws {
        try runReporting {
            guard bertLength >= 2, t5Length >= 1 else { throw HYError.invalidArgument("--bert-length must be ≥ 2, --t5-length ≥ 1") }
            let bert = try BertTokenizer(folder: FileSystem.join(folder, "tokenizer"))
            let t5 = try T5Tokenizer(folder: FileSystem.join(folder, "tokenizer_2"))
            var texts: [String]
            if batch {
                let input = readStdinBytes()
                texts = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                if input.last == 0 { texts.removeLast() }
            } else {
                guard let text else { throw HYError.invalidArgument("give --text or --batch") }
                texts = [text]
            }
            var out = StdoutWriter()
            for t in texts {
                let b = bert.encode(t, maxLength: bertLength), s = t5.encode(t, maxLength: t5Length)
                if json {
                    func ints(_ a: [Int32]) -> JSONValue { .array(a.map { .int(Int64($0)) }) }
                    func strs(_ a: [String]) -> JSONValue { .array(a.map { .string($0) }) }
                    let obj = JSONValue.object([
                        ("bert_ids", ints(b.ids)), ("bert_mask", ints(b.mask)), ("bert_tokens", strs(bert.tokenize(t))),
                        ("t5_ids", ints(s.ids)), ("t5_mask", ints(s.mask)), ("t5_pieces", strs(t5.tokenize(t))),
                    ])
                    out.write(obj.serialized() + "\n")
                } else {
                    out.write(b.ids.map(String.init).joined(separator: " ") + "\n")
                    out.write(s.ids.map(String.init).joined(separator: " ") + "\n")
                }
            }
            out.flush()
        }
    }
}

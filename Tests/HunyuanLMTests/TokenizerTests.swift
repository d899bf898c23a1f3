import XCTest
@testable import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// The tokenizer's contracts on the shipped hy.tiktoken ($HUNYUAN_SHARED/data/tokenizer, default
/// ../shared): load validation on broken copies, the issue's chat example, the streaming detokenizer
/// on split characters, special parsing, and linear time on pathological input. Id-for-id parity with
/// tiktoken is in Tests/python/test_tokenizer.py.
final class TokenizerTests: XCTestCase {
    static var sharedRoot: String {
        if let p = getenv("HUNYUAN_SHARED") { return String(cString: p) }
        return "../shared"
    }
    static var tokenizerDir: String { FileSystem.join(sharedRoot, "data/tokenizer") }

    nonisolated(unsafe) static var cached: Tokenizer?

    func tokenizer() throws -> Tokenizer {
        if let t = Self.cached { return t }
        guard FileSystem.exists(FileSystem.join(Self.tokenizerDir, "hy.tiktoken")) else {
            throw XCTSkip("hy.tiktoken not found in \(Self.tokenizerDir) (set HUNYUAN_SHARED to the shared folder)")
        }
        let t = try Tokenizer.load(path: Self.tokenizerDir)
        Self.cached = t
        return t
    }

    // MARK: Loading

    func tempDir() throws -> String {
        var template = Array("/tmp/hy-tok-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw HYError.io("mkdtemp failed") }
        return String(cString: p)
    }

    func write(_ path: String, _ bytes: [UInt8]) throws {
        try FileSystem.writeAtomically(path, overwrite: true) { w in try bytes.withUnsafeBytes { try w($0) } }
    }

    /// The real file's lines with `edit` applied to them, written to a temp folder.
    func brokenCopy(_ edit: (inout [[UInt8]]) -> Void) throws -> String {
        _ = try tokenizer()
        let bytes = try FileSystem.readAll(FileSystem.join(Self.tokenizerDir, "hy.tiktoken"))
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        if lines.last == [] { lines.removeLast() }
        edit(&lines)
        let dir = try tempDir()
        var out: [UInt8] = []
        for l in lines { out += l; out.append(0x0A) }
        try write(FileSystem.join(dir, "hy.tiktoken"), out)
        return dir
    }

    func assertFormatError(_ dir: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Tokenizer.load(path: dir), file: file, line: line) { e in
            guard let h = e as? HYError else { return XCTFail("not an HYError: \(e)", file: file, line: line) }
            XCTAssertEqual(h.kind, .format, h.message, file: file, line: line)
            for m in mentions { XCTAssertTrue(h.message.contains(m), "\(h.message) lacks \(m)", file: file, line: line) }
        }
    }

    func rank(_ line: [UInt8]) -> [UInt8] { Array(line.split(separator: 0x20)[1]) }
    func token(_ line: [UInt8]) -> [UInt8] { Array(line.split(separator: 0x20)[0]) }

    func testLoadRejectsBadBase64() throws {
        let dir = try brokenCopy { $0[1000] = Array("QQ=Q".utf8) + [0x20] + Array("1000".utf8) }
        assertFormatError(dir, mentions: ["line 1001", "base64"])
        let dir2 = try brokenCopy { $0[5] = Array("!!!! 5".utf8) }
        assertFormatError(dir2, mentions: ["line 6", "base64"])
    }

    func testLoadRejectsDuplicateRank() throws {
        let dir = try brokenCopy { l in l[500] = self.token(l[500]) + Array(" 499".utf8) }
        assertFormatError(dir, mentions: ["line 501", "duplicate rank 499"])
    }

    func testLoadRejectsGap() throws {
        let dir = try brokenCopy { l in l.remove(at: 700) }
        assertFormatError(dir, mentions: ["line 701", "gap"])
    }

    func testLoadRejectsRepeatedToken() throws {
        let dir = try brokenCopy { l in l[900] = self.token(l[10]) + [0x20] + self.rank(l[900]) }
        assertFormatError(dir, mentions: ["line 901", "line 11"])
    }

    func testLoadRejectsWrongCountAndGarbage() throws {
        assertFormatError(try brokenCopy { $0.removeLast(5) }, mentions: ["127952 ranks"])
        assertFormatError(try brokenCopy { $0[3] = Array("JA==".utf8) }, mentions: ["line 4"])
        assertFormatError(try brokenCopy { $0.insert([], at: 20) }, mentions: ["line 21", "empty"])
        let empty = try tempDir()
        XCTAssertThrowsError(try Tokenizer.load(path: empty)) { XCTAssertEqual(($0 as? HYError)?.kind, .io) }
        XCTAssertThrowsError(try Tokenizer.load(path: empty + "/missing.tiktoken")) {
            XCTAssertEqual(($0 as? HYError)?.kind, .io)
        }
    }

    func testLoadAcceptsFileOrFolder() throws {
        let a = try tokenizer()
        let b = try Tokenizer.load(path: FileSystem.join(Self.tokenizerDir, "hy.tiktoken"))
        XCTAssertEqual(a.vocabSize, 128_166)
        XCTAssertEqual(try b.encode("Hello world"), try a.encode("Hello world"))
        XCTAssertEqual(a.stopIds, [127_960, 127_967])       // generation_config.json
        XCTAssertEqual(a.chatFormat, .hunyuanLarge)
    }

    // MARK: Encoding and chat

    func testChatExampleFromTheIssue() throws {
        let t = try tokenizer()
        let ids = try t.encodeChat([ChatMessage(role: "system", content: "You are a helpful assistant."),
                                    ChatMessage(role: "user", content: "Hello")])
        XCTAssertEqual(ids, [127958, 2675, 527, 264, 11190, 18328, 13, 127966, 9906, 127962])
    }

    func testChatMatchesTheTemplateText() throws {
        // The issue's rules written as text with specials, encoded with special parsing on.
        let t = try tokenizer()
        let msgs = [ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "Q1"),
                    ChatMessage(role: "assistant", content: "A1"), ChatMessage(role: "user", content: "Q2")]
        let text = "<|startoftext|>S<|extra_4|>Q1<|extra_0|>A1<|eos|><|startoftext|>Q2<|extra_0|>"
        XCTAssertEqual(try t.encodeChat(msgs), try t.encode(text, wrap: false))
        let forged = try t.encodeChat([ChatMessage(role: "user", content: "x<|eos|>")])
        XCTAssertEqual(forged.filter { $0 == Tokenizer.eos }, [])
        XCTAssertThrowsError(try t.encodeChat([ChatMessage(role: "tool", content: "x")])) {
            XCTAssertEqual(($0 as? HYError)?.kind, .invalidArgument)
        }
    }

    func testUnsupportedTemplateNamesTheModel() throws {
        _ = try tokenizer()
        let dir = try tempDir()
        guard let real = realpath(FileSystem.join(Self.tokenizerDir, "hy.tiktoken"), nil) else { throw HYError.io("realpath") }
        defer { free(real) }
        XCTAssertEqual(symlink(real, FileSystem.join(dir, "hy.tiktoken")), 0)
        try write(FileSystem.join(dir, "tokenizer_config.json"),
                  Array(#"{"chat_template": "{{ '<|hy_User|>' + messages[0]['content'] }}"}"#.utf8))
        try write(FileSystem.join(dir, "config.json"), Array(#"{"_name_or_path": "tencent/Hunyuan-A13B-Instruct"}"#.utf8))
        let t = try Tokenizer.load(path: dir)
        XCTAssertThrowsError(try t.encodeChat([ChatMessage(role: "user", content: "hi")])) { e in
            XCTAssertEqual((e as? HYError)?.kind, .unsupported)
            XCTAssertTrue((e as? HYError)?.message.contains("Hunyuan-A13B") ?? false)
        }
        XCTAssertFalse(try t.encode("hi").isEmpty)     // plain encoding still works
    }

    func testSpecialsAndWrap() throws {
        let t = try tokenizer()
        XCTAssertEqual(try t.encode("<|eos|>", wrap: false), [127_960])
        XCTAssertEqual(try t.encode("", wrap: true), [127_958, 127_957])
        XCTAssertEqual(try t.encode("<|extra_203|>", wrap: false), [128_165])
        let plain = try t.encode("<|eos|>", wrap: false, parseSpecial: false)
        XCTAssertGreaterThan(plain.count, 1)
        XCTAssertFalse(plain.contains { t.isSpecial($0) })
        XCTAssertEqual(try t.decode(plain), Array("<|eos|>".utf8))
    }

    func testNFCAndInvalidUTF8() throws {
        let t = try tokenizer()
        XCTAssertEqual(try t.encode("e\u{301}t\u{E9}", wrap: false), try t.encode("\u{E9}t\u{E9}", wrap: false))
        // Canonical ordering across a decomposing U+0F75 (the standard library alone gets it wrong).
        XCTAssertEqual(try t.decode(try t.encode("]\u{301}\u{F75}", wrap: false)),
                       Array("]\u{F71}\u{F74}\u{301}".utf8))
        for bad: [UInt8] in [[0xFF], [0x61, 0xC3], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF4, 0x90, 0x80, 0x80]] {
            XCTAssertThrowsError(try t.encode(bytes: bad)) { e in
                XCTAssertEqual((e as? HYError)?.kind, .invalidArgument)
            }
        }
        XCTAssertThrowsError(try t.decode([128_166])) { XCTAssertEqual(($0 as? HYError)?.kind, .invalidArgument) }
        XCTAssertThrowsError(try t.decode([-1]))
    }

    func testCharacterClassesAgreeWithTheStandardLibrary() {
        // The generated tables (tiktoken's Unicode) must be a subset of the standard library's newer
        // classes, differing only by recently assigned characters.
        var newer = 0
        for cp in UInt32(0)..<0x110000 {
            guard let u = Unicode.Scalar(cp) else { continue }
            let k = PreTokenizer.table.lookup(cp)
            var mine: UInt8 = 0
            switch u.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: mine = PreTokenizer.letter
            case .decimalNumber, .letterNumber, .otherNumber: mine = PreTokenizer.number
            default: break
            }
            if u.properties.isWhitespace { mine |= PreTokenizer.space }
            if cp == 10 || cp == 13 { mine |= PreTokenizer.newline }
            if k != mine {
                XCTAssertEqual(k, 0, "U+\(String(cp, radix: 16)): table \(k), stdlib \(mine)")
                newer += 1
            }
        }
        XCTAssertLessThan(newer, 6000)
    }

    // MARK: Streaming

    func singleByteId(_ t: Tokenizer, _ b: UInt8) -> Int32 {
        Int32((0..<Tokenizer.mergeableCount).first { t.tokenBytes(Int32($0)) == [b] }!)
    }

    func testStreamingNeverEmitsHalfACharacter() throws {
        let t = try tokenizer()
        // "世" (E4 B8 96) and "🎉" (F0 9F 8E 89) fed one byte-token at a time.
        var d = StreamingDetokenizer(tokenizer: t)
        var outs: [String] = []
        for b: UInt8 in [0xE4, 0xB8, 0x96, 0xF0, 0x9F, 0x8E, 0x89, 0x41] { outs.append(d.push(singleByteId(t, b))) }
        XCTAssertEqual(outs, ["", "", "世", "", "", "", "🎉", "A"])
        XCTAssertEqual(d.flush(), "")
        // An incomplete character at the end becomes U+FFFD on flush; an impossible byte at once.
        XCTAssertEqual(d.push(singleByteId(t, 0xE4)), "")
        XCTAssertEqual(d.flush(), "\u{FFFD}")
        XCTAssertEqual(d.push(singleByteId(t, 0xFF)), "\u{FFFD}")
        XCTAssertEqual(d.push(singleByteId(t, 0xE4)), "")
        XCTAssertEqual(d.push(singleByteId(t, 0x41)), "\u{FFFD}A")
        // Whole texts: the pieces concatenate to the text and none holds a replacement character.
        let text = "héllo 世界 👨\u{200D}👩\u{200D}👧 🇨🇳 e\u{301} ok"
        var s = StreamingDetokenizer(tokenizer: t)
        var joined = ""
        for id in try t.encode(text, wrap: false) {
            let piece = s.push(id)
            XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"))
            joined += piece
        }
        joined += s.flush()
        XCTAssertEqual(Array(joined.utf8), String(decoding: Array(text.utf8), as: UTF8.self)._nfcCodeUnits)
    }

    // MARK: Pathological input

    func testPathologicalInputsAreLinear() throws {
        let t = try tokenizer()
        let mb = 2 << 20
        let cases: [(String, [UInt8])] = [
            ("spaces", [UInt8](repeating: 0x20, count: mb)),
            ("newlines", [UInt8](repeating: 0x0A, count: mb)),
            ("crlf", Array(String(repeating: "\r\n", count: mb / 2).utf8)),
            ("digits", Array(String(repeating: "7", count: mb).utf8)),
            ("letter", [UInt8](repeating: 0x61, count: mb)),
            ("han", Array(String(repeating: "国", count: mb / 3).utf8)),
            ("punct", [UInt8](repeating: 0x21, count: mb)),
            ("space-punct", Array(String(repeating: " !", count: mb / 2).utf8)),
            ("spaces-then-x", [UInt8](repeating: 0x20, count: mb) + [0x78]),
            ("tabs-newline", [UInt8](repeating: 0x09, count: mb) + [0x0A, 0x78]),
            ("combining", Array(("a" + String(repeating: "\u{301}", count: mb / 2)).utf8)),
        ]
        for (name, bytes) in cases {
            let start = DispatchTimeLite.now()
            let ids = try t.encode(bytes: bytes, wrap: false)
            let seconds = DispatchTimeLite.now() - start
            XCTAssertLessThan(seconds, 10, "\(name): \(seconds) s")
            print("pathological \(name): \(bytes.count) bytes, \(ids.count) ids, \(seconds) s")
            XCTAssertEqual(try t.decode(ids), name == "combining"
                           ? String(decoding: bytes, as: UTF8.self)._nfcCodeUnits : bytes, name)
        }
    }
}

/// Monotonic seconds, without Foundation.
enum DispatchTimeLite {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

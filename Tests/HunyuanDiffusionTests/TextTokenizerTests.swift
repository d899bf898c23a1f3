#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
@testable import HunyuanDiffusion

/// HunyuanDiT's two tokenizers against the hunyuandit-tiny fixture (ids, masks and pieces recorded
/// from transformers 4.46.3's slow BertTokenizer / T5Tokenizer and sentencepiece 0.2.x) and
/// against values printed by those libraries for the README's named cases; plus malformed inputs.
final class TextTokenizerTests: XCTestCase {
    /// `$HUNYUAN_SHARED/fixtures/t2i/hunyuandit-tiny`, or XCTSkip.
    static func fixture() throws -> String {
        let d = MVDFixture.sharedDir + "/fixtures/t2i/hunyuandit-tiny"
        guard FileSystem.isDirectory(d) else { throw XCTSkip("no t2i fixture at \(d) (set HUNYUAN_SHARED)") }
        return d
    }
    static func bert() throws -> BertTokenizer { try BertTokenizer(folder: try fixture() + "/tokenizer") }
    static func t5() throws -> T5Tokenizer { try T5Tokenizer(folder: try fixture() + "/tokenizer_2") }

    /// fixture_meta.json's prompts and recorded token strings.
    struct Meta {
        let texts: [String]                       // [positive (prompt_with_suffix), negative]
        let bertTokens: [[String]], t5Pieces: [[String]]
        init(_ dir: String) throws {
            let m = try JSONValue.parse(contentsOf: dir + "/fixture_meta.json")
            func value(_ k: String) -> JSONValue? { m.objectValue?.first { $0.0 == k }?.1 }
            func strings(_ k: String) -> [String] { value(k)?.arrayValue?.compactMap(\.stringValue) ?? [] }
            texts = [value("prompt_with_suffix")?.stringValue ?? "", value("negative_prompt")?.stringValue ?? ""]
            bertTokens = [strings("bert_tokens_pos"), strings("bert_tokens_neg")]
            t5Pieces = [strings("t5_pieces_pos"), strings("t5_pieces_neg")]
        }
    }

    func testFixtureIDsAndMasks() throws {
        let dir = try Self.fixture(), meta = try Meta(dir)
        let inputs = try Checkpoint(path: dir + "/inputs.safetensors")
        let bert = try Self.bert(), t5 = try Self.t5()
        func rows(_ name: String, _ width: Int) throws -> [[Int32]] {
            let t = try inputs.require(name, shape: [2, width]).int64s().map { Int32($0) }
            return [Array(t[0..<width]), Array(t[width...])]
        }
        let bIDs = try rows("bert_input_ids", 77), bMask = try rows("bert_attention_mask", 77)
        let tIDs = try rows("t5_input_ids", 256), tMask = try rows("t5_attention_mask", 256)
        for r in 0..<2 {
            let b = bert.encode(meta.texts[r], maxLength: 77), t = t5.encode(meta.texts[r], maxLength: 256)
            XCTAssertEqual(b.ids, bIDs[r], "bert ids row \(r)")
            XCTAssertEqual(b.mask, bMask[r], "bert mask row \(r)")
            XCTAssertEqual(t.ids, tIDs[r], "t5 ids row \(r)")
            XCTAssertEqual(t.mask, tMask[r], "t5 mask row \(r)")
        }
    }

    func testFixturePieces() throws {
        let meta = try Meta(try Self.fixture())
        let bert = try Self.bert(), t5 = try Self.t5()
        XCTAssertEqual(meta.bertTokens[0].count, 30)
        XCTAssertEqual(meta.bertTokens[1].count, 77)
        for r in 0..<2 {
            XCTAssertEqual(["[CLS]"] + bert.tokenize(meta.texts[r]).prefix(75) + ["[SEP]"], meta.bertTokens[r], "row \(r)")
            XCTAssertEqual(t5.tokenize(meta.texts[r]).prefix(255) + ["</s>"], meta.t5Pieces[r], "row \(r)")
        }
    }

    /// The README's named cases; expectations printed by transformers 4.46.3 / sentencepiece 0.2.0.
    func testNamedCases() throws {
        let bert = try Self.bert(), t5 = try Self.t5()
        XCTAssertEqual(bert.tokenize("café"), ["ca", "##fe"])             // accent stripped: cafe
        XCTAssertEqual(bert.tokenize("jpeg"), ["jp", "##eg"])
        XCTAssertEqual(bert.tokenize("3d"), ["3", "##d"])
        XCTAssertEqual(bert.tokenize("pgly"), ["[UNK]"])                  // no match at "pgly"'s end → whole word
        XCTAssertEqual(bert.tokenize("a３b"), ["[UNK]"])                  // fullwidth ３ is not CJK: one word
        XCTAssertEqual(bert.tokenize("a猫b"), ["a", "猫", "b"])
        XCTAssertEqual(bert.tokenize("Ｃａｔ"), ["[UNK]"])
        XCTAssertEqual(bert.tokenize("[SEP] cat [MASK]"), ["[SEP]", "cat", "[MASK]"])
        XCTAssertEqual(bert.tokenize("High  Quality\tCAT\n"), ["high", "quality", "cat"])
        XCTAssertEqual(bert.tokenize("a\u{0}b"), ["a", "##b"])

        XCTAssertEqual(t5.tokenize("，"), ["▁", ","])                     // nmt_nfkc: ， → ,
        XCTAssertEqual(t5.encode("，", maxLength: 4).ids, [259, 260, 1, 0])
        XCTAssertEqual(t5.tokenize("３"), ["▁", "<0x33>"])                 // ３ → 3, a byte piece
        XCTAssertEqual(t5.encode("😀", maxLength: 6).ids, [259, 243, 162, 155, 131, 1])
        XCTAssertEqual(t5.tokenize("😀"), ["▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"])
        XCTAssertEqual(t5.encode("Ｃａｔ", maxLength: 5).ids, [285, 284, 267, 1, 0])
        XCTAssertEqual(t5.encode("a  b", maxLength: 4).ids, [281, 259, 298, 1])
        XCTAssertEqual(t5.encode("a\u{0}b", maxLength: 4).ids, [281, 3, 298, 1])
        XCTAssertEqual(t5.encode("High  Quality\tCAT\n", maxLength: 15).ids,
                       [259, 993, 326, 389, 393, 259, 84, 333, 342, 369, 278, 285, 353, 362, 1])
        XCTAssertEqual(t5.encode("a</s>", maxLength: 4).ids, [281, 1, 0, 0])   // ends with </s>: none added
    }

    func testEmptyWhitespaceAndLongPrompts() throws {
        let bert = try Self.bert(), t5 = try Self.t5()
        for text in ["", " \t\n\r\u{3000}"] {
            let b = bert.encode(text)
            XCTAssertEqual(b.ids, [101, 102] + [Int32](repeating: 0, count: 75))
            XCTAssertEqual(b.mask, [1, 1] + [Int32](repeating: 0, count: 75))
            let t = t5.encode(text)
            XCTAssertEqual(t.ids, [1] + [Int32](repeating: 0, count: 255))
            XCTAssertEqual(t.mask, [1] + [Int32](repeating: 0, count: 255))
        }
        let long = String(repeating: "白色背景, 3D style; ", count: 625)       // 10,000 characters
        XCTAssertEqual(long.count, 10_000)
        let t0 = now()
        let b = bert.encode(long), t = t5.encode(long)
        XCTAssertLessThan(now() - t0, 20)
        XCTAssertEqual(b.ids.count, 77); XCTAssertEqual(b.ids.last, 102); XCTAssertEqual(b.mask, [Int32](repeating: 1, count: 77))
        XCTAssertEqual(t.ids.count, 256); XCTAssertEqual(t.ids.last, 1); XCTAssertEqual(t.mask, [Int32](repeating: 1, count: 256))
        let word = String(repeating: "a", count: 101)                          // > 100 chars → [UNK]
        XCTAssertEqual(bert.tokenize(word), ["[UNK]"])
    }

    // MARK: - Malformed files

    func tempDir() throws -> String {
        var template = Array("/tmp/t2i-tok-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw HYError.io("mkdtemp failed") }
        let dir = String(cString: p)
        addTeardownBlock { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        return dir
    }

    func testVocabErrors() throws {
        let src = try FileSystem.readAll(try Self.fixture() + "/tokenizer/vocab.txt")
        let lines = String(decoding: src, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let dir = try tempDir()
        expectError(.io, "no vocab.txt") { _ = try BertTokenizer(folder: dir) }
        for missing in ["[CLS]", "[SEP]", "[PAD]", "[UNK]"] {
            let text = lines.map { $0 == missing ? "[x]" : String($0) }.joined(separator: "\n")
            try FileSystem.writeAtomically(dir + "/vocab.txt", bytes: Array(text.utf8), overwrite: true)
            expectError(.format, "special token \(missing)") { _ = try BertTokenizer(folder: dir) }
        }
        try FileSystem.writeAtomically(dir + "/vocab.txt", bytes: [0x5B, 0xFF, 0x0A], overwrite: true)
        expectError(.format, "not UTF-8") { _ = try BertTokenizer(folder: dir) }
        // CRLF line ends read as Python's universal newlines: the same ids.
        let crlf = lines.joined(separator: "\r\n")
        try FileSystem.writeAtomically(dir + "/vocab.txt", bytes: Array(crlf.utf8), overwrite: true)
        let bert = try BertTokenizer(folder: dir)
        XCTAssertEqual(bert.encode("jpeg 3d", maxLength: 8).ids, try Self.bert().encode("jpeg 3d", maxLength: 8).ids)
    }

    func testSentencePieceErrors() throws {
        let fixture = try Self.fixture()
        let model = try FileSystem.readAll(fixture + "/tokenizer_2/spiece.model")
        let dir = try tempDir()
        expectError(.io, "no spiece.model") { _ = try T5Tokenizer(folder: dir) }
        let path = dir + "/spiece.model"
        func load(_ bytes: [UInt8]) throws -> SentencePieceModel {
            try FileSystem.writeAtomically(path, bytes: bytes, overwrite: true)
            return try SentencePieceModel(path: path)
        }
        // Appended fields override (protobuf's last-one-wins): model_type BPE; byte_fallback false.
        expectError(.unsupported, "model_type BPE") { _ = try load(model + [0x12, 0x02, 0x18, 0x02]) }
        expectError(.format, "although byte_fallback is false") { _ = try load(model + [0x12, 0x03, 0x98, 0x02, 0x00]) }
        // A charsmap whose trie size exceeds the blob.
        expectError(.format, "precompiled_charsmap") { _ = try load(model + [0x1A, 0x07, 0x12, 0x05, 0xFF, 0xFF, 0, 0, 0]) }
        expectError(.format, "no pieces") { _ = try load([]) }

        // Truncations and byte flips: each loads or throws an HYError, never traps; what loads encodes.
        var rng = SplitMix(seed: 7)
        var variants: [[UInt8]] = [1, 2, 3, 10, 100, 1000].map { Array(model.prefix($0)) }
        for _ in 0..<40 { variants.append(Array(model.prefix(Int(rng.next() % UInt64(model.count))))) }
        for _ in 0..<160 {
            var m = model
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                // Half the flips land in the first 64 KiB (pieces, specs), half anywhere (the charsmap).
                let span = rng.next() % 2 == 0 ? min(m.count, 65_536) : m.count
                m[Int(rng.next() % UInt64(span))] ^= UInt8(1 + rng.next() % 255)
            }
            variants.append(m)
        }
        var loaded = 0
        for v in variants {
            do {
                let sp = try load(v)
                loaded += 1
                for (_, id) in sp.encode("一只可爱的小猫, white background 3D ３，😀 café\t x") {
                    XCTAssertTrue(id >= 0 && Int(id) < sp.pieces.count)
                }
            } catch is HYError {
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        XCTAssertGreaterThan(loaded, 0)
    }
}

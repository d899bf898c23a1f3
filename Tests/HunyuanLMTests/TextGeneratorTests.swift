import XCTest
@testable import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// TextGenerator's parts that need no model: the streaming stop-string matcher against a plain
/// first-occurrence cut, and the prompt framings against the tokenizer's own encode. Generation end to
/// end (stop ids, stop strings across tokens) is tested through the C ABI (Tests/capi/test_lm.c), the
/// CLI and the Python binding.
final class TextGeneratorTests: XCTestCase {
    /// The text up to the earliest occurrence of any stop string (the oracle, applied to the text
    /// received when generation stops: as in llama.cpp's server, a stop string that completes ends the
    /// text at the earliest stop in what was received, even if a longer stop starting earlier could
    /// have completed with text that was never generated).
    func cut(_ text: [UInt8], _ stops: [[UInt8]]) -> [UInt8] {
        var best = text.count
        for s in stops where !s.isEmpty && s.count <= text.count {
            for i in 0...(text.count - s.count) where Array(text[i..<(i + s.count)]) == s {
                best = min(best, i)
                break
            }
        }
        return Array(text[0..<best])
    }

    func testMatcherEmitsTheCutTextAndHoldsBackOnlyPossibleStarts() {
        let alphabet = ["a", "b", "ab", "é", "混", "😀", " "]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<400 {
            let text = (0..<Int.random(in: 0...30, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let stops = (0..<Int.random(in: 1...3, using: &rng)).map { _ in
                (0..<Int.random(in: 1...4, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
            }
            let stopBytes = stops.map { Array($0.utf8) }
            var m = StopStringMatcher(stops)
            var received: [UInt8] = [], emitted: [UInt8] = []
            var i = 0
            while i < text.count && !m.stopped {
                let n = Int.random(in: 1...3, using: &rng)
                let piece = text[i..<min(i + n, text.count)].joined()
                i += n
                received += Array(piece.utf8)
                emitted += Array(m.push(piece).utf8)
                if m.stopped { break }
                // what is held back is exactly the longest tail that is a proper prefix of a stop string
                XCTAssertEqual(Array(received.prefix(emitted.count)), emitted)
                let held = received.count - emitted.count
                var longest = 0
                for s in stopBytes {
                    for k in stride(from: min(s.count - 1, received.count), through: 1, by: -1)
                    where Array(received.suffix(k)) == Array(s.prefix(k)) {
                        longest = max(longest, k)
                        break
                    }
                }
                XCTAssertEqual(held, longest, "text \(text) stops \(stops)")
            }
            emitted += Array(m.finish().utf8)
            XCTAssertEqual(emitted, cut(received, stopBytes), "text \(text) stops \(stops)")
            XCTAssertEqual(Array(m.emittedText.utf8), emitted)
            XCTAssertNotNil(String(validating: emitted, as: UTF8.self))
        }
    }

    func testMatcherEdgeCases() {
        var m = StopStringMatcher(["abc"])
        XCTAssertEqual(m.push("xa"), "x")
        XCTAssertEqual(m.push("b"), "")
        XCTAssertEqual(m.push("d"), "abd")     // no longer a possible start
        XCTAssertEqual(m.push("zab"), "z")
        XCTAssertEqual(m.push("cxyz"), "")     // found: nothing from it on
        XCTAssertTrue(m.stopped)
        XCTAssertEqual(m.push("more"), "")
        XCTAssertEqual(m.finish(), "")
        XCTAssertEqual(m.emittedText, "xabdz")
        var none = StopStringMatcher([])
        XCTAssertEqual(none.push("abc"), "abc")
        XCTAssertEqual(none.finish(), "")
        var twice = StopStringMatcher(["aa"])
        XCTAssertEqual(twice.push("baa"), "b")
        var held = StopStringMatcher(["the end"])
        XCTAssertEqual(held.push("in the"), "in ")
        XCTAssertEqual(held.finish(), "the")  // generation ended without the stop string
    }

    func testPromptFramingsAndEmptyStopStrings() throws {
        let root = getenv("HUNYUAN_SHARED").map { String(cString: $0) } ?? "../shared"
        let dir = FileSystem.join(root, "data/tokenizer")
        guard FileSystem.exists(FileSystem.join(dir, "hy.tiktoken")) else {
            throw XCTSkip("hy.tiktoken not found in \(dir) (set HUNYUAN_SHARED to the shared folder)")
        }
        let tok = try Tokenizer.load(path: dir)
        let g = try TextGenerator(tokenizer: tok)
        let text = "Hi <|eos|> there"
        XCTAssertEqual(try g.encodePrompt(text), [tok.startOfText] + (try tok.encode(text, wrap: false, parseSpecial: false)))
        XCTAssertEqual(try g.encodePrompt(text), try tok.encodePrompt(text))
        XCTAssertEqual(try g.encodePrompt(text, framing: .wrap, parseSpecial: true), try tok.encode(text))
        XCTAssertEqual(try g.encodePrompt(text, framing: .continuation, parseSpecial: true),
                       try tok.encode(text, wrap: false, parseSpecial: true))
        XCTAssertTrue(try g.encodePrompt(text, parseSpecial: true).contains(tok.eos))
        XCTAssertFalse(try g.encodePrompt(text).contains(tok.eos))
        XCTAssertThrowsError(try TextGenerator(tokenizer: tok, stopStrings: ["ok", ""])) { e in
            XCTAssertTrue("\(e)".contains("stop string 1 is empty"), "\(e)")
        }
    }
}

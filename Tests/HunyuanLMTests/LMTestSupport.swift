import XCTest
import Foundation
@testable import HunyuanLM
import HunyuanConvert
#if canImport(Glibc)
import Glibc
#endif

/// What the language-model tests share: the fixture folders of $HUNYUAN_SHARED/fixtures/lm (default
/// ../shared, relative to the package root; absent → the tests are skipped with the reason), their
/// reference tensors, and small helpers over a session.
class LMFixtureTestCase: XCTestCase {
    static var sharedRoot: String {
        if let p = getenv("HUNYUAN_SHARED") { return String(cString: p) }
        return "../shared"
    }
    static var fixturesRoot: String { FileSystem.join(sharedRoot, "fixtures/lm") }

    struct Reference {
        let inputIds: [Int32]
        let logits: [Float]
        let greedy: [Int32]
        let vocab: Int
    }

    func fixtureDirs() throws -> [String] {
        let root = Self.fixturesRoot
        guard FileSystem.isDirectory(root) else {
            throw XCTSkip("LM fixtures not found at \(root) (set HUNYUAN_SHARED to the shared folder)")
        }
        let dirs = try FileSystem.list(root).sorted().map { FileSystem.join(root, $0) }
            .filter { FileSystem.exists(FileSystem.join($0, "reference.safetensors")) }
        guard !dirs.isEmpty else { throw XCTSkip("no fixture folders with reference.safetensors in \(root)") }
        return dirs
    }

    func reference(_ dir: String) throws -> Reference {
        let f = try SafetensorsFile(path: FileSystem.join(dir, "reference.safetensors"))
        guard let ids = f.tensor("input_ids"), let lg = f.tensor("logits"), let g = f.tensor("greedy_ids") else {
            throw HYError.format("\(dir): reference.safetensors lacks input_ids/logits/greedy_ids")
        }
        return Reference(inputIds: ids.int64s().map { Int32($0) }, logits: lg.floats(),
                         greedy: g.int64s().map { Int32($0) }, vocab: lg.shape.last ?? 0)
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    static func argmax(_ p: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<p.count where p[i] > p[best] { best = i }
        return Int32(best)
    }

    /// Logits of every position of `ids`: the first `split` in one prefill, then one token at a time
    /// through the KV cache.
    static func prefillThenDecode(_ s: InferenceSession, _ ids: [Int32], split: Int) throws -> [Float] {
        try s.eval(Array(ids[0..<split]), allLogits: true)
        var all = s.allLogits
        for id in ids[split...] {
            try s.eval([id])
            all.append(contentsOf: s.lastLogits)
        }
        return all
    }

    /// n greedy tokens continuing the session's context.
    static func greedy(_ s: InferenceSession, _ n: Int) throws -> [Int32] {
        var got: [Int32] = []
        for _ in 0..<n {
            let id = argmax(s.lastLogits)
            got.append(id)
            try s.eval([id])
        }
        return got
    }

    func tempDir(_ name: String) throws -> String {
        var template = Array("/tmp/hy-lmtest-\(name)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw HYError.io("mkdtemp failed")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func copyFile(_ src: String, _ dst: String) throws {
        let b = try FileSystem.readAll(src)
        try FileSystem.writeAtomically(dst, overwrite: true) { w in try b.withUnsafeBytes { try w($0) } }
    }

    /// A copy of `src` with the tensors transformed by `edit` (return nil to drop one).
    func rewrittenCheckpoint(_ src: String, _ name: String,
                             _ edit: (Tensor) -> SafetensorsWriter.Item?) throws -> String {
        let dir = try tempDir(name)
        try copyFile(FileSystem.join(src, "config.json"), FileSystem.join(dir, "config.json"))
        let ck = try Checkpoint(path: src)
        let items = ck.tensors.compactMap(edit)
        try SafetensorsWriter.write(items, to: FileSystem.join(dir, "model.safetensors"))
        return dir
    }

    static func item(_ t: Tensor) -> SafetensorsWriter.Item {
        SafetensorsWriter.Item(name: t.name, dtype: t.dtype, shape: t.shape, bytes: Array(t.data))
    }

    func assertStatus(_ status: HYError.Kind, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("\(what): no error")
        } catch let e as HYError {
            XCTAssertEqual(e.kind, status, "\(what): \(e.message)")
            XCTAssertFalse(e.message.isEmpty)
        } catch {
            XCTFail("\(what): unexpected error \(error)")
        }
    }
}

import XCTest
import Glibc
@testable import HunyuanCore

/// The safetensors reader against files written by the Python `safetensors` package
/// (tools/make_safetensors_cases.py, run by `make test` into $HUNYUAN_TESTDATA/safetensors).
final class SafetensorsTests: XCTestCase {
    private func casesDir() throws -> String {
        guard let root = getenv("HUNYUAN_TESTDATA").map({ String(cString: $0) }) else {
            throw XCTSkip("HUNYUAN_TESTDATA not set: run `make test` (it writes the cases with Python safetensors)")
        }
        let dir = root + "/safetensors"
        guard FileSystem.exists(dir + "/manifest.json") else { throw XCTSkip("\(dir)/manifest.json missing") }
        return dir
    }

    private func manifest(_ dir: String) throws -> JSONValue {
        try JSONValue.parse(contentsOf: dir + "/manifest.json")
    }

    func testValidFilesMatchTheReferenceWriter() throws {
        let dir = try casesDir()
        let cases = try XCTUnwrap(try manifest(dir)["valid"]?.arrayValue)
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            let file = try XCTUnwrap(c["file"]?.stringValue)
            let ck = try Checkpoint(path: dir + "/" + file)
            let expected = try XCTUnwrap(c["tensors"]?.objectValue)
            XCTAssertEqual(ck.tensors.count, expected.count, file)
            for (name, spec) in expected {
                let t = try XCTUnwrap(ck.tensor(name), "\(file): \(name)")
                XCTAssertEqual(t.dtype.safetensorsName, spec["dtype"]?.stringValue, "\(file): \(name)")
                XCTAssertEqual(t.shape, spec["shape"]?.arrayValue?.compactMap { $0.intValue.map(Int.init) }, "\(file): \(name)")
                let values = try XCTUnwrap(spec["values"]?.arrayValue)
                if t.dtype.isFloat {
                    XCTAssertEqual(t.floats(), values.map { Float($0.doubleValue!) }, "\(file): \(name)")
                } else {
                    XCTAssertEqual(t.int64s(), values.map { $0.intValue! }, "\(file): \(name)")
                }
            }
            if case .object(let meta)? = c["metadata"], !FileSystem.isDirectory(dir + "/" + file) {
                let sf = try SafetensorsFile(path: dir + "/" + file)
                XCTAssertEqual(sf.metadata.map { $0.0 }.sorted(), meta.map { $0.0 }.sorted())
                for (k, v) in meta { XCTAssertEqual(sf.metadata.first { $0.0 == k }?.1, v.stringValue) }
            }
        }
    }

    func testBrokenFilesGiveFormatOrIOErrorsNamingTheFile() throws {
        let dir = try casesDir()
        let cases = try XCTUnwrap(try manifest(dir)["broken"]?.arrayValue)
        XCTAssertGreaterThan(cases.count, 15)
        for c in cases {
            let file = try XCTUnwrap(c["file"]?.stringValue)
            let status: HYError.Kind = c["status"]?.stringValue == "io" ? .io : .format
            let contains = try XCTUnwrap(c["contains"]?.stringValue)
            do {
                _ = try Checkpoint(path: dir + "/" + file)
                XCTFail("\(file): opened without error")
            } catch let e as HYError {
                XCTAssertEqual(e.kind, status, "\(file): \(e.message)")
                XCTAssertTrue(e.message.contains(file), "\(file): message does not name the file: \(e.message)")
                XCTAssertTrue(e.message.contains(contains), "\(file): message lacks '\(contains)': \(e.message)")
            }
        }
    }

    func testWriterRoundTripsThroughReader() throws {
        let dir = NSTemporaryDirectoryPath() + "/hy-st-\(getpid())"
        mkdir(dir, 0o755)
        let path = dir + "/w.safetensors"
        try SafetensorsWriter.write([
            .init(name: "a", shape: [2, 2], floats: [1, -2, 0.5, 3]),
            .init(name: "b", shape: [3], floats: [1, 2, 3], as: .bf16),
            .init(name: "c", shape: [2], int64s: [-7, 1 << 40]),
        ], metadata: [("format", "pt")], to: path)
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.tensor("a")?.floats(), [1, -2, 0.5, 3])
        XCTAssertEqual(f.tensor("b")?.floats(), [1, 2, 3])
        XCTAssertEqual(f.tensor("c")?.int64s(), [-7, 1 << 40])
        XCTAssertEqual(f.metadata.first?.1, "pt")
        // no clobbering unless asked, and no temporary file left behind
        XCTAssertThrowsError(try SafetensorsWriter.write([], to: path, overwrite: false)) { e in
            XCTAssertEqual((e as? HYError)?.kind, .io)
        }
        XCTAssertEqual(try FileSystem.list(dir), ["w.safetensors"])
        unlink(path)
        rmdir(dir)
    }
}

func NSTemporaryDirectoryPath() -> String {
    getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
}

final class JSONTests: XCTestCase {
    func testParsesAndRejects() throws {
        let v = try JSONValue.parse(#"{"a": [1, 2.5, -3e2, true, null, "x\u00e9\ud83d\ude00"], "b": {}}"#, context: "t")
        XCTAssertEqual(v["a"]?.arrayValue?.count, 6)
        XCTAssertEqual(v["a"]?.arrayValue?[0].intValue, 1)
        XCTAssertEqual(v["a"]?.arrayValue?[2].doubleValue, -300)
        XCTAssertEqual(v["a"]?.arrayValue?[5].stringValue, "xé😀")
        for bad in [#"{"a":1,"a":2}"#, "[1,]", "{", "01", #""\ud800""#, "[1] x", "nul", #"{"a" 1}"#] {
            XCTAssertThrowsError(try JSONValue.parse(bad, context: "t"), bad) { e in
                XCTAssertEqual((e as? HYError)?.kind, .format)
            }
        }
        XCTAssertEqual(try JSONValue.parse(v.serialized(), context: "round trip"), v)
    }
}

final class FloatFormatTests: XCTestCase {
    /// Values from the OCP FP8 specification (E4M3, "fn" variant) and IEEE half / bfloat16 layouts.
    func testKnownEncodings() {
        XCTAssertEqual(FloatBits.e4m3Decode(0x7E), 448)
        XCTAssertEqual(FloatBits.e4m3Decode(0x08), 0.015625)          // 2^-6, smallest normal
        XCTAssertEqual(FloatBits.e4m3Decode(0x01), 0.001953125)       // 2^-9, smallest subnormal
        XCTAssertEqual(FloatBits.e4m3Decode(0x38), 1)
        XCTAssertEqual(FloatBits.e4m3Decode(0xB8), -1)
        XCTAssertTrue(FloatBits.e4m3Decode(0x7F).isNaN)
        XCTAssertEqual(FloatBits.floatToE4M3(1000), 0x7E)             // saturates
        XCTAssertEqual(FloatBits.bf16ToFloat(0x3F80), 1)
        XCTAssertEqual(FloatBits.floatToBF16(1.00390625), 0x3F80)     // tie rounds to even
        XCTAssertEqual(FloatBits.floatToBF16(1.01171875), 0x3F82)
        XCTAssertEqual(FloatBits.f16ToFloat(0x3C00), 1)
        XCTAssertEqual(FloatBits.f16ToFloat(0x7BFF), 65504)
    }
}

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsOnceAcrossPools() {
        for threads in [1, 2, 3, 8] {
            let pool = ThreadPool(threads: threads)
            for n in [0, 1, 7, 1000] {
                var hits = [Int](repeating: 0, count: n)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress
                    pool.parallelFor(n) { i in base![i] += 1 }
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: n), "threads \(threads) n \(n)")
            }
            var covered = [Int](repeating: 0, count: 101)
            covered.withUnsafeMutableBufferPointer { h in
                let base = h.baseAddress
                pool.parallelRanges(101, minChunk: 10) { r in for i in r { base![i] += 1 } }
            }
            XCTAssertEqual(covered, [Int](repeating: 1, count: 101))
        }
    }

    func testNestedAndConcurrentCallsDoNotDeadlock() {
        let pool = ThreadPool(threads: 2)
        var sums = [Int](repeating: 0, count: 8)
        sums.withUnsafeMutableBufferPointer { s in
            let base = s.baseAddress
            pool.parallelFor(8) { i in
                var local = 0
                pool.parallelFor(10) { j in local += j }  // runs inline: the pool is busy
                base![i] = local
            }
        }
        XCTAssertEqual(sums, [Int](repeating: 45, count: 8))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore
import HunyuanNN

/// The mvd-lite-tiny fixture (`$HUNYUAN_SHARED/fixtures/mvd/mvd-lite-tiny`, default ../shared):
/// the official pipeline's folder, its recorded inputs and every reference intermediate.
enum MVDFixture {
    static var sharedDir: String {
        if let e = getenv("HUNYUAN_SHARED") { return String(cString: e) }
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        return "/" + root + "/../shared"
    }

    /// The fixture folder, or XCTSkip naming what is missing.
    static func dir() throws -> String {
        let d = sharedDir + "/fixtures/mvd/mvd-lite-tiny"
        guard FileSystem.isDirectory(d) else { throw XCTSkip("no mvd fixture at \(d) (set HUNYUAN_SHARED)") }
        return d
    }

    static func inputs() throws -> Checkpoint { try Checkpoint(path: try dir() + "/inputs.safetensors") }
    static func reference() throws -> Checkpoint { try Checkpoint(path: try dir() + "/reference.safetensors") }
}

/// max |a − b| / max(1, max |b|) (the tolerance measure).
func scaledMaxError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "size \(a.count) vs \(b.count)")
    var m: Float = 0, r: Float = 1
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])); r = max(r, abs(b[i])) }
    return m / r
}

extension XCTestCase {
    /// A temporary copy of component `name` of fixture folder `fixture` (default mvd-lite-tiny):
    /// config.json and its weights as `model.safetensors` / `diffusion_pytorch_model.safetensors`, with
    /// the tensors and config text edited.
    func componentCopy(_ name: String, fixture: String? = nil, config: (String) -> String = { $0 },
                       _ edit: (inout [SafetensorsWriter.Item]) -> Void = { _ in }) throws -> String {
        let src = try (fixture ?? MVDFixture.dir()) + "/" + name
        var template = Array("/tmp/mvd-component-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw HYError.io("mkdtemp failed") }
        let dir = String(cString: p)
        addTeardownBlock { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        let text = config(String(decoding: try FileSystem.readAll(src + "/config.json"), as: UTF8.self))
        try FileSystem.writeAtomically(dir + "/config.json", overwrite: true) { w in try Array(text.utf8).withUnsafeBytes { try w($0) } }
        let ck = try Checkpoint(component: src)
        var items = ck.tensors.map { SafetensorsWriter.Item(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: Array($0.data)) }
        edit(&items)
        let file = ck.path.split(separator: "/").last.map(String.init)!
        try SafetensorsWriter.write(items, to: dir + "/" + file)
        return dir
    }

    func expectError(_ kind: HYError.Kind, _ contains: String, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error (expected \(kind): \(contains))", file: file, line: line)
        } catch let e as HYError {
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(contains), "message \"\(e.message)\" lacks \"\(contains)\"", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}

struct SplitMix {
    var s: UInt64
    init(seed: UInt64) { s = seed }
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// ~N(0, 1) (Box–Muller).
    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}

/// A `WeightBinder` that makes random in-memory weights (test and benchmark support): matrices
/// ~N(0, 1/fan_in) stored as `dtype`, vectors near 1 for norm weights and near 0 otherwise.
final class RandomWeights: WeightBinder {
    var rng: SplitMix
    let dtype: DType
    init(seed: UInt64, dtype: DType = .f32) { rng = SplitMix(seed: seed); self.dtype = dtype }

    func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        try makeMatrix(name, shape: shape)
    }

    private func makeMatrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let rows = shape[0], cols = shape.dropFirst().reduce(1, *), s = 1 / Float(cols).squareRoot()
        let values = (0..<(rows * cols)).map { _ in rng.normal() * s }
        let t: Tensor
        if dtype == .f16 {
            let item = SafetensorsWriter.Item(name: name, shape: [rows, cols], floats: values, as: .f16)
            let box = FloatBuffer((item.bytes.count + 3) / 4, zeroed: false)   // owns the f16 bytes
            item.bytes.withUnsafeBytes { UnsafeMutableRawPointer(box.p).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            t = Tensor(name: name, dtype: .f16, shape: [rows, cols],
                       data: UnsafeRawBufferPointer(start: box.p, count: item.bytes.count), owner: box)
        } else {
            t = Tensor(name: name, shape: [rows, cols], floats: values)
        }
        return try WeightMatrix(t, rows: rows, cols: cols)
    }

    func vector(_ name: String, shape: [Int]) throws -> [Float] {
        let n = shape.reduce(1, *), base: Float = name.hasSuffix(".weight") ? 1 : 0
        return (0..<n).map { _ in base + 0.1 * rng.normal() }
    }
}

// MARK: - Support shared by the diffusion component tests

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = "", rest = Substring(self)
        while let r = rest.range(of: a) { out += rest[..<r.lowerBound] + b; rest = rest[r.upperBound...] }
        return out + rest
    }
}

extension Substring {
    func range(of s: String) -> Range<Substring.Index>? {
        guard !s.isEmpty, s.count <= count else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(s) { return i..<index(i, offsetBy: s.count) }
            i = index(after: i)
        }
        return nil
    }
}

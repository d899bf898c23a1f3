#if canImport(Glibc)
import Glibc
#endif
import XCTest
import HunyuanCore

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

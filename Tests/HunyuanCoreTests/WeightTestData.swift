import Foundation
@testable import HunyuanCore

/// Test weights shared by the kernel tests: random matrices shaped like real layers and their
/// quantized tensors as a checkpoint stores them (written by the Swift quantizer).
enum WeightTestData {
    final class Bytes { let p: UnsafeMutableRawBufferPointer
        init(_ a: [UInt8]) { p = .allocate(byteCount: max(a.count, 1), alignment: 64); if !a.isEmpty { a.withUnsafeBytes { p.copyMemory(from: $0) } } }
        deinit { p.deallocate() } }

    struct RNG { var s: UInt64
        mutating func next() -> Float { s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(Double(s >> 11) / Double(1 << 53)) * 2 - 1 } }

    /// A random [rows, cols] matrix with per-row magnitudes spread over two decades (like real layers).
    static func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] {
        var g = RNG(s: seed)
        var w = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let mag = Float(pow(10, Double(g.next())))
            for c in 0..<cols { w[r * cols + c] = mag * g.next() * (g.next() > 0.98 ? 4 : 1) }
        }
        return w
    }

    static func quantized(_ w: [Float], _ rows: Int, _ cols: Int, _ f: WeightFormat) throws -> (WeightMatrix, [AnyObject]) {
        if f == .fp8 {
            var codes = [UInt8](repeating: 0, count: rows * cols), scales = [Float](repeating: 0, count: rows)
            Quantizer.quantizeFP8(w, rows: rows, cols: cols, codes: &codes, scales: &scales)
            let b = Bytes(codes)
            let t = Tensor(name: "w", dtype: .f8e4m3, shape: [rows, cols], data: UnsafeRawBufferPointer(b.p), owner: b)
            let st = Tensor(name: "w_scale", shape: [rows], floats: scales)
            return (try WeightMatrix(t, rows: rows, cols: cols, scale: st), [b])
        }
        let rb = f.rowBytes(cols)
        var bytes = [UInt8](repeating: 0, count: rows * rb)
        bytes.withUnsafeMutableBytes { out in
            w.withUnsafeBufferPointer { src in
                for r in 0..<rows { Quantizer.quantizeRow(f, src.baseAddress! + r * cols, cols: cols, out.baseAddress! + r * rb) }
            }
        }
        let b = Bytes(bytes)
        let t = Tensor(name: "w", dtype: .u8, shape: [rows, f.blocksPerRow(cols), f.blockBytes], data: UnsafeRawBufferPointer(b.p), owner: b)
        return (try WeightMatrix(t, rows: rows, cols: cols), [b])
    }
}

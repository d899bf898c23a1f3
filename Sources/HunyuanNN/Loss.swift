#if canImport(Glibc)
import Glibc
#endif

// Training losses.

/// Mean cross-entropy over rows whose target ≥ 0 (−1 = ignored), scaled by `scale`; replaces
/// logits[rows, vocab] by dLoss/dlogits (× scale). Returns (summed loss over counted rows, count).
public func crossEntropy(_ logits: UnsafeMutablePointer<Float>, targets: [Int32], vocab: Int, scale: Float,
                  pool: ThreadPool?) -> (Double, Int) {
    let counted = targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
    let inv = counted > 0 ? scale / Float(counted) : 0
    let rows = targets.count
    let losses = FloatBuffer(rows)
    targets.withUnsafeBufferPointer { tg in
        parallelRows(pool, rows, minChunk: 16) { range in
            for r in range {
                let row = logits + r * vocab
                let tgt = Int(tg[r])
                if tgt < 0 { row.update(repeating: 0, count: vocab); continue }
                var m = -Float.infinity
                for i in 0..<vocab { m = max(m, row[i]) }
                let z = row[tgt] - m
                let sum = expShifted(row, vocab, shift: m)
                losses[r] = log(sum) - z
                let s = inv / sum
                for i in 0..<vocab { row[i] *= s }
                row[tgt] -= inv
            }
        }
    }
    var total: Double = 0
    for r in 0..<rows where targets[r] >= 0 { total += Double(losses[r]) }
    return (total, counted)
}

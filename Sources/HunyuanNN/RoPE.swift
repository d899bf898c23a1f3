#if canImport(Glibc)
import Glibc
#endif

// Rotary position embeddings: the 1-D NeoX "rotate half" form of the Hunyuan LMs (with its inverse
// for the backward), and the 2-D form of DiT models (diffusers' get_2d_rotary_pos_embed with the
// interleaved-pair apply_rotary_emb).

/// Inverse frequencies 1 / base^(2i/d) for i < d/2 (fp64 powers rounded to fp32).
public func ropeInverseFrequencies(headDim d: Int, base: Double) -> [Float] {
    (0..<(d / 2)).map { i in Float(1 / pow(base, Double(2 * i) / Double(d))) }
}

/// Fills cosSin[d] (d/2 cos, d/2 sin) for `position` given invFreq[d/2], as fp32 angles.
@inlinable
public func ropeTable(position: Int, invFreq: UnsafePointer<Float>, headDim d: Int, _ cosSin: UnsafeMutablePointer<Float>) {
    let h = d / 2
    for i in 0..<h {
        let angle = Float(position) * invFreq[i]
        cosSin[i] = cos(angle)
        cosSin[h + i] = sin(angle)
    }
}

/// Rotary position embedding, NeoX "rotate half" layout over the whole head: for i < d/2,
/// (x[i], x[i+d/2]) ← (x[i]·cos − x[i+d/2]·sin, x[i+d/2]·cos + x[i]·sin) with cos/sin of
/// position · invFreq[i]. `cosSin` holds d/2 cos then d/2 sin for this position; `inverse` applies
/// Rᵀ (sin negated: the backward of the rotation).
@inlinable
public func ropeNeoX(_ x: UnsafeMutablePointer<Float>, headDim d: Int, cosSin: UnsafePointer<Float>, inverse: Bool = false) {
    let h = d / 2
    for i in 0..<h {
        let c = cosSin[i], s = inverse ? -cosSin[h + i] : cosSin[h + i]
        let a = x[i], b = x[i + h]
        x[i] = a * c - b * s
        x[i + h] = b * c + a * s
    }
}

/// NeoX RoPE over every head of `rows` token rows [rows, heads·headDim] in place; row r takes the
/// table row `(r % period)` of `table` [period, headDim] (cosSin per position, see `ropeTable`), so a
/// batch of equal-length sequences uses period = sequence length.
public func ropeNeoX(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim hd: Int,
                     table: UnsafePointer<Float>, period: Int, inverse: Bool = false) {
    for r in 0..<rows {
        let cs = table + (r % period) * hd
        for h in 0..<heads { ropeNeoX(x + (r * heads + h) * hd, headDim: hd, cosSin: cs, inverse: inverse) }
    }
}

/// 2-D rotary tables for a gridH × gridW patch grid, tokens row-major: cos and sin [gridH·gridW, d]
/// (diffusers `get_2d_rotary_pos_embed(d, (start, stop), (gridH, gridW), use_real=True)`): row
/// positions linspace(start.y, stop.y, gridH, endpoint=False) and column positions
/// linspace(start.x, stop.x, gridW, endpoint=False) as float32; the first d/2 dims rotate with the
/// column position, the last d/2 with the row position (diffusers' meshgrid(w, h) order); each half
/// `get_1d_rotary_pos_embed(d/2, pos, theta)`, frequencies theta^(−2j/(d/2)) repeated per interleaved
/// pair. The default region is the grid itself (positions 0, 1, …).
public func rope2DTables(gridH: Int, gridW: Int, headDim d: Int, start: (y: Double, x: Double) = (0, 0),
                         stop: (y: Double, x: Double)? = nil, theta: Double = 10000) -> (cos: [Float], sin: [Float]) {
    let half = d / 2, quarter = half / 2
    let freqs: [Float] = (0..<quarter).map { i in Float(1 / pow(theta, Double(2 * i) / Double(half))) }
    let end = stop ?? (Double(gridH), Double(gridW))
    let ys = (0..<gridH).map { Float(start.y + Double($0) * (end.y - start.y) / Double(gridH)) }
    let xs = (0..<gridW).map { Float(start.x + Double($0) * (end.x - start.x) / Double(gridW)) }
    var cosT = [Float](repeating: 0, count: gridH * gridW * d), sinT = cosT
    for i in 0..<gridH {
        for j in 0..<gridW {
            let o = (i * gridW + j) * d
            for k in 0..<quarter {
                let ax = xs[j] * freqs[k], ay = ys[i] * freqs[k]
                for (off, a) in [(2 * k, ax), (half + 2 * k, ay)] {
                    cosT[o + off] = cos(a); cosT[o + off + 1] = cos(a)
                    sinT[o + off] = sin(a); sinT[o + off + 1] = sin(a)
                }
            }
        }
    }
    return (cosT, sinT)
}

/// Interleaved-pair rotary embedding (diffusers `apply_rotary_emb`, use_real_unbind_dim=-1) over one
/// head x[d]: (x[2i], x[2i+1]) ← (x[2i]·cos[2i] − x[2i+1]·sin[2i], x[2i+1]·cos[2i+1] + x[2i]·sin[2i+1]).
@inlinable
public func ropeInterleaved(_ x: UnsafeMutablePointer<Float>, headDim d: Int, cos c: UnsafePointer<Float>,
                            sin s: UnsafePointer<Float>) {
    var i = 0
    while i + 1 < d {
        let a = x[i], b = x[i + 1]
        x[i] = a * c[i] - b * s[i]
        x[i + 1] = b * c[i + 1] + a * s[i + 1]
        i += 2
    }
}

import CKernels

/// Output channels per block of `conv3x3Direct`'s packed weights.
public let conv3x3DirectBlock = 8

/// Packs w[out, in, 3, 3] (row o of `row(o, into:)`: in·9 floats) as conv3x3Direct wants it:
/// [ceil(out/8)][in][9][8], zeros past `out`.
public func packConv3x3Direct(outChannels oc: Int, inChannels ic: Int,
                              row: (Int, UnsafeMutablePointer<Float>) -> Void) -> FloatBuffer {
    let b = conv3x3DirectBlock, blocks = (oc + b - 1) / b
    let pk = FloatBuffer(blocks * b * ic * 9, zeroed: true)
    let r = FloatBuffer(ic * 9, zeroed: false)
    for o in 0..<oc {
        row(o, r.p)
        let dst = pk.p + (o / b) * ic * 9 * b + o % b
        for i in 0..<(ic * 9) { dst[i * b] = r.p[i] }
    }
    return pk
}

/// out[o, oy, ox] = bias[o] + Σ_(c, ky, kx) W[o, c, ky, kx] · x[c, oy − padTop + ky·d, ox − padLeft + kx·d]
/// (3×3, stride 1, zero padding) for x[inC, h, w], out[outC, ho, wo], output rows `rows` and output
/// channel blocks (of 8) `blocks`, with `packed` from `packConv3x3Direct`. AVX-512F only (false, nothing
/// written, elsewhere). Thread-safe on disjoint rows or blocks.
@inlinable
public func conv3x3Direct(_ x: UnsafePointer<Float>, inChannels: Int, height h: Int, width w: Int,
                          packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
                          padTop: Int, padLeft: Int, dilation: Int, _ out: UnsafeMutablePointer<Float>,
                          outHeight ho: Int, outWidth wo: Int, rows: Range<Int>, blocks: Range<Int>) -> Bool {
    hyi_conv3x3_f32(x, Int64(inChannels), Int64(h), Int64(w), packed, bias, Int64(outChannels), Int64(padTop),
                    Int64(padLeft), Int64(dilation), out, Int64(ho), Int64(wo), Int64(rows.lowerBound),
                    Int64(rows.upperBound), Int64(blocks.lowerBound), Int64(blocks.upperBound))
}

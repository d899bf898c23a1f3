#if canImport(Glibc)
import Glibc
#endif

/// Storage formats of a 2-D weight matrix [rows, cols]. Float formats are stored as their safetensors
/// dtype; block formats as raw bytes (see "Quantized checkpoint layout" below).
///
/// Quantized checkpoint layout (what `hunyuan-cli quantize` writes and `HunyuanModel` reads back,
/// memory-mapped): a normal safetensors file with the official tensor names. 1-D tensors (norms,
/// biases) stay f32. A block-quantized matrix `W` [rows, cols] is stored under its own name as dtype U8
/// with shape [rows, nBlocks, blockBytes], each row a sequence of blocks covering the columns; the
/// last block of a row is zero-padded when cols is not a multiple of the block length. blockBytes
/// identifies the format:
///   - q8_0 (34 bytes / 32 weights, 8.5 bits): f16 scale d, 32 × int8 q; w = d·q.
///   - q4_0 (18 bytes / 32 weights, 4.5 bits): f16 d, 16 bytes of nibbles (byte i: low nibble =
///     weight i, high nibble = weight i+16); w = d·(n − 8). Same block as ggml's Q4_0.
///   - q4_k (148 bytes / 256 weights, 4.625 bits): a super-block of 8 sub-blocks of 32: f16 d,
///     f16 dmin, 8 × u8 sub-block scales, 8 × u8 sub-block mins, 8 × 16 bytes of nibbles (laid out as
///     in q4_0); w = d·sc[j]·n − dmin·mn[j]. Scales and mins are fitted per sub-block (asymmetric
///     range, least-squares refit), which is what makes it better than q4_0 at ~the same size. A row
///     whose column count is not a multiple of 256 ends with a partial super-block of the same size.
///   - fp8 (E4M3, 8 bits + one f32 per row): `W` stored as F8_E4M3 [rows, cols] plus
///     `<module>.weight_scale` F32 [rows] (per output channel); w = scale[r]·e4m3(q). This is the
///     per-channel layout of FP8 releases (e.g. Tencent's Hunyuan-Large FP8).
/// The safetensors metadata holds "hunyuan.quantization" = the requested type (informational).
public enum WeightFormat: String, CaseIterable, Sendable {
    case f32, f16, bf16, fp8, q8_0, q4_0, q4_k

    /// Weights per block and bytes per block (block formats); 1 and the element size otherwise.
    public var blockElements: Int {
        switch self {
        case .q8_0, .q4_0: return 32
        case .q4_k: return 256
        default: return 1
        }
    }

    public var blockBytes: Int {
        switch self {
        case .q8_0: return 34
        case .q4_0: return 18
        case .q4_k: return 148
        case .f32: return 4
        case .f16, .bf16: return 2
        case .fp8: return 1
        }
    }

    public var isBlockQuantized: Bool { self == .q8_0 || self == .q4_0 || self == .q4_k }

    /// Stored bits per weight (without per-row fp8 scales).
    public var bitsPerWeight: Double { Double(blockBytes * 8) / Double(blockElements) }

    /// The C kernel's format code.
    var kernelCode: Int32 {
        switch self {
        case .q8_0: return 1
        case .q4_0: return 2
        case .q4_k: return 3
        default: return 0
        }
    }

    /// Blocks per row of `cols` weights.
    public func blocksPerRow(_ cols: Int) -> Int { (cols + blockElements - 1) / blockElements }
    /// Bytes per row of `cols` weights.
    public func rowBytes(_ cols: Int) -> Int { blocksPerRow(cols) * blockBytes }

    /// The block format with this block size in bytes (how a U8 [rows, nBlocks, blockBytes] tensor
    /// names its format).
    public static func blockFormat(blockBytes: Int) -> WeightFormat? {
        switch blockBytes {
        case 34: return .q8_0
        case 18: return .q4_0
        case 148: return .q4_k
        default: return nil
        }
    }
}

/// Quantizers (float rows → stored bytes) and dequantizers (stored bytes → float rows) for the block
/// formats and FP8. Written in scalar Swift: they run at quantization time and, for prefill, once per
/// tile; the hot integer dot products are in quant_kernels.c.
public enum Quantizer {
    // MARK: Block formats

    /// Quantizes one row of `cols` floats into `WeightFormat.rowBytes(cols)` bytes at `out`.
    public static func quantizeRow(_ format: WeightFormat, _ x: UnsafePointer<Float>, cols: Int,
                                   _ out: UnsafeMutableRawPointer) {
        let nb = format.blocksPerRow(cols)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buf in
            let block = buf.baseAddress!
            for b in 0..<nb {
                let lo = b * format.blockElements
                for i in 0..<format.blockElements { block[i] = lo + i < cols ? x[lo + i] : 0 }
                let dst = out + b * format.blockBytes
                switch format {
                case .q8_0: quantizeQ8_0(block, dst)
                case .q4_0: quantizeQ4_0(block, dst)
                case .q4_k: quantizeQ4_K(block, dst)
                default: break
                }
            }
        }
    }

    /// Dequantizes one stored row (block formats) into `cols` floats.
    public static func dequantizeRow(_ format: WeightFormat, _ p: UnsafeRawPointer, cols: Int,
                                     _ out: UnsafeMutablePointer<Float>) {
        switch format {
        case .q8_0:
            for b in 0..<format.blocksPerRow(cols) {
                let blk = p + b * 34
                let d = f16(blk)
                let n = min(32, cols - b * 32)
                for i in 0..<n { out[b * 32 + i] = d * Float(Int8(bitPattern: blk.load(fromByteOffset: 2 + i, as: UInt8.self))) }
            }
        case .q4_0:
            for b in 0..<format.blocksPerRow(cols) {
                let blk = p + b * 18
                let d = f16(blk)
                let n = min(32, cols - b * 32)
                for i in 0..<n {
                    let byte = blk.load(fromByteOffset: 2 + (i & 15), as: UInt8.self)
                    let nib = i < 16 ? byte & 0x0F : byte >> 4
                    out[b * 32 + i] = d * Float(Int(nib) - 8)
                }
            }
        case .q4_k:
            let nsub = (cols + 31) / 32
            for j in 0..<nsub {
                let sb = p + (j / 8) * 148, k = j % 8
                let d = f16(sb) * Float(sb.load(fromByteOffset: 4 + k, as: UInt8.self))
                let m = f16(sb + 2) * Float(sb.load(fromByteOffset: 12 + k, as: UInt8.self))
                let n = min(32, cols - j * 32)
                for i in 0..<n {
                    let byte = sb.load(fromByteOffset: 20 + 16 * k + (i & 15), as: UInt8.self)
                    let nib = i < 16 ? byte & 0x0F : byte >> 4
                    out[j * 32 + i] = d * Float(nib) - m
                }
            }
        default:
            break
        }
    }

    @inline(__always) static func f16(_ p: UnsafeRawPointer) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self)))
    }
    @inline(__always) static func putF16(_ v: Float, _ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Float16(v).bitPattern, as: UInt16.self)
    }

    /// Q8_0: d = max|x| / 127, q = round(x / d).
    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for i in 0..<32 { amax = max(amax, abs(x[i])) }
        let d = amax / 127
        putF16(d, out)
        let dq = Float(Float16(d))
        let inv: Float = dq > 0 ? 1 / dq : 0
        for i in 0..<32 {
            let q = max(-127, min(127, Int((x[i] * inv).rounded())))
            out.storeBytes(of: Int8(q), toByteOffset: 2 + i, as: Int8.self)
        }
    }

    /// Q4_0 (as ggml): the element of largest magnitude maps to −8, d = it / −8, n = round(x/d) + 8.
    static func quantizeQ4_0(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var m: Float = 0
        for i in 0..<32 where abs(x[i]) > abs(m) { m = x[i] }
        let d = m / -8
        putF16(d, out)
        let dq = Float(Float16(d))
        let inv: Float = dq != 0 ? 1 / dq : 0
        func code(_ v: Float) -> UInt8 { UInt8(max(0, min(15, Int((v * inv).rounded()) + 8))) }
        for i in 0..<16 { out.storeBytes(of: code(x[i]) | (code(x[i + 16]) << 4), toByteOffset: 2 + i, as: UInt8.self) }
    }

    /// Q4_K-style super-block of 256: per sub-block an asymmetric range [−min, scale·15 − min] refit
    /// by least squares; sub-block scales and mins quantized to u8 against the super-block's d, dmin.
    static func quantizeQ4_K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var scales: SIMD8<Float> = .zero, mins: SIMD8<Float> = .zero
        for j in 0..<8 {
            let (s, m) = fitSubBlock(x, j * 32)
            scales[j] = s; mins[j] = m
        }
        let d = scales.max() / 255, dmin = mins.max() / 255
        putF16(d, out); putF16(dmin, out + 2)
        let dq = Float(Float16(d)), dminq = Float(Float16(dmin))
        for j in 0..<8 {
            let sc = dq > 0 ? UInt8(max(0, min(255, Int((scales[j] / dq).rounded())))) : 0
            let mn = dminq > 0 ? UInt8(max(0, min(255, Int((mins[j] / dminq).rounded())))) : 0
            out.storeBytes(of: sc, toByteOffset: 4 + j, as: UInt8.self)
            out.storeBytes(of: mn, toByteOffset: 12 + j, as: UInt8.self)
            let step = dq * Float(sc), off = dminq * Float(mn)
            let inv: Float = step > 0 ? 1 / step : 0
            for i in 0..<16 {
                let a = UInt8(max(0, min(15, Int(((x[j * 32 + i] + off) * inv).rounded()))))
                let b = UInt8(max(0, min(15, Int(((x[j * 32 + 16 + i] + off) * inv).rounded()))))
                out.storeBytes(of: a | (b << 4), toByteOffset: 20 + 16 * j + i, as: UInt8.self)
            }
        }
    }

    /// Best (scale, min) for x[lo..<lo+32] ≈ scale·n − min, n ∈ 0...15, min ≥ 0: a few candidate
    /// ranges, each refit by least squares on its codes; the one with the smallest squared error wins.
    static func fitSubBlock(_ x: UnsafePointer<Float>, _ lo: Int) -> (Float, Float) {
        var xmin = Float.infinity, xmax = -Float.infinity
        for i in 0..<32 { xmin = min(xmin, x[lo + i]); xmax = max(xmax, x[lo + i]) }
        xmin = min(xmin, 0)
        if xmax <= xmin { return (0, -xmin) }
        var best: (Float, Float) = ((xmax - xmin) / 15, -xmin)
        var bestErr = Float.infinity
        for step in 0..<8 {
            let shrink = 1 - Float(step) * 0.03
            let scale = (xmax - xmin) * shrink / 15
            let inv = 1 / scale
            // Codes for this trial, then a least-squares refit of (scale, min) on them.
            var sn: Float = 0, snn: Float = 0, sx: Float = 0, snx: Float = 0
            for i in 0..<32 {
                let n = Float(max(0, min(15, Int(((x[lo + i] - xmin) * inv).rounded()))))
                sn += n; snn += n * n; sx += x[lo + i]; snx += n * x[lo + i]
            }
            let det = 32 * snn - sn * sn
            var s = scale, m = -xmin
            if det > 0 {
                s = (32 * snx - sn * sx) / det
                m = -(sx - s * sn) / 32
                if m < 0 || s <= 0 { s = scale; m = -xmin }
            }
            var err: Float = 0
            for i in 0..<32 {
                let n = Float(max(0, min(15, Int(((x[lo + i] + m) / s).rounded()))))
                let e = s * n - m - x[lo + i]
                err += e * e
            }
            if err < bestErr { bestErr = err; best = (s, m) }
        }
        return best
    }

    // MARK: FP8 E4M3

    /// Nearest E4M3 ("fn": max 448, no infinities) code of f, saturating, ties to even; bit arithmetic.
    public static func e4m3(_ f: Float) -> UInt8 {
        if f.isNaN { return 0x7F }
        let sign: UInt8 = f.sign == .minus ? 0x80 : 0
        let a = min(abs(f), 448)
        if a < 0.015625 {  // below the smallest normal 2^-6: multiples of 2^-9 (ties to even)
            let q = (a * 512).rounded(.toNearestOrEven)
            return sign | UInt8(q)
        }
        let bits = a.bitPattern
        let rounded = (bits &+ 0x7FFFF &+ ((bits >> 20) & 1)) >> 20  // keep 3 mantissa bits
        let code = Int(rounded) - ((127 - 7) << 3)
        return sign | UInt8(max(0, min(0x7E, code)))
    }

    /// Quantizes W [rows, cols] to E4M3 codes with one scale per row (max|row| / 448).
    public static func quantizeFP8(_ w: UnsafePointer<Float>, rows: Int, cols: Int,
                                   codes: UnsafeMutablePointer<UInt8>, scales: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = w + r * cols
            var amax: Float = 0
            for i in 0..<cols { amax = max(amax, abs(row[i])) }
            let s = amax > 0 ? amax / 448 : 1
            scales[r] = s
            let inv = 1 / s
            for i in 0..<cols { codes[r * cols + i] = e4m3(row[i] * inv) }
        }
    }
}

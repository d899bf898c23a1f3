import CKernels

// A weight matrix used in place in its stored format, and the run-time choice of kernel paths.

/// Which integer kernel runs quantized matvecs. `.auto` takes AVX-512 VNNI when CPUFeatures reports it,
/// else AVX2 (the build baseline). Tests force each path in turn; `.vnni` without CPU support falls
/// back to AVX2 (never an illegal instruction).
public enum QuantKernelPath: Sendable { case auto, scalar, avx2, vnni }
nonisolated(unsafe) public var quantKernelPathOverride: QuantKernelPath = .auto

@usableFromInline
var resolvedQuantPath: Int32 {
    switch quantKernelPathOverride {
    case .scalar: return 0
    case .avx2: return 1
    case .vnni, .auto: return CPUFeatures.avx512 && CPUFeatures.avx512vnni ? 2 : 1
    }
}

/// Prefill GEMMs on f32/f16/bf16 weights: `true` (default) uses the register-tiled AVX-512 kernel
/// (`hyi_gemm_float`, weights read in place) where the CPU has AVX-512F; `false` forces the portable
/// path (widen tiles, OpenBLAS sgemm). Tests run both.
nonisolated(unsafe) public var floatGEMMKernelEnabled = true

/// A 2-D weight [rows, cols] used in place as stored — f32, bf16, f16, fp8 (per-row scales) or a block
/// format (q8_0, q4_0, q4_k; layouts in Quantization.swift) — borrowed from a tensor whose owner it
/// keeps alive. Immutable; shareable across threads.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let format: WeightFormat
    public let base: UnsafeRawPointer
    public let rowBytes: Int
    public let tensor: Tensor
    /// fp8: per-row dequantization factor (stored scale × 256, see FP8Loader); nil otherwise.
    let rowScale: FloatBuffer?
    /// The bf16 form for `ComputePrecision.bf16` products (`withBF16(taps:)`), nil otherwise.
    public private(set) var bf16: BF16Weights? = nil

    /// The stored element type (U8 for block formats).
    public var dtype: DType { tensor.dtype }

    /// Wraps `t` as a [rows, cols] matrix: an f32/bf16/f16 tensor of shape [rows, cols]; an F8_E4M3
    /// tensor of that shape with `scale` (F32 [rows], or a single value); or a U8 tensor
    /// [rows, nBlocks, blockBytes] of a block format. Anything else is a format error naming `t`.
    public init(_ t: Tensor, rows: Int, cols: Int, scale: Tensor? = nil) throws {
        var fmt: WeightFormat
        switch t.dtype {
        case .f32: fmt = .f32
        case .f16: fmt = .f16
        case .bf16: fmt = .bf16
        case .f8e4m3: fmt = .fp8
        case .u8:
            guard t.shape.count == 3, t.shape[0] == rows, let f = WeightFormat.blockFormat(blockBytes: t.shape[2]),
                  t.shape[1] == f.blocksPerRow(cols) else {
                throw HYError.format("tensor \(t.name): U8 shape \(t.shape) is not a block-quantized [\(rows), \(cols)] matrix (q8_0/q4_0/q4_k)")
            }
            fmt = f
        default:
            throw HYError.unsupported("tensor \(t.name): dtype \(t.dtype.safetensorsName) is not supported for weights (f32, bf16, f16, F8_E4M3 + weight_scale, quantized U8)")
        }
        if !fmt.isBlockQuantized { try t.expectShape([rows, cols]) }
        if fmt == .fp8 {
            guard let scale, scale.dtype.isFloat, scale.count == rows || scale.count == 1 else {
                throw HYError.format("tensor \(t.name): F8_E4M3 weights need a float weight_scale of \(rows) values (or 1)")
            }
            let s = scale.floats()
            rowScale = FloatBuffer((0..<rows).map { 256 * s[scale.count == 1 ? 0 : $0] })
        } else {
            rowScale = nil
        }
        guard let b = t.data.baseAddress ?? (rows * cols == 0 ? UnsafeRawPointer(bitPattern: 16) : nil) else {
            throw HYError.format("tensor \(t.name): no data")
        }
        self.rows = rows; self.cols = cols; self.format = fmt; self.base = b; self.tensor = t
        self.rowBytes = fmt.isBlockQuantized ? fmt.rowBytes(cols) : cols * t.dtype.size
    }

    /// This matrix with a bf16 copy for `ComputePrecision.bf16` products (see `BF16Weights`); the
    /// stored form stays usable (matvecs keep reading it).
    public func withBF16(taps: Int) -> WeightMatrix {
        var m = self
        m.bf16 = BF16Weights(self, taps: taps)
        return m
    }

    @inlinable public func row(_ r: Int) -> UnsafeRawPointer { base + r * rowBytes }

    /// Bytes of weight data read by one matvec.
    public var storedBytes: Int { rows * rowBytes }

    /// Row `r` as fp32 into `out` (cols floats).
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch format {
        case .bf16: convertRow(BF16Loader.self, row(r), cols, out)
        case .f16: convertRow(F16Loader.self, row(r), cols, out)
        case .f32: convertRow(F32Loader.self, row(r), cols, out)
        case .fp8:
            convertRow(FP8Loader.self, row(r), cols, out)
            let s = rowScale?.buffer[r] ?? 1
            for i in 0..<cols { out[i] *= s }
        case .q8_0, .q4_0, .q4_k: hyi_dequant_row(format.kernelCode, row(r), Int64(cols), out)
        }
    }
}

/// n elements of a row stored as L, widened to fp32 into out.
@inlinable
public func convertRow<L: WeightLoader>(_: L.Type, _ p: UnsafeRawPointer, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 8 <= n {
        UnsafeMutableRawPointer(out + i).storeBytes(of: L.load8(p, i), as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { out[i] = L.load1(p, i); i += 1 }
}


#if canImport(Glibc)
import Glibc
#endif
import HunyuanNN
import HunyuanGeometry

/// The triplane decoder (`rendering_neus/synthesizer.py:25-128` OSGDecoder, `utils/renderer.py:28-75`):
/// a point p (world units, box [-0.6, 0.6]³) is scaled by 2/box_warp, projected onto plane 0 (x, y),
/// plane 1 (x, z) and plane 2 (z, y) — the first coordinate is grid_sample's x (width), the second its
/// y (height) — sampled bilinearly with zero padding and align_corners False, the three C-vectors
/// concatenated (plane 0 | 1 | 2) and passed through Linear → ReLU → … → Linear(H, 4):
/// sdf = out[0] (NeuS sign: < 0 inside), rgb = sigmoid(out[1...3])·1.002 − 0.001.
/// Points are processed in blocks of `blockSize` spread over the pool; no per-point allocation.
public struct SVRMDecoder {
    public let config: SVRMConfig
    public let layers: [Linear]
    public var blockSize = 4096

    public init(config: SVRMConfig, layers: [Linear]) {
        self.config = config
        self.layers = layers
    }

    /// Sampled, concatenated features of n points: out [n, 3C].
    public func sampleFeatures(_ tri: SVRMTriplane, points: UnsafePointer<Float>, count n: Int,
                               _ out: UnsafeMutablePointer<Float>) {
        let c = tri.channels, r = tri.resolution, size = Float(r)
        let k = Float(2.0 / config.boxWarp)
        tri.channelsLast.withUnsafeBufferPointer { planesBuf in
            let planes = planesBuf.baseAddress!
            /// Adds w · texel (tx, ty) of plane `plane` to o when the texel lies inside the plane.
            @inline(__always) func tap(_ plane: UnsafePointer<Float>, _ tx: Int, _ ty: Int, _ w: Float,
                                       _ o: UnsafeMutablePointer<Float>) {
                guard tx >= 0 && tx < r && ty >= 0 && ty < r else { return }
                let src = plane + (ty * r + tx) * c
                for ch in 0..<c { o[ch] += src[ch] * w }
            }
            for i in 0..<n {
                let x = points[3 * i] * k, y = points[3 * i + 1] * k, z = points[3 * i + 2] * k
                for pl in 0..<3 {
                    let o = out + i * 3 * c + pl * c
                    for ch in 0..<c { o[ch] = 0 }
                    guard let b = Self.bilinear(pl, x, y, z, size: size) else { continue }
                    let plane = planes + pl * r * r * c
                    // PyTorch's order: nw, ne, sw, se; taps outside the plane contribute 0.
                    tap(plane, b.x0, b.y0, b.w.0, o)
                    tap(plane, b.x0 + 1, b.y0, b.w.1, o)
                    tap(plane, b.x0, b.y0 + 1, b.w.2, o)
                    tap(plane, b.x0 + 1, b.y0 + 1, b.w.3, o)
                }
            }
        }
    }

    /// grid_sample's bilinear taps (align_corners False) of plane `pl` at the scaled point (x, y, z):
    /// the north-west texel and the weights of nw, ne, sw, se; nil for a non-finite coordinate.
    @inline(__always)
    static func bilinear(_ pl: Int, _ x: Float, _ y: Float, _ z: Float, size: Float)
        -> (x0: Int, y0: Int, w: (Float, Float, Float, Float))? {
        let u = pl == 2 ? z : x, v = pl == 0 ? y : (pl == 1 ? z : y)
        let ix = ((u + 1) * size - 1) / 2, iy = ((v + 1) * size - 1) / 2
        guard ix.isFinite, iy.isFinite else { return nil }
        let fx = floorf(ix), fy = floorf(iy)
        let x0 = Int(max(min(fx, 1e6), -1e6)), y0 = Int(max(min(fy, 1e6), -1e6))
        let x1f = fx + 1, y1f = fy + 1
        return (x0, y0, ((x1f - ix) * (y1f - iy), (ix - fx) * (y1f - iy), (x1f - ix) * (iy - fy), (ix - fx) * (iy - fy)))
    }

    /// Backward of `sampleFeatures`: dPlanes [3·R², C] (channels-last, the layout of
    /// `SVRMTriplane.channelsLast`) += the bilinear weights × dFeatures [n, 3C].
    public func sampleFeaturesBackward(channels c: Int, resolution r: Int, points: UnsafePointer<Float>, count n: Int,
                                       dFeatures: UnsafePointer<Float>, dPlanes: UnsafeMutablePointer<Float>) {
        let size = Float(r), k = Float(2.0 / config.boxWarp)
        @inline(__always) func tap(_ plane: UnsafeMutablePointer<Float>, _ tx: Int, _ ty: Int, _ w: Float, _ d: UnsafePointer<Float>) {
            guard tx >= 0 && tx < r && ty >= 0 && ty < r else { return }
            let dst = plane + (ty * r + tx) * c
            for ch in 0..<c { dst[ch] += d[ch] * w }
        }
        for i in 0..<n {
            let x = points[3 * i] * k, y = points[3 * i + 1] * k, z = points[3 * i + 2] * k
            for pl in 0..<3 {
                guard let b = Self.bilinear(pl, x, y, z, size: size) else { continue }
                let d = dFeatures + i * 3 * c + pl * c, plane = dPlanes + pl * r * r * c
                tap(plane, b.x0, b.y0, b.w.0, d)
                tap(plane, b.x0 + 1, b.y0, b.w.1, d)
                tap(plane, b.x0, b.y0 + 1, b.w.2, d)
                tap(plane, b.x0 + 1, b.y0 + 1, b.w.3, d)
            }
        }
    }

    /// sdf [n] and (optionally) rgb [n, 3] at n points, in blocks over `pool`. When `features` is given
    /// it receives the sampled features [n, 3C] (for parity checks).
    public func query(_ tri: SVRMTriplane, points: UnsafePointer<Float>, count n: Int,
                      sdf: UnsafeMutablePointer<Float>, rgb: UnsafeMutablePointer<Float>?,
                      features: UnsafeMutablePointer<Float>? = nil, pool: ThreadPool?) {
        if n <= 0 { return }
        let bs = max(1, blockSize), blocks = (n + bs - 1) / bs
        let f = 3 * tri.channels
        let widest = layers.map(\.outFeatures).max() ?? 4
        let body: (Int) -> Void = { bi in
            let i0 = bi * bs, m = min(bs, n - i0)
            let feat = FloatBuffer(m * f, zeroed: false), a = FloatBuffer(m * widest, zeroed: false), b = FloatBuffer(m * widest, zeroed: false)
            sampleFeatures(tri, points: points + 3 * i0, count: m, feat.p)
            if let features { (features + i0 * f).update(from: feat.p, count: m * f) }
            var input: UnsafePointer<Float> = UnsafePointer(feat.p)
            var outBuf = a.p, other = b.p
            for (li, layer) in layers.enumerated() {
                layer.forward(input, rows: m, outBuf, pool: nil)
                if li < layers.count - 1 {
                    let cnt = m * layer.outFeatures
                    for j in 0..<cnt where outBuf[j] < 0 { outBuf[j] = 0 }
                }
                input = UnsafePointer(outBuf)
                swap(&outBuf, &other)
            }
            let radius = config.spherePriorRadius.map { Float($0) }
            for j in 0..<m {
                let o = input + 4 * j
                sdf[i0 + j] = o[0]
                if let radius {
                    let p = points + 3 * (i0 + j)
                    sdf[i0 + j] += (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).squareRoot() - radius
                }
                if let rgb {
                    for ch in 0..<3 { rgb[3 * (i0 + j) + ch] = 1.002 / (1 + expf(-o[1 + ch])) - 0.001 }
                }
            }
        }
        if let pool, pool.threadCount > 1, blocks > 1 { pool.parallelFor(blocks, body) } else { for bi in 0..<blocks { body(bi) } }
    }

    /// Forward-difference SDF gradient as the reference computes normals (`synthesizer.py:81-100`):
    /// grad_a = (sdf(clamp(p + 0.01·e_a, box)) − sdf(p)) / 0.01; `normals` (if given) = grad / max(|grad|, 1e-12).
    public func sdfGradient(_ tri: SVRMTriplane, points: UnsafePointer<Float>, count n: Int, sdf: UnsafePointer<Float>,
                            gradient: UnsafeMutablePointer<Float>, normals: UnsafeMutablePointer<Float>?, pool: ThreadPool?) {
        let eps: Float = 0.01, lo = Float(config.boxMin), hi = Float(config.boxMax)
        let shifted = FloatBuffer(3 * n, zeroed: false), off = FloatBuffer(n, zeroed: false)
        for a in 0..<3 {
            for i in 0..<n {
                for j in 0..<3 {
                    let v = points[3 * i + j] + (j == a ? eps : 0)
                    shifted.p[3 * i + j] = min(max(v, lo), hi)
                }
            }
            query(tri, points: shifted.p, count: n, sdf: off.p, rgb: nil, pool: pool)
            for i in 0..<n { gradient[3 * i + a] = (off.p[i] - sdf[i]) / eps }
        }
        if let normals {
            for i in 0..<n {
                let g = gradient + 3 * i
                let len = max((g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).squareRoot(), 1e-12)
                for j in 0..<3 { normals[3 * i + j] = g[j] / len }
            }
        }
    }

    /// The grid coordinates along one axis as `torch.linspace(lo, hi, n)` computes them in float32
    /// (from the start for the first half, from the end for the second).
    public static func linspace(_ lo: Float, _ hi: Float, _ n: Int) -> [Float] {
        if n <= 0 { return [] }
        if n == 1 { return [lo] }
        let step = (hi - lo) / Float(n - 1), half = n / 2
        return (0..<n).map { i in i < half ? lo + step * Float(i) : hi - step * Float(n - i - 1) }
    }

    /// SDF over the n³ grid of the model's box, sdf[i, j, k] at (x_i, y_j, z_k) (`synthesizer.py:219-249`,
    /// indexing 'ij'), evaluated one x-slice at a time: `body(i, slice)` receives the n² values of
    /// slice i (j-major, k fastest) and may throw to stop. Peak memory is O(n²).
    public func sdfGrid(_ tri: SVRMTriplane, size n: Int, pool: ThreadPool?,
                        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        let axis = Self.linspace(Float(config.boxMin), Float(config.boxMax), n)
        let pts = FloatBuffer(3 * n * n, zeroed: false), slice = FloatBuffer(n * n, zeroed: false)
        for i in 0..<n {
            for j in 0..<n {
                for k in 0..<n {
                    let o = pts.p + 3 * (j * n + k)
                    o[0] = axis[i]; o[1] = axis[j]; o[2] = axis[k]
                }
            }
            query(tri, points: pts.p, count: n * n, sdf: slice.p, rgb: nil, pool: pool)
            try body(i, slice.buffer)
        }
    }

    /// The zero level set of the SDF over the resolution³ grid of the box by marching cubes, the SDF
    /// evaluated slab by slab straight into it (the grid is never held in full), grid points mapped by
    /// v/(n−1)·(max−min)+min. `interiorVertices` false keeps exactly PyMCubes' vertex set (see
    /// MarchingCubes). No colours. `abort` is polled per slab (worker threads); true throws `.aborted`.
    public func extractMesh(_ triplane: SVRMTriplane, resolution n: Int, interiorVertices: Bool = false, threads: Int,
                            abort: (() -> Bool)? = nil) throws -> Mesh {
        guard n >= 2 && n <= 4096 else { throw HYError.invalidArgument("mesh resolution \(n) (2...4096 expected)") }
        let axis = Self.linspace(Float(config.boxMin), Float(config.boxMax), n)
        let lo = config.boxMin, hi = config.boxMax
        return try MarchingCubes.extract(
            dims: SIMD3(n, n, n), level: 0,
            bounds: .init(min: SIMD3(repeating: lo), max: SIMD3(repeating: hi)),
            interiorVertices: interiorVertices, threads: threads, slabCells: 16
        ) { origin, dims, out in
            if let abort, abort() { throw HYError.aborted("cancelled during marching cubes") }
            let count = dims.x * dims.y * dims.z
            let pts = FloatBuffer(3 * count, zeroed: false)
            for i in 0..<dims.x {
                for j in 0..<dims.y {
                    for k in 0..<dims.z {
                        let o = pts.p + 3 * ((i * dims.y + j) * dims.z + k)
                        o[0] = axis[origin.x + i]; o[1] = axis[origin.y + j]; o[2] = axis[origin.z + k]
                    }
                }
            }
            query(triplane, points: pts.p, count: count, sdf: out.baseAddress!, rgb: nil, pool: nil)
        }
    }
}

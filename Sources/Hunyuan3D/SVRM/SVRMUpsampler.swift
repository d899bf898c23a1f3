import HunyuanNN

/// A triplane: 3 planes of C channels at R×R, R = P·r. `planes` is the reference layout
/// [3, C, R, R] (`triplane` in the fixtures, batch dimension dropped); `channelsLast` the same values
/// as [3, R, R, C] for sampling. Immutable; shareable across threads.
public struct SVRMTriplane: Sendable {
    public let channels: Int
    public let resolution: Int
    public let planes: [Float]
    public let channelsLast: [Float]

    /// Wraps planes laid out [3, C, R, R]; throws when the count does not match.
    public init(planes: [Float], channels: Int, resolution: Int) throws {
        let r = resolution, c = channels
        guard c > 0, r > 0, planes.count == 3 * c * r * r else {
            throw HYError.invalidArgument("triplane: \(planes.count) values for 3 × \(c) × \(r) × \(r)")
        }
        self.channels = c
        self.resolution = r
        self.planes = planes
        var last = [Float](repeating: 0, count: planes.count)
        for p in 0..<3 {
            for ch in 0..<c {
                let src = (p * c + ch) * r * r
                for i in 0..<(r * r) { last[(p * r * r + i) * c + ch] = planes[src + i] }
            }
        }
        channelsLast = last
    }
}

/// The Linear upsampler with pixel shuffle (`img_to_triplane.py:91-92, 112-127`): each token of the
/// P×P grid of each plane becomes an r×r patch of C channels,
/// triplane[p, c, r·i + a, r·j + b] = up[p, i, j, c·r² + a·r + b], up = Linear(W, C·r²)(tokens).
public struct SVRMUpsampler {
    public let config: SVRMConfig
    public let layer: Linear

    public init(config: SVRMConfig, layer: Linear) {
        self.config = config
        self.layer = layer
    }

    /// tokens [3·P², W] → triplane [3, C, P·r, P·r].
    public func forward(tokens: UnsafePointer<Float>, pool: ThreadPool?, trace: Trace? = nil) throws -> SVRMTriplane {
        let c = config, p = c.triplaneQuerySize, r = c.upsampleRatio, ch = c.triplaneChannels
        let q = c.triplaneQueries, wide = ch * r * r, res = p * r
        let up = FloatBuffer(q * wide, zeroed: false)
        layer.forward(tokens, rows: q, up.p, pool: pool)
        trace?("upsampler_out", [3, p, p, wide], up.buffer)
        var planes = [Float](repeating: 0, count: 3 * ch * res * res)
        for pl in 0..<3 {
            for i in 0..<p {
                for j in 0..<p {
                    let src = up.p + ((pl * p + i) * p + j) * wide
                    for cc in 0..<ch {
                        for a in 0..<r {
                            for b in 0..<r {
                                planes[((pl * ch + cc) * res + r * i + a) * res + r * j + b] = src[cc * r * r + a * r + b]
                            }
                        }
                    }
                }
            }
        }
        return try SVRMTriplane(planes: planes, channels: ch, resolution: res)
    }
}

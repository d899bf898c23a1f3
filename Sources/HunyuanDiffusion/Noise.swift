#if canImport(Glibc)
import Glibc
#endif

/// Where a diffusion run's Gaussian draws come from. Each draw is named (the reference fixtures'
/// names: `initial_noise`, `vae_posterior_noise_cond`, `step{i}_ancestral_noise`, …) so a run can
/// replay recorded draws exactly, and a seeded run gives the same numbers whatever order or thread
/// count the stages run with.
public protocol NoiseSource {
    /// `count` standard-normal values for the draw `name`.
    func draw(_ name: String, count: Int) throws -> [Float]
}

/// Our own seeded generator: the draw `name` of seed s is a SplitMix64 stream seeded with
/// s ⊕ FNV-1a(name), turned into normals by Box–Muller (two uniforms in (0, 1) with 53-bit
/// resolution → two normals, float64, rounded to fp32). Documented so results are reproducible
/// across versions and hosts; it does not reproduce torch's generator.
public struct SeededNoise: NoiseSource, Sendable {
    public let seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    public func draw(_ name: String, count: Int) -> [Float] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        var state = seed ^ h
        func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0 }
        var out = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {
            let r = (-2 * log(uniform())).squareRoot(), a = 2 * Double.pi * uniform()
            out[i] = Float(r * cos(a))
            if i + 1 < count { out[i + 1] = Float(r * sin(a)) }
            i += 2
        }
        return out
    }
}

/// Another source's draws under prefixed names (`prefix + name`), so two pipelines of one run seeded
/// alike draw independent streams.
public struct NamespacedNoise<Base: NoiseSource>: NoiseSource {
    public let prefix: String
    public let base: Base
    public init(prefix: String, base: Base) { self.prefix = prefix; self.base = base }
    public func draw(_ name: String, count: Int) throws -> [Float] { try base.draw(prefix + name, count: count) }
}

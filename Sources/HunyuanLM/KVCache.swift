import HunyuanCore
#if canImport(Glibc)
import Glibc
#endif

/// The key/value cache of one session, with one entry per **CLA group** (layers l with the same
/// l / cla_share_factor share it), so a model with cla_share_factor 2 holds half the bytes of a
/// per-layer cache.
///
/// Keys are stored after RoPE and — with QK-norm — after the RMS normalization *without* the weight:
/// every layer of a group reads the same normalized keys and folds its own key_layernorm weight into
/// its queries (q·(w⊙k̂) = (q⊙w)·k̂). Values are stored as projected.
/// Layout per group: keys[ctx, nKV·headDim], values[ctx, nKV·headDim], fp32.
/// `sharedAcrossLayers: false` is the plain per-layer layout (every layer its own entry, keys stored
/// with the layer's key-norm weight applied, queries not folded): the reference the shared layout is
/// tested against, and what a cache without CLA support would hold.
/// One thread at a time (owned by a session).
public final class KVCache {
    public let capacity: Int
    public let groups: Int
    public let sharedAcrossLayers: Bool
    public let rowFloats: Int
    /// Number of positions holding valid entries.
    public internal(set) var count = 0
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    init(config c: HunyuanConfig, capacity: Int, sharedAcrossLayers: Bool = true) throws {
        self.capacity = capacity
        self.sharedAcrossLayers = sharedAcrossLayers
        groups = sharedAcrossLayers ? c.kvGroups : c.numLayers
        rowFloats = c.numKVHeads * c.headDim
        let per = try checkedMul(capacity, rowFloats, "KV cache size")
        let total = try checkedMul(per, groups, "KV cache size")
        let bytes = try checkedMul(total, MemoryLayout<Float>.size, "KV cache size")
        // malloc, not allocate(capacity:): a cache that does not fit is an error for the caller, not a trap.
        guard let k = malloc(max(bytes, 4)) else {
            throw HYError.outOfMemory("KV cache of \(capacity) positions needs 2 × \(bytes) bytes; use a smaller context")
        }
        guard let v = malloc(max(bytes, 4)) else {
            free(k)
            throw HYError.outOfMemory("KV cache of \(capacity) positions needs 2 × \(bytes) bytes; use a smaller context")
        }
        keys = k.bindMemory(to: Float.self, capacity: max(total, 1))
        values = v.bindMemory(to: Float.self, capacity: max(total, 1))
    }

    deinit {
        free(keys)
        free(values)
    }

    /// Bytes held per cached token (keys + values over all groups).
    public var bytesPerToken: Int { groups * rowFloats * 2 * MemoryLayout<Float>.size }
    public var totalBytes: Int { bytesPerToken * capacity }

    @inline(__always) func keyRow(group g: Int, position p: Int) -> UnsafeMutablePointer<Float> {
        keys + (g * capacity + p) * rowFloats
    }
    @inline(__always) func valueRow(group g: Int, position p: Int) -> UnsafeMutablePointer<Float> {
        values + (g * capacity + p) * rowFloats
    }

    /// Forgets every position ≥ n (n is clamped to 0...count).
    public func truncate(_ n: Int) { count = max(0, min(n, count)) }
    public func reset() { count = 0 }

    /// Bytes per token of a cache for `c` (without allocating one).
    public static func bytesPerToken(_ c: HunyuanConfig) -> Int {
        c.kvGroups * c.numKVHeads * c.headDim * 2 * MemoryLayout<Float>.size
    }
}

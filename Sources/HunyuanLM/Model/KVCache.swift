import HunyuanNN
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
/// Layout per group: keys[ctx, nKV·headDim], values[ctx, nKV·headDim], in the cache's `type`:
/// fp32; f16 (half the bytes; entries rounded to nearest once when stored, widened when read); or
/// q8_0 (each row as blocks of 32: f16 scale + 32 int8, 8.5 bits per value; head_dim a multiple of 32).
/// `sharedAcrossLayers: false` is the plain per-layer layout (every layer its own entry, keys stored
/// with the layer's key-norm weight applied, queries not folded): the reference the shared layout is
/// tested against, and what a cache without CLA support would hold.
/// One thread at a time (owned by a session).
public final class KVCache {
    /// Storage format of cached keys and values.
    public typealias ElementType = KVElementType

    public let capacity: Int
    public let groups: Int
    public let sharedAcrossLayers: Bool
    public let type: ElementType
    public let rowFloats: Int
    /// Number of positions holding valid entries.
    public internal(set) var count = 0
    let keys: UnsafeMutableRawPointer
    let values: UnsafeMutableRawPointer

    init(config c: HunyuanConfig, capacity: Int, sharedAcrossLayers: Bool = true, type: ElementType = .f32) throws {
        self.capacity = capacity
        self.sharedAcrossLayers = sharedAcrossLayers
        self.type = type
        groups = sharedAcrossLayers ? c.kvGroups : c.numLayers
        rowFloats = c.numKVHeads * c.headDim
        if type == .q8_0 && c.headDim % 32 != 0 {
            throw HYError.unsupported("a q8_0 KV cache needs head_dim to be a multiple of 32 (this model: \(c.headDim))")
        }
        let per = try checkedMul(capacity, type.rowBytes(rowFloats), "KV cache size")
        let bytes = try checkedMul(per, groups, "KV cache size")
        // Refused before any work when keys + values cannot fit in this machine's memory (malloc would
        // overcommit and the process would be killed later, mid-prompt).
        let total = try checkedMul(bytes, 2, "KV cache size"), phys = CPUFeatures.physicalMemoryBytes
        guard total <= phys else {
            throw HYError.outOfMemory("a KV cache of \(capacity) positions needs \(total) bytes (\(total / max(capacity, 1)) per token, \(type.rawValue)); this machine has \(phys) bytes of memory: use a shorter context or a smaller cache type (f16, q8_0)")
        }
        // malloc, not allocate(capacity:): a cache that does not fit is an error for the caller, not a trap.
        guard let k = malloc(max(bytes, 4)) else {
            throw HYError.outOfMemory("KV cache of \(capacity) positions needs 2 × \(bytes) bytes; use a smaller context")
        }
        guard let v = malloc(max(bytes, 4)) else {
            free(k)
            throw HYError.outOfMemory("KV cache of \(capacity) positions needs 2 × \(bytes) bytes; use a smaller context")
        }
        keys = k
        values = v
    }

    deinit {
        free(keys)
        free(values)
    }

    /// Bytes held per cached token (keys + values over all groups).
    public var bytesPerToken: Int { groups * rowBytes * 2 }
    public var totalBytes: Int { bytesPerToken * capacity }
    /// Bytes from one position's row to the next.
    var rowBytes: Int { type.rowBytes(rowFloats) }

    @inline(__always) func keyRow(group g: Int, position p: Int) -> UnsafeMutableRawPointer {
        keys + (g * capacity + p) * rowBytes
    }
    @inline(__always) func valueRow(group g: Int, position p: Int) -> UnsafeMutableRawPointer {
        values + (g * capacity + p) * rowBytes
    }

    /// Stores rowFloats floats into a key or value row in the cache's format.
    @inline(__always) func store(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        switch type {
        case .f32: dst.assumingMemoryBound(to: Float.self).update(from: src, count: rowFloats)
        case .f16:
            let h = dst.assumingMemoryBound(to: Float16.self)
            for j in 0..<rowFloats { h[j] = Float16(src[j]) }
        case .q8_0:
            Quantizer.quantizeRow(.q8_0, src, cols: rowFloats, dst)
        }
    }

    /// Forgets every position ≥ n (n is clamped to 0...count).
    public func truncate(_ n: Int) { count = max(0, min(n, count)) }
    public func reset() { count = 0 }

    /// Bytes per token of a cache for `c` (without allocating one).
    /// Longest context the automatic choice keeps in f32 (hunyuan.h's HY_KV_AUTO_F32_MAX).
    public static let automaticF32Max = 8192

    /// The automatic cache storage: f32 up to `automaticF32Max` positions (exact parity), q8_0 above
    /// (~0.27 of the bytes; greedy output measured in BENCHMARKS.md "Long context"); f32 where
    /// head_dim is not a multiple of 32.
    public static func automaticType(_ c: HunyuanConfig, contextLength n: Int) -> ElementType {
        n > automaticF32Max && c.headDim % 32 == 0 ? .q8_0 : .f32
    }

    public static func bytesPerToken(_ c: HunyuanConfig, type: ElementType = .f32) -> Int {
        c.kvGroups * type.rowBytes(c.numKVHeads * c.headDim) * 2
    }
}

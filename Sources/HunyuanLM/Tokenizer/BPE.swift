#if canImport(Glibc)
import Glibc
#endif

/// The mergeable ranks of hy.tiktoken and byte-level BPE over them.
///
/// Storage: all token bytes in one buffer, an offsets table, and an open-addressing hash table
/// (bytes → rank) at load factor ≤ ½, so a lookup is one hash of the bytes and usually one compare.
/// Immutable after loading; shareable across threads.
package final class Vocabulary: @unchecked Sendable {
    package let count: Int
    private let data: UnsafeMutablePointer<UInt8>      // token bytes, then 8 zero bytes
    private let offsets: UnsafeMutablePointer<Int32>   // count + 1
    /// Two words per slot: the token's first 8 bytes (zero-padded), then
    /// (hash >> 40) << 40 | min(len, 255) << 32 | (rank + 1); 0 = empty. Tokens of ≤ 8 bytes (most
    /// lookups) are found without touching `data`.
    private let slots: UnsafeMutablePointer<UInt64>
    private let mask: Int
    private let byteRank: UnsafeMutablePointer<Int32>  // rank of each single byte
    private let pairRank2: UnsafeMutablePointer<Int32> // rank of each 2-byte token, by b0 << 8 | b1; -1 if none
    /// One bit per (hash >> 44) of every token: a clear bit proves a lookup fails without touching
    /// the large slot table (most failing lookups while merging).
    private let filter: UnsafeMutablePointer<UInt64>
    private static let filterBits = 20

    /// Parses hy.tiktoken: one `base64(bytes) rank` per line, ranks 0, 1, 2, … in order, every token
    /// distinct, all 256 single bytes present, exactly `expectedCount` lines (127,957 for Hunyuan's
    /// file). Any deviation is `.format` naming the line.
    init(parsing file: UnsafeRawBufferPointer, path: String, expectedCount: Int = Tokenizer.mergeableCount) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(file.count)
        var offs: [Int32] = [0]
        offs.reserveCapacity(expectedCount + 1)
        var line = 0
        var i = 0
        let n = file.count
        var decoded: [UInt8] = []
        while i < n {
            line += 1
            var e = i
            while e < n && file[e] != 0x0A { e += 1 }
            var le = e
            if le > i && file[le - 1] == 0x0D { le -= 1 }
            guard le > i else { throw HYError.format("\(path): line \(line): empty line") }
            var t = i
            while t < le && file[t] != 0x20 && file[t] != 0x09 { t += 1 }
            guard Vocabulary.base64Decode(UnsafeRawBufferPointer(rebasing: file[i..<t]), into: &decoded),
                  !decoded.isEmpty else {
                throw HYError.format("\(path): line \(line): invalid base64 token")
            }
            var r = t
            while r < le && (file[r] == 0x20 || file[r] == 0x09) { r += 1 }
            var rank = 0
            var digits = 0
            while r < le && file[r] >= 0x30 && file[r] <= 0x39 && digits < 10 {
                rank = rank * 10 + Int(file[r] - 0x30)
                r += 1
                digits += 1
            }
            while r < le && (file[r] == 0x20 || file[r] == 0x09) { r += 1 }
            guard digits > 0, r == le else { throw HYError.format("\(path): line \(line): expected `base64 rank`") }
            let expected = offs.count - 1
            if rank < expected { throw HYError.format("\(path): line \(line): duplicate rank \(rank) (expected \(expected))") }
            if rank > expected { throw HYError.format("\(path): line \(line): rank \(rank) leaves a gap (expected \(expected))") }
            guard expected < expectedCount else {
                throw HYError.format("\(path): line \(line): more than \(expectedCount) ranks")
            }
            bytes.append(contentsOf: decoded)
            guard bytes.count < Int(Int32.max) else { throw HYError.format("\(path): line \(line): vocabulary too large") }
            offs.append(Int32(bytes.count))
            i = e + 1
        }
        guard offs.count - 1 == expectedCount else {
            throw HYError.format(expectedCount == Tokenizer.mergeableCount
                ? "\(path): \(offs.count - 1) ranks; Hunyuan's hy.tiktoken has \(expectedCount)"
                : "\(path): \(offs.count - 1) ranks; tokenizer_config.json declares \(expectedCount)")
        }
        count = offs.count - 1
        let d = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count + 8)
        d.initialize(repeating: 0, count: bytes.count + 8)
        bytes.withUnsafeBufferPointer { d.update(from: $0.baseAddress!, count: $0.count) }
        data = d
        let o = UnsafeMutablePointer<Int32>.allocate(capacity: offs.count)
        offs.withUnsafeBufferPointer { o.initialize(from: $0.baseAddress!, count: $0.count) }
        offsets = o
        var cap = 1
        while cap < 2 * count { cap <<= 1 }
        mask = cap - 1
        slots = .allocate(capacity: 2 * cap)
        slots.initialize(repeating: 0, count: 2 * cap)
        byteRank = .allocate(capacity: 256)
        byteRank.initialize(repeating: -1, count: 256)
        pairRank2 = .allocate(capacity: 65536)
        pairRank2.initialize(repeating: -1, count: 65536)
        filter = .allocate(capacity: (1 << Vocabulary.filterBits) / 64)
        filter.initialize(repeating: 0, count: (1 << Vocabulary.filterBits) / 64)
        for id in 0..<count {
            let a = Int(offsets[id]), len = Int(offsets[id + 1]) - a
            if rank(data + a, len) >= 0 {
                let dup = Int(rank(data + a, len))
                throw HYError.format("\(path): line \(id + 1): token repeats line \(dup + 1)")
            }
            let (h, w) = Vocabulary.hash(data + a, len)
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[2 * s + 1] != 0 { s = (s + 1) & mask }
            slots[2 * s] = w
            slots[2 * s + 1] = (h >> 40) << 40 | UInt64(min(len, 255)) << 32 | UInt64(id + 1)
            if len == 1 { byteRank[Int(data[a])] = Int32(id) }
            if len == 2 { pairRank2[Int(data[a]) << 8 | Int(data[a + 1])] = Int32(id) }
            let f = Int(h >> UInt64(64 - Vocabulary.filterBits))
            filter[f >> 6] |= 1 << UInt64(f & 63)
        }
        for b in 0..<256 where byteRank[b] < 0 {
            throw HYError.format("\(path): the single byte 0x\(String(b, radix: 16)) has no rank (byte-level BPE needs all 256)")
        }
    }

    deinit {
        data.deallocate()
        offsets.deallocate()
        slots.deallocate()
        byteRank.deallocate()
        pairRank2.deallocate()
        filter.deallocate()
    }

    package func bytes(of id: Int) -> [UInt8] {
        let a = Int(offsets[id]), b = Int(offsets[id + 1])
        return Array(UnsafeBufferPointer(start: data + a, count: b - a))
    }

    /// Value of each base64 character; 0xFF for "not in the alphabet", 0xFE for "=".
    static let base64Values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            t[Int(c)] = UInt8(i)
        }
        t[Int(UInt8(ascii: "="))] = 0xFE
        return t
    }()

    /// Decodes standard padded base64 (canonical: unused trailing bits zero); false when malformed.
    static func base64Decode(_ s: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        let n = s.count
        guard n % 4 == 0, n > 0 else { return n == 0 }
        return base64Values.withUnsafeBufferPointer { t in
            var k = 0
            while k < n {
                let a = t[Int(s[k])], b = t[Int(s[k + 1])], c = t[Int(s[k + 2])], d = t[Int(s[k + 3])]
                let last = k + 4 == n
                guard a < 64, b < 64 else { return false }
                if c == 0xFE {
                    guard last, d == 0xFE, b & 0x0F == 0 else { return false }
                    out.append(a << 2 | b >> 4)
                } else if d == 0xFE {
                    guard last, c < 64, c & 0x03 == 0 else { return false }
                    out.append(a << 2 | b >> 4)
                    out.append(b << 4 | c >> 2)
                } else {
                    guard c < 64, d < 64 else { return false }
                    out.append(a << 2 | b >> 4)
                    out.append(b << 4 | c >> 2)
                    out.append(c << 6 | d)
                }
                k += 4
            }
            return true
        }
    }

    /// 64-bit hash of n ≥ 1 bytes, and their first 8 bytes zero-padded. Reads whole 8-byte words:
    /// the caller guarantees 8 readable bytes past the end.
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> (UInt64, UInt64) {
        let raw = UnsafeRawPointer(p)
        let first = raw.loadUnaligned(as: UInt64.self) & (n >= 8 ? UInt64.max : UInt64.max >> UInt64(64 - 8 * n))
        var h = (UInt64(truncatingIfNeeded: n) &* 0x9E37_79B9_7F4A_7C15) ^ first
        var i = 8
        while i < n {
            h = h &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            let rem = n - i
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h ^= rem >= 8 ? w : w & (UInt64.max >> UInt64(64 - 8 * rem))
            i += 8
        }
        h ^= h >> 31
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 30
        h = h &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return (h, first)
    }

    /// Rank of the n ≥ 1 bytes at p, or -1 (8 readable bytes past the end required).
    @inline(__always)
    package func rank(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        let (h, first) = Vocabulary.hash(p, n)
        let f = Int(h >> UInt64(64 - Vocabulary.filterBits))
        if filter[f >> 6] & (1 << UInt64(f & 63)) == 0 { return -1 }
        let want = (h >> 40) << 8 | UInt64(min(n, 255))
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let meta = slots[2 * s + 1]
            if meta == 0 { return -1 }
            if meta >> 32 == want && slots[2 * s] == first {
                let id = Int(meta & 0xFFFF_FFFF) - 1
                if n <= 8 { return Int32(id) }
                let a = Int(offsets[id])
                if Int(offsets[id + 1]) - a == n && memcmp(data + a + 8, p + 8, n - 8) == 0 { return Int32(id) }
            }
            s = (s + 1) & mask
        }
    }

    @inline(__always)
    private func pairRank(_ p: UnsafePointer<UInt8>, _ a: Int, _ b: Int) -> Int32 {
        let r = b - a == 2 ? pairRank2[Int(p[a]) << 8 | Int(p[a + 1])] : rank(p + a, b - a)
        return r < 0 ? Int32.max : r
    }

    /// Appends the BPE ids of one piece (n ≥ 1 bytes, 8 readable bytes past its end). Merges the
    /// adjacent pair of lowest rank first, the leftmost among equals, until no pair has a rank —
    /// tiktoken's rule. Short pieces use tiktoken's quadratic scan; long ones a heap (n log n), so
    /// megabytes of one character stay fast.
    @inline(__always)
    func encodePiece(_ p: UnsafePointer<UInt8>, _ n: Int, _ out: inout [Int32], _ scratch: inout BPEScratch) {
        if n == 1 { out.append(byteRank[Int(p[0])]); return }
        let whole = rank(p, n)
        if whole >= 0 { out.append(whole); return }
        if n <= 192 { mergeScan(p, n, &out, &scratch) } else { mergeHeap(p, n, &out, &scratch) }
    }

    func mergeScan(_ p: UnsafePointer<UInt8>, _ n: Int, _ out: inout [Int32], _ scratch: inout BPEScratch) {
        let n8 = (n &+ 7) & ~7
        scratch.ensure(n8 &+ 1)
        // Parts form a list by start offset: nx[j] = start of the next part (n at the end), pv[j] the
        // previous; rk[j] = rank of part j joined with its successor, Int32.max when there is none or
        // j is no longer a part start — so the leftmost minimum of rk[0..<n] is the next merge, found
        // with 8-wide SIMD minimums; tk[j] = the part's token.
        let nx = scratch.start, pv = scratch.prev, rk = scratch.rank, tk = scratch.token
        for j in 0..<n {
            nx[j] = Int32(j &+ 1)
            pv[j] = Int32(j &- 1)
            tk[j] = byteRank[Int(p[j])]
            rk[j] = j &+ 1 < n ? pairRank(p, j, j &+ 2) : Int32.max
        }
        var j = n
        while j < n8 { rk[j] = Int32.max; j &+= 1 }
        let raw = UnsafeRawPointer(rk)
        while true {
            var v = SIMD8<Int32>(repeating: Int32.max)
            var k = 0
            while k < n8 {
                v = pointwiseMin(v, raw.loadUnaligned(fromByteOffset: k &* 4, as: SIMD8<Int32>.self))
                k &+= 8
            }
            let best = v.min()
            if best == Int32.max { break }
            var bi = 0
            while rk[bi] != best { bi &+= 1 }
            let right = Int(nx[bi])
            let after = Int(nx[right])
            rk[right] = Int32.max
            tk[bi] = best
            nx[bi] = Int32(after)
            if after < n {
                pv[after] = Int32(bi)
                rk[bi] = pairRank(p, bi, Int(nx[after]))
            } else {
                rk[bi] = Int32.max
            }
            if bi > 0 {
                let q = Int(pv[bi])
                rk[q] = pairRank(p, q, after)
            }
        }
        j = 0
        while j < n { out.append(tk[j]); j = Int(nx[j]) }
    }

    func mergeHeap(_ p: UnsafePointer<UInt8>, _ n: Int, _ out: inout [Int32], _ scratch: inout BPEScratch) {
        scratch.ensure(n + 1)
        scratch.ensureHeap(3 * n + 3)
        // Parts are named by their start offset j; next[j] = start of the following part (n at the
        // end, -1 once j is merged away); rank[j] = rank of part j joined with its successor.
        let nx = scratch.start, pv = scratch.prev, rk = scratch.rank, tk = scratch.token
        var heap = BinaryHeap(storage: scratch.heap)
        for j in 0..<n { nx[j] = Int32(j + 1); pv[j] = Int32(j - 1); tk[j] = byteRank[Int(p[j])] }
        for j in 0..<n {
            rk[j] = j + 1 < n ? pairRank(p, j, j + 2) : Int32.max
            if rk[j] != Int32.max { heap.push(UInt64(rk[j]) << 32 | UInt64(j)) }
        }
        while let key = heap.pop() {
            let r = Int32(truncatingIfNeeded: key >> 32), j = Int(key & 0xFFFF_FFFF)
            guard nx[j] >= 0, rk[j] == r else { continue }     // stale entry
            let right = Int(nx[j])
            let after = Int(nx[right])
            tk[j] = r
            nx[j] = Int32(after)
            nx[right] = -1
            if after < n { pv[after] = Int32(j) }
            rk[j] = after < n ? pairRank(p, j, Int(nx[after])) : Int32.max
            if rk[j] != Int32.max { heap.push(UInt64(rk[j]) << 32 | UInt64(j)) }
            if j > 0 {
                let q = Int(pv[j])
                rk[q] = pairRank(p, q, after)
                if rk[q] != Int32.max { heap.push(UInt64(rk[q]) << 32 | UInt64(q)) }
            }
        }
        var j = 0
        while j < n { out.append(tk[j]); j = Int(nx[j]) }
    }
}

/// Scratch buffers of one encode call, grown on demand and released with `release()`.
struct BPEScratch {
    private(set) var capacity = 0
    private(set) var heapCapacity = 0
    var start = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var prev = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var rank = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var token = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    var heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)

    mutating func ensure(_ n: Int) {
        guard n > capacity else { return }
        let c = max(n, 256, capacity * 2)
        for k in 0..<4 {
            let np = UnsafeMutablePointer<Int32>.allocate(capacity: c)
            switch k {
            case 0: start.deallocate(); start = np
            case 1: prev.deallocate(); prev = np
            case 2: rank.deallocate(); rank = np
            default: token.deallocate(); token = np
            }
        }
        capacity = c
    }

    mutating func ensureHeap(_ n: Int) {
        guard n > heapCapacity else { return }
        heap.deallocate()
        heap = .allocate(capacity: n)
        heapCapacity = n
    }

    func release() {
        start.deallocate(); prev.deallocate(); rank.deallocate(); token.deallocate(); heap.deallocate()
    }
}

/// A min-heap of UInt64 keys in caller-provided storage (large enough for every push).
struct BinaryHeap {
    let storage: UnsafeMutablePointer<UInt64>
    var count = 0

    init(storage: UnsafeMutablePointer<UInt64>) { self.storage = storage }

    @inline(__always)
    mutating func push(_ key: UInt64) {
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if storage[parent] <= key { break }
            storage[i] = storage[parent]
            i = parent
        }
        storage[i] = key
    }

    @inline(__always)
    mutating func pop() -> UInt64? {
        guard count > 0 else { return nil }
        let top = storage[0]
        count -= 1
        if count == 0 { return top }
        let last = storage[count]
        var i = 0
        while true {
            var c = 2 * i + 1
            if c >= count { break }
            if c + 1 < count && storage[c + 1] < storage[c] { c += 1 }
            if storage[c] >= last { break }
            storage[i] = storage[c]
            i = c
        }
        storage[i] = last
        return top
    }
}

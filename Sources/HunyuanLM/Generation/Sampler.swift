import HunyuanNN
#if canImport(Glibc)
import Glibc
#endif

/// Sampling settings with Hugging Face `generate` semantics. Processing order, as in transformers:
/// repetition penalty → temperature → top-k → top-p → min-p → sample from the softmax.
/// temperature ≤ 0 (or `greedy`) picks the argmax after the repetition penalty.
public struct SamplerParams: Sendable, Equatable {
    public var greedy: Bool = false
    public var temperature: Float = 1
    /// Keep the k most likely tokens (0 = off).
    public var topK: Int = 0
    /// Keep the smallest most-likely set whose probability reaches top_p (1 = off).
    public var topP: Float = 1
    /// Drop tokens with probability < min_p · max probability (0 = off).
    public var minP: Float = 0
    /// HF repetition penalty over every token in the context (1 = off): a seen token's logit is
    /// divided by it when positive and multiplied by it when negative.
    public var repetitionPenalty: Float = 1
    public var seed: UInt64 = 0

    public init() {}

    /// The defaults of generation_config.json: sampling when do_sample, otherwise greedy.
    public init(_ g: GenerationConfig) { self = g.sampler }

    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else { throw HYError.invalidArgument("temperature \(temperature) must be ≥ 0") }
        guard topK >= 0 else { throw HYError.invalidArgument("top_k \(topK) must be ≥ 0") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw HYError.invalidArgument("top_p \(topP) must be in (0, 1]") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw HYError.invalidArgument("min_p \(minP) must be in [0, 1]") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw HYError.invalidArgument("repetition_penalty \(repetitionPenalty) must be > 0")
        }
    }
}

/// Picks the next token from logits. Buffers are allocated once for the vocabulary; `sample` does not
/// allocate. Deterministic for a given seed. One thread at a time.
public final class Sampler {
    public let params: SamplerParams
    public let vocabSize: Int
    private var rng: SplitMix64
    private let work: UnsafeMutablePointer<Float>
    private let order: UnsafeMutablePointer<Int32>
    private let ranked: UnsafeMutablePointer<Int32>
    private let seen: UnsafeMutablePointer<Bool>

    public init(params: SamplerParams, vocabSize: Int) throws {
        try params.validate()
        guard vocabSize > 0 else { throw HYError.invalidArgument("vocabulary size must be positive") }
        self.params = params
        self.vocabSize = vocabSize
        rng = SplitMix64(seed: params.seed)
        work = .allocate(capacity: vocabSize)
        order = .allocate(capacity: vocabSize)
        ranked = .allocate(capacity: vocabSize)
        seen = .allocate(capacity: vocabSize)
        seen.initialize(repeating: false, count: vocabSize)
    }

    deinit { work.deallocate(); order.deallocate(); ranked.deallocate(); seen.deallocate() }

    /// The next token for `logits` (vocabSize values) given the tokens so far (`history`).
    public func sample(_ logits: UnsafeBufferPointer<Float>, history: [Int32]) -> Int32 {
        let n = min(vocabSize, logits.count)
        guard n > 0, let src = logits.baseAddress else { return 0 }
        work.update(from: src, count: n)
        let p = params
        if p.repetitionPenalty != 1 {
            for id in history where id >= 0 && Int(id) < n && !seen[Int(id)] {
                seen[Int(id)] = true
                let v = work[Int(id)]
                work[Int(id)] = v < 0 ? v * p.repetitionPenalty : v / p.repetitionPenalty
            }
            for id in history where id >= 0 && Int(id) < n { seen[Int(id)] = false }
        }
        if p.greedy || p.temperature == 0 {
            var best = 0
            for i in 1..<n where work[i] > work[best] { best = i }
            return Int32(best)
        }
        for i in 0..<n { work[i] /= p.temperature }
        let w = work
        var maxLogit = -Float.infinity
        for i in 0..<n { maxLogit = max(maxLogit, w[i]) }
        let useTopK = p.topK > 0 && p.topK < n
        if !useTopK && p.topP >= 1 {
            // No ranking needed: draw over every token that passes min-p.
            let floor = p.minP > 0 ? maxLogit + log(p.minP) : -Float.infinity
            var total: Float = 0
            for i in 0..<n where w[i] >= floor { total += exp(w[i] - maxLogit) }
            var r = Float(rng.nextDouble()) * total
            var last = 0
            for i in 0..<n where w[i] >= floor {
                r -= exp(w[i] - maxLogit)
                last = i
                if r < 0 { return Int32(i) }
            }
            return Int32(last)
        }
        // Rank lazily: a heap over all ids (best at the root) is popped only as far as top-k / top-p /
        // min-p need, into `ranked`. O(V + popped · log V), no allocation.
        var heap = Heap(ids: order, count: n, logits: w)
        heap.build()
        var popped = 0
        func ensure(_ j: Int) -> Bool {
            while popped <= j {
                guard let id = heap.pop() else { return false }
                ranked[popped] = id
                popped += 1
            }
            return true
        }
        var limit = n
        var sum: Float = 0
        if useTopK {
            // Keep ties with the k-th value, as HF does (it removes logits < k-th value).
            _ = ensure(p.topK - 1)
            let kth = w[Int(ranked[p.topK - 1])]
            while let next = heap.peek(), w[Int(next)] == kth { _ = ensure(popped) }
            limit = popped
            for j in 0..<limit { sum += exp(w[Int(ranked[j])] - maxLogit) }
        } else {
            for i in 0..<n { sum += exp(w[i] - maxLogit) }
        }
        var m = limit
        if p.topP < 1 {
            // Keep the smallest prefix whose cumulative probability reaches top_p (at least one).
            var cum: Float = 0
            var keep = 0
            while keep < limit && ensure(keep) {
                cum += exp(w[Int(ranked[keep])] - maxLogit) / sum
                keep += 1
                if cum >= p.topP { break }
            }
            m = max(1, keep)
        }
        _ = ensure(m - 1)
        m = min(m, popped)
        if p.minP > 0 {
            // Probabilities relative to the most likely token: exp(l − max) < min_p is dropped.
            var keep = 0
            while keep < m && exp(w[Int(ranked[keep])] - maxLogit) >= p.minP { keep += 1 }
            m = max(1, keep)
        }
        var total: Float = 0
        for j in 0..<m { total += exp(w[Int(ranked[j])] - maxLogit) }
        var r = Float(rng.nextDouble()) * total
        for j in 0..<m {
            r -= exp(w[Int(ranked[j])] - maxLogit)
            if r < 0 { return ranked[j] }
        }
        return ranked[m - 1]
    }
}

/// A binary heap of token ids over caller-owned storage, ordered by logit descending, ties by lower
/// id first (the root is the next token in rank order).
struct Heap {
    let ids: UnsafeMutablePointer<Int32>
    var count: Int
    let logits: UnsafePointer<Float>

    init(ids: UnsafeMutablePointer<Int32>, count: Int, logits: UnsafePointer<Float>) {
        self.ids = ids; self.count = count; self.logits = logits
        for i in 0..<count { ids[i] = Int32(i) }
    }

    @inline(__always) func first(_ a: Int32, _ b: Int32) -> Bool {
        let x = logits[Int(a)], y = logits[Int(b)]
        return x > y || (x == y && a < b)
    }

    mutating func build() {
        var i = count / 2 - 1
        while i >= 0 { siftDown(i); i -= 1 }
    }

    func peek() -> Int32? { count > 0 ? ids[0] : nil }

    mutating func pop() -> Int32? {
        guard count > 0 else { return nil }
        let top = ids[0]
        count -= 1
        ids[0] = ids[count]
        siftDown(0)
        return top
    }

    private func siftDown(_ start: Int) {
        var root = start
        while true {
            var child = 2 * root + 1
            if child >= count { return }
            if child + 1 < count && first(ids[child + 1], ids[child]) { child += 1 }
            if first(ids[child], ids[root]) {
                let t = ids[root]; ids[root] = ids[child]; ids[child] = t
                root = child
            } else { return }
        }
    }
}

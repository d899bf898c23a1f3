import XCTest
import Glibc
@testable import HunyuanTrain
@testable import HunyuanLM

/// The trainer against the official Hunyuan-Large autograd (fixtures/lm-grad), against finite
/// differences for every layer type, the MoE capacity/recycle rules, and our own inference engine.
final class TrainerTests: XCTestCase {
    static var shared: String {
        getenv("HUNYUAN_SHARED").map { String(cString: $0) } ?? "../shared"
    }

    static func fixture(_ sub: String) throws -> String {
        let p = shared + "/fixtures/" + sub
        guard FileSystem.isDirectory(p) else { throw XCTSkip("\(p) not present (set HUNYUAN_SHARED)") }
        return p
    }

    /// A small Hunyuan-Large config exercising every layer type (CLA, QK-norm, GQA, shared expert).
    static func tinyConfigJSON(topK: Int = 1, experts: Int = 4, cla: Bool = true, layers: Int = 2) -> JSONValue {
        .object([
            ("architectures", .array([.string("HunYuanForCausalLM")])),
            ("hidden_size", .int(16)), ("intermediate_size", .int(12)), ("num_hidden_layers", .int(Int64(layers))),
            ("num_attention_heads", .int(4)), ("num_key_value_heads", .int(2)), ("vocab_size", .int(24)),
            ("num_experts", .int(Int64(experts))), ("moe_topk", .int(Int64(topK))), ("num_shared_expert", .int(1)),
            ("use_mixed_mlp_moe", .bool(true)), ("use_qk_norm", .bool(true)), ("use_cla", .bool(cla)),
            ("cla_share_factor", .int(2)), ("rms_norm_eps", .double(1e-5)), ("rope_theta", .double(10000)),
            ("rope_scaling", .object([("alpha", .double(1000)), ("type", .string("dynamic"))])),
            ("tie_word_embeddings", .bool(true)), ("bos_token_id", .int(1)), ("eos_token_id", .int(2)),
            ("max_position_embeddings", .int(64)),
        ])
    }

    static func randomModel(_ json: JSONValue, seed: UInt64 = 7) throws -> TrainerModel {
        let c = try HunyuanConfig.decode(json, context: "test config")
        let m = try TrainerModel(config: c, threads: 2)
        m.params.initializeRandom(std: 0.3, seed: seed)
        // Norm weights away from 1 so every product shows.
        var rng = SplitMix64(seed: seed ^ 99)
        for p in m.params.all where p.shape.count == 1 {
            for i in 0..<p.count { p.value[i] = 1 + 0.3 * Float(rng.nextDouble() * 2 - 1) }
        }
        return m
    }

    // MARK: - Official autograd parity

    func testOneStepMatchesOfficialAutograd() throws {
        let model = try Self.fixture("lm/hunyuan-large-tiny")
        let gradDir = try Self.fixture("lm-grad/hunyuan-large-tiny")
        let ref = try SafetensorsFile(path: gradDir + "/grad.safetensors")
        let ids = try XCTUnwrap(ref.tensor("input_ids"))
        XCTAssertEqual(ids.shape.count, 2)
        let b = ids.shape[0], t = ids.shape[1]
        let tokens = ids.int64s().map { Int32($0) }
        var targets = [Int32](repeating: -1, count: b * t)
        for s in 0..<b { for i in 0..<(t - 1) { targets[s * t + i] = tokens[s * t + i + 1] } }
        let m = try TrainerModel(checkpoint: model, threads: 2)
        m.zeroGradients()
        let r = try m.pass(tokens: tokens, targets: targets, batch: b, seqLen: t, backward: true)
        let refLoss = Double(try XCTUnwrap(ref.tensor("loss")).floats()[0])
        XCTAssertEqual(r.loss, refLoss, accuracy: 1e-5, "loss")
        XCTAssertEqual(r.stats.map(\.dropped), Array(repeating: 0, count: m.config.numLayers))
        var checked = 0
        var report: [String] = []
        for name in m.parameterNames {
            let expected = try XCTUnwrap(ref.tensor("grad." + name), "reference gradient for \(name)").floats()
            let got = try XCTUnwrap(m.gradient(name))
            XCTAssertEqual(got.count, expected.count, name)
            let scale = expected.map { abs($0) }.max() ?? 0
            var err: Float = 0
            for i in 0..<min(got.count, expected.count) { err = max(err, abs(got[i] - expected[i])) }
            let rel = scale > 0 ? err / scale : err
            report.append("\(name) \(rel)")
            XCTAssertLessThanOrEqual(rel, 1e-4, "gradient \(name): max |Δ| \(err), largest |g| \(scale)")
            checked += 1
        }
        XCTAssertEqual(checked, ref.tensors.filter { $0.name.hasPrefix("grad.") }.count)
        if getenv("TRAINER_TEST_VERBOSE") != nil { print(report.joined(separator: "\n") + "\nloss \(r.loss) reference \(refLoss)") }
    }

    func testForwardMatchesOfficialLogits() throws {
        let dir = try Self.fixture("lm/hunyuan-large-tiny")
        let ref = try SafetensorsFile(path: dir + "/reference.safetensors")
        let ids = try XCTUnwrap(ref.tensor("input_ids")).int64s().map { Int32($0) }
        let expected = try XCTUnwrap(ref.tensor("logits")).floats()
        let m = try TrainerModel(checkpoint: dir, threads: 2)
        let r = try m.pass(tokens: ids, targets: Array(repeating: -1, count: ids.count), batch: 1, seqLen: ids.count,
                           backward: false, wantLogits: true)
        let got = try XCTUnwrap(r.logits)
        XCTAssertEqual(got.count, expected.count)
        var err: Float = 0
        for i in 0..<min(got.count, expected.count) { err = max(err, abs(got[i] - expected[i])) }
        XCTAssertLessThanOrEqual(err, 1e-4, "max |Δlogit| vs the official forward")
    }

    // MARK: - Finite differences

    /// Central differences of the full loss (cross-entropy + balance loss) against the backward, for
    /// the largest-gradient entries of every parameter tensor: embedding/tied head, RMSNorms, q/k/v/o
    /// with RoPE, QK-norm, GQA and CLA, router (softmax + top-k, renormalized and raw), routed and
    /// shared SwiGLU experts.
    func checkFiniteDifferences(_ m: TrainerModel, seed: UInt64, names: [String]? = nil,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let b = 2, t = 6
        var rng = SplitMix64(seed: 5)
        let V = m.config.vocabSize
        let tokens = (0..<(b * t)).map { _ in Int32(rng.next() % UInt64(V)) }
        var targets = (0..<(b * t)).map { _ in Int32(rng.next() % UInt64(V)) }
        targets[3] = -1
        let aux = m.moe.auxLossCoefficient
        func loss() throws -> Double {
            let r = try m.pass(tokens: tokens, targets: targets, batch: b, seqLen: t, backward: false, seed: seed)
            return r.loss + aux * r.balanceLoss
        }
        m.zeroGradients()
        _ = try m.pass(tokens: tokens, targets: targets, batch: b, seqLen: t, backward: true, seed: seed)
        var worst: (Double, String) = (0, "")
        for name in names ?? m.parameterNames {
            let g = try XCTUnwrap(m.gradient(name)), w0 = try XCTUnwrap(m.value(name))
            let order = g.indices.sorted { abs(g[$0]) > abs(g[$1]) }
            for i in order.prefix(3) {
                let h: Float = 4e-3
                m.setValue(name, index: i, w0[i] + h)
                let lp = try loss()
                m.setValue(name, index: i, w0[i] - h)
                let lm = try loss()
                m.setValue(name, index: i, w0[i])
                let fd = (lp - lm) / Double(2 * h)
                let err = abs(fd - Double(g[i]))
                let tol = 2e-4 + 2e-2 * abs(Double(g[i]))
                if err / tol > worst.0 { worst = (err / tol, "\(name)[\(i)] fd \(fd) backward \(g[i])") }
                XCTAssertLessThanOrEqual(err, tol, "\(name)[\(i)]: finite difference \(fd), backward \(g[i])", file: file, line: line)
            }
        }
        if getenv("TRAINER_TEST_VERBOSE") != nil { print("worst err/tol \(worst.0): \(worst.1)") }
    }

    func testFiniteDifferencesTop2RenormalizedWithBalanceLoss() throws {
        let m = try Self.randomModel(Self.tinyConfigJSON(topK: 2, experts: 4, cla: true, layers: 2))
        m.moe.auxLossCoefficient = 0.1
        try checkFiniteDifferences(m, seed: 1)
    }

    func testFiniteDifferencesTop1CapacityRecycleNoCLA() throws {
        let m = try Self.randomModel(Self.tinyConfigJSON(topK: 1, experts: 4, cla: false, layers: 2), seed: 11)
        m.moe.capacityFactor = 1.0
        m.moe.recycleRouting = true
        m.moe.auxLossCoefficient = 0.05
        try checkFiniteDifferences(m, seed: 3)
    }

    /// LoRA adapters on attention and expert projections: finite differences on A and B (B made
    /// non-zero so both get gradients).
    func testFiniteDifferencesLoRA() throws {
        let m = try Self.randomModel(Self.tinyConfigJSON(topK: 2, experts: 4, cla: true, layers: 2), seed: 5)
        var o = LoRAOptions()
        o.rank = 2; o.alpha = 4
        try m.enableLoRA(o, seed: 3)
        var rng = SplitMix64(seed: 8)
        for name in m.trainableNames where name.contains("lora_B") {
            for i in 0..<(m.value(name)?.count ?? 0) { m.setValue(name, index: i, 0.2 * gaussian(&rng)) }
        }
        XCTAssertTrue(m.trainableNames.allSatisfy { $0.contains(".lora_") })
        try checkFiniteDifferences(m, seed: 2, names: m.trainableNames)
    }

    // MARK: - MoE methods

    /// Router probabilities skewed towards a few experts, as softmax rows.
    static func skewedTape(n: Int, experts: Int) -> MoETape {
        let s = MoETape(n: n, d: 1, experts: experts, k: 1, sharedWidth: 0, expertWidth: 0)
        var rng = SplitMix64(seed: 42)
        for t in 0..<n {
            let row = s.probs.p + t * experts
            for e in 0..<experts { row[e] = Float(rng.nextDouble()) + (e < 2 ? 2.5 : 0) }
            softmax(row, experts)
        }
        return s
    }

    func testRecycleRoutingDropsNothingAndRespectsCapacity() throws {
        let n = 96, E = 8
        var o = MoETrainingOptions()
        o.capacityFactor = 1.0
        o.recycleRouting = true
        let s = Self.skewedTape(n: n, experts: E)
        var rng = SplitMix64(seed: 1)
        TrainerMoE.route(tape: s, renormalize: false, options: o, rng: &rng)
        let cap = (n + E - 1) / E
        XCTAssertEqual(s.stats.capacity, cap)
        XCTAssertEqual(s.stats.dropped, 0)
        XCTAssertGreaterThan(s.stats.recycled, 0)
        // Recount the assignment independently of the stats.
        var load = [Int](repeating: 0, count: E)
        for slot in 0..<n {
            let e = Int(s.final[slot])
            XCTAssertGreaterThanOrEqual(e, 0, "token \(slot) dropped")
            if e >= 0 {
                load[e] += 1
                XCTAssertEqual(s.weight[slot], s.probs[slot * E + e], "recycled weight = router probability of the new expert")
            }
        }
        XCTAssertEqual(load.reduce(0, +), n)
        XCTAssertTrue(load.allSatisfy { $0 <= cap }, "loads \(load) exceed capacity \(cap)")
    }

    func testWithoutRecyclingDroppedTokensAreCounted() throws {
        let n = 96, E = 8
        var o = MoETrainingOptions()
        o.capacityFactor = 1.0
        let s = Self.skewedTape(n: n, experts: E)
        var rng = SplitMix64(seed: 1)
        TrainerMoE.route(tape: s, renormalize: false, options: o, rng: &rng)
        let cap = (n + E - 1) / E
        // Independent count: argmax per token, overflow beyond capacity per expert.
        var chosen = [Int](repeating: 0, count: E)
        for t in 0..<n {
            var best = 0
            for e in 1..<E where s.probs[t * E + e] > s.probs[t * E + best] { best = e }
            chosen[best] += 1
        }
        let expectedDrops = chosen.reduce(0) { $0 + max(0, $1 - cap) }
        XCTAssertGreaterThan(expectedDrops, 0)
        XCTAssertEqual(s.stats.dropped, expectedDrops)
        XCTAssertEqual(s.stats.recycled, 0)
        XCTAssertEqual(s.final.filter { $0 < 0 }.count, expectedDrops)
        XCTAssertEqual(s.stats.chosenPerExpert, chosen)
    }

    func testExpertLearningRates() {
        // ε_opt(B) = 2ε_max / (√(B_noise/B) + √(B/B_noise)); B_noise = B → ε_max.
        XCTAssertEqual(optimalLearningRate(maxRate: 1e-3, batchTokens: 1024, noiseScale: 1024), 1e-3, accuracy: 1e-12)
        // Routed expert of 8 (top-1): B/8 → 2/(√8 + √(1/8)) = 0.628539…
        XCTAssertEqual(optimalLearningRate(maxRate: 1, batchTokens: 128, noiseScale: 1024), 0.6285393610547089, accuracy: 1e-9)
        var o = OptimizerOptions()
        o.learningRate = 1
        let opt = AdamW(options: o)
        XCTAssertEqual(opt.groupRate(.sharedExpert, batchTokens: 1024, topK: 1, experts: 8), 1, accuracy: 1e-12)
        XCTAssertEqual(opt.groupRate(.routedExpert, batchTokens: 1024, topK: 1, experts: 8), 0.6285393610547089, accuracy: 1e-9)
        o.expertLearningRates = false
        XCTAssertEqual(AdamW(options: o).groupRate(.routedExpert, batchTokens: 1024, topK: 1, experts: 8), 1)
    }

    // MARK: - Tokenizer trainer

    /// The textbook example worked by hand: in "aaabdaaabac" (one pre-tokenizer piece) "aa" occurs
    /// 4 times (overlaps counted), so it is rank 256; then "ab" and "aa"+"a" tie at 2 and the smaller
    /// id pair (97, 98) wins, rank 257 = "ab"; then ("aa", "ab") occurs twice: rank 258 = "aaab".
    func testTokenizerTrainerTextbookMerges() throws {
        let ranks = try TokenizerTrainer.train(texts: [Array("aaabdaaabac".utf8)], vocabSize: 259)
        XCTAssertEqual(ranks.count, 259)
        XCTAssertEqual(ranks[0..<256].map { $0 }, (0..<256).map { [UInt8($0)] })
        XCTAssertEqual(ranks[256], Array("aa".utf8))
        XCTAssertEqual(ranks[257], Array("ab".utf8))
        XCTAssertEqual(ranks[258], Array("aaab".utf8))
        let enc = try BPEEncoder(ranks: ranks)
        XCTAssertEqual(try enc.encode(Array("aaabdaaabac".utf8)), [258, 100, 258, 97, 99])
        XCTAssertEqual(enc.decode([258, 100, 258, 97, 99]), Array("aaabdaaabac".utf8))
    }

    // MARK: - Loop, resume, export

    static func syntheticCorpus(vocab: Int, count: Int) -> [TrainCorpus] {
        var rng = SplitMix64(seed: 9)
        // A repetitive pattern with noise, so a few steps show learning.
        let tokens = (0..<count).map { i in Int32((i % 7 == 0 ? Int(rng.next() % UInt64(vocab)) : (i * 5) % vocab)) }
        let cut = count * 9 / 10
        return [TrainCorpus(name: "synthetic", train: Array(tokens[..<cut]), heldOut: Array(tokens[cut...]))]
    }

    func makeTrainer(steps: Int, seed: UInt64 = 7) throws -> Trainer {
        let json = Self.tinyConfigJSON(topK: 1, experts: 4, cla: true, layers: 2)
        let m = try Self.randomModel(json, seed: seed)
        var c = TrainConfig()
        c.model = json
        c.seqLen = 16; c.batchSize = 4; c.gradAccum = 2; c.steps = steps
        c.optimizer.learningRate = 3e-3; c.optimizer.warmupSteps = 2
        c.moe.capacityFactor = 1.25; c.moe.recycleRouting = true; c.moe.auxLossCoefficient = 0.01
        return try Trainer(config: c, model: m, modelJSON: json, corpora: Self.syntheticCorpus(vocab: 24, count: 3000))
    }

    func testResumeIsExact() throws {
        let a = try makeTrainer(steps: 6)
        for _ in 0..<6 { try a.trainStep() }
        let b = try makeTrainer(steps: 6)
        for _ in 0..<3 { try b.trainStep() }
        let dir = NSTemporaryDirectoryPath() + "/trainer-resume-\(getpid())"
        mkdir(dir, 0o755)
        defer { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        try b.saveState(to: dir + "/state.safetensors")
        let c = try makeTrainer(steps: 6, seed: 1234)   // different init: everything must come from the state
        try c.loadState(from: dir + "/state.safetensors")
        XCTAssertEqual(c.step, 3)
        for _ in 0..<3 { try c.trainStep() }
        XCTAssertEqual(c.history.map(\.loss), Array(a.history.suffix(3)).map(\.loss))
        for name in a.model.parameterNames {
            XCTAssertEqual(a.model.value(name), c.model.value(name), "parameter \(name) after resume")
        }
        XCTAssertLessThan(a.history.last!.loss, a.history.first!.loss, "loss should fall on a repetitive stream")
    }

    func testLoRATrainsAdaptersOnlyAndExportsMergedWeights() throws {
        let t = try makeTrainer(steps: 3)
        var o = LoRAOptions()
        o.rank = 4
        try t.model.enableLoRA(o, seed: 1)
        let before = t.model.parameterNames.map { t.model.value($0) }
        for _ in 0..<3 { try t.trainStep() }
        XCTAssertEqual(t.model.parameterNames.map { t.model.value($0) }, before, "base weights must stay frozen")
        let bName = try XCTUnwrap(t.model.trainableNames.first { $0.hasSuffix("lora_B.weight") })
        XCTAssertTrue(try XCTUnwrap(t.model.value(bName)).contains { $0 != 0 }, "adapters must train")
        // The merged export computes what the adapted trainer computes.
        let dir = NSTemporaryDirectoryPath() + "/trainer-lora-\(getpid())"
        defer { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        try t.saveCheckpoint(to: dir)
        let engine = try HunyuanModel(path: dir)
        let ids: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        let s = try InferenceSession(model: engine, contextLength: 16, threads: 2)
        try s.eval(ids, allLogits: true)
        t.model.moe.capacityFactor = 0
        let r = try t.model.pass(tokens: ids, targets: Array(repeating: -1, count: ids.count), batch: 1, seqLen: ids.count,
                                 backward: false, wantLogits: true)
        let mine = try XCTUnwrap(r.logits)
        var err: Float = 0
        for i in 0..<mine.count { err = max(err, abs(mine[i] - s.allLogits[i])) }
        XCTAssertLessThanOrEqual(err, 1e-4)
    }

    func testSavedCheckpointLoadsInEngineWithIdenticalLogits() throws {
        let json = Self.tinyConfigJSON(topK: 2, experts: 4, cla: true, layers: 3)
        let m = try Self.randomModel(json)
        let dir = NSTemporaryDirectoryPath() + "/trainer-export-\(getpid())"
        defer { _ = try? FileSystem.list(dir).forEach { unlink(dir + "/" + $0) }; rmdir(dir) }
        try m.saveCheckpoint(to: dir, configJSON: json, dtype: .f32)
        let engine = try HunyuanModel(path: dir)
        let ids: [Int32] = [1, 5, 9, 3, 22, 17, 8, 0, 13, 2]
        let session = try InferenceSession(model: engine, contextLength: 32, threads: 2)
        try session.eval(ids, allLogits: true)
        let r = try m.pass(tokens: ids, targets: Array(repeating: -1, count: ids.count), batch: 1, seqLen: ids.count,
                           backward: false, wantLogits: true)
        let mine = try XCTUnwrap(r.logits)
        XCTAssertEqual(mine.count, session.allLogits.count)
        var err: Float = 0
        for i in 0..<mine.count { err = max(err, abs(mine[i] - session.allLogits[i])) }
        XCTAssertLessThanOrEqual(err, 1e-4, "engine vs trainer logits")
    }
}

func NSTemporaryDirectoryPath() -> String {
    getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
}

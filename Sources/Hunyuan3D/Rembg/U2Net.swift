import HunyuanNN
#if canImport(Glibc)
import Glibc
#endif

/// The widths of a U²-Net (xuebinqin/U-2-Net `model/u2net.py`): eleven residual U-blocks — stage1…6
/// of the encoder, stage5d…1d of the decoder — each an RSU-L (L = 7…4, pooling inside) or an RSU4F
/// (dilated, no pooling), then six 3×3 side convolutions to one channel and a 1×1 `outconv` over their
/// concatenation. `u2net` is rembg's `u2net.onnx` (44.0 M parameters), `u2netp` the small twin (1.13 M).
public struct U2NetConfig: Sendable, Equatable {
    /// One residual U-block: `depth` 7…4 for RSU-L, 0 for RSU4F; channels in → mid → out.
    public struct Stage: Sendable, Equatable {
        public let name: String
        public let depth: Int
        public let inChannels: Int, midChannels: Int, outChannels: Int
    }
    /// stage1…stage6, then stage5d…stage1d.
    public let stages: [Stage]
    public let name: String

    static func make(_ name: String, _ w: [(Int, Int, Int, Int)]) -> U2NetConfig {
        let names = ["stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage5d", "stage4d", "stage3d", "stage2d", "stage1d"]
        return U2NetConfig(stages: zip(names, w).map { Stage(name: $0, depth: $1.0, inChannels: $1.1, midChannels: $1.2, outChannels: $1.3) },
                           name: name)
    }
    /// rembg's `u2net` (README §7.6).
    public static let u2net = make("u2net", [(7, 3, 32, 64), (6, 64, 32, 128), (5, 128, 64, 256), (4, 256, 128, 512),
                                             (0, 512, 256, 512), (0, 512, 256, 512), (0, 1024, 256, 512), (4, 1024, 128, 256),
                                             (5, 512, 64, 128), (6, 256, 32, 64), (7, 128, 16, 64)])
    /// `u2netp`, the small model (rembg's `u2netp.onnx`).
    public static let u2netp = make("u2netp", [(7, 3, 16, 64), (6, 64, 16, 64), (5, 64, 16, 64), (4, 64, 16, 64),
                                               (0, 64, 16, 64), (0, 64, 16, 64), (0, 128, 16, 64), (4, 128, 16, 64),
                                               (5, 128, 16, 64), (6, 128, 16, 64), (7, 128, 16, 64)])

    /// One convolution of the network in module-definition order (= execution order, = the order of
    /// the Conv nodes of an ONNX export): `prefix` is the PyTorch module (`stage1.rebnconvin`, `side3`),
    /// `batchNorm` whether a BatchNorm follows (REBNCONV: `prefix.conv_s1`, `prefix.bn_s1`).
    public struct Conv: Sendable, Equatable {
        public let prefix: String
        public let inChannels: Int, outChannels: Int, kernel: Int, dilation: Int
        public let batchNorm: Bool
        public var padding: Int { kernel == 3 ? dilation : 0 }
    }

    /// The 119 convolutions (for both widths): per stage `rebnconvin`, `rebnconv1…L`, `rebnconv(L−1)d…1d`
    /// (RSU4F: 1…4 with dilations 1, 2, 4, 8, then 3d, 2d, 1d with 4, 2, 1), then side1…6 and outconv.
    public var convolutions: [Conv] {
        var out: [Conv] = []
        for s in stages {
            func rebn(_ n: String, _ i: Int, _ o: Int, _ d: Int) {
                out.append(Conv(prefix: "\(s.name).rebnconv\(n)", inChannels: i, outChannels: o, kernel: 3, dilation: d, batchNorm: true))
            }
            let (ci, m, co) = (s.inChannels, s.midChannels, s.outChannels)
            rebn("in", ci, co, 1)
            if s.depth == 0 {
                rebn("1", co, m, 1); rebn("2", m, m, 2); rebn("3", m, m, 4); rebn("4", m, m, 8)
                rebn("3d", 2 * m, m, 4); rebn("2d", 2 * m, m, 2); rebn("1d", 2 * m, co, 1)
            } else {
                let L = s.depth
                rebn("1", co, m, 1)
                for i in 2..<L { rebn("\(i)", m, m, 1) }
                rebn("\(L)", m, m, 2)
                for i in stride(from: L - 1, through: 2, by: -1) { rebn("\(i)d", 2 * m, m, 1) }
                rebn("1d", 2 * m, co, 1)
            }
        }
        for (k, c) in sideInputs.enumerated() {
            out.append(Conv(prefix: "side\(k + 1)", inChannels: c, outChannels: 1, kernel: 3, dilation: 1, batchNorm: false))
        }
        out.append(Conv(prefix: "outconv", inChannels: 6, outChannels: 1, kernel: 1, dilation: 1, batchNorm: false))
        return out
    }

    /// Input channels of side1…side6: the outputs of stage1d…stage5d and of stage6.
    public var sideInputs: [Int] { [stages[10], stages[9], stages[8], stages[7], stages[6], stages[5]].map(\.outChannels) }

    /// Parameters with the BatchNorms folded (what an ONNX export holds).
    public var foldedParameterCount: Int {
        convolutions.reduce(0) { $0 + $1.outChannels * ($1.inChannels * $1.kernel * $1.kernel + 1) }
    }
}

/// U²-Net inference on one image as rembg runs it (PyTorch eval mode: BatchNorm folded into each
/// convolution, eps 1e-5): x [3, h, w] fp32 (rembg's normalised 320×320 input) → sigmoid(d0) [h, w].
/// Built from the shared Conv2d (3×3 with dilation, 1×1), max pooling with ceil_mode and half-pixel
/// bilinear up-sampling. Loads rembg's ONNX export (`u2net.onnx`, weights bound by Conv-node order)
/// or a PyTorch `state_dict` in safetensors. Immutable; `forward` may run concurrently.
public final class U2Net: @unchecked Sendable {
    public let config: U2NetConfig
    /// The 119 convolutions in `config.convolutions` order, BatchNorm folded in.
    let convs: [Conv2d]
    public let source: String

    /// Folded weights [out, in, k, k] and biases [out] per convolution, in `config.convolutions` order.
    public init(config: U2NetConfig, folded: [(weight: [Float], bias: [Float])], source: String) throws {
        let specs = config.convolutions
        guard folded.count == specs.count else {
            throw HYError.format("\(source): \(folded.count) convolutions, U²-Net has \(specs.count)")
        }
        convs = try zip(specs, folded).map { s, f in
            let w = Tensor(name: s.prefix + ".weight", shape: [s.outChannels, s.inChannels, s.kernel, s.kernel], floats: f.weight)
            let b = Tensor(name: s.prefix + ".bias", shape: [s.outChannels], floats: f.bias)
            return try Conv2d(weight: w, bias: b, inChannels: s.inChannels, outChannels: s.outChannels,
                              kernel: (s.kernel, s.kernel), padding: Padding2D(s.padding), dilation: s.dilation)
        }
        self.config = config
        self.source = source
    }

    /// Opens `path`: an `.onnx` file, a `.safetensors` state_dict, or a folder holding `u2net.onnx`,
    /// `u2netp.onnx` or `model.safetensors`. The width (u2net or u2netp) follows from the shapes.
    /// Errors name the file and the first convolution that does not fit.
    public convenience init(path: String) throws {
        var file = path
        if FileSystem.isDirectory(path) {
            let candidates = ["u2net.onnx", "u2netp.onnx", "model.safetensors"].map { FileSystem.join(path, $0) }
            guard let f = candidates.first(where: FileSystem.exists) else {
                throw HYError.io("\(path): no u2net.onnx, u2netp.onnx or model.safetensors")
            }
            file = f
        }
        guard FileSystem.exists(file) else { throw HYError.io("\(file): no such file") }
        if file.hasSuffix(".onnx") {
            let (config, folded) = try Self.bindONNX(try ONNXModel(path: file))
            try self.init(config: config, folded: folded, source: file)
        } else {
            let (config, folded) = try Self.bindStateDict(try Checkpoint(path: file))
            try self.init(config: config, folded: folded, source: file)
        }
    }

    /// The config whose convolution shapes `shapeOf` (weight shape by index) matches, else an error
    /// naming the first mismatch against the closer config.
    static func pickConfig(_ file: String, count: Int, _ shapeOf: (Int) -> [Int]) throws -> U2NetConfig {
        var best: (U2NetConfig, Int, String)? = nil
        for c in [U2NetConfig.u2net, .u2netp] {
            let specs = c.convolutions
            var matched = 0, problem = ""
            if count != specs.count { problem = "\(count) convolutions, \(c.name) has \(specs.count)" }
            for (i, s) in specs.enumerated() where problem.isEmpty {
                let want = [s.outChannels, s.inChannels, s.kernel, s.kernel]
                if shapeOf(i) != want { problem = "convolution \(i) (\(s.prefix)) has weight shape \(shapeOf(i)), \(c.name) needs \(want)"; break }
                matched += 1
            }
            if problem.isEmpty { return c }
            if best == nil || matched > best!.1 { best = (c, matched, problem) }
        }
        throw HYError.format("\(file): not a U²-Net: \(best?.2 ?? "")")
    }

    /// W' = W·γ/√(var+eps), b' = (b − μ)·γ/√(var+eps) + β, in float64.
    static func fold(_ w: [Float], _ b: [Float], gamma: [Float], beta: [Float], mean: [Float], variance: [Float],
                     eps: Double) -> ([Float], [Float]) {
        let out = b.count, per = w.count / max(out, 1)
        var wf = w, bf = b
        for o in 0..<out {
            let s = Double(gamma[o]) / (Double(variance[o]) + eps).squareRoot()
            for i in 0..<per { wf[o * per + i] = Float(Double(w[o * per + i]) * s) }
            bf[o] = Float((Double(b[o]) - Double(mean[o])) * s + Double(beta[o]))
        }
        return (wf, bf)
    }

    /// rembg's ONNX export: the i-th Conv node is the i-th convolution (README §8.4); its weight and
    /// bias are the node's inputs 1 and 2; a BatchNormalization node reading the Conv's output is folded.
    static func bindONNX(_ m: ONNXModel) throws -> (U2NetConfig, [([Float], [Float])]) {
        let convNodes = m.nodes.filter { $0.opType == "Conv" }
        var bnOf: [String: ONNXModel.Node] = [:]
        for n in m.nodes where n.opType == "BatchNormalization" { if let x = n.inputs.first { bnOf[x] = n } }
        func weight(_ i: Int) -> Tensor? { convNodes[i].inputs.count > 1 ? m.initializer(convNodes[i].inputs[1]) : nil }
        let config = try pickConfig(m.path, count: convNodes.count) { weight($0)?.shape ?? [] }
        var folded: [([Float], [Float])] = []
        for (i, s) in config.convolutions.enumerated() {
            let node = convNodes[i], what = "\(m.path): Conv node \(i) (\(node.name.isEmpty ? s.prefix : node.name))"
            guard let w = weight(i) else { throw HYError.format("\(what): no weight initializer") }
            let d = s.dilation, p = s.padding
            if let dl = node.ints["dilations"], dl != [d, d] { throw HYError.format("\(what): dilations \(dl), \(s.prefix) has \(d)") }
            if let pd = node.ints["pads"], pd != [p, p, p, p] { throw HYError.format("\(what): pads \(pd), \(s.prefix) has \(p)") }
            if let st = node.ints["strides"], st != [1, 1] { throw HYError.format("\(what): strides \(st)") }
            if let g = node.ints["group"], g != [1] { throw HYError.format("\(what): group \(g)") }
            var bias = [Float](repeating: 0, count: s.outChannels)
            if node.inputs.count > 2, !node.inputs[2].isEmpty {
                guard let b = m.initializer(node.inputs[2]), b.shape == [s.outChannels] else {
                    throw HYError.format("\(what): bias \(node.inputs[2]) missing or not [\(s.outChannels)]")
                }
                bias = b.floats()
            }
            var wf = w.floats()
            if let out = node.outputs.first, let bn = bnOf[out] {
                let names = bn.inputs.dropFirst()
                let ts = names.map { m.initializer($0) }
                guard ts.count == 4, ts.allSatisfy({ $0?.shape == [s.outChannels] }) else {
                    throw HYError.format("\(what): its BatchNormalization has no [\(s.outChannels)] scale/bias/mean/var")
                }
                let eps = Double(bn.floats["epsilon"]?.first ?? 1e-5)
                (wf, bias) = fold(wf, bias, gamma: ts[0]!.floats(), beta: ts[1]!.floats(), mean: ts[2]!.floats(),
                                  variance: ts[3]!.floats(), eps: eps)
            }
            folded.append((wf, bias))
        }
        return (config, folded)
    }

    /// A PyTorch state_dict (U2NET / U2NETP module names): REBNCONV `conv_s1.*` + `bn_s1.*` (folded
    /// with eps 1e-5), `sideK.*`, `outconv.*`; `num_batches_tracked` ignored, any other tensor an error.
    static func bindStateDict(_ ck: Checkpoint) throws -> (U2NetConfig, [([Float], [Float])]) {
        let specs0 = U2NetConfig.u2net.convolutions
        func wname(_ s: U2NetConfig.Conv) -> String { s.prefix + (s.batchNorm ? ".conv_s1.weight" : ".weight") }
        let config = try pickConfig(ck.path, count: specs0.count) { i in ck.tensor(wname(specs0[i]))?.shape ?? [] }
        var used = Set<String>()
        func take(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let t = ck.tensor(name) else { throw HYError.format("\(ck.path): missing tensor \(name)") }
            guard t.shape == shape, t.dtype.isFloat else {
                throw HYError.format("\(ck.path): tensor \(name) is \(t.dtype.safetensorsName) \(t.shape), \(shape) float expected")
            }
            used.insert(name)
            return t.floats()
        }
        var folded: [([Float], [Float])] = []
        for s in config.convolutions {
            let o = s.outChannels, wShape = [o, s.inChannels, s.kernel, s.kernel]
            if s.batchNorm {
                let c = s.prefix + ".conv_s1", b = s.prefix + ".bn_s1"
                let w = try take(c + ".weight", wShape), bias = try take(c + ".bias", [o])
                folded.append(fold(w, bias, gamma: try take(b + ".weight", [o]), beta: try take(b + ".bias", [o]),
                                   mean: try take(b + ".running_mean", [o]), variance: try take(b + ".running_var", [o]), eps: 1e-5))
            } else {
                folded.append((try take(s.prefix + ".weight", wShape), try take(s.prefix + ".bias", [o])))
            }
        }
        for t in ck.tensors where !used.contains(t.name) && !t.name.hasSuffix(".num_batches_tracked") {
            throw HYError.format("\(ck.path): unexpected tensor \(t.name) for \(config.name)")
        }
        return (config, folded)
    }

    /// A [c, h, w] activation.
    struct Map {
        let c: Int, h: Int, w: Int
        let buf: FloatBuffer
        init(_ c: Int, _ h: Int, _ w: Int) { self.c = c; self.h = h; self.w = w; buf = FloatBuffer(c * h * w, zeroed: false) }
        var p: UnsafeMutablePointer<Float> { buf.p }
        var count: Int { c * h * w }
    }

    /// sigmoid(d0) [h, w] of x [3, h, w]. `trace` receives `side1_logit` … `side6_logit` (before
    /// up-sampling, at their own sizes) and `d0` (the sigmoid map). `shouldStop` is polled before each
    /// block; it makes the call throw `HYError.aborted`. h and w ≥ 1.
    public func forward(_ x: [Float], height h: Int, width w: Int, pool: ThreadPool?, trace: Trace? = nil,
                        shouldStop: (() -> Bool)? = nil) throws -> [Float] {
        guard h >= 1, w >= 1, x.count == 3 * h * w else {
            throw HYError.invalidArgument("U²-Net input: \(x.count) values for 3×\(h)×\(w)")
        }
        let input = Map(3, h, w)
        x.withUnsafeBufferPointer { input.p.update(from: $0.baseAddress!, count: x.count) }
        var next = 0
        func check() throws { if shouldStop?() == true { throw HYError.aborted("background removal cancelled") } }
        func conv(_ m: Map, relu: Bool = true) -> Map {
            let c = convs[next]; next += 1
            let o = Map(c.outChannels, m.h, m.w)
            c.forward(m.p, height: m.h, width: m.w, o.p, pool: pool)
            if relu { parallelRows(pool, o.c, minChunk: 4) { rr in for i in (rr.lowerBound * o.h * o.w)..<(rr.upperBound * o.h * o.w) { o.p[i] = max(o.p[i], 0) } } }
            return o
        }
        func poolMap(_ m: Map) -> Map {
            let o = Map(m.c, (m.h + 1) / 2, (m.w + 1) / 2)
            maxPool2d(m.p, channels: m.c, height: m.h, width: m.w, kernel: 2, ceilMode: true, o.p, pool: pool)
            return o
        }
        func up(_ m: Map, like t: Map) -> Map {
            if m.h == t.h && m.w == t.w { return m }
            let o = Map(m.c, t.h, t.w)
            resizeBilinear(m.p, channels: m.c, height: m.h, width: m.w, toHeight: t.h, width: t.w, o.p, pool: pool)
            return o
        }
        func cat(_ a: Map, _ b: Map) -> Map {
            let o = Map(a.c + b.c, a.h, a.w)
            o.p.update(from: a.p, count: a.count)
            (o.p + a.count).update(from: b.p, count: b.count)
            return o
        }
        func rsu(_ s: U2NetConfig.Stage, _ x: Map) throws -> Map {
            try check()
            let hxin = conv(x)
            var e = [conv(hxin)]
            var d: Map
            if s.depth == 0 {
                for _ in 0..<3 { e.append(conv(e[e.count - 1])) }
                d = conv(cat(e[3], e[2]))
                d = conv(cat(d, e[1]))
                d = conv(cat(d, e[0]))
            } else {
                for _ in 2..<s.depth { e.append(conv(poolMap(e[e.count - 1]))) }
                e.append(conv(e[e.count - 1]))                               // dilation 2, no pooling
                let L = s.depth
                d = conv(cat(e[L - 1], e[L - 2]))
                for i in stride(from: L - 3, through: 0, by: -1) { d = conv(cat(up(d, like: e[i]), e[i])) }
            }
            for i in 0..<d.count { d.p[i] += hxin.p[i] }
            return d
        }
        let st = config.stages
        var enc = [try rsu(st[0], input)]
        for i in 1..<6 { enc.append(try rsu(st[i], poolMap(enc[i - 1]))) }
        var dec = enc[5]                                                     // hx6
        var decoded: [Map] = []                                              // hx5d … hx1d
        for i in 0..<5 {
            let skip = enc[4 - i]
            dec = try rsu(st[6 + i], cat(up(dec, like: skip), skip))
            decoded.append(dec)
        }
        try check()
        let sideIn = [decoded[4], decoded[3], decoded[2], decoded[1], decoded[0], enc[5]]
        let full = sideIn[0]
        let sides = Map(6, full.h, full.w)
        for (k, m) in sideIn.enumerated() {
            let s = conv(m, relu: false)
            trace.emit("side\(k + 1)_logit", [1, 1, s.h, s.w], s.p)
            let u = up(s, like: full)
            (sides.p + k * full.h * full.w).update(from: u.p, count: full.h * full.w)
        }
        let d0 = conv(sides, relu: false)
        var out = [Float](repeating: 0, count: full.h * full.w)
        for i in 0..<out.count { out[i] = 1 / (1 + expf(-d0.p[i])) }
        out.withUnsafeBufferPointer { trace.emit("d0", [1, 1, full.h, full.w], $0.baseAddress!) }
        precondition(next == convs.count)
        return out
    }
}

import Glibc
import HunyuanCore
import HunyuanNN

// Helpers shared by the benchmark commands (`mvd-random` / `mvd-bench`, `t2i-random` / `t2i-bench`):
// publishing a generated folder, the GEMM-rate probe, the stored weight type of a component, number
// formatting, and the rows and markdown table of a per-stage timing.

enum BenchSupport {
    /// Builds a folder as `OUTPUT.partial` through `build` (given that path, which does not exist yet)
    /// and renames it to OUTPUT; an existing OUTPUT is replaced only with `overwrite` (moved aside
    /// first, removed once the new one is in place). A failed build leaves no partial folder.
    /// Returns OUTPUT without a trailing slash.
    @discardableResult
    static func publishFolder(_ output: String, overwrite: Bool, build: (String) throws -> Void) throws -> String {
        let out = output.hasSuffix("/") && output.count > 1 ? String(output.dropLast()) : output
        if FileSystem.exists(out) && !overwrite { throw HYError.io("\(out) exists; pass --overwrite to replace it") }
        let partial = out + ".partial"
        removeTree(partial)
        var ok = false
        defer { if !ok { removeTree(partial) } }
        try build(partial)
        func moveError(_ what: String) -> HYError { HYError.io("\(out): \(what): \(String(cString: strerror(errno)))") }
        if FileSystem.exists(out) {
            let old = out + ".old-\(getpid())"
            guard rename(out, old) == 0 else { throw moveError("cannot move aside") }
            guard rename(partial, out) == 0 else {
                let e = moveError("cannot rename \(partial) into place")
                rename(old, out)
                throw e
            }
            removeTree(old)
        } else {
            guard rename(partial, out) == 0 else { throw moveError("cannot rename \(partial) into place") }
        }
        ok = true
        writeStderr("→ \(out)\n")
        return out
    }

    /// Creates one folder (its parent must exist); an existing path is an error.
    static func makeFolder(_ p: String) throws {
        guard mkdir(p, 0o755) == 0 else { throw HYError.io("\(p): cannot create folder: \(String(cString: strerror(errno)))") }
    }

    /// The result of `body` and the seconds it took.
    static func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let t0 = Clock.seconds()
        let r = try body()
        return (r, Clock.seconds() - t0)
    }

    /// The dtype of a component's first stored weight (nil when unreadable); a sharded file is read
    /// through its index's first shard.
    static func storedType(_ dir: String) -> DType? {
        var files = ["diffusion_pytorch_model.safetensors", "model.safetensors"]
        for index in ["diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"] {
            let p = FileSystem.join(dir, index)
            if FileSystem.exists(p), let j = try? JSONValue.parse(contentsOf: p),
               let first = j["weight_map"]?.objectValue?.first?.1.stringValue {
                files.append(first)
            }
        }
        for file in files {
            let p = FileSystem.join(dir, file)
            if FileSystem.exists(p), let f = try? SafetensorsFile(path: p) {
                return f.tensors.first { $0.shape.count >= 2 }?.dtype
            }
        }
        return nil
    }

    /// FLOP/s of `Linear.forward` with `weight`-typed weights on x [rows, inF] · W [outF, inF]ᵀ (by
    /// default a level-1 feed-forward of the SD2 UNet's read pass, 4800 × 640 → 5120): best of 3
    /// after a warm-up. `bf16`: the weights' bf16 form (bf16 products).
    static func gemmRate(weight dtype: DType, bf16: Bool = false, rows: Int = 4800, inF: Int = 640, outF: Int = 5120,
                         pool: ThreadPool) -> Double {
        let storage = RawStorage(outF * inF * dtype.size)
        var s: UInt64 = 0x1234_5678_9ABC_DEF1
        for i in 0..<(outF * inF) {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            let v = (Float((s &* 2_685_821_657_736_338_717) >> 40) / Float(1 << 23) - 1) * 0.04
            if dtype == .f16 { storage.bytes.storeBytes(of: FloatBits.floatToF16(v), toByteOffset: 2 * i, as: UInt16.self) }
            else { storage.bytes.storeBytes(of: v, toByteOffset: 4 * i, as: Float.self) }
        }
        let w = Tensor(name: "gemm.weight", dtype: dtype, shape: [outF, inF], data: UnsafeRawBufferPointer(storage.bytes), owner: storage)
        guard var lin = try? Linear(weight: w, bias: nil, inFeatures: inF, outFeatures: outF) else { return .nan }
        if bf16 { lin = Linear(weight: lin.weight.withBF16(taps: 1), bias: nil) }
        let x = FloatBuffer(rows * inF, zeroed: false), y = FloatBuffer(rows * outF, zeroed: false)
        for i in 0..<(rows * inF) { x[i] = Float(i % 97) * 0.01 - 0.5 }
        var best = Double.infinity
        for rep in 0..<4 {
            let t0 = Clock.seconds()
            lin.forward(x.p, rows: rows, y.p, pool: pool)
            let dt = Clock.seconds() - t0
            if rep > 0 { best = min(best, dt) }
        }
        return 2 * Double(rows) * Double(inF) * Double(outF) / best
    }

    static func fmt(_ v: Double) -> String {
        guard v.isFinite else { return "-" }
        if v >= 100 { return String(Int(v.rounded())) }
        if v >= 1 { return String(Double(Int((v * 100).rounded())) / 100) }
        if v >= 0.01 { return String(Double(Int((v * 1000).rounded())) / 1000) }
        return String(Double(Int((v * 100_000).rounded())) / 100_000)
    }
}

/// One timed stage of a benchmark: its FLOPs (when counted) and the GEMM rates its bound uses.
struct BenchRow {
    var stage: String
    var load: Double?
    var seconds: Double
    var flops: FlopCount?
    /// FLOP/s of the stage's matrix products (the stored weights' type, or bf16 products).
    var matrixRate: Double
    /// FLOP/s of its attention products (fp32 activations, or bf16 products).
    var attentionRate: Double
    /// Peak RSS of the process when the stage ended.
    var rss: Int

    /// The row of a stage that just ended (peak RSS now), reported on stderr.
    static func logged(_ stage: String, load: Double?, seconds: Double, flops: FlopCount?, matrixRate: Double,
                       attentionRate: Double) -> BenchRow {
        writeStderr("\(stage): \(BenchSupport.fmt(seconds)) s" + (load.map { " (load \(BenchSupport.fmt($0)) s)" } ?? "") + "\n")
        return BenchRow(stage: stage, load: load, seconds: seconds, flops: flops, matrixRate: matrixRate,
                        attentionRate: attentionRate, rss: peakRSS())
    }

    /// Seconds the stage would take at the measured GEMM rates (nil without a FLOP count).
    var bound: Double? { flops.map { $0.matrix / matrixRate + $0.attention / attentionRate } }

    /// The markdown table: stage | load s | seconds | GFLOP | bound s | % of bound | peak RSS GB.
    static func table(_ rows: [BenchRow]) -> String {
        let f = BenchSupport.fmt
        var out = "| stage | load s | seconds | GFLOP | bound s | % of bound | peak RSS GB |\n|---|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            var bound = "-", gf = "-", eff = "-"
            if let fl = r.flops, let b = r.bound { bound = f(b); gf = f(fl.total / 1e9); eff = f(100 * b / r.seconds) }
            out += "| \(r.stage) | \(r.load.map(f) ?? "-") | \(f(r.seconds)) | \(gf) | \(bound) | \(eff) | \(f(Double(r.rss) / 1e9)) |\n"
        }
        return out
    }
}

extension RandomSafetensors {
    /// Writes each (path, table) file with `write`, the k-th seeded `seed + k · 1,000,003`, showing the
    /// progress over all of them on stderr, then one summary line per file.
    static func writeAll(_ files: [(path: String, table: WeightTable)], dtype: DType, seed: UInt64) throws {
        let total = files.reduce(0) { $0 + $1.table.parameterCount }
        var written = 0, lastShown = -1
        let t0 = Clock.seconds()
        func label(_ p: String) -> String { p.split(separator: "/").suffix(2).joined(separator: "/") }
        for (k, (path, table)) in files.enumerated() {
            let name = label(path)
            try write(table, dtype: dtype, seed: seed &+ UInt64(k) &* 1_000_003, to: path) { m in
                written += m
                let pct = Int(100 * Double(written) / Double(max(total, 1)))
                if pct != lastShown {
                    lastShown = pct
                    writeStderr("\r\u{1B}[K\(name): \(pct)% of \(total) parameters, \(Int(Clock.seconds() - t0)) s")
                }
            }
        }
        writeStderr("\r\u{1B}[K")
        for (path, table) in files {
            writeStderr("\(label(path)): \(table.entries.count) tensors, \(table.parameterCount) parameters (\(dtype.name))\n")
        }
    }

    /// `table` split as transformers' `save_pretrained` shards (max_shard_size, default "5GB" = 5·10⁹
    /// bytes): tensors in order, a new shard when the next would pass the limit. One table: no sharding.
    static func shards(_ table: WeightTable, dtype: DType, maxBytes: Int = 5_000_000_000) throws -> [WeightTable] {
        var groups: [[WeightTable.Entry]] = [[]]
        var size = 0
        for e in table.entries {
            let n = e.shape.reduce(1, *) * dtype.size
            if size + n > maxBytes && !groups[groups.count - 1].isEmpty { groups.append([]); size = 0 }
            groups[groups.count - 1].append(e)
            size += n
        }
        return try groups.map { g in
            try WeightTable { t in
                for e in g { _ = e.isMatrix ? try t.matrix(e.name, shape: e.shape) : try t.vector(e.name, shape: e.shape) }
            }
        }
    }

    /// The files of `table` saved as `base` ("model.safetensors") in `dir`: one file, or transformers'
    /// shards `model-0000i-of-0000n.safetensors` and `model.safetensors.index.json` (written here;
    /// total_size and the sorted weight map as transformers writes them). Returns the (path, table) to write.
    static func layout(_ table: WeightTable, base: String, in dir: String, dtype: DType,
                       maxBytes: Int = 5_000_000_000) throws -> [(path: String, table: WeightTable)] {
        let parts = try shards(table, dtype: dtype, maxBytes: maxBytes)
        guard parts.count > 1 else { return [(FileSystem.join(dir, base), table)] }
        let stem = String(base.dropLast(".safetensors".count))
        func pad(_ i: Int) -> String { let s = String(i); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        let names = parts.indices.map { "\(stem)-\(pad($0 + 1))-of-\(pad(parts.count)).safetensors" }
        var map: [(String, JSONValue)] = []
        for (name, part) in zip(names, parts) { for e in part.entries { map.append((e.name, .string(name))) } }
        map.sort { $0.0 < $1.0 }
        let index = JSONValue.object([
            ("metadata", .object([("total_size", .int(Int64(table.parameterCount * dtype.size)))])),
            ("weight_map", .object(map)),
        ])
        try writeText(FileSystem.join(dir, base + ".index.json"), index.serialized())
        return zip(names, parts).map { (FileSystem.join(dir, $0.0), $0.1) }
    }
}

/// The measured `Linear.forward` rates a benchmark's bounds use: fp32 weights, f16 weights and, with
/// --compute bf16, bf16 products (NaN otherwise); on a rows × inF → outF product.
struct GEMMRates {
    var f32: Double, f16: Double, bf16: Double
    var shape: (rows: Int, inF: Int, outF: Int)

    /// Measures them (progress and the rates on stderr).
    static func measure(bf16 products: Bool, rows: Int = 4800, inF: Int = 640, outF: Int = 5120, pool: ThreadPool) -> GEMMRates {
        writeStderr("GEMM rates …\n")
        func rate(_ dt: DType, bf16: Bool = false) -> Double {
            BenchSupport.gemmRate(weight: dt, bf16: bf16, rows: rows, inF: inF, outF: outF, pool: pool)
        }
        let r = GEMMRates(f32: rate(.f32), f16: rate(.f16), bf16: products ? rate(.f16, bf16: true) : .nan,
                          shape: (rows, inF, outF))
        let f = BenchSupport.fmt
        writeStderr("GEMM (rows \(rows), in \(inF), out \(outF)): fp32 weights \(f(r.f32 / 1e9)) GFLOP/s, f16 weights \(f(r.f16 / 1e9)) GFLOP/s"
                    + (products ? ", bf16 products \(f(r.bf16 / 1e9)) GFLOP/s" : "") + "\n")
        return r
    }

    /// "GEMM fp32 … GFLOP/s, f16-weight … GFLOP/s, compute fp32" (or "compute bf16 (bf16 products …)").
    var summary: String {
        let f = BenchSupport.fmt
        return "GEMM fp32 \(f(f32 / 1e9)) GFLOP/s, f16-weight \(f(f16 / 1e9)) GFLOP/s"
            + (bf16.isNaN ? ", compute fp32" : ", compute bf16 (bf16 products \(f(bf16 / 1e9)) GFLOP/s)")
    }
}

import HunyuanLM
#if canImport(Glibc)
import Glibc
#endif

/// Converts a checkpoint folder to another weight format (`hunyuan-cli quantize`): every declared
/// matrix (`declareHunyuanWeights`) except the MoE router is stored in `type` (layouts: WeightFormat in
/// HunyuanCore/Quantization.swift); the router and the 1-D norms/biases are stored f32. The tied
/// embedding / output matrix gets `outputType` (default: `type`); an untied lm_head too. Other files of
/// the folder (config, generation config, tokenizer) are copied. The source may be in any format the
/// engine loads (f32/bf16/f16/fp8/quantized). Writes OUT_DIR/model.safetensors atomically.
public enum QuantizeCheckpoint {
    public static func run(input: String, output: String, type: WeightFormat, outputType: WeightFormat? = nil,
                           threads: Int = 0) throws {
        let c = try HunyuanConfig.load(directory: input)
        let ck = try Checkpoint(path: input)
        _ = try ModelWeights(config: c, checkpoint: ck)  // validates names and shapes before writing
        if !FileSystem.isDirectory(output) {
            guard mkdirFolder(output) else { throw HYError.io("\(output): cannot create folder") }
        }
        let pool = ThreadPool(threads: threads)
        var items: [SafetensorsWriter.Item] = []
        let table = WeightTable()
        let names = try declareHunyuanWeights(c, lmHead: !c.tieWordEmbeddings, table)
        let outputs = Set([names.embed, names.lmHead].compactMap { $0?.name })
        let routers = Set(names.layers.compactMap { $0.router?.name })
        let binder = CheckpointBinder(ck)
        for e in table.entries {
            if !e.isMatrix {
                items.append(SafetensorsWriter.Item(name: e.name, shape: e.shape, floats: try binder.vector(e.name, shape: e.shape)))
                continue
            }
            let fmt: WeightFormat = routers.contains(e.name) ? .f32 : (outputs.contains(e.name) ? (outputType ?? type) : type)
            let w = try binder.matrix(e.name, shape: e.shape)
            items.append(contentsOf: try convert(w, name: e.name, to: fmt, pool: pool))
        }
        try SafetensorsWriter.write(items, metadata: [("format", "pt"), ("hunyuan.quantization", type.rawValue)],
                                    to: FileSystem.join(output, "model.safetensors"))
        for f in try FileSystem.list(input) where !f.hasSuffix(".safetensors") && f != "model.safetensors.index.json" {
            let src = FileSystem.join(input, f)
            if FileSystem.isDirectory(src) { continue }
            let bytes = try FileSystem.readAll(src)
            try FileSystem.writeAtomically(FileSystem.join(output, f), overwrite: true) { w in
                try bytes.withUnsafeBytes { try w($0) }
            }
        }
    }

    /// The stored tensors for matrix `w` in format `fmt`: one, or two for fp8 (codes + weight_scale).
    static func convert(_ w: WeightMatrix, name: String, to fmt: WeightFormat, pool: ThreadPool) throws -> [SafetensorsWriter.Item] {
        let rows = w.rows, cols = w.cols
        let n = try checkedMul(rows, cols, name)
        var floats = [Float](repeating: 0, count: n)
        floats.withUnsafeMutableBufferPointer { f in
            let base = f.baseAddress!
            pool.parallelRanges(rows, minChunk: 64) { rr in for r in rr { w.copyRow(r, into: base + r * cols) } }
        }
        switch fmt {
        case .f32, .f16, .bf16:
            let dt: DType = fmt == .f32 ? .f32 : (fmt == .f16 ? .f16 : .bf16)
            return [SafetensorsWriter.Item(name: name, shape: [rows, cols], floats: floats, as: dt)]
        case .fp8:
            var codes = [UInt8](repeating: 0, count: n)
            var scales = [Float](repeating: 0, count: rows)
            floats.withUnsafeBufferPointer { f in
                codes.withUnsafeMutableBufferPointer { cb in
                    scales.withUnsafeMutableBufferPointer { sb in
                        let fp = f.baseAddress!, cp = cb.baseAddress!, sp = sb.baseAddress!
                        pool.parallelRanges(rows, minChunk: 64) { rr in
                            Quantizer.quantizeFP8(fp + rr.lowerBound * cols, rows: rr.count, cols: cols,
                                                  codes: cp + rr.lowerBound * cols, scales: sp + rr.lowerBound)
                        }
                    }
                }
            }
            return [SafetensorsWriter.Item(name: name, dtype: .f8e4m3, shape: [rows, cols], bytes: codes),
                    SafetensorsWriter.Item(name: name + "_scale", shape: [rows], floats: scales)]
        case .q8_0, .q4_0, .q4_k:
            let rb = fmt.rowBytes(cols)
            var bytes = [UInt8](repeating: 0, count: try checkedMul(rows, rb, name))
            floats.withUnsafeBufferPointer { f in
                bytes.withUnsafeMutableBytes { b in
                    let fp = f.baseAddress!, bp = b.baseAddress!
                    pool.parallelRanges(rows, minChunk: 16) { rr in
                        for r in rr { Quantizer.quantizeRow(fmt, fp + r * cols, cols: cols, bp + r * rb) }
                    }
                }
            }
            return [SafetensorsWriter.Item(name: name, dtype: .u8, shape: [rows, fmt.blocksPerRow(cols), fmt.blockBytes],
                                           bytes: bytes)]
        }
    }

    static func mkdirFolder(_ path: String) -> Bool {
        #if canImport(Glibc)
        return Glibc.mkdir(path, 0o755) == 0
        #else
        return false
        #endif
    }
}

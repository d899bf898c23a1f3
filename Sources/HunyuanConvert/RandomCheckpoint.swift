import HunyuanLM

/// Writes a checkpoint folder with random weights for any supported config: config.json (the given
/// bytes), generation_config.json (bos/eos from the config, greedy) and model.safetensors with the
/// official tensor names (`declareHunyuanWeights`, in its order). Matrices are uniform with std 1/√cols, so activations stay
/// O(1); norm weights are 1 ± 0.1. Deterministic for a seed. For benchmarks and tests (no torch).
public enum RandomCheckpoint {
    public static func write(config c: HunyuanConfig, configBytes: [UInt8], to dir: String, seed: UInt64,
                             dtype: DType) throws {
        guard dtype == .f32 || dtype == .bf16 else { throw HYError.invalidArgument("random checkpoint dtype must be f32 or bf16") }
        var rng = SplitMix64(seed: seed)
        var items: [SafetensorsWriter.Item] = []
        let table = try WeightTable { _ = try declareHunyuanWeights(c, lmHead: !c.tieWordEmbeddings, $0) }
        for (name, shape) in table.entries.map({ ($0.name, $0.shape) }) {
            var count = 1
            for d in shape { count = try checkedMul(count, d, name) }
            let isNorm = shape.count == 1
            let scale: Float = isNorm ? 0.1 : 1.7320508 / Float(shape[shape.count - 1]).squareRoot()
            let center: Float = isNorm ? 1 : 0
            var bytes = [UInt8](repeating: 0, count: try checkedMul(count, dtype.size, name))
            bytes.withUnsafeMutableBytes { b in
                for i in 0..<count {
                    let u = Float(rng.nextDouble()) * 2 - 1
                    let v = center + scale * u
                    if dtype == .bf16 {
                        b.storeBytes(of: FloatBits.floatToBF16(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                    } else {
                        b.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                    }
                }
            }
            items.append(SafetensorsWriter.Item(name: name, dtype: dtype, shape: shape, bytes: bytes))
        }
        try FileSystem.writeAtomically(FileSystem.join(dir, "config.json"), overwrite: true) { w in
            try configBytes.withUnsafeBytes { try w($0) }
        }
        var gen: [(String, JSONValue)] = []
        if let b = c.bosTokenId { gen.append(("bos_token_id", .int(Int64(b)))) }
        if c.eosTokenIds.count == 1 {
            gen.append(("eos_token_id", .int(Int64(c.eosTokenIds[0]))))
        } else if !c.eosTokenIds.isEmpty {
            gen.append(("eos_token_id", .array(c.eosTokenIds.map { .int(Int64($0)) })))
        }
        gen.append(("do_sample", .bool(false)))
        let genText = Array((JSONValue.object(gen).serialized() + "\n").utf8)
        try FileSystem.writeAtomically(FileSystem.join(dir, "generation_config.json"), overwrite: true) { w in
            try genText.withUnsafeBytes { try w($0) }
        }
        try SafetensorsWriter.write(items, metadata: [("format", "pt")], to: FileSystem.join(dir, "model.safetensors"))
    }
}

import ArgumentParser
import Glibc
import HunyuanCore
import HunyuanImage
import Hunyuan3D
import HunyuanNN

/// The U²-Net model a command names: a file or folder, else rembg's own location
/// ($U2NET_HOME/u2net.onnx, ~/.u2net/u2net.onnx).
func resolveU2Net(_ model: String?) throws -> String {
    if let model { return model }
    var candidates: [String] = []
    if let home = getenvString("U2NET_HOME") { candidates.append(FileSystem.join(home, "u2net.onnx")) }
    if let home = getenvString("HOME") { candidates.append(FileSystem.join(home, ".u2net/u2net.onnx")) }
    guard let found = candidates.first(where: FileSystem.exists) else {
        throw HYError.io("no U²-Net model given and none at rembg's locations (\(candidates.joined(separator: ", ")))")
    }
    return found
}

func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    let s = String(cString: p)
    return s.isEmpty ? nil : s
}

/// `remove-background`: Hunyuan3D-1.0's background removal (rembg u2net + white-out + recentre to 512²).
struct RemoveBackgroundCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-background",
        abstract: "Cut the object out of an image as Hunyuan3D-1.0 does (rembg's U²-Net, white-out, recentred 512×512 RGBA).",
        discussion: """
            MODEL is rembg's u2net.onnx (or u2netp.onnx), a model.safetensors with the PyTorch names, or a folder holding
            one; without it, $U2NET_HOME/u2net.onnx or ~/.u2net/u2net.onnx. An RGBA input loses its alpha first (the
            official force=True) unless --keep-alpha. --mask also writes the mask at the input size; --raw writes rembg's
            cut-out at the input size instead of the recentred square.
            """)

    @Argument(help: "Input image (PNG/JPEG), or the model then the image.") var paths: [String]
    @Option(name: .shortAndLong, help: "Output PNG (RGBA).") var output: String
    @Option(help: "Also write the mask (PNG, grey as RGBA) here.") var mask: String?
    @Flag(help: "Write rembg's cut-out at the input size (no white-out, no recentring).") var raw = false
    @Flag(help: "Keep an RGBA input's own alpha (skip the network).") var keepAlpha = false
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace existing output files.") var overwrite = false

    func run() throws {
        try runReporting {
            guard paths.count == 1 || paths.count == 2 else { throw HYError.invalidArgument("give [MODEL] IMAGE") }
            let model = try resolveU2Net(paths.count == 2 ? paths[0] : nil)
            let image = paths[paths.count - 1]
            try checkOutput(output, overwrite: overwrite)
            if let mask { try checkOutput(mask, overwrite: overwrite) }
            let im = try ImageFile.read(image)
            let net = try U2Net(path: model)
            let t0 = Clock.seconds()
            let r = try BackgroundRemoval.run(im, net: net, keepAlpha: keepAlpha, pool: ThreadPool(threads: threads))
            let out = raw ? r.cutout : r.final
            try PNGEncoder.write(rgba(out), to: output, overwrite: overwrite)
            if let mask {
                let m = r.mask ?? (0..<(im.width * im.height)).map { im.channels == 4 ? im.pixels[4 * $0 + 3] : 255 }
                var px = [UInt8](repeating: 255, count: m.count * 4)
                for i in 0..<m.count { px[4 * i] = m[i]; px[4 * i + 1] = m[i]; px[4 * i + 2] = m[i] }
                try PNGEncoder.write(RGBAImage(width: im.width, height: im.height, pixels: px), to: mask, overwrite: overwrite)
            }
            writeStderr("\(net.config.name) (\(net.source)): \(im.width)×\(im.height) → \(out.width)×\(out.height) in \(Double(Int((Clock.seconds() - t0) * 100)) / 100) s → \(output)\n")
        }
    }
}

/// `rembg-eval`: both cases of a background-removal fixture, every intermediate under the reference's names.
struct RembgEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rembg-eval",
        abstract: "Run the background removal on a fixture's inputs and write every intermediate for parity checks.",
        discussion: """
            --inputs holds rgb.image_u8 [H,W,3] and rgba.image_u8 [H,W,4] (the RGBA case takes the official force=True
            path). Writes rgb.input_tensor, rgb.resized320_u8, rgb.d0, rgb.side{1..6}_logit and for both cases
            mask320_u8, mask_u8, rembg_rgba_u8, whiteout_rgba_u8, padded_rgba_u8 and final_rgba_u8.
            """)

    @Argument(help: "The U²-Net: .onnx, .safetensors or a folder.") var model: String
    @Option(help: "inputs.safetensors of a fixture.") var inputs: String
    @Option(name: .shortAndLong, help: "Output safetensors path.") var output: String
    @Option(help: "Worker threads (0 = one per processor).") var threads: Int = 0
    @Flag(help: "Replace an existing output file.") var overwrite = false

    func run() throws {
        try runReporting {
            try checkOutput(output, overwrite: overwrite)
            let input = try SafetensorsFile(path: inputs)
            let net = try U2Net(path: model)
            let pool = ThreadPool(threads: threads)
            var items: [SafetensorsWriter.Item] = []
            func u8(_ name: String, _ shape: [Int], _ bytes: [UInt8]) {
                items.append(.init(name: name, dtype: .u8, shape: shape, bytes: bytes))
            }
            for (case_, channels) in [("rgb", 3), ("rgba", 4)] {
                guard let t = input.tensor("\(case_).image_u8"), t.dtype == .u8, t.shape.count == 3, t.shape[2] == channels else {
                    throw HYError.invalidArgument("\(inputs): needs a u8 tensor \(case_).image_u8 [H,W,\(channels)]")
                }
                let (h, w) = (t.shape[0], t.shape[1])
                let im = try ByteImage(width: w, height: h, channels: channels, pixels: Array(t.data))
                let r = try BackgroundRemoval.run(im, net: net, pool: pool, trace: case_ == "rgb" ? { name, shape, values in
                    items.append(.init(name: "rgb." + name, shape: shape, floats: Array(values)))
                } : nil)
                if case_ == "rgb", let resized = r.resized { u8("rgb.resized320_u8", [320, 320, 3], resized) }
                if let m320 = r.mask320, let m = r.mask {
                    u8("\(case_).mask320_u8", [320, 320], m320)
                    u8("\(case_).mask_u8", [h, w], m)
                }
                u8("\(case_).rembg_rgba_u8", [h, w, 4], r.cutout.pixels)
                u8("\(case_).whiteout_rgba_u8", [h, w, 4], r.whiteout.pixels)
                u8("\(case_).padded_rgba_u8", [r.padded.height, r.padded.width, 4], r.padded.pixels)
                u8("\(case_).final_rgba_u8", [r.final.height, r.final.width, 4], r.final.pixels)
            }
            try SafetensorsWriter.write(items, metadata: [("producer", "hunyuan-cli rembg-eval"), ("model", net.config.name)],
                                        to: output, overwrite: overwrite)
            writeStderr("\(net.config.name): \(items.count) tensors → \(output)\n")
        }
    }
}

/// `rembg-bench`: the U²-Net forward at 320×320 and the whole background removal of a 1024×1024
/// synthetic image, per thread count (issue #15: against onnxruntime, `bench/u2net-bench.sh`).
struct RembgBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rembg-bench",
        abstract: "Time the U²-Net forward (1×3×320×320) and the whole background removal, per thread count.",
        discussion: """
            Loads MODEL (.onnx, .safetensors or a folder, as remove-background), then per thread count: --warmup
            forwards, --reps timed forwards (ms mean ± sd, min), and the whole remove-background (LANCZOS to 320²,
            network, mask, cut-out, white-out, recentred 512²) of a --size² synthetic RGB image (--e2e-reps runs
            after one warm-up; --size 0 skips it). The input is rgb.input_tensor [1,3,320,320] of --input (what
            rembg-eval writes) or rembg's normalisation of a synthetic image. Peak RSS is the process's
            getrusage ru_maxrss so far (monotonic: give one thread count per process for per-count peaks).
            A markdown table on stdout, or one JSON object per thread count with --json.
            """)

    @Argument(help: "The U²-Net: .onnx, .safetensors or a folder.") var model: String
    @Option(help: "Thread counts, comma-separated.") var threads: String = "1,2"
    @Option(help: "Timed forwards per thread count.") var reps: Int = 5
    @Option(help: "Untimed forwards first.") var warmup: Int = 1
    @Option(help: "safetensors holding rgb.input_tensor [1,3,320,320] f32.") var input: String?
    @Option(help: "Side of the synthetic image for the whole removal (0: skip).") var size: Int = 1024
    @Option(help: "Timed whole removals per thread count.") var e2eReps: Int = 2
    @Flag(help: "One JSON object per thread count (JSON lines) instead of a table.") var json = false

    func run() throws {
        try runReporting {
            let counts = try threads.split(separator: ",").map { s -> Int in
                guard let n = Int(String(s.filter { $0 != " " })), n >= 1 else {
                    throw HYError.invalidArgument("--threads: \(s) is not a thread count ≥ 1")
                }
                return n
            }
            guard reps >= 1, warmup >= 0, e2eReps >= 1, size >= 0 else {
                throw HYError.invalidArgument("--reps and --e2e-reps ≥ 1, --warmup and --size ≥ 0")
            }
            let rssStart = peakRSS()
            let tl = Clock.seconds()
            let model = try resolveU2Net(self.model)
            let net = try U2Net(path: model)
            let loadSeconds = Clock.seconds() - tl
            let rssLoaded = peakRSS()
            let x: [Float]
            if let input {
                let f = try SafetensorsFile(path: input)
                guard let t = f.tensor("rgb.input_tensor"), t.shape == [1, 3, 320, 320], t.dtype.isFloat else {
                    throw HYError.invalidArgument("\(input): needs rgb.input_tensor [1,3,320,320] float")
                }
                x = t.floats()
            } else {
                let im = Self.synthetic(320)
                x = BackgroundRemoval.inputTensor(rgb: im.pixels, width: 320, height: 320).tensor
            }
            let big = size > 0 ? Self.synthetic(size) : nil
            writeStderr("\(net.config.name) (\(net.source)): loaded in \(Self.dec(loadSeconds, 2)) s, peak RSS \(rssLoaded >> 20) MiB\n")
            var rows: [String] = []
            if !json {
                print("| threads | forward ms (mean ± sd) | min ms | remove-background \(size)² ms | peak RSS MiB |")
                print("|---|---|---|---|---|")
            }
            for n in counts {
                let pool = ThreadPool(threads: n)
                for _ in 0..<warmup { _ = try net.forward(x, height: 320, width: 320, pool: pool) }
                var ms: [Double] = []
                for _ in 0..<reps {
                    let t0 = Clock.seconds()
                    _ = try net.forward(x, height: 320, width: 320, pool: pool)
                    ms.append((Clock.seconds() - t0) * 1000)
                }
                let forwardRSS = peakRSS()
                var e2e: [Double] = []
                if let big {
                    _ = try BackgroundRemoval.run(big, net: net, pool: pool)
                    for _ in 0..<e2eReps {
                        let t0 = Clock.seconds()
                        _ = try BackgroundRemoval.run(big, net: net, pool: pool)
                        e2e.append((Clock.seconds() - t0) * 1000)
                    }
                }
                let (m, sd) = Self.meanSD(ms), (em, esd) = Self.meanSD(e2e)
                let rss = peakRSS()
                let f1 = { (v: Double) in Self.dec(v, 1) }
                writeStderr("threads \(n): forward \(f1(m)) ± \(f1(sd)) ms (\(reps) reps)" + (e2e.isEmpty ? "" : ", remove-background \(f1(em)) ± \(f1(esd)) ms") + "\n")
                if json {
                    let list = { (a: [Double]) in "[" + a.map { Self.dec($0, 3) }.joined(separator: ",") + "]" }
                    print("{\"impl\":\"hunyuan\",\"model\":\"\(net.config.name)\",\"source\":\"\(net.source)\",\"threads\":\(n),\"warmup\":\(warmup),"
                          + "\"forward_ms\":\(list(ms)),\"forward_ms_mean\":\(Self.dec(m, 3)),\"forward_ms_sd\":\(Self.dec(sd, 3)),"
                          + "\"e2e_size\":\(size),\"e2e_ms\":\(list(e2e)),\"e2e_ms_mean\":\(Self.dec(em, 3)),"
                          + "\"load_s\":\(Self.dec(loadSeconds, 3)),\"rss_start_bytes\":\(rssStart),\"rss_loaded_bytes\":\(rssLoaded),"
                          + "\"rss_forward_peak_bytes\":\(forwardRSS),\"rss_peak_bytes\":\(rss)}")
                } else {
                    rows.append("| \(n) | \(f1(m)) ± \(f1(sd)) | \(f1(ms.min() ?? 0)) | \(e2e.isEmpty ? "–" : "\(f1(em)) ± \(f1(esd))") | \(rss >> 20) |")
                    print(rows.last!)
                }
            }
        }
    }

    /// v rounded to `places` decimals, as text.
    static func dec(_ v: Double, _ places: Int) -> String {
        var p = 1.0
        for _ in 0..<places { p *= 10 }
        return "\((v * p).rounded() / p)"
    }

    static func meanSD(_ a: [Double]) -> (Double, Double) {
        guard !a.isEmpty else { return (0, 0) }
        let m = a.reduce(0, +) / Double(a.count)
        let v = a.count > 1 ? a.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(a.count - 1) : 0
        return (m, v.squareRoot())
    }

    /// A deterministic RGB test image: an orange ellipse with a soft edge on a shaded background.
    static func synthetic(_ n: Int) -> ByteImage {
        var px = [UInt8](repeating: 0, count: n * n * 3)
        let s = Double(n)
        for y in 0..<n {
            for x in 0..<n {
                let (fy, fx) = (Double(y), Double(x))
                let r = (((fy - 0.52 * s) / (0.33 * s)) * ((fy - 0.52 * s) / (0.33 * s)) + ((fx - 0.47 * s) / (0.28 * s)) * ((fx - 0.47 * s) / (0.28 * s))).squareRoot()
                let a = min(max((1 - r) * 12, 0), 1)
                let bg = [60 + 80 * fy / s, 90 + 60 * fx / s, 140 - 50 * fy / s]
                let ob = [230.0, 130 + 40 * sin(fx / 7), 40 + 30 * cos(fy / 5)]
                let noise = Double((x &* 7919 &+ y &* 104_729) % 17) - 8
                for c in 0..<3 { px[3 * (y * n + x) + c] = UInt8(min(max((bg[c] * (1 - a) + ob[c] * a + noise).rounded(), 0), 250)) }
            }
        }
        return try! ByteImage(width: n, height: n, channels: 3, pixels: px)
    }
}

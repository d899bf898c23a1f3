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

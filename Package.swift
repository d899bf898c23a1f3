// swift-tools-version:6.0
import PackageDescription

// Engines are compiled optimized and for the haswell baseline (AVX2 + FMA) in every configuration:
// numeric code built for the default x86-64 baseline or at -Onone is 10-50x slower, which would make
// the debug test build useless. Faster paths (AVX-512, VNNI) are chosen at run time after a CPU check.
let engineSwift: [SwiftSetting] = [
    .unsafeFlags(["-O", "-target-cpu", "haswell"]),
]
let engineC: [CSetting] = [
    .unsafeFlags(["-O2", "-march=haswell"]),
]

let package = Package(
    name: "hunyuan",
    products: [
        .library(name: "hunyuan", type: .dynamic, targets: ["HunyuanCAPI"]),
        .executable(name: "hunyuan-cli", targets: ["hunyuan-cli"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The C ABI's runtime half (hunyuan.h, the error slot): seen by HunyuanCAPI only.
        .target(name: "CHunyuanABI", cSettings: engineC),
        // Numeric kernels in C and the CPU checks that choose them: seen by HunyuanCore.
        .target(name: "CKernels", cSettings: engineC),
        .target(name: "CJPEG", cSettings: engineC, linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "HunyuanCore", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: engineSwift),
        // The neural-network layer shared by every engine (Linear, attention, norms, conv, WeightTable…).
        .target(name: "HunyuanNN", dependencies: ["HunyuanCore"], swiftSettings: engineSwift),
        .target(name: "HunyuanLM", dependencies: ["HunyuanNN"], swiftSettings: engineSwift),
        // Training (forward from HunyuanNN + backward, MoE recipes, optimizer, tokenizer trainer).
        .target(name: "HunyuanTrain", dependencies: ["HunyuanLM", "Hunyuan3D"], swiftSettings: engineSwift),
        // Checkpoint converters used by the CLI: GGUF export, quantization, random checkpoints.
        .target(name: "HunyuanConvert", dependencies: ["HunyuanLM"], swiftSettings: engineSwift),
        // Image types and codecs (PNG through zlib, JPEG through libjpeg); geometry (meshes, marching
        // cubes, mesh operations, file formats, preview renders) uses them for textures and previews.
        // The direction is Geometry -> Image, never back; 3D builds on both and on HunyuanNN.
        .target(name: "HunyuanImage", dependencies: ["HunyuanCore", "CZlib", "CJPEG"], swiftSettings: engineSwift),
        .target(name: "HunyuanGeometry", dependencies: ["HunyuanCore", "HunyuanImage"], swiftSettings: engineSwift),
        // Diffusion components as diffusers / transformers define and ship them (UNet, AutoencoderKL,
        // CLIP text and vision towers and tokenizer, schedulers, image processors), loaded from their
        // released folders; the pipelines that chain them live with their products (Hunyuan3D).
        .target(name: "HunyuanDiffusion", dependencies: ["HunyuanNN", "HunyuanImage"], swiftSettings: engineSwift),
        .target(name: "Hunyuan3D", dependencies: ["HunyuanNN", "HunyuanLM", "HunyuanDiffusion", "HunyuanGeometry", "HunyuanImage"],
                swiftSettings: engineSwift),
        .target(name: "HunyuanCAPI", dependencies: ["CHunyuanABI", "HunyuanCore", "HunyuanLM", "HunyuanGeometry", "HunyuanDiffusion",
                                                    "HunyuanImage", "Hunyuan3D"],
                swiftSettings: engineSwift),
        .executableTarget(name: "hunyuan-cli", dependencies: [
            "HunyuanCore", "HunyuanNN", "HunyuanLM", "HunyuanTrain", "HunyuanConvert", "HunyuanGeometry", "HunyuanImage",
            "HunyuanDiffusion", "Hunyuan3D",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: engineSwift),
        .testTarget(name: "HunyuanCoreTests", dependencies: ["HunyuanCore", "CKernels"]),
        .testTarget(name: "HunyuanNNTests", dependencies: ["HunyuanNN"]),
        .testTarget(name: "HunyuanLMTests", dependencies: ["HunyuanLM", "HunyuanConvert"]),
        .testTarget(name: "HunyuanTrainTests", dependencies: ["HunyuanTrain"]),
        .testTarget(name: "HunyuanGeometryTests", dependencies: ["HunyuanGeometry", "HunyuanImage"]),
        .testTarget(name: "HunyuanDiffusionTests", dependencies: ["HunyuanDiffusion"]),
        .testTarget(name: "Hunyuan3DTests", dependencies: ["Hunyuan3D", "HunyuanGeometry", "HunyuanImage"]),
    ],
    swiftLanguageModes: [.v5]
)

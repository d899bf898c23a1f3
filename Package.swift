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
        .target(name: "CHunyuan", cSettings: engineC),
        .target(name: "CJPEG", cSettings: engineC, linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "HunyuanCore", dependencies: ["COpenBLAS", "CHunyuan"], swiftSettings: engineSwift),
        .target(name: "HunyuanLM", dependencies: ["HunyuanCore"], swiftSettings: engineSwift),
        // Image types and codecs (PNG through zlib, JPEG through libjpeg); geometry (meshes, marching
        // cubes, mesh operations, file formats, preview renders) uses them for textures and previews.
        // The direction is Geometry -> Image, never back; 3D builds on both.
        .target(name: "HunyuanImage", dependencies: ["HunyuanCore", "CZlib", "CJPEG"], swiftSettings: engineSwift),
        .target(name: "HunyuanGeometry", dependencies: ["HunyuanCore", "HunyuanImage"], swiftSettings: engineSwift),
        .target(name: "Hunyuan3D", dependencies: ["HunyuanCore", "HunyuanGeometry", "HunyuanImage"],
                swiftSettings: engineSwift),
        .target(name: "HunyuanCAPI", dependencies: ["CHunyuan", "HunyuanCore", "HunyuanLM", "HunyuanGeometry",
                                                    "HunyuanImage", "Hunyuan3D"],
                swiftSettings: engineSwift),
        .executableTarget(name: "hunyuan-cli", dependencies: [
            "HunyuanCore", "HunyuanLM", "HunyuanGeometry", "HunyuanImage", "Hunyuan3D",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: engineSwift),
        .testTarget(name: "HunyuanCoreTests", dependencies: ["HunyuanCore"]),
        .testTarget(name: "HunyuanLMTests", dependencies: ["HunyuanLM"]),
        .testTarget(name: "HunyuanGeometryTests", dependencies: ["HunyuanGeometry", "HunyuanImage"]),
        .testTarget(name: "Hunyuan3DTests", dependencies: ["Hunyuan3D", "HunyuanGeometry", "HunyuanImage"]),
    ],
    swiftLanguageModes: [.v5]
)

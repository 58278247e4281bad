// swift-tools-version:6.0
import PackageDescription

// Public products first, implementation targets after.
let package = Package(
    name: "bndrop",
    products: [
        // The Swift API: `import BNDrop`.
        .library(name: "BNDrop", targets: ["BNDrop"]),
        // The C ABI: libbndrop.so, described by include/bndrop.h.
        .library(name: "bndrop", type: .dynamic, targets: ["BNDropC"]),
    ],
    targets: [
        // The Swift core: layers, losses, optimizers, the sequential network, data.
        .target(
            name: "BNDrop",
            dependencies: ["COpenBLAS", "CZlib"]
        ),
        // Thin @_cdecl exports over the Swift API, linked into libbndrop.so.
        .target(
            name: "BNDropC",
            dependencies: ["BNDrop", "BNDropCSupport"],
            linkerSettings: [
                // ld.gold (swiftc's default on Linux) leaves the version script's local, protected
                // Swift symbols in .dynsym, where `nm -D` lists them; lld (shipped with the toolchain)
                // drops them, so only bnd_* remain.
                .unsafeFlags([
                    "-use-ld=lld",
                    "-Xlinker", "-soname=libbndrop.so",
                    "-Xlinker", "--version-script=\(Context.packageDirectory)/include/bndrop.map",
                ]),
            ]
        ),
        // Per-thread error text for the C ABI (C has _Thread_local; Swift does not).
        .target(name: "BNDropCSupport"),
        // Debian's libopenblas-dev (CBLAS interface).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // Debian's zlib1g-dev, for gzip-compressed IDX files.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The dropout experiment through the Swift API (twin of examples/dropout_regression.c).
        .executableTarget(
            name: "DropoutExperiment",
            dependencies: ["BNDrop"],
            path: "examples/swift/DropoutExperiment"
        ),
        .testTarget(
            name: "BNDropTests",
            dependencies: ["BNDrop"]
        ),
        // Every golden case (PyTorch's numbers) through the Swift API and through the C ABI, one runner.
        .testTarget(
            name: "BNDropGoldenTests",
            dependencies: ["BNDrop", "BNDropC", "BNDropCSupport"]
        ),
        // The C ABI called from Swift through its C declarations (bndrop.h, via BNDropCSupport).
        .testTarget(
            name: "BNDropCTests",
            dependencies: ["BNDropC", "BNDropCSupport", "BNDrop"]
        ),
    ]
)

// swift-tools-version:6.2
import PackageDescription

// Public products first, implementation targets after.
let package = Package(
    name: "bndrop",
    products: [
        // The Swift API: `.product(name: "BNDropSwift", package: "bndrop")`, then `import BNDrop`.
        .library(name: "BNDropSwift", targets: ["BNDrop"]),
        // The C ABI: libbndrop.so, described by include/bndrop.h. (The product's name makes the file's.)
        .library(name: "bndrop", type: .dynamic, targets: ["BNDropLibrary"]),
    ],
    targets: [
        // The Swift core: layers, losses, optimizers, the sequential network, data.
        .target(
            name: "BNDrop",
            dependencies: ["COpenBLAS", "CZlib", "BNDropSystem", "BNDropKernels", "CcJSON", "BNDropHeader"],
            // Release builds skip the run-time exclusivity checks (the compile-time ones stay): the many
            // small accesses of a training step paid for them (dropout regression 0.96 of the time,
            // MLP-BN in batches of 64 0.99, BatchNorm1d 0.98; bench/PERFORMANCE.md: "No run-time
            // exclusivity checks"). Debug builds, `swift test` among them, keep every check.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // Operating-system facts Swift's Glibc module does not expose (sched_getaffinity).
        .target(name: "BNDropSystem"),
        // The hot loops that need wide vectors, in C compiled per instruction set (AVX-512, AVX2, SSE2)
        // and chosen when the library loads: Swift builds for the SSE2 baseline only. Optimised in debug
        // builds too: the direct convolution leaves fusing its multiply-adds to the compiler, which at
        // -O0 fuses those on 16-float vectors but not those on 8-float ones, so a debug build's two
        // forward paths gave different bits where the release build's agree (ConvolutionLoweringTests).
        .target(name: "BNDropKernels", cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        // Thin @_cdecl exports over the Swift API, linked into libbndrop.so.
        .target(
            name: "BNDropC",
            dependencies: ["BNDrop", "BNDropCSupport"]
        ),
        // libbndrop.so itself: BNDropC plus the shared library's link flags, here rather than on BNDropC
        // because a target's flags apply to every product containing it, the test executables too.
        .target(
            name: "BNDropLibrary",
            dependencies: ["BNDropC"],
            linkerSettings: [
                // ld.gold (swiftc's default on Linux) leaves the version script's local, protected
                // Swift symbols in .dynsym, where `nm -D` lists them; lld (shipped with the toolchain)
                // drops them, so only bnd_* remain. -static-stdlib links the Swift runtime in (its
                // symbols hidden by the version script), so the library needs no Swift toolchain at run
                // time; README "Install" says what that means for Swift programs.
                .unsafeFlags([
                    "-use-ld=lld",
                    "-static-stdlib",
                    "-Xlinker", "-soname=libbndrop.so.0",
                    "-Xlinker", "--version-script=\(Context.packageDirectory)/include/bndrop.map",
                ]),
            ]
        ),
        // The C side of libbndrop.so: per-thread error text (C has _Thread_local; Swift does not) and
        // the version string, from the public header's macros.
        .target(name: "BNDropCSupport", dependencies: ["BNDropHeader"]),
        // include/bndrop.h as a module, so the exports and the tests use the very types C programs see.
        .target(name: "BNDropHeader", path: "include", exclude: ["bndrop.map"], publicHeadersPath: "."),
        // OpenBLAS's functions as C function-pointer types, and nothing to link: BLAS.swift loads
        // libopenblas.so.0 (Debian's libopenblas0) with dlopen at first use, to choose its kernels first.
        .systemLibrary(name: "COpenBLAS"),
        // Debian's zlib1g-dev, for gzip-compressed IDX files.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Debian's libcjson-dev: the JSON parser of checkpoint headers (Checkpoint/JSON.swift).
        .systemLibrary(name: "CcJSON", providers: [.apt(["libcjson-dev"])]),
        // The dropout experiment through the Swift API (twin of examples/dropout_regression.c).
        .executableTarget(
            name: "DropoutExperiment",
            dependencies: ["BNDrop"],
            path: "examples/swift/DropoutExperiment"
        ),
        .testTarget(
            name: "BNDropTests",
            dependencies: ["BNDrop", "BNDropKernels"]  // the kernels: SparseProductTests calls one directly
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

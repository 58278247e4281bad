import Foundation
import XCTest
import BNDrop

/// The choice of OpenBLAS's kernels ("core") as a pure decision, and what the runtime reports on this
/// machine. (The replacement of a generic core, end to end, is tested in a child process by
/// BNDropCTests.RuntimeCABITests.)
final class RuntimeTests: XCTestCase {
    private static let avx512 = CPUFeatures(avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true,
                                            avx512dq: true)
    private static let avx2 = CPUFeatures(avx2: true, fma: true)
    private static let noAVX2 = CPUFeatures()

    func testDecisionTable() {
        let avx512 = Self.avx512, avx2 = Self.avx2, noAVX2 = Self.noAVX2
        // (what the row shows, CPU, OPENBLAS_CORETYPE or nil, the core OpenBLAS reported, decision)
        let table: [(String, CPUFeatures, String?, String, BLASCoreChoice)] = [
            // OPENBLAS_CORETYPE set: respected, whatever it says and whatever the CPU.
            ("env names a fast core", avx512, "SkylakeX", "SkylakeX", .environment),
            ("env names a generic core on an AVX-512 CPU", avx512, "Prescott", "Prescott", .environment),
            ("env names a core the CPU lacks", noAVX2, "SkylakeX", "SkylakeX", .environment),
            ("env set but empty", avx512, "", "Prescott", .environment),
            ("env names no core", avx2, "NoSuchCore", "Prescott", .environment),
            ("env in another case", avx2, "haswell", "Haswell", .environment),
            // A fast core detected: kept.
            ("Cooperlake on AVX-512", avx512, nil, "Cooperlake", .keep),
            ("SkylakeX on AVX-512", avx512, nil, "SkylakeX", .keep),
            ("Haswell on AVX-512 (OpenBLAS's own choice)", avx512, nil, "Haswell", .keep),
            ("Haswell on AVX2", avx2, nil, "Haswell", .keep),
            ("Zen on AVX2", avx2, nil, "Zen", .keep),
            ("Excavator on AVX2 (an AMD family, not a fallback)", avx2, nil, "Excavator", .keep),
            ("Piledriver on AVX2", avx2, nil, "Piledriver", .keep),
            // A generic core on an AVX-512 CPU: SkylakeX.
            ("Prescott on AVX-512 (Sapphire Rapids with 0.3.21)", avx512, nil, "Prescott", .use("SkylakeX")),
            ("Nehalem on AVX-512", avx512, nil, "Nehalem", .use("SkylakeX")),
            ("Sandybridge on AVX-512", avx512, nil, "Sandybridge", .use("SkylakeX")),
            ("Core2 on AVX-512", avx512, nil, "Core2", .use("SkylakeX")),
            ("Katmai on AVX-512", avx512, nil, "Katmai", .use("SkylakeX")),
            ("Barcelona on AVX-512", avx512, nil, "Barcelona", .use("SkylakeX")),
            ("OpenBLAS's own \"Unknown\" on AVX-512", avx512, nil, "Unknown", .use("SkylakeX")),
            ("Prescott in lower case", avx512, nil, "prescott", .use("SkylakeX")),
            // A generic core on an AVX2 CPU: Haswell.
            ("Prescott on AVX2", avx2, nil, "Prescott", .use("Haswell")),
            ("Sandybridge on AVX2", avx2, nil, "Sandybridge", .use("Haswell")),
            ("Atom on AVX2", avx2, nil, "Atom", .use("Haswell")),
            ("Prescott on AVX-512F without BW/VL/DQ (Knights Landing)",
             CPUFeatures(avx2: true, fma: true, avx512f: true), nil, "Prescott", .use("Haswell")),
            ("Prescott on AVX-512 without DQ",
             CPUFeatures(avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true), nil, "Prescott",
             .use("Haswell")),
            // A generic core on a CPU without AVX2 (and FMA): kept, there is nothing better.
            ("Prescott without AVX2", noAVX2, nil, "Prescott", .keep),
            ("Nehalem without AVX2", noAVX2, nil, "Nehalem", .keep),
            ("Sandybridge without AVX2", noAVX2, nil, "Sandybridge", .keep),
            ("Prescott with AVX2 but no FMA", CPUFeatures(avx2: true), nil, "Prescott", .keep),
            // Names bndrop does not know: kept.
            ("a later OpenBLAS's SapphireRapids", avx512, nil, "SapphireRapids", .keep),
            ("a made-up name on AVX-512", avx512, nil, "Prescott2", .keep),
            ("an empty name", avx2, nil, "", .keep),
            ("a name with spaces", avx2, nil, " Prescott ", .keep),
        ]
        for (row, cpu, environment, reported, expected) in table {
            XCTAssertEqual(BLASCoreChoice.decide(cpu: cpu, environmentCore: environment, reportedCore: reported),
                           expected, row)
        }
    }

    func testGenericCoresAreOpenBLASsCoresWithoutAVX2Kernels() {
        // Every core of OpenBLAS 0.3.21 (its corename table), fast ones apart.
        let fast = ["Haswell", "Zen", "SkylakeX", "Cooperlake", "Bulldozer", "Piledriver", "Steamroller", "Excavator"]
        let all = ["Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn",
                   "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge",
                   "Bobcat"] + fast
        XCTAssertEqual(Set(BLASCoreChoice.genericCores), Set(all).subtracting(fast))
        for core in all { XCTAssertEqual(BLASCoreChoice.isGeneric(core), !fast.contains(core), core) }
        XCTAssertTrue(BLASCoreChoice.isGeneric("NEHALEM"))
    }

    func testSIMDWidth() {
        XCTAssertEqual(Self.avx512.simdWidth, 16)
        XCTAssertEqual(CPUFeatures(avx2: true, fma: true, avx512f: true).simdWidth, 16)
        XCTAssertEqual(Self.avx2.simdWidth, 8)
        XCTAssertEqual(CPUFeatures(avx2: true).simdWidth, 8)
        XCTAssertEqual(Self.noAVX2.simdWidth, 4)
        let cpu = CPUFeatures.current
        XCTAssertEqual(cpu.simdWidth, cpu.avx512f ? 16 : cpu.avx2 ? 8 : 4)
    }

    func testRuntimeInfoOnThisMachine() throws {
        let info = try RuntimeInfo.current
        print("runtime: core \(info.blasCore) (\(info.blasCoreSource)), detected \(info.blasDetectedCore ?? "-"), "
              + "OpenBLAS threads \(info.blasThreads), bndrop threads \(info.threads), SIMD \(info.simdWidth) floats, "
              + "CPU \(info.cpu); \(info.blasConfig)")
        XCTAssertFalse(info.blasCore.isEmpty)
        XCTAssertTrue(info.blasConfig.hasPrefix("OpenBLAS"), info.blasConfig)
        XCTAssertEqual(info.blasThreads, 1, "bndrop keeps OpenBLAS single-threaded")
        XCTAssertEqual(info.threads, ThreadPool.shared.threadCount)
        XCTAssertEqual(info.cpu, CPUFeatures.current)
        XCTAssertEqual(info.simdWidth, CPUFeatures.current.simdWidth)

        let environmentCore = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        switch info.blasCoreSource {
        case .environment:
            XCTAssertNotNil(environmentCore, "the environment chose, so OPENBLAS_CORETYPE is set")
            XCTAssertNil(info.blasDetectedCore)
        case .openBLAS:
            XCTAssertNil(environmentCore, "with OPENBLAS_CORETYPE set, the environment chose")
            let detected = try XCTUnwrap(info.blasDetectedCore)
            XCTAssertEqual(detected, info.blasCore, "kept")
        case .bndrop:
            XCTAssertNil(environmentCore, "bndrop never overrides OPENBLAS_CORETYPE")
            let detected = try XCTUnwrap(info.blasDetectedCore)
            XCTAssertTrue(BLASCoreChoice.isGeneric(detected) || getenv("BNDROP_TEST_ASSUME_GENERIC_CORE") != nil,
                          "bndrop replaced \(detected), which is not generic")
            XCTAssertEqual(BLASCoreChoice.decide(cpu: .current, environmentCore: nil, reportedCore: "Prescott"),
                           .use(info.blasCore))
        case .host:
            XCTAssertNil(info.blasDetectedCore)
        }
    }

    /// Matrix products run in OpenBLAS: a Linear layer's output is x·Wᵀ + b.
    func testLinearForwardUsesTheLoadedBLAS() throws {
        let net = try Sequential(sampleShape: [3], seed: 7)
        try net.addLinear(2)
        let weight = try net.tensor("0.weight"), bias = try net.tensor("0.bias")
        let input: [Float] = [1, -2, 0.5, 3, 0.25, -1]
        let output = try net.forward(input, batch: 2)
        for row in 0..<2 {
            for j in 0..<2 {
                var expected = bias[j]
                for p in 0..<3 { expected += input[row * 3 + p] * weight[j * 3 + p] }
                XCTAssertEqual(output[row * 2 + j], expected, accuracy: 1e-5)
            }
        }
    }
}

import BNDropKernels
import BNDropSystem

/// The instruction-set extensions of this CPU that matter for choosing BLAS kernels, by the CPU's own
/// CPUID, counting only those whose registers the operating system saves.
public struct CPUFeatures: Equatable, Sendable, CustomStringConvertible {
    public var avx2: Bool
    public var fma: Bool
    public var avx512f: Bool
    public var avx512bw: Bool
    public var avx512vl: Bool
    public var avx512dq: Bool

    public init(avx2: Bool = false, fma: Bool = false, avx512f: Bool = false, avx512bw: Bool = false,
                avx512vl: Bool = false, avx512dq: Bool = false) {
        self.avx2 = avx2
        self.fma = fma
        self.avx512f = avx512f
        self.avx512bw = avx512bw
        self.avx512vl = avx512vl
        self.avx512dq = avx512dq
    }

    /// This machine's CPU.
    public static let current: CPUFeatures = {
        let bits = Int(bndsys_cpu_features())
        func has(_ bit: Int) -> Bool { bits & bit != 0 }
        return CPUFeatures(avx2: has(BNDSYS_CPU_AVX2), fma: has(BNDSYS_CPU_FMA), avx512f: has(BNDSYS_CPU_AVX512F),
                           avx512bw: has(BNDSYS_CPU_AVX512BW), avx512vl: has(BNDSYS_CPU_AVX512VL),
                           avx512dq: has(BNDSYS_CPU_AVX512DQ))
    }()

    /// AVX-512 F, BW, VL and DQ: what OpenBLAS's SkylakeX kernels need.
    public var hasSkylakeXAVX512: Bool { avx512f && avx512bw && avx512vl && avx512dq }

    /// AVX2 and FMA: what OpenBLAS's Haswell kernels need.
    public var hasHaswellAVX2: Bool { avx2 && fma }

    /// Floats in one vector register the CPU offers: 16 with AVX-512F, 8 with AVX2, 4 otherwise.
    public var simdWidth: Int { avx512f ? 16 : avx2 ? 8 : 4 }

    public var description: String {
        let names = [(avx2, "avx2"), (fma, "fma"), (avx512f, "avx512f"), (avx512bw, "avx512bw"),
                     (avx512vl, "avx512vl"), (avx512dq, "avx512dq")].filter(\.0).map(\.1)
        return names.isEmpty ? "no avx2/avx512" : names.joined(separator: " ")
    }
}

/// What bndrop does about OpenBLAS's kernels ("core"), decided once, when OpenBLAS is loaded.
///
/// OpenBLAS picks its core from the CPU's vendor, family and model. A model it does not know gets a
/// generic core: Debian's OpenBLAS 0.3.21 runs Intel Sapphire Rapids with "Prescott" kernels, about a
/// fifth of the speed of its "SkylakeX" ones. bndrop then asks for the core the CPU's extensions allow.
public enum BLASCoreChoice: Equatable, Sendable {
    /// `OPENBLAS_CORETYPE` is set: OpenBLAS used it, whatever it says, and bndrop changes nothing.
    case environment
    /// OpenBLAS's own choice stays: a fast core, a name bndrop does not know, or a generic core on a
    /// CPU that offers nothing better.
    case keep
    /// OpenBLAS fell back to a generic core on a CPU with AVX2 or AVX-512: load it with this core.
    case use(String)

    /// OpenBLAS's cores (its own spelling, from `openblas_get_corename`) whose kernels use no AVX2: the
    /// ones it falls back to for a CPU it does not know (Prescott), for a CPU whose AVX it does not trust
    /// (Nehalem, Sandybridge, Barcelona), and the older cores no AVX2 CPU really is. The AMD cores with
    /// AVX and FMA (Bulldozer, Piledriver, Steamroller, Excavator) are not here: OpenBLAS picks them
    /// for those exact families, never as a fallback. Matched without regard to case.
    public static let genericCores: [String] = [
        "Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn",
        "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Bobcat",
        "Sandybridge",
    ]

    private static let genericKeys = Set(genericCores.map { $0.lowercased() })

    /// Whether `core` (as `openblas_get_corename` reports it) is one of `genericCores`.
    public static func isGeneric(_ core: String) -> Bool { genericKeys.contains(core.lowercased()) }

    /// The decision, from what is known once OpenBLAS has loaded without bndrop's help.
    /// - Parameters:
    ///   - cpu: the CPU's extensions (`CPUFeatures.current`).
    ///   - environmentCore: `OPENBLAS_CORETYPE`'s value, nil when it is not set (set but empty counts as
    ///     set: OpenBLAS read it).
    ///   - reportedCore: the core OpenBLAS reported (`openblas_get_corename`).
    public static func decide(cpu: CPUFeatures, environmentCore: String?, reportedCore: String) -> BLASCoreChoice {
        if environmentCore != nil { return .environment }
        guard isGeneric(reportedCore) else { return .keep }
        if cpu.hasSkylakeXAVX512 { return .use("SkylakeX") }
        if cpu.hasHaswellAVX2 { return .use("Haswell") }
        return .keep
    }
}

/// How bndrop computes on this machine: its threads and the BLAS library behind its matrix products.
public struct RuntimeInfo: Equatable, Sendable {
    /// Who chose the OpenBLAS core in use.
    public enum BLASCoreSource: Equatable, Sendable {
        /// OpenBLAS, from the CPU model; bndrop kept it.
        case openBLAS
        /// `OPENBLAS_CORETYPE`, set in the environment when bndrop loaded OpenBLAS.
        case environment
        /// bndrop, replacing the generic core OpenBLAS had chosen (`blasDetectedCore`).
        case bndrop
        /// The process had loaded OpenBLAS before bndrop: bndrop uses it as it is and does not know
        /// how its core was chosen.
        case host
    }

    /// The OpenBLAS core in use (`openblas_get_corename`), e.g. "Haswell".
    public var blasCore: String
    /// The core OpenBLAS chose by itself: equal to `blasCore` unless bndrop replaced it; nil when the
    /// environment or the host chose.
    public var blasDetectedCore: String?
    public var blasCoreSource: BLASCoreSource
    /// `openblas_get_config`, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public var blasConfig: String
    /// OpenBLAS's own threads (`openblas_get_num_threads`); bndrop sets 1.
    public var blasThreads: Int
    /// bndrop's threads (`ThreadPool.shared.threadCount`).
    public var threads: Int
    public var cpu: CPUFeatures
    /// Floats in one vector register the CPU offers (`CPUFeatures.simdWidth`).
    public var simdWidth: Int { cpu.simdWidth }
    /// The instruction set of bndrop's own C kernels (`Sources/BNDropKernels`), the best of their builds
    /// the CPU runs: "avx512", "avx2" or "baseline" ("avx512-emulated" in the test build that runs the
    /// AVX-512 code paths on AVX2: `make test-avx512-emulated`).
    public var kernelInstructionSet: String { String(cString: bndk_instruction_set()) }
    /// Whether Adam's and SGD-with-momentum's steps compute parameters with tiny or subnormal values in
    /// double precision (the same bits) because this CPU's float operations on subnormal values are
    /// slow: measured once per process (`Sources/BNDropKernels/optimizers.c`).
    public var subnormalsInDouble: Bool { bndk_subnormals_take_double_path() != 0 }
    /// Floats per vector of those kernels: 16, 8 or 4.
    public var kernelSimdWidth: Int {
        switch kernelInstructionSet {
        case "avx512": return 16
        case "avx2", "avx512-emulated": return 8
        default: return 4
        }
    }

    /// The runtime as it is now. Loads OpenBLAS if nothing has yet; throws `.io` when it cannot be loaded.
    public static var current: RuntimeInfo {
        get throws {
            let blas = try BLAS.library.get()
            return RuntimeInfo(blasCore: blas.coreName, blasDetectedCore: blas.detectedCore,
                               blasCoreSource: blas.source, blasConfig: blas.config, blasThreads: blas.threads,
                               threads: ThreadPool.shared.threadCount, cpu: .current)
        }
    }
}

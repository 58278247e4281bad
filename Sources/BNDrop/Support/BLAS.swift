import COpenBLAS
import Glibc

/// The one door to BLAS: every matrix product of the library goes through here, so choosing the BLAS
/// library, its kernels and its threads is decided in one place.
///
/// bndrop does not link OpenBLAS. It loads `libopenblas.so.0` with `dlopen` at the first matrix product
/// (or `prepare()`, or `RuntimeInfo.current`), because OpenBLAS chooses its kernels in its load-time
/// constructor: a library linked at build time has chosen before any bndrop code runs. See
/// `OpenBLASLibrary.load()` for how the kernels are chosen, and `BLASCoreChoice` for the decision.
enum BLAS {
    /// OpenBLAS, loaded once per process (a `static let` is initialised exactly once, thread-safely).
    static let library: Result<OpenBLASLibrary, BNDError> = OpenBLASLibrary.load()

    /// The loaded `cblas_sgemm`, nil without OpenBLAS: what `sgemm` reads, one word, nothing to retain.
    private static let cblasSgemm: bndblas_sgemm_fn? = try? library.get().sgemm
    private static let cblasSomatcopy: bndblas_somatcopy_fn? = try? library.get().somatcopy

    /// Loads OpenBLAS now unless it is loaded; throws `.io` (with the loader's message) when it cannot
    /// be. A layer calls it when it is built, so that a missing OpenBLAS is reported by the first call
    /// that needs it.
    static func prepare() throws {
        _ = try library.get()
    }

    /// C = alpha·op(A)·op(B) + beta·C on row-major matrices, op(X) = Xᵀ when `trans…` is true.
    /// Dimensions were checked to fit BLAS's 32-bit integers when the layer was built.
    /// Never traps, even without OpenBLAS (see the guard).
    @inline(__always)
    static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                      c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let cblasSgemm else {
            // Not reached: every layer that multiplies called `prepare()` when it was built. Were it
            // reached, the product is NaN (a training step reports BND_ERR_NUMERIC), never a trap.
            for i in 0..<m { (c + i * ldc).update(repeating: .nan, count: n) }
            return
        }
        let noTrans = Int32(BNDBLAS_NO_TRANS), trans = Int32(BNDBLAS_TRANS)
        cblasSgemm(Int32(BNDBLAS_ROW_MAJOR), transA ? trans : noTrans, transB ? trans : noTrans,
                   Int32(truncatingIfNeeded: m), Int32(truncatingIfNeeded: n), Int32(truncatingIfNeeded: k),
                   alpha, a, Int32(truncatingIfNeeded: lda), b, Int32(truncatingIfNeeded: ldb), beta, c,
                   Int32(truncatingIfNeeded: ldc))
    }

    /// b = aᵀ (a: rows × columns, row-major), into rows `ldb` floats apart: OpenBLAS's tuned transpose (its
    /// `cblas_somatcopy` with alpha 1, which changes no value). Returns false, writing nothing, without
    /// OpenBLAS.
    static func transpose(rows: Int, columns: Int, a: UnsafePointer<Float>, lda: Int,
                          b: UnsafeMutablePointer<Float>, ldb: Int) -> Bool {
        guard let cblasSomatcopy else { return false }
        cblasSomatcopy(Int32(BNDBLAS_ROW_MAJOR), Int32(BNDBLAS_TRANS),
                       Int32(truncatingIfNeeded: rows), Int32(truncatingIfNeeded: columns), 1, a,
                       Int32(truncatingIfNeeded: lda), b, Int32(truncatingIfNeeded: ldb))
        return true
    }

}

/// libopenblas.so.0, loaded, with the functions bndrop calls.
struct OpenBLASLibrary: @unchecked Sendable {  // C function pointers into a library that is never unloaded
    let sgemm: bndblas_sgemm_fn
    let somatcopy: bndblas_somatcopy_fn
    private let getCoreName: bndblas_text_fn
    private let getConfig: bndblas_text_fn
    private let getThreads: bndblas_get_threads_fn
    private let setThreads: bndblas_set_threads_fn
    /// Who chose the core (see `RuntimeInfo.BLASCoreSource`).
    private(set) var source = RuntimeInfo.BLASCoreSource.openBLAS
    /// The core OpenBLAS chose by itself, when bndrop saw it do so.
    private(set) var detectedCore: String?

    var coreName: String { getCoreName().map { String(cString: $0) } ?? "" }
    var config: String { getConfig().map { String(cString: $0) } ?? "" }
    var threads: Int { Int(getThreads()) }

    static let soname = "libopenblas.so.0"
    private static let coreVariable = "OPENBLAS_CORETYPE"

    /// Test hooks, read once here, for bndrop's own tests; never set by anything else.
    /// `BNDROP_TEST_ASSUME_GENERIC_CORE=1`: decide as if OpenBLAS had reported "Prescott", so the path
    /// that replaces a generic core runs on any machine with AVX2. It changes bndrop's decision only:
    /// a set `OPENBLAS_CORETYPE` is respected all the same.
    private static let assumeGenericHook = "BNDROP_TEST_ASSUME_GENERIC_CORE"
    /// `BNDROP_TEST_OPENBLAS_NAME=<file>`: load that file instead of libopenblas.so.0 (a missing one
    /// tests what happens without OpenBLAS).
    private static let libraryNameHook = "BNDROP_TEST_OPENBLAS_NAME"

    /// Loads OpenBLAS and chooses its core:
    /// 1. A process that has loaded libopenblas.so.0 already keeps it as it is (`.host`): one OpenBLAS
    ///    per process, and its core was chosen when it loaded.
    /// 2. Otherwise OpenBLAS is loaded as it comes, and `BLASCoreChoice.decide` judges the core it
    ///    chose (or `OPENBLAS_CORETYPE` chose: then nothing changes).
    /// 3. When it chose a generic core on a CPU with AVX2 or AVX-512, bndrop unloads it and loads it
    ///    again with `OPENBLAS_CORETYPE` set to the better core for that one `dlopen`; the variable is
    ///    removed right after, so the process's environment is what it was. (Only a DYNAMIC_ARCH
    ///    build has other cores to choose from.)
    /// In every case OpenBLAS is then told to use one thread: `ThreadPool` parallelises around its
    /// single-threaded products, and the two must not compete for the cores.
    static func load() -> Result<OpenBLASLibrary, BNDError> {
        do {
            let library = try loadAndChoose()
            library.setThreads(1)
            return .success(library)
        } catch let error as BNDError {
            return .failure(error)
        } catch {
            return .failure(.internalError("loading OpenBLAS: \(error)"))
        }
    }

    private static func loadAndChoose() throws -> OpenBLASLibrary {
        let name = environment(libraryNameHook) ?? soname
        if let handle = dlopen(name, RTLD_NOW | RTLD_NOLOAD) {
            var library = try bind(handle, name)
            library.source = .host
            return library
        }
        let environmentCore = environment(coreVariable)
        let first = try open(name)
        var library = try bind(first, name)
        let detected = library.coreName
        let reported = environment(assumeGenericHook) == "1" ? "Prescott" : detected
        switch BLASCoreChoice.decide(cpu: .current, environmentCore: environmentCore, reportedCore: reported) {
        case .environment:
            library.source = .environment
            return library
        case .keep:
            library.detectedCore = detected
            return library
        case .use(let core):
            library.detectedCore = detected
            guard library.config.contains("DYNAMIC_ARCH") else { return library }
            dlclose(first)
            // Still loaded: someone else (another thread of the host) opened it meanwhile. It keeps its core.
            if let shared = dlopen(name, RTLD_NOW | RTLD_NOLOAD) {
                var kept = try bind(shared, name)
                kept.detectedCore = detected
                return kept
            }
            let second = try withTemporaryEnvironment(coreVariable, core) { try open(name) }
            var replaced = try bind(second, name)
            replaced.source = .bndrop
            replaced.detectedCore = detected
            return replaced
        }
    }

    /// `dlopen(name)`, or an `.io` error with the loader's reason.
    private static func open(_ name: String) throws -> UnsafeMutableRawPointer {
        guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
            throw BNDError.io("cannot load OpenBLAS (\(name)): \(loaderError()); bndrop needs it for its "
                              + "matrix products (Debian: apt-get install libopenblas0)")
        }
        return handle
    }

    /// The library's functions, or an `.io` error naming the one that is missing.
    private static func bind(_ handle: UnsafeMutableRawPointer, _ name: String) throws -> OpenBLASLibrary {
        func symbol<T>(_ symbol: String, as type: T.Type) throws -> T {
            guard let address = dlsym(handle, symbol) else {
                throw BNDError.io("\(name) has no \(symbol) (\(loaderError())): bndrop needs OpenBLAS")
            }
            return unsafeBitCast(address, to: type)
        }
        return OpenBLASLibrary(
            sgemm: try symbol("cblas_sgemm", as: bndblas_sgemm_fn.self),
            somatcopy: try symbol("cblas_somatcopy", as: bndblas_somatcopy_fn.self),
            getCoreName: try symbol("openblas_get_corename", as: bndblas_text_fn.self),
            getConfig: try symbol("openblas_get_config", as: bndblas_text_fn.self),
            getThreads: try symbol("openblas_get_num_threads", as: bndblas_get_threads_fn.self),
            setThreads: try symbol("openblas_set_num_threads", as: bndblas_set_threads_fn.self))
    }

    /// Runs `body` with `variable=value` in the environment, then removes it. Only called when the
    /// variable is not set. (`setenv` is not thread-safe against `getenv` in other threads; this runs
    /// at most once per process, and only on a CPU OpenBLAS misdetects.)
    private static func withTemporaryEnvironment<T>(_ variable: String, _ value: String,
                                                    _ body: () throws -> T) rethrows -> T {
        setenv(variable, value, 0)
        defer {
            if environment(variable) == value { unsetenv(variable) }
        }
        return try body()
    }

    private static func environment(_ variable: String) -> String? {
        getenv(variable).map { String(cString: $0) }
    }

    private static func loaderError() -> String {
        dlerror().map { String(cString: $0) } ?? "unknown reason"
    }
}

// bnd_get_runtime_info, bnd_set_num_threads and bnd_get_num_threads through their C declarations; and
// the loading of OpenBLAS end to end, in child processes (OpenBLAS is loaded once per process).
//
// A child is this test binary again, running only `testChildProcessReport`, with BNDROP_* variables
// added to a copy of this process's environment. Nothing here sets, unsets or changes any OPENBLAS_*
// variable: when OPENBLAS_CORETYPE is set, the children inherit it and must respect it.
import Foundation
import XCTest
import BNDrop
import BNDropCSupport

final class RuntimeCABITests: XCTestCase {
    private func ok(_ status: bnd_status, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, BND_OK, String(cString: bnd_last_error()), file: file, line: line)
    }

    /// A fixed-size C char array (imported as a tuple) as a String.
    private static func text<Tuple>(_ field: Tuple) -> String {
        withUnsafeBytes(of: field) { bytes in
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    private static func reserved(_ info: bnd_runtime_info) -> [Int32] {
        withUnsafeBytes(of: info.reserved) { Array($0.bindMemory(to: Int32.self)) }
    }

    func testRuntimeInfoMatchesTheSwiftAPI() throws {
        bnd_clear_last_error()
        XCTAssertEqual(bnd_get_runtime_info(nil), BND_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(String(cString: bnd_last_error()).contains("out_info"), String(cString: bnd_last_error()))

        var info = bnd_runtime_info()
        withUnsafeMutableBytes(of: &info) { bytes in for i in bytes.indices { bytes[i] = 0xAB } }
        ok(bnd_get_runtime_info(&info))
        let swift = try RuntimeInfo.current
        XCTAssertEqual(Self.text(info.blas_core), swift.blasCore)
        XCTAssertEqual(Self.text(info.blas_detected_core), swift.blasDetectedCore ?? "")
        XCTAssertEqual(Self.text(info.blas_config), String(swift.blasConfig.utf8.prefix(Int(BND_BLAS_CONFIG_MAX) - 1))!)
        XCTAssertEqual(info.blas_core_by_environment, swift.blasCoreSource == .environment ? 1 : 0)
        XCTAssertEqual(info.blas_core_by_bndrop, swift.blasCoreSource == .bndrop ? 1 : 0)
        XCTAssertEqual(info.blas_loaded_by_host, swift.blasCoreSource == .host ? 1 : 0)
        XCTAssertLessThanOrEqual(info.blas_core_by_environment + info.blas_core_by_bndrop + info.blas_loaded_by_host, 1)
        XCTAssertEqual(info.blas_threads, 1)
        XCTAssertEqual(info.threads, bnd_get_num_threads())
        XCTAssertEqual(info.simd_width, Int32(CPUFeatures.current.simdWidth))
        XCTAssertTrue([4, 8, 16].contains(info.simd_width))
        // The kernels' build is the best the CPU runs, never wider than the CPU's vectors; except the
        // test build whose AVX-512 code runs emulated on AVX2 (make test-avx512-emulated), 8 wide even
        // on a CPU with AVX-512.
        XCTAssertEqual(info.kernel_simd_width, Int32(try RuntimeInfo.current.kernelSimdWidth))
        if try RuntimeInfo.current.kernelInstructionSet == "avx512-emulated" {
            XCTAssertEqual(info.kernel_simd_width, 8)
        } else if CPUFeatures.current.avx512f {
            XCTAssertEqual(info.kernel_simd_width, 16)
        }
        XCTAssertLessThanOrEqual(info.kernel_simd_width, info.simd_width)
        XCTAssertEqual(info.subnormals_in_double, try RuntimeInfo.current.subnormalsInDouble ? 1 : 0)
        XCTAssertEqual(Self.reserved(info), [Int32](repeating: 0, count: 8), "reserved fields are 0")
        print("bnd_get_runtime_info: core \(Self.text(info.blas_core)), detected '\(Self.text(info.blas_detected_core))', "
              + "by_environment \(info.blas_core_by_environment), by_bndrop \(info.blas_core_by_bndrop), "
              + "loaded_by_host \(info.blas_loaded_by_host), blas_threads \(info.blas_threads), "
              + "threads \(info.threads), simd_width \(info.simd_width); \(Self.text(info.blas_config))")
    }

    func testThreadCount() {
        let original = bnd_get_num_threads()
        defer { ok(bnd_set_num_threads(original)) }
        XCTAssertEqual(Int(original), ThreadPool.shared.threadCount)
        XCTAssertTrue((1...256).contains(original))
        for bad: Int32 in [0, -1, 257, .min, .max] {
            bnd_clear_last_error()
            XCTAssertEqual(bnd_set_num_threads(bad), BND_ERR_INVALID_ARGUMENT, "\(bad)")
            let message = String(cString: bnd_last_error())
            XCTAssertTrue(message.hasPrefix("bnd_set_num_threads: ") && message.contains("\(bad)"), message)
            XCTAssertEqual(bnd_get_num_threads(), original, "a refused count changes nothing")
        }
        for good: Int32 in [1, 256, 3] {
            ok(bnd_set_num_threads(good))
            XCTAssertEqual(bnd_get_num_threads(), good)
            XCTAssertEqual(ThreadPool.shared.threadCount, Int(good))
            var info = bnd_runtime_info()
            ok(bnd_get_runtime_info(&info))
            XCTAssertEqual(info.threads, good)
        }
    }

    // MARK: - Child processes

    private static let childMarker = "BNDROP_TEST_RUNTIME_CHILD"
    private static let reportPrefix = "bndrop-runtime-child "

    /// Run as a child (see the file's comment): reports what the library says, one `key=value` a line.
    /// Skipped in a normal test run.
    func testChildProcessReport() throws {
        guard ProcessInfo.processInfo.environment[Self.childMarker] == "1" else {
            throw XCTSkip("runs only in the child processes of the other RuntimeCABITests")
        }
        func report(_ key: String, _ value: Any) { print("\(Self.reportPrefix)\(key)=\(value)") }
        var info = bnd_runtime_info()
        let status = bnd_get_runtime_info(&info)
        report("status", status.rawValue)
        report("error", String(cString: bnd_last_error()))
        report("core", Self.text(info.blas_core))
        report("detected", Self.text(info.blas_detected_core))
        report("by_environment", info.blas_core_by_environment)
        report("by_bndrop", info.blas_core_by_bndrop)
        report("loaded_by_host", info.blas_loaded_by_host)
        report("blas_threads", info.blas_threads)
        report("threads", bnd_get_num_threads())
        report("coretype_after", getenv("OPENBLAS_CORETYPE").map { String(cString: $0) } ?? "(unset)")
        report("forward", Self.forward().map { "\($0)" }.joined(separator: ","))
        var net: OpaquePointer?
        let shape: [Int64] = [3]
        if bnd_net_create(shape, 1, &net) == BND_OK {
            bnd_clear_last_error()
            report("add_linear_status", bnd_net_add_linear(net, 2).rawValue)
            report("add_linear_error", String(cString: bnd_last_error()))
            bnd_net_free(net)
        }
        fflush(nil)  // every C stream: the report must reach the pipe before the child exits
    }

    /// A seeded Linear -> ReLU -> Linear net's outputs for a fixed batch (its matrix products run in BLAS).
    private static func forward() -> [Float] {
        var net: OpaquePointer?
        let shape: [Int64] = [24]
        guard bnd_net_create(shape, 1, &net) == BND_OK else { return [] }
        defer { bnd_net_free(net) }
        guard bnd_net_seed(net, 11) == BND_OK, bnd_net_add_linear(net, 40) == BND_OK, bnd_net_add_relu(net) == BND_OK,
              bnd_net_add_linear(net, 5) == BND_OK else { return [] }
        let batch = 6
        let input = (0..<(batch * 24)).map { Float(($0 * 29) % 17) / 8 - 1 }
        var output = [Float](repeating: .nan, count: batch * 5)
        guard bnd_net_forward(net, input, Int64(batch), &output, output.count) == BND_OK else { return [] }
        return output
    }

    /// Runs `testChildProcessReport` in a child whose environment is this one plus `variables` (BNDROP_*
    /// names only; nil removes one) and returns its report.
    private func child(_ variables: [String: String?], file: StaticString = #filePath, line: UInt = #line) throws
        -> [String: String] {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        guard executable.hasSuffix(".xctest") else {
            throw XCTSkip("the test binary is \(executable), not an .xctest runner that can run one test")
        }
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childMarker] = "1"
        for (name, value) in variables {
            precondition(name.hasPrefix("BNDROP_"), "the children's OPENBLAS_* variables are this process's")
            environment[name] = value
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["\(String(reflecting: Self.self))/testChildProcessReport"]
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "the child failed", file: file, line: line)
        var report: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(Self.reportPrefix) {
            let pair = line.dropFirst(Self.reportPrefix.count).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair.count == 2 { report[String(pair[0])] = String(pair[1]) }
        }
        XCTAssertEqual(report["status"].flatMap { Int($0) } != nil, true, "no report from the child", file: file, line: line)
        return report
    }

    private static func floats(_ text: String?) -> [Float] {
        (text ?? "").split(separator: ",").compactMap { Float(String($0)) }
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath,
                             line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        XCTAssertFalse(a.isEmpty, message, file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y)), message, file: file, line: line)
        }
    }

    /// A generic core (forced by the test hook) is replaced by the one the CPU allows, for the dlopen only;
    /// a set OPENBLAS_CORETYPE is respected instead.
    func testGenericCoreIsReplacedInAChildProcess() throws {
        let here = try RuntimeInfo.current
        guard here.blasCoreSource != .host else {
            throw XCTSkip("this test process loaded OpenBLAS itself; its children would too")
        }
        let report = try child(["BNDROP_TEST_ASSUME_GENERIC_CORE": "1"])
        print("child with BNDROP_TEST_ASSUME_GENERIC_CORE=1: \(report.sorted { $0.key < $1.key }.filter { $0.key != "forward" })")
        XCTAssertEqual(report["status"], "\(BND_OK.rawValue)", report["error"] ?? "")
        XCTAssertEqual(report["loaded_by_host"], "0")
        XCTAssertEqual(report["blas_threads"], "1")
        if let environmentCore = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }) {
            XCTAssertEqual(report["by_environment"], "1", "OPENBLAS_CORETYPE is respected")
            XCTAssertEqual(report["by_bndrop"], "0")
            XCTAssertEqual(report["detected"], "")
            XCTAssertEqual(report["coretype_after"], environmentCore, "the environment is left as it was")
        } else {
            XCTAssertEqual(report["coretype_after"], "(unset)", "OPENBLAS_CORETYPE is removed after the dlopen")
            XCTAssertEqual(report["by_environment"], "0")
            switch BLASCoreChoice.decide(cpu: .current, environmentCore: nil, reportedCore: "Prescott") {
            case .use(let core) where here.blasConfig.contains("DYNAMIC_ARCH"):
                XCTAssertEqual(report["by_bndrop"], "1")
                XCTAssertEqual(report["core"]?.lowercased(), core.lowercased())
                XCTAssertEqual(report["detected"], here.blasDetectedCore, "OpenBLAS's own choice is reported")
            default:
                XCTAssertEqual(report["by_bndrop"], "0", "nothing better for this CPU (or this OpenBLAS build)")
                XCTAssertEqual(report["core"], here.blasCore)
            }
        }
        assertClose(Self.floats(report["forward"]), Self.forward(), "the child's products match this process's")
    }

    /// Without OpenBLAS: a clear BND_ERR_IO from bnd_get_runtime_info, and products that are still right.
    func testMissingOpenBLASIsAStatusNotACrash() throws {
        let name = "libbndrop-test-no-such-blas.so.0"
        let report = try child(["BNDROP_TEST_OPENBLAS_NAME": name])
        XCTAssertEqual(report["status"], "\(BND_ERR_IO.rawValue)")
        let message = report["error"] ?? ""
        XCTAssertTrue(message.hasPrefix("bnd_get_runtime_info: cannot load OpenBLAS") && message.contains(name), message)
        XCTAssertEqual(report["core"], "", "nothing is written on failure")
        // A layer that needs BLAS says so when it is added, instead of computing slowly later.
        XCTAssertEqual(report["add_linear_status"], "\(BND_ERR_IO.rawValue)")
        let addMessage = report["add_linear_error"] ?? ""
        XCTAssertTrue(addMessage.hasPrefix("bnd_net_add_linear: cannot load OpenBLAS") && addMessage.contains(name),
                      addMessage)
        XCTAssertEqual(report["forward"], "", "no net with a Linear layer could be built")
    }

    /// The default thread count: BNDROP_NUM_THREADS when it is 1...256, else the CPUs the process may use.
    func testDefaultThreadCountInChildProcesses() throws {
        let affinity = try child(["BNDROP_NUM_THREADS": nil])["threads"]
        XCTAssertNotNil(affinity.flatMap { Int($0) }.map { $0 >= 1 })
        XCTAssertEqual(try child(["BNDROP_NUM_THREADS": "3"])["threads"], "3")
        XCTAssertEqual(try child(["BNDROP_NUM_THREADS": "0"])["threads"], affinity, "out of range: ignored")
        XCTAssertEqual(try child(["BNDROP_NUM_THREADS": "many"])["threads"], affinity, "not a number: ignored")
    }
}

import XCTest
import Foundation
import Glibc
@preconcurrency import BNDrop

/// Checkpoints through the Swift API: round trips, training that resumes bit for bit, atomic saving.
final class CheckpointTests: TemporaryFolderTestCase {
    /// {4} -> Linear(16) -> BatchNorm1d -> ReLU -> Dropout(0.3) -> Linear(3).
    private func mlp(seed: UInt64 = 7) throws -> Sequential {
        let net = try Sequential(sampleShape: [4], seed: seed)
        try net.addLinear(16)
        try net.addBatchNorm()
        try net.addReLU()
        try net.addDropout(0.3)
        try net.addLinear(3)
        return net
    }

    /// {1, 8, 8} -> Conv2d(3, 3, padding 1) -> BatchNorm2d (momentum nil) -> ReLU -> MaxPool2d(2) -> Conv2d(4, 3,
    /// stride 2) -> AvgPool2d(1) -> Flatten -> Dropout(0.5) -> Linear(5) -> BatchNorm1d (eps 1e-3, no affine).
    private func cnn(seed: UInt64 = 11) throws -> Sequential {
        let net = try Sequential(sampleShape: [1, 8, 8], seed: seed)
        try net.addConv2d(outChannels: 3, kernelSize: 3, stride: 1, padding: 1)
        try net.addBatchNorm(momentum: nil)
        try net.addReLU()
        try net.addMaxPool2d(kernelSize: 2)
        try net.addConv2d(outChannels: 4, kernelSize: 3, stride: 2)
        try net.addAvgPool2d(kernelSize: 1, stride: 1)
        try net.addFlatten()
        try net.addDropout(0.5)
        try net.addLinear(5)
        try net.addBatchNorm(eps: 1e-3, momentum: 0.2, affine: false)
        return net
    }

    /// Batch `step` of `batch` samples for a net taking `inputCount` values: deterministic, different per step.
    private func batch(_ step: Int, batch: Int, inputCount: Int, classes: Int) -> ([Float], [Int32]) {
        var random = SeededRandom(seed: UInt64(1000 + step))
        let input = (0..<(batch * inputCount)).map { _ in random.nextNormal() }
        let labels = (0..<batch).map { Int32(($0 + step) % classes) }
        return (input, labels)
    }

    private func train(_ net: Sequential, _ optimizer: Optimizer, steps: Range<Int>) throws {
        for step in steps {
            let (input, labels) = batch(step, batch: 8, inputCount: net.inputCount, classes: net.outputCount)
            _ = try net.trainStep(input: input, labels: labels, optimizer: optimizer)
        }
    }

    /// Every tensor of both nets, bit for bit.
    private func assertSameState(_ a: Sequential, _ b: Sequential, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.stateDict.map(\.name), b.stateDict.map(\.name), what, file: file, line: line)
        for (name, _) in a.stateDict {
            XCTAssertEqual(try a.tensor(name).map(\.bitPattern), try b.tensor(name).map(\.bitPattern), "\(what): \(name)",
                           file: file, line: line)
        }
    }

    // MARK: Round trips

    func testSaveAndLoadGiveTheSameNetwork() throws {
        for (label, net) in [("mlp", try mlp()), ("cnn", try cnn())] {
            let sgd = try SGD(parameters: net.parameters, learningRate: 0.05, momentum: 0.9)
            try train(net, sgd, steps: 0..<3)   // weights and running statistics away from their initial values
            let file = path("\(label).safetensors")
            try net.save(to: file)
            let loaded = try Sequential(contentsOf: file)
            XCTAssertEqual(loaded.sampleShape, net.sampleShape)
            XCTAssertEqual(loaded.seed, net.seed)
            XCTAssertEqual(loaded.layers.map(\.typeName), net.layers.map(\.typeName))
            XCTAssertEqual(loaded.layers.map(\.outputShape), net.layers.map(\.outputShape))
            XCTAssertTrue(loaded.isTraining)
            try assertSameState(net, loaded, label)
            // Saving the loaded net writes the very same bytes.
            try loaded.save(to: path("\(label)-again.safetensors"))
            XCTAssertEqual(FileManager.default.contents(atPath: file), FileManager.default.contents(atPath: path("\(label)-again.safetensors")))
            // Train-mode outputs agree too: the dropout generators continue where they were.
            let (input, _) = batch(99, batch: 8, inputCount: net.inputCount, classes: net.outputCount)
            XCTAssertEqual(try net.forward(input, batch: 8).map(\.bitPattern), try loaded.forward(input, batch: 8).map(\.bitPattern), label)
            net.isTraining = false
            loaded.isTraining = false
            XCTAssertEqual(try net.forward(input, batch: 8).map(\.bitPattern), try loaded.forward(input, batch: 8).map(\.bitPattern), label)
            // The mode is saved.
            try net.save(to: file)
            XCTAssertFalse(try Sequential(contentsOf: file).isTraining)
            // loadWeights into a net built with another seed gives the same eval outputs.
            let rebuilt = label == "mlp" ? try mlp(seed: 123) : try cnn(seed: 123)
            try rebuilt.loadWeights(from: file)
            rebuilt.isTraining = false
            try assertSameState(net, rebuilt, "\(label) loadWeights")
            XCTAssertEqual(try net.forward(input, batch: 8), try rebuilt.forward(input, batch: 8))
        }
    }

    func testEmptyNetworkAndCumulativeBatchNormRoundTrip() throws {
        let empty = try Sequential(sampleShape: [2, 3], seed: UInt64.max)
        try empty.save(to: path("empty.safetensors"))
        let loaded = try Sequential(contentsOf: path("empty.safetensors"))
        XCTAssertEqual(loaded.sampleShape, [2, 3])
        XCTAssertEqual(loaded.seed, UInt64.max)
        XCTAssertTrue(loaded.layers.isEmpty)

        let net = try Sequential(sampleShape: [2, 5])
        try net.addBatchNorm(eps: 0.1, momentum: nil, affine: false, trackRunningStats: true)
        try net.addBatchNorm(eps: 3e-7, momentum: 0.3, affine: true, trackRunningStats: false)
        try net.addFlatten()
        try net.addDropout(0)
        try net.addDropout(1)
        _ = try net.forward((0..<40).map { Float($0 % 7) }, batch: 4)
        try net.save(to: path("bn.safetensors"))
        let copy = try Sequential(contentsOf: path("bn.safetensors"))
        let bn0 = try XCTUnwrap(copy.layers[0] as? BatchNorm), bn1 = try XCTUnwrap(copy.layers[1] as? BatchNorm)
        XCTAssertEqual(bn0.eps, 0.1)
        XCTAssertNil(bn0.momentum)
        XCTAssertFalse(bn0.affine)
        XCTAssertEqual(bn1.eps, 3e-7)
        XCTAssertEqual(bn1.momentum, 0.3)
        XCTAssertFalse(bn1.trackRunningStats)
        XCTAssertEqual(try copy.tensor("0.num_batches_tracked"), [1])
        try assertSameState(net, copy, "batchnorm variants")
    }

    /// Train N steps, save net and optimizer, load both into fresh objects, train M more: the same bits as
    /// N+M steps without a stop (dropout masks, BatchNorm statistics, momentum and Adam moments included).
    func testTrainingResumesBitForBit() throws {
        let optimizers: [(String, ([Parameter]) throws -> Optimizer)] = [
            ("SGD momentum", { try SGD(parameters: $0, learningRate: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3) }),
            ("SGD nesterov", { try SGD(parameters: $0, learningRate: 0.05, momentum: 0.8, nesterov: true) }),
            ("SGD plain", { try SGD(parameters: $0, learningRate: 0.05) }),
            ("Adam", { try Adam(parameters: $0, learningRate: 0.01, weightDecay: 1e-3) }),
            ("AdamW", { try Adam.adamW(parameters: $0, learningRate: 0.01) }),
        ]
        for (label, make) in optimizers {
            for (netLabel, build) in [("mlp", { try self.mlp() }), ("cnn", { try self.cnn() })] {
                let what = "\(label), \(netLabel)"
                let straight = try build()
                let straightOptimizer = try make(straight.parameters)
                try train(straight, straightOptimizer, steps: 0..<7)

                let first = try build()
                let firstOptimizer = try make(first.parameters)
                try train(first, firstOptimizer, steps: 0..<4)
                try first.save(to: path("net.safetensors"))
                try firstOptimizer.save(to: path("opt.safetensors"))

                let resumed = try Sequential(contentsOf: path("net.safetensors"))
                let resumedOptimizer = try make(resumed.parameters)
                try resumedOptimizer.load(from: path("opt.safetensors"))
                try train(resumed, resumedOptimizer, steps: 4..<7)
                try assertSameState(straight, resumed, what)
                if let adam = resumedOptimizer as? Adam { XCTAssertEqual(adam.stepCount, 7, what) }
            }
        }
    }

    func testOptimizerStateBeforeTheFirstStepAndIntoAnotherOptimizer() throws {
        let net = try mlp()
        let adam = try Adam(parameters: net.parameters)
        try adam.save(to: path("fresh.safetensors"))          // no state yet: no tensors
        let trained = try Adam(parameters: net.parameters)
        try train(net, trained, steps: 0..<2)
        try trained.load(from: path("fresh.safetensors"))     // back to no state
        XCTAssertEqual(trained.stepCount, 0)

        try trained.save(to: path("adam.safetensors"))
        let sgd = try SGD(parameters: net.parameters, momentum: 0.9)
        assertThrowsBNDError(try sgd.load(from: path("adam.safetensors")), .invalidArgument,
                             containing: "holds Adam state but the optimizer is SGD")
        let adamW = try Adam.adamW(parameters: net.parameters)
        assertThrowsBNDError(try adamW.load(from: path("adam.safetensors")), .invalidArgument, containing: "AdamW")
        // Another net shape.
        let other = try Sequential(sampleShape: [4])
        try other.addLinear(5)
        assertThrowsBNDError(try Adam(parameters: other.parameters).load(from: path("adam.safetensors")), .shape,
                             containing: "2 in the optimizer")
        // SGD momentum buffers into an SGD without momentum.
        let withMomentum = try SGD(parameters: net.parameters, momentum: 0.9)
        try train(net, withMomentum, steps: 0..<1)
        try withMomentum.save(to: path("sgd.safetensors"))
        assertThrowsBNDError(try SGD(parameters: net.parameters).load(from: path("sgd.safetensors")), .invalidArgument,
                             containing: "momentum 0")
        // A net's checkpoint is not an optimizer's, and the other way round.
        try net.save(to: path("net.safetensors"))
        assertThrowsBNDError(try withMomentum.load(from: path("net.safetensors")), .format,
                             containing: "a network checkpoint")
        assertThrowsBNDError(try Sequential(contentsOf: path("sgd.safetensors")), .format,
                             containing: "an optimizer checkpoint")
    }

    // MARK: Whole-number state

    /// Overwrites every element of the tensors of safetensors file `path` whose name passes `select` and
    /// whose dtype is `dtype` with `element` (its little-endian bytes; the header's JSON gives offsets).
    private func patch(_ path: String, dtype: String, _ element: [UInt8], where select: (String) -> Bool = { _ in true }) throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let headerSize = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerSize)])) as? [String: Any])
        var patched = 0
        for (name, entry) in header where name != "__metadata__" && select(name) {
            guard let entry = entry as? [String: Any], entry["dtype"] as? String == dtype,
                  let offsets = entry["data_offsets"] as? [Int] else { continue }
            for at in Swift.stride(from: offsets[0], to: offsets[1], by: element.count) {
                for (k, byte) in element.enumerated() { bytes[8 + headerSize + at + k] = byte }
            }
            patched += 1
        }
        XCTAssertGreaterThan(patched, 0, "no \(dtype) tensor selected in \(path)")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func setEveryInt64(in path: String, to value: Int64) throws {
        try patch(path, dtype: "I64", (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: value) >> (8 * $0)) })
    }

    private func floatBytes(_ value: Float) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value.bitPattern >> (8 * $0)) }
    }

    /// Optimizer state no step makes is refused at load (before, the next step turned every parameter
    /// into NaN and reported success); the optimizer keeps its state. An infinite mean of squares, which a
    /// finite gradient's square can overflow to, loads.
    func testOptimizerStateThatNoStepMakesIsRefused() throws {
        let net = try mlp()
        let adam = try Adam(parameters: net.parameters)
        try train(net, adam, steps: 0..<2)
        try adam.save(to: path("adam.safetensors"))
        let original = try Data(contentsOf: URL(fileURLWithPath: path("adam.safetensors")))
        let cases: [(String, Float, String)] = [("exp_avg_sq", -1, "a mean of squares is >= 0"),
                                                ("exp_avg_sq", -.infinity, "a mean of squares is >= 0"),
                                                ("exp_avg", .nan, "holds NaN"), ("exp_avg_sq", .nan, "holds NaN")]
        for (tensor, value, message) in cases {
            try original.write(to: URL(fileURLWithPath: path("bad.safetensors")))
            try patch(path("bad.safetensors"), dtype: "F32", floatBytes(value)) { $0.hasSuffix(".\(tensor)") }
            assertThrowsBNDError(try adam.load(from: path("bad.safetensors")), .format, containing: message,
                                 context: "\(tensor) \(value)")
        }
        try original.write(to: URL(fileURLWithPath: path("inf.safetensors")))
        try patch(path("inf.safetensors"), dtype: "F32", floatBytes(.infinity)) { $0.hasSuffix(".exp_avg_sq") }
        try adam.load(from: path("inf.safetensors"))
        // After the refusals and that load, the saved state loads back and training goes on as before.
        try adam.load(from: path("adam.safetensors"))
        XCTAssertEqual(adam.stepCount, 2)

        let sgd = try SGD(parameters: net.parameters, momentum: 0.9)
        try train(net, sgd, steps: 0..<1)
        try sgd.save(to: path("sgd.safetensors"))
        try patch(path("sgd.safetensors"), dtype: "F32", floatBytes(.nan))
        assertThrowsBNDError(try sgd.load(from: path("sgd.safetensors")), .format,
                             containing: "momentum_buffer' holds NaN")
    }

    /// num_batches_tracked is an int64, as in PyTorch: read and written exactly through `tensorInt64`, kept
    /// exactly through files, and a count at Int64.max (which a file can hold) stays there instead of
    /// overflowing; so does Adam's step.
    func testBatchAndStepCountsAreExactAndNeverOverflow() throws {
        let net = try mlp()
        let name = "1.num_batches_tracked"
        try net.setTensorInt64(name, (1 << 24) + 1)
        XCTAssertEqual(try net.tensorInt64(name), 16_777_217)
        XCTAssertEqual(try net.tensor(name), [16_777_216], "as a float it rounds (documented)")
        try net.save(to: path("counted.safetensors"))
        XCTAssertEqual(try Sequential(contentsOf: path("counted.safetensors")).tensorInt64(name), 16_777_217)
        for (bad, what) in [("0.weight", "float32 tensor"), ("1.running_mean", "float32 tensor"), ("9.x", "no tensor named")] {
            assertThrowsBNDError(try net.tensorInt64(bad), .invalidArgument, containing: what)
        }
        assertThrowsBNDError(try net.setTensorInt64(name, -1), .invalidArgument, containing: "non-negative")
        XCTAssertEqual(try net.tensorInt64(name), 16_777_217, "a refused value changes nothing")

        // At the largest count, training goes on (momentum nil too) and the count stays.
        let adam = try Adam(parameters: net.parameters)
        try train(net, adam, steps: 0..<1)
        try adam.save(to: path("adam.safetensors"))
        try setEveryInt64(in: path("adam.safetensors"), to: .max)
        try adam.load(from: path("adam.safetensors"))
        XCTAssertEqual(adam.stepCount, Int.max)
        let cumulative = try cnn()
        for target in [net, cumulative] {
            try target.setTensorInt64(name, .max)
            let optimizer = target === net ? adam : try Adam(parameters: cumulative.parameters)
            try train(target, optimizer, steps: 1..<3)
            XCTAssertEqual(try target.tensorInt64(name), .max)
            XCTAssertTrue(try target.tensor("1.running_mean").allSatisfy(\.isFinite))
        }
        XCTAssertEqual(adam.stepCount, Int.max)
        XCTAssertTrue(try net.tensor("0.weight").allSatisfy(\.isFinite))
    }

    // MARK: Atomic saving

    private func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    /// A save that fails after K bytes (at every stage of the file) leaves the previous file byte for byte
    /// and no temporary file.
    func testAFailedSaveLeavesThePreviousFile() throws {
        let old = try mlp(seed: 1), new = try cnn()
        let file = path("model.safetensors")
        try old.save(to: file)
        let before = try XCTUnwrap(FileManager.default.contents(atPath: file))
        try new.save(to: path("probe.safetensors"))
        let newSize = try XCTUnwrap(FileManager.default.contents(atPath: path("probe.safetensors"))).count
        try FileManager.default.removeItem(atPath: path("probe.safetensors"))
        defer { unsetenv("BNDROP_TEST_SAVE_FAIL_AFTER") }
        for k in [0, 1, 7, 8, 9, 100, newSize / 2, newSize - 4, newSize - 1] {
            setenv("BNDROP_TEST_SAVE_FAIL_AFTER", "\(k)", 1)
            assertThrowsBNDError(try new.save(to: file), .io, containing: "No space left on device", "is unchanged",
                                 context: "fail after \(k) bytes")
            XCTAssertEqual(FileManager.default.contents(atPath: file), before, "fail after \(k) bytes")
            XCTAssertEqual(try entries(), ["model.safetensors"], "fail after \(k) bytes: a temporary file remains")
        }
        setenv("BNDROP_TEST_SAVE_FAIL_AFTER", "\(newSize)", 1)   // exactly enough
        try new.save(to: file)
        unsetenv("BNDROP_TEST_SAVE_FAIL_AFTER")
        XCTAssertEqual(try Sequential(contentsOf: file).layers.count, new.layers.count)
        XCTAssertEqual(try entries(), ["model.safetensors"])
    }

    /// The same with a real failure of the kernel: a file size limit (RLIMIT_FSIZE) makes write() fail.
    func testAFileSizeLimitLeavesThePreviousFile() throws {
        let file = path("model.safetensors")
        try mlp().save(to: file)
        let before = try XCTUnwrap(FileManager.default.contents(atPath: file))
        var saved = rlimit()
        XCTAssertEqual(getrlimit(RLIMIT_FSIZE_VALUE, &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 100
        XCTAssertEqual(setrlimit(RLIMIT_FSIZE_VALUE, &limited), 0)
        let result = Result { try cnn().save(to: file) }
        setrlimit(RLIMIT_FSIZE_VALUE, &saved)
        signal(SIGXFSZ, previousHandler)
        assertThrowsBNDError(try result.get(), .io, containing: "File too large")
        XCTAssertEqual(FileManager.default.contents(atPath: file), before)
        XCTAssertEqual(try entries(), ["model.safetensors"])
    }

    private var RLIMIT_FSIZE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_FSIZE.rawValue) }

    func testSavingWhereNoFileCanBe() throws {
        let net = try mlp()
        for target in [path("no/such/folder/x.safetensors"), folder.path, folder.path + "/", ""] {
            assertThrowsBNDError(try net.save(to: target), .io, context: target)
        }
        XCTAssertEqual(try entries(), [])
        // Over an existing file: replaced whole.
        try net.save(to: path("a"))
        try cnn().save(to: path("a"))
        XCTAssertEqual(try Sequential(contentsOf: path("a")).sampleShape, [1, 8, 8])
        XCTAssertEqual(try entries(), ["a"])
    }

    /// What is at the path decides: a FIFO (or a device) is refused and stays what it was; a symbolic link
    /// is written through (the link stays, its file is replaced); a name as long as the folder allows saves
    /// (the temporary file's name does not grow with it).
    func testSavingOverWhatIsAlreadyThere() throws {
        let net = try mlp()
        XCTAssertEqual(mkfifo(path("fifo"), 0o600), 0)
        assertThrowsBNDError(try net.save(to: path("fifo")), .io, containing: "not a regular file")
        var info = stat()
        XCTAssertEqual(lstat(path("fifo"), &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "the FIFO is still a FIFO")

        try cnn().save(to: path("real.safetensors"))
        XCTAssertEqual(symlink("real.safetensors", path("link.safetensors")), 0)
        try net.save(to: path("link.safetensors"))
        XCTAssertEqual(lstat(path("link.safetensors"), &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFLNK, "the link is still a link")
        XCTAssertEqual(try Sequential(contentsOf: path("real.safetensors")).sampleShape, [4], "its file was replaced")
        XCTAssertEqual(symlink("missing", path("dangling")), 0)
        assertThrowsBNDError(try net.save(to: path("dangling")), .io, containing: "symbolic link to nothing")
        // A link to a file whose name is not UTF-8 (Latin-1 "m\u{E9}.bnd"): refused, the file unchanged, no
        // other file written (read as a String, the target's name became "m\u{FFFD}.bnd", another file).
        let latin1: [CChar] = Array("m".utf8CString.dropLast()) + [CChar(bitPattern: 0xE9)] + Array(".bnd".utf8CString)
        let latin1Path = Array((folder.path + "/").utf8CString.dropLast()) + latin1
        let fd = open(latin1Path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(write(fd, "old", 3), 3)
        XCTAssertEqual(close(fd), 0)
        XCTAssertEqual(symlink(latin1, path("latin1-link")), 0)
        let before = try entries().count
        assertThrowsBNDError(try net.save(to: path("latin1-link")), .io, containing: "not valid UTF-8", "nothing was written")
        XCTAssertEqual(try entries().count, before, "a file was written")
        var buffer = [UInt8](repeating: 0, count: 8)
        let reader = open(latin1Path, O_RDONLY)
        XCTAssertEqual(read(reader, &buffer, 8), 3, "the link's file changed")
        close(reader)
        XCTAssertEqual(unlink(latin1Path), 0)
        XCTAssertEqual(unlink(path("latin1-link")), 0)

        // Loading from a FIFO is refused at once (it waited for a writer forever).
        assertThrowsBNDError(try Sequential(contentsOf: path("fifo")), .io, containing: "not a regular file")
        // Temporary files a killed process of the same pid left behind do not stop a save: 15 of every 16
        // numbers this process's saves can take next are taken by such files.
        let stale = (0..<4096).filter { $0 % 16 != 15 }.map { path(".bndrop-\(getpid())-\($0).tmp") }
        for name in stale { XCTAssertEqual(close(open(name, O_WRONLY | O_CREAT, 0o600)), 0) }
        try net.save(to: path("after-stale.safetensors"))
        XCTAssertEqual(try Sequential(contentsOf: path("after-stale.safetensors")).sampleShape, [4])
        for name in stale { unlink(name) }
        unlink(path("after-stale.safetensors"))

        let longName = String(repeating: "a", count: 250)
        try net.save(to: path(longName))
        XCTAssertEqual(try Sequential(contentsOf: path(longName)).sampleShape, [4])
        XCTAssertEqual(try entries(), ["dangling", "fifo", longName, "link.safetensors", "real.safetensors"].sorted())
    }
}

import Foundation
import XCTest
@_spi(Testing) import BNDrop

/// The same seed gives bit-identical training for every thread count: work is split by the size of the
/// problem, never by the number of threads, and partial sums are added in a fixed order.
final class DeterminismTests: XCTestCase {
    /// Trains `net` for a few steps on fixed data and returns every tensor, gradient and output.
    private func trainedState(_ build: () throws -> Sequential, input: [Float], labels: [Int32],
                              threads: Int) throws -> [String: [UInt32]] {
        let original = ThreadPool.shared.threadCount
        try ThreadPool.shared.setThreadCount(threads)
        defer { try? ThreadPool.shared.setThreadCount(original) }
        let net = try build()
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.05, momentum: 0.9)
        var state: [String: [UInt32]] = [:]
        var losses: [Float] = []
        for _ in 0..<4 { losses.append(try net.trainStep(input: input, labels: labels, optimizer: optimizer)) }
        state["losses"] = losses.map(\.bitPattern)
        for (name, _) in net.stateDict { state[name] = try net.tensor(name).map(\.bitPattern) }
        for (name, entry) in net.stateDict {
            if case .parameter = entry.storage { state["grad " + name] = try net.gradient(name).map(\.bitPattern) }
        }
        net.isTraining = false
        state["eval output"] = try net.forward(input, batch: labels.count).map(\.bitPattern)
        return state
    }

    private func assertSameForEveryThreadCount(_ name: String, _ build: () throws -> Sequential, sampleSize: Int,
                                               batch: Int,
                                               value: (inout SeededRandom) -> Float = { $0.nextNormal() }) throws {
        var random = SeededRandom(seed: 11)
        let input = (0..<(batch * sampleSize)).map { _ in value(&random) }
        let labels = (0..<batch).map { Int32($0 % 10) }
        let reference = try trainedState(build, input: input, labels: labels, threads: 1)
        XCTAssertGreaterThan(reference.count, 4)
        for threads in [2, 3, 4, 7] {
            let state = try trainedState(build, input: input, labels: labels, threads: threads)
            XCTAssertEqual(state.keys.sorted(), reference.keys.sorted())
            for (key, bits) in reference {
                XCTAssertEqual(state[key], bits, "\(name): '\(key)' differs between 1 and \(threads) threads")
            }
        }
    }

    /// The article's MLP 784-48-24-10 with BatchNorm1d, and Dropout(`dropout`) after the first ReLU when given.
    private func articleMLP(seed: UInt64, dropout: Float?) throws -> Sequential {
        let net = try Sequential(sampleShape: [784], seed: seed)
        try net.addLinear(48)
        try net.addBatchNorm()
        try net.addReLU()
        if let dropout { try net.addDropout(dropout) }
        try net.addLinear(24)
        try net.addBatchNorm()
        try net.addReLU()
        try net.addLinear(10)
        return net
    }

    func testMLPWithBatchNormAndDropoutIsBitIdenticalForAnyThreadCount() throws {
        try assertSameForEveryThreadCount("MLP", { try self.articleMLP(seed: 5, dropout: 0.2) },
                                          sampleSize: 784, batch: 300)  // 300 rows: several row blocks, the last one partial
    }

    /// The dropout experiment's 100→100 layer: its input (after ReLU and Dropout) and its output gradient
    /// (through ReLU) are mostly zeros, so its products skip them (on AVX-512 CPUs).
    func testMLPWhoseProductsSkipZerosIsBitIdenticalForAnyThreadCount() throws {
        try assertSameForEveryThreadCount("MLP skipping zeros", {
            let net = try Sequential(sampleShape: [100], seed: 9)
            try net.addLinear(100)
            try net.addReLU()
            try net.addDropout(0.2)
            try net.addLinear(100)
            try net.addReLU()
            try net.addLinear(10)
            return net
        }, sampleSize: 100, batch: 150)  // 150 rows: two row blocks; 150×100 inputs within the size limit
    }

    /// The article's MLP on image-like inputs, half of them zero: its 784→48 product skips the zeros
    /// with the rows taken in groups (on AVX-512 CPUs), over three row blocks of a batch of 300.
    func testMLPOnImagesWithZerosIsBitIdenticalForAnyThreadCount() throws {
        try assertSameForEveryThreadCount("MLP on mostly-zero images", { try self.articleMLP(seed: 6, dropout: nil) },
                                          sampleSize: 784, batch: 300,
                                          value: { random in random.nextUnitFloat() < 0.5 ? 0 : random.nextUnitFloat() })
    }

    /// Layers with one input or one output (their own outer and dot products, one taking in a ReLU).
    func testOneInputAndOneOutputLayersAreBitIdenticalForAnyThreadCount() throws {
        try assertSameForEveryThreadCount("one input, one output", {
            let net = try Sequential(sampleShape: [1], seed: 7)
            try net.addLinear(100)
            try net.addReLU()
            try net.addLinear(1)
            try net.addReLU()
            try net.addLinear(10)
            return net
        }, sampleSize: 1, batch: 300)
    }

    func testCNNWithBatchNorm2dIsBitIdenticalForAnyThreadCount() throws {
        try assertSameForEveryThreadCount("CNN", {
            let net = try Sequential(sampleShape: [1, 28, 28], seed: 6)
            try net.addConv2d(outChannels: 3, kernelSize: 5)
            try net.addReLU()
            try net.addAvgPool2d(kernelSize: 2)
            try net.addConv2d(outChannels: 6, kernelSize: 3)
            try net.addBatchNorm()
            try net.addReLU()
            try net.addMaxPool2d(kernelSize: 2)
            try net.addFlatten()
            try net.addLinear(25)
            try net.addReLU()
            try net.addLinear(10)
            return net
        }, sampleSize: 784, batch: 37)  // 37 samples: several sample groups, the last one partial
    }

    /// BatchNorm2d over several blocks of samples, its sums per block added in block order, whichever
    /// threads took the blocks.
    func testBatchNorm2dOverSeveralBlocksIsBitIdenticalForAnyThreadCount() throws {
        let batch = 150
        let perBlock = BatchNorm.samplesPerBlock(batch: batch, sampleValues: 4 * 16 * 16)
        XCTAssertGreaterThanOrEqual((batch + perBlock - 1) / perBlock, 3, "the batch spans several blocks")
        try assertSameForEveryThreadCount("BatchNorm2d", {
            let net = try Sequential(sampleShape: [4, 16, 16], seed: 9)
            try net.addBatchNorm()
            try net.addReLU()
            try net.addAvgPool2d(kernelSize: 2)
            try net.addFlatten()
            try net.addLinear(10)
            return net
        }, sampleSize: 4 * 16 * 16, batch: batch)
    }

    /// PyTorch's wider arguments: dilated and grouped convolutions (im2col, a GEMM per group), padded
    /// ceil-mode pooling (the general loops).
    func testDilatedGroupedConvolutionsAndPaddedPoolingAreBitIdenticalForAnyThreadCount() throws {
        try assertSameForEveryThreadCount("CNN with dilation, groups, padded pooling", {
            let net = try Sequential(sampleShape: [2, 20, 20], seed: 8)
            try net.addConv2d(outChannels: 6, kernelSize: 3, padding: 2, dilation: 2, groups: 2)
            try net.addBatchNorm()
            try net.addReLU()
            try net.addMaxPool2d(kernelSize: 3, stride: 2, padding: 1, ceilMode: true)
            try net.addConv2d(outChannels: 6, kernelSize: 3, stride: 2, groups: 6)
            try net.addAvgPool2d(kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false)
            try net.addFlatten()
            try net.addLinear(10)
            return net
        }, sampleSize: 800, batch: 21)
    }

    /// Every task of a region runs once. From both ends, the caller's tasks are a run from the first one
    /// and the workers' the rest, so that consecutive layers split alike give each thread the rows it had;
    /// in order, every thread takes the next task.
    func testTasksAreClaimedFromBothEnds() throws {
        let pool = ThreadPool.shared
        let original = pool.threadCount
        defer { try? pool.setThreadCount(original) }
        try pool.setThreadCount(2)
        var sawWorker = false
        for round in 0..<200 where round < 20 || !sawWorker {
            let threads = pool.threadsRunningTasks(64, fromBothEnds: true, microseconds: 20)
            XCTAssertFalse(threads.contains(-1), "round \(round): a task did not run")
            XCTAssertTrue(threads.allSatisfy { $0 == 0 || $0 == 1 }, "round \(round): \(threads)")
            let callerTasks = threads.prefix { $0 == 0 }.count
            XCTAssertTrue(threads.dropFirst(callerTasks).allSatisfy { $0 == 1 },
                          "round \(round): the caller's tasks are not a run from the first: \(threads)")
            sawWorker = sawWorker || callerTasks < 64
            let inOrder = pool.threadsRunningTasks(64, fromBothEnds: false, microseconds: 20)
            XCTAssertFalse(inOrder.contains(-1), "round \(round): a task did not run in order")
        }
        // (At least 20 regions, up to 200 until the worker has taken a task: one that never took any in
        // 200 regions of 1.3 ms would be a pool fault of its own.)
        XCTAssertTrue(sawWorker, "the worker took no task in 200 regions")
    }

    /// A background job's chunks run exactly once each, on idle workers between regions or on the caller
    /// in its finish; a second job offered while one is out, and every job with one thread, runs whole
    /// on the caller.
    func testBackgroundChunksRunOnceAndFillIdleWorkers() throws {
        let pool = ThreadPool.shared
        let original = pool.threadCount
        defer { try? pool.setThreadCount(original) }
        try pool.useThreadsWithWorkers(2)
        var workerChunks = 0
        for round in 0..<200 where round < 20 || workerChunks == 0 {
            let result = pool.threadsRunningBackgroundChunks(24, microseconds: 20, regionsMeanwhile: round % 3)
            XCTAssertTrue(result.offered, "round \(round): the pool did not take the job")
            XCTAssertEqual(result.runs, [Int](repeating: 1, count: 24), "round \(round)")
            XCTAssertTrue(result.threads.allSatisfy { $0 == 0 || $0 == 1 }, "round \(round): \(result.threads)")
            XCTAssertFalse(result.secondOffered, "round \(round): a second job was taken while one was out")
            XCTAssertEqual(result.secondThreads, [0, 0, 0], "round \(round)")
            workerChunks += result.threads.filter { $0 == 1 }.count
        }
        // (One that never took a chunk in 200 jobs, each out for at least 0.5 ms, would be a pool fault.)
        XCTAssertGreaterThan(workerChunks, 0, "the worker took no background chunk")

        try pool.setThreadCount(1)
        let alone = pool.threadsRunningBackgroundChunks(5, microseconds: 1, regionsMeanwhile: 1)
        XCTAssertFalse(alone.offered)
        XCTAssertEqual(alone.threads, [0, 0, 0, 0, 0])
        XCTAssertEqual(alone.runs, [1, 1, 1, 1, 1])
    }

    /// Losses large enough for the thread pool (cross-entropy over 4,000 × 100 logits, MSE over 300,000
    /// elements: several tasks each) give the same loss and gradient bits for every thread count, and
    /// agree with a plain double-precision computation.
    func testLargeLossesAreBitIdenticalForAnyThreadCount() throws {
        let batch = 4000, classes = 100, count = 300_000
        XCTAssertTrue(Loss.crossEntropyTasks(batch: batch, classes: classes).parallel)
        XCTAssertGreaterThan(Loss.crossEntropyTasks(batch: batch, classes: classes).tasks, 4)
        XCTAssertTrue(Loss.mseTasks(count: count).parallel)
        // One task for the article's batches; never more than 64 (the partials stay on the stack).
        XCTAssertEqual(Loss.crossEntropyTasks(batch: 512, classes: 10).tasks, 1)
        XCTAssertEqual(Loss.mseTasks(count: 50).tasks, 1)
        XCTAssertEqual(Loss.mseTasks(count: 1 << 30).tasks, 64)
        XCTAssertEqual(Loss.crossEntropyTasks(batch: 1 << 24, classes: 3).tasks, 64)
        var random = SeededRandom(seed: 21)
        let logits = (0..<(batch * classes)).map { _ in 3 * random.nextNormal() }
        let labels = (0..<batch).map { Int32(($0 * 7) % classes) }
        let prediction = (0..<count).map { _ in random.nextNormal() }
        let target = (0..<count).map { _ in random.nextNormal() }

        let pool = ThreadPool.shared
        let original = pool.threadCount
        defer { try? pool.setThreadCount(original) }
        var reference: (crossEntropy: Float, crossEntropyGradient: [Float], mse: Float, mseGradient: [Float])?
        for threads in [1, 2, 3, 4] {
            try pool.setThreadCount(threads)
            let (ce, ceGradient) = try Loss.crossEntropy(logits: logits, labels: labels, classes: classes)
            let (mse, mseGradient) = try Loss.mse(prediction: prediction, target: target)
            guard let r = reference else {
                reference = (ce, ceGradient, mse, mseGradient)
                continue
            }
            XCTAssertEqual(ce.bitPattern, r.crossEntropy.bitPattern, "cross-entropy, \(threads) threads")
            XCTAssertTrue(ceGradient.map(\.bitPattern) == r.crossEntropyGradient.map(\.bitPattern),
                          "cross-entropy gradient, \(threads) threads")
            XCTAssertEqual(mse.bitPattern, r.mse.bitPattern, "MSE, \(threads) threads")
            XCTAssertTrue(mseGradient.map(\.bitPattern) == r.mseGradient.map(\.bitPattern), "MSE gradient, \(threads) threads")
        }
        guard let r = reference else { return XCTFail("no reference") }

        // The values themselves, against double precision throughout.
        var total = 0.0, worstGradient = 0.0
        for n in 0..<batch {
            let row = logits[(n * classes)..<((n + 1) * classes)].map(Double.init)
            let top = row.max()!
            let sum = row.reduce(0) { $0 + Foundation.exp($1 - top) }
            total += top + Foundation.log(sum) - row[Int(labels[n])]
            for c in 0..<classes {
                let expected = (Foundation.exp(row[c] - top) / sum - (c == Int(labels[n]) ? 1 : 0)) / Double(batch)
                worstGradient = max(worstGradient, abs(Double(r.crossEntropyGradient[n * classes + c]) - expected))
            }
        }
        XCTAssertEqual(Double(r.crossEntropy), total / Double(batch), accuracy: 1e-5 * total / Double(batch))
        XCTAssertLessThan(worstGradient, 1e-6 / Double(batch))
        var squares = 0.0, gradientMismatches = 0
        for i in 0..<count {
            let d = Double(prediction[i] - target[i])
            squares += d * d
            if r.mseGradient[i] != 2 / Float(count) * (prediction[i] - target[i]) { gradientMismatches += 1 }
        }
        XCTAssertEqual(gradientMismatches, 0)
        XCTAssertEqual(Double(r.mse), squares / Double(count), accuracy: 1e-6 * squares / Double(count))
    }

    func testThreadCountIsValidated() throws {
        let original = ThreadPool.shared.threadCount
        XCTAssertGreaterThanOrEqual(original, 1)
        assertThrowsBNDError(try ThreadPool.shared.setThreadCount(0), .invalidArgument)
        assertThrowsBNDError(try ThreadPool.shared.setThreadCount(ThreadPool.maxThreads + 1), .invalidArgument)
        XCTAssertEqual(ThreadPool.shared.threadCount, original)
    }
}

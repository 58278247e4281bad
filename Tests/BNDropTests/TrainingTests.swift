import XCTest
import Foundation
@_spi(Testing) @preconcurrency import BNDrop

/// The mini-batch loader, fit and evaluate.
final class TrainingTests: XCTestCase {
    // MARK: Helpers

    /// `count` samples whose 2 features are (i, −i) and whose label is i mod 3: a batch's contents reveal
    /// exactly which samples it holds.
    private func indexedDataset(_ count: Int) throws -> Dataset {
        let features = (0..<count).flatMap { [Float($0), -Float($0)] }
        return try Dataset(features: features, sampleShape: [2], labels: (0..<count).map { Int32($0 % 3) })
    }

    /// The sample indices of every batch of `epochs` epochs, checking each batch's contents on the way.
    private func batches(_ loader: BatchLoader, epochs: Int) -> [[Int]] {
        var out: [[Int]] = []
        for epoch in 0..<epochs {
            var index = 0
            while let batch = loader.nextBatch() {
                XCTAssertEqual(batch.epoch, epoch)
                XCTAssertEqual(batch.index, index)
                index += 1
                let indices = Array(batch.sampleIndices)
                XCTAssertEqual(indices.count, batch.size)
                for (k, i) in indices.enumerated() {
                    XCTAssertEqual(batch.inputs[2 * k], Float(i))
                    XCTAssertEqual(batch.inputs[2 * k + 1], -Float(i))
                    XCTAssertEqual(batch.labels?[k], Int32(i % 3))
                }
                out.append(indices)
            }
            XCTAssertEqual(index, loader.batchesPerEpoch)
        }
        return out
    }

    /// Two gaussian blobs in 4-D around ±(1.5, 1.5, 1.5, 1.5), labels 0 and 1.
    private func blobs(_ count: Int, seed: UInt64) throws -> Dataset {
        var random = SeededRandom(seed: seed)
        var features: [Float] = []
        var labels: [Int32] = []
        for i in 0..<count {
            let label = Int32(i % 2)
            let center: Float = label == 0 ? -1.5 : 1.5
            for _ in 0..<4 { features.append(center + random.nextNormal()) }
            labels.append(label)
        }
        return try Dataset(features: features, sampleShape: [4], labels: labels)
    }

    /// Linear(16) → BatchNorm → ReLU → Linear(2).
    private func mlp(seed: UInt64 = 1) throws -> Sequential {
        let net = try Sequential(sampleShape: [4], seed: seed)
        try net.addLinear(16)
        try net.addBatchNorm()
        try net.addReLU()
        try net.addLinear(2)
        return net
    }

    // MARK: Loader

    func testEachEpochIsAPermutationWithPartialLastBatch() throws {
        let loader = try BatchLoader(dataset: try indexedDataset(10), batchSize: 4, seed: 7)
        XCTAssertEqual(loader.batchesPerEpoch, 3)
        let all = batches(loader, epochs: 3)
        XCTAssertEqual(all.map(\.count), [4, 4, 2, 4, 4, 2, 4, 4, 2])
        var epochs: [[Int]] = []
        for e in 0..<3 {
            let epoch = all[(3 * e)..<(3 * e + 3)].flatMap { $0 }
            XCTAssertEqual(epoch.sorted(), Array(0..<10), "epoch \(e) is not a permutation")
            epochs.append(epoch)
        }
        XCTAssertNotEqual(epochs[0], Array(0..<10), "not shuffled")
        XCTAssertNotEqual(epochs[0], epochs[1], "every epoch must be reshuffled")
        XCTAssertEqual(loader.epoch, 2)
    }

    func testSameSeedSameBatchesDifferentSeedDifferentOrder() throws {
        let data = try indexedDataset(50)
        let a = batches(try BatchLoader(dataset: data, batchSize: 8, seed: 123), epochs: 4)
        let b = batches(try BatchLoader(dataset: data, batchSize: 8, seed: 123), epochs: 4)
        let c = batches(try BatchLoader(dataset: data, batchSize: 8, seed: 124), epochs: 4)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.prefix(7).flatMap { $0 }, c.prefix(7).flatMap { $0 })
        // reset() replays from the seed.
        let loader = try BatchLoader(dataset: data, batchSize: 8, seed: 123)
        _ = batches(loader, epochs: 2)
        loader.reset()
        XCTAssertEqual(batches(loader, epochs: 4), a)
    }

    func testShuffleIsUniformEnough() throws {
        // Each sample lands in each position about equally often over many epochs.
        let loader = try BatchLoader(dataset: try indexedDataset(5), batchSize: 5, seed: 1)
        var counts = [[Int]](repeating: [Int](repeating: 0, count: 5), count: 5)
        for _ in 0..<5000 {
            guard let batch = loader.nextBatch() else { return XCTFail("no batch") }
            for (position, sample) in batch.sampleIndices.enumerated() { counts[sample][position] += 1 }
            XCTAssertNil(loader.nextBatch())
        }
        for row in counts { for n in row { XCTAssertEqual(Double(n), 1000, accuracy: 120) } }
    }

    func testDropLastNoShuffleAndBufferReuse() throws {
        let data = try indexedDataset(10)
        let dropping = try BatchLoader(dataset: data, batchSize: 4, seed: 7, dropLast: true)
        XCTAssertEqual(dropping.batchesPerEpoch, 2)
        let dropped = batches(dropping, epochs: 2)
        XCTAssertEqual(dropped.map(\.count), [4, 4, 4, 4])
        XCTAssertEqual(Set(dropped[0] + dropped[1]).count, 8)

        let ordered = try BatchLoader(dataset: data, batchSize: 4, shuffle: false)
        XCTAssertEqual(batches(ordered, epochs: 2), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] + [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])

        // Two sets of buffers serve every batch, by turns (the next batch is gathered into the set the
        // current one does not use); without prefetching, one set. Each batch holds its own samples.
        for prefetch in [true, false] {
            let loader = try BatchLoader(dataset: data, batchSize: 4, seed: 3, prefetch: prefetch)
            XCTAssertEqual(loader.prefetch, prefetch)
            var inputs: [UnsafePointer<Float>] = [], labels: [UnsafePointer<Int32>?] = []
            for _ in 0..<3 {  // (each batch read before the next call, which may reuse its buffers)
                let batch = loader.nextBatch()!
                XCTAssertEqual(batch.inputArray, batch.sampleIndices.flatMap { [Float($0), -Float($0)] })
                XCTAssertEqual(batch.labelArray, batch.sampleIndices.map { Int32($0 % 3) })
                XCTAssertEqual(batch.targetArray, [])
                inputs.append(batch.inputs)
                labels.append(batch.labels)
            }
            XCTAssertEqual(inputs[0], inputs[2])
            XCTAssertEqual(labels[0], labels[2])
            XCTAssertEqual(inputs[0] != inputs[1], prefetch)
            XCTAssertEqual(labels[0] != labels[1], prefetch)
        }

        // A batch larger than the dataset gives one batch of everything; with dropLast it would give
        // none, which the loader refuses up front.
        let big = try BatchLoader(dataset: data, batchSize: 64, seed: 3)
        XCTAssertEqual(batches(big, epochs: 1).map(\.count), [10])
        XCTAssertEqual(big.smallestBatch, 10)
        XCTAssertThrowsError(try BatchLoader(dataset: data, batchSize: 64, dropLast: true)) { error in
            XCTAssertEqual(error as? BNDError, .shape("drop_last with 10 samples and batch_size 64 leaves no batch"))
        }
        XCTAssertThrowsError(try BatchLoader(dataset: data, batchSize: 0)) { error in
            XCTAssertEqual(error as? BNDError, .shape("batch_size must be positive, got 0"))
        }
    }

    /// Prefetching (each next batch gathered by the pool's idle workers while the current one is used)
    /// changes no batch: with one thread and with two, over whole epochs, an epoch abandoned midway and a
    /// reset, a prefetching loader gives the samples, features, labels and targets of one that gathers
    /// every batch when asked; and the batch handed out is not written while the next one is gathered.
    func testPrefetchedBatchesEqualBatchesGatheredWhenAsked() throws {
        let pool = ThreadPool.shared
        let original = pool.threadCount
        defer { try? pool.setThreadCount(original) }
        let classification = try indexedDataset(50)
        let regression = try Dataset(features: (0..<50).map(Float.init), sampleShape: [1],
                                     targets: (0..<50).flatMap { [Float($0) * 10, -Float($0)] }, targetCount: 2)
        func contents(_ batch: Batch) -> [Float] {
            batch.inputArray + batch.labelArray.map(Float.init) + batch.targetArray + batch.sampleIndices.map(Float.init)
        }
        for threads in [1, 2] {
            try pool.useThreadsWithWorkers(threads)
            var ahead = 0
            for data in [classification, regression] {
                for (size, dropLast) in [(4, false), (7, true), (16, false), (50, false)] {
                    let asked = try BatchLoader(dataset: data, batchSize: size, seed: 5, dropLast: dropLast, prefetch: false)
                    let early = try BatchLoader(dataset: data, batchSize: size, seed: 5, dropLast: dropLast)
                    func compareEpoch(_ what: String, stopAfter: Int = .max) {
                        var index = 0
                        while index < stopAfter, let b = early.nextBatch() {
                            guard let a = asked.nextBatch() else { return XCTFail("\(what): a batch too many") }
                            let handedOut = contents(b)
                            XCTAssertEqual(handedOut, contents(a), "\(what), batch \(index)")
                            // Give the workers time to gather the next batch, then look again.
                            _ = pool.threadsRunningTasks(2, fromBothEnds: true, microseconds: 50)
                            XCTAssertEqual(contents(b), handedOut, "\(what), batch \(index) changed")
                            index += 1
                        }
                        if stopAfter == .max { XCTAssertNil(asked.nextBatch(), "\(what): a batch missing") }
                    }
                    let name = "\(threads) threads, batch \(size)\(dropLast ? " dropping the last" : "")"
                    for epoch in 0..<3 { compareEpoch("\(name), epoch \(epoch)") }
                    compareEpoch("\(name), an epoch abandoned", stopAfter: 2)
                    asked.startEpoch()
                    early.startEpoch()
                    compareEpoch("\(name), after startEpoch")
                    _ = early.nextBatch()
                    asked.reset()
                    early.reset()
                    compareEpoch("\(name), after reset")
                    XCTAssertEqual(asked.batchesGatheredAhead, 0)
                    ahead += early.batchesGatheredAhead
                }
            }
            if threads == 1 {
                XCTAssertEqual(ahead, 0, "one thread: no background gathers")
            } else {
                XCTAssertGreaterThan(ahead, 100, "two threads: the batches after the first of an epoch come from background gathers")
            }
        }
    }

    /// 2000 samples of 784 values (the loader's background gather then takes 8 chunks a batch of 64).
    private func imageSizedDataset() throws -> Dataset {
        let count = 2000, width = 784
        return try Dataset(features: (0..<(count * width)).map { Float($0 % 251) / 251 }, sampleShape: [width],
                           labels: (0..<count).map { Int32($0 % 10) })
    }

    /// A loader dropped while the workers gather its next batch: its deinit finishes the gather on the
    /// dropping thread, and the pool takes background work afterwards (a worker had once held the
    /// loader's last reference inside a chunk and deadlocked in its deinit, leaving the pool's one
    /// background job out for good).
    func testALoaderDroppedWhileItsNextBatchIsGatheredLeavesThePoolFree() throws {
        let pool = ThreadPool.shared
        let original = pool.threadCount
        defer { try? pool.setThreadCount(original) }
        try pool.useThreadsWithWorkers(2)
        let data = try imageSizedDataset()
        for round in 0..<300 {
            let loader = try BatchLoader(dataset: data, batchSize: 64, seed: UInt64(round))
            XCTAssertNotNil(loader.nextBatch())  // (offers the next batch, 8 chunks, to the workers)
            if round % 3 == 1 { _ = pool.threadsRunningTasks(2, fromBothEnds: true, microseconds: 2) }
        }  // (each loader is dropped here, its gather perhaps under way on the worker)
        let after = try BatchLoader(dataset: data, batchSize: 64, seed: 1)
        for _ in 0..<5 { XCTAssertNotNil(after.nextBatch()) }
        XCTAssertEqual(after.batchesGatheredAhead, 4, "the pool no longer takes background work")
    }

    /// A loader left mid-epoch with its next batch offered (a fit stopped by its callback, a C or Python
    /// loop that breaks) and kept for later does not hold the pool's background job: once the workers
    /// have gathered its batch, another loader gathers ahead again; and the kept loader goes on with the
    /// batches a loader without prefetching gives.
    func testALoaderLeftMidEpochLeavesThePoolToOtherLoaders() throws {
        let pool = ThreadPool.shared
        let original = pool.threadCount
        defer { try? pool.setThreadCount(original) }
        try pool.useThreadsWithWorkers(2)
        let data = try imageSizedDataset()
        let kept = try BatchLoader(dataset: data, batchSize: 64, seed: 5)
        let reference = try BatchLoader(dataset: data, batchSize: 64, seed: 5, prefetch: false)
        XCTAssertNotNil(kept.nextBatch())  // (offers the next batch, 8 chunks, to the worker)
        XCTAssertNotNil(reference.nextBatch())
        // The worker runs a job's 8 chunks within microseconds; a bound, not a measurement: 20 s.
        func waitForThePool(_ what: String) {
            var waited = 0
            while pool.backgroundJobIsOut && waited < 200_000 {
                usleep(100)
                waited += 1
            }
            XCTAssertFalse(pool.backgroundJobIsOut, what)
        }
        waitForThePool("the job of a loader left mid-epoch still holds the pool")
        let other = try BatchLoader(dataset: data, batchSize: 64, seed: 6)
        for _ in 0..<5 { XCTAssertNotNil(other.nextBatch()) }
        XCTAssertEqual(other.batchesGatheredAhead, 4, "another loader could not gather ahead")
        waitForThePool("the other loader's last job still holds the pool")  // (it too is left mid-epoch)
        for step in 0..<3 {
            guard let batch = kept.nextBatch(), let expected = reference.nextBatch() else {
                return XCTFail("step \(step): an epoch of 2000 samples ended early")
            }
            XCTAssertEqual(Array(batch.sampleIndices), Array(expected.sampleIndices), "step \(step)")
            XCTAssertEqual(batch.inputArray, expected.inputArray, "step \(step)")
            XCTAssertEqual(batch.labelArray, expected.labelArray, "step \(step)")
        }
        XCTAssertEqual(kept.batchesGatheredAhead, 3)
    }

    func testRegressionBatchesCarryTargets() throws {
        let data = try Dataset(features: (0..<6).map(Float.init), sampleShape: [1],
                               targets: (0..<6).flatMap { [Float($0) * 10, Float($0) * 100] }, targetCount: 2)
        let loader = try BatchLoader(dataset: data, batchSize: 4, seed: 9)
        var seen: [Int] = []
        while let batch = loader.nextBatch() {
            XCTAssertNil(batch.labels)
            XCTAssertEqual(batch.targetArray, batch.sampleIndices.flatMap { [Float($0) * 10, Float($0) * 100] })
            for k in 0..<batch.size {
                let i = batch.sampleIndices[k]
                XCTAssertEqual(batch.inputs[k], Float(i))
                XCTAssertEqual(batch.targets?[2 * k], Float(i) * 10)
                XCTAssertEqual(batch.targets?[2 * k + 1], Float(i) * 100)
                seen.append(i)
            }
        }
        XCTAssertEqual(seen.sorted(), Array(0..<6))
    }

    // MARK: fit / evaluate

    func testFitSeparatesTwoBlobs() throws {
        let train = try blobs(400, seed: 1), test = try blobs(200, seed: 2)
        let net = try mlp()
        let before = try evaluate(network: net, data: test)
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.05, momentum: 0.9)
        var stepEvents: [FitEvent] = []
        var epochEvents: [FitEvent] = []
        let summary = try fit(network: net, optimizer: optimizer, data: train, epochs: 5, batchSize: 32,
                              shuffleSeed: 3, validation: test) { event in
            if event.kind == .step { stepEvents.append(event) } else { epochEvents.append(event) }
            return true
        }
        // 400 samples in batches of 32: 12 full batches and one of 16 per epoch.
        XCTAssertEqual(summary.steps, 5 * 13)
        XCTAssertEqual(summary.epochsCompleted, 5)
        XCTAssertFalse(summary.stoppedEarly)
        XCTAssertEqual(summary.samples, 5 * 400)
        XCTAssertEqual(stepEvents.count, 65)
        XCTAssertEqual(stepEvents.map(\.globalStep), Array(1...65))
        XCTAssertEqual(stepEvents.filter { $0.epoch == 4 }.map(\.step), Array(0..<13))
        XCTAssertEqual(stepEvents[12].batchSize, 16)
        XCTAssertEqual(stepEvents[11].batchSize, 32)
        XCTAssertTrue(stepEvents.allSatisfy { $0.loss.isFinite && $0.loss >= 0 && $0.samplesPerSecond > 0 && $0.validationLoss.isNaN })
        XCTAssertEqual(summary.lastLoss, stepEvents.last!.loss)
        XCTAssertEqual(epochEvents.map(\.epoch), Array(0..<5))
        XCTAssertEqual(epochEvents.map(\.step), [Int](repeating: 13, count: 5))
        XCTAssertEqual(epochEvents.map(\.batchSize), [Int](repeating: 400, count: 5))
        // The epoch loss is the size-weighted mean of its step losses.
        let first = stepEvents.prefix(13)
        let weighted = first.reduce(0.0) { $0 + $1.loss * Double($1.batchSize) } / 400
        XCTAssertEqual(epochEvents[0].loss, weighted, accuracy: 1e-9)
        XCTAssertLessThan(epochEvents[4].loss, epochEvents[0].loss)

        let after = try evaluate(network: net, data: test, batchSize: 64)
        XCTAssertEqual(after.count, 200)
        XCTAssertGreaterThan(after.accuracy!, 0.95)
        XCTAssertLessThan(after.loss, before.loss)
        XCTAssertLessThan(after.loss, 0.2)
        // fit validated with batches of 32; the figures match up to summation order.
        XCTAssertEqual(summary.validation?.loss ?? .nan, after.loss, accuracy: 1e-6)
        XCTAssertEqual(summary.validation?.accuracy, after.accuracy)
        XCTAssertEqual(epochEvents[4].validationLoss, summary.validation?.loss)
        XCTAssertEqual(epochEvents[4].validationAccuracy, after.accuracy!)
        // Evaluation batch size does not matter in eval mode.
        XCTAssertEqual(try evaluate(network: net, data: test, batchSize: 7).loss, after.loss, accuracy: 1e-6)
        XCTAssertTrue(net.isTraining, "fit leaves the mode as it found it")
    }

    func testCallbackStopsTrainingEarly() throws {
        let train = try blobs(400, seed: 1)
        let net = try mlp()
        let optimizer = try Adam(parameters: net.parameters, learningRate: 0.01)
        var calls = 0
        let summary = try fit(network: net, optimizer: optimizer, data: train, epochs: 10, batchSize: 32,
                              shuffleSeed: 3) { event in
            calls += 1
            return event.globalStep < 7
        }
        XCTAssertEqual(summary.steps, 7)
        XCTAssertEqual(calls, 7)
        XCTAssertTrue(summary.stoppedEarly)
        XCTAssertEqual(summary.epochsCompleted, 0)
        XCTAssertTrue(summary.lastEpochLoss.isNaN)
        XCTAssertEqual(optimizer.stepCount, 7)

        // Stopping at an epoch event.
        let again = try fit(network: net, optimizer: optimizer, data: train, epochs: 10, batchSize: 100,
                            shuffleSeed: 3) { $0.kind != .epoch || $0.epoch < 1 }
        XCTAssertEqual(again.steps, 8)
        XCTAssertEqual(again.epochsCompleted, 2)
        XCTAssertTrue(again.stoppedEarly)
        XCTAssertEqual(optimizer.stepCount, 15)

        // A throwing callback ends fit with its error.
        struct Stop: Error {}
        XCTAssertThrowsError(try fit(network: net, optimizer: optimizer, data: train, epochs: 1, batchSize: 100,
                                     shuffleSeed: 3) { _ in throw Stop() }) { XCTAssertTrue($0 is Stop) }
    }

    func testSameShuffleSeedTrainsIdenticalNetworks() throws {
        let train = try blobs(200, seed: 5)
        func trained(_ shuffleSeed: UInt64, dropLast: Bool = false) throws -> (Sequential, FitSummary) {
            let net = try mlp(seed: 11)
            let optimizer = try SGD(parameters: net.parameters, learningRate: 0.1)
            let summary = try fit(network: net, optimizer: optimizer, data: train, epochs: 2, batchSize: 30,
                                  shuffleSeed: shuffleSeed, dropLast: dropLast)
            return (net, summary)
        }
        let (a, sa) = try trained(9), (b, _) = try trained(9), (c, _) = try trained(10)
        XCTAssertEqual(sa.steps, 14)
        for name in ["0.weight", "1.weight", "1.running_mean", "1.running_var", "3.weight"] {
            XCTAssertEqual(try a.tensor(name), try b.tensor(name), name)
            XCTAssertNotEqual(try a.tensor(name), try c.tensor(name), name)
        }
        // Linear 0's bias feeds BatchNorm, which cancels it: its gradient is 0, so it never moves.
        XCTAssertEqual(try a.tensor("0.bias"), try c.tensor("0.bias"))
        XCTAssertEqual(try a.tensor("1.num_batches_tracked"), [14])
        XCTAssertEqual(try trained(9, dropLast: true).1.steps, 12)

        // The loader form continues the epoch sequence instead of repeating it.
        let net = try mlp(seed: 11)
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.1)
        let loader = try BatchLoader(dataset: train, batchSize: 30, seed: 9)
        try fit(network: net, optimizer: optimizer, loader: loader, epochs: 1)
        try fit(network: net, optimizer: optimizer, loader: loader, epochs: 1)
        XCTAssertEqual(try net.tensor("0.weight"), try a.tensor("0.weight"))
    }

    func testEvaluateUsesEvalModeAndRestoresIt() throws {
        let data = try blobs(64, seed: 3)
        let net = try mlp()
        // Make the running statistics differ from the batch statistics.
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.1)
        try fit(network: net, optimizer: optimizer, data: data, epochs: 1, batchSize: 16, shuffleSeed: 0)
        let runningMean = try net.tensor("1.running_mean")
        let weights = try net.tensor("0.weight")

        net.isTraining = true
        let result = try evaluate(network: net, data: data, batchSize: 64)
        XCTAssertTrue(net.isTraining)
        net.isTraining = false
        XCTAssertEqual(try evaluate(network: net, data: data, batchSize: 64), result)
        XCTAssertFalse(net.isTraining)
        XCTAssertEqual(try net.tensor("1.running_mean"), runningMean, "evaluation must not update running stats")
        XCTAssertEqual(try net.tensor("0.weight"), weights)
        XCTAssertEqual(try net.tensor("1.num_batches_tracked"), [4])

        // The figures by hand: eval-mode forward, cross-entropy, argmax.
        let logits = try net.forward(data.featureArray, batch: 64)
        let (loss, _) = try Loss.crossEntropy(logits: logits, labels: data.labelArray, classes: 2)
        XCTAssertEqual(result.loss, Double(loss), accuracy: 1e-5)
        let correct = (0..<64).filter { n in (logits[2 * n + 1] > logits[2 * n] ? 1 : 0) == Int(data.labelArray[n]) }.count
        XCTAssertEqual(result.accuracy, Double(correct) / 64)
    }

    func testRegressionFitAndEvaluate() throws {
        // y = (2x + 1, −x) on x in [−1, 1): a linear model learns it exactly.
        var random = SeededRandom(seed: 4)
        let xs = (0..<256).map { _ in random.nextUniform(-1, 1) }
        let data = try Dataset(features: xs, sampleShape: [1], targets: xs.flatMap { [2 * $0 + 1, -$0] }, targetCount: 2)
        let net = try Sequential(sampleShape: [1], seed: 2)
        try net.addLinear(2)
        let optimizer = try Adam(parameters: net.parameters, learningRate: 0.05)
        let summary = try fit(network: net, optimizer: optimizer, data: data, epochs: 30, batchSize: 32,
                              shuffleSeed: 1, loss: .mse, validation: data) { event in
            if event.kind == .epoch { XCTAssertTrue(event.validationAccuracy.isNaN) }
            return true
        }
        XCTAssertEqual(summary.steps, 240)
        let result = try evaluate(network: net, data: data)
        XCTAssertNil(result.accuracy)
        XCTAssertLessThan(result.loss, 1e-3)
        let w = try net.tensor("0.weight"), b = try net.tensor("0.bias")
        XCTAssertEqual(w[0], 2, accuracy: 0.05)
        XCTAssertEqual(w[1], -1, accuracy: 0.05)
        XCTAssertEqual(b[0], 1, accuracy: 0.05)
        XCTAssertEqual(b[1], 0, accuracy: 0.05)
        // The MSE by hand.
        let prediction = try net.forward(xs, batch: 256)
        let (mse, _) = try Loss.mse(prediction: prediction, target: data.targetArray)
        XCTAssertEqual(result.loss, Double(mse), accuracy: 1e-7)
    }

    func testMistakesThrow() throws {
        let data = try blobs(40, seed: 1)
        let net = try mlp()
        let optimizer = try SGD(parameters: net.parameters)
        func expect(_ body: @autoclosure () throws -> Any, _ text: String, line: UInt = #line) {
            assertThrowsBNDError(try body(), nil, containing: text, line: line)
        }
        expect(try fit(network: net, optimizer: optimizer, data: data, epochs: 1, batchSize: 0, shuffleSeed: 0), "batch_size must be positive")
        expect(try fit(network: net, optimizer: optimizer, data: data, epochs: -1, batchSize: 8, shuffleSeed: 0), "epochs")
        expect(try fit(network: net, optimizer: optimizer, data: data, epochs: 1, batchSize: 8, shuffleSeed: 0, loss: .mse),
               "mse needs a regression dataset")
        expect(try fit(network: net, optimizer: optimizer, data: data, epochs: 1, batchSize: 64, shuffleSeed: 0,
                       dropLast: true), "leaves no batch")
        let wide = try Dataset(features: [Float](repeating: 0, count: 10), sampleShape: [5], labels: [0, 1])
        expect(try fit(network: net, optimizer: optimizer, data: wide, epochs: 1, batchSize: 2, shuffleSeed: 0),
               "network takes [4]")
        expect(try evaluate(network: net, data: wide), "network takes [4]")
        let threeClasses = try Dataset(features: [Float](repeating: 0, count: 8), sampleShape: [4], labels: [0, 2])
        expect(try evaluate(network: net, data: threeClasses), "3 classes")
        let regression = try Dataset(features: [Float](repeating: 0, count: 8), sampleShape: [4], targets: [1, 2])
        expect(try evaluate(network: net, data: regression), "1 targets per sample but the network outputs 2")
        expect(try evaluate(network: net, data: regression, loss: .crossEntropy), "cross-entropy needs a classification")
        expect(try fit(network: net, optimizer: optimizer, data: data, epochs: 1, batchSize: 8, shuffleSeed: 0,
                       validation: wide), "validation samples")
        expect(try evaluate(network: net, data: data, batchSize: 0), "batch_size must be positive")
        expect(try fit(network: net, optimizer: optimizer, data: data, epochs: 0, batchSize: 8, shuffleSeed: 0),
               "epochs must be positive")

        // 41 samples in batches of 8 leave a last batch of 1, which BatchNorm1d cannot train on: refused
        // before the first step (nothing trained), with a message that says what to do.
        let odd = try blobs(41, seed: 2)
        assertThrowsBNDError(try fit(network: net, optimizer: optimizer, data: odd, epochs: 1, batchSize: 8, shuffleSeed: 0),
                             .shape, containing: "last batch", "drop_last", "41 samples = 5 × 8 + 1", "layer 1")
        XCTAssertEqual(try net.tensor("1.num_batches_tracked"), [0])
        let summary = try fit(network: net, optimizer: optimizer, data: odd, epochs: 1, batchSize: 8, shuffleSeed: 0,
                              dropLast: true)
        XCTAssertEqual(summary.steps, 5)

        // A BatchNorm without running statistics normalises with the batch's own in eval mode too: a last
        // validation batch of one sample is refused before the first epoch (nothing trained), and so is
        // an evaluation; with running statistics a batch of one evaluates.
        let untracked = try Sequential(sampleShape: [4], seed: 3)
        try untracked.addLinear(6)
        try untracked.addBatchNorm(trackRunningStats: false)
        try untracked.addLinear(2)
        let untrackedOptimizer = try SGD(parameters: untracked.parameters)
        let before = try untracked.tensor("0.weight")
        assertThrowsBNDError(try fit(network: untracked, optimizer: untrackedOptimizer, data: data, epochs: 1, batchSize: 8,
                                     shuffleSeed: 0, validation: odd),
                             .shape, containing: "last validation batch would have 1 sample (41 samples in batches of 8)", "layer 1")
        XCTAssertEqual(try untracked.tensor("0.weight"), before)
        expect(try evaluate(network: untracked, data: odd, batchSize: 8), "last evaluation batch would have 1 sample")
        XCTAssertNoThrow(try evaluate(network: untracked, data: odd, batchSize: 41))
        XCTAssertNoThrow(try evaluate(network: net, data: odd, batchSize: 8))
    }

    func testFashionMNISTSubsetTrainsQuickly() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: dir + "/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("\(dir) is not installed")
        }
        let train = try Dataset.loadDirectory(dir, split: .train).subset(0..<20_000)
        let test = try Dataset.loadDirectory(dir, split: .test)
        try train.reshape([784])
        try test.reshape([784])
        let net = try Sequential(sampleShape: [784], seed: 0)
        try net.addLinear(128)
        try net.addBatchNorm()
        try net.addReLU()
        try net.addLinear(10)
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.1, momentum: 0.9)
        var lastRate = 0.0
        let summary = try fit(network: net, optimizer: optimizer, data: train, epochs: 1, batchSize: 64,
                              shuffleSeed: 0, validation: test, evalBatchSize: 500) { event in
            lastRate = event.samplesPerSecond
            return true
        }
        print("Fashion-MNIST 20k: \(summary.seconds) s, \(lastRate) samples/s, test accuracy \(summary.validation?.accuracy ?? .nan)")
        XCTAssertEqual(summary.steps, 313)  // 312 batches of 64 and one of 32
        XCTAssertGreaterThan(summary.validation?.accuracy ?? 0, 0.8)
    }
}

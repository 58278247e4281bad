import XCTest
import Foundation
import Glibc
@preconcurrency import BNDrop

/// Issue 10: a refused or failed training step changes nothing but the gradients. Each kind of failure
/// is applied to one of two twin networks (same seed, same optimizer, same history); afterwards the
/// twins' full states must be the same bytes (the network checkpoint: every state_dict tensor with
/// num_batches_tracked, the mode and every dropout generator; the optimizer checkpoint: momentum
/// buffers, Adam's step and moments), and a further train step must give both the same loss, dropout
/// mask and state.
final class FailedStepTests: TemporaryFolderTestCase {
    /// {4} -> Linear(8) -> Dropout(0.25) -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear(3).
    /// A Dropout before the BatchNorm: a step failing at the BatchNorm would already have drawn its mask.
    private func classifier() throws -> (Sequential, Optimizer) {
        let net = try Sequential(sampleShape: [4], seed: 5)
        try net.addLinear(8)
        try net.addDropout(0.25)
        try net.addBatchNorm()
        try net.addReLU()
        try net.addDropout(0.5)
        try net.addLinear(3)
        return (net, try SGD(parameters: net.parameters, learningRate: 0.1, momentum: 0.9))
    }

    /// {4} -> Linear(8) -> BatchNorm1d -> ReLU -> Dropout(0.3) -> Linear(4) -> Linear(1), with Adam.
    private func regressor() throws -> (Sequential, Optimizer) {
        let net = try Sequential(sampleShape: [4], seed: 9)
        try net.addLinear(8)
        try net.addBatchNorm()
        try net.addReLU()
        try net.addDropout(0.3)
        try net.addLinear(4)
        try net.addLinear(1)
        return (net, try Adam(parameters: net.parameters, learningRate: 0.01))
    }

    private let batch = 8
    private var input: [Float] { (0..<(8 * 4)).map { Float(($0 * 37) % 23) / 7 - 1.5 } }
    private var labels: [Int32] { (0..<8).map { Int32(($0 * 5) % 3) } }
    private var targets: [Float] { (0..<8).map { Float($0) / 4 - 1 } }

    /// The network's and the optimizer's checkpoints, as bytes.
    private func state(_ net: Sequential, _ optimizer: Optimizer) throws -> Data {
        let netPath = folder.appendingPathComponent("net.safetensors").path
        let optPath = folder.appendingPathComponent("opt.safetensors").path
        try net.save(to: netPath)
        try optimizer.save(to: optPath)
        return try Data(contentsOf: URL(fileURLWithPath: netPath)) + Data(contentsOf: URL(fileURLWithPath: optPath))
    }

    private func masks(_ net: Sequential) -> [[Float]] { net.layers.compactMap { ($0 as? Dropout)?.lastMask } }

    private func step(_ net: Sequential, _ optimizer: Optimizer, regression: Bool) throws -> Float {
        regression ? try net.trainStep(input: input, targets: targets, optimizer: optimizer)
                   : try net.trainStep(input: input, labels: labels, optimizer: optimizer)
    }

    private func status(_ error: Error) -> String {
        switch error as? BNDError {
        case .invalidArgument?: return "invalidArgument"
        case .shape?: return "shape"
        case .state?: return "state"
        case .numeric?: return "numeric"
        default: return "\(error)"
        }
    }

    /// Applies `fail` to one of two twins after two steps of shared history, checks its status and that
    /// the twins' states, next step, next masks and states after it are identical.
    private func check(_ kind: String, regression: Bool, expect: String, refused: Bool = true,
                       _ fail: (Sequential, Optimizer) throws -> Void,
                       prepare: (Sequential) throws -> Void = { _ in }) throws -> String {
        let (subject, subjectOpt) = regression ? try regressor() : try classifier()
        let (twin, twinOpt) = regression ? try regressor() : try classifier()
        for _ in 0..<2 {
            let a = try step(subject, subjectOpt, regression: regression)
            let b = try step(twin, twinOpt, regression: regression)
            XCTAssertEqual(a.bitPattern, b.bitPattern)
        }
        try prepare(subject)
        try prepare(twin)
        let before = try state(subject, subjectOpt)
        XCTAssertEqual(before, try state(twin, twinOpt))
        let gradients = try subject.stateDict.compactMap { item -> [Float]? in
            guard case .parameter = item.entry.storage else { return nil }
            return try subject.gradient(item.name)
        }
        let output = try subject.layerOutput(0)
        var got = "no error"
        do { try fail(subject, subjectOpt) } catch { got = status(error) }
        XCTAssertEqual(got, expect, kind)
        let after = try state(subject, subjectOpt)
        let unchanged = after == before
        XCTAssertTrue(unchanged, "\(kind): the state changed")
        if refused {
            // Refused before anything ran: not even the gradients or the last forward pass changed.
            XCTAssertEqual(try subject.layerOutput(0), output, kind)
            let now = try subject.stateDict.compactMap { item -> [Float]? in
                guard case .parameter = item.entry.storage else { return nil }
                return try subject.gradient(item.name)
            }
            XCTAssertEqual(now.map { $0.map(\.bitPattern) }, gradients.map { $0.map(\.bitPattern) }, kind)
        } else {
            assertThrowsBNDError(try subject.layerOutput(0), .state,
                                 context: "\(kind): the failed step's forward pass is kept")
        }
        // What the failed step's twin does next, the subject does too (unless the prepared weights make
        // every step fail).
        let a = Result { try step(subject, subjectOpt, regression: regression) }
        let b = Result { try step(twin, twinOpt, regression: regression) }
        switch (a, b) {
        case (.success(let x), .success(let y)):
            XCTAssertEqual(x.bitPattern, y.bitPattern, kind)
            XCTAssertEqual(masks(subject), masks(twin), "\(kind): the next dropout masks differ")
        case (.failure(let x), .failure(let y)):
            XCTAssertEqual(status(x), status(y), kind)
        default:
            XCTFail("\(kind): the twins' next steps differ: \(a), \(b)")
        }
        XCTAssertEqual(try state(subject, subjectOpt), try state(twin, twinOpt), "\(kind): the states diverged")
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }
        return pad(kind, 34) + pad(got + (refused ? " (refused)" : " (ran)"), 28)
            + (unchanged ? "state unchanged" : "STATE CHANGED")
    }

    func testFailedStepsChangeNothingButTheGradients() throws {
        var rows: [String] = []
        let input = self.input
        rows.append(try check("label out of range", regression: false, expect: "invalidArgument") { net, opt in
            var bad = self.labels
            bad[5] = 3
            _ = try net.trainStep(input: input, labels: bad, optimizer: opt)
        })
        rows.append(try check("negative label", regression: false, expect: "invalidArgument") { net, opt in
            var bad = self.labels
            bad[7] = -1
            _ = try net.trainStep(input: input, labels: bad, optimizer: opt)
        })
        rows.append(try check("NaN input", regression: false, expect: "numeric") { net, opt in
            var bad = input
            bad[13] = .nan
            _ = try net.trainStep(input: bad, labels: self.labels, optimizer: opt)
        })
        rows.append(try check("NaN target", regression: true, expect: "numeric") { net, opt in
            var bad = self.targets
            bad[2] = .nan
            _ = try net.trainStep(input: input, targets: bad, optimizer: opt)
        })
        rows.append(try check("BatchNorm batch of one", regression: false, expect: "shape") { net, opt in
            _ = try net.trainStep(input: Array(input[0..<4]), labels: [1], optimizer: opt)
        })
        rows.append(try check("foreign optimizer", regression: false, expect: "invalidArgument") { net, _ in
            let (_, other) = try self.classifier()
            _ = try net.trainStep(input: input, labels: self.labels, optimizer: other)
        })
        // Huge weights: the logits overflow, the cross-entropy is NaN.
        rows.append(try check("non-finite loss (classification)", regression: false, expect: "numeric", refused: false,
                              { net, opt in _ = try net.trainStep(input: input, labels: self.labels, optimizer: opt) },
                              prepare: { net in
                                  try net.setTensor("5.weight", [Float](repeating: 3e38, count: 24))
                                  try net.setTensor("5.bias", [Float](repeating: 3e38, count: 3))
                              }))
        rows.append(try check("non-finite loss (regression)", regression: true, expect: "numeric", refused: false,
                              { net, opt in _ = try net.trainStep(input: input, targets: self.targets, optimizer: opt) },
                              prepare: { net in try net.setTensor("5.weight", [Float](repeating: 1e30, count: 4)) }))
        // A finite loss with an infinite gradient: layer 4 outputs exactly 0, so the prediction is 0 and the
        // loss finite, but back-propagating through layer 5's weights of 3e38 overflows.
        rows.append(try check("finite loss, non-finite gradient", regression: true, expect: "numeric", refused: false,
                              { net, opt in
                                  _ = try net.trainStep(input: input, targets: [Float](repeating: 100, count: 8),
                                                        optimizer: opt)
                              },
                              prepare: { net in
                                  try net.setTensor("4.weight", [Float](repeating: 0, count: 32))
                                  try net.setTensor("4.bias", [Float](repeating: 0, count: 4))
                                  try net.setTensor("5.weight", [Float](repeating: 3e38, count: 4))
                                  try net.setTensor("5.bias", [0])
                              }))
        print("failed step                       status                      state")
        for row in rows { print(row) }
    }

    /// A failed step in eval mode leaves the net in eval mode; the failed forward pass is discarded, so
    /// backward is refused until a new forward.
    /// A training step starts from zero gradients (zero_grad): after a successful step every gradient
    /// is that step's alone (the same bits as zero_grad, forward, backward on a twin), not added to the
    /// last step's, and after a step that failed before its backward every gradient is zero.
    func testEveryStepStartsFromZeroGradients() throws {
        let (net, opt) = try regressor()
        let (twin, twinOpt) = try regressor()
        let input = self.input, targets = self.targets
        func gradients(_ n: Sequential) throws -> [[UInt32]] {
            try n.stateDict.compactMap { item -> [UInt32]? in
                guard case .parameter = item.entry.storage else { return nil }
                return try n.gradient(item.name).map(\.bitPattern)
            }
        }
        // The same first step for both (same seed: same weights, masks and statistics after it); it
        // leaves gradients behind.
        _ = try net.trainStep(input: input, targets: targets, optimizer: opt)
        _ = try twin.trainStep(input: input, targets: targets, optimizer: twinOpt)
        XCTAssertTrue(try gradients(net).contains { $0.contains { $0 != 0 } })
        // The twin computes the next step's gradients by hand: zero_grad, forward, backward.
        XCTAssertTrue(twin.isTraining)
        let shifted = input.map { $0 * 0.5 + 0.25 }
        twin.zeroGrad()
        let prediction = try twin.forward(shifted, batch: batch)
        let (_, lossGradient) = try Loss.mse(prediction: prediction, target: targets)
        _ = try twin.backward(lossGradient, batch: batch)
        _ = try net.trainStep(input: shifted, targets: targets, optimizer: opt)
        XCTAssertEqual(try gradients(net), try gradients(twin), "a step's gradients are its own")

        // Overflowing weights: the loss is not finite, the step fails before its backward.
        try net.setTensor("5.weight", [Float](repeating: 1e30, count: 4))
        XCTAssertThrowsError(try net.trainStep(input: input, targets: targets, optimizer: opt))
        XCTAssertTrue(try gradients(net).allSatisfy { $0.allSatisfy { $0 == 0 } }, "zero gradients after the failed step")
    }

    func testFailedStepKeepsModeAndDiscardsTheForwardPass() throws {
        let (net, opt) = try regressor()
        _ = try net.forward(input, batch: batch)
        try net.setTensor("5.weight", [Float](repeating: 1e30, count: 4))
        net.isTraining = false
        XCTAssertThrowsError(try net.trainStep(input: input, targets: targets, optimizer: opt))
        XCTAssertFalse(net.isTraining)
        XCTAssertTrue(net.layers.allSatisfy { !$0.isTraining })
        XCTAssertNil(net.lastBatch)
        assertThrowsBNDError(try net.backward([Float](repeating: 1, count: batch), batch: batch), .state)
    }

    /// fit stops at the first failed step, with the same guarantee: the state is the one after the last
    /// successful step.
    func testFitStopsAtTheFailedStepWithTheStateBeforeIt() throws {
        let (net, opt) = try regressor()
        let (twin, twinOpt) = try regressor()
        var badTargets = targets + targets
        badTargets[12] = 1e30  // finite, but its squared error overflows
        let bad = try Dataset(features: input + input, sampleShape: [4], targets: badTargets, targetCount: 1)
        // Find the step at which training on `bad` fails, then train the twin that far on `bad` minus one.
        var steps = 0
        assertThrowsBNDError(try fit(network: net, optimizer: opt, data: bad, epochs: 3, batchSize: 4, shuffleSeed: 1) { event in
            if event.kind == .step { steps += 1 }
            return true
        }, .numeric)
        var twinSteps = 0
        _ = try fit(network: twin, optimizer: twinOpt, data: bad, epochs: 3, batchSize: 4, shuffleSeed: 1) { event in
            if event.kind == .step { twinSteps += 1 }
            return twinSteps < steps
        }
        XCTAssertGreaterThan(steps, 0)
        XCTAssertEqual(twinSteps, steps)
        XCTAssertEqual(try state(net, opt), try state(twin, twinOpt))
    }
}

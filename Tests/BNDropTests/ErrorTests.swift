import XCTest
@preconcurrency import BNDrop

/// Every user mistake is a thrown BNDError with a message that says what was expected and what came.
final class ErrorTests: XCTestCase {
    private let invalid = BNDErrorKind.invalidArgument, shape = BNDErrorKind.shape, state = BNDErrorKind.state,
                numeric = BNDErrorKind.numeric

    func testDropoutProbabilityOutOfRange() throws {
        let net = try Sequential(sampleShape: [4])
        for p: Float in [-0.1, 1.5, .nan, .infinity] {
            assertThrowsBNDError(try net.addDropout(p), invalid, containing: "dropout probability has to be between 0 and 1")
        }
        XCTAssertEqual(net.layers.count, 0, "a refused layer is not added")
    }

    /// A batch of one refused by a later BatchNorm (one value per channel) is refused before any layer
    /// runs: the earlier BatchNorm (spatial, so a batch of one is enough for it) keeps its statistics and
    /// the Dropout its generator, so the next masks are those of a twin net that never had the call.
    func testARefusedForwardChangesNothing() throws {
        func make() throws -> Sequential {
            let net = try Sequential(sampleShape: [2, 3], seed: 4)
            try net.addBatchNorm()
            try net.addDropout(0.5)
            try net.addFlatten()
            try net.addLinear(3)
            try net.addBatchNorm()
            return net
        }
        let net = try make(), twin = try make()
        let one: [Float] = [0.2, -0.4, 0.6, 1.0, -1.2, 0.8]
        assertThrowsBNDError(try net.forward(one, batch: 1), shape, containing: "Expected more than 1 value per channel")
        var x = one
        assertThrowsBNDError(try net.forward(&x, batch: 1, borrowingInput: true), shape, containing: "Expected more than 1 value")
        XCTAssertEqual(try net.tensor("0.running_mean"), [0, 0])
        XCTAssertEqual(try net.tensor("0.num_batches_tracked"), [0])
        let two = one + one.map { -$0 }
        XCTAssertEqual(try net.forward(two, batch: 2), try twin.forward(two, batch: 2), "the same masks as the twin's")

        // A training step on a net in eval mode trains in train mode: its batch of one is refused before
        // the step zeroes the gradients.
        net.isTraining = false
        let sgd = try SGD(parameters: net.parameters)
        _ = try net.trainStep(input: two, targets: [0, 1, 2, 3, 4, 5], optimizer: sgd)
        try [Float](repeating: 7, count: 3).withUnsafeBufferPointer { try net.setGradient("3.bias", from: $0) }
        assertThrowsBNDError(try net.trainStep(input: one, targets: [0, 1, 2], optimizer: sgd), shape, containing: "Expected more than 1 value")
        XCTAssertEqual(try net.gradient("3.bias"), [7, 7, 7], "a refused step leaves the gradients")
        XCTAssertFalse(net.isTraining)
    }

    func testBatchNormBatchOfOneInTraining() throws {
        let net = try Sequential(sampleShape: [3])
        try net.addBatchNorm()
        assertThrowsBNDError(try net.forward([1, 2, 3], batch: 1), shape, containing: "Expected more than 1 value per channel when training")
        XCTAssertEqual(try net.tensor("0.num_batches_tracked"), [0], "a refused batch updates nothing")
        XCTAssertEqual(try net.tensor("0.running_mean"), [0, 0, 0])
        net.isTraining = false
        XCTAssertEqual(try net.forward([1, 2, 3], batch: 1).count, 3, "eval with running stats takes a batch of one")
        let noStats = try Sequential(sampleShape: [3])
        try noStats.addBatchNorm(trackRunningStats: false)
        noStats.isTraining = false
        assertThrowsBNDError(try noStats.forward([1, 2, 3], batch: 1), shape, containing: "Expected more than 1 value per channel")
        // BatchNorm2d: one sample with a spatial extent is fine, 1×1 is not.
        let conv = try Sequential(sampleShape: [2, 1, 1])
        try conv.addBatchNorm()
        assertThrowsBNDError(try conv.forward([1, 2], batch: 1), shape, containing: "more than 1 value per channel")
    }

    func testShapeMismatches() throws {
        let net = try Sequential(sampleShape: [1, 28, 28])
        assertThrowsBNDError(try net.addLinear(10), shape, containing: "add a Flatten first")
        assertThrowsBNDError(try net.addConv2d(outChannels: 3, kernelSize: 29), shape, containing: "larger than the padded input")
        assertThrowsBNDError(try net.addMaxPool2d(kernelSize: 0), invalid, containing: "kernel_size, stride and dilation > 0")
        try net.addFlatten()
        try net.addLinear(10)
        assertThrowsBNDError(try net.forward([Float](repeating: 0, count: 783), batch: 1), shape, containing: "784")
        assertThrowsBNDError(try net.forward([], batch: 0), shape, containing: "batch")
        assertThrowsBNDError(try net.setTensor("1.weight", [1, 2, 3]), shape, containing: "7840")
        assertThrowsBNDError(try net.add(Linear(inputShape: [5], outFeatures: 2, random: &SeededRandom.shared)), shape,
                             containing: "expects input [5]")
        assertThrowsBNDError(try Sequential(sampleShape: [2, 2, 2, 2]), shape, containing: "1 to 3 dimensions")
        assertThrowsBNDError(try Sequential(sampleShape: [0]), shape, containing: "positive")
    }

    func testLabelsOutOfRange() throws {
        for label: Int32 in [-1, 3, 1000] {
            assertThrowsBNDError(try Loss.crossEntropy(logits: [Float](repeating: 0, count: 6), labels: [0, label], classes: 3),
                                 invalid, containing: "out of bounds")
        }
        let net = try Sequential(sampleShape: [2])
        try net.addLinear(3)
        let before = try net.tensor("0.weight")
        let sgd = try SGD(parameters: net.parameters, learningRate: 0.1)
        assertThrowsBNDError(try net.trainStep(input: [1, 2], labels: [3], optimizer: sgd), invalid, containing: "Target 3")
        XCTAssertEqual(try net.tensor("0.weight"), before, "a refused step changes nothing")
    }

    func testStateErrors() throws {
        let net = try Sequential(sampleShape: [3])
        try net.addLinear(2)
        assertThrowsBNDError(try net.backward([1, 2], batch: 1), state, containing: "forward")
        _ = try net.forward([1, 2, 3, 4, 5, 6], batch: 2)
        assertThrowsBNDError(try net.backward([1, 2], batch: 1), shape, containing: "differs from the forward batch 2")
        assertThrowsBNDError(try net.layerOutput(5), invalid, containing: "out of range")
        assertThrowsBNDError(try net.tensor("3.weight"), invalid, containing: "0.weight, 0.bias")
        assertThrowsBNDError(try net.tensor("weight"), invalid, containing: "no tensor named 'weight'")
        assertThrowsBNDError(try net.gradient("0.running_mean"), invalid, containing: "no tensor named")
    }

    /// As PyTorch refuses a backward through weights modified in place since the forward, so does bndrop:
    /// after an optimizer step, a set tensor, a load or a re-seed; the gradients stay as they were, and a
    /// new forward makes backward possible again. Buffers (running statistics) and gradients may change.
    func testBackwardAfterTheParametersChangedIsAStateError() throws {
        let net = try Sequential(sampleShape: [3], seed: 2)
        try net.addLinear(2)
        try net.addBatchNorm()
        let input: [Float] = [1, 2, 3, 4, 5, 7], gradOutput: [Float] = [1, -1, 0.5, 2]
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.1)
        let path = NSTemporaryDirectory() + "bndrop-version-\(getpid()).safetensors"
        defer { unlink(path) }
        try net.save(to: path)
        let changes: [(String, () throws -> Void)] = [
            ("optimizer step", { try optimizer.step() }),
            ("set weight", { try net.setTensor("0.weight", [1, 0, 0, 0, 1, 0]) }),
            ("set BatchNorm weight", { try net.setTensor("1.weight", [2, 3]) }),
            ("load", { try net.loadWeights(from: path) }),
            ("seed", { net.seed(9) }),
        ]
        for (what, change) in changes {
            _ = try net.forward(input, batch: 2)
            try change()
            try [Float](repeating: 0.25, count: 6).withUnsafeBufferPointer { try net.setGradient("0.weight", from: $0) }
            assertThrowsBNDError(try net.backward(gradOutput, batch: 2), state, containing: "the parameters changed after the forward")
            XCTAssertEqual(try net.gradient("0.weight"), [Float](repeating: 0.25, count: 6), what)
            _ = try net.forward(input, batch: 2)
            XCTAssertNoThrow(try net.backward(gradOutput, batch: 2), what)
        }
        // What backward does not read may change: running statistics, gradients, the mode.
        _ = try net.forward(input, batch: 2)
        try net.setTensor("1.running_mean", [5, 6])
        net.zeroGrad()
        net.isTraining = false
        XCTAssertNoThrow(try net.backward(gradOutput, batch: 2))
    }

    func testOptimizerHyperParameters() throws {
        let p = try Parameter(shape: [3])
        assertThrowsBNDError(try SGD(parameters: [p], learningRate: -1), invalid, containing: "learning rate")
        assertThrowsBNDError(try SGD(parameters: [p], learningRate: .nan), invalid, containing: "learning rate")
        assertThrowsBNDError(try SGD(parameters: [p], momentum: 0, nesterov: true), invalid, containing: "Nesterov")
        assertThrowsBNDError(try SGD(parameters: [p], momentum: 0.9, dampening: 0.1, nesterov: true), invalid, containing: "dampening")
        assertThrowsBNDError(try Adam(parameters: [p], beta1: 1), invalid, containing: "beta1")
        assertThrowsBNDError(try Adam(parameters: [p], beta2: -0.1), invalid, containing: "beta2")
        assertThrowsBNDError(try Adam(parameters: [p], eps: .infinity), invalid, containing: "eps")
        assertThrowsBNDError(try BatchNorm(inputShape: [3], momentum: 2), invalid, containing: "momentum")
        assertThrowsBNDError(try BatchNorm(inputShape: [3], eps: 0), invalid, containing: "eps")
    }

    func testNonFiniteLossUpdatesNothing() throws {
        let net = try Sequential(sampleShape: [2])
        try net.addLinear(1)
        let before = try net.tensor("0.weight")
        let adam = try Adam(parameters: net.parameters)
        assertThrowsBNDError(try net.trainStep(input: [.nan, 1], targets: [0], optimizer: adam), numeric, containing: "nan")
        XCTAssertEqual(try net.tensor("0.weight"), before)
        XCTAssertEqual(adam.stepCount, 0)
    }

    /// The finiteness scan (in chunks of 4096 values) names the first bad value, at any place: the
    /// first, either side of a chunk boundary, the last; NaN, infinities and a signalling NaN.
    func testNonFiniteInputIsFoundAtItsIndex() throws {
        let features = 9000
        let net = try Sequential(sampleShape: [features])
        try net.addLinear(1)
        let sgd = try SGD(parameters: net.parameters, learningRate: 0.1)
        let cases: [(Int, Float)] = [(0, .nan), (4095, .infinity), (4096, -.infinity), (5000, .signalingNaN),
                                     (8999, .nan)]
        for (index, bad) in cases {
            var x = [Float](repeating: 1e38, count: features)
            x[index] = bad
            if index + 7 < features { x[index + 7] = .nan }  // a later one is not the one named
            assertThrowsBNDError(try net.trainStep(input: x, targets: [0], optimizer: sgd), numeric, containing: "input[\(index)]")
        }
        // The extremes of the finite floats pass the scan (zero weights keep the loss finite).
        try net.setTensor("0.weight", [Float](repeating: 0, count: features))
        var extremes = [Float](repeating: .greatestFiniteMagnitude, count: features)
        extremes[4096] = -.greatestFiniteMagnitude
        extremes[4097] = .leastNonzeroMagnitude
        XCTAssertNoThrow(try net.trainStep(input: extremes, targets: [0], optimizer: sgd))
    }

    func testHugeBatchIsRefusedNotTrapped() throws {
        let net = try Sequential(sampleShape: [784])
        try net.addLinear(48)
        var x: Float = 0
        assertThrowsBNDError(try net.forward(&x, batch: Int.max / 2), shape, containing: "exceed")
        assertThrowsBNDError(try net.forward(&x, batch: -5), shape, containing: "positive")
    }
}

extension SeededRandom {
    /// A throwaway generator for tests that need an `inout` one.
    nonisolated(unsafe) static var shared = SeededRandom(seed: 0)
}

import XCTest
import BNDrop

/// The losses with PyTorch's other arguments (weight, ignore_index, label_smoothing, reduction): the
/// edges PyTorch 2.15 defines and the arguments it refuses. Tests/golden compares values and gradients
/// with PyTorch's.
final class LossOptionsTests: XCTestCase {
    private func logits(_ batch: Int, _ classes: Int) -> [Float] {
        var random = SeededRandom(seed: 21)
        return (0..<(batch * classes)).map { _ in 2 * random.nextNormal() }
    }

    /// With PyTorch's defaults the options take the plain path: the same bits, for a batch of one task and
    /// for one large enough to run on the thread pool.
    func testDefaultsGiveThePlainLossBitForBit() throws {
        for (batch, classes) in [(6, 4), (8192, 10)] {
            let x = logits(batch, classes), y = (0..<batch).map { Int32($0 % classes) }
            let plain = try Loss.crossEntropy(logits: x, labels: y, classes: classes)
            let options = try Loss.crossEntropy(logits: x, labels: y, classes: classes, options: CrossEntropyOptions())
            XCTAssertEqual(options.loss.bitPattern, plain.loss.bitPattern)
            XCTAssertEqual(options.gradient.map(\.bitPattern), plain.gradient.map(\.bitPattern))
        }
    }

    /// PyTorch: every sample ignored gives NaN for the mean (0 / 0) and 0 for the sum; the gradient rows of
    /// ignored samples are zero.
    func testEverySampleIgnored() throws {
        let x = logits(3, 4), y: [Int32] = [-100, -100, -100]
        let mean = try Loss.crossEntropy(logits: x, labels: y, classes: 4, options: CrossEntropyOptions())
        XCTAssertTrue(mean.loss.isNaN)
        let sum = try Loss.crossEntropy(logits: x, labels: y, classes: 4, options: CrossEntropyOptions(reduction: .sum))
        XCTAssertEqual(sum.loss, 0)
        XCTAssertEqual(sum.gradient, [Float](repeating: 0, count: 12))
    }

    /// A uniform class weight changes nothing in the mean; label smoothing 1 makes the target uniform, so
    /// the loss no longer depends on the labels.
    func testWeightsAndSmoothingAtTheirEdges() throws {
        let x = logits(5, 3), y: [Int32] = [0, 2, 1, 1, 0]
        let plain = try Loss.crossEntropy(logits: x, labels: y, classes: 3)
        let uniform = try Loss.crossEntropy(logits: x, labels: y, classes: 3, options: CrossEntropyOptions(weight: [2, 2, 2]))
        XCTAssertEqual(uniform.loss, plain.loss, accuracy: 1e-6)
        for (u, p) in zip(uniform.gradient, plain.gradient) { XCTAssertEqual(u, p, accuracy: 1e-7) }
        let smooth = CrossEntropyOptions(labelSmoothing: 1)
        let a = try Loss.crossEntropy(logits: x, labels: y, classes: 3, options: smooth)
        let b = try Loss.crossEntropy(logits: x, labels: [1, 1, 1, 1, 1], classes: 3, options: smooth)
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-6)
    }

    func testArgumentsPyTorchRefusesAreRefused() {
        let x = logits(2, 4)
        assertThrowsBNDError(try Loss.crossEntropy(logits: x, labels: [0, 1], classes: 4,
                                                   options: CrossEntropyOptions(labelSmoothing: -0.1)),
                             .invalidArgument, containing: "label_smoothing")
        assertThrowsBNDError(try Loss.crossEntropy(logits: x, labels: [0, 1], classes: 4,
                                                   options: CrossEntropyOptions(labelSmoothing: .nan)),
                             .invalidArgument, containing: "label_smoothing")
        assertThrowsBNDError(try Loss.crossEntropy(logits: x, labels: [0, 1], classes: 4,
                                                   options: CrossEntropyOptions(weight: [1, 2])),
                             .invalidArgument, containing: "weight")
        assertThrowsBNDError(try Loss.crossEntropy(logits: x, labels: [0, 4], classes: 4, options: CrossEntropyOptions()),
                             .invalidArgument, containing: "out of bounds")
        // ignore_index may lie outside the classes: such labels are ignored, not refused.
        XCTAssertNoThrow(try Loss.crossEntropy(logits: x, labels: [0, 7], classes: 4,
                                               options: CrossEntropyOptions(ignoreIndex: 7)))
    }

    /// The one-call step with loss options gives the bits of forward, the loss with those options,
    /// backward and the optimizer step; options it refuses change nothing.
    func testTrainStepWithLossOptionsIsTheLoopByHand() throws {
        func net() throws -> Sequential {
            let net = try Sequential(sampleShape: [5], seed: 9)
            try net.addLinear(6)
            try net.addReLU()
            try net.addLinear(3)
            return net
        }
        let (a, b) = (try net(), try net())
        let (sgdA, sgdB) = (try SGD(parameters: a.parameters, learningRate: 0.05),
                            try SGD(parameters: b.parameters, learningRate: 0.05))
        let x = logits(8, 5), y: [Int32] = [0, 2, 1, 2, 7, 0, 1, 7]
        let options = CrossEntropyOptions(weight: [0.5, 2, 1.5], ignoreIndex: 7, labelSmoothing: 0.2)
        let stepLoss = try a.trainStep(input: x, labels: y, optimizer: sgdA, lossOptions: options)
        b.zeroGrad()
        let (loss, gradient) = try Loss.crossEntropy(logits: try b.forward(x, batch: 8), labels: y, classes: 3,
                                                     options: options)
        _ = try b.backward(gradient, batch: 8)
        try sgdB.step()
        XCTAssertEqual(stepLoss.bitPattern, loss.bitPattern)
        for (name, _) in a.stateDict {
            XCTAssertEqual(try a.tensor(name).map(\.bitPattern), try b.tensor(name).map(\.bitPattern), name)
        }
        let before = try a.tensor("0.weight")
        assertThrowsBNDError(try a.trainStep(input: x, labels: y, optimizer: sgdA,
                                             lossOptions: CrossEntropyOptions(labelSmoothing: 2)),
                             .invalidArgument, containing: "label_smoothing")
        assertThrowsBNDError(try a.trainStep(input: x, labels: y, optimizer: sgdA), .invalidArgument,
                             containing: "out of bounds")   // label 7 without ignore_index 7
        XCTAssertEqual(try a.tensor("0.weight"), before)
    }

    func testMSESumIsTheMeanTimesTheCount() throws {
        let p: [Float] = [1, -2, 0.5, 3], t: [Float] = [0, 0, 1, 1]
        let mean = try Loss.mse(prediction: p, target: t), sum = try Loss.mse(prediction: p, target: t, reduction: .sum)
        XCTAssertEqual(sum.loss, 4 * mean.loss, accuracy: 1e-6)
        XCTAssertEqual(sum.gradient, zip(p, t).map { 2 * ($0 - $1) })
    }
}

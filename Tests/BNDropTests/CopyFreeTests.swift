import XCTest
@preconcurrency import BNDrop

/// The copies the network skips: backward writing the input gradient straight into the caller's buffer,
/// forwards that read the caller's input in place. Each must give the same bits as the copying path, and
/// the aliasing cases (the caller's gradient buffer is also the output gradient or the input) must fall
/// back to it.
final class CopyFreeTests: XCTestCase {
    /// Nets whose input and output have the same size, so one buffer can play every role, each starting
    /// with a different kind of layer (the one that writes the input gradient).
    private let builders: [(String, [Int], (Sequential) throws -> Void)] = [
        ("Linear first", [6], { try $0.addLinear(5); try $0.addReLU(); try $0.addLinear(6) }),
        ("BatchNorm1d first", [6], { try $0.addBatchNorm(); try $0.addLinear(6) }),
        ("ReLU first", [6], { try $0.addReLU(); try $0.addLinear(6) }),
        ("Dropout first", [6], { try $0.addDropout(0.3); try $0.addLinear(6) }),
        ("Conv2d first", [2, 5, 5], { try $0.addConv2d(outChannels: 2, kernelSize: 3, padding: 1); try $0.addBatchNorm() }),
        ("BatchNorm2d first", [2, 5, 5], { try $0.addBatchNorm(); try $0.addReLU() }),
        ("AvgPool2d first", [2, 4, 4], { try $0.addAvgPool2d(kernelSize: 2); try $0.addFlatten(); try $0.addLinear(32) }),
        ("MaxPool2d first", [2, 4, 4], { try $0.addMaxPool2d(kernelSize: 2); try $0.addFlatten(); try $0.addLinear(32) }),
    ]

    private func makeNet(_ shape: [Int], _ build: (Sequential) throws -> Void) throws -> Sequential {
        let net = try Sequential(sampleShape: shape, seed: 7)
        try build(net)
        return net
    }

    private func values(_ count: Int, _ salt: Int) -> [Float] {
        (0..<count).map { Float(($0 * 37 + salt * 11) % 23) / 7 - 1.5 }
    }

    private func parameterGradients(_ net: Sequential) -> [[Float]] { net.parameters.map { $0.gradient.array } }

    func testInputGradientIsTheSameWhateverBufferReceivesIt() throws {
        let batch = 3
        for (name, shape, build) in builders {
            let reference = try makeNet(shape, build), inPlace = try makeNet(shape, build)
            let borrowed = try makeNet(shape, build)
            let count = batch * reference.inputCount
            XCTAssertEqual(count, batch * reference.outputCount, name)
            let input = values(count, 1), gradOutput = values(count, 2)

            // A separate buffer: the first layer writes into it directly.
            _ = try reference.forward(input, batch: batch)
            var expected = [Float](repeating: .nan, count: count)
            try gradOutput.withUnsafeBufferPointer { g in
                try expected.withUnsafeMutableBufferPointer {
                    try reference.backward(g.baseAddress!, batch: batch, gradInput: $0)
                }
            }
            XCTAssertFalse(expected.contains { $0.isNaN }, "\(name): every value written")

            // The output gradient's own buffer receives the input gradient: the copying path.
            _ = try inPlace.forward(input, batch: batch)
            var shared = gradOutput
            try shared.withUnsafeMutableBufferPointer { buffer in
                try inPlace.backward(UnsafePointer(buffer.baseAddress!), batch: batch, gradInput: buffer)
            }
            XCTAssertEqual(shared, expected, "\(name): gradient buffer reused for the input gradient")

            // A forward that borrows the input, whose buffer then receives the input gradient.
            var borrowedInput = input
            try borrowedInput.withUnsafeMutableBufferPointer { buffer in
                _ = try borrowed.forward(UnsafePointer(buffer.baseAddress!), batch: batch, borrowingInput: true)
                try gradOutput.withUnsafeBufferPointer { g in
                    try borrowed.backward(g.baseAddress!, batch: batch, gradInput: buffer)
                }
            }
            XCTAssertEqual(borrowedInput, expected, "\(name): input buffer reused for the input gradient")

            XCTAssertEqual(parameterGradients(inPlace), parameterGradients(reference), name)
            XCTAssertEqual(parameterGradients(borrowed), parameterGradients(reference), name)
        }
    }

    func testBorrowedForwardComputesWhatTheCopyingOneDoes() throws {
        let (name, shape, build) = builders[0]
        let copying = try makeNet(shape, build), borrowing = try makeNet(shape, build)
        let input = values(4 * copying.inputCount, 3)
        let expected = try copying.forward(input, batch: 4)
        let got = try input.withUnsafeBufferPointer { Array(try borrowing.forward($0.baseAddress!, batch: 4, borrowingInput: true)) }
        XCTAssertEqual(got, expected, name)
    }

    func testBackwardAfterATrainingStepNeedsANewForward() throws {
        let net = try Sequential(sampleShape: [4], seed: 1)
        try net.addLinear(3)
        try net.addBatchNorm()
        try net.addLinear(2)
        let optimizer = try SGD(parameters: net.parameters, learningRate: 0.1)
        let input = values(16, 4)
        _ = try net.trainStep(input: input, labels: [0, 1, 1, 0], optimizer: optimizer)
        // The step's layer outputs stay readable; its backward is used up.
        XCTAssertEqual(try net.layerOutputCount(2), 8)
        assertThrowsBNDError(try net.backward([Float](repeating: 1, count: 8), batch: 4), .state,
                             containing: "run a forward first")
        // A new forward makes backward possible again.
        _ = try net.forward(input, batch: 4)
        XCTAssertNoThrow(try net.backward([Float](repeating: 1, count: 8), batch: 4))
    }
}

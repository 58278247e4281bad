import XCTest
import Foundation
@preconcurrency import BNDrop

/// Pooling with PyTorch's other arguments (padding, ceil_mode, count_include_pad, divisor_override,
/// dilation): what PyTorch 2.15 does at the edges (NaNs, windows outside the input), arguments it refuses,
/// and the arguments kept by checkpoints and by BatchNorm folding. Tests/golden compares the values and
/// gradients with PyTorch's.
final class PoolingArgumentsTests: TemporaryFolderTestCase {
    /// Forward then backward of one sample through `pool`.
    private func run(_ pool: Layer, _ x: [Float], _ dy: [Float]) throws -> (y: [Float], dx: [Float]) {
        let y = Array(UnsafeBufferPointer(start: try pool.forward(x, batch: 1), count: pool.outputShape.reduce(1, *)))
        let dx = try XCTUnwrap(try pool.backward(dy, batch: 1, needInputGradient: true))
        return (y, Array(UnsafeBufferPointer(start: dx, count: pool.inputShape.reduce(1, *))))
    }

    /// PyTorch: MaxPool2d(2) of [[nan, 1], [nan, 2]] is nan, and the gradient goes to the last NaN, (1, 0).
    func testMaxPoolGivesTheGradientToTheLastNaNAsPyTorch() throws {
        let pool = try MaxPool2d(inputShape: [1, 2, 2], kernelSize: 2)
        let (y, dx) = try run(pool, [.nan, 1, .nan, 2], [1])
        XCTAssertTrue(y[0].isNaN)
        XCTAssertEqual(dx, [0, 0, 1, 0])
        // Ties without NaN: the first maximum in row-major order takes it.
        let (tie, tieDx) = try run(pool, [1, 3, 3, 2], [1])
        XCTAssertEqual(tie, [3])
        XCTAssertEqual(tieDx, [0, 1, 0, 0])
    }

    /// PyTorch: MaxPool2d(2, stride 2, padding 1, dilation 5, ceil_mode) on 3×3 has one window, cells -1
    /// and 4 on each axis, none inside: -inf, and no gradient anywhere.
    func testADilatedWindowWithNoCellInsideGivesMinusInfinityAndNoGradient() throws {
        let pool = try MaxPool2d(inputShape: [1, 3, 3], kernelSize: 2, stride: 2, padding: 1, dilation: 5, ceilMode: true)
        XCTAssertEqual(pool.outputShape, [1, 1, 1])
        let (y, dx) = try run(pool, (1...9).map(Float.init), [1])
        XCTAssertEqual(y, [-.infinity])
        XCTAssertEqual(dx, [Float](repeating: 0, count: 9))
    }

    /// The padding is -inf for MaxPool2d: an all-negative plane's padded windows keep their negative maxima.
    func testMaxPoolPaddingNeverWins() throws {
        let pool = try MaxPool2d(inputShape: [1, 2, 2], kernelSize: 2, stride: 1, padding: 1)
        XCTAssertEqual(pool.outputShape, [1, 3, 3])
        let (y, dx) = try run(pool, [-1, -2, -3, -4], [Float](repeating: 1, count: 9))
        XCTAssertEqual(y, [-1, -1, -2, -1, -1, -2, -3, -3, -4])
        XCTAssertEqual(dx, [4, 2, 2, 1])
    }

    func testArgumentsPyTorchRefusesAreRefusedWithoutATrap() {
        let shape = [1, 6, 6]
        assertThrowsBNDError(try AvgPool2d(inputShape: shape, kernelSize: 3, padding: 2), .invalidArgument,
                             containing: "padding")
        assertThrowsBNDError(try MaxPool2d(inputShape: shape, kernelSize: 3, padding: -1), .invalidArgument,
                             containing: "padding")
        assertThrowsBNDError(try AvgPool2d(inputShape: shape, kernelSize: 3, divisorOverride: 0), .invalidArgument,
                             containing: "divisor_override")
        assertThrowsBNDError(try AvgPool2d(inputShape: shape, kernelSize: 3, divisorOverride: Int.min), .invalidArgument)
        assertThrowsBNDError(try MaxPool2d(inputShape: shape, kernelSize: 3, dilation: 0), .invalidArgument,
                             containing: "dilation")
        assertThrowsBNDError(try MaxPool2d(inputShape: shape, kernelSize: 3, dilation: 3), .shape, containing: "output")
        assertThrowsBNDError(try MaxPool2d(inputShape: shape, kernelSize: 3, dilation: Int.max), .shape)
        assertThrowsBNDError(try MaxPool2d(inputShape: shape, kernelSize: Int.max, padding: Int.max / 2), .shape)
        assertThrowsBNDError(try AvgPool2d(inputShape: shape, kernelSize: 2, stride: Int.max), .invalidArgument,
                             containing: "stride")
        assertThrowsBNDError(try AvgPool2d(inputShape: shape, kernelSize: 2, stride: Int.min), .invalidArgument)
        // The largest stride taken: no overflow in the sizes (ceil mode: one window, clipped to the input).
        XCTAssertEqual(try AvgPool2d(inputShape: shape, kernelSize: 2, stride: Int(Int32.max), ceilMode: true).outputShape,
                       [1, 1, 1])
    }

    /// A checkpoint keeps every pooling argument; the arguments at PyTorch's defaults are not written, so
    /// that a checkpoint of the article's pooling is what earlier versions wrote (and read).
    func testCheckpointsKeepThePoolingArguments() throws {
        let net = try Sequential(sampleShape: [2, 9, 9], seed: 5)
        try net.addMaxPool2d(kernelSize: 3, stride: 2, padding: 1, dilation: 2, ceilMode: true)
        try net.addAvgPool2d(kernelSize: 2, ceilMode: true, countIncludePad: false, divisorOverride: 3)
        try net.addAvgPool2d(kernelSize: 2)
        try net.addFlatten()
        try net.addLinear(4)
        try net.save(to: path("pools.safetensors"))
        let loaded = try Sequential(contentsOf: path("pools.safetensors"))
        let max = try XCTUnwrap(loaded.layers[0] as? MaxPool2d)
        XCTAssertEqual([max.kernelSize, max.stride, max.padding, max.dilation], [3, 2, 1, 2])
        XCTAssertTrue(max.ceilMode)
        let avg = try XCTUnwrap(loaded.layers[1] as? AvgPool2d)
        XCTAssertEqual([avg.kernelSize, avg.stride, avg.padding], [2, 2, 0])
        XCTAssertTrue(avg.ceilMode)
        XCTAssertFalse(avg.countIncludePad)
        XCTAssertEqual(avg.divisorOverride, 3)
        XCTAssertEqual(loaded.layers.map(\.outputShape), net.layers.map(\.outputShape))
        let x = (0..<(3 * net.inputCount)).map { Float($0 % 17) - 8 }
        net.isTraining = false
        loaded.isTraining = false
        XCTAssertEqual(try loaded.forward(x, batch: 3).map(\.bitPattern), try net.forward(x, batch: 3).map(\.bitPattern))
        let text = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: path("pools.safetensors"))),
                          as: UTF8.self)
        XCTAssertTrue(text.contains(#"{\"type\":\"AvgPool2d\",\"kernel_size\":2,\"stride\":2}"#), "a default pool as before")
        XCTAssertTrue(text.contains(#"\"divisor_override\":3"#))
    }

    /// The inference copy that folds BatchNorm keeps the pooling arguments.
    func testFoldingBatchNormKeepsThePoolingArguments() throws {
        let net = try Sequential(sampleShape: [1, 8, 8], seed: 3)
        try net.addConv2d(outChannels: 2, kernelSize: 3, stride: 1, padding: 1)
        try net.addBatchNorm()
        try net.addMaxPool2d(kernelSize: 3, stride: 2, padding: 1, ceilMode: true)
        try net.addAvgPool2d(kernelSize: 3, stride: 1, padding: 1, countIncludePad: false, divisorOverride: nil)
        net.isTraining = false
        let folded = try net.foldingBatchNorm()
        XCTAssertEqual(folded.layers.map(\.typeName), ["Conv2d", "MaxPool2d", "AvgPool2d"])
        let max = try XCTUnwrap(folded.layers[1] as? MaxPool2d)
        XCTAssertEqual([max.padding, max.dilation], [1, 1])
        XCTAssertTrue(max.ceilMode)
        let avg = try XCTUnwrap(folded.layers[2] as? AvgPool2d)
        XCTAssertEqual(avg.padding, 1)
        XCTAssertFalse(avg.countIncludePad)
        XCTAssertEqual(folded.outputShape, net.outputShape)
        let x = (0..<(2 * net.inputCount)).map { Float(($0 * 7) % 13) / 13 }
        folded.isTraining = false
        let expected = try net.forward(x, batch: 2), actual = try folded.forward(x, batch: 2)
        for (a, e) in zip(actual, expected) { XCTAssertEqual(a, e, accuracy: 1e-5) }
    }
}

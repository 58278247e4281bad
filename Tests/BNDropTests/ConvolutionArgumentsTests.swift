import XCTest
import Foundation
@_spi(Testing) import BNDrop

/// Conv2d with dilation and groups: the weight's shape and fan-in, refused arguments, the im2col
/// lowering whatever is asked, checkpoints and BatchNorm folding. Tests/golden compares the values and
/// gradients with PyTorch's.
final class ConvolutionArgumentsTests: TemporaryFolderTestCase {
    func testShapesAndInitialisationFollowPyTorch() throws {
        var random = SeededRandom(seed: 1)
        let conv = try Conv2d(inputShape: [4, 11, 9], outChannels: 6, kernelSize: 3, stride: 2, padding: 1,
                              dilation: 2, groups: 2, random: &random)
        // (11 + 2 - 2·2 - 1) / 2 + 1 = 5, (9 + 2 - 5) / 2 + 1 = 4
        XCTAssertEqual(conv.outputShape, [6, 5, 4])
        XCTAssertEqual(conv.weight.shape, [6, 2, 3, 3])
        // fan_in = in_channels / groups · k · k = 18: every weight and bias inside ±1/√18
        let bound = 1 / Float(18).squareRoot()
        let values = Array(conv.weight.value.buffer) + Array(conv.bias.value.buffer)
        XCTAssertTrue(values.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(values.map(abs).max() ?? 0, bound * 0.8, "the bound is that of fan_in 18, not 36")
    }

    func testArgumentsPyTorchRefusesAreRefused() {
        var random = SeededRandom(seed: 1)
        func conv(_ shape: [Int] = [4, 8, 8], out: Int = 4, kernel: Int = 3, padding: Int = 0, dilation: Int = 1,
                  groups: Int = 1) throws -> Conv2d {
            try Conv2d(inputShape: shape, outChannels: out, kernelSize: kernel, padding: padding, dilation: dilation,
                       groups: groups, random: &random)
        }
        assertThrowsBNDError(try conv(groups: 3), .invalidArgument, containing: "divisible by groups")
        assertThrowsBNDError(try conv(out: 6, groups: 4), .invalidArgument, containing: "divisible by groups")
        assertThrowsBNDError(try conv(groups: 0), .invalidArgument, containing: "groups")
        assertThrowsBNDError(try conv(groups: -4), .invalidArgument, containing: "groups")
        assertThrowsBNDError(try conv(dilation: 0), .invalidArgument, containing: "dilation")
        assertThrowsBNDError(try conv(dilation: Int.max), .invalidArgument, containing: "dilation")
        assertThrowsBNDError(try conv(dilation: 4), .shape, containing: "9 cells")   // 9 taps' span on 8
        XCTAssertEqual(try conv(padding: 1, dilation: 4).outputShape, [4, 2, 2])     // fits the padded 10
    }

    /// The direct kernels take neither dilation nor groups: asking for them gives the im2col lowering,
    /// whose results the golden cases check.
    func testDilatedOrGroupedLayersUseTheIm2colLowering() throws {
        var random = SeededRandom(seed: 2)
        for (dilation, groups) in [(2, 1), (1, 2), (2, 2)] {
            let conv = try Conv2d(inputShape: [2, 12, 12], outChannels: 2, kernelSize: 3, dilation: dilation,
                                  groups: groups, random: &random)
            conv.lowering = .direct
            XCTAssertFalse(conv.usesDirectKernels, "dilation \(dilation), groups \(groups)")
            let x: [Float] = (0..<864).map { i in Float(i % 7) - 3 }
            let count = 3 * conv.outputShape.reduce(1, *)
            let y = Array(UnsafeBufferPointer(start: try conv.forward(x, batch: 3), count: count))
            conv.lowering = .automatic
            let again = Array(UnsafeBufferPointer(start: try conv.forward(x, batch: 3), count: count))
            XCTAssertEqual(again.map(\.bitPattern), y.map(\.bitPattern))
        }
        let plain = try Conv2d(inputShape: [2, 12, 12], outChannels: 2, kernelSize: 3, random: &random)
        plain.lowering = .direct
        XCTAssertTrue(plain.usesDirectKernels, "without dilation or groups the direct kernels still apply")
    }

    /// Checkpoints keep dilation and groups (written only when not PyTorch's defaults); a grouped
    /// weight's shape in the file is PyTorch's.
    func testCheckpointsKeepDilationAndGroups() throws {
        let net = try Sequential(sampleShape: [4, 10, 10], seed: 4)
        try net.addConv2d(outChannels: 8, kernelSize: 3, padding: 2, dilation: 2, groups: 4)
        try net.addConv2d(outChannels: 2, kernelSize: 3)
        try net.addFlatten()
        try net.addLinear(3)
        try net.save(to: path("conv.safetensors"))
        let loaded = try Sequential(contentsOf: path("conv.safetensors"))
        let conv = try XCTUnwrap(loaded.layers[0] as? Conv2d)
        XCTAssertEqual([conv.kernelSize, conv.stride, conv.padding, conv.dilation, conv.groups], [3, 1, 2, 2, 4])
        XCTAssertEqual(conv.weight.shape, [8, 1, 3, 3])
        let x = (0..<(2 * net.inputCount)).map { Float(($0 * 5) % 11) - 5 }
        XCTAssertEqual(try loaded.forward(x, batch: 2).map(\.bitPattern), try net.forward(x, batch: 2).map(\.bitPattern))
        let text = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: path("conv.safetensors"))),
                          as: UTF8.self)
        XCTAssertTrue(text.contains(#"\"dilation\":2,\"groups\":4,\"bias\":true"#))
        XCTAssertTrue(text.contains(#"\"kernel_size\":3,\"stride\":1,\"padding\":0,\"bias\":true"#),
                      "a default Conv2d is written as before")
        XCTAssertTrue(text.contains(#""0.weight":{"dtype":"F32","shape":[8,1,3,3]"#))
        // A file whose weight does not have the grouped shape is refused before anything is built.
        let other = try Sequential(sampleShape: [4, 10, 10], seed: 4)
        try other.addConv2d(outChannels: 8, kernelSize: 3, padding: 2, dilation: 2, groups: 2)
        try other.addConv2d(outChannels: 2, kernelSize: 3)
        try other.addFlatten()
        try other.addLinear(3)
        assertThrowsBNDError(try other.loadWeights(from: path("conv.safetensors")), .shape, containing: "0.weight")
    }

    func testFoldingBatchNormIntoAGroupedConvolution() throws {
        let net = try Sequential(sampleShape: [4, 9, 9], seed: 6)
        try net.addConv2d(outChannels: 4, kernelSize: 3, dilation: 2, groups: 4)
        try net.addBatchNorm()
        let x = (0..<(8 * net.inputCount)).map { Float(($0 * 3) % 13) / 4 - 1 }
        _ = try net.forward(x, batch: 8)   // train mode: running statistics away from 0 and 1
        net.isTraining = false
        let folded = try net.foldingBatchNorm()
        XCTAssertEqual(folded.layers.map(\.typeName), ["Conv2d"])
        let conv = try XCTUnwrap(folded.layers[0] as? Conv2d)
        XCTAssertEqual([conv.dilation, conv.groups], [2, 4])
        let expected = try net.forward(x, batch: 8), actual = try folded.forward(x, batch: 8)
        for (a, e) in zip(actual, expected) { XCTAssertEqual(a, e, accuracy: 1e-5) }
    }
}

import XCTest
@_spi(Testing) import BNDrop

/// AvgPool2d's 2×2, stride-2 C kernel gives the bits of the plain definition, ((a + b) + c) + d over 4,
/// for even and odd planes (an odd last row or column is in no window and gets a zero gradient).
final class PoolingKernelTests: XCTestCase {
    func testHalvingAveragePoolMatchesTheDefinitionBitForBit() throws {
        for (channels, height, width, batch) in [(3, 24, 24, 5), (6, 10, 10, 3), (2, 7, 9, 4), (1, 2, 2, 1), (4, 5, 38, 2)] {
            let pool = try AvgPool2d(inputShape: [channels, height, width], kernelSize: 2)
            let (oh, ow) = (height / 2, width / 2)
            XCTAssertEqual(pool.outputShape, [channels, oh, ow])
            var random = SeededRandom(seed: 9)
            let x = (0..<(batch * channels * height * width)).map { _ in random.nextNormal() }
            let dy = (0..<(batch * channels * oh * ow)).map { _ in random.nextNormal() }
            var expected = [Float](repeating: 0, count: dy.count)
            var expectedDx = [Float](repeating: 0, count: x.count)
            for plane in 0..<(batch * channels) {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let top = plane * height * width + 2 * oy * width + 2 * ox, bottom = top + width
                        let out = plane * oh * ow + oy * ow + ox
                        expected[out] = (x[top] + x[top + 1] + x[bottom] + x[bottom + 1]) / 4
                        for i in [top, top + 1, bottom, bottom + 1] { expectedDx[i] = dy[out] / 4 }
                    }
                }
            }
            let name = "\(batch)×[\(channels), \(height), \(width)]"
            let y = Array(UnsafeBufferPointer(start: try pool.forward(x, batch: batch), count: expected.count))
            XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), name)
            // A first backward on other values: the second must write every element again.
            _ = try pool.backward([Float](repeating: .nan, count: dy.count), batch: batch, needInputGradient: true)
            let dx = try XCTUnwrap(try pool.backward(dy, batch: batch, needInputGradient: true))
            XCTAssertEqual(Array(UnsafeBufferPointer(start: dx, count: x.count)).map(\.bitPattern),
                           expectedDx.map(\.bitPattern), name)
        }
    }

    /// A ReLU right before AvgPool2d(2) is taken into the pool's kernels by the network: the output, every
    /// layer output (the ReLU's is written when asked for), the parameter gradients and the input gradient
    /// must be the bits of running the same layers one by one, unfolded.
    func testReLUFoldedIntoAveragePoolGivesTheBitsOfTheLayersOneByOne() throws {
        let batch = 3
        let net = try Sequential(sampleShape: [2, 13, 12], seed: 4)
        try net.addReLU()                                 // folded into the pool: at layer 0, on the input
        try net.addAvgPool2d(kernelSize: 2)               // [2, 6, 6]
        try net.addConv2d(outChannels: 3, kernelSize: 3)  // [3, 4, 4]
        try net.addBatchNorm()
        try net.addReLU()                                 // folded again
        try net.addAvgPool2d(kernelSize: 2)               // [3, 2, 2]
        try net.addFlatten()
        try net.addLinear(5)
        var random = SeededRandom(seed: 17)
        var x = (0..<(batch * 2 * 13 * 12)).map { _ in random.nextNormal() }
        x[0] = 0; x[1] = -0.0; x[2] = .leastNonzeroMagnitude; x[3] = -.leastNonzeroMagnitude
        let dy = (0..<(batch * 5)).map { _ in random.nextNormal() }

        func gradients() -> [[UInt32]] { net.parameters.map { $0.gradient.array.map(\.bitPattern) } }
        func bits(_ p: UnsafePointer<Float>, _ count: Int) -> [UInt32] {
            Array(UnsafeBufferPointer(start: p, count: count)).map(\.bitPattern)
        }

        // The layers one by one, through their own (unfolded) forward and backward.
        var expectedOutputs: [[UInt32]] = []
        var expectedInputGradient: [UInt32] = []
        try x.withUnsafeBufferPointer { input in
            var current = input.baseAddress!
            for layer in net.layers {
                current = try layer.forward(current, batch: batch)
                expectedOutputs.append(bits(current, batch * layer.outputShape.reduce(1, *)))
            }
            try dy.withUnsafeBufferPointer { g in
                var gradient = g.baseAddress!
                for layer in net.layers.reversed() {
                    gradient = try XCTUnwrap(try layer.backward(gradient, batch: batch, needInputGradient: true))
                }
                expectedInputGradient = bits(gradient, x.count)
            }
        }
        let expectedGradients = gradients()
        net.zeroGrad()

        // The network: a fresh BatchNorm state, so reset the running statistics the first pass moved.
        net.seed(4)
        let y = try net.forward(x, batch: batch)
        XCTAssertEqual(y.map(\.bitPattern), expectedOutputs.last)
        for index in net.layers.indices.reversed() {  // the folded ReLUs' outputs last: made when asked
            XCTAssertEqual(try net.layerOutput(index).map(\.bitPattern), expectedOutputs[index], "layer \(index)")
        }
        let dx = try net.backward(dy, batch: batch)
        XCTAssertEqual(dx.map(\.bitPattern), expectedInputGradient)
        XCTAssertEqual(gradients(), expectedGradients)
    }

    /// A Conv2d on the direct kernels right before AvgPool2d(2), with a ReLU between them (folded into the
    /// pool) or none, takes the pool's output gradient into its own backward (the pool's backward never
    /// runs): the parameter gradients and the input gradient must be the bits of the layers one by one,
    /// unfolded, for even and odd output planes, with and without an input gradient below.
    func testConvolutionTakingThePoolingGradientGivesTheBitsOfTheLayersOneByOne() throws {
        for (shape, kernel, withReLU) in [([1, 14, 14], 3, true), ([2, 12, 15], 2, true), ([3, 11, 10], 3, false)] {
            let batch = 11  // tasks of 8 samples: a full one and a short one
            let net = try Sequential(sampleShape: shape, seed: 6)
            try net.addConv2d(outChannels: 3, kernelSize: kernel)
            if withReLU { try net.addReLU() }
            try net.addAvgPool2d(kernelSize: 2)
            try net.addConv2d(outChannels: 2, kernelSize: 2)
            try net.addReLU()
            try net.addAvgPool2d(kernelSize: 2)
            try net.addFlatten()
            try net.addLinear(4)
            for layer in net.layers { if let conv = layer as? Conv2d { conv.lowering = .direct } }
            XCTAssertTrue(net.layers.compactMap { $0 as? Conv2d }.allSatisfy(\.usesDirectKernels))
            var random = SeededRandom(seed: 23)
            var x = (0..<(batch * shape.reduce(1, *))).map { _ in random.nextNormal() }
            x[0] = 0; x[1] = -0.0
            // A NaN input in one case (NaN outputs, masks and gradients, as one by one): only there, since
            // it makes whole gradients NaN.
            if kernel == 2 { x[2] = .nan }
            let dy = (0..<(batch * 4)).map { _ in random.nextNormal() }
            let what = "\(shape), k \(kernel)\(withReLU ? ", ReLU" : "")"

            func gradients() -> [[UInt32]] { net.parameters.map { $0.gradient.array.map(\.bitPattern) } }
            // The layers one by one, through their own forward and backward.
            var expectedInputGradient: [UInt32] = []
            try x.withUnsafeBufferPointer { input in
                var current = input.baseAddress!
                for layer in net.layers { current = try layer.forward(current, batch: batch) }
                try dy.withUnsafeBufferPointer { g in
                    var gradient = g.baseAddress!
                    for layer in net.layers.reversed() {
                        gradient = try XCTUnwrap(try layer.backward(gradient, batch: batch, needInputGradient: true))
                    }
                    expectedInputGradient = Array(UnsafeBufferPointer(start: gradient, count: x.count)).map(\.bitPattern)
                }
            }
            let expectedGradients = gradients()
            net.zeroGrad()

            _ = try net.forward(x, batch: batch)
            let dx = try net.backward(dy, batch: batch)
            XCTAssertEqual(dx.map(\.bitPattern), expectedInputGradient, what)
            XCTAssertEqual(gradients(), expectedGradients, what)
            // Without an input gradient (the first convolution then computes none).
            net.zeroGrad()
            _ = try net.forward(x, batch: batch)
            try dy.withUnsafeBufferPointer { try net.backward($0.baseAddress!, batch: batch) }
            XCTAssertEqual(gradients(), expectedGradients, what + ", no input gradient")
        }
    }

    /// A folded ReLU whose input is the caller's borrowed input (the first layer, as with
    /// `bnd_net_forward_view` or a training step) has its output made at once: after the caller reuses
    /// the buffer, `layerOutput` still shows that forward's ReLU output.
    func testFoldedReLUOnABorrowedInputKeepsItsOutput() throws {
        let net = try Sequential(sampleShape: [1, 4, 4])
        try net.addReLU()
        try net.addAvgPool2d(kernelSize: 2)
        let x: [Float] = (0..<32).map { Float($0 % 7) - 3 }
        let expected = x.map { $0 <= 0 ? Float(0) : $0 }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
        defer { buffer.deallocate() }
        buffer.update(from: x, count: x.count)
        _ = try net.forward(UnsafePointer(buffer), batch: 2, borrowingInput: true)
        buffer.update(repeating: 5, count: x.count)  // the caller reuses its buffer
        XCTAssertEqual(try net.layerOutput(0), expected)
        // Not borrowed (the network's own copy): made when asked, the same values.
        buffer.update(from: x, count: x.count)
        _ = try net.forward(UnsafePointer(buffer), batch: 2)
        buffer.update(repeating: 5, count: x.count)
        XCTAssertEqual(try net.layerOutput(0), expected)
    }
}

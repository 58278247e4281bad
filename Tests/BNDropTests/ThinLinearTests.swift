import XCTest
import BNDrop

/// A Linear with one input or one output feature (the regression net's 1→100 and 100→1 layers) runs
/// outer and dot products of its own instead of OpenBLAS's general product, and one with a single
/// output takes in the ReLU before it on every CPU. Its results must be the products' values, and the
/// same bits as the ReLU and the Linear run one after the other.
final class ThinLinearTests: XCTestCase {
    private func close(_ actual: Float, _ expected: Double, scale: Double) -> Bool {
        abs(Double(actual) - expected) <= 2e-6 * scale
    }

    /// 1 → width → ReLU → 1 on `batch` samples: forward output, every gradient, against the definition
    /// in double precision; and bit for bit against the same layers with the ReLU run on its own.
    func testOneInputAndOneOutputLayersGiveTheProductsAndTheBitsOfAnUnfoldedReLU() throws {
        for (batch, width) in [(50, 100), (150, 100), (9, 13), (3, 1)] {
            let what = "batch \(batch), width \(width)"
            let net = try Sequential(sampleShape: [1], seed: 5)
            try net.addLinear(width)
            try net.addReLU()
            try net.addLinear(1)
            let linears = net.layers.compactMap { $0 as? Linear }
            var random = SeededRandom(seed: 17)
            // Unfolded twins with the same parameters.
            let first = try Linear(inputShape: [1], outFeatures: width, random: &random)
            first.weight.value.copy(from: linears[0].weight.value.pointer)
            first.bias.value.copy(from: linears[0].bias.value.pointer)
            let relu = try ReLU(inputShape: [width])
            let last = try Linear(inputShape: [width], outFeatures: 1, random: &random)
            last.weight.value.copy(from: linears[1].weight.value.pointer)
            last.bias.value.copy(from: linears[1].bias.value.pointer)

            let x = UnsafeMutablePointer<Float>.allocate(capacity: batch)
            defer { x.deallocate() }
            x.initialize(from: (0..<batch).map { _ in random.nextNormal() }, count: batch)
            let dy = (0..<batch).map { _ in random.nextNormal() }

            let y = Array(try net.forward(x, batch: batch))
            let z = Array(UnsafeBufferPointer(start: try first.forward(x, batch: batch), count: batch * width))
            let h = Array(UnsafeBufferPointer(start: try relu.forward(z, batch: batch), count: batch * width))
            let yTwin = Array(UnsafeBufferPointer(start: try last.forward(h, batch: batch), count: batch))
            XCTAssertEqual(y.map(\.bitPattern), yTwin.map(\.bitPattern), "\(what): output")
            XCTAssertEqual(try net.layerOutput(1).map(\.bitPattern), h.map(\.bitPattern), "\(what): the ReLU's output")

            // The backward passes read the forward's inputs: z and h must outlive them.
            try withExtendedLifetime((z, h)) {
                var dx = [Float](repeating: 0, count: batch)
                try dy.withUnsafeBufferPointer { dy in
                    try dx.withUnsafeMutableBufferPointer { try net.backward(dy.baseAddress!, batch: batch, gradInput: $0) }
                }
                let dh = try XCTUnwrap(try last.backward(dy, batch: batch, needInputGradient: true))
                let dz = try XCTUnwrap(try relu.backward(dh, batch: batch, needInputGradient: true))
                let dxTwin = try XCTUnwrap(try first.backward(dz, batch: batch, needInputGradient: true))
                XCTAssertEqual(dx.map(\.bitPattern), Array(UnsafeBufferPointer(start: dxTwin, count: batch)).map(\.bitPattern),
                               "\(what): input gradient")
                for (linear, twin) in zip(linears, [first, last]) {
                    XCTAssertEqual(linear.weight.gradient.array.map(\.bitPattern), twin.weight.gradient.array.map(\.bitPattern),
                                   "\(what): weight gradient")
                    XCTAssertEqual(linear.bias.gradient.array.map(\.bitPattern), twin.bias.gradient.array.map(\.bitPattern),
                                   "\(what): bias gradient")
                }

                // The definitions, in double precision.
                let w1 = linears[0].weight.value.array, b1 = linears[0].bias.value.array
                let w2 = linears[1].weight.value.array, b2 = Double(linears[1].bias.value.array[0])
                var dW1 = [Double](repeating: 0, count: width), dB1 = [Double](repeating: 0, count: width)
                var dW2 = [Double](repeating: 0, count: width), dB2 = 0.0
                var scale1 = [Double](repeating: 0, count: width), scale2 = [Double](repeating: 0, count: width)
                for n in 0..<batch {
                    let xn = Double(x[n]), g = Double(dy[n])
                    var sum = b2, magnitude = abs(b2)
                    var dxn = 0.0, dxScale = 0.0
                    for o in 0..<width {
                        let zo = Double(b1[o]) + xn * Double(w1[o])
                        XCTAssertTrue(close(z[n * width + o], zo, scale: abs(Double(b1[o])) + abs(xn * Double(w1[o]))),
                                      "\(what): z[\(n), \(o)]")
                        let ho = max(Double(z[n * width + o]), 0)
                        sum += ho * Double(w2[o])
                        magnitude += abs(ho * Double(w2[o]))
                        dW2[o] += g * ho
                        scale2[o] += abs(g * ho)
                        let dzo = z[n * width + o] > 0 ? g * Double(w2[o]) : 0
                        dW1[o] += dzo * xn
                        dB1[o] += dzo
                        scale1[o] += abs(dzo * xn) + abs(dzo)
                        dxn += dzo * Double(w1[o])
                        dxScale += abs(dzo * Double(w1[o]))
                    }
                    dB2 += g
                    XCTAssertTrue(close(y[n], sum, scale: magnitude), "\(what): y[\(n)] = \(y[n]), expected \(sum)")
                    XCTAssertTrue(close(dx[n], dxn, scale: dxScale), "\(what): dx[\(n)] = \(dx[n]), expected \(dxn)")
                }
                let g1 = linears[0].weight.gradient.array, gb1 = linears[0].bias.gradient.array
                let g2 = linears[1].weight.gradient.array, gb2 = linears[1].bias.gradient.array
                for o in 0..<width {
                    XCTAssertTrue(close(g1[o], dW1[o], scale: scale1[o]), "\(what): dW1[\(o)] = \(g1[o]), expected \(dW1[o])")
                    XCTAssertTrue(close(gb1[o], dB1[o], scale: scale1[o]), "\(what): db1[\(o)] = \(gb1[o]), expected \(dB1[o])")
                    XCTAssertTrue(close(g2[o], dW2[o], scale: scale2[o]), "\(what): dW2[\(o)] = \(g2[o]), expected \(dW2[o])")
                }
                XCTAssertTrue(close(gb2[0], dB2, scale: dy.reduce(0) { $0 + abs(Double($1)) }), "\(what): db2")
            }
        }
    }

    /// A NaN or an infinity in the input of a one-output layer (read through the ReLU taken in) spreads
    /// as the unfolded ReLU and product spread it: NaN passes ReLU, +∞ gives ±∞ or NaN, −∞ gives 0.
    func testNonFiniteInputsSpreadAsThroughTheUnfoldedReLU() throws {
        let net = try Sequential(sampleShape: [20], seed: 2)
        try net.addReLU()
        try net.addLinear(1)
        let linear = try XCTUnwrap(net.layers.last as? Linear)
        var random = SeededRandom(seed: 3)
        let twin = try Linear(inputShape: [20], outFeatures: 1, random: &random)
        twin.weight.value.copy(from: linear.weight.value.pointer)
        twin.bias.value.copy(from: linear.bias.value.pointer)
        let relu = try ReLU(inputShape: [20])
        let batch = 4
        var input = (0..<(batch * 20)).map { _ in random.nextNormal() }
        input[3] = .nan
        input[20 + 7] = .infinity
        input[40 + 19] = -.infinity
        let y = Array(try net.forward(input, batch: batch))
        let h = try relu.forward(input, batch: batch)
        let yTwin = Array(UnsafeBufferPointer(start: try twin.forward(h, batch: batch), count: batch))
        XCTAssertEqual(y.map(\.bitPattern), yTwin.map(\.bitPattern))
        XCTAssertTrue(y[0].isNaN)
        XCTAssertTrue(y[1].isInfinite || y[1].isNaN)
        XCTAssertTrue(y[2].isFinite, "−∞ through the ReLU is 0")
        XCTAssertTrue(y[3].isFinite)
    }
}

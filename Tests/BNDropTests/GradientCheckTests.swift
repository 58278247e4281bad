import XCTest
@preconcurrency @_spi(Testing) import BNDrop

/// Central finite differences against every layer's backward and both losses.
///
/// The scalar checked is L = Σ wᵢ·yᵢ with fixed random weights w (so dL/dy = w), evaluated in double
/// precision. Inputs keep clear of ReLU's and MaxPool's kinks so the differences are well defined.
final class GradientCheckTests: XCTestCase {
    let step: Float = 1e-2
    let atol = 2e-3, rtol = 2e-2

    /// Inputs with |x| >= 0.2 and pairwise distinct, so no ±step perturbation crosses a kink or a tie.
    static func input(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { i in
            let magnitude = 0.2 + Float(i) * (1.5 / Float(count)) + random.nextUniform(0, 0.5 / Float(count))
            return random.nextUnitFloat() < 0.5 ? -magnitude : magnitude
        }.shuffled(using: &random)
    }

    private func weightedSum(_ y: [Float], _ w: [Float]) -> Double {
        zip(y, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Checks the input gradient and every parameter gradient of `net` at `x`; returns the number of
    /// elements compared. `beforeForward` runs before every forward pass (dropout resets its mask there).
    @discardableResult
    private func check(_ net: Sequential, batch: Int, _ x: [Float], _ what: String,
                       beforeForward: () -> Void = {}, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        var random = SeededRandom(seed: 99)
        beforeForward()
        let y = try net.forward(x, batch: batch)
        let w = (0..<y.count).map { _ in random.nextUniform(-1, 1) }
        net.zeroGrad()
        let analyticInput = try net.backward(w, batch: batch)
        let analyticParameters = net.parameters.map { $0.gradient.array }
        func loss(_ input: [Float]) throws -> Double {
            beforeForward()
            return self.weightedSum(try net.forward(input, batch: batch), w)
        }
        var compared = 0
        func compare(_ analytic: Float, _ numeric: Double, _ label: String) {
            compared += 1
            let error = abs(Double(analytic) - numeric)
            XCTAssertLessThanOrEqual(error, atol + rtol * abs(numeric),
                                     "\(what) \(label): analytic \(analytic), numeric \(numeric)", file: file, line: line)
        }
        // Up to 40 input elements, spread over the tensor.
        let inputStride = max(1, x.count / 40)
        for i in Swift.stride(from: 0, to: x.count, by: inputStride) {
            var plus = x, minus = x
            plus[i] += step
            minus[i] -= step
            compare(analyticInput[i], (try loss(plus) - loss(minus)) / Double(2 * step), "dx[\(i)]")
        }
        for (p, parameter) in net.parameters.enumerated() {
            let stride = max(1, parameter.count / 20)
            for j in Swift.stride(from: 0, to: parameter.count, by: stride) {
                let saved = parameter.value.pointer[j]
                parameter.value.pointer[j] = saved + step
                let up = try loss(x)
                parameter.value.pointer[j] = saved - step
                let down = try loss(x)
                parameter.value.pointer[j] = saved
                compare(analyticParameters[p][j], (up - down) / Double(2 * step), "param \(p)[\(j)]")
            }
        }
        XCTAssertGreaterThan(compared, 0, what, file: file, line: line)
        print("gradient check \(what): \(compared) elements compared")
        return compared
    }

    func testLinear() throws {
        let net = try Sequential(sampleShape: [7], seed: 1)
        try net.addLinear(5)
        try check(net, batch: 4, Self.input(28, seed: 1), "Linear")
    }

    /// The bias gradient of a large batch is summed in runs (as PyTorch's cascade sum), not down one
    /// running sum: against a double-precision sum of 1000 rows of values near 0.057, the error stays
    /// under 6e-7 relative (one running sum: 1.3e-6 on the same data; runs of 32: 3.1e-7), and a
    /// gradient already there is added to, not restarted.
    func testLinearBiasGradientOfALargeBatchIsWellRounded() throws {
        let (batch, width) = (1000, 48)
        let net = try Sequential(sampleShape: [3], seed: 2)
        try net.addLinear(width)
        var random = SeededRandom(seed: 5)
        var worst = 0.0
        for trial in 0..<10 {
            let x = (0..<(batch * 3)).map { _ in random.nextUnitFloat() }
            let dy = (0..<(batch * width)).map { _ in 0.057 + 0.01 * (random.nextUnitFloat() - 0.5) }
            net.zeroGrad()
            _ = try net.forward(x, batch: batch)
            _ = try net.backward(dy, batch: batch)
            if trial == 0 {  // accumulation: a second backward adds the same sums again
                let once = try net.gradient("0.bias")
                _ = try net.forward(x, batch: batch)
                _ = try net.backward(dy, batch: batch)
                XCTAssertEqual(try net.gradient("0.bias"), once.map { $0 + $0 })
                net.zeroGrad()
                _ = try net.forward(x, batch: batch)
                _ = try net.backward(dy, batch: batch)
            }
            let bias = try net.gradient("0.bias")
            for o in 0..<width {
                let exact = (0..<batch).reduce(0.0) { $0 + Double(dy[$1 * width + o]) }
                worst = max(worst, abs(Double(bias[o]) - exact) / exact)
            }
        }
        XCTAssertLessThan(worst, 6e-7, "bias gradient's relative error against a double sum")
    }

    func testReLU() throws {
        let net = try Sequential(sampleShape: [3, 4])
        try net.addReLU()
        try check(net, batch: 3, Self.input(36, seed: 2), "ReLU")
    }

    func testConv2dStridePadding() throws {
        for (kernel, stride, padding) in [(3, 1, 1), (5, 2, 0), (2, 2, 1)] {
            let net = try Sequential(sampleShape: [2, 7, 6], seed: 3)
            try net.addConv2d(outChannels: 3, kernelSize: kernel, stride: stride, padding: padding)
            try check(net, batch: 2, Self.input(2 * 2 * 7 * 6, seed: 3), "Conv2d k\(kernel) s\(stride) p\(padding)")
        }
    }

    func testPoolingAndFlatten() throws {
        for kind in ["avg", "max"] {
            let net = try Sequential(sampleShape: [2, 7, 7])
            if kind == "avg" { try net.addAvgPool2d(kernelSize: 3, stride: 2) } else { try net.addMaxPool2d(kernelSize: 2) }
            try net.addFlatten()
            try check(net, batch: 2, Self.input(2 * 2 * 49, seed: 4), "\(kind)pool + Flatten")
        }
    }

    func testBatchNormAllShapesAndModes() throws {
        // 45 channels and a spatial size of 13: every path of the kernels (blocks of 32 and of 8
        // channels, the channel tail; eight-value runs and their tail).
        for shape in [[5], [45], [3, 6], [2, 13], [3, 4, 4]] {
            for training in [true, false] {
                for affine in [true, false] {
                    let net = try Sequential(sampleShape: shape)
                    try net.addBatchNorm(affine: affine)
                    if affine {
                        try net.setTensor("0.weight", (0..<shape[0]).map { 0.5 + Float($0) * 0.3 })
                        try net.setTensor("0.bias", (0..<shape[0]).map { Float($0) * 0.1 - 0.2 })
                    }
                    try net.setTensor("0.running_mean", (0..<shape[0]).map { Float($0) * 0.05 })
                    try net.setTensor("0.running_var", (0..<shape[0]).map { 0.8 + Float($0) * 0.2 })
                    net.isTraining = training
                    let count = 6 * shape.reduce(1, *)
                    try check(net, batch: 6, Self.input(count, seed: 5).map { $0 * 2 + 0.3 },
                              "BatchNorm \(shape) training=\(training) affine=\(affine)")
                }
            }
        }
    }

    /// Train-mode BatchNorm against its formula computed here in double precision, on shapes that take
    /// every path of the kernels.
    func testBatchNormForwardMatchesTheFormula() throws {
        // (The last case: values 1000 + 0.01·noise, a large common offset as in the golden case
        // batchnorm1d_large_offset, through the blocks of 32 and 8 channels and the channel tail.)
        for (shape, batch, offset, spread) in [([45], 7, 1 as Float, 3 as Float), ([2, 13], 3, 1, 3), ([3, 4, 4], 5, 1, 3),
                                               ([9, 3, 5], 2, 1, 3), ([45], 9, 1000, 0.01)] {
            let channels = shape[0], spatial = shape.dropFirst().reduce(1, *)
            let net = try Sequential(sampleShape: shape)
            try net.addBatchNorm()
            let gamma = (0..<channels).map { 0.5 + Float($0 % 7) * 0.3 }
            let beta = (0..<channels).map { Float($0 % 5) * 0.1 - 0.2 }
            try net.setTensor("0.weight", gamma)
            try net.setTensor("0.bias", beta)
            let x = Self.input(batch * channels * spatial, seed: 9).map { $0 * spread + offset }
            let y = try net.forward(x, batch: batch)
            for c in 0..<channels {
                let values = (0..<batch).flatMap { n in (0..<spatial).map { Double(x[(n * channels + c) * spatial + $0]) } }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                for n in 0..<batch {
                    for s in 0..<spatial {
                        let i = (n * channels + c) * spatial + s
                        // The mean as float32, as the layer (and PyTorch) keeps it: at an offset of 1000 its
                        // rounding alone moves x − mean by 0.5% of the spread; the variance must be exact.
                        let expected = (Double(x[i]) - Double(Float(mean))) / (variance + 1e-5).squareRoot()
                            * Double(gamma[c]) + Double(beta[c])
                        XCTAssertEqual(Double(y[i]), expected, accuracy: 1e-5 * (1 + abs(expected)),
                                       "BatchNorm \(shape) batch \(batch): channel \(c), value \(i)")
                    }
                }
            }
        }
    }

    /// BatchNorm2d over a batch of several blocks of samples (each block's sums taken apart, then added in
    /// block order), with a large common offset: the output, the input gradient and the parameter gradients
    /// against their formulas computed here in double precision.
    func testBatchNorm2dOverSeveralBlocksMatchesTheFormula() throws {
        let (channels, spatial, batch) = (4, 256, 150)
        let perBlock = BatchNorm.samplesPerBlock(batch: batch, sampleValues: channels * spatial)
        XCTAssertGreaterThanOrEqual((batch + perBlock - 1) / perBlock, 3, "the batch spans several blocks")
        let net = try Sequential(sampleShape: [channels, 16, 16])
        try net.addBatchNorm()
        let gamma = (0..<channels).map { 0.5 + Float($0) * 0.3 }, beta = (0..<channels).map { Float($0) * 0.1 - 0.2 }
        try net.setTensor("0.weight", gamma)
        try net.setTensor("0.bias", beta)
        let x = Self.input(batch * channels * spatial, seed: 21).map { $0 * 0.01 + 1000 }
        let dy = Self.input(batch * channels * spatial, seed: 22)
        let y = try net.forward(x, batch: batch)
        let dx = try net.backward(dy, batch: batch)
        let dGamma = try net.gradient("0.weight"), dBeta = try net.gradient("0.bias")
        let count = Double(batch * spatial)
        for c in 0..<channels {
            let indices = (0..<batch).flatMap { n in (0..<spatial).map { (n * channels + c) * spatial + $0 } }
            let mean = indices.map { Double(x[$0]) }.reduce(0, +) / count
            let variance = indices.map { (Double(x[$0]) - mean) * (Double(x[$0]) - mean) }.reduce(0, +) / count
            let invStd = 1 / (variance + 1e-5).squareRoot()
            // x̂ with the mean as float32, as the layer (and PyTorch) keeps it.
            let xhat = indices.map { (Double(x[$0]) - Double(Float(mean))) * invStd }
            let sumDy = indices.map { Double(dy[$0]) }.reduce(0, +)
            let dotXhat = zip(indices, xhat).map { Double(dy[$0.0]) * $0.1 }.reduce(0, +)
            XCTAssertEqual(Double(dBeta[c]), sumDy, accuracy: 1e-4 * (1 + abs(sumDy)), "dβ, channel \(c)")
            XCTAssertEqual(Double(dGamma[c]), dotXhat, accuracy: 2e-3 * (1 + abs(dotXhat)), "dγ, channel \(c)")
            for (k, i) in indices.enumerated() {
                let expected = xhat[k] * Double(gamma[c]) + Double(beta[c])
                XCTAssertEqual(Double(y[i]), expected, accuracy: 1e-5 * (1 + abs(expected)), "y, channel \(c), value \(i)")
                let gradient = (Double(dy[i]) - sumDy / count - xhat[k] * dotXhat / count) * invStd * Double(gamma[c])
                XCTAssertEqual(Double(dx[i]), gradient, accuracy: 2e-3 * (1 + abs(gradient)),
                               "dx, channel \(c), value \(i)")
            }
        }
    }

    /// Outputs and input gradients written past the caches (large tensors) are the same bits as cached
    /// stores; runs of odd lengths start at every alignment.
    func testBatchNormStreamingStoresChangeNoBit() throws {
        func run(streaming: Bool) throws -> [[Float]] {
            let saved = BatchNorm.streamingBytes
            BatchNorm.streamingBytes = streaming ? 0 : .max
            defer { BatchNorm.streamingBytes = saved }
            var results: [[Float]] = []
            for training in [true, false] {
                let net = try Sequential(sampleShape: [3, 5, 7])
                try net.addBatchNorm()
                try net.addBatchNorm()
                net.isTraining = training
                let x = Self.input(4 * 105, seed: 11)
                results.append(try net.forward(x, batch: 4))
                results.append(try net.backward(Self.input(4 * 105, seed: 12), batch: 4))
            }
            return results
        }
        XCTAssertEqual(try run(streaming: true), try run(streaming: false))
    }

    func testDropoutWithFixedMask() throws {
        let net = try Sequential(sampleShape: [50])
        try net.addLinear(20)
        try net.addDropout(0.4)
        guard let dropout = net.layers[1] as? Dropout else { return XCTFail("layer 1 is not Dropout") }
        let saved = dropout.random
        // Same random state before every forward: the same mask, so the function is differentiable.
        try check(net, batch: 3, Self.input(150, seed: 6), "Linear + Dropout", beforeForward: { dropout.random = saved })
        XCTAssertTrue(dropout.lastMask.contains(0), "the mask drops something")
    }

    /// A whole network made of the smooth layers (ReLU and MaxPool have kinks that finite differences
    /// through several layers cannot keep clear of; they are checked on their own above).
    func testSmallNetworkEndToEnd() throws {
        let net = try Sequential(sampleShape: [1, 8, 8], seed: 7)
        try net.addConv2d(outChannels: 2, kernelSize: 3, padding: 1)
        try net.addBatchNorm()
        try net.addAvgPool2d(kernelSize: 2)
        try net.addFlatten()
        try net.addLinear(6)
        try net.addBatchNorm()
        try net.addLinear(4)
        try check(net, batch: 3, Self.input(192, seed: 7), "Conv-BN2d-AvgPool-Flatten-Linear-BN1d-Linear")
    }

    func testCrossEntropyAndMSE() throws {
        let logits = Self.input(24, seed: 8).map { $0 * 3 }
        let labels: [Int32] = [0, 3, 5, 1]
        let targets = Self.input(24, seed: 9)
        let (_, ceGrad) = try Loss.crossEntropy(logits: logits, labels: labels, classes: 6)
        let (_, mseGrad) = try Loss.mse(prediction: logits, target: targets)
        for i in logits.indices {
            var plus = logits, minus = logits
            plus[i] += step
            minus[i] -= step
            let ce = (Double(try Loss.crossEntropy(logits: plus, labels: labels, classes: 6).loss)
                      - Double(try Loss.crossEntropy(logits: minus, labels: labels, classes: 6).loss)) / Double(2 * step)
            XCTAssertEqual(Double(ceGrad[i]), ce, accuracy: 1e-3, "cross_entropy d[\(i)]")
            let mse = (Double(try Loss.mse(prediction: plus, target: targets).loss)
                       - Double(try Loss.mse(prediction: minus, target: targets).loss)) / Double(2 * step)
            XCTAssertEqual(Double(mseGrad[i]), mse, accuracy: 1e-3, "mse d[\(i)]")
        }
    }
}

import XCTest
@preconcurrency import BNDrop

/// Sequential.foldingBatchNorm and Sequential.predictMCDropout.
final class InferenceTests: XCTestCase {
    private func normals(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.nextNormal() }
    }

    /// A few SGD steps on random data, so that running statistics and parameters are not at their
    /// initial values.
    private func train(_ net: Sequential, batch: Int, steps: Int = 4, seed: UInt64 = 5) throws {
        let sgd = try SGD(parameters: net.parameters, learningRate: 0.05, momentum: 0.9)
        for step in 0..<steps {
            let x = normals(batch * net.inputCount, seed: seed &+ UInt64(step)).map { $0 * 0.7 + 0.3 }
            let labels = (0..<batch).map { Int32(($0 * 7 + step) % net.outputCount) }
            _ = try net.trainStep(input: x, labels: labels, optimizer: sgd)
        }
    }

    /// The largest |folded − original| relative to the largest |original| eval output, and elementwise
    /// |folded − original| / max(|original|, 1).
    private func foldDifferences(_ net: Sequential, batch: Int, name: String) throws -> (Sequential, Double, Double) {
        let before = net.stateDict.map { ($0.name, try? net.tensor($0.name)) }
        net.isTraining = false
        let x = normals(batch * net.inputCount, seed: 99)
        let reference = try net.forward(x, batch: batch)
        net.isTraining = true
        let folded = try net.foldingBatchNorm()
        XCTAssertFalse(folded.isTraining, name)
        XCTAssertTrue(net.isTraining, "\(name): the original keeps its mode")
        for (entry, values) in before { XCTAssertEqual(try net.tensor(entry), values, "\(name): \(entry) unchanged") }
        let y = try folded.forward(x, batch: batch)
        let scale = Double(reference.map { abs($0) }.max() ?? 0)
        var largest = 0.0, elementwise = 0.0
        for (a, b) in zip(y, reference) {
            let d = abs(Double(a) - Double(b))
            largest = max(largest, d)
            elementwise = max(elementwise, d / max(abs(Double(b)), 1))
        }
        print("fold \(name): max |diff| \(largest), relative to max |output| \(largest / scale), elementwise \(elementwise)")
        XCTAssertLessThanOrEqual(largest, 1e-5 * scale, name)
        XCTAssertLessThanOrEqual(elementwise, 1e-5, name)
        return (folded, largest, scale)
    }

    // MARK: Forward by blocks of samples

    /// Runs `input` through `net`'s layers one by one (each layer's own forward, a region per layer) and
    /// back (each layer's own backward), as the network did before it ran stretches by blocks.
    private func layerByLayer(_ net: Sequential, _ input: [Float], batch: Int, gradient: [Float])
        throws -> (outputs: [[UInt32]], gradInput: [UInt32], parameterGradients: [[UInt32]]) {
        net.zeroGrad()
        // Each layer's backward reads the input its forward saw: every one stays in its own buffer.
        let x = UnsafeMutablePointer<Float>.allocate(capacity: input.count)
        defer { x.deallocate() }
        x.initialize(from: input, count: input.count)
        var outputs: [[UInt32]] = []
        var current = UnsafePointer(x)
        for layer in net.layers {
            current = try layer.forward(current, batch: batch)
            outputs.append(Array(UnsafeBufferPointer(start: current, count: batch * layer.outputShape.reduce(1, *)))
                .map(\.bitPattern))
        }
        var g = gradient
        for layer in net.layers.reversed() {
            let count = batch * layer.inputShape.reduce(1, *)
            g = try g.withUnsafeBufferPointer { dy in
                let dx = try layer.backward(dy.baseAddress!, batch: batch, needInputGradient: true)!
                return Array(UnsafeBufferPointer(start: dx, count: count))
            }
        }
        return (outputs, g.map(\.bitPattern), net.parameters.map { $0.gradient.array.map(\.bitPattern) })
    }

    /// In eval mode every layer of the article's MLP and CNN computes each sample alone,
    /// so the network runs them by blocks of samples in one parallel region: the output, every layer's
    /// output, and the backward that follows have the same bits as layer by layer. Batches of 300 (three
    /// blocks of 128, the last partial), 100 (two halves) and 7 (one block).
    func testForwardByBlocksOfSamplesGivesTheBitsOfTheLayersOneByOne() throws {
        let mlp = try Sequential(sampleShape: [784], seed: 3)
        try mlp.addLinear(48); try mlp.addBatchNorm(); try mlp.addReLU(); try mlp.addDropout(0.3)
        try mlp.addLinear(24); try mlp.addBatchNorm(); try mlp.addReLU(); try mlp.addLinear(10)
        let cnn = try Sequential(sampleShape: [1, 12, 12], seed: 4)
        try cnn.addConv2d(outChannels: 3, kernelSize: 3); try cnn.addBatchNorm(); try cnn.addReLU()
        try cnn.addMaxPool2d(kernelSize: 2); try cnn.addFlatten(); try cnn.addLinear(25); try cnn.addReLU()
        try cnn.addLinear(10)
        // The article's CNN: two convolutions, each BatchNorm2d, ReLU (folded into the pooling) and AvgPool2d.
        let article = try Sequential(sampleShape: [1, 28, 28], seed: 5)
        try article.addConv2d(outChannels: 3, kernelSize: 5); try article.addBatchNorm(); try article.addReLU()
        try article.addAvgPool2d(kernelSize: 2); try article.addConv2d(outChannels: 6, kernelSize: 3)
        try article.addBatchNorm(); try article.addReLU(); try article.addAvgPool2d(kernelSize: 2)
        try article.addFlatten(); try article.addLinear(25); try article.addReLU(); try article.addLinear(10)
        for (name, net) in [("MLP", mlp), ("CNN", cnn), ("article CNN", article)] {
            try train(net, batch: 64)
            net.isTraining = false
            for batch in [300, 100, 7] {
                var random = SeededRandom(seed: UInt64(batch))
                // Image-like inputs: half of them zero, so the first Linear skips zeros in some blocks.
                let x = (0..<(batch * net.inputCount)).map { _ in random.nextUnitFloat() < 0.5 ? 0 : random.nextUnitFloat() }
                let dy = (0..<(batch * net.outputCount)).map { _ in random.nextNormal() }
                net.zeroGrad()
                let y = try net.forward(x, batch: batch).map(\.bitPattern)
                let outputs = try net.layers.indices.map { try net.layerOutput($0).map(\.bitPattern) }
                let dx = try net.backward(dy, batch: batch).map(\.bitPattern)
                let gradients = net.parameters.map { $0.gradient.array.map(\.bitPattern) }
                let alone = try layerByLayer(net, x, batch: batch, gradient: dy)
                // The first difference, not two arrays of thousands of values.
                func assertSame(_ a: [UInt32], _ b: [UInt32], _ what: String) {
                    XCTAssertEqual(a.count, b.count, "\(name), batch \(batch): \(what)'s size")
                    if let i = a.indices.first(where: { $0 < b.count && a[$0] != b[$0] }) {
                        XCTFail("\(name), batch \(batch): \(what) differs first at [\(i)]: \(a[i]) against \(b[i]) alone")
                    }
                }
                assertSame(y, alone.outputs[alone.outputs.count - 1], "the output")
                for (index, output) in outputs.enumerated() { assertSame(output, alone.outputs[index], "layer \(index)'s output") }
                assertSame(dx, alone.gradInput, "the input gradient")
                for (index, gradient) in gradients.enumerated() {
                    assertSame(gradient, alone.parameterGradients[index], "parameter \(index)'s gradient")
                }
                XCTAssertTrue(y.contains { $0 != 0 }, "\(name): a real output")
            }
        }
    }

    func testFoldArticleMLPWithBatchNorm() throws {
        let net = try Sequential(sampleShape: [784], seed: 3)
        try net.addLinear(48); try net.addBatchNorm(); try net.addReLU()
        try net.addLinear(24); try net.addBatchNorm(); try net.addReLU()
        try net.addLinear(10)
        try train(net, batch: 32)
        XCTAssertNotEqual(try net.tensor("1.running_mean"), [Float](repeating: 0, count: 48))
        let (folded, _, _) = try foldDifferences(net, batch: 64, name: "MLP")
        XCTAssertEqual(folded.layers.map(\.typeName), ["Linear", "ReLU", "Linear", "ReLU", "Linear"])
        XCTAssertEqual(folded.stateDict.map(\.name),
                       ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
        XCTAssertEqual(try folded.tensor("4.weight"), try net.tensor("6.weight"), "unfolded layers are copied")
        // The copy is independent of the original.
        try folded.setTensor("0.bias", [Float](repeating: 7, count: 48))
        XCTAssertNotEqual(try net.tensor("0.bias"), [Float](repeating: 7, count: 48))
    }

    func testFoldArticleCNNWithBatchNorm() throws {
        let net = try Sequential(sampleShape: [1, 28, 28], seed: 4)
        try net.addConv2d(outChannels: 3, kernelSize: 5); try net.addReLU(); try net.addAvgPool2d(kernelSize: 2)
        try net.addConv2d(outChannels: 6, kernelSize: 3); try net.addBatchNorm(); try net.addReLU()
        try net.addAvgPool2d(kernelSize: 2); try net.addFlatten()
        try net.addLinear(25); try net.addReLU(); try net.addLinear(10)
        try train(net, batch: 16)
        let (folded, _, _) = try foldDifferences(net, batch: 20, name: "CNN")
        XCTAssertEqual(folded.layers.map(\.typeName),
                       ["Conv2d", "ReLU", "AvgPool2d", "Conv2d", "ReLU", "AvgPool2d", "Flatten", "Linear", "ReLU", "Linear"])
        XCTAssertEqual(folded.outputShape, net.outputShape)
    }

    func testFoldKeepsBatchNormThatFollowsNoLinearOrHasNoRunningStatistics() throws {
        let net = try Sequential(sampleShape: [6], seed: 8)
        try net.addLinear(12); try net.addReLU(); try net.addBatchNorm(momentum: nil)  // kept: after ReLU
        try net.addLinear(10); try net.addBatchNorm(affine: false)                     // folded, no affine
        try net.addDropout(0.3)
        try net.addLinear(8); try net.addBatchNorm(trackRunningStats: false)           // kept: batch statistics
        try net.addLinear(4)
        try train(net, batch: 24)
        let (folded, _, _) = try foldDifferences(net, batch: 30, name: "kept BatchNorm")
        XCTAssertEqual(folded.layers.map(\.typeName),
                       ["Linear", "ReLU", "BatchNorm1d", "Linear", "Dropout", "Linear", "BatchNorm1d", "Linear"])
        for name in ["running_mean", "running_var", "num_batches_tracked", "weight", "bias"] {
            XCTAssertEqual(try folded.tensor("2.\(name)"), try net.tensor("2.\(name)"), name)
        }
        let keptNorm = try XCTUnwrap(folded.layers[2] as? BatchNorm)
        XCTAssertNil(keptNorm.momentum, "hyper-parameters are copied")
        XCTAssertEqual((folded.layers[4] as? Dropout)?.p, 0.3)
        XCTAssertFalse(try XCTUnwrap(folded.layers[6] as? BatchNorm).trackRunningStats)
    }

    // MARK: Monte-Carlo dropout

    /// 1-64-64-1 whose only Dropout comes right before the last Linear: the output is linear in the mask,
    /// so its expectation is exactly the eval output and its variance is Σⱼ wⱼ² hⱼ² p/(1−p).
    private func linearInMaskNet() throws -> Sequential {
        let net = try Sequential(sampleShape: [1], seed: 12)
        try net.addLinear(64); try net.addReLU(); try net.addLinear(64); try net.addReLU()
        try net.addDropout(0.5)
        try net.addLinear(1)
        let adam = try Adam(parameters: net.parameters, learningRate: 0.01)
        let x = (0..<32).map { Float(-1 + 2 * Double($0) / 31) }
        for _ in 0..<20 { _ = try net.trainStep(input: x, targets: x.map { $0 * $0 }, optimizer: adam) }
        return net
    }

    func testMCMeanConvergesToEvalOutputAndVarianceToItsExactValue() throws {
        let net = try linearInMaskNet()
        let x: [Float] = [-0.9, -0.4, 0, 0.3, 0.8]
        let passes = 5000
        let mc = try net.predictMCDropout(input: x, batch: x.count, passes: passes, seed: 21)
        net.isTraining = false
        let eval = try net.forward(x, batch: x.count)
        let w = try net.tensor("5.weight"), p = 0.5
        for i in x.indices {
            _ = try net.forward([x[i]], batch: 1)
            let h = try net.layerOutput(3)
            let exact = zip(w, h).reduce(0.0) { $0 + Double($1.0 * $1.0) * Double($1.1 * $1.1) } * p / (1 - p)
            // The mean of `passes` independent draws has standard deviation √(variance/passes): 6 of them
            // fail by chance about once in 10⁹. The sample variance's relative standard deviation is at most
            // √(2/passes) = 2% (a sum of many bounded terms has no heavier tails than a normal): 15% is 7.5 of
            // them.
            let bound = 6 * (exact / Double(passes)).squareRoot() + 1e-5 * Double(abs(eval[i]))
            print("MC x=\(x[i]): mean \(mc.mean[i]) eval \(eval[i]) |diff| \(abs(Double(mc.mean[i] - eval[i]))) bound \(bound), "
                  + "variance \(mc.variance[i]) exact \(exact)")
            XCTAssertEqual(Double(mc.mean[i]), Double(eval[i]), accuracy: bound)
            XCTAssertGreaterThan(exact, 0)
            XCTAssertEqual(Double(mc.variance[i]), exact, accuracy: 0.15 * exact)
        }
        XCTAssertEqual(try net.predictMCDropout(input: x, batch: x.count, passes: 50, seed: 3).mean,
                       try net.predictMCDropout(input: x, batch: x.count, passes: 50, seed: 3).mean, "same seed, same result")
        XCTAssertNotEqual(try net.predictMCDropout(input: x, batch: x.count, passes: 50, seed: 3).mean,
                          try net.predictMCDropout(input: x, batch: x.count, passes: 50, seed: 4).mean)
        let one = try net.predictMCDropout(input: x, batch: x.count, passes: 1, seed: 3)
        XCTAssertEqual(one.variance, [Float](repeating: 0, count: x.count), "one pass: population variance 0")
    }

    func testMCWithoutDropoutIsTheEvalOutputWithVarianceZero() throws {
        let net = try Sequential(sampleShape: [10], seed: 2)
        try net.addLinear(16); try net.addBatchNorm(); try net.addReLU(); try net.addLinear(3)
        try train(net, batch: 8)
        let x = normals(40, seed: 1)
        let mc = try net.predictMCDropout(input: x, batch: 4, passes: 7, seed: 9)
        net.isTraining = false
        XCTAssertEqual(mc.mean, try net.forward(x, batch: 4))
        XCTAssertEqual(mc.variance, [Float](repeating: 0, count: 12))
    }

    /// Two identical nets with BatchNorm and dropout; one runs MC dropout (in train mode and in eval mode),
    /// the other never does: their tensors, modes and next train-mode masks must stay identical.
    func testMCLeavesTheNetAsItWas() throws {
        func build() throws -> Sequential {
            let net = try Sequential(sampleShape: [3], seed: 6)
            try net.addLinear(20); try net.addBatchNorm(); try net.addReLU(); try net.addDropout(0.4)
            try net.addLinear(20); try net.addDropout(0.1); try net.addLinear(2)
            try train(net, batch: 10)
            return net
        }
        let a = try build(), b = try build()
        let x = normals(30, seed: 4)
        for training in [true, false] {
            a.isTraining = training
            b.isTraining = training
            let mc = try a.predictMCDropout(input: x, batch: 10, passes: 25, seed: 77)
            XCTAssertTrue(mc.variance.contains { $0 > 0 }, "dropout gives a variance")
            XCTAssertEqual(a.isTraining, training)
            XCTAssertTrue(a.layers.allSatisfy { $0.isTraining == training })
            XCTAssertEqual(a.stateDict.map(\.name), b.stateDict.map(\.name))
            for entry in a.stateDict.map(\.name) { XCTAssertEqual(try a.tensor(entry), try b.tensor(entry), entry) }
            XCTAssertNil(a.lastBatch, "MC discards the last forward pass")
            assertThrowsBNDError(try a.backward([Float](repeating: 1, count: 20), batch: 10), .state)
        }
        a.layers[3].isTraining = false  // a layer's own mode is kept too
        _ = try a.predictMCDropout(input: x, batch: 10, passes: 2, seed: 1)
        XCTAssertEqual(a.layers.map(\.isTraining), [false, false, false, false, false, false, false])
        a.isTraining = true
        b.isTraining = true
        XCTAssertEqual(try a.forward(x, batch: 10), try b.forward(x, batch: 10), "the same next masks")
        XCTAssertEqual((a.layers[3] as? Dropout)?.lastMask, (b.layers[3] as? Dropout)?.lastMask)
        XCTAssertEqual(try a.tensor("1.num_batches_tracked"), [5])
    }

    func testMCRefusesBadArguments() throws {
        let net = try linearInMaskNet()
        func assertThrows(_ body: @autoclosure () throws -> Any, _ kind: BNDErrorKind, _ text: String,
                          line: UInt = #line) {
            assertThrowsBNDError(try body(), kind, containing: text, line: line)
        }
        let isInvalid = BNDErrorKind.invalidArgument, isShape = BNDErrorKind.shape
        assertThrows(try net.predictMCDropout(input: [1, 2], batch: 2, passes: 0, seed: 0), isInvalid, "passes")
        assertThrows(try net.predictMCDropout(input: [1, 2], batch: 2, passes: -3, seed: 0), isInvalid, "passes")
        assertThrows(try net.predictMCDropout(input: [1, 2], batch: 0, passes: 3, seed: 0), isShape, "batch")
        assertThrows(try net.predictMCDropout(input: [1, 2], batch: 3, passes: 3, seed: 0), isShape, "input")
        var mean = [Float](repeating: -1, count: 2), variance = [Float](repeating: -1, count: 1)
        let x: [Float] = [1, 2]
        try x.withUnsafeBufferPointer { xb in
            try mean.withUnsafeMutableBufferPointer { mb in
                try variance.withUnsafeMutableBufferPointer { vb in
                    assertThrows(try net.predictMCDropout(input: xb.baseAddress!, batch: 2, passes: 3, seed: 0,
                                                          mean: mb, variance: vb), isShape, "variance")
                }
            }
        }
        XCTAssertEqual(mean, [-1, -1], "nothing written on failure")
    }
}

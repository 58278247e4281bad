import XCTest
@preconcurrency import BNDrop

/// Runs every case in ../shared/golden (PyTorch 2.15 references) through the Swift API.
/// Cases are discovered, not listed, so new files are picked up.
final class GoldenTests: XCTestCase {
    // Tolerances from golden/README.md.
    let layerAtol: Float = 1e-5, layerRtol: Float = 1e-4
    let netAtol: Float = 1e-4, netRtol: Float = 1e-3

    func testEveryGoldenCase() throws {
        let cases = try Golden.allCases()
        var ran: [String: Int] = [:]
        for golden in cases {
            let failuresBefore = testRun?.failureCount ?? 0
            switch golden.op {
            case "linear", "relu", "conv2d", "avgpool2d", "maxpool2d": try runLayer(golden)
            case "batchnorm1d", "batchnorm2d": try runBatchNorm(golden)
            case "cross_entropy", "mse": try runLoss(golden)
            case "sgd", "adam", "adamw": try runOptimizer(golden)
            case "network": try runNetwork(golden)
            default: XCTFail("\(golden.name): unknown op '\(golden.op)'")
            }
            if (testRun?.failureCount ?? 0) == failuresBefore { ran[golden.op, default: 0] += 1 }
        }
        let passed = ran.values.reduce(0, +)
        print("golden: \(passed) of \(cases.count) cases passed through the Swift API \(ran.sorted { $0.key < $1.key })")
        XCTAssertEqual(passed, cases.count)
    }

    // MARK: Single layers

    private func runLayer(_ g: GoldenCase) throws {
        let input = try g.tensor("input")
        let batch = input.shape[0]
        let net = try Sequential(sampleShape: Array(input.shape.dropFirst()))
        let c = g.config
        switch g.op {
        case "linear": try net.addLinear(c["out_features"] as! Int)
        case "relu": try net.addReLU()
        case "conv2d":
            try net.addConv2d(outChannels: c["out_channels"] as! Int, kernelSize: c["kernel_size"] as! Int,
                              stride: c["stride"] as? Int ?? 1, padding: c["padding"] as? Int ?? 0)
        case "avgpool2d": try net.addAvgPool2d(kernelSize: c["kernel_size"] as! Int, stride: c["stride"] as? Int)
        case "maxpool2d": try net.addMaxPool2d(kernelSize: c["kernel_size"] as! Int, stride: c["stride"] as? Int)
        default: XCTFail("unexpected op \(g.op)")
        }
        for key in ["weight", "bias"] where g.tensors[key] != nil {
            try net.setTensor("0.\(key)", g.tensor(key).data)
        }
        let output = try net.forward(input.data, batch: batch)
        assertClose(output, try g.tensor("output"), atol: layerAtol, rtol: layerRtol, "\(g.name) output")
        let gradInput = try net.backward(g.tensor("grad_output").data, batch: batch)
        assertClose(gradInput, try g.tensor("grad_input"), atol: layerAtol, rtol: layerRtol, "\(g.name) grad_input")
        for key in ["weight", "bias"] where g.tensors["grad_\(key)"] != nil {
            assertClose(try net.gradient("0.\(key)"), try g.tensor("grad_\(key)"), atol: layerAtol, rtol: layerRtol,
                        "\(g.name) grad_\(key)")
        }
    }

    // MARK: BatchNorm

    private func runBatchNorm(_ g: GoldenCase) throws {
        let c = g.config
        let steps = g.steps
        let firstInput = try g.tensor("input", in: steps[0])
        let net = try Sequential(sampleShape: Array(firstInput.shape.dropFirst()))
        try net.addBatchNorm(eps: (c["eps"] as? NSNumber)?.floatValue ?? 1e-5,
                             momentum: (c["momentum"] as? NSNumber)?.floatValue,
                             affine: c["affine"] as? Bool ?? true,
                             trackRunningStats: c["track_running_stats"] as? Bool ?? true)
        let before = g.json["state_before"] as? [String: Any] ?? [:]
        for (key, raw) in before { try net.setTensor("0.\(key)", GoldenCase.decode(raw, key).data) }
        // A large common offset is ill-conditioned on purpose (golden/README.md).
        let atol: Float = g.name == "batchnorm1d_large_offset" ? 2e-3 : layerAtol
        for (i, step) in steps.enumerated() {
            let what = "\(g.name) step \(i)"
            net.isTraining = (step["mode"] as? String) != "eval"
            net.zeroGrad()
            let input = try g.tensor("input", in: step)
            let batch = input.shape[0]
            let output = try net.forward(input.data, batch: batch)
            assertClose(output, try g.tensor("output", in: step), atol: atol, rtol: layerRtol, "\(what) output")
            let gradInput = try net.backward(g.tensor("grad_output", in: step).data, batch: batch)
            assertClose(gradInput, try g.tensor("grad_input", in: step), atol: atol, rtol: layerRtol, "\(what) grad_input")
            for key in ["weight", "bias"] where step["grad_\(key)"] != nil {
                assertClose(try net.gradient("0.\(key)"), try g.tensor("grad_\(key)", in: step), atol: atol,
                            rtol: layerRtol, "\(what) grad_\(key)")
            }
            for key in ["running_mean", "running_var", "num_batches_tracked"] where step[key] != nil {
                assertClose(try net.tensor("0.\(key)"), try g.tensor(key, in: step), atol: atol, rtol: layerRtol,
                            "\(what) \(key)")
            }
            if step["running_mean"] == nil {
                XCTAssertThrowsError(try net.tensor("0.running_mean"), "\(what): no running stats expected")
            }
        }
    }

    // MARK: Losses

    private func runLoss(_ g: GoldenCase) throws {
        let input = try g.tensor("input"), target = try g.tensor("target")
        let result: (loss: Float, gradient: [Float])
        if g.op == "cross_entropy" {
            result = try Loss.crossEntropy(logits: input.data, labels: target.data.map { Int32($0) },
                                           classes: input.shape[1])
        } else {
            result = try Loss.mse(prediction: input.data, target: target.data)
        }
        assertClose([result.loss], try g.tensor("loss"), atol: layerAtol, rtol: layerRtol, "\(g.name) loss")
        assertClose(result.gradient, try g.tensor("grad_input"), atol: layerAtol, rtol: layerRtol, "\(g.name) grad")
    }

    // MARK: Optimizers

    static func float(_ config: [String: Any], _ key: String, _ fallback: Float) -> Float {
        (config[key] as? NSNumber)?.floatValue ?? fallback
    }

    static func makeOptimizer(_ kind: String, _ c: [String: Any], _ parameters: [Parameter]) throws -> Optimizer {
        let betas = (c["betas"] as? [NSNumber])?.map(\.floatValue) ?? [0.9, 0.999]
        switch kind {
        case "sgd":
            return try SGD(parameters: parameters, learningRate: float(c, "lr", 0.01), momentum: float(c, "momentum", 0),
                           dampening: float(c, "dampening", 0), weightDecay: float(c, "weight_decay", 0),
                           nesterov: c["nesterov"] as? Bool ?? false)
        case "adam", "adamw":
            let adamW = kind == "adamw"
            return try Adam(parameters: parameters, learningRate: float(c, "lr", 1e-3), beta1: betas[0], beta2: betas[1],
                            eps: float(c, "eps", 1e-8), weightDecay: float(c, "weight_decay", adamW ? 1e-2 : 0),
                            decoupledWeightDecay: adamW)
        default:
            throw GoldenError.missing("unknown optimizer \(kind)")
        }
    }

    private func runOptimizer(_ g: GoldenCase) throws {
        let before = try g.tensor("param_before")
        let parameter = try Parameter(shape: before.shape)
        try parameter.value.assign(before.data)
        let optimizer = try Self.makeOptimizer(g.op, g.config, [parameter])
        for (i, step) in g.steps.enumerated() {
            try parameter.gradient.assign(g.tensor("grad", in: step).data)
            try optimizer.step()
            assertClose(parameter.value.array, try g.tensor("param_after", in: step), atol: layerAtol, rtol: layerRtol,
                        "\(g.name) step \(i)")
        }
    }

    // MARK: Whole networks

    /// Builds the nn.Sequential described by a network case's `config.layers`.
    static func buildNetwork(_ g: GoldenCase) throws -> Sequential {
        let c = g.config
        let net = try Sequential(sampleShape: c["input_shape"] as! [Int])
        for layer in c["layers"] as! [[String: Any]] {
            let int = { (key: String) in layer[key] as! Int }
            switch layer["type"] as! String {
            case "linear": try net.addLinear(int("out"))
            case "relu": try net.addReLU()
            case "flatten": try net.addFlatten()
            case "conv2d":
                try net.addConv2d(outChannels: int("out"), kernelSize: int("kernel"), stride: layer["stride"] as? Int ?? 1,
                                  padding: layer["padding"] as? Int ?? 0)
            case "avgpool2d": try net.addAvgPool2d(kernelSize: int("kernel"), stride: layer["stride"] as? Int)
            case "maxpool2d": try net.addMaxPool2d(kernelSize: int("kernel"), stride: layer["stride"] as? Int)
            case "batchnorm1d", "batchnorm2d":
                try net.addBatchNorm(eps: float(layer, "eps", 1e-5), momentum: (layer["momentum"] as? NSNumber)?.floatValue)
            case "dropout": try net.addDropout(float(layer, "p", 0.5))
            case let other: throw GoldenError.missing("\(g.name): unknown layer type \(other)")
            }
        }
        return net
    }

    static func loadState(_ net: Sequential, _ raw: Any?) throws {
        for (key, value) in raw as? [String: Any] ?? [:] { try net.setTensor(key, GoldenCase.decode(value, key).data) }
    }

    private func runNetwork(_ g: GoldenCase) throws {
        let c = g.config
        // Two copies: one driven step by step (forward, loss, backward, step) to compare outputs, one through
        // trainStep to check that the one-call step is the same computation.
        let net = try Self.buildNetwork(g), stepped = try Self.buildNetwork(g)
        XCTAssertEqual(Set(net.stateDict.map(\.name)), Set((g.json["state_initial"] as! [String: Any]).keys),
                       "\(g.name): state_dict names")
        try Self.loadState(net, g.json["state_initial"])
        try Self.loadState(stepped, g.json["state_initial"])
        let kind = c["optimizer"] as! String
        let optimizerConfig = c["optimizer_config"] as? [String: Any] ?? [:]
        let optimizer = try Self.makeOptimizer(kind, optimizerConfig, net.parameters)
        let steppedOptimizer = try Self.makeOptimizer(kind, optimizerConfig, stepped.parameters)
        let classification = (c["loss"] as? String) == "cross_entropy"
        for (i, step) in g.steps.enumerated() {
            let what = "\(g.name) step \(i)"
            let input = try g.tensor("input", in: step), target = try g.tensor("target", in: step)
            let batch = input.shape[0]
            net.zeroGrad()
            let output = try net.forward(input.data, batch: batch)
            assertClose(output, try g.tensor("output", in: step), atol: netAtol, rtol: netRtol, "\(what) output")
            let loss: (loss: Float, gradient: [Float]) = classification
                ? try Loss.crossEntropy(logits: output, labels: target.data.map { Int32($0) }, classes: net.outputCount)
                : try Loss.mse(prediction: output, target: target.data)
            assertClose([loss.loss], try g.tensor("loss", in: step), atol: netAtol, rtol: netRtol, "\(what) loss")
            _ = try net.backward(loss.gradient, batch: batch)
            try optimizer.step()
            let steppedLoss = classification
                ? try stepped.trainStep(input: input.data, labels: target.data.map { Int32($0) }, optimizer: steppedOptimizer)
                : try stepped.trainStep(input: input.data, targets: target.data, optimizer: steppedOptimizer)
            assertClose([steppedLoss], try g.tensor("loss", in: step), atol: netAtol, rtol: netRtol, "\(what) trainStep loss")
        }
        for (key, raw) in g.json["state_final"] as? [String: Any] ?? [:] {
            let expected = try GoldenCase.decode(raw, key)
            assertClose(try net.tensor(key), expected, atol: netAtol, rtol: netRtol, "\(g.name) final \(key)")
            assertClose(try stepped.tensor(key), expected, atol: netAtol, rtol: netRtol, "\(g.name) trainStep final \(key)")
        }
        net.isTraining = false
        let evalInput = try g.tensor("eval_input")
        let evalOutput = try net.forward(evalInput.data, batch: evalInput.shape[0])
        assertClose(evalOutput, try g.tensor("eval_output"), atol: netAtol, rtol: netRtol, "\(g.name) eval output")
    }
}

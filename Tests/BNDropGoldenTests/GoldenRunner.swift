import Foundation
import XCTest

/// Runs golden cases through one backend. Each kind of case is written here once; the backend only
/// translates the calls to its API. Mismatches are recorded with XCTFail; errors are thrown.
struct GoldenRunner {
    let backend: GoldenBackend

    // Tolerances from golden/README.md: single layers, multi-step network trajectories, and the
    // ill-conditioned large-offset BatchNorm case (absolute only).
    static let layerAtol: Float = 1e-5, layerRtol: Float = 1e-4
    static let netAtol: Float = 1e-4, netRtol: Float = 1e-3
    static let largeOffsetAtol: Float = 2e-3

    func run(_ g: GoldenCase) throws {
        switch g.op {
        case "linear", "relu", "conv2d", "avgpool2d", "maxpool2d": try runLayer(g)
        case "batchnorm1d", "batchnorm2d": try runBatchNorm(g)
        case "cross_entropy", "mse": try runLoss(g)
        case "sgd", "adam", "adamw": try runOptimizer(g)
        case "network": try runNetwork(g)
        default: throw GoldenError("\(g.name): unknown op '\(g.op)'")
        }
    }

    // MARK: Reading configs

    private static func int(_ dict: [String: Any], _ key: String, _ what: String) throws -> Int {
        guard let value = dict[key] as? Int else { throw GoldenError("\(what): no integer '\(key)'") }
        return value
    }

    private static func float(_ dict: [String: Any], _ key: String, _ fallback: Float) -> Float {
        (dict[key] as? NSNumber)?.floatValue ?? fallback
    }

    /// A pooling stride: absent or null means the kernel size (nil).
    private static func poolStride(_ dict: [String: Any]) -> Int? { dict["stride"] as? Int }

    /// BatchNorm's momentum: absent is PyTorch's default 0.1, null is a cumulative average (nil).
    private static func batchNorm(_ dict: [String: Any]) -> LayerSpec {
        let momentum: Float? = dict["momentum"] is NSNull ? nil : float(dict, "momentum", 0.1)
        return .batchNorm(eps: float(dict, "eps", 1e-5), momentum: momentum, affine: dict["affine"] as? Bool ?? true,
                          trackRunningStats: dict["track_running_stats"] as? Bool ?? true)
    }

    /// A pooling layer from PyTorch's arguments in `dict` (the kernel size under `kernelKey`).
    private static func pool(_ op: String, _ dict: [String: Any], kernelKey: String, _ what: String) throws -> LayerSpec {
        let kernel = try int(dict, kernelKey, what), stride = poolStride(dict)
        let padding = dict["padding"] as? Int ?? 0, ceilMode = dict["ceil_mode"] as? Bool ?? false
        if op == "avgpool2d" {
            return .avgPool2d(AvgPoolSpec(kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode,
                                          countIncludePad: dict["count_include_pad"] as? Bool ?? true,
                                          divisorOverride: dict["divisor_override"] as? Int))
        }
        return .maxPool2d(MaxPoolSpec(kernel: kernel, stride: stride, padding: padding,
                                      dilation: dict["dilation"] as? Int ?? 1, ceilMode: ceilMode))
    }

    /// The layer of a single-layer case (PyTorch's argument names).
    private static func singleLayer(_ g: GoldenCase) throws -> LayerSpec {
        let c = g.config
        switch g.op {
        case "linear": return .linear(out: try int(c, "out_features", g.name))
        case "relu": return .relu
        case "conv2d":
            return .conv2d(out: try int(c, "out_channels", g.name), kernel: try int(c, "kernel_size", g.name),
                           stride: c["stride"] as? Int ?? 1, padding: c["padding"] as? Int ?? 0,
                           dilation: c["dilation"] as? Int ?? 1, groups: c["groups"] as? Int ?? 1)
        case "avgpool2d", "maxpool2d": return try pool(g.op, c, kernelKey: "kernel_size", g.name)
        default: throw GoldenError("\(g.name): \(g.op) is not a single layer")
        }
    }

    /// One entry of a network case's `config.layers`.
    private static func networkLayer(_ layer: [String: Any], _ what: String) throws -> LayerSpec {
        switch layer["type"] as? String {
        case "linear": return .linear(out: try int(layer, "out", what))
        case "relu": return .relu
        case "flatten": return .flatten
        case "conv2d":
            return .conv2d(out: try int(layer, "out", what), kernel: try int(layer, "kernel", what),
                           stride: layer["stride"] as? Int ?? 1, padding: layer["padding"] as? Int ?? 0,
                           dilation: layer["dilation"] as? Int ?? 1, groups: layer["groups"] as? Int ?? 1)
        case let kind? where kind == "avgpool2d" || kind == "maxpool2d":
            return try pool(kind, layer, kernelKey: "kernel", what)
        case "batchnorm1d", "batchnorm2d": return batchNorm(layer)
        case "dropout": return .dropout(p: float(layer, "p", 0.5))
        case let other: throw GoldenError("\(what): unknown layer type \(other ?? "(none)")")
        }
    }

    private static func optimizer(_ kind: String, _ c: [String: Any], _ what: String) throws -> OptimizerSpec {
        switch kind {
        case "sgd":
            return .sgd(lr: float(c, "lr", 0.01), momentum: float(c, "momentum", 0), dampening: float(c, "dampening", 0),
                        weightDecay: float(c, "weight_decay", 0), nesterov: c["nesterov"] as? Bool ?? false)
        case "adam", "adamw":
            let betas = (c["betas"] as? [NSNumber])?.map(\.floatValue) ?? [0.9, 0.999]
            guard betas.count == 2 else { throw GoldenError("\(what): betas \(betas)") }
            let decoupled = kind == "adamw"
            return .adam(lr: float(c, "lr", 1e-3), beta1: betas[0], beta2: betas[1], eps: float(c, "eps", 1e-8),
                         weightDecay: float(c, "weight_decay", decoupled ? 1e-2 : 0), decoupled: decoupled)
        default: throw GoldenError("\(what): unknown optimizer \(kind)")
        }
    }

    // MARK: Single layers

    private func runLayer(_ g: GoldenCase) throws {
        let (atol, rtol) = (Self.layerAtol, Self.layerRtol)
        let input = try g.tensor("input")
        let batch = input.shape[0]
        let net = try backend.makeNetwork(sampleShape: Array(input.shape.dropFirst()))
        try net.add(Self.singleLayer(g))
        for key in ["weight", "bias"] where g.tensors[key] != nil {
            try net.setTensor("0.\(key)", g.tensor(key).data)
        }
        assertClose(try net.forward(input.data, batch: batch), try g.tensor("output"), atol: atol, rtol: rtol,
                    "\(g.name) output")
        let gradInput = try net.backward(g.tensor("grad_output").data, batch: batch)
        assertClose(gradInput, try g.tensor("grad_input"), atol: atol, rtol: rtol, "\(g.name) grad_input")
        for key in ["weight", "bias"] where g.tensors["grad_\(key)"] != nil {
            assertClose(try net.gradient("0.\(key)"), try g.tensor("grad_\(key)"), atol: atol, rtol: rtol,
                        "\(g.name) grad_\(key)")
        }
    }

    // MARK: BatchNorm: several train / eval steps of one layer

    private func runBatchNorm(_ g: GoldenCase) throws {
        let largeOffset = g.name == "batchnorm1d_large_offset"
        let atol = largeOffset ? Self.largeOffsetAtol : Self.layerAtol
        let rtol = largeOffset ? 0 : Self.layerRtol
        guard let first = g.steps.first else { throw GoldenError("\(g.name): no steps") }
        let net = try backend.makeNetwork(sampleShape: Array(try g.tensor("input", in: first).shape.dropFirst()))
        try net.add(Self.batchNorm(g.config))
        for (key, values) in try g.state("state_before") { try net.setTensor("0.\(key)", values) }
        for (i, step) in g.steps.enumerated() {
            let what = "\(g.name) step \(i)"
            try net.setTraining((step["mode"] as? String) != "eval")
            try net.zeroGrad()
            let input = try g.tensor("input", in: step)
            let batch = input.shape[0]
            assertClose(try net.forward(input.data, batch: batch), try g.tensor("output", in: step), atol: atol,
                        rtol: rtol, "\(what) output")
            let gradInput = try net.backward(g.tensor("grad_output", in: step).data, batch: batch)
            assertClose(gradInput, try g.tensor("grad_input", in: step), atol: atol, rtol: rtol, "\(what) grad_input")
            for key in ["weight", "bias"] where step["grad_\(key)"] != nil {
                assertClose(try net.gradient("0.\(key)"), try g.tensor("grad_\(key)", in: step), atol: atol,
                            rtol: rtol, "\(what) grad_\(key)")
            }
            for key in ["running_mean", "running_var", "num_batches_tracked"] where step[key] != nil {
                assertClose(try net.tensor("0.\(key)"), try g.tensor(key, in: step), atol: atol, rtol: rtol,
                            "\(what) \(key)")
            }
            if step["running_mean"] == nil {
                XCTAssertThrowsError(try net.tensor("0.running_mean"), "\(what): no running statistics expected")
            }
        }
    }

    // MARK: Losses

    /// A loss case's options (PyTorch's argument names), or nil when they are PyTorch's defaults and no
    /// label is the default ignore_index: the plain calls then.
    private static func lossOptions(_ c: [String: Any], labels: [Int32]?, _ what: String) throws -> LossOptionsSpec? {
        let reduction = c["reduction"] as? String ?? "mean"
        guard reduction == "mean" || reduction == "sum" else {
            throw GoldenError("\(what): reduction '\(reduction)' is not offered")
        }
        let spec = LossOptionsSpec(weight: (c["weight"] as? [NSNumber])?.map(\.floatValue),
                                   ignoreIndex: c["ignore_index"] as? Int ?? -100,
                                   labelSmoothing: float(c, "label_smoothing", 0), sum: reduction == "sum")
        let ignoresSome = labels?.contains { Int($0) == spec.ignoreIndex } ?? false
        let plain = spec.weight == nil && spec.labelSmoothing == 0 && !spec.sum && !ignoresSome
        return plain ? nil : spec
    }

    private func runLoss(_ g: GoldenCase) throws {
        let input = try g.tensor("input"), target = try g.tensor("target")
        let labels = g.op == "cross_entropy" ? target.data.map { Int32($0) } : nil
        let lossTarget: LossTarget = labels.map { .labels($0) } ?? .values(target.data)
        let options = try Self.lossOptions(g.config, labels: labels, g.name)
        let result = try backend.loss(input.data, lossTarget, options: options)
        let (atol, rtol) = (Self.layerAtol, Self.layerRtol)
        assertClose([result.loss], try g.tensor("loss"), atol: atol, rtol: rtol, "\(g.name) loss")
        assertClose(result.gradient, try g.tensor("grad_input"), atol: atol, rtol: rtol, "\(g.name) grad_input")
        if let alone = try backend.lossWithoutGradient(input.data, lossTarget, options: options) {
            XCTAssertEqual(alone, result.loss, "\(g.name): the loss without its gradient differs")
        }
    }

    // MARK: Optimizers: given gradients, the parameter after each step

    private func runOptimizer(_ g: GoldenCase) throws {
        let parameter = try backend.makeParameter(try g.tensor("param_before"),
                                                  optimizer: Self.optimizer(g.op, g.config, g.name))
        XCTAssertFalse(g.steps.isEmpty, "\(g.name): no steps")
        for (i, step) in g.steps.enumerated() {
            try parameter.setGradient(g.tensor("grad", in: step).data)
            try parameter.step()
            assertClose(try parameter.value(), try g.tensor("param_after", in: step), atol: Self.layerAtol,
                        rtol: Self.layerRtol, "\(g.name) step \(i)")
        }
    }

    // MARK: Whole networks: a training trajectory

    private func buildNetwork(_ g: GoldenCase) throws -> NetworkUnderTest {
        guard let shape = g.config["input_shape"] as? [Int], let layers = g.config["layers"] as? [[String: Any]] else {
            throw GoldenError("\(g.name): no input_shape or layers")
        }
        let net = try backend.makeNetwork(sampleShape: shape)
        for (i, layer) in layers.enumerated() { try net.add(Self.networkLayer(layer, "\(g.name) layer \(i)")) }
        return net
    }

    /// The trajectory twice: once with forward, loss, backward and optimizer step as separate calls
    /// (checking every output), once with the one-call training step.
    private func runNetwork(_ g: GoldenCase) throws {
        let (atol, rtol) = (Self.netAtol, Self.netRtol)
        guard let kind = g.config["optimizer"] as? String else { throw GoldenError("\(g.name): no optimizer") }
        let spec = try Self.optimizer(kind, g.config["optimizer_config"] as? [String: Any] ?? [:], g.name)
        let classification = (g.config["loss"] as? String) == "cross_entropy"
        let initial = try g.state("state_initial"), final = try g.state("state_final")
        XCTAssertFalse(g.steps.isEmpty, "\(g.name): no steps")
        for oneCall in [false, true] {
            let path = "\(g.name) (\(oneCall ? "one-call train step" : "forward/loss/backward/step"))"
            let net = try buildNetwork(g)
            XCTAssertEqual(Set(try net.tensorNames()), Set(initial.keys), "\(path): state_dict names")
            for (key, values) in initial { try net.setTensor(key, values) }
            let optimizer = try net.makeOptimizer(spec)
            for (i, step) in g.steps.enumerated() {
                let what = "\(path) step \(i)"
                let input = try g.tensor("input", in: step), target = try g.tensor("target", in: step)
                let lossTarget: LossTarget = classification ? .labels(target.data.map { Int32($0) }) : .values(target.data)
                let loss: Float
                if oneCall {
                    loss = try net.trainStep(input.data, lossTarget, optimizer: optimizer)
                } else {
                    try net.zeroGrad()
                    let output = try net.forward(input.data, batch: input.shape[0])
                    assertClose(output, try g.tensor("output", in: step), atol: atol, rtol: rtol, "\(what) output")
                    let result = try backend.loss(output, lossTarget, options: nil)
                    loss = result.loss
                    _ = try net.backward(result.gradient, batch: input.shape[0])
                    try optimizer.step()
                }
                assertClose([loss], try g.tensor("loss", in: step), atol: atol, rtol: rtol, "\(what) loss")
            }
            for (key, values) in final {
                assertClose(try net.tensor(key), values, atol: atol, rtol: rtol, "\(path) final \(key)")
            }
            try net.setTraining(false)
            let evalInput = try g.tensor("eval_input")
            assertClose(try net.forward(evalInput.data, batch: evalInput.shape[0]), try g.tensor("eval_output"),
                        atol: atol, rtol: rtol, "\(path) eval output")
        }
    }
}

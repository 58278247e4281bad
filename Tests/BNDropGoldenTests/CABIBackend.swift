import BNDropCSupport

// The golden runner's calls through the C ABI: the bnd_* functions of libbndrop.so, called through
// their declarations in include/bndrop.h (imported by BNDropCSupport), never through the Swift API.

/// A bnd_* call that did not return BND_OK.
struct CABIError: Error, CustomStringConvertible {
    let call: String
    let status: bnd_status
    let message: String
    var description: String { "\(call) -> \(String(cString: bnd_status_string(status))): \(message)" }
}

/// Throws unless `status` is BND_OK, with bnd_last_error()'s message.
private func check(_ status: bnd_status, _ call: String) throws {
    guard status == BND_OK else {
        throw CABIError(call: call, status: status, message: String(cString: bnd_last_error()))
    }
}

struct CABIBackend: GoldenBackend {
    var apiName: String { "C ABI" }

    func makeNetwork(sampleShape: [Int]) throws -> NetworkUnderTest {
        try CNetwork(sampleShape: sampleShape)
    }

    /// bnd_loss_cross_entropy or bnd_loss_mse (their _v2 with `options`); `grad` is NULL when
    /// `wantGradient` is false.
    private func callLoss(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?,
                          wantGradient: Bool) throws -> (loss: Float, gradient: [Float]) {
        var loss = Float.nan
        var gradient = [Float](repeating: .nan, count: wantGradient ? prediction.count : 0)
        try gradient.withUnsafeMutableBufferPointer { grad in
            let gradPointer = wantGradient ? grad.baseAddress : nil
            switch target {
            case .labels(let labels):
                guard !labels.isEmpty, prediction.count % labels.count == 0 else {
                    throw GoldenError("\(prediction.count) logits for \(labels.count) labels")
                }
                let (batch, classes) = (Int64(labels.count), Int64(prediction.count / labels.count))
                guard let options else {
                    try check(bnd_loss_cross_entropy(prediction, labels, batch, classes, &loss, gradPointer),
                              "bnd_loss_cross_entropy")
                    return
                }
                var params = bnd_cross_entropy_default_params()
                params.ignore_index = Int64(options.ignoreIndex)
                params.label_smoothing = options.labelSmoothing
                params.reduction = Int32((options.sum ? BND_REDUCTION_SUM : BND_REDUCTION_MEAN).rawValue)
                let weight = options.weight ?? []
                params.weight_count = Int64(weight.count)
                try weight.withUnsafeBufferPointer { w in
                    params.weight = options.weight == nil ? nil : w.baseAddress
                    try check(bnd_loss_cross_entropy_v2(prediction, labels, batch, classes, &params, &loss, gradPointer),
                              "bnd_loss_cross_entropy_v2")
                }
            case .values(let values):
                guard values.count == prediction.count else {
                    throw GoldenError("\(prediction.count) predictions for \(values.count) targets")
                }
                guard let options else {
                    try check(bnd_loss_mse(prediction, values, prediction.count, &loss, gradPointer), "bnd_loss_mse")
                    return
                }
                let reduction = Int32((options.sum ? BND_REDUCTION_SUM : BND_REDUCTION_MEAN).rawValue)
                try check(bnd_loss_mse_v2(prediction, values, prediction.count, reduction, &loss, gradPointer),
                          "bnd_loss_mse_v2")
            }
        }
        return (loss, gradient)
    }

    func loss(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?) throws
        -> (loss: Float, gradient: [Float]) {
        try callLoss(prediction, target, options: options, wantGradient: true)
    }

    /// The C losses take grad = NULL for the loss alone.
    func lossWithoutGradient(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?) throws -> Float? {
        try callLoss(prediction, target, options: options, wantGradient: false).loss
    }

    /// The C ABI has no standalone parameter: a Linear(n-1 -> 1) holds the n values, its weight first and
    /// its bias last, and the optimizer steps that net.
    func makeParameter(_ initial: GoldenTensor, optimizer: OptimizerSpec) throws -> ParameterUnderTest {
        let n = initial.data.count
        guard n >= 2 else { throw GoldenError("a parameter of \(n) values does not fit Linear(n-1 -> 1)") }
        let net = try CNetwork(sampleShape: [n - 1])
        try net.add(.linear(out: 1))
        let parameter = CParameter(net: net, optimizer: try net.makeOptimizer(optimizer), count: n)
        try parameter.set(initial.data, bnd_net_set_tensor, "bnd_net_set_tensor")
        return parameter
    }
}

final class CNetwork: NetworkUnderTest {
    let handle: OpaquePointer

    init(sampleShape: [Int]) throws {
        var net: OpaquePointer?
        try check(bnd_net_create(sampleShape.map(Int64.init), sampleShape.count, &net), "bnd_net_create")
        guard let net else { throw GoldenError("bnd_net_create returned BND_OK and no net") }
        handle = net
    }

    deinit { bnd_net_free(handle) }

    func add(_ layer: LayerSpec) throws {
        switch layer {
        case .linear(let out): try check(bnd_net_add_linear(handle, Int64(out)), "bnd_net_add_linear")
        case .relu: try check(bnd_net_add_relu(handle), "bnd_net_add_relu")
        case .flatten: try check(bnd_net_add_flatten(handle), "bnd_net_add_flatten")
        case let .conv2d(out, kernel, stride, padding, 1, 1):
            try check(bnd_net_add_conv2d(handle, Int64(out), Int64(kernel), Int64(stride), Int64(padding)),
                      "bnd_net_add_conv2d")
        case let .conv2d(out, kernel, stride, padding, dilation, groups):
            var params = bnd_conv2d_default_params(Int64(out), Int64(kernel))
            (params.stride, params.padding) = (Int64(stride), Int64(padding))
            (params.dilation, params.groups) = (Int64(dilation), Int64(groups))
            try check(bnd_net_add_conv2d_v2(handle, &params), "bnd_net_add_conv2d_v2")
        // The plain calls where they suffice, so that both entry points are checked against PyTorch.
        case let .avgPool2d(a) where a.isPlain:
            try check(bnd_net_add_avgpool2d(handle, Int64(a.kernel), Int64(a.stride ?? 0)), "bnd_net_add_avgpool2d")
        case let .avgPool2d(a):
            var params = bnd_avgpool2d_default_params(Int64(a.kernel))
            params.stride = Int64(a.stride ?? 0)
            params.padding = Int64(a.padding)
            params.ceil_mode = a.ceilMode ? 1 : 0
            params.count_include_pad = a.countIncludePad ? 1 : 0
            params.divisor_override = Int64(a.divisorOverride ?? 0)
            try check(bnd_net_add_avgpool2d_v2(handle, &params), "bnd_net_add_avgpool2d_v2")
        case let .maxPool2d(m) where m.isPlain:
            try check(bnd_net_add_maxpool2d(handle, Int64(m.kernel), Int64(m.stride ?? 0)), "bnd_net_add_maxpool2d")
        case let .maxPool2d(m):
            var params = bnd_maxpool2d_default_params(Int64(m.kernel))
            params.stride = Int64(m.stride ?? 0)
            params.padding = Int64(m.padding)
            params.dilation = Int64(m.dilation)
            params.ceil_mode = m.ceilMode ? 1 : 0
            try check(bnd_net_add_maxpool2d_v2(handle, &params), "bnd_net_add_maxpool2d_v2")
        case let .batchNorm(eps, momentum, affine, trackRunningStats):
            var params = bnd_batchnorm_default_params()
            params.eps = eps
            if let momentum { params.momentum = momentum } else { params.cumulative_average = 1 }
            params.affine = affine ? 1 : 0
            params.track_running_stats = trackRunningStats ? 1 : 0
            try check(bnd_net_add_batchnorm(handle, &params), "bnd_net_add_batchnorm")
        case .dropout(let p): try check(bnd_net_add_dropout(handle, p), "bnd_net_add_dropout")
        }
    }

    private func count(_ function: (OpaquePointer?, UnsafeMutablePointer<Int>?) -> bnd_status, _ call: String) throws -> Int {
        var n = 0
        try check(function(handle, &n), call)
        return n
    }

    func tensorNames() throws -> [String] {
        try (0..<count(bnd_net_tensor_count, "bnd_net_tensor_count")).map { index in
            var name = [CChar](repeating: 0, count: Int(BND_NAME_MAX))
            try check(bnd_net_tensor_name(handle, index, &name, name.count), "bnd_net_tensor_name(\(index))")
            return name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
    }

    /// bnd_net_get_tensor or bnd_net_get_grad into a buffer of the tensor's size.
    private func read(_ name: String, gradient: Bool) throws -> [Float] {
        var numel = 0
        try check(bnd_net_tensor_numel(handle, name, &numel), "bnd_net_tensor_numel(\(name))")
        var values = [Float](repeating: .nan, count: numel)
        if gradient {
            try check(bnd_net_get_grad(handle, name, &values, numel), "bnd_net_get_grad(\(name))")
        } else {
            try check(bnd_net_get_tensor(handle, name, &values, numel), "bnd_net_get_tensor(\(name))")
        }
        return values
    }

    func tensor(_ name: String) throws -> [Float] { try read(name, gradient: false) }
    func gradient(_ name: String) throws -> [Float] { try read(name, gradient: true) }

    func setTensor(_ name: String, _ values: [Float]) throws {
        try check(bnd_net_set_tensor(handle, name, values, values.count), "bnd_net_set_tensor(\(name))")
    }

    func setTraining(_ training: Bool) throws {
        try check(bnd_net_set_training(handle, training ? 1 : 0), "bnd_net_set_training")
    }

    func zeroGrad() throws { try check(bnd_net_zero_grad(handle), "bnd_net_zero_grad") }

    func forward(_ input: [Float], batch: Int) throws -> [Float] {
        var output = [Float](repeating: .nan, count: batch * (try count(bnd_net_output_count, "bnd_net_output_count")))
        try check(bnd_net_forward(handle, input, Int64(batch), &output, output.count), "bnd_net_forward")
        return output
    }

    func backward(_ gradOutput: [Float], batch: Int) throws -> [Float] {
        var gradInput = [Float](repeating: .nan, count: batch * (try count(bnd_net_input_count, "bnd_net_input_count")))
        try check(bnd_net_backward(handle, gradOutput, Int64(batch), &gradInput, gradInput.count), "bnd_net_backward")
        return gradInput
    }

    func makeOptimizer(_ spec: OptimizerSpec) throws -> OptimizerUnderTest {
        var optimizer: OpaquePointer?
        switch spec {
        case let .sgd(lr, momentum, dampening, weightDecay, nesterov):
            var params = bnd_sgd_params(lr: lr, momentum: momentum, dampening: dampening, weight_decay: weightDecay,
                                        nesterov: nesterov ? 1 : 0)
            try check(bnd_optimizer_create_sgd(handle, &params, &optimizer), "bnd_optimizer_create_sgd")
        case let .adam(lr, beta1, beta2, eps, weightDecay, decoupled):
            var params = bnd_adam_params(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay,
                                         decoupled_weight_decay: decoupled ? 1 : 0)
            try check(bnd_optimizer_create_adam(handle, &params, &optimizer), "bnd_optimizer_create_adam")
        }
        guard let optimizer else { throw GoldenError("optimizer creation returned BND_OK and no optimizer") }
        return COptimizer(handle: optimizer, net: self)
    }

    func trainStep(_ input: [Float], _ target: LossTarget, optimizer: OptimizerUnderTest) throws -> Float {
        guard let optimizer = optimizer as? COptimizer, optimizer.net === self else {
            throw GoldenError("not this network's C optimizer")
        }
        var loss = Float.nan
        switch target {
        case .labels(let labels):
            try check(bnd_net_train_step_classification(handle, optimizer.handle, input, labels, Int64(labels.count),
                                                        &loss), "bnd_net_train_step_classification")
        case .values(let values):
            let outputs = try count(bnd_net_output_count, "bnd_net_output_count")
            guard outputs > 0, values.count % outputs == 0 else {
                throw GoldenError("\(values.count) targets for \(outputs) outputs")
            }
            try check(bnd_net_train_step_regression(handle, optimizer.handle, input, values,
                                                    Int64(values.count / outputs), &loss),
                      "bnd_net_train_step_regression")
        }
        return loss
    }
}

final class COptimizer: OptimizerUnderTest {
    let handle: OpaquePointer
    /// Keeps the net alive (and freed after the optimizer).
    let net: CNetwork

    init(handle: OpaquePointer, net: CNetwork) {
        self.handle = handle
        self.net = net
    }

    deinit { bnd_optimizer_free(handle) }

    func step() throws { try check(bnd_optimizer_step(handle), "bnd_optimizer_step") }
}

/// n values held as "0.weight" (the first n-1) and "0.bias" (the last) of a Linear(n-1 -> 1).
final class CParameter: ParameterUnderTest {
    let net: CNetwork
    let optimizer: OptimizerUnderTest
    let count: Int

    init(net: CNetwork, optimizer: OptimizerUnderTest, count: Int) {
        self.net = net
        self.optimizer = optimizer
        self.count = count
    }

    typealias Setter = (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<Float>?, Int) -> bnd_status

    /// Writes `values` with bnd_net_set_tensor or bnd_net_set_grad.
    func set(_ values: [Float], _ setter: Setter, _ call: String) throws {
        guard values.count == count else { throw GoldenError("\(values.count) values for a parameter of \(count)") }
        try check(setter(net.handle, "0.weight", values, count - 1), "\(call)(0.weight)")
        try check(setter(net.handle, "0.bias", Array(values[(count - 1)...]), 1), "\(call)(0.bias)")
    }

    func setGradient(_ values: [Float]) throws { try set(values, bnd_net_set_grad, "bnd_net_set_grad") }
    func step() throws { try optimizer.step() }
    func value() throws -> [Float] { try net.tensor("0.weight") + net.tensor("0.bias") }
}

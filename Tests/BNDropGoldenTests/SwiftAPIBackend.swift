@preconcurrency import BNDrop

/// The golden runner's calls through the Swift API (`import BNDrop`).
struct SwiftAPIBackend: GoldenBackend {
    var apiName: String { "Swift API" }

    func makeNetwork(sampleShape: [Int]) throws -> NetworkUnderTest {
        SwiftNetwork(try Sequential(sampleShape: sampleShape))
    }

    func loss(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?) throws
        -> (loss: Float, gradient: [Float]) {
        switch target {
        case .labels(let labels):
            guard !labels.isEmpty, prediction.count % labels.count == 0 else {
                throw GoldenError("\(prediction.count) logits for \(labels.count) labels")
            }
            let classes = prediction.count / labels.count
            guard let options else { return try Loss.crossEntropy(logits: prediction, labels: labels, classes: classes) }
            let crossEntropy = CrossEntropyOptions(weight: options.weight, ignoreIndex: options.ignoreIndex,
                                                   reduction: options.sum ? .sum : .mean,
                                                   labelSmoothing: options.labelSmoothing)
            return try Loss.crossEntropy(logits: prediction, labels: labels, classes: classes, options: crossEntropy)
        case .values(let values):
            guard let options else { return try Loss.mse(prediction: prediction, target: values) }
            return try Loss.mse(prediction: prediction, target: values, reduction: options.sum ? .sum : .mean)
        }
    }

    /// The Swift API computes the gradient with every loss: no separate call to compare.
    func lossWithoutGradient(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?) throws -> Float? {
        nil
    }

    func makeParameter(_ initial: GoldenTensor, optimizer: OptimizerSpec) throws -> ParameterUnderTest {
        let parameter = try Parameter(shape: initial.shape)
        try parameter.value.assign(initial.data)
        return SwiftParameter(parameter: parameter, optimizer: try Self.optimizer(optimizer, [parameter]))
    }

    static func optimizer(_ spec: OptimizerSpec, _ parameters: [Parameter]) throws -> Optimizer {
        switch spec {
        case let .sgd(lr, momentum, dampening, weightDecay, nesterov):
            return try SGD(parameters: parameters, learningRate: lr, momentum: momentum, dampening: dampening,
                           weightDecay: weightDecay, nesterov: nesterov)
        case let .adam(lr, beta1, beta2, eps, weightDecay, decoupled):
            return try Adam(parameters: parameters, learningRate: lr, beta1: beta1, beta2: beta2, eps: eps,
                            weightDecay: weightDecay, decoupledWeightDecay: decoupled)
        }
    }
}

final class SwiftNetwork: NetworkUnderTest {
    let net: Sequential
    init(_ net: Sequential) { self.net = net }

    func add(_ layer: LayerSpec) throws {
        switch layer {
        case .linear(let out): try net.addLinear(out)
        case .relu: try net.addReLU()
        case .flatten: try net.addFlatten()
        case let .conv2d(out, kernel, stride, padding, dilation, groups):
            try net.addConv2d(outChannels: out, kernelSize: kernel, stride: stride, padding: padding, dilation: dilation,
                              groups: groups)
        case let .avgPool2d(a):
            try net.addAvgPool2d(kernelSize: a.kernel, stride: a.stride, padding: a.padding, ceilMode: a.ceilMode,
                                 countIncludePad: a.countIncludePad, divisorOverride: a.divisorOverride)
        case let .maxPool2d(m):
            try net.addMaxPool2d(kernelSize: m.kernel, stride: m.stride, padding: m.padding, dilation: m.dilation,
                                 ceilMode: m.ceilMode)
        case let .batchNorm(eps, momentum, affine, trackRunningStats):
            try net.addBatchNorm(eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats)
        case .dropout(let p): try net.addDropout(p)
        }
    }

    func tensorNames() throws -> [String] { net.stateDict.map(\.name) }
    func tensor(_ name: String) throws -> [Float] { try net.tensor(name) }
    func setTensor(_ name: String, _ values: [Float]) throws { try net.setTensor(name, values) }
    func gradient(_ name: String) throws -> [Float] { try net.gradient(name) }
    func setTraining(_ training: Bool) throws { net.isTraining = training }
    func zeroGrad() throws { net.zeroGrad() }
    func forward(_ input: [Float], batch: Int) throws -> [Float] { try net.forward(input, batch: batch) }
    func backward(_ gradOutput: [Float], batch: Int) throws -> [Float] { try net.backward(gradOutput, batch: batch) }

    func makeOptimizer(_ spec: OptimizerSpec) throws -> OptimizerUnderTest {
        SwiftOptimizer(try SwiftAPIBackend.optimizer(spec, net.parameters))
    }

    func trainStep(_ input: [Float], _ target: LossTarget, optimizer: OptimizerUnderTest) throws -> Float {
        guard let optimizer = optimizer as? SwiftOptimizer else { throw GoldenError("not a Swift API optimizer") }
        switch target {
        case .labels(let labels): return try net.trainStep(input: input, labels: labels, optimizer: optimizer.optimizer)
        case .values(let values): return try net.trainStep(input: input, targets: values, optimizer: optimizer.optimizer)
        }
    }
}

final class SwiftOptimizer: OptimizerUnderTest {
    let optimizer: Optimizer
    init(_ optimizer: Optimizer) { self.optimizer = optimizer }
    func step() throws { try optimizer.step() }
}

/// A standalone Parameter and an optimizer over it.
final class SwiftParameter: ParameterUnderTest {
    let parameter: Parameter
    let optimizer: Optimizer
    init(parameter: Parameter, optimizer: Optimizer) {
        self.parameter = parameter
        self.optimizer = optimizer
    }

    func setGradient(_ values: [Float]) throws { try parameter.gradient.assign(values) }
    func step() throws { try optimizer.step() }
    func value() throws -> [Float] { parameter.value.array }
}

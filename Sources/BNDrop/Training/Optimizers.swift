import BNDropKernels

/// An optimizer updates the parameters it was given from their accumulated gradients.
/// It never touches buffers such as BatchNorm's running statistics.
public protocol Optimizer: AnyObject {
    var parameters: [Parameter] { get }
    /// One update, as PyTorch's `optimizer.step()`.
    func step() throws
}

/// As PyTorch, an optimizer needs something to optimize.
private func requireParameters(_ parameters: [Parameter]) throws {
    guard !parameters.isEmpty else {
        throw BNDError.invalidArgument("optimizer got an empty parameter list (the network has no layer with parameters)")
    }
}

/// Stochastic gradient descent, as torch.optim.SGD:
/// g = grad + wd·p; buf = g (first step) or momentum·buf + (1−dampening)·g;
/// g = g + momentum·buf (nesterov) or buf; p −= lr·g.
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public let learningRate: Float, momentum: Float, dampening: Float, weightDecay: Float
    public let nesterov: Bool
    // Internal rather than private: checkpoints (Checkpoint/Optimizer+Checkpoint.swift) save and restore them.
    var momentumBuffers: [FloatBuffer] = []
    var started = false

    public init(parameters: [Parameter], learningRate: Float = 0.01, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) throws {
        try requireParameters(parameters)
        try Checked.finite(learningRate, in: 0...Float.greatestFiniteMagnitude, "SGD learning rate")
        try Checked.finite(momentum, in: 0...Float.greatestFiniteMagnitude, "SGD momentum")
        try Checked.finite(dampening, in: -Float.greatestFiniteMagnitude...Float.greatestFiniteMagnitude, "SGD dampening")
        try Checked.finite(weightDecay, in: 0...Float.greatestFiniteMagnitude, "SGD weight decay")
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw BNDError.invalidArgument("Nesterov momentum requires a momentum and zero dampening "
                                           + "(got momentum \(momentum), dampening \(dampening))")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        if momentum != 0 {
            momentumBuffers = try parameters.map { try FloatBuffer(count: $0.count) }
        }
    }

    public func step() throws {
        for (index, parameter) in parameters.enumerated() {
            bndk_sgd_step(parameter.value.pointer, parameter.gradient.pointer,
                          momentum != 0 ? momentumBuffers[index].pointer : nil, Int64(parameter.count), learningRate,
                          momentum, dampening, weightDecay, nesterov ? 1 : 0, started ? 1 : 0)
            parameter.markChanged()
        }
        started = true
    }
}

/// Adam, as torch.optim.Adam, or AdamW (torch.optim.AdamW) when `decoupledWeightDecay` is true:
/// t += 1; g = grad + wd·p (Adam) or p *= 1 − lr·wd (AdamW);
/// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr/(1−β1ᵗ)·m/(√v/√(1−β2ᵗ) + eps).
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public let learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public let decoupledWeightDecay: Bool
    /// Steps taken so far.
    public internal(set) var stepCount = 0
    // Internal rather than private: checkpoints (Checkpoint/Optimizer+Checkpoint.swift) save and restore them.
    let firstMoments: [FloatBuffer]
    let secondMoments: [FloatBuffer]

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) throws {
        try requireParameters(parameters)
        try Checked.finite(learningRate, in: 0...Float.greatestFiniteMagnitude, "Adam learning rate")
        guard beta1.isFinite, beta1 >= 0, beta1 < 1 else {
            throw BNDError.invalidArgument("Adam beta1 must be in [0, 1), got \(beta1)")
        }
        guard beta2.isFinite, beta2 >= 0, beta2 < 1 else {
            throw BNDError.invalidArgument("Adam beta2 must be in [0, 1), got \(beta2)")
        }
        try Checked.finite(eps, in: 0...Float.greatestFiniteMagnitude, "Adam eps")
        try Checked.finite(weightDecay, in: 0...Float.greatestFiniteMagnitude, "Adam weight decay")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        firstMoments = try parameters.map { try FloatBuffer(count: $0.count) }
        secondMoments = try parameters.map { try FloatBuffer(count: $0.count) }
    }

    /// AdamW with PyTorch's default weight decay of 1e-2.
    public static func adamW(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9,
                             beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 1e-2) throws -> Adam {
        try Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps,
                 weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    /// One thread, parameter after parameter. Split in chunks of 2048-8192 over the pool, the article's
    /// dropout regression (10,401 parameters per net, a step every ~31 µs) took 1.02-1.8x the time,
    /// although the square roots and divisions PyTorch's bits need are about 13% of its step: most
    /// likely, the other core first has to fetch its chunks' parameters, gradients and moments from
    /// this core's caches (as with the net's products: see `ParallelKernel.minimumParallelWork`).
    public func step() throws {
        if stepCount < Int.max { stepCount += 1 }  // a loaded count can be anything >= 1: no overflow
        // Scalars in double precision, as PyTorch computes them in Python, then applied in float32.
        let t = Double(stepCount)
        let biasCorrection1 = 1 - pow(Double(beta1), t)
        let biasCorrection2Sqrt = (1 - pow(Double(beta2), t)).squareRoot()
        let stepSize = Float(Double(learningRate) / biasCorrection1)
        let invCorrection2 = Float(biasCorrection2Sqrt)
        let decay = Float(1 - Double(learningRate) * Double(weightDecay))
        let (beta1, beta2, eps, weightDecay) = (self.beta1, self.beta2, self.eps, self.weightDecay)
        let coupled = weightDecay != 0 && !decoupledWeightDecay
        let decoupled = weightDecay != 0 && decoupledWeightDecay
        for (index, parameter) in parameters.enumerated() {
            let p = parameter.value.pointer
            if decoupled { for i in 0..<parameter.count { p[i] *= decay } }
            bndk_adam_step(p, parameter.gradient.pointer, firstMoments[index].pointer, secondMoments[index].pointer,
                           Int64(parameter.count), 1 - beta1, beta2, 1 - beta2, eps, stepSize, invCorrection2,
                           coupled ? 1 : 0, weightDecay)
            parameter.markChanged()
        }
    }
}

import Glibc

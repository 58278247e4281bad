import Foundation

// What the golden runner needs from an API: a network it can build layer by layer, read and write by
// state_dict names, run forward and backward and train; the two losses; an optimizer over one
// parameter. SwiftAPIBackend and CABIBackend implement it, each over its own API only, so every case's
// logic (GoldenRunner) is written once and runs through both.

/// One layer of an nn.Sequential with PyTorch's constructor arguments.
enum LayerSpec {
    case linear(out: Int)
    case relu
    case flatten
    case conv2d(out: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, groups: Int)
    case avgPool2d(AvgPoolSpec)
    case maxPool2d(MaxPoolSpec)
    /// momentum nil: PyTorch's momentum=None, a cumulative average.
    case batchNorm(eps: Float, momentum: Float?, affine: Bool, trackRunningStats: Bool)
    case dropout(p: Float)
}

/// torch.nn.AvgPool2d arguments; stride nil: PyTorch's stride=None, the kernel size.
struct AvgPoolSpec {
    var kernel: Int, stride: Int?, padding = 0, ceilMode = false, countIncludePad = true
    var divisorOverride: Int? = nil
    /// Only kernel and stride differ from PyTorch's defaults (what bnd_net_add_avgpool2d takes).
    var isPlain: Bool { padding == 0 && !ceilMode && countIncludePad && divisorOverride == nil }
}

/// torch.nn.MaxPool2d arguments; stride nil: PyTorch's stride=None, the kernel size.
struct MaxPoolSpec {
    var kernel: Int, stride: Int?, padding = 0, dilation = 1, ceilMode = false
    var isPlain: Bool { padding == 0 && dilation == 1 && !ceilMode }
}

/// torch.optim.SGD / Adam / AdamW arguments.
enum OptimizerSpec {
    case sgd(lr: Float, momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool)
    case adam(lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool)
}

/// What a loss compares the prediction with: class indices (cross-entropy) or values (MSE).
enum LossTarget {
    case labels([Int32])
    case values([Float])
}

/// A loss's arguments beyond PyTorch's defaults (a case's config), for the calls that take them.
struct LossOptionsSpec {
    /// Cross-entropy's: nil or a weight per class, the ignored label, the smoothing.
    var weight: [Float]? = nil, ignoreIndex = -100, labelSmoothing: Float = 0
    /// Both losses': reduction 'sum' (else 'mean').
    var sum = false
}

protocol GoldenBackend {
    /// "Swift API" or "C ABI", as printed in the summary line.
    var apiName: String { get }
    /// An empty network taking samples of `sampleShape`, in train mode.
    func makeNetwork(sampleShape: [Int]) throws -> NetworkUnderTest
    /// Cross-entropy (classes = prediction.count / labels.count) or MSE, and its gradient with respect
    /// to the prediction: with `options`, through the calls that take PyTorch's other arguments; nil,
    /// through the plain calls (mean reduction).
    func loss(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?) throws
        -> (loss: Float, gradient: [Float])
    /// The loss computed by a call that skips the gradient, or nil when the API has no such call.
    func lossWithoutGradient(_ prediction: [Float], _ target: LossTarget, options: LossOptionsSpec?) throws -> Float?
    /// A parameter holding `initial`, with an optimizer over it alone.
    func makeParameter(_ initial: GoldenTensor, optimizer: OptimizerSpec) throws -> ParameterUnderTest
}

protocol NetworkUnderTest: AnyObject {
    func add(_ layer: LayerSpec) throws
    /// Every tensor name (parameters and buffers), as a state_dict lists them.
    func tensorNames() throws -> [String]
    func tensor(_ name: String) throws -> [Float]
    func setTensor(_ name: String, _ values: [Float]) throws
    /// A parameter's accumulated gradient.
    func gradient(_ name: String) throws -> [Float]
    func setTraining(_ training: Bool) throws
    func zeroGrad() throws
    func forward(_ input: [Float], batch: Int) throws -> [Float]
    /// Returns the gradient with respect to the input.
    func backward(_ gradOutput: [Float], batch: Int) throws -> [Float]
    /// An optimizer over the network's parameters.
    func makeOptimizer(_ spec: OptimizerSpec) throws -> OptimizerUnderTest
    /// The one-call step: zero_grad, forward, loss, backward, optimizer step. Returns the loss.
    func trainStep(_ input: [Float], _ target: LossTarget, optimizer: OptimizerUnderTest) throws -> Float
}

protocol OptimizerUnderTest: AnyObject {
    func step() throws
}

protocol ParameterUnderTest: AnyObject {
    func setGradient(_ values: [Float]) throws
    func step() throws
    func value() throws -> [Float]
}

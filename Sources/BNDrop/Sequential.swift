/// A feed-forward network of layers applied in order, as torch.nn.Sequential.
///
/// Each `add…` call infers the new layer's input size from the shape so far, so sizes are never repeated.
/// Every parameter, gradient and buffer is reachable by its PyTorch state_dict name
/// ("<layer index>.weight", "1.running_var", ...); every layer takes an index, ReLU/Flatten/Dropout
/// included. Parameters are initialised from the network's seed (default 0): layer `i` draws from its
/// own stream of that seed, so adding a layer never changes the others.
///
/// Buffers are allocated for the largest batch seen and reused: training at a fixed batch size allocates
/// nothing after the first step. A `Sequential` is not thread-safe; different networks can be used from
/// different threads at once.
public final class Sequential {
    /// One sample's shape, e.g. [784] or [1, 28, 28].
    public let sampleShape: [Int]
    public private(set) var layers: [Layer] = []
    public private(set) var seed: UInt64
    /// The layers' outputs from the last forward pass (nil where none ran yet), for inspection.
    private var layerOutputs: [UnsafePointer<Float>?] = []
    private var lastForwardBatch: Int?
    private let inputCopy = FloatBuffer()
    private let lossGradient = FloatBuffer()
    private var training = true
    /// The most values one sample has anywhere in the network (input or any layer's output).
    private var widestSample: Int

    public init(sampleShape: [Int], seed: UInt64 = 0) throws {
        guard !sampleShape.isEmpty, sampleShape.count <= 3 else {
            throw BNDError.shape("sample shape must have 1 to 3 dimensions ([features], [C, L] or [C, H, W]), got \(sampleShape)")
        }
        guard sampleShape.allSatisfy({ $0 > 0 }) else {
            throw BNDError.shape("sample shape dimensions must be positive, got \(sampleShape)")
        }
        _ = try blasInt(1, Checked.product(sampleShape, "sample shape"), "sample shape")
        self.sampleShape = sampleShape
        self.seed = seed
        widestSample = sampleShape.reduce(1, *)
    }

    /// The shape of one sample after the last layer (the sample shape when there are no layers).
    public var outputShape: [Int] { layers.last?.outputShape ?? sampleShape }
    public var inputCount: Int { sampleShape.reduce(1, *) }
    public var outputCount: Int { outputShape.reduce(1, *) }

    /// Train (true, the default) or eval mode for every layer, as `model.train()` / `model.eval()`.
    public var isTraining: Bool {
        get { training }
        set {
            training = newValue
            for layer in layers { layer.isTraining = newValue }
        }
    }

    // MARK: Building

    private var nextRandom: SeededRandom { SeededRandom(seed: seed, stream: UInt64(layers.count)) }

    /// Appends `layer`, whose input shape must be the current output shape.
    public func add(_ layer: Layer) throws {
        guard layer.inputShape == outputShape else {
            throw BNDError.shape("layer \(layers.count) (\(layer.typeName)) expects input \(layer.inputShape), "
                                 + "but the network produces \(outputShape)")
        }
        _ = try blasInt(1, Checked.product(layer.outputShape, "layer output"), "layer output")
        layer.isTraining = training
        layers.append(layer)
        layerOutputs.append(nil)
        widestSample = max(widestSample, layer.outputCount)
        parameters += layer.parameters
        lastForwardBatch = nil
    }

    public func addLinear(_ outFeatures: Int) throws {
        guard outputShape.count == 1 else {
            throw BNDError.shape("Linear needs a flat input, got \(outputShape): add a Flatten first")
        }
        var random = nextRandom
        try add(Linear(inFeatures: outputShape[0], outFeatures: outFeatures, random: &random))
    }

    public func addConv2d(outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0) throws {
        var random = nextRandom
        try add(Conv2d(shape: outputShape, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                       padding: padding, random: &random))
    }

    public func addReLU() throws { try add(ReLU(shape: outputShape)) }
    public func addFlatten() throws { try add(Flatten(shape: outputShape)) }

    public func addAvgPool2d(kernelSize: Int, stride: Int? = nil) throws {
        try add(AvgPool2d(shape: outputShape, kernelSize: kernelSize, stride: stride))
    }

    public func addMaxPool2d(kernelSize: Int, stride: Int? = nil) throws {
        try add(MaxPool2d(shape: outputShape, kernelSize: kernelSize, stride: stride))
    }

    /// BatchNorm1d for a [C] or [C, L] shape, BatchNorm2d for [C, H, W].
    public func addBatchNorm(eps: Float = 1e-5, momentum: Float? = 0.1, affine: Bool = true,
                             trackRunningStats: Bool = true) throws {
        try add(BatchNorm(shape: outputShape, eps: eps, momentum: momentum, affine: affine,
                          trackRunningStats: trackRunningStats))
    }

    public func addDropout(_ p: Float) throws {
        var random = nextRandom
        try add(Dropout(p: p, shape: outputShape, random: &random))
    }

    /// Re-initialises every layer from `seed` (parameters drawn anew, BatchNorm state reset, dropout
    /// reseeded), as a network freshly built with that seed. Gradients are zeroed.
    public func reseed(_ seed: UInt64) {
        self.seed = seed
        for (index, layer) in layers.enumerated() {
            var random = SeededRandom(seed: seed, stream: UInt64(index))
            layer.reset(random: &random)
        }
        zeroGrad()
    }

    // MARK: Running

    /// Runs `batch` samples through the network and returns the output (`batch`·`outputCount` values).
    /// The returned pointer stays valid until the next `forward`.
    public func forward(_ input: UnsafePointer<Float>, batch: Int) throws -> UnsafeBufferPointer<Float> {
        lastForwardBatch = nil
        guard batch > 0 else { throw BNDError.shape("batch must be positive, got \(batch)") }
        _ = try blasInt(batch, widestSample, "batch of \(batch)")
        try inputCopy.resize(batch * inputCount)
        inputCopy.copy(from: input)
        var current = UnsafePointer(inputCopy.pointer)
        for index in layers.indices { layerOutputs[index] = nil }
        for (index, layer) in layers.enumerated() {
            current = try layer.forward(current, batch: batch)
            layerOutputs[index] = current
        }
        lastForwardBatch = batch
        return UnsafeBufferPointer(start: current, count: batch * outputCount)
    }

    /// Array form of `forward`.
    public func forward(_ input: [Float], batch: Int) throws -> [Float] {
        guard batch > 0, input.count == batch * inputCount else {
            throw BNDError.shape("input has \(input.count) values; a batch of \(batch) samples of \(sampleShape) needs "
                                 + "\(max(batch, 0) * inputCount)")
        }
        return try input.withUnsafeBufferPointer { Array(try forward($0.baseAddress!, batch: batch)) }
    }

    /// Back-propagates `gradOutput` (gradient of the loss w.r.t. the last forward's output) and
    /// *accumulates* parameter gradients, as `output.backward(grad)` does. When `gradInput` is non-nil
    /// it receives the gradient w.r.t. the input (`batch`·`inputCount` values).
    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int,
                         gradInput: UnsafeMutablePointer<Float>? = nil) throws {
        guard let last = lastForwardBatch else {
            throw BNDError.state("backward needs a successful forward first")
        }
        guard batch == last else {
            throw BNDError.shape("backward batch \(batch) differs from the forward batch \(last)")
        }
        var gradient = gradOutput
        for (index, layer) in layers.enumerated().reversed() {
            let needInput = index > 0 || gradInput != nil
            guard let next = try layer.backward(gradient, batch: batch, needInputGradient: needInput) else { break }
            gradient = next
        }
        if let gradInput {
            gradInput.update(from: gradient, count: batch * inputCount)
        }
    }

    /// Array form of `backward`: returns the input gradient.
    public func backward(_ gradOutput: [Float], batch: Int) throws -> [Float] {
        guard batch > 0, gradOutput.count == batch * outputCount else {
            throw BNDError.shape("grad_output has \(gradOutput.count) values; a batch of \(batch) needs "
                                 + "\(max(batch, 0) * outputCount)")
        }
        var gradInput = [Float](repeating: 0, count: batch * inputCount)
        try gradOutput.withUnsafeBufferPointer { g in
            try gradInput.withUnsafeMutableBufferPointer { try backward(g.baseAddress!, batch: batch, gradInput: $0.baseAddress!) }
        }
        return gradInput
    }

    /// Sets every parameter gradient to zero.
    public func zeroGrad() {
        for parameter in parameters { parameter.gradient.fill(0) }
    }

    /// The output of layer `index` from the last forward pass (`batch`·its output count values).
    public func layerOutput(_ index: Int) throws -> [Float] {
        guard layers.indices.contains(index) else {
            throw BNDError.invalidArgument("layer index \(index) is out of range 0..<\(layers.count)")
        }
        guard let batch = lastForwardBatch, let output = layerOutputs[index] else {
            throw BNDError.state("layer outputs exist only after a successful forward")
        }
        return Array(UnsafeBufferPointer(start: output, count: batch * layers[index].outputCount))
    }

    /// The batch size of the last successful forward pass, if any.
    public var lastBatch: Int? { lastForwardBatch }

    // MARK: Training steps

    /// One classification step: zero_grad, forward in train mode, cross-entropy, backward, optimizer step.
    /// The network is in train mode for the step and returns to its previous mode afterwards. A
    /// non-finite loss throws `BNDError.numeric` before anything is updated.
    public func trainStep(input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                          optimizer: Optimizer) throws -> Float {
        guard outputShape.count == 1 else {
            throw BNDError.shape("classification needs a flat output (batch × classes), got \(outputShape)")
        }
        let classes = outputCount
        return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
            try Loss.crossEntropy(logits: output, labels: labels, batch: batch, classes: classes, gradient: gradient)
        }
    }

    /// One regression step with the mean squared error against `targets` (`batch`·`outputCount` values).
    public func trainStep(input: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int,
                          optimizer: Optimizer) throws -> Float {
        guard batch > 0 else { throw BNDError.shape("batch must be positive, got \(batch)") }
        _ = try blasInt(batch, outputCount, "targets for a batch of \(batch)")
        try Self.requireFinite(targets, batch * outputCount, "targets")
        return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
            try Loss.mse(prediction: output, target: targets, count: batch * outputCount, gradient: gradient)
        }
    }

    private func step(input: UnsafePointer<Float>, batch: Int, optimizer: Optimizer,
                      loss: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Float) throws -> Float {
        // A non-finite input would reach BatchNorm's running statistics before the loss could be
        // checked: refuse it up front so a failed step changes nothing.
        guard batch > 0 else { throw BNDError.shape("batch must be positive, got \(batch)") }
        _ = try blasInt(batch, inputCount, "batch of \(batch)")
        try Self.requireFinite(input, batch * inputCount, "input")
        let previousMode = training
        if !previousMode { isTraining = true }
        defer { if !previousMode { isTraining = false } }
        zeroGrad()
        let output = try forward(input, batch: batch)
        try lossGradient.resize(output.count)
        let value = try loss(output.baseAddress!, lossGradient.pointer)
        guard value.isFinite else {
            throw BNDError.numeric("the loss is \(value); no parameter was updated")
        }
        try backward(lossGradient.pointer, batch: batch)
        try optimizer.step()
        return value
    }

    static func requireFinite(_ values: UnsafePointer<Float>, _ count: Int, _ name: String) throws {
        for i in 0..<count where !values[i].isFinite {
            throw BNDError.numeric("\(name)[\(i)] is \(values[i]); no parameter or statistic was updated")
        }
    }

    /// Array form of the classification step.
    public func trainStep(input: [Float], labels: [Int32], optimizer: Optimizer) throws -> Float {
        let batch = labels.count
        guard batch > 0, input.count == batch * inputCount else {
            throw BNDError.shape("\(input.count) input values do not match \(batch) labels × \(inputCount)")
        }
        return try input.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { y in
                try trainStep(input: x.baseAddress!, labels: y.baseAddress!, batch: batch, optimizer: optimizer)
            }
        }
    }

    /// Array form of the regression step.
    public func trainStep(input: [Float], targets: [Float], optimizer: Optimizer) throws -> Float {
        guard !input.isEmpty, input.count % inputCount == 0 else {
            throw BNDError.shape("\(input.count) input values are not a whole batch of \(sampleShape)")
        }
        let batch = input.count / inputCount
        guard targets.count == batch * outputCount else {
            throw BNDError.shape("\(targets.count) targets do not match a batch of \(batch) × \(outputCount)")
        }
        return try input.withUnsafeBufferPointer { x in
            try targets.withUnsafeBufferPointer { t in
                try trainStep(input: x.baseAddress!, targets: t.baseAddress!, batch: batch, optimizer: optimizer)
            }
        }
    }

    // MARK: State by name

    /// Every trainable parameter, in state_dict order (what `model.parameters()` yields).
    public private(set) var parameters: [Parameter] = []

    /// The state_dict: (name, entry) in PyTorch's order.
    public var stateDict: [(name: String, entry: StateEntry)] {
        layers.enumerated().flatMap { index, layer in layer.state.map { ("\(index).\($0.name)", $0) } }
    }

    /// The state entry called `name` ("0.weight", "1.running_mean", ...).
    public func stateEntry(_ name: String) throws -> StateEntry {
        let parts = name.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2, let index = Int(parts[0]), layers.indices.contains(index),
           let entry = layers[index].state.first(where: { $0.name == parts[1] }) {
            return entry
        }
        let known = stateDict.map(\.name).joined(separator: ", ")
        throw BNDError.invalidArgument("no tensor named '\(name)'; this network has: \(known.isEmpty ? "none" : known)")
    }

    /// The values of tensor `name` (num_batches_tracked as one float).
    public func tensor(_ name: String) throws -> [Float] {
        switch try stateEntry(name).storage {
        case .parameter(let p): return p.value.array
        case .buffer(let b): return b.array
        case .counter(let c): return [Float(c.value)]
        }
    }

    /// The parameter called `name`; a buffer's name is an invalid-argument error.
    public func parameter(_ name: String) throws -> Parameter {
        guard case .parameter(let p) = try stateEntry(name).storage else {
            throw BNDError.invalidArgument("'\(name)' is a buffer, not a parameter: it has no gradient")
        }
        return p
    }

    /// The accumulated gradient of parameter `name`.
    public func gradient(_ name: String) throws -> [Float] {
        try parameter(name).gradient.array
    }

    /// Replaces the values of tensor `name`; `values.count` must match exactly. A counter takes a
    /// non-negative whole number.
    public func setTensor(_ name: String, _ values: [Float]) throws {
        let entry = try stateEntry(name)
        guard values.count == entry.count else {
            throw BNDError.shape("'\(name)' has \(entry.count) elements (shape \(entry.shape)), got \(values.count)")
        }
        switch entry.storage {
        case .parameter(let p): try p.value.assign(values)
        case .buffer(let b): try b.assign(values)
        case .counter(let c):
            guard let v = values.first, v >= 0, v == v.rounded(), v < 9.0e15 else {
                throw BNDError.invalidArgument("'\(name)' takes a non-negative whole number, got \(values)")
            }
            c.value = Int64(v)
        }
    }
}

/// A feed-forward network of layers applied in order, as torch.nn.Sequential.
///
/// Each `add…` call infers the new layer's input size from the shape so far, so sizes are never repeated.
/// Parameters are initialised from the network's seed (default 0): layer `i` draws from its own stream of
/// that seed, so adding a layer never changes the others. Every parameter and buffer is reachable by its
/// PyTorch state_dict name (see `Sequential+StateDict.swift`); training steps are in
/// `Training/TrainStep.swift`.
///
/// Buffers are allocated for the largest batch seen and reused: training at a fixed batch size allocates
/// nothing after the first step. A `Sequential` is not thread-safe; different networks can be used from
/// different threads at once.
public final class Sequential {
    /// One sample's shape, e.g. [784] or [1, 28, 28].
    public let sampleShape: [Int]
    public private(set) var layers: [Layer] = []
    /// The seed the parameters were drawn from (`seed(_:)` changes it).
    public private(set) var seed: UInt64
    /// Every trainable parameter, in state_dict order (what `model.parameters()` yields).
    public private(set) var parameters: [Parameter] = []
    /// The batch size of the last successful forward pass; nil before one, after a failed one, and after
    /// a layer was added.
    public internal(set) var lastBatch: Int?
    /// False after a training step: its forward read the caller's input in place, which the step does not
    /// keep, so backward needs a new forward (as PyTorch refuses a second backward through a graph).
    var backwardAllowed = true
    /// The parameters' versions when the last forward ran (see `Parameter.version`).
    private var forwardParameterVersion: UInt64 = 0
    /// The index of the first layer with parameters: backward computes input gradients above it only.
    private var firstTrainableLayer: Int?
    /// The layers' outputs from the last successful forward pass, for inspection.
    private var layerOutputs: [UnsafePointer<Float>?] = []
    /// For each layer, whether its output in the last forward was the caller's borrowed input passed
    /// through (a leading Flatten, say): that memory is the caller's, valid only during the call or until
    /// backward, so `layerOutput` refuses to read it afterwards.
    private var outputIsBorrowedInput: [Bool] = []
    /// For each layer, whether it is a ReLU taken in by the next layer (a ReLU before AvgPool2d(2)): the
    /// network skips it, the next layer applies it (`Layer.forward(_:batch:foldingReLU:)`), and its output
    /// is written only if `layerOutput` asks for it.
    private var reluFoldedIntoNext: [Bool] = []
    private let inputCopy = FloatBuffer()
    /// The loss gradient of a training step (`TrainStep.swift`).
    let lossGradient = FloatBuffer()
    /// The loss's tasks for the training steps and `evaluate` (`Loss.swift`).
    let lossKernels = LossKernels()
    /// What a training step puts back when it fails (`StepSnapshot.swift`); built by the first step.
    var stepSnapshot: StepSnapshot?
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
        widestSample = try Checked.product(sampleShape, "sample shape")
        _ = try Checked.blasInt(1, widestSample, "sample shape \(sampleShape)")
        self.sampleShape = sampleShape
        self.seed = seed
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

    /// Layer `index`, or an invalid-argument error when there is none.
    public func layer(_ index: Int) throws -> Layer {
        try Checked.index(index, below: layers.count, "layer")
        return layers[index]
    }

    // MARK: Building

    private var nextRandom: SeededRandom { SeededRandom(seed: seed, stream: UInt64(layers.count)) }

    /// Appends `layer`, whose input shape must be the current output shape.
    public func add(_ layer: Layer) throws {
        guard layer.inputShape == outputShape else {
            throw BNDError.shape("layer \(layers.count) (\(layer.typeName)) expects input \(layer.inputShape), "
                                 + "but the network produces \(outputShape)")
        }
        _ = try Checked.blasInt(1, layer.outputCount, "layer \(layers.count) (\(layer.typeName)) output")
        layer.isTraining = training
        if let last = layers.last, last is ReLU, layer.canFoldReLU { reluFoldedIntoNext[layers.count - 1] = true }
        layers.append(layer)
        layerOutputs.append(nil)
        outputIsBorrowedInput.append(false)
        reluFoldedIntoNext.append(false)
        widestSample = max(widestSample, layer.outputCount)
        if firstTrainableLayer == nil && !layer.parameters.isEmpty { firstTrainableLayer = layers.count - 1 }
        parameters += layer.parameters
        lastBatch = nil
    }

    public func addLinear(_ outFeatures: Int) throws {
        var random = nextRandom
        try add(Linear(inputShape: outputShape, outFeatures: outFeatures, random: &random))
    }

    public func addConv2d(outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                          groups: Int = 1) throws {
        var random = nextRandom
        try add(Conv2d(inputShape: outputShape, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                       padding: padding, dilation: dilation, groups: groups, random: &random))
    }

    public func addReLU() throws { try add(ReLU(inputShape: outputShape)) }
    public func addFlatten() throws { try add(Flatten(inputShape: outputShape)) }

    /// torch.nn.AvgPool2d: see `AvgPool2d.init` (stride nil means `kernelSize`, PyTorch's stride=None).
    public func addAvgPool2d(kernelSize: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false,
                             countIncludePad: Bool = true, divisorOverride: Int? = nil) throws {
        try add(AvgPool2d(inputShape: outputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                          ceilMode: ceilMode, countIncludePad: countIncludePad, divisorOverride: divisorOverride))
    }

    /// torch.nn.MaxPool2d: see `MaxPool2d.init` (stride nil means `kernelSize`, PyTorch's stride=None).
    public func addMaxPool2d(kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1,
                             ceilMode: Bool = false) throws {
        try add(MaxPool2d(inputShape: outputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                          dilation: dilation, ceilMode: ceilMode))
    }

    /// BatchNorm1d for a [C] or [C, L] shape, BatchNorm2d for [C, H, W].
    public func addBatchNorm(eps: Float = 1e-5, momentum: Float? = 0.1, affine: Bool = true,
                             trackRunningStats: Bool = true) throws {
        try add(BatchNorm(inputShape: outputShape, eps: eps, momentum: momentum, affine: affine,
                          trackRunningStats: trackRunningStats))
    }

    public func addDropout(_ p: Float) throws {
        var random = nextRandom
        try add(Dropout(inputShape: outputShape, p: p, random: &random))
    }

    /// Re-initialises every layer from `seed` (parameters drawn anew, BatchNorm state reset, dropout
    /// reseeded), as a network freshly built with that seed; layers added later use it too. Gradients are
    /// zeroed. (`bnd_net_seed` in C.)
    public func seed(_ seed: UInt64) {
        self.seed = seed
        for (index, layer) in layers.enumerated() {
            var random = SeededRandom(seed: seed, stream: UInt64(index))
            layer.reset(random: &random)
        }
        for parameter in parameters { parameter.markChanged() }
        zeroGrad()
    }

    // MARK: Running

    /// Runs `batch` samples through the network and returns the output (`batch`·`outputCount` values).
    /// The returned pointer stays valid until the next `forward`.
    public func forward(_ input: UnsafePointer<Float>, batch: Int) throws -> UnsafeBufferPointer<Float> {
        try forward(input, batch: batch, borrowingInput: false)
    }

    /// `forward`; with `borrowingInput` the layers read `input` in place instead of a copy, so it must stay
    /// valid and unchanged until the backward of this forward (`bnd_net_forward_view`, the training step).
    public func forward(_ input: UnsafePointer<Float>, batch: Int, borrowingInput: Bool) throws
        -> UnsafeBufferPointer<Float> {
        lastBatch = nil
        backwardAllowed = true
        try Checked.batch(batch)
        _ = try Checked.blasInt(batch, widestSample, "a batch of \(batch)")
        try checkBatchNormBatch(batch, training: isTraining)  // before any layer: a refused forward changes nothing
        var current = input
        if !borrowingInput {
            try inputCopy.resize(batch * inputCount)
            inputCopy.copy(from: input)
            current = UnsafePointer(inputCopy.pointer)
        }
        for index in layers.indices {
            layerOutputs[index] = nil
            outputIsBorrowedInput[index] = false
        }
        let borrowedInput = borrowingInput ? input : nil
        var index = 0
        while index < layers.count {
            let stretch = stretchBySample(from: index)
            if stretch.count > 1 {
                current = try forwardBySample(stretch, current, batch: batch, borrowedInput: borrowedInput)
                index = stretch.upperBound
            } else {
                if !(try skipFoldedReLU(index, current, batch: batch, borrowedInput: borrowedInput)) {
                    current = try layers[index].forward(current, batch: batch,
                                                        foldingReLU: followsFoldedReLU(index))
                    layerOutputs[index] = current
                }
                index += 1
            }
        }
        if let borrowedInput {
            let end = borrowedInput + batch * inputCount
            for i in layers.indices {
                if let output = layerOutputs[i], output >= borrowedInput, output < end {
                    layerOutputs[i] = nil
                    outputIsBorrowedInput[i] = true
                }
            }
        }
        lastBatch = batch
        forwardParameterVersion = parameterVersion
        return UnsafeBufferPointer(start: current, count: batch * outputCount)
    }

    /// The sum of the parameters' versions: it changes whenever one of them does (they only grow).
    private var parameterVersion: UInt64 { parameters.reduce(0) { $0 &+ $1.version } }

    /// Whether layer `index` takes in the ReLU before it (that ReLU is skipped, its input read instead).
    private func followsFoldedReLU(_ index: Int) -> Bool { index > 0 && reluFoldedIntoNext[index - 1] }

    /// The layer whose output layer `index` reads (past a ReLU folded into it), if any.
    private func layerBefore(_ index: Int) -> Int? {
        let before = followsFoldedReLU(index) ? index - 2 : index - 1
        return before >= 0 ? before : nil
    }

    /// When layer `index` is a ReLU taken in by the next layer, makes room for its output and returns
    /// true (the network skips it); else false. Its output is made later from its input, which must then
    /// still be there: a layer's own buffer is, the caller's borrowed input (reached through pass-through
    /// layers) may not be, so from that the output is made now.
    private func skipFoldedReLU(_ index: Int, _ input: UnsafePointer<Float>, batch: Int,
                                borrowedInput: UnsafePointer<Float>?) throws -> Bool {
        guard reluFoldedIntoNext[index], let relu = layers[index] as? ReLU else { return false }
        try relu.reserveOutput(batch: batch)
        if let borrowedInput, input == borrowedInput {
            layerOutputs[index] = try relu.materializedOutput(input, batch: batch)
        }
        return true
    }

    // MARK: Forward by blocks of samples
    //
    // Layers that compute each sample from that sample alone (`Layer.forwardsBySample`: Linear, ReLU,
    // Flatten, pooling, Conv2d with its direct kernels; BatchNorm and Dropout in eval mode) are run a
    // stretch at a time: each layer is prepared in
    // order (checks, room for its output), then one parallel region takes every block of samples through
    // all of them. Layer by layer, each layer was a region of its own (or, under a million operations,
    // ran on one core while the other waited) and each output went through memory before the next layer
    // read it; by blocks, a block's values stay in cache from layer to layer. The blocks are Linear's own
    // row blocks (`Linear.rowsPerTask(batch:)`), so every layer computes the same products on the same
    // rows as alone: the bits are those of the forward layer by layer, for any thread count.

    /// The layers from `start` on that run by blocks of samples (empty when layer `start` does not).
    private func stretchBySample(from start: Int) -> Range<Int> {
        var end = start
        while end < layers.count && layers[end].forwardsBySample { end += 1 }
        return start..<end
    }

    /// Runs the layers of `stretch` on `input` by blocks of samples and returns the last one's output.
    /// `borrowedInput`: the caller's input, read in place (see `forward(_:batch:borrowingInput:)`).
    private func forwardBySample(_ stretch: Range<Int>, _ input: UnsafePointer<Float>, batch: Int,
                                 borrowedInput: UnsafePointer<Float>?) throws -> UnsafePointer<Float> {
        var current = input
        var work = 0, threads = ThreadPool.maxThreads
        for index in stretch {
            let layer = layers[index]
            if try skipFoldedReLU(index, current, batch: batch, borrowedInput: borrowedInput) { continue }
            current = try layer.beginForwardBySample(current, batch: batch,
                                                     foldingReLU: followsFoldedReLU(index))
            layerOutputs[index] = current
            work += layer.forwardWorkPerSample
            threads = min(threads, layer.samplesThreadLimit)
        }
        let perBlock = Linear.rowsPerTask(batch: batch)
        let leading = stretch.first { !layers[$0].samplesIndependentOfBlocks } ?? stretch.upperBound
        blockKernel.run(tasks(batch, perBlock), (stretch, batch, perBlock, leading), work: batch * work, threads: threads)
        for index in stretch where !reluFoldedIntoNext[index] { layers[index].endForwardBySample() }
        return current
    }

    /// One block of samples through a stretch of layers. The layers before `leading` (those whose results
    /// do not depend on the samples a call takes: the CNN's convolutions, BatchNorms, pooling) take the
    /// block `cacheSamples` samples at a time, each slice through all of them while its feature maps
    /// are in L2 (a block of 128 samples' first feature maps, 880 KB, was not); the rest (Linear, whose
    /// choice of product depends on the block) take the whole block.
    private lazy var blockKernel = ParallelKernel<(Range<Int>, Int, Int, Int)>(perThread: {
        [unowned(unsafe) self] arguments, task, thread in
        let (stretch, batch, perBlock, leading) = arguments
        let first = task * perBlock, count = min(perBlock, batch - first)
        if leading > stretch.lowerBound {
            for slice in Swift.stride(from: first, to: first + count, by: Sequential.cacheSamples) {
                let sliceCount = min(Sequential.cacheSamples, first + count - slice)
                for index in stretch.lowerBound..<leading where !self.reluFoldedIntoNext[index] {
                    self.layers[index].forwardSamples(first: slice, count: sliceCount, thread: thread)
                }
            }
        }
        for index in leading..<stretch.upperBound where !self.reluFoldedIntoNext[index] {
            self.layers[index].forwardSamples(first: first, count: count, thread: thread)
        }
    })

    /// Samples per slice of a block for the layers that compute each sample alone whatever the call.
    static let cacheSamples = 16

    /// `forward`, writing the output into `output`, whose size is checked before anything runs.
    public func forward(_ input: UnsafePointer<Float>, batch: Int, into output: UnsafeMutableBufferPointer<Float>) throws {
        try Checked.batch(batch)
        let needed = try Checked.multiply(batch, outputCount, "the output of a batch of \(batch)")
        try Checked.room(output, needed, "output")
        let result = try forward(input, batch: batch)
        if let base = result.baseAddress, let out = output.baseAddress { out.update(from: base, count: needed) }
    }

    /// Array form of `forward`.
    public func forward(_ input: [Float], batch: Int) throws -> [Float] {
        try Checked.batch(batch)
        guard input.count == batch * inputCount else {
            throw BNDError.shape("input has \(input.count) values; a batch of \(batch) samples of \(sampleShape) needs "
                                 + "\(batch * inputCount)")
        }
        return try input.withUnsafeBufferPointer { Array(try forward($0.baseAddress!, batch: batch)) }
    }

    /// Back-propagates `gradOutput` (gradient of the loss w.r.t. the last forward's output) and
    /// *accumulates* parameter gradients, as `output.backward(grad)` does. When `gradInput` is given it
    /// receives the gradient w.r.t. the input (`batch`·`inputCount` values; its size is checked before
    /// anything runs).
    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int,
                         gradInput: UnsafeMutableBufferPointer<Float>? = nil) throws {
        guard let last = lastBatch else {
            throw BNDError.state("backward needs a successful forward first")
        }
        guard backwardAllowed else {
            throw BNDError.state("a training step's forward pass is used up by its own backward (it does not keep "
                                 + "its input); run a forward first")
        }
        guard batch == last else {
            throw BNDError.shape("backward batch \(batch) differs from the forward batch \(last)")
        }
        guard parameterVersion == forwardParameterVersion else {
            throw BNDError.state("the parameters changed after the forward (an optimizer step, a tensor set or loaded, "
                                 + "a re-seed): the gradients would mix old and new values; run the forward again")
        }
        let count = batch * inputCount
        if let gradInput { try Checked.room(gradInput, count, "grad_input") }
        // The first layer writes the input gradient straight into the caller's buffer, unless that buffer
        // overlaps what backward still reads (the gradient given, the forward's input).
        var direct = gradInput?.baseAddress
        // (A ReLU folded into the next layer never ran: that layer read the network's input.)
        if let out = direct, let first = reluFoldedIntoNext.first == true ? layers[1] : layers.first {
            let outBytes = UnsafeRawBufferPointer(start: out, count: count * 4)
            let gradBytes = UnsafeRawBufferPointer(start: gradOutput, count: batch * outputCount * 4)
            let inputBytes = first.lastForwardInput.map { UnsafeRawBufferPointer(start: $0, count: count * 4) }
            if overlap(outBytes, gradBytes) || inputBytes.map({ overlap(outBytes, $0) }) == true { direct = nil }
        }
        // Below the first layer with parameters, input gradients feed nothing but the caller's buffer.
        let firstTrainable = firstTrainableLayer ?? layers.count
        var gradient = gradOutput
        var index = layers.count - 1
        while index >= 0 {
            if reluFoldedIntoNext[index] { index -= 1; continue }
            // A layer that takes the gradient of the AvgPool2d after it (`Layer.takesGradient(through:)`)
            // runs that pooling's backward (and its folded ReLU's) inside its own.
            var layer = layers[index], through: AvgPool2d?
            if let pool = layer as? AvgPool2d, let before = layerBefore(index), layers[before].takesGradient(through: pool) {
                (layer, through, index) = (layers[before], pool, before)
            }
            // The gradient a layer returns is for its input, or for its folded ReLU's input.
            let inputOf = followsFoldedReLU(index) ? index - 1 : index
            let needInput = inputOf > firstTrainable || gradInput != nil
            let destination = inputOf == 0 ? direct : nil
            let next: UnsafePointer<Float>?
            if let pool = through {
                next = try layer.backward(through: pool, gradient, batch: batch, needInputGradient: needInput,
                                          into: destination)
            } else {
                next = try layer.backward(gradient, batch: batch, needInputGradient: needInput, into: destination)
            }
            guard let next, needInput else { break }
            gradient = next
            index -= 1
        }
        if let out = gradInput?.baseAddress, UnsafeMutablePointer(mutating: gradient) != out {
            out.update(from: gradient, count: count)
        }
    }

    /// Array form of `backward`: returns the input gradient.
    public func backward(_ gradOutput: [Float], batch: Int) throws -> [Float] {
        try Checked.batch(batch)
        guard gradOutput.count == batch * outputCount else {
            throw BNDError.shape("grad_output has \(gradOutput.count) values; a batch of \(batch) needs "
                                 + "\(batch * outputCount)")
        }
        var gradInput = [Float](repeating: 0, count: batch * inputCount)
        try gradOutput.withUnsafeBufferPointer { g in
            try gradInput.withUnsafeMutableBufferPointer { try backward(g.baseAddress!, batch: batch, gradInput: $0) }
        }
        return gradInput
    }

    /// Sets every parameter gradient to zero.
    public func zeroGrad() {
        for parameter in parameters { parameter.gradient.fill(0) }
    }

    /// The output of layer `index` from the last successful forward pass (`batch`·its output count
    /// values), e.g. for activation histograms.
    public func layerOutput(_ index: Int) throws -> [Float] { Array(try lastOutput(of: index)) }

    /// The number of values `layerOutput(index)` has now.
    public func layerOutputCount(_ index: Int) throws -> Int { try lastOutput(of: index).count }

    /// Copies the output of layer `index` into `out` (checked for room first); returns the count copied.
    @discardableResult
    public func layerOutput(_ index: Int, into out: UnsafeMutableBufferPointer<Float>) throws -> Int {
        let values = try lastOutput(of: index)
        try Checked.room(out, values.count, "out")
        if let src = values.baseAddress, let dst = out.baseAddress { dst.update(from: src, count: values.count) }
        return values.count
    }

    private func lastOutput(of index: Int) throws -> UnsafeBufferPointer<Float> {
        try Checked.index(index, below: layers.count, "layer")
        guard let batch = lastBatch else {
            throw BNDError.state("layer outputs exist only after a successful forward")
        }
        if layerOutputs[index] == nil, reluFoldedIntoNext[index], let relu = layers[index] as? ReLU,
           let input = layers[index + 1].lastForwardInput {
            layerOutputs[index] = try relu.materializedOutput(input, batch: batch)
        }
        if outputIsBorrowedInput[index] {
            throw BNDError.state("layer \(index) (\(layers[index].typeName)) passed the caller's input through unchanged "
                                 + "in the last forward, which read that input in place (a training step, fit or "
                                 + "forward_view) and does not keep it: its output is that input")
        }
        guard let output = layerOutputs[index] else {
            throw BNDError.internalError("layer \(index) has no output after a successful forward")
        }
        return UnsafeBufferPointer(start: output, count: batch * layers[index].outputCount)
    }
}

/// Whether two byte ranges share a byte.
private func overlap(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard let a0 = a.baseAddress, let b0 = b.baseAddress, a.count > 0, b.count > 0 else { return false }
    return a0 < b0 + b.count && b0 < a0 + a.count
}

/// One training step on a `Sequential`: zero_grad, forward in train mode, loss, backward, optimizer step.
///
/// Every argument (input values, labels, targets, a batch too small for a BatchNorm, an optimizer over
/// parameters of another network) is checked before anything runs, so a refused step changes nothing. The network is in train mode for the step and
/// returns to its previous mode afterwards. A step that fails while running (a non-finite loss, a
/// non-finite gradient with a finite loss: `BNDError.numeric`; an allocation failure) leaves the
/// parameters, running statistics, num_batches_tracked, optimizer state and dropout generators exactly
/// as before it: only the gradients changed (zeroed, then partly or wholly back-propagated), and the
/// forward pass is discarded (`backward` and `layerOutput` need a new forward). The optimizer never
/// steps with a non-finite gradient.
extension Sequential {
    /// One classification step with cross-entropy against `labels` (`batch` values in [0, classes)).
    /// - Parameter lossOptions: nil for the plain cross-entropy (mean; every label a class index), or
    ///   PyTorch's other arguments (`Loss.crossEntropy(…, options:, …)`: a label may then be ignore_index).
    public func trainStep(input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                          optimizer: Optimizer, lossOptions: CrossEntropyOptions? = nil) throws -> Float {
        try trainStep(input: input, labels: labels, batch: batch, optimizer: optimizer, inputKnownFinite: false,
                      lossOptions: lossOptions)
    }

    /// One regression step with the squared error against `targets` (`batch`·`outputCount` values),
    /// reduced by its mean or (`reduction` `.sum`) its sum.
    public func trainStep(input: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int,
                          optimizer: Optimizer, reduction: Reduction = .mean) throws -> Float {
        try trainStep(input: input, targets: targets, batch: batch, optimizer: optimizer, inputKnownFinite: false,
                      reduction: reduction)
    }

    /// The steps, for callers that know the input is finite (`fit`, whose dataset was checked once)
    /// and may skip that check.
    func trainStep(input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, optimizer: Optimizer,
                   inputKnownFinite: Bool, lossOptions: CrossEntropyOptions? = nil) throws -> Float {
        guard outputShape.count == 1 else {
            throw BNDError.shape("classification needs a flat output (batch × classes), got \(outputShape)")
        }
        let classes = outputCount
        try checkOptimizer(optimizer)
        try checkStepInput(input, batch: batch, knownFinite: inputKnownFinite)
        guard let options = lossOptions else {
            try Loss.checkLabels(labels, batch: batch, classes: classes)
            return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
                try Loss.crossEntropy(logits: output, labels: labels, batch: batch, classes: classes, gradient: gradient,
                                       using: lossKernels)
            }
        }
        // Every argument of the loss checked before anything runs: a refused step changes nothing.
        _ = try Loss.checkCrossEntropy(labels: labels, batch: batch, classes: classes, options: options)
        return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
            try Loss.crossEntropy(logits: output, labels: labels, batch: batch, classes: classes, options: options,
                                   gradient: gradient, using: lossKernels)
        }
    }

    func trainStep(input: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int, optimizer: Optimizer,
                   inputKnownFinite: Bool, reduction: Reduction = .mean) throws -> Float {
        try checkOptimizer(optimizer)
        try checkStepInput(input, batch: batch, knownFinite: inputKnownFinite)
        _ = try Checked.blasInt(batch, outputCount, "targets for a batch of \(batch)")
        try Checked.allFinite(targets, batch * outputCount, "targets")
        return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
            try Loss.mse(prediction: output, target: targets, count: batch * outputCount, reduction: reduction,
                         gradient: gradient, using: lossKernels)
        }
    }

    /// Array form of the classification step.
    public func trainStep(input: [Float], labels: [Int32], optimizer: Optimizer,
                          lossOptions: CrossEntropyOptions? = nil) throws -> Float {
        let batch = labels.count
        guard batch > 0, input.count == batch * inputCount else {
            throw BNDError.shape("\(input.count) input values do not match \(batch) labels × \(inputCount)")
        }
        return try input.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { y in
                try trainStep(input: x.baseAddress!, labels: y.baseAddress!, batch: batch, optimizer: optimizer,
                              lossOptions: lossOptions)
            }
        }
    }

    /// Array form of the regression step.
    public func trainStep(input: [Float], targets: [Float], optimizer: Optimizer, reduction: Reduction = .mean) throws
        -> Float {
        guard !input.isEmpty, input.count % inputCount == 0 else {
            throw BNDError.shape("\(input.count) input values are not a whole batch of \(sampleShape)")
        }
        let batch = input.count / inputCount
        guard targets.count == batch * outputCount else {
            throw BNDError.shape("\(targets.count) targets do not match a batch of \(batch) × \(outputCount)")
        }
        return try input.withUnsafeBufferPointer { x in
            try targets.withUnsafeBufferPointer { t in
                try trainStep(input: x.baseAddress!, targets: t.baseAddress!, batch: batch, optimizer: optimizer,
                              reduction: reduction)
            }
        }
    }

    /// An optimizer may update some of the network's parameters, never another network's (a pointer
    /// comparison per pair of parameter tensors: a few hundred for a deep network).
    func checkOptimizer(_ optimizer: Optimizer) throws {
        for (index, parameter) in optimizer.parameters.enumerated()
        where !parameters.contains(where: { $0 === parameter }) {
            throw BNDError.invalidArgument("the optimizer's parameter \(index) is not a parameter of this network "
                                           + "(an optimizer created for a different network?)")
        }
    }

    /// A non-finite input would reach BatchNorm's running statistics before the loss could be checked:
    /// refuse it up front.
    private func checkStepInput(_ input: UnsafePointer<Float>, batch: Int, knownFinite: Bool) throws {
        try Checked.batch(batch)
        _ = try Checked.blasInt(batch, inputCount, "a batch of \(batch)")
        if !knownFinite { try Checked.allFinite(input, batch * inputCount, "input") }
    }

    private func step(input: UnsafePointer<Float>, batch: Int, optimizer: Optimizer,
                      loss: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Float) throws -> Float {
        try checkBatchNormBatch(batch, training: true)
        let snapshot = try preparedSnapshot()
        let previousMode = isTraining
        if !previousMode { isTraining = true }
        defer { if !previousMode { isTraining = false } }
        snapshot.save()
        zeroGrad()
        let value: Float
        do {
            let output = try forward(input, batch: batch, borrowingInput: true)
            guard let out = output.baseAddress else { throw BNDError.internalError("forward returned no values") }
            try lossGradient.resize(output.count)
            value = try loss(out, lossGradient.pointer)
            guard value.isFinite else {
                throw BNDError.numeric("the loss is \(value); the step changed nothing but the gradients")
            }
            for layer in layers { layer.parametersUnchangedSinceForward = true }
            defer { for layer in layers { layer.parametersUnchangedSinceForward = false } }
            try backward(lossGradient.pointer, batch: batch)
            try checkGradients(optimizer)
        } catch {
            // Running statistics, num_batches_tracked and dropout generators as before the step; the
            // forward pass that led here is discarded (backward needs a new one).
            snapshot.restore()
            lastBatch = nil
            throw error
        }
        backwardAllowed = false
        try optimizer.step()
        return value
    }

    /// The snapshot storage for this network's layers, allocated by the first step (and again after a
    /// layer was added).
    private func preparedSnapshot() throws -> StepSnapshot {
        if let snapshot = stepSnapshot, snapshot.layerCount == layers.count { return snapshot }
        let snapshot = try StepSnapshot(layers: layers)
        stepSnapshot = snapshot
        return snapshot
    }

    /// A BatchNorm normalising with the batch's statistics (train mode, or no running statistics) needs
    /// more than one value per channel: refuse a batch too small for one before anything runs (the layer
    /// would throw only when reached, after earlier BatchNorms had updated their running statistics and
    /// Dropouts had drawn masks). Every forward calls this in the net's mode; the training step calls it
    /// with `training` true before anything else, since it trains in train mode whatever the net's mode.
    func checkBatchNormBatch(_ batch: Int, training: Bool) throws {
        guard let (_, norm) = batchNormRefusing(batch: batch, training: training) else { return }
        throw BNDError.shape("Expected more than 1 value per channel when training, got input size "
                             + "\([batch] + norm.inputShape)")
    }

    /// The first BatchNorm (and its index) that normalises with the batch's own statistics (always in train
    /// mode; in eval mode when it keeps no running statistics) and so cannot take `batch` samples, one
    /// value per channel; nil when every layer can. The one rule behind every such check (a forward, a
    /// training step, `fit`'s last batch, an evaluation's).
    func batchNormRefusing(batch: Int, training: Bool) -> (index: Int, norm: BatchNorm)? {
        for (index, layer) in layers.enumerated() {
            if let norm = layer as? BatchNorm, training || !norm.trackRunningStats, batch < norm.minimumTrainingBatch {
                return (index, norm)
            }
        }
        return nil
    }

    /// The loss can be finite while back-propagation overflows (a huge weight times a large gradient):
    /// the optimizer must not step with a NaN or infinite gradient. One pass over the gradients it will
    /// use, cheap next to the step itself.
    private func checkGradients(_ optimizer: Optimizer) throws {
        for parameter in optimizer.parameters {
            guard let index = Checked.firstNonFinite(parameter.gradient.pointer, parameter.count) else { continue }
            let name = stateDict.first { entry in
                if case .parameter(let p) = entry.entry.storage { return p === parameter } else { return false }
            }?.name ?? "a parameter outside this network"
            throw BNDError.numeric("the gradient of \(name) is \(parameter.gradient.pointer[index]) at [\(index)] "
                                   + "(the loss was finite); the step changed nothing but the gradients")
        }
    }
}

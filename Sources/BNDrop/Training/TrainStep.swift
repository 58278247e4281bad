/// One training step on a `Sequential`: zero_grad, forward in train mode, loss, backward, optimizer step.
///
/// Every argument (input values, labels, targets) is checked before anything runs, so a refused step
/// changes nothing. The network is in train mode for the step and returns to its previous mode
/// afterwards. A non-finite loss throws `BNDError.numeric` before any parameter is updated.
extension Sequential {
    /// One classification step with cross-entropy against `labels` (`batch` values in [0, classes)).
    public func trainStep(input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                          optimizer: Optimizer) throws -> Float {
        guard outputShape.count == 1 else {
            throw BNDError.shape("classification needs a flat output (batch × classes), got \(outputShape)")
        }
        let classes = outputCount
        try checkStepInput(input, batch: batch)
        try Loss.checkLabels(labels, batch: batch, classes: classes)
        return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
            try Loss.crossEntropy(logits: output, labels: labels, batch: batch, classes: classes, gradient: gradient)
        }
    }

    /// One regression step with the mean squared error against `targets` (`batch`·`outputCount` values).
    public func trainStep(input: UnsafePointer<Float>, targets: UnsafePointer<Float>, batch: Int,
                          optimizer: Optimizer) throws -> Float {
        try checkStepInput(input, batch: batch)
        _ = try Checked.blasInt(batch, outputCount, "targets for a batch of \(batch)")
        try Checked.allFinite(targets, batch * outputCount, "targets")
        return try step(input: input, batch: batch, optimizer: optimizer) { output, gradient in
            try Loss.mse(prediction: output, target: targets, count: batch * outputCount, gradient: gradient)
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

    /// A non-finite input would reach BatchNorm's running statistics before the loss could be checked:
    /// refuse it up front.
    private func checkStepInput(_ input: UnsafePointer<Float>, batch: Int) throws {
        try Checked.batch(batch)
        _ = try Checked.blasInt(batch, inputCount, "a batch of \(batch)")
        try Checked.allFinite(input, batch * inputCount, "input")
    }

    private func step(input: UnsafePointer<Float>, batch: Int, optimizer: Optimizer,
                      loss: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Float) throws -> Float {
        let previousMode = isTraining
        if !previousMode { isTraining = true }
        defer { if !previousMode { isTraining = false } }
        zeroGrad()
        let output = try forward(input, batch: batch)
        guard let out = output.baseAddress else { throw BNDError.internalError("forward returned no values") }
        try lossGradient.resize(output.count)
        let value = try loss(out, lossGradient.pointer)
        guard value.isFinite else {
            throw BNDError.numeric("the loss is \(value); no parameter was updated")
        }
        try backward(lossGradient.pointer, batch: batch)
        try optimizer.step()
        return value
    }
}

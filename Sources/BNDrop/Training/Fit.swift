import Glibc

/// What `fit` reports to its callback: a plain struct of numbers (mirrored one to one by the C API).
public struct FitEvent: Sendable, Equatable {
    public enum Kind: Int32, Sendable {
        /// After every optimizer step.
        case step = 0
        /// After every completed epoch (and its validation, if any).
        case epoch = 1
    }

    public var kind: Kind
    /// The epoch, 0-based.
    public var epoch: Int
    /// `.step`: the step's index within its epoch (0-based). `.epoch`: the number of steps the epoch ran.
    public var step: Int
    /// The number of steps run since `fit` began, this one included.
    public var globalStep: Int
    /// `.step`: the step's batch size. `.epoch`: the number of samples the epoch trained on.
    public var batchSize: Int
    /// `.step`: the step's loss. `.epoch`: the mean training loss over the epoch's samples (each batch's
    /// loss weighted by its size).
    public var loss: Double
    /// Training samples processed since `fit` began, divided by `elapsedSeconds`.
    public var samplesPerSecond: Double
    /// Wall-clock seconds since `fit` began.
    public var elapsedSeconds: Double
    /// `.epoch` with a validation dataset: its mean loss; NaN otherwise.
    public var validationLoss: Double
    /// `.epoch` with a classification validation dataset: its accuracy in [0, 1]; NaN otherwise.
    public var validationAccuracy: Double
}

/// The result of `evaluate`.
public struct Evaluation: Sendable, Equatable {
    /// The mean loss per sample: cross-entropy for classification, the mean squared error (over all
    /// target values) for regression.
    public var loss: Double
    /// The fraction of samples whose largest output is at their label; nil for regression.
    public var accuracy: Double?
    /// The number of samples evaluated.
    public var count: Int
}

/// The result of `fit`.
public struct FitSummary: Sendable, Equatable {
    /// Optimizer steps run.
    public var steps: Int
    /// Epochs run to their end.
    public var epochsCompleted: Int
    /// Whether the callback stopped training (returned false) before the last epoch ended.
    public var stoppedEarly: Bool
    /// The last step's loss (NaN when no step ran).
    public var lastLoss: Double
    /// The last completed epoch's mean training loss (NaN when none completed).
    public var lastEpochLoss: Double
    /// The last validation result, if a validation dataset was given and an epoch completed.
    public var validation: Evaluation?
    /// Training samples processed.
    public var samples: Int
    /// Wall-clock seconds `fit` took.
    public var seconds: Double
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// The loss for `data` with `network`: `requested` if given (checked against the data), else the
/// dataset's natural loss. Also checks that the network's input and output fit the dataset: a loss of
/// the wrong kind is `.invalidArgument`, sizes that do not fit (samples, targets, more classes than
/// outputs) are `.shape`.
func checkedLoss(network: Sequential, data: Dataset, requested: Loss?, role: String) throws -> Loss {
    let loss = requested ?? (data.isClassification ? .crossEntropy : .mse)
    guard data.sampleSize == network.inputCount else {
        throw BNDError.shape("the \(role) samples have shape \(data.sampleShape) (\(data.sampleSize) values) but the "
                             + "network takes \(network.sampleShape) (\(network.inputCount) values)")
    }
    switch loss {
    case .crossEntropy:
        guard data.isClassification else {
            throw BNDError.invalidArgument("cross-entropy needs a classification dataset with labels; the \(role) "
                                           + "dataset has float targets (use .mse)")
        }
        guard network.outputShape.count == 1 else {
            throw BNDError.shape("classification needs a flat network output (batch × classes), got \(network.outputShape)")
        }
        guard data.classes <= network.outputCount else {
            throw BNDError.shape("the \(role) dataset has \(data.classes) classes but the network outputs "
                                 + "\(network.outputCount) values per sample")
        }
    case .mse:
        guard !data.isClassification else {
            throw BNDError.invalidArgument("mse needs a regression dataset with float targets; the \(role) dataset "
                                           + "has class labels (use .crossEntropy)")
        }
        guard data.targetCount == network.outputCount else {
            throw BNDError.shape("the \(role) dataset has \(data.targetCount) targets per sample but the network "
                                 + "outputs \(network.outputCount)")
        }
    }
    return loss
}

/// Refuses, before the first step, a loader whose last batch is too small for a BatchNorm layer of
/// `network` to train on (one value per channel), instead of failing at the end of the first epoch.
func checkSmallestBatch(network: Sequential, loader: BatchLoader) throws {
    let smallest = loader.smallestBatch
    guard let (index, norm) = network.batchNormRefusing(batch: smallest, training: true) else { return }
    let count = loader.dataset.count, size = loader.batchSize
    throw BNDError.shape("the last batch of every epoch would have \(smallest) sample (\(count) samples = "
                         + "\(count / size) × \(size) + \(count % size)), and \(norm.typeName) (layer \(index)) "
                         + "cannot train on one value per channel: use drop_last or another batch size")
}

/// Refuses, before anything runs, an evaluation whose smallest batch (the last, `data.count` mod
/// `batchSize`) a BatchNorm without running statistics cannot normalise: it uses the batch's own
/// statistics in eval mode too, so it needs more than one value per channel. (`fit` checks its
/// validation data this way before the first epoch rather than after it.)
func checkEvaluationBatches(network: Sequential, data: Dataset, batchSize: Int, role: String) throws {
    let remainder = data.count % batchSize
    let smallest = remainder == 0 ? min(batchSize, data.count) : remainder
    guard let (index, norm) = network.batchNormRefusing(batch: smallest, training: false) else { return }
    throw BNDError.shape("the last \(role) batch would have \(smallest) sample (\(data.count) samples in batches of "
                         + "\(batchSize)), and \(norm.typeName) (layer \(index)) has no running statistics: it "
                         + "normalises with the batch's own, which needs more than one value per channel; use "
                         + "another batch size")
}

/// Runs `network` over `data` in eval mode (restoring its previous mode afterwards) and returns the mean
/// loss and, for classification, the accuracy. Samples are taken in order, `batchSize` at a time; no
/// parameter or running statistic changes.
public func evaluate(network: Sequential, data: Dataset, batchSize: Int = 256,
                     loss requested: Loss? = nil) throws -> Evaluation {
    try Checked.batch(batchSize, "batch_size")
    let loss = try checkedLoss(network: network, data: data, requested: requested, role: "evaluation")
    try checkEvaluationBatches(network: network, data: data, batchSize: batchSize, role: "evaluation")
    let previousMode = network.isTraining
    network.isTraining = false
    defer { network.isTraining = previousMode }
    let outputs = network.outputCount
    var total = 0.0
    var correct = 0
    var start = 0
    while start < data.count {
        let size = min(batchSize, data.count - start)
        let output = try network.forward(data.features + start * data.sampleSize, batch: size)
        guard let out = output.baseAddress else { throw BNDError.internalError("forward returned no values") }
        switch loss {
        case .crossEntropy:
            guard let allLabels = data.labels else { throw BNDError.internalError("classification data without labels") }
            let labels = allLabels + start
            let value = try Loss.crossEntropy(logits: out, labels: labels, batch: size, classes: outputs, gradient: nil,
                                              using: network.lossKernels)
            total += Double(value) * Double(size)
            for n in 0..<size {
                let row = out + n * outputs
                var best = 0
                for c in 1..<max(outputs, 1) where row[c] > row[best] { best = c }
                if best == Int(labels[n]) { correct += 1 }
            }
        case .mse:
            guard let targets = data.targets else { throw BNDError.internalError("regression data without targets") }
            let value = try Loss.mse(prediction: out, target: targets + start * data.targetCount,
                                     count: size * data.targetCount, gradient: nil, using: network.lossKernels)
            total += Double(value) * Double(size)
        }
        start += size
    }
    let count = data.count
    return Evaluation(loss: total / Double(count),
                      accuracy: loss == .crossEntropy ? Double(correct) / Double(count) : nil, count: count)
}

/// Trains `network` on `data` for `epochs` epochs of shuffled mini-batches (`BatchLoader` seeded with
/// `shuffleSeed`, so two networks trained with the same seed see exactly the same batches).
///
/// Each step is `network.trainStep` (zero_grad, forward in train mode, loss, backward, optimizer step).
/// `callback` runs after every step and after every epoch (following the validation pass when
/// `validation` is given); returning false stops training at once. The network's mode is the same
/// afterwards as before. A failing step (for example a non-finite loss or gradient, `BNDError.numeric`)
/// throws at once, as does an error thrown by the callback: the failed step changed nothing but the
/// gradients (see `trainStep`), so the network and optimizer are as after the last successful step. As in PyTorch, a BatchNorm network cannot train on a batch of
/// one sample: choose a batch size that leaves no last batch of 1, or `dropLast`.
/// - Parameters:
///   - loss: nil picks cross-entropy for a classification dataset, mse for a regression one.
///   - dropLast: leave out each epoch's last batch when smaller than `batchSize`.
///   - evalBatchSize: the validation batch size (default `batchSize`).
@discardableResult
public func fit(network: Sequential, optimizer: Optimizer, data: Dataset, epochs: Int, batchSize: Int,
                shuffleSeed: UInt64, loss: Loss? = nil, dropLast: Bool = false,
                validation: Dataset? = nil, evalBatchSize: Int? = nil,
                callback: (FitEvent) throws -> Bool = { _ in true }) throws -> FitSummary {
    let loader = try BatchLoader(dataset: data, batchSize: batchSize, shuffle: true, seed: shuffleSeed,
                                 dropLast: dropLast)
    return try fit(network: network, optimizer: optimizer, loader: loader, epochs: epochs, loss: loss,
                   validation: validation, evalBatchSize: evalBatchSize, callback: callback)
}

/// `fit` drawing its batches from `loader`, which carries on where it stands (so successive calls
/// continue the same shuffled sequence of epochs instead of repeating the first).
@discardableResult
public func fit(network: Sequential, optimizer: Optimizer, loader: BatchLoader, epochs: Int,
                loss requested: Loss? = nil, validation: Dataset? = nil, evalBatchSize: Int? = nil,
                callback: (FitEvent) throws -> Bool = { _ in true }) throws -> FitSummary {
    guard epochs > 0 else { throw BNDError.invalidArgument("epochs must be positive, got \(epochs)") }
    let data = loader.dataset
    let loss = try checkedLoss(network: network, data: data, requested: requested, role: "training")
    let evalBatch = evalBatchSize ?? loader.batchSize
    try Checked.batch(evalBatch, "eval_batch_size")
    if let validation {
        _ = try checkedLoss(network: network, data: validation, requested: loss, role: "validation")
        try checkEvaluationBatches(network: network, data: validation, batchSize: evalBatch, role: "validation")
    }
    try checkSmallestBatch(network: network, loader: loader)
    try network.checkOptimizer(optimizer)
    // The callback may switch modes (e.g. an eval-mode look at hidden values); fit restores the caller's.
    let previousMode = network.isTraining
    defer { network.isTraining = previousMode }

    let start = monotonicSeconds()
    var summary = FitSummary(steps: 0, epochsCompleted: 0, stoppedEarly: false, lastLoss: .nan,
                                  lastEpochLoss: .nan, validation: nil, samples: 0, seconds: 0)
    func rate(_ elapsed: Double) -> Double { elapsed > 0 ? Double(summary.samples) / elapsed : 0 }

    training: for epoch in 0..<epochs {
        // A loader stopped mid-epoch (a previous fit stopped early) starts afresh.
        loader.startEpoch()
        var epochTotal = 0.0
        var epochSamples = 0
        var stepInEpoch = 0
        while let batch = loader.nextBatch() {
            let value: Float
            switch (loss, batch.labels, batch.targets) {
            case (.crossEntropy, let labels?, _):
                value = try network.trainStep(input: batch.inputs, labels: labels, batch: batch.size,
                                              optimizer: optimizer, inputKnownFinite: loader.dataset.featuresAreFinite)
            case (.mse, _, let targets?):
                value = try network.trainStep(input: batch.inputs, targets: targets, batch: batch.size,
                                              optimizer: optimizer, inputKnownFinite: loader.dataset.featuresAreFinite)
            default:
                throw BNDError.internalError("a batch without the labels or targets its loss needs")
            }
            summary.steps += 1
            summary.samples += batch.size
            summary.lastLoss = Double(value)
            epochTotal += Double(value) * Double(batch.size)
            epochSamples += batch.size
            let elapsed = monotonicSeconds() - start
            let event = FitEvent(kind: .step, epoch: epoch, step: stepInEpoch, globalStep: summary.steps,
                                      batchSize: batch.size, loss: Double(value), samplesPerSecond: rate(elapsed),
                                      elapsedSeconds: elapsed, validationLoss: .nan, validationAccuracy: .nan)
            stepInEpoch += 1
            if try !callback(event) {
                summary.stoppedEarly = true
                break training
            }
        }
        summary.epochsCompleted += 1
        summary.lastEpochLoss = epochTotal / Double(max(epochSamples, 1))
        var event = FitEvent(kind: .epoch, epoch: epoch, step: stepInEpoch, globalStep: summary.steps,
                                  batchSize: epochSamples, loss: summary.lastEpochLoss, samplesPerSecond: 0,
                                  elapsedSeconds: 0, validationLoss: .nan, validationAccuracy: .nan)
        if let validation {
            let result = try evaluate(network: network, data: validation, batchSize: evalBatch, loss: loss)
            summary.validation = result
            event.validationLoss = result.loss
            event.validationAccuracy = result.accuracy ?? .nan
        }
        event.elapsedSeconds = monotonicSeconds() - start
        event.samplesPerSecond = rate(event.elapsedSeconds)
        if try !callback(event) {
            summary.stoppedEarly = epoch < epochs - 1
            break training
        }
    }
    summary.seconds = monotonicSeconds() - start
    return summary
}

// The training loop: bnd_fit_default_params, bnd_fit and bnd_evaluate over the Swift `fit` / `evaluate`.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_fit_default_params")
public func bnd_fit_default_params() -> bnd_fit_params {
    bnd_fit_params(epochs: 1, batch_size: 64, shuffle_seed: 0, drop_last: 0, loss: -1, eval_batch_size: 256)
}

/// bnd_fit_params, checked.
private struct FitSettings {
    var epochs: Int
    var batchSize: Int
    var shuffleSeed: UInt64
    var dropLast: Bool
    var loss: TrainingLoss?
    var evaluationBatchSize: Int
}

/// A positive `int64_t` parameter as an `Int` (BND_ERR_INVALID_ARGUMENT otherwise: a bad parameter).
private func positiveParameter(_ value: Int64, _ name: StaticString) throws -> Int {
    guard value > 0, let result = Int(exactly: value) else {
        throw BNDError.invalidArgument("params->\(name) must be positive, got \(value)")
    }
    return result
}

/// BND_LOSS_AUTO (nil), BND_LOSS_CROSS_ENTROPY or BND_LOSS_MSE.
private func lossChoice(_ code: Int32) throws -> TrainingLoss? {
    if code == -1 { return nil }
    guard let loss = TrainingLoss(rawValue: code) else {
        throw BNDError.invalidArgument("params->loss must be BND_LOSS_AUTO (-1), BND_LOSS_CROSS_ENTROPY (0) or "
                                       + "BND_LOSS_MSE (1), got \(code)")
    }
    return loss
}

private func fitSettings(_ p: bnd_fit_params) throws -> FitSettings {
    FitSettings(epochs: try positiveParameter(p.epochs, "epochs"),
                batchSize: try positiveParameter(p.batch_size, "batch_size"),
                shuffleSeed: p.shuffle_seed,
                dropLast: try flag(p.drop_last, "params->drop_last"),
                loss: try lossChoice(p.loss),
                evaluationBatchSize: try positiveParameter(p.eval_batch_size, "eval_batch_size"))
}

/// The loss for `data` with `net` (`requested`, or the dataset's natural one), after checking that the
/// two fit, with the statuses bndrop.h documents: a loss of the wrong kind and labels beyond the net's
/// outputs are BND_ERR_INVALID_ARGUMENT, sizes that differ are BND_ERR_SHAPE. (The Swift core checks
/// the same again, reporting too many classes as a shape error.)
private func matchingLoss(_ net: Sequential, _ data: Dataset, _ requested: TrainingLoss?, role: String) throws -> TrainingLoss {
    let loss = requested ?? (data.isClassification ? .crossEntropy : .mse)
    switch loss {
    case .crossEntropy where !data.isClassification:
        throw BNDError.invalidArgument("cross-entropy needs a labelled dataset; the \(role) dataset has float "
                                       + "targets (use BND_LOSS_MSE or BND_LOSS_AUTO)")
    case .mse where data.isClassification:
        throw BNDError.invalidArgument("MSE needs a dataset with float targets; the \(role) dataset has class "
                                       + "labels (use BND_LOSS_CROSS_ENTROPY or BND_LOSS_AUTO)")
    default: break
    }
    guard data.sampleSize == net.inputCount else {
        throw BNDError.shape("the \(role) samples have shape \(data.sampleShape) (\(data.sampleSize) values) but the "
                             + "net takes \(net.sampleShape) (\(net.inputCount) values)")
    }
    switch loss {
    case .crossEntropy:
        guard net.outputShape.count == 1 else {
            throw BNDError.shape("classification needs a flat net output (batch × classes), got \(net.outputShape)")
        }
        guard data.classes <= net.outputCount else {
            throw BNDError.invalidArgument("the \(role) dataset has \(data.classes) classes (labels in [0, "
                                           + "\(data.classes))) but the net outputs only \(net.outputCount) values "
                                           + "per sample")
        }
    case .mse:
        guard data.targetCount == net.outputCount else {
            throw BNDError.shape("the \(role) dataset has \(data.targetCount) targets per sample but the net outputs "
                                 + "\(net.outputCount) values")
        }
    }
    return loss
}

private func cEvent(_ e: TrainingEvent) -> bnd_fit_event {
    bnd_fit_event(kind: e.kind.rawValue, reserved: 0, epoch: Int64(e.epoch), step: Int64(e.step),
                  global_step: Int64(e.globalStep), batch_size: Int64(e.batchSize), loss: e.loss,
                  samples_per_second: e.samplesPerSecond, elapsed_seconds: e.elapsedSeconds,
                  validation_loss: e.validationLoss, validation_accuracy: e.validationAccuracy)
}

@_cdecl("bnd_fit")
public func bnd_fit(_ net: OpaquePointer?, _ opt: OpaquePointer?, _ train: OpaquePointer?,
                    _ validation: OpaquePointer?, _ params: UnsafePointer<bnd_fit_params>?,
                    _ callback: bnd_fit_callback?, _ userData: UnsafeMutableRawPointer?,
                    _ outSummary: UnsafeMutablePointer<bnd_fit_summary>?) -> bnd_status {
    api("bnd_fit") {
        let box = try netBox(net)
        let optimizer = try optimizerBox(opt)
        let data = try datasetBox(train, "train").dataset
        let validationData = try validation.map { try datasetBox($0, "validation").dataset }
        let settings = try fitSettings(params?.pointee ?? bnd_fit_default_params())
        try optimizer.checkUsable(with: box)
        let network = box.net
        let loss = try matchingLoss(network, data, settings.loss, role: "training")
        if let validationData { _ = try matchingLoss(network, validationData, loss, role: "validation") }
        if settings.dropLast, data.count < settings.batchSize {
            throw BNDError.invalidArgument("params->drop_last with \(data.count) samples and batch_size "
                                           + "\(settings.batchSize) leaves no batch to train on")
        }
        let previousMode = network.isTraining
        defer { network.isTraining = previousMode }
        let summary = try fit(network: network, optimizer: optimizer.optimizer, data: data, epochs: settings.epochs,
                              batchSize: settings.batchSize, shuffleSeed: settings.shuffleSeed, loss: loss,
                              dropLast: settings.dropLast, validation: validationData,
                              evaluationBatchSize: settings.evaluationBatchSize) { event in
            guard let callback else { return true }
            var cevent = cEvent(event)
            let goOn = withUnsafePointer(to: &cevent) { callback($0, userData) } != 0
            // The callback may use the net; if it added layers, the optimizer no longer fits it, and
            // the next step must not run.
            try optimizer.checkUsable(with: box)
            return goOn
        }
        guard let outSummary else { return }
        outSummary.pointee = bnd_fit_summary(
            steps: Int64(summary.steps), epochs_completed: Int64(summary.epochsCompleted),
            stopped_early: summary.stoppedEarly ? 1 : 0, reserved: 0, last_loss: summary.lastLoss,
            last_epoch_loss: summary.lastEpochLoss, validation_loss: summary.validation?.loss ?? .nan,
            validation_accuracy: summary.validation?.accuracy ?? .nan, samples: Int64(summary.samples),
            seconds: summary.seconds)
    }
}

@_cdecl("bnd_evaluate")
public func bnd_evaluate(_ net: OpaquePointer?, _ data: OpaquePointer?, _ batchSize: Int64,
                         _ outLoss: UnsafeMutablePointer<Double>?, _ outAccuracy: UnsafeMutablePointer<Double>?) -> bnd_status {
    api("bnd_evaluate") {
        let network = try netBox(net).net
        let dataset = try datasetBox(data, "data").dataset
        guard batchSize > 0, let batch = Int(exactly: batchSize) else {
            throw BNDError.invalidArgument("batch_size must be positive, got \(batchSize)")
        }
        let loss = try matchingLoss(network, dataset, nil, role: "evaluation")
        let result = try evaluate(network: network, data: dataset, batchSize: batch, loss: loss)
        outLoss?.pointee = result.loss
        outAccuracy?.pointee = result.accuracy ?? .nan
    }
}

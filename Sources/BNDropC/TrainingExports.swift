// The training loop: bnd_fit_default_params, bnd_fit and bnd_evaluate over the Swift `fit` / `evaluate`.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_fit_default_params")
public func bnd_fit_default_params() -> bnd_fit_params {
    bnd_fit_params(epochs: 1, batch_size: 64, shuffle_seed: 0, drop_last: 0, loss: BND_LOSS_AUTO.rawValue,
                   eval_batch_size: 256)
}

private func cEvent(_ e: FitEvent) -> bnd_fit_event {
    bnd_fit_event(kind: e.kind.rawValue, reserved: 0, epoch: Int64(e.epoch), step: Int64(e.step),
                  global_step: Int64(e.globalStep), batch_size: Int64(e.batchSize), loss: e.loss,
                  samples_per_second: e.samplesPerSecond, elapsed_seconds: e.elapsedSeconds,
                  validation_loss: e.validationLoss, validation_accuracy: e.validationAccuracy)
}

private func cSummary(_ s: FitSummary) -> bnd_fit_summary {
    bnd_fit_summary(steps: Int64(s.steps), epochs_completed: Int64(s.epochsCompleted),
                    stopped_early: s.stoppedEarly ? 1 : 0, reserved: 0, last_loss: s.lastLoss,
                    last_epoch_loss: s.lastEpochLoss, validation_loss: s.validation?.loss ?? .nan,
                    validation_accuracy: s.validation?.accuracy ?? .nan, samples: Int64(s.samples),
                    seconds: s.seconds)
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
        let p = params?.pointee ?? bnd_fit_default_params()
        try optimizer.checkUsable(with: box)
        let summary = try fit(network: box.net, optimizer: optimizer.optimizer, data: data, epochs: int(p.epochs),
                              batchSize: int(p.batch_size), shuffleSeed: p.shuffle_seed,
                              loss: loss(p.loss, "params->loss"), dropLast: flag(p.drop_last, "params->drop_last"),
                              validation: validationData, evalBatchSize: int(p.eval_batch_size)) { event in
            guard let callback else { return true }
            var cevent = cEvent(event)
            let goOn = withUnsafePointer(to: &cevent) { callback($0, userData) } != 0
            // The callback may use the net; if it added layers, the optimizer no longer fits it, and
            // the next step must not run.
            try optimizer.checkUsable(with: box)
            return goOn
        }
        outSummary?.pointee = cSummary(summary)
    }
}

@_cdecl("bnd_evaluate")
public func bnd_evaluate(_ net: OpaquePointer?, _ data: OpaquePointer?, _ batchSize: Int64,
                         _ outLoss: UnsafeMutablePointer<Double>?, _ outAccuracy: UnsafeMutablePointer<Double>?) -> bnd_status {
    api("bnd_evaluate") {
        let result = try evaluate(network: netBox(net).net, data: datasetBox(data, "data").dataset,
                                  batchSize: int(batchSize))
        outLoss?.pointee = result.loss
        outAccuracy?.pointee = result.accuracy ?? .nan
    }
}

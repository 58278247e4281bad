// Forward, backward and the one-call training steps.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_net_forward")
public func bnd_net_forward(_ net: OpaquePointer?, _ input: UnsafePointer<Float>?, _ batch: Int64,
                            _ output: UnsafeMutablePointer<Float>?, _ outputCapacity: UInt) -> bnd_status {
    api("bnd_net_forward") {
        let net = try netBox(net).net
        let input = try required(input, "input")
        try net.forward(input, batch: int(batch), into: BNDropC.output(output, outputCapacity, "output"))
    }
}

@_cdecl("bnd_net_forward_view")
public func bnd_net_forward_view(_ net: OpaquePointer?, _ input: UnsafePointer<Float>?, _ batch: Int64,
                                 _ outView: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                                 _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_forward_view") {
        let net = try netBox(net).net
        let input = try required(input, "input")
        let outView = try required(outView, "out_view")
        let outCount = try required(outCount, "out_count")
        let result = try net.forward(input, batch: int(batch), borrowingInput: true)
        outView.pointee = result.baseAddress
        outCount.pointee = UInt(result.count)
    }
}

@_cdecl("bnd_net_zero_grad")
public func bnd_net_zero_grad(_ net: OpaquePointer?) -> bnd_status {
    api("bnd_net_zero_grad") { try netBox(net).net.zeroGrad() }
}

@_cdecl("bnd_net_backward")
public func bnd_net_backward(_ net: OpaquePointer?, _ gradOutput: UnsafePointer<Float>?, _ batch: Int64,
                             _ gradInput: UnsafeMutablePointer<Float>?, _ gradInputCapacity: UInt) -> bnd_status {
    api("bnd_net_backward") {
        let net = try netBox(net).net
        let gradOutput = try required(gradOutput, "grad_output")
        try net.backward(gradOutput, batch: int(batch), gradInput: optionalOutput(gradInput, gradInputCapacity))
    }
}

/// The body both training steps share: the handles, the optimizer's net checked, the step run by `step`
/// (the core checks the rest), the loss stored.
private func trainStep(_ function: StaticString, _ net: OpaquePointer?, _ opt: OpaquePointer?,
                       _ input: UnsafePointer<Float>?, _ outLoss: UnsafeMutablePointer<Float>?,
                       _ step: (Sequential, Optimizer, UnsafePointer<Float>) throws -> Float) -> bnd_status {
    api(function) {
        let box = try netBox(net)
        let optimizer = try optimizerBox(opt)
        try optimizer.checkUsable(with: box)
        let loss = try step(box.net, optimizer.optimizer, try required(input, "input"))
        outLoss?.pointee = loss
    }
}

@_cdecl("bnd_net_train_step_classification")
public func bnd_net_train_step_classification(_ net: OpaquePointer?, _ opt: OpaquePointer?,
                                              _ input: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                              _ batch: Int64, _ outLoss: UnsafeMutablePointer<Float>?) -> bnd_status {
    trainStep("bnd_net_train_step_classification", net, opt, input, outLoss) { net, optimizer, input in
        try net.trainStep(input: input, labels: required(labels, "labels"), batch: int(batch), optimizer: optimizer)
    }
}

@_cdecl("bnd_net_train_step_regression")
public func bnd_net_train_step_regression(_ net: OpaquePointer?, _ opt: OpaquePointer?,
                                          _ input: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                          _ batch: Int64, _ outLoss: UnsafeMutablePointer<Float>?) -> bnd_status {
    trainStep("bnd_net_train_step_regression", net, opt, input, outLoss) { net, optimizer, input in
        try net.trainStep(input: input, targets: required(targets, "targets"), batch: int(batch), optimizer: optimizer)
    }
}

@_cdecl("bnd_net_train_step_classification_v2")
public func bnd_net_train_step_classification_v2(_ net: OpaquePointer?, _ opt: OpaquePointer?,
                                                 _ input: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                                 _ batch: Int64, _ loss: UnsafePointer<bnd_cross_entropy_params>?,
                                                 _ outLoss: UnsafeMutablePointer<Float>?) -> bnd_status {
    trainStep("bnd_net_train_step_classification_v2", net, opt, input, outLoss) { net, optimizer, input in
        let labels = try required(labels, "labels")
        // (A net whose output is not flat is refused by the step, before the classes matter.)
        let options = try crossEntropyOptions(loss, batch: batch, classes: Int64(net.outputCount))
        return try net.trainStep(input: input, labels: labels, batch: int(batch), optimizer: optimizer,
                                 lossOptions: options)
    }
}

@_cdecl("bnd_net_train_step_regression_v2")
public func bnd_net_train_step_regression_v2(_ net: OpaquePointer?, _ opt: OpaquePointer?,
                                             _ input: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                             _ batch: Int64, _ reductionValue: Int32,
                                             _ outLoss: UnsafeMutablePointer<Float>?) -> bnd_status {
    trainStep("bnd_net_train_step_regression_v2", net, opt, input, outLoss) { net, optimizer, input in
        try net.trainStep(input: input, targets: required(targets, "targets"), batch: int(batch), optimizer: optimizer,
                          reduction: reduction(reductionValue))
    }
}

/// The body both side-by-side steps share: the handles (each optimizer usable with its net), the steps run
/// by `steps` (the core checks the rest), each net's loss and status stored. The first failed step
/// (lowest index) is the call's status and message.
private func trainSteps(_ function: StaticString, _ nets: UnsafePointer<OpaquePointer?>?,
                        _ opts: UnsafePointer<OpaquePointer?>?, _ count: Int64, _ input: UnsafePointer<Float>?,
                        _ outLosses: UnsafeMutablePointer<Float>?, _ outStatuses: UnsafeMutablePointer<bnd_status>?,
                        _ steps: ([Sequential], [Optimizer], UnsafePointer<Float>) throws -> [Result<Float, BNDError>])
    -> bnd_status {
    api(function) {
        let nets = try required(nets, "nets"), opts = try required(opts, "opts")
        guard count >= 1, count <= Int64(Sequential.maxNetworksSideBySide) else {
            throw BNDError.invalidArgument("count must be 1 to \(Sequential.maxNetworksSideBySide), got \(count)")
        }
        var networks: [Sequential] = [], optimizers: [Optimizer] = []
        for index in 0..<int(count) {
            do {
                let box = try netBox(nets[index])
                let optimizer = try optimizerBox(opts[index])
                try optimizer.checkUsable(with: box)
                networks.append(box.net)
                optimizers.append(optimizer.optimizer)
            } catch let error as BNDError {
                throw error.prefixed("nets[\(index)]/opts[\(index)]: ")
            }
        }
        let results = try steps(networks, optimizers, try required(input, "input"))
        var firstFailure: (index: Int, error: BNDError)?
        for (index, result) in results.enumerated() {
            switch result {
            case .success(let loss):
                outLosses?[index] = loss
                outStatuses?[index] = BND_OK
            case .failure(let error):
                outLosses?[index] = .nan
                outStatuses?[index] = status(of: error)
                if firstFailure == nil { firstFailure = (index, error) }
            }
        }
        if let (index, error) = firstFailure { throw error.prefixed("the step of nets[\(index)] failed: ") }
    }
}

@_cdecl("bnd_nets_train_step_classification")
public func bnd_nets_train_step_classification(_ nets: UnsafePointer<OpaquePointer?>?,
                                               _ opts: UnsafePointer<OpaquePointer?>?, _ count: Int64,
                                               _ input: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                               _ batch: Int64, _ outLosses: UnsafeMutablePointer<Float>?,
                                               _ outStatuses: UnsafeMutablePointer<bnd_status>?) -> bnd_status {
    trainSteps("bnd_nets_train_step_classification", nets, opts, count, input, outLosses, outStatuses) {
        try Sequential.trainSteps(networks: $0, optimizers: $1, input: $2, labels: required(labels, "labels"),
                                  batch: int(batch))
    }
}

@_cdecl("bnd_nets_train_step_regression")
public func bnd_nets_train_step_regression(_ nets: UnsafePointer<OpaquePointer?>?,
                                           _ opts: UnsafePointer<OpaquePointer?>?, _ count: Int64,
                                           _ input: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                           _ batch: Int64, _ outLosses: UnsafeMutablePointer<Float>?,
                                           _ outStatuses: UnsafeMutablePointer<bnd_status>?) -> bnd_status {
    trainSteps("bnd_nets_train_step_regression", nets, opts, count, input, outLosses, outStatuses) {
        try Sequential.trainSteps(networks: $0, optimizers: $1, input: $2, targets: required(targets, "targets"),
                                  batch: int(batch))
    }
}

// Forward, backward and the one-call training steps.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_net_forward")
public func bnd_net_forward(_ net: OpaquePointer?, _ input: UnsafePointer<Float>?, _ batch: Int64,
                            _ output: UnsafeMutablePointer<Float>?, _ outputCapacity: UInt) -> bnd_status {
    api("bnd_net_forward") {
        let net = try netBox(net).net
        let input = try required(input, "input")
        let output = try required(output, "output")
        let (b, _) = try batchTotal(batch, net.inputCount, "input values")
        let (_, outTotal) = try batchTotal(batch, net.outputCount, "output values")
        try requireCapacity(outputCapacity, outTotal, "output_capacity")
        let result = try net.forward(input, batch: b)
        guard result.count == outTotal, let base = result.baseAddress else {
            throw BNDError.internalError("forward produced \(result.count) values, expected \(outTotal)")
        }
        output.update(from: base, count: outTotal)
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
        guard let last = net.lastBatch else {
            throw BNDError.state("backward needs a successful forward first")
        }
        let (b, inTotal) = try batchTotal(batch, net.inputCount, "input values")
        guard b == last else {
            throw BNDError.shape("backward batch \(b) differs from the forward batch \(last)")
        }
        if gradInput != nil { try requireCapacity(gradInputCapacity, inTotal, "grad_input_capacity") }
        try net.backward(gradOutput, batch: b, gradInput: gradInput)
    }
}

/// Validates the arguments shared by both training steps; returns the net, optimizer and batch.
private func stepArguments(_ net: OpaquePointer?, _ opt: OpaquePointer?, _ input: UnsafePointer<Float>?,
                           _ batch: Int64) throws -> (Sequential, Optimizer, UnsafePointer<Float>, Int) {
    let box = try netBox(net)
    let optimizer = try optimizerBox(opt)
    try optimizer.checkUsable(with: box)
    let input = try required(input, "input")
    let (b, _) = try batchTotal(batch, box.net.inputCount, "input values")
    return (box.net, optimizer.optimizer, input, b)
}

@_cdecl("bnd_net_train_step_classification")
public func bnd_net_train_step_classification(_ net: OpaquePointer?, _ opt: OpaquePointer?,
                                              _ input: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?,
                                              _ batch: Int64, _ outLoss: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_net_train_step_classification") {
        let (net, optimizer, input, b) = try stepArguments(net, opt, input, batch)
        let labels = try required(labels, "labels")
        let loss = try net.trainStep(input: input, labels: labels, batch: b, optimizer: optimizer)
        outLoss?.pointee = loss
    }
}

@_cdecl("bnd_net_train_step_regression")
public func bnd_net_train_step_regression(_ net: OpaquePointer?, _ opt: OpaquePointer?,
                                          _ input: UnsafePointer<Float>?, _ targets: UnsafePointer<Float>?,
                                          _ batch: Int64, _ outLoss: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_net_train_step_regression") {
        let (net, optimizer, input, b) = try stepArguments(net, opt, input, batch)
        let targets = try required(targets, "targets")
        let loss = try net.trainStep(input: input, targets: targets, batch: b, optimizer: optimizer)
        outLoss?.pointee = loss
    }
}

// SGD and Adam(W) over a net's parameters.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_sgd_default_params")
public func bnd_sgd_default_params() -> bnd_sgd_params {
    bnd_sgd_params(lr: 0.01, momentum: 0, dampening: 0, weight_decay: 0, nesterov: 0)
}

@_cdecl("bnd_adam_default_params")
public func bnd_adam_default_params() -> bnd_adam_params {
    bnd_adam_params(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0, decoupled_weight_decay: 0)
}

@_cdecl("bnd_adamw_default_params")
public func bnd_adamw_default_params() -> bnd_adam_params {
    bnd_adam_params(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-2, decoupled_weight_decay: 1)
}

/// The body both constructors share: the net and the out pointer required, the optimizer made by `make`
/// over the net's parameters (the core checks the hyper-parameters) and handed to C bound to its net.
private func createOptimizer(_ function: StaticString, _ net: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                             _ make: ([Parameter]) throws -> Optimizer) -> bnd_status {
    api(function) {
        let box = try netBox(net)
        let out = try required(out, "out")
        publish(OptimizerBox(try make(box.net.parameters), owner: box), out)
    }
}

@_cdecl("bnd_optimizer_create_sgd")
public func bnd_optimizer_create_sgd(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_sgd_params>?,
                                     _ out: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    createOptimizer("bnd_optimizer_create_sgd", net, out) { parameters in
        let p = params?.pointee ?? bnd_sgd_default_params()
        return try SGD(parameters: parameters, learningRate: p.lr, momentum: p.momentum, dampening: p.dampening,
                       weightDecay: p.weight_decay, nesterov: flag(p.nesterov, "nesterov"))
    }
}

@_cdecl("bnd_optimizer_create_adam")
public func bnd_optimizer_create_adam(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_adam_params>?,
                                      _ out: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    createOptimizer("bnd_optimizer_create_adam", net, out) { parameters in
        let p = params?.pointee ?? bnd_adam_default_params()
        return try Adam(parameters: parameters, learningRate: p.lr, beta1: p.beta1, beta2: p.beta2, eps: p.eps,
                        weightDecay: p.weight_decay,
                        decoupledWeightDecay: flag(p.decoupled_weight_decay, "decoupled_weight_decay"))
    }
}

@_cdecl("bnd_optimizer_step")
public func bnd_optimizer_step(_ opt: OpaquePointer?) -> bnd_status {
    api("bnd_optimizer_step") {
        let box = try optimizerBox(opt)
        try box.checkUsable(with: nil)
        try box.optimizer.step()
    }
}

@_cdecl("bnd_optimizer_free")
public func bnd_optimizer_free(_ opt: OpaquePointer?) {
    release(opt, as: OptimizerBox.self)
}

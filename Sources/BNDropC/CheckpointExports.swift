// Checkpoints: a net or an optimizer's state to and from a safetensors file (Sources/BNDrop/Checkpoint).
import BNDrop
import BNDropCSupport

@_cdecl("bnd_net_save")
public func bnd_net_save(_ net: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> bnd_status {
    api("bnd_net_save") {
        let box = try netBox(net)
        try box.net.save(to: text(path, "path"))
    }
}

@_cdecl("bnd_net_load")
public func bnd_net_load(_ path: UnsafePointer<CChar>?, _ outNet: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_net_load") {
        let path = try text(path, "path")
        let outNet = try required(outNet, "out_net")
        publish(NetBox(try Sequential(contentsOf: path)), outNet)
    }
}

@_cdecl("bnd_net_load_weights")
public func bnd_net_load_weights(_ net: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> bnd_status {
    api("bnd_net_load_weights") {
        let box = try netBox(net)
        try box.net.loadWeights(from: text(path, "path"))
    }
}

@_cdecl("bnd_optimizer_save")
public func bnd_optimizer_save(_ opt: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> bnd_status {
    api("bnd_optimizer_save") {
        let box = try optimizerBox(opt)
        try box.optimizer.save(to: text(path, "path"))
    }
}

@_cdecl("bnd_optimizer_load")
public func bnd_optimizer_load(_ opt: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> bnd_status {
    api("bnd_optimizer_load") {
        let box = try optimizerBox(opt)
        try box.optimizer.load(from: text(path, "path"))
    }
}

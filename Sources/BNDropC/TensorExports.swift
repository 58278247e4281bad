// Parameters, gradients and buffers by state_dict name, and the per-layer outputs of the last forward.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_net_tensor_count")
public func bnd_net_tensor_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_tensor_count") {
        let net = try netBox(net).net
        store(UInt(net.stateDict.count), try required(outCount, "out_count"))
    }
}

@_cdecl("bnd_net_tensor_name")
public func bnd_net_tensor_name(_ net: OpaquePointer?, _ tensorIndex: UInt, _ out: UnsafeMutablePointer<CChar>?,
                                _ capacity: UInt) -> bnd_status {
    api("bnd_net_tensor_name") {
        let entries = try netBox(net).net.stateDict
        let i = try index(tensorIndex, below: entries.count, "tensor")
        try writeText(entries[i].name, out, capacity)
    }
}

@_cdecl("bnd_net_tensor_numel")
public func bnd_net_tensor_numel(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                 _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_tensor_numel") {
        let entry = try netBox(net).net.stateEntry(text(name, "name"))
        store(UInt(entry.count), try required(outCount, "out_count"))
    }
}

@_cdecl("bnd_net_tensor_shape")
public func bnd_net_tensor_shape(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                 _ outShape: UnsafeMutablePointer<Int64>?, _ capacity: UInt,
                                 _ outRank: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_tensor_shape") {
        let entry = try netBox(net).net.stateEntry(text(name, "name"))
        try writeShape(entry.shape, outShape, capacity, outRank)
    }
}

@_cdecl("bnd_net_tensor_is_parameter")
public func bnd_net_tensor_is_parameter(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                        _ outIsParameter: UnsafeMutablePointer<Int32>?) -> bnd_status {
    api("bnd_net_tensor_is_parameter") {
        let entry = try netBox(net).net.stateEntry(text(name, "name"))
        let isParameter: Int32
        if case .parameter = entry.storage { isParameter = 1 } else { isParameter = 0 }
        store(isParameter, try required(outIsParameter, "out_is_parameter"))
    }
}

@_cdecl("bnd_net_set_tensor")
public func bnd_net_set_tensor(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ data: UnsafePointer<Float>?,
                               _ count: UInt) -> bnd_status {
    api("bnd_net_set_tensor") {
        let net = try netBox(net).net
        let name = try text(name, "name")
        let entry = try net.stateEntry(name)
        try net.setTensor(name, readFloats(data, count, expected: entry.count, "'\(name)'"))
    }
}

@_cdecl("bnd_net_get_tensor")
public func bnd_net_get_tensor(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                               _ capacity: UInt) -> bnd_status {
    api("bnd_net_get_tensor") {
        let values = try netBox(net).net.tensor(text(name, "name"))
        try copyOut(values, out, capacity)
    }
}

@_cdecl("bnd_net_get_grad")
public func bnd_net_get_grad(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                             _ capacity: UInt) -> bnd_status {
    api("bnd_net_get_grad") {
        let values = try netBox(net).net.gradient(text(name, "name"))
        try copyOut(values, out, capacity)
    }
}

@_cdecl("bnd_net_set_grad")
public func bnd_net_set_grad(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ data: UnsafePointer<Float>?,
                             _ count: UInt) -> bnd_status {
    api("bnd_net_set_grad") {
        let net = try netBox(net).net
        let name = try text(name, "name")
        let p = try net.parameter(name)
        try p.gradient.assign(readFloats(data, count, expected: p.count, "'\(name)'"))
    }
}

@_cdecl("bnd_net_get_layer_output")
public func bnd_net_get_layer_output(_ net: OpaquePointer?, _ layerIndex: UInt, _ out: UnsafeMutablePointer<Float>?,
                                     _ capacity: UInt, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_get_layer_output") {
        let net = try netBox(net).net
        let out = try required(out, "out")
        let i = try index(layerIndex, below: net.layers.count, "layer")
        guard let batch = net.lastBatch else {
            throw BNDError.state("layer outputs exist only after a successful forward")
        }
        let needed = batch * net.layers[i].outputShape.reduce(1, *)
        if let outCount { outCount.pointee = UInt(needed) }
        try requireCapacity(capacity, needed, "capacity")
        let values = try net.layerOutput(i)
        try copyOut(values, out, capacity)
        if let outCount { outCount.pointee = UInt(values.count) }
    }
}

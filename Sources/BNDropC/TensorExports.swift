// Parameters, gradients and buffers by state_dict name, and the per-layer outputs of the last forward.
// Values go straight between the caller's memory and the net's own storage.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_net_tensor_name")
public func bnd_net_tensor_name(_ net: OpaquePointer?, _ tensorIndex: UInt, _ out: UnsafeMutablePointer<CChar>?,
                                _ capacity: UInt) -> bnd_status {
    api("bnd_net_tensor_name") { try writeText(netBox(net).net.stateName(at: int(tensorIndex)), out, capacity) }
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
        try netBox(net).net.setTensor(text(name, "name"), from: input(data, count, "data"))
    }
}

@_cdecl("bnd_net_get_tensor")
public func bnd_net_get_tensor(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                               _ capacity: UInt) -> bnd_status {
    api("bnd_net_get_tensor") {
        try netBox(net).net.tensor(text(name, "name"), into: output(out, capacity, "out"))
    }
}

@_cdecl("bnd_net_get_tensor_int64")
public func bnd_net_get_tensor_int64(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                     _ outValue: UnsafeMutablePointer<Int64>?) -> bnd_status {
    api("bnd_net_get_tensor_int64") {
        let value = try netBox(net).net.tensorInt64(text(name, "name"))
        store(value, try required(outValue, "out_value"))
    }
}

@_cdecl("bnd_net_set_tensor_int64")
public func bnd_net_set_tensor_int64(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ value: Int64) -> bnd_status {
    api("bnd_net_set_tensor_int64") { try netBox(net).net.setTensorInt64(text(name, "name"), value) }
}

@_cdecl("bnd_net_get_grad")
public func bnd_net_get_grad(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                             _ capacity: UInt) -> bnd_status {
    api("bnd_net_get_grad") {
        try netBox(net).net.gradient(text(name, "name"), into: output(out, capacity, "out"))
    }
}

@_cdecl("bnd_net_set_grad")
public func bnd_net_set_grad(_ net: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ data: UnsafePointer<Float>?,
                             _ count: UInt) -> bnd_status {
    api("bnd_net_set_grad") {
        try netBox(net).net.setGradient(text(name, "name"), from: input(data, count, "data"))
    }
}

@_cdecl("bnd_net_get_layer_output")
public func bnd_net_get_layer_output(_ net: OpaquePointer?, _ layerIndex: UInt, _ out: UnsafeMutablePointer<Float>?,
                                     _ capacity: UInt, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_get_layer_output") {
        let net = try netBox(net).net
        let out = try output(out, capacity, "out")
        // The count needed is reported even when the capacity is too small.
        outCount?.pointee = UInt(try net.layerOutputCount(int(layerIndex)))
        try net.layerOutput(int(layerIndex), into: out)
    }
}

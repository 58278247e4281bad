// Building and inspecting a network: bnd_net_create / free / add_* / seed / set_training and the
// shape, layer and mode queries.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_batchnorm_default_params")
public func bnd_batchnorm_default_params() -> bnd_batchnorm_params {
    bnd_batchnorm_params(eps: 1e-5, momentum: 0.1, cumulative_average: 0, affine: 1, track_running_stats: 1)
}

@_cdecl("bnd_net_create")
public func bnd_net_create(_ sampleShape: UnsafePointer<Int64>?, _ rank: UInt,
                           _ outNet: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_net_create") {
        let shapePointer = try required(sampleShape, "sample_shape")
        let outNet = try required(outNet, "out_net")
        guard (1...3).contains(rank) else {
            throw BNDError.shape("sample shape rank must be 1 to 3 ([features], [C, L] or [C, H, W]), got \(rank)")
        }
        var shape: [Int] = []
        for i in 0..<Int(rank) {
            // Int64 always fits Int on the 64-bit platforms bndrop supports; stay exact anyway.
            guard let d = Int(exactly: shapePointer[i]) else {
                throw BNDError.shape("sample shape dimension \(shapePointer[i]) is out of range")
            }
            shape.append(d)
        }
        let box = NetBox(try Sequential(sampleShape: shape))
        outNet.pointee = OpaquePointer(Unmanaged.passRetained(box).toOpaque())
    }
}

@_cdecl("bnd_net_free")
public func bnd_net_free(_ net: OpaquePointer?) {
    guard let net else { return }
    Unmanaged<NetBox>.fromOpaque(UnsafeRawPointer(net)).release()
}

@_cdecl("bnd_net_add_linear")
public func bnd_net_add_linear(_ net: OpaquePointer?, _ outFeatures: Int64) -> bnd_status {
    api("bnd_net_add_linear") {
        let net = try netBox(net).net
        guard let out = Int(exactly: outFeatures) else {
            throw BNDError.invalidArgument("out_features \(outFeatures) is out of range")
        }
        try net.addLinear(out)
    }
}

@_cdecl("bnd_net_add_conv2d")
public func bnd_net_add_conv2d(_ net: OpaquePointer?, _ outChannels: Int64, _ kernelSize: Int64,
                               _ stride: Int64, _ padding: Int64) -> bnd_status {
    api("bnd_net_add_conv2d") {
        let net = try netBox(net).net
        guard let o = Int(exactly: outChannels), let k = Int(exactly: kernelSize), let s = Int(exactly: stride),
              let p = Int(exactly: padding) else {
            throw BNDError.invalidArgument("argument out of range")
        }
        try net.addConv2d(outChannels: o, kernelSize: k, stride: s, padding: p)
    }
}

@_cdecl("bnd_net_add_relu")
public func bnd_net_add_relu(_ net: OpaquePointer?) -> bnd_status {
    api("bnd_net_add_relu") { try netBox(net).net.addReLU() }
}

@_cdecl("bnd_net_add_flatten")
public func bnd_net_add_flatten(_ net: OpaquePointer?) -> bnd_status {
    api("bnd_net_add_flatten") { try netBox(net).net.addFlatten() }
}

/// Kernel and stride of a pooling layer: stride 0 means "= kernel" (PyTorch's stride=None).
private func poolArguments(_ kernelSize: Int64, _ stride: Int64) throws -> (Int, Int?) {
    guard kernelSize > 0, let k = Int(exactly: kernelSize) else {
        throw BNDError.invalidArgument("kernel_size must be positive, got \(kernelSize)")
    }
    guard stride >= 0, let s = Int(exactly: stride) else {
        throw BNDError.invalidArgument("stride must be positive (or 0 for kernel_size), got \(stride)")
    }
    return (k, s == 0 ? nil : s)
}

@_cdecl("bnd_net_add_avgpool2d")
public func bnd_net_add_avgpool2d(_ net: OpaquePointer?, _ kernelSize: Int64, _ stride: Int64) -> bnd_status {
    api("bnd_net_add_avgpool2d") {
        let net = try netBox(net).net
        let (k, s) = try poolArguments(kernelSize, stride)
        try net.addAvgPool2d(kernelSize: k, stride: s)
    }
}

@_cdecl("bnd_net_add_maxpool2d")
public func bnd_net_add_maxpool2d(_ net: OpaquePointer?, _ kernelSize: Int64, _ stride: Int64) -> bnd_status {
    api("bnd_net_add_maxpool2d") {
        let net = try netBox(net).net
        let (k, s) = try poolArguments(kernelSize, stride)
        try net.addMaxPool2d(kernelSize: k, stride: s)
    }
}

@_cdecl("bnd_net_add_batchnorm")
public func bnd_net_add_batchnorm(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_batchnorm_params>?) -> bnd_status {
    api("bnd_net_add_batchnorm") {
        let net = try netBox(net).net
        let p = params?.pointee ?? bnd_batchnorm_default_params()
        let cumulative = try flag(p.cumulative_average, "cumulative_average")
        let affine = try flag(p.affine, "affine")
        let track = try flag(p.track_running_stats, "track_running_stats")
        try net.addBatchNorm(eps: p.eps, momentum: cumulative ? nil : p.momentum, affine: affine,
                             trackRunningStats: track)
    }
}

@_cdecl("bnd_net_add_dropout")
public func bnd_net_add_dropout(_ net: OpaquePointer?, _ p: Float) -> bnd_status {
    api("bnd_net_add_dropout") { try netBox(net).net.addDropout(p) }
}

@_cdecl("bnd_net_seed")
public func bnd_net_seed(_ net: OpaquePointer?, _ seed: UInt64) -> bnd_status {
    api("bnd_net_seed") { try netBox(net).net.reseed(seed) }
}

@_cdecl("bnd_net_set_training")
public func bnd_net_set_training(_ net: OpaquePointer?, _ training: Int32) -> bnd_status {
    api("bnd_net_set_training") {
        let net = try netBox(net).net
        net.isTraining = try flag(training, "training")
    }
}

@_cdecl("bnd_net_is_training")
public func bnd_net_is_training(_ net: OpaquePointer?, _ outTraining: UnsafeMutablePointer<Int32>?) -> bnd_status {
    api("bnd_net_is_training") {
        let net = try netBox(net).net
        store(net.isTraining ? 1 : 0, try required(outTraining, "out_training"))
    }
}

// MARK: Shapes and layers

@_cdecl("bnd_net_input_shape")
public func bnd_net_input_shape(_ net: OpaquePointer?, _ outShape: UnsafeMutablePointer<Int64>?, _ capacity: UInt,
                                _ outRank: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_input_shape") { try writeShape(netBox(net).net.sampleShape, outShape, capacity, outRank) }
}

@_cdecl("bnd_net_output_shape")
public func bnd_net_output_shape(_ net: OpaquePointer?, _ outShape: UnsafeMutablePointer<Int64>?, _ capacity: UInt,
                                 _ outRank: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_output_shape") { try writeShape(netBox(net).net.outputShape, outShape, capacity, outRank) }
}

@_cdecl("bnd_net_input_count")
public func bnd_net_input_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_input_count") {
        let net = try netBox(net).net
        store(UInt(net.inputCount), try required(outCount, "out_count"))
    }
}

@_cdecl("bnd_net_output_count")
public func bnd_net_output_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_output_count") {
        let net = try netBox(net).net
        store(UInt(net.outputCount), try required(outCount, "out_count"))
    }
}

@_cdecl("bnd_net_layer_count")
public func bnd_net_layer_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_layer_count") {
        let net = try netBox(net).net
        store(UInt(net.layers.count), try required(outCount, "out_count"))
    }
}

@_cdecl("bnd_net_layer_type")
public func bnd_net_layer_type(_ net: OpaquePointer?, _ layerIndex: UInt, _ out: UnsafeMutablePointer<CChar>?,
                               _ capacity: UInt) -> bnd_status {
    api("bnd_net_layer_type") {
        let net = try netBox(net).net
        let i = try index(layerIndex, below: net.layers.count, "layer")
        try writeText(net.layers[i].typeName, out, capacity)
    }
}

@_cdecl("bnd_net_layer_output_shape")
public func bnd_net_layer_output_shape(_ net: OpaquePointer?, _ layerIndex: UInt,
                                       _ outShape: UnsafeMutablePointer<Int64>?, _ capacity: UInt,
                                       _ outRank: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_layer_output_shape") {
        let net = try netBox(net).net
        let i = try index(layerIndex, below: net.layers.count, "layer")
        try writeShape(net.layers[i].outputShape, outShape, capacity, outRank)
    }
}

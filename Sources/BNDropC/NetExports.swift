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
        let shape = try shape(sampleShape, rank, "sample_shape")
        let outNet = try required(outNet, "out_net")
        publish(NetBox(try Sequential(sampleShape: shape)), outNet)
    }
}

@_cdecl("bnd_net_free")
public func bnd_net_free(_ net: OpaquePointer?) {
    release(net, as: NetBox.self)
}

@_cdecl("bnd_net_add_linear")
public func bnd_net_add_linear(_ net: OpaquePointer?, _ outFeatures: Int64) -> bnd_status {
    api("bnd_net_add_linear") { try netBox(net).net.addLinear(int(outFeatures)) }
}

@_cdecl("bnd_net_add_conv2d")
public func bnd_net_add_conv2d(_ net: OpaquePointer?, _ outChannels: Int64, _ kernelSize: Int64,
                               _ stride: Int64, _ padding: Int64) -> bnd_status {
    api("bnd_net_add_conv2d") {
        try netBox(net).net.addConv2d(outChannels: int(outChannels), kernelSize: int(kernelSize),
                                      stride: int(stride), padding: int(padding))
    }
}

@_cdecl("bnd_conv2d_default_params")
public func bnd_conv2d_default_params(_ outChannels: Int64, _ kernelSize: Int64) -> bnd_conv2d_params {
    bnd_conv2d_params(out_channels: outChannels, kernel_size: kernelSize, stride: 1, padding: 0, dilation: 1, groups: 1)
}

@_cdecl("bnd_net_add_conv2d_v2")
public func bnd_net_add_conv2d_v2(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_conv2d_params>?) -> bnd_status {
    api("bnd_net_add_conv2d_v2") {
        let net = try netBox(net).net
        let p = try required(params, "params").pointee
        try net.addConv2d(outChannels: int(p.out_channels), kernelSize: int(p.kernel_size), stride: int(p.stride),
                          padding: int(p.padding), dilation: int(p.dilation), groups: int(p.groups))
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

@_cdecl("bnd_net_add_avgpool2d")
public func bnd_net_add_avgpool2d(_ net: OpaquePointer?, _ kernelSize: Int64, _ stride: Int64) -> bnd_status {
    api("bnd_net_add_avgpool2d") {
        try netBox(net).net.addAvgPool2d(kernelSize: int(kernelSize), stride: poolStride(stride))
    }
}

@_cdecl("bnd_net_add_maxpool2d")
public func bnd_net_add_maxpool2d(_ net: OpaquePointer?, _ kernelSize: Int64, _ stride: Int64) -> bnd_status {
    api("bnd_net_add_maxpool2d") {
        try netBox(net).net.addMaxPool2d(kernelSize: int(kernelSize), stride: poolStride(stride))
    }
}

@_cdecl("bnd_avgpool2d_default_params")
public func bnd_avgpool2d_default_params(_ kernelSize: Int64) -> bnd_avgpool2d_params {
    bnd_avgpool2d_params(kernel_size: kernelSize, stride: 0, padding: 0, ceil_mode: 0, count_include_pad: 1,
                         divisor_override: 0)
}

@_cdecl("bnd_maxpool2d_default_params")
public func bnd_maxpool2d_default_params(_ kernelSize: Int64) -> bnd_maxpool2d_params {
    bnd_maxpool2d_params(kernel_size: kernelSize, stride: 0, padding: 0, dilation: 1, ceil_mode: 0)
}

@_cdecl("bnd_net_add_avgpool2d_v2")
public func bnd_net_add_avgpool2d_v2(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_avgpool2d_params>?) -> bnd_status {
    api("bnd_net_add_avgpool2d_v2") {
        let net = try netBox(net).net
        let p = try required(params, "params").pointee
        try net.addAvgPool2d(kernelSize: int(p.kernel_size), stride: poolStride(p.stride), padding: int(p.padding),
                             ceilMode: try flag(p.ceil_mode, "ceil_mode"),
                             countIncludePad: try flag(p.count_include_pad, "count_include_pad"),
                             divisorOverride: p.divisor_override == 0 ? nil : int(p.divisor_override))
    }
}

@_cdecl("bnd_net_add_maxpool2d_v2")
public func bnd_net_add_maxpool2d_v2(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_maxpool2d_params>?) -> bnd_status {
    api("bnd_net_add_maxpool2d_v2") {
        let net = try netBox(net).net
        let p = try required(params, "params").pointee
        try net.addMaxPool2d(kernelSize: int(p.kernel_size), stride: poolStride(p.stride), padding: int(p.padding),
                             dilation: int(p.dilation), ceilMode: try flag(p.ceil_mode, "ceil_mode"))
    }
}

@_cdecl("bnd_net_add_batchnorm")
public func bnd_net_add_batchnorm(_ net: OpaquePointer?, _ params: UnsafePointer<bnd_batchnorm_params>?) -> bnd_status {
    api("bnd_net_add_batchnorm") {
        let net = try netBox(net).net
        let p = params?.pointee ?? bnd_batchnorm_default_params()
        let cumulative = try flag(p.cumulative_average, "cumulative_average")
        try net.addBatchNorm(eps: p.eps, momentum: cumulative ? nil : p.momentum,
                             affine: try flag(p.affine, "affine"),
                             trackRunningStats: try flag(p.track_running_stats, "track_running_stats"))
    }
}

@_cdecl("bnd_net_add_dropout")
public func bnd_net_add_dropout(_ net: OpaquePointer?, _ p: Float) -> bnd_status {
    api("bnd_net_add_dropout") { try netBox(net).net.addDropout(p) }
}

@_cdecl("bnd_net_seed")
public func bnd_net_seed(_ net: OpaquePointer?, _ seed: UInt64) -> bnd_status {
    api("bnd_net_seed") { try netBox(net).net.seed(seed) }
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

/// The shared body of the count queries: `value` of the net, through `out`.
private func netCount(_ function: StaticString, _ net: OpaquePointer?, _ out: UnsafeMutablePointer<UInt>?,
                      _ value: (Sequential) -> Int) -> bnd_status {
    api(function) {
        let net = try netBox(net).net
        store(UInt(value(net)), try required(out, "out_count"))
    }
}

@_cdecl("bnd_net_input_count")
public func bnd_net_input_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    netCount("bnd_net_input_count", net, outCount) { $0.inputCount }
}

@_cdecl("bnd_net_output_count")
public func bnd_net_output_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    netCount("bnd_net_output_count", net, outCount) { $0.outputCount }
}

@_cdecl("bnd_net_layer_count")
public func bnd_net_layer_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    netCount("bnd_net_layer_count", net, outCount) { $0.layers.count }
}

@_cdecl("bnd_net_tensor_count")
public func bnd_net_tensor_count(_ net: OpaquePointer?, _ outCount: UnsafeMutablePointer<UInt>?) -> bnd_status {
    netCount("bnd_net_tensor_count", net, outCount) { $0.stateDict.count }
}

@_cdecl("bnd_net_layer_type")
public func bnd_net_layer_type(_ net: OpaquePointer?, _ layerIndex: UInt, _ out: UnsafeMutablePointer<CChar>?,
                               _ capacity: UInt) -> bnd_status {
    api("bnd_net_layer_type") { try writeText(netBox(net).net.layer(int(layerIndex)).typeName, out, capacity) }
}

@_cdecl("bnd_net_layer_output_shape")
public func bnd_net_layer_output_shape(_ net: OpaquePointer?, _ layerIndex: UInt,
                                       _ outShape: UnsafeMutablePointer<Int64>?, _ capacity: UInt,
                                       _ outRank: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_net_layer_output_shape") {
        try writeShape(netBox(net).net.layer(int(layerIndex)).outputShape, outShape, capacity, outRank)
    }
}

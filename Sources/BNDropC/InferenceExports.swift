// Inference helpers: bnd_net_fold_batchnorm and bnd_net_predict_mc_dropout.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_net_fold_batchnorm")
public func bnd_net_fold_batchnorm(_ net: OpaquePointer?, _ outNet: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_net_fold_batchnorm") {
        let net = try netBox(net).net
        let outNet = try required(outNet, "out_net")
        publish(NetBox(try net.foldingBatchNorm()), outNet)
    }
}

@_cdecl("bnd_net_predict_mc_dropout")
public func bnd_net_predict_mc_dropout(_ net: OpaquePointer?, _ input: UnsafePointer<Float>?, _ batch: Int64,
                                       _ passes: Int64, _ seed: UInt64, _ outMean: UnsafeMutablePointer<Float>?,
                                       _ outVar: UnsafeMutablePointer<Float>?, _ capacity: UInt) -> bnd_status {
    api("bnd_net_predict_mc_dropout") {
        let net = try netBox(net).net
        let input = try required(input, "input")
        try net.predictMCDropout(input: input, batch: int(batch), passes: int(passes), seed: seed,
                                 mean: output(outMean, capacity, "out_mean"),
                                 variance: output(outVar, capacity, "out_var"))
    }
}

// Cross-entropy and mean squared error, as torch.nn.functional.
import BNDrop
import BNDropCSupport

@_cdecl("bnd_loss_cross_entropy")
public func bnd_loss_cross_entropy(_ logits: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?, _ batch: Int64,
                                   _ classes: Int64, _ outLoss: UnsafeMutablePointer<Float>?,
                                   _ gradLogits: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_loss_cross_entropy") {
        let logits = try required(logits, "logits")
        let labels = try required(labels, "labels")
        let outLoss = try required(outLoss, "out_loss")
        store(try Loss.crossEntropy(logits: logits, labels: labels, batch: int(batch), classes: int(classes),
                                    gradient: gradLogits), outLoss)
    }
}

@_cdecl("bnd_loss_mse")
public func bnd_loss_mse(_ prediction: UnsafePointer<Float>?, _ target: UnsafePointer<Float>?, _ count: UInt,
                         _ outLoss: UnsafeMutablePointer<Float>?, _ grad: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_loss_mse") {
        let prediction = try required(prediction, "prediction")
        let target = try required(target, "target")
        let outLoss = try required(outLoss, "out_loss")
        store(try Loss.mse(prediction: prediction, target: target, count: BNDropC.count(count, "count"), gradient: grad), outLoss)
    }
}

/// A C `bnd_reduction` value.
func reduction(_ value: Int32) throws -> Reduction {
    guard let reduction = Reduction(rawValue: value) else {
        throw BNDError.invalidArgument("reduction must be BND_REDUCTION_MEAN (0) or BND_REDUCTION_SUM (1), got \(value)")
    }
    return reduction
}

@_cdecl("bnd_cross_entropy_default_params")
public func bnd_cross_entropy_default_params() -> bnd_cross_entropy_params {
    bnd_cross_entropy_params(weight: nil, weight_count: 0, ignore_index: -100, label_smoothing: 0,
                             reduction: Int32(BND_REDUCTION_MEAN.rawValue))
}

/// The Swift options of C cross-entropy arguments (NULL: PyTorch's defaults) for `batch` × `classes`
/// logits. The class weights are read only for sizes the loss takes (it refuses the others before it
/// reads anything), `classes` of them.
func crossEntropyOptions(_ params: UnsafePointer<bnd_cross_entropy_params>?, batch: Int64,
                         classes: Int64) throws -> CrossEntropyOptions {
    let p = params?.pointee ?? bnd_cross_entropy_default_params()
    var weight: [Float]?
    if let values = p.weight {
        guard p.weight_count == classes else {
            throw BNDError.invalidArgument("weight_count must be classes (\(classes)), got \(p.weight_count)")
        }
        let (logitCount, overflow) = batch.multipliedReportingOverflow(by: classes)
        if batch > 0, classes > 0, !overflow, logitCount <= Int64(SizeLimits.maxElements) {
            weight = Array(UnsafeBufferPointer(start: values, count: int(classes)))
        }
    } else if p.weight_count != 0 {
        throw BNDError.invalidArgument("weight is NULL but weight_count is \(p.weight_count)")
    }
    return CrossEntropyOptions(weight: weight, ignoreIndex: int(p.ignore_index), reduction: try reduction(p.reduction),
                               labelSmoothing: p.label_smoothing)
}

@_cdecl("bnd_loss_cross_entropy_v2")
public func bnd_loss_cross_entropy_v2(_ logits: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?, _ batch: Int64,
                                      _ classes: Int64, _ params: UnsafePointer<bnd_cross_entropy_params>?,
                                      _ outLoss: UnsafeMutablePointer<Float>?,
                                      _ gradLogits: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_loss_cross_entropy_v2") {
        let logits = try required(logits, "logits")
        let labels = try required(labels, "labels")
        let outLoss = try required(outLoss, "out_loss")
        let options = try crossEntropyOptions(params, batch: batch, classes: classes)
        store(try Loss.crossEntropy(logits: logits, labels: labels, batch: int(batch), classes: int(classes),
                                    options: options, gradient: gradLogits), outLoss)
    }
}

@_cdecl("bnd_loss_mse_v2")
public func bnd_loss_mse_v2(_ prediction: UnsafePointer<Float>?, _ target: UnsafePointer<Float>?, _ count: UInt,
                            _ reductionValue: Int32, _ outLoss: UnsafeMutablePointer<Float>?,
                            _ grad: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_loss_mse_v2") {
        let prediction = try required(prediction, "prediction")
        let target = try required(target, "target")
        let outLoss = try required(outLoss, "out_loss")
        store(try Loss.mse(prediction: prediction, target: target, count: BNDropC.count(count, "count"),
                           reduction: try reduction(reductionValue), gradient: grad), outLoss)
    }
}

// Cross-entropy and mean squared error (mean reduction), as torch.nn.functional.
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
        guard classes > 0, let c = Int(exactly: classes) else {
            throw BNDError.shape("classes must be positive, got \(classes)")
        }
        let (b, _) = try batchTotal(batch, c, "classes")
        store(try Loss.crossEntropy(logits: logits, labels: labels, batch: b, classes: c, gradient: gradLogits), outLoss)
    }
}

@_cdecl("bnd_loss_mse")
public func bnd_loss_mse(_ prediction: UnsafePointer<Float>?, _ target: UnsafePointer<Float>?, _ count: UInt,
                         _ outLoss: UnsafeMutablePointer<Float>?, _ grad: UnsafeMutablePointer<Float>?) -> bnd_status {
    api("bnd_loss_mse") {
        let prediction = try required(prediction, "prediction")
        let target = try required(target, "target")
        let outLoss = try required(outLoss, "out_loss")
        let n = try BNDropC.count(count, "count")
        guard n > 0 else { throw BNDError.shape("mse needs at least 1 element, got count 0") }
        store(try Loss.mse(prediction: prediction, target: target, count: n, gradient: grad), outLoss)
    }
}

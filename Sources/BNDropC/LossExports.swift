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

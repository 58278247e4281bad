import Glibc

/// The losses, with mean reduction, as torch.nn.functional.cross_entropy and mse_loss: the cases name
/// them (for `fit`, `evaluate`, and `bnd_loss` in C), the static functions compute them.
///
/// They compute faithfully: non-finite inputs give a non-finite loss (the training step turns that into
/// `BNDError.numeric` before any parameter changes). Bad labels or sizes throw.
public enum Loss: Int32, Sendable {
    /// Cross-entropy on integer labels (classification datasets). `BND_LOSS_CROSS_ENTROPY`.
    case crossEntropy = 0
    /// Mean squared error on float targets (regression datasets). `BND_LOSS_MSE`.
    case mse = 1

    /// Throws `.invalidArgument` at the first label outside [0, classes).
    static func checkLabels(_ labels: UnsafePointer<Int32>, batch: Int, classes: Int) throws {
        for n in 0..<batch where labels[n] < 0 || Int(labels[n]) >= classes {
            throw BNDError.invalidArgument("Target \(labels[n]) is out of bounds: labels must be in [0, \(classes)) (sample \(n))")
        }
    }

    /// Mean over the batch of −log_softmax(logits)[label].
    /// - Parameters:
    ///   - logits: batch×classes values.
    ///   - labels: batch labels in [0, classes).
    ///   - gradient: if non-nil, receives (softmax − onehot)/batch (batch×classes values).
    public static func crossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                    classes: Int, gradient: UnsafeMutablePointer<Float>?) throws -> Float {
        try Checked.batch(batch, "cross_entropy batch")
        try Checked.batch(classes, "cross_entropy classes")
        _ = try Checked.multiply(batch, classes, "cross_entropy logits")
        try checkLabels(labels, batch: batch, classes: classes)
        var total = 0.0
        for n in 0..<batch {
            let row = logits + n * classes
            var maxValue = row[0]
            for c in 1..<max(classes, 1) where row[c] > maxValue || row[c].isNaN { maxValue = row[c] }
            var sumExp = 0.0
            // Read before the gradient is written: the gradient may be the logits themselves (in place).
            let labelLogit = row[Int(labels[n])]
            // With a gradient to write, each exp is kept there until the sum is known (one expf per
            // logit, not two: the same values).
            let exps = gradient.map { $0 + n * classes }
            for c in 0..<classes {
                let e = expf(row[c] - maxValue)
                exps?[c] = e
                sumExp += Double(e)
            }
            let logSumExp = Double(maxValue) + log(sumExp)
            total += logSumExp - Double(labelLogit)
            if let out = exps {
                let invBatch = 1 / Double(batch)
                for c in 0..<classes {
                    let softmax = Double(out[c]) / sumExp
                    out[c] = Float((softmax - (c == Int(labels[n]) ? 1 : 0)) * invBatch)
                }
            }
        }
        return Float(total / Double(batch))
    }

    /// Mean over all elements of (prediction − target)²; gradient 2(prediction − target)/count.
    public static func mse(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int,
                           gradient: UnsafeMutablePointer<Float>?) throws -> Float {
        try Checked.elements(count, "mse element count")
        var total = 0.0
        let scale = 2 / Float(count)
        for i in 0..<count {
            let d = prediction[i] - target[i]
            total += Double(d) * Double(d)
            gradient?[i] = scale * d
        }
        return Float(total / Double(count))
    }

    /// Array form of `crossEntropy`: returns the loss and the gradient.
    public static func crossEntropy(logits: [Float], labels: [Int32], classes: Int) throws -> (loss: Float, gradient: [Float]) {
        guard !labels.isEmpty else { throw BNDError.shape("cross_entropy needs a batch of at least 1, got 0") }
        guard classes > 0, logits.count == labels.count * classes else {
            throw BNDError.shape("cross_entropy: \(logits.count) logits do not match \(labels.count) labels × \(classes) classes")
        }
        return try withGradient(logits, labels) { l, y, g in
            try crossEntropy(logits: l, labels: y, batch: labels.count, classes: classes, gradient: g)
        }
    }

    /// Array form of `mse`: returns the loss and the gradient.
    public static func mse(prediction: [Float], target: [Float]) throws -> (loss: Float, gradient: [Float]) {
        guard !prediction.isEmpty else { throw BNDError.shape("mse needs at least 1 element, got 0") }
        guard prediction.count == target.count else {
            throw BNDError.shape("mse: prediction has \(prediction.count) elements, target \(target.count)")
        }
        return try withGradient(prediction, target) { p, t, g in
            try mse(prediction: p, target: t, count: prediction.count, gradient: g)
        }
    }

    /// Runs `loss` on the arrays' memory with a zeroed gradient array as large as `values`; returns both.
    private static func withGradient<T>(_ values: [Float], _ reference: [T],
                                        _ loss: (UnsafePointer<Float>, UnsafePointer<T>, UnsafeMutablePointer<Float>) throws -> Float)
        rethrows -> (loss: Float, gradient: [Float]) {
        var gradient = [Float](repeating: 0, count: values.count)
        let value = try values.withUnsafeBufferPointer { v in
            try reference.withUnsafeBufferPointer { r in
                try gradient.withUnsafeMutableBufferPointer { g in try loss(v.baseAddress!, r.baseAddress!, g.baseAddress!) }
            }
        }
        return (value, gradient)
    }
}

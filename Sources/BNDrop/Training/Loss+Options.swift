import Glibc

/// How a loss reduces its per-sample (or per-element) values, as PyTorch's `reduction` argument
/// ('none' is not offered: every loss here returns one value). `BND_REDUCTION_*` in C.
public enum Reduction: Int32, Sendable {
    case mean = 0
    case sum = 1
}

/// torch.nn.CrossEntropyLoss's arguments besides the inputs, with its defaults.
public struct CrossEntropyOptions: Sendable, Equatable {
    /// nil, or one weight per class: a sample counts with its label's weight, and with mean reduction
    /// the sum is divided by the weights of the samples' labels instead of their number.
    public var weight: [Float]?
    /// Samples with this label add nothing: no loss, no weight in the mean, a zero gradient row.
    public var ignoreIndex: Int
    public var reduction: Reduction
    /// ε in [0, 1]: the target is (1 − ε)·onehot + ε/classes (times the class weights, when given).
    public var labelSmoothing: Float

    public init(weight: [Float]? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean,
                labelSmoothing: Float = 0) {
        (self.weight, self.ignoreIndex, self.reduction, self.labelSmoothing) = (weight, ignoreIndex, reduction,
                                                                               labelSmoothing)
    }
}

extension Loss {
    /// torch.nn.functional.cross_entropy(logits, labels, weight, ignore_index, reduction, label_smoothing).
    /// With w_c the class weights (1 without), p = softmax(logits), ε the smoothing and the sums over
    /// the samples not ignored: per sample ℓ = (1 − ε)·w_y·(−log p_y) + ε/C·Σ_c w_c·(−log p_c); the loss
    /// is Σ ℓ, divided by Σ w_y for the mean (NaN when every sample is ignored, as in PyTorch). The
    /// gradient row of a sample is ((1 − ε)·w_y + ε/C·Σ_c w_c)·p − (1 − ε)·w_y·onehot − ε/C·w, over the
    /// same divisor; zero for an ignored sample.
    ///
    /// With PyTorch's defaults (and no label equal to ignore_index) this is `crossEntropy` itself, the
    /// same bits. Otherwise the samples are summed in order on the calling thread, in double precision.
    /// - Parameter gradient: nil, or batch×classes floats; may be `logits` itself.
    public static func crossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                    classes: Int, options: CrossEntropyOptions,
                                    gradient: UnsafeMutablePointer<Float>?) throws -> Float {
        try crossEntropy(logits: logits, labels: labels, batch: batch, classes: classes, options: options,
                         gradient: gradient, using: nil)
    }

    /// `crossEntropy(…, options:, …)` with a caller's kernels for the plain path (a network's), or nil.
    static func crossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
                             options: CrossEntropyOptions, gradient: UnsafeMutablePointer<Float>?,
                             using kernels: LossKernels?) throws -> Float {
        if try checkCrossEntropy(labels: labels, batch: batch, classes: classes, options: options) {
            return try crossEntropy(logits: logits, labels: labels, batch: batch, classes: classes, gradient: gradient,
                                    using: kernels)
        }
        return options.weight.withOptionalBuffer { weight in
            weightedCrossEntropy(logits: logits, labels: labels, batch: batch, classes: classes, weight: weight,
                                 options: options, gradient: gradient)
        }
    }

    /// Checks the sizes, the options and the labels (each a class index or ignore_index), throwing as
    /// PyTorch refuses; returns whether the plain loss computes this one (PyTorch's defaults and no
    /// label ignored).
    static func checkCrossEntropy(labels: UnsafePointer<Int32>, batch: Int, classes: Int,
                                  options: CrossEntropyOptions) throws -> Bool {
        try Checked.batch(batch, "cross_entropy batch")
        try Checked.batch(classes, "cross_entropy classes")
        _ = try Checked.multiply(batch, classes, "cross_entropy logits")
        guard options.labelSmoothing >= 0 && options.labelSmoothing <= 1 else {
            throw BNDError.invalidArgument("label_smoothing must be between 0.0 and 1.0, got \(options.labelSmoothing)")
        }
        if let weight = options.weight, weight.count != classes {
            throw BNDError.invalidArgument("cross_entropy weight has \(weight.count) values for \(classes) classes")
        }
        let ignoresSome = try checkLabels(labels, batch: batch, classes: classes, ignoreIndex: options.ignoreIndex)
        return !ignoresSome && options.weight == nil && options.labelSmoothing == 0 && options.reduction == .mean
    }

    /// The general case of `crossEntropy(…, options:, …)`, its arguments checked.
    private static func weightedCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                             classes: Int, weight: UnsafeBufferPointer<Float>?,
                                             options: CrossEntropyOptions,
                                             gradient: UnsafeMutablePointer<Float>?) -> Float {
        func w(_ c: Int) -> Double { weight.map { Double($0[c]) } ?? 1 }
        let smoothing = Double(options.labelSmoothing), perClass = smoothing / Double(classes)
        var weightSum = 0.0, divisor = 0.0
        for c in 0..<classes { weightSum += w(c) }
        for n in 0..<batch where Int(labels[n]) != options.ignoreIndex { divisor += w(Int(labels[n])) }
        let scale = options.reduction == .mean ? 1 / divisor : 1
        var total = 0.0
        for n in 0..<batch {
            let row = logits + n * classes, out = gradient.map { $0 + n * classes }
            guard Int(labels[n]) != options.ignoreIndex else {
                out?.update(repeating: 0, count: classes)
                continue
            }
            let label = Int(labels[n]), labelLogit = Double(row[label])
            var maxValue = row[0]
            for c in 1..<classes where row[c] > maxValue || row[c].isNaN { maxValue = row[c] }
            // Each logit is read before its gradient is written (the gradient may be the logits).
            var sumExp = 0.0, weightedLogits = 0.0
            for c in 0..<classes {
                let z = row[c], e = expf(z - maxValue)
                weightedLogits += w(c) * Double(z)
                sumExp += Double(e)
                out?[c] = e
            }
            let logSumExp = Double(maxValue) + log(sumExp)
            let nll = w(label) * (logSumExp - labelLogit)             // −w_y·log p_y
            let smooth = logSumExp * weightSum - weightedLogits       // −Σ_c w_c·log p_c
            total += (1 - smoothing) * nll + perClass * smooth
            if let out {
                let onSoftmax = (1 - smoothing) * w(label) + perClass * weightSum
                for c in 0..<classes {
                    let target = (c == label ? (1 - smoothing) * w(label) : 0) + perClass * w(c)
                    out[c] = Float((onSoftmax * Double(out[c]) / sumExp - target) * scale)
                }
            }
        }
        return Float(total * scale)
    }
}

extension Optional where Wrapped == [Float] {
    /// `body` with the array's buffer, or with nil.
    fileprivate func withOptionalBuffer<R>(_ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
        guard let array = self else { return try body(nil) }
        return try array.withUnsafeBufferPointer { try body($0) }
    }
}

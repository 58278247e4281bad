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

    /// Throws `.invalidArgument` at the first label outside [0, classes) that is not `ignoreIndex`;
    /// returns whether some label is `ignoreIndex` (never without one).
    @discardableResult
    static func checkLabels(_ labels: UnsafePointer<Int32>, batch: Int, classes: Int, ignoreIndex: Int? = nil) throws
        -> Bool {
        var ignoresSome = false
        for n in 0..<batch {
            let label = labels[n]
            if Int(label) == ignoreIndex { ignoresSome = true; continue }
            guard label >= 0 && Int(label) < classes else {
                throw BNDError.invalidArgument("Target \(label) is out of bounds: labels must be in [0, \(classes))"
                                               + (ignoreIndex.map { " or ignore_index \($0)" } ?? "") + " (sample \(n))")
            }
        }
        return ignoresSome
    }

    /// Mean over the batch of −log_softmax(logits)[label].
    /// - Parameters:
    ///   - logits: batch×classes values.
    ///   - labels: batch labels in [0, classes).
    ///   - gradient: if non-nil, receives (softmax − onehot)/batch (batch×classes values).
    ///
    /// Large batches run on the thread pool (`LossKernels`); the result has the same bits for every
    /// thread count.
    public static func crossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                    classes: Int, gradient: UnsafeMutablePointer<Float>?) throws -> Float {
        try crossEntropy(logits: logits, labels: labels, batch: batch, classes: classes, gradient: gradient, using: nil)
    }

    /// `crossEntropy` with a caller's kernels (a network's), or nil for kernels made for this call when
    /// it has more than one task.
    static func crossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
                             gradient: UnsafeMutablePointer<Float>?, using kernels: LossKernels?) throws -> Float {
        try Checked.batch(batch, "cross_entropy batch")
        try Checked.batch(classes, "cross_entropy classes")
        _ = try Checked.multiply(batch, classes, "cross_entropy logits")
        try checkLabels(labels, batch: batch, classes: classes)
        let call = LossKernels.CrossEntropyCall(logits: logits, labels: labels, batch: batch, classes: classes,
                                                gradient: gradient)
        if call.tasks == 1 { return Float(crossEntropySum(call, rows: 0..<batch) / Double(batch)) }
        return Float((kernels ?? LossKernels()).crossEntropyTotal(call) / Double(batch))
    }

    /// The sum over `rows` of each sample's −log_softmax(logits)[label], in row order, writing those
    /// rows' gradient when the call has one.
    static func crossEntropySum(_ call: LossKernels.CrossEntropyCall, rows: Range<Int>) -> Double {
        let classes = call.classes, invBatch = 1 / Double(call.batch)
        var total = 0.0
        for n in rows {
            let row = call.logits + n * classes
            var maxValue = row[0]
            for c in 1..<max(classes, 1) where row[c] > maxValue || row[c].isNaN { maxValue = row[c] }
            var sumExp = 0.0
            // Read before the gradient is written: the gradient may be the logits themselves (in place).
            let label = Int(call.labels[n])
            let labelLogit = row[label]
            // With a gradient to write, each exp is kept there until the sum is known (one expf per
            // logit, not two: the same values).
            let exps = call.gradient.map { $0 + n * classes }
            for c in 0..<classes {
                let e = expf(row[c] - maxValue)
                exps?[c] = e
                sumExp += Double(e)
            }
            let logSumExp = Double(maxValue) + log(sumExp)
            total += logSumExp - Double(labelLogit)
            if let out = exps {
                for c in 0..<classes {
                    let softmax = Double(out[c]) / sumExp
                    out[c] = Float((softmax - (c == label ? 1 : 0)) * invBatch)
                }
            }
        }
        return total
    }

    /// Mean over all elements of (prediction − target)²; gradient 2(prediction − target)/count. With
    /// `reduction` `.sum` (torch.nn.MSELoss(reduction='sum')): the sum, gradient 2(prediction − target).
    /// Large counts run on the thread pool (`LossKernels`), with the same bits for every thread count.
    public static func mse(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int,
                           reduction: Reduction = .mean, gradient: UnsafeMutablePointer<Float>?) throws -> Float {
        try mse(prediction: prediction, target: target, count: count, reduction: reduction, gradient: gradient,
                using: nil)
    }

    /// `mse` with a caller's kernels, or nil (see `crossEntropy(…, using:)`).
    static func mse(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int,
                    reduction: Reduction = .mean, gradient: UnsafeMutablePointer<Float>?,
                    using kernels: LossKernels?) throws -> Float {
        try Checked.elements(count, "mse element count")
        let mean = reduction == .mean
        let call = LossKernels.MSECall(prediction: prediction, target: target, count: count, gradient: gradient,
                                       gradientScale: mean ? 2 / Float(count) : 2)
        let total = call.tasks == 1 ? mseSum(call, elements: 0..<count) : (kernels ?? LossKernels()).mseTotal(call)
        return Float(mean ? total / Double(count) : total)
    }

    /// The sum of the squared differences over `elements`, in order, writing their gradient when the
    /// call has one.
    static func mseSum(_ call: LossKernels.MSECall, elements: Range<Int>) -> Double {
        var total = 0.0
        let scale = call.gradientScale
        for i in elements {
            let d = call.prediction[i] - call.target[i]
            total += Double(d) * Double(d)
            call.gradient?[i] = scale * d
        }
        return total
    }

    /// Array form of `crossEntropy`: returns the loss and the gradient.
    public static func crossEntropy(logits: [Float], labels: [Int32], classes: Int) throws -> (loss: Float, gradient: [Float]) {
        try crossEntropy(logits: logits, labels: labels, classes: classes, optionally: nil)
    }

    /// Array form of `crossEntropy(…, options:, …)`: returns the loss and the gradient.
    public static func crossEntropy(logits: [Float], labels: [Int32], classes: Int,
                                    options: CrossEntropyOptions) throws -> (loss: Float, gradient: [Float]) {
        try crossEntropy(logits: logits, labels: labels, classes: classes, optionally: options)
    }

    /// Both array forms: the plain loss (nil) or the one with options.
    private static func crossEntropy(logits: [Float], labels: [Int32], classes: Int,
                                     optionally options: CrossEntropyOptions?) throws -> (loss: Float, gradient: [Float]) {
        guard !labels.isEmpty else { throw BNDError.shape("cross_entropy needs a batch of at least 1, got 0") }
        guard classes > 0, logits.count == labels.count * classes else {
            throw BNDError.shape("cross_entropy: \(logits.count) logits do not match \(labels.count) labels × \(classes) classes")
        }
        return try withGradient(logits, labels) { l, y, g in
            guard let options else {
                return try crossEntropy(logits: l, labels: y, batch: labels.count, classes: classes, gradient: g)
            }
            return try crossEntropy(logits: l, labels: y, batch: labels.count, classes: classes, options: options,
                                    gradient: g)
        }
    }

    /// Array form of `mse`: returns the loss and the gradient.
    public static func mse(prediction: [Float], target: [Float], reduction: Reduction = .mean) throws
        -> (loss: Float, gradient: [Float]) {
        guard !prediction.isEmpty else { throw BNDError.shape("mse needs at least 1 element, got 0") }
        guard prediction.count == target.count else {
            throw BNDError.shape("mse: prediction has \(prediction.count) elements, target \(target.count)")
        }
        return try withGradient(prediction, target) { p, t, g in
            try mse(prediction: p, target: t, count: prediction.count, reduction: reduction, gradient: g)
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

/// The losses split into tasks for the thread pool: fixed chunks of samples (cross-entropy, about 32K
/// logits each) or of elements (MSE, 32K each), at most `maxTasks` of them (larger chunks beyond). Each
/// task sums its chunk in order into its own partial and writes its chunk's gradient; the partials are
/// then added in chunk order. The chunks depend on the sizes only, never on the thread count, so the
/// loss and its gradient have the same bits for every thread count; a loss of one chunk (every batch of
/// the article: 512 × 10 logits, 50 regression points) is one loop on the calling thread, summed as
/// before. Less than `minimumParallelWork` runs on the calling thread in the same chunks. The partials
/// live on the stack, so a network's losses (its training steps and evaluation use the network's
/// kernels) allocate nothing; a loss called on its own makes kernels for the call, a few objects of a
/// fixed size.
final class LossKernels {
    /// The fewest logits per cross-entropy task (whole samples: at least one), the fewest elements per
    /// MSE task, and the most tasks one loss splits into.
    static let chunkLogits = 1 << 15
    static let chunkElements = 1 << 15
    static let maxTasks = 64

    // (`tasks(_:_:)`, ThreadPool.swift: how many chunks of a size cover a count.)
    static func samplesPerTask(batch: Int, classes: Int) -> Int {
        max(1, chunkLogits / classes, tasks(batch, maxTasks))
    }
    static func elementsPerTask(count: Int) -> Int { max(chunkElements, tasks(count, maxTasks)) }
    static func crossEntropyTasks(batch: Int, classes: Int) -> Int {
        tasks(batch, samplesPerTask(batch: batch, classes: classes))
    }
    static func mseTasks(count: Int) -> Int { tasks(count, elementsPerTask(count: count)) }
    /// The operations a call costs (a logit: the exp, the log's share, the gradient, about 24; an MSE
    /// element about 4): the estimate that decides whether its tasks go to the pool.
    static func crossEntropyWork(batch: Int, classes: Int) -> Int { batch &* classes &* 24 }
    static func mseWork(count: Int) -> Int { count &* 4 }

    struct CrossEntropyCall {
        let logits: UnsafePointer<Float>
        let labels: UnsafePointer<Int32>
        let batch: Int
        let classes: Int
        let gradient: UnsafeMutablePointer<Float>?
        var samplesPerTask: Int { LossKernels.samplesPerTask(batch: batch, classes: classes) }
        var tasks: Int { LossKernels.crossEntropyTasks(batch: batch, classes: classes) }
    }

    struct MSECall {
        let prediction: UnsafePointer<Float>
        let target: UnsafePointer<Float>
        let count: Int
        let gradient: UnsafeMutablePointer<Float>?
        /// d loss / d difference = scale · difference: 2 / count (mean) or 2 (sum).
        let gradientScale: Float
        var elementsPerTask: Int { LossKernels.elementsPerTask(count: count) }
        var tasks: Int { LossKernels.mseTasks(count: count) }
    }

    private let crossEntropyKernel = ParallelKernel<(CrossEntropyCall, UnsafeMutablePointer<Double>)> { arguments, task in
        let (call, partials) = arguments
        let chunk = call.samplesPerTask, first = task * chunk
        partials[task] = Loss.crossEntropySum(call, rows: first..<min(call.batch, first + chunk))
    }

    private let mseKernel = ParallelKernel<(MSECall, UnsafeMutablePointer<Double>)> { arguments, task in
        let (call, partials) = arguments
        let chunk = call.elementsPerTask, first = task * chunk
        partials[task] = Loss.mseSum(call, elements: first..<min(call.count, first + chunk))
    }

    /// The sum of every sample's loss (the chunks' partials in order); writes the gradient if asked.
    func crossEntropyTotal(_ call: CrossEntropyCall) -> Double {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: LossKernels.maxTasks) { partials in
            crossEntropyKernel.run(call.tasks, (call, partials.baseAddress!),
                                   work: LossKernels.crossEntropyWork(batch: call.batch, classes: call.classes))
            return partials.prefix(call.tasks).reduce(0, +)
        }
    }

    /// The sum of the squared differences (the chunks' partials in order); writes the gradient if asked.
    func mseTotal(_ call: MSECall) -> Double {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: LossKernels.maxTasks) { partials in
            mseKernel.run(call.tasks, (call, partials.baseAddress!), work: LossKernels.mseWork(count: call.count))
            return partials.prefix(call.tasks).reduce(0, +)
        }
    }
}

// MARK: - For tests (SPI, not API)

extension Loss {
    /// The tasks a cross-entropy of `batch` × `classes` logits splits into, and whether they go to the
    /// thread pool (more than one task and enough work), for tests that must exercise that path.
    @_spi(Testing) public static func crossEntropyTasks(batch: Int, classes: Int) -> (tasks: Int, parallel: Bool) {
        let tasks = LossKernels.crossEntropyTasks(batch: batch, classes: classes)
        let work = LossKernels.crossEntropyWork(batch: batch, classes: classes)
        return (tasks, ParallelKernel<Int>.offersPool(tasks: tasks, work: work))
    }

    /// The same for an MSE of `count` elements.
    @_spi(Testing) public static func mseTasks(count: Int) -> (tasks: Int, parallel: Bool) {
        let tasks = LossKernels.mseTasks(count: count)
        return (tasks, ParallelKernel<Int>.offersPool(tasks: tasks, work: LossKernels.mseWork(count: count)))
    }
}

/// y = x·Wᵀ + b, as torch.nn.Linear. Weight (out, in), bias (out).
/// Default init: W and b ~ U(-1/√in, 1/√in) (kaiming_uniform with a=√5, as PyTorch).
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter

    /// - Parameter inputShape: one sample's shape, [in_features].
    public init(inputShape: [Int], outFeatures: Int, random: inout SeededRandom) throws {
        guard inputShape.count == 1 else {
            throw BNDError.shape("Linear needs a flat input, got \(inputShape): add a Flatten first")
        }
        let inFeatures = inputShape[0]
        guard inFeatures > 0, outFeatures > 0 else {
            throw BNDError.invalidArgument("Linear needs positive sizes, got in=\(inFeatures) out=\(outFeatures)")
        }
        _ = try Checked.blasInt(outFeatures, inFeatures, "Linear weight")
        try BLAS.prepare()
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try Parameter(shape: [outFeatures, inFeatures])
        bias = try Parameter(shape: [outFeatures])
        try super.init("Linear", inputShape: inputShape, outputShape: [outFeatures])
        reset(random: &random)
    }

    public override var state: [StateEntry] { [.parameter("weight", weight), .parameter("bias", bias)] }

    public override func reset(random: inout SeededRandom) {
        let bound = 1 / Float(inFeatures).squareRoot()
        fillUniform(weight.value, bound: bound, random: &random)
        fillUniform(bias.value, bound: bound, random: &random)
    }

    /// Rows of the batch per task, and input columns per task of the weight gradient: fixed sizes, so
    /// the same products run whatever the thread count (see `ThreadPool`). Each task packs the whole
    /// weight for its GEMM: 128 rows halve that repacking against 64 (inference of the article's MLP
    /// in batches of 1000: ~5% faster, measured) and still give four tasks to a batch of 512.
    static let rowsPerTask = 128
    static let columnsPerTask = 256

    /// Input columns per weight-gradient task: at most `columnsPerTask`, spread evenly (784 columns: four
    /// tasks of 196, not three of 256 and one of 16, which left a thread idle). Depends on the layer's
    /// size only.
    private var weightColumnsPerTask: Int { tasks(inFeatures, tasks(inFeatures, Linear.columnsPerTask)) }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        _ = try Checked.blasInt(batch, max(inFeatures, outFeatures), "Linear batch")
        try output.resize(batch * outFeatures)
        forwardKernel.run(tasks(batch, Linear.rowsPerTask), (x, batch), work: batch * inFeatures * outFeatures)
        return UnsafePointer(output.pointer)
    }

    /// Task `task` of the forward pass: rows [128·task, 128·task + 128) of y = x·Wᵀ + b.
    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int)> { [unowned(unsafe) self] arguments, task in
        let (x, batch) = arguments
        let (inF, outF) = (self.inFeatures, self.outFeatures)
        let first = task * Linear.rowsPerTask, rows = min(Linear.rowsPerTask, batch - first)
        let y = self.output.pointer + first * outF
        // Start from the bias in every row, then y += x·Wᵀ.
        for n in 0..<rows { (y + n * outF).update(from: self.bias.value.pointer, count: outF) }
        BLAS.sgemm(transB: true, m: rows, n: outF, k: inF, a: x + first * inF, lda: inF, b: self.weight.value.pointer,
                   ldb: inF, beta: 1, c: y, ldc: outF)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        if needInputGradient { try gradInput.resize(batch * inFeatures) }
        let weightTasks = tasks(inFeatures, weightColumnsPerTask)
        let rowTasks = needInputGradient ? tasks(batch, Linear.rowsPerTask) : 0
        backwardKernel.run(weightTasks + rowTasks, (dy, x, batch, weightTasks), work: 2 * batch * inFeatures * outFeatures)
        return needInputGradient ? UnsafePointer(gradInput.pointer) : nil
    }

    /// Task `task` of the backward pass. Tasks [0, weightTasks): dW[:, columns] += dyᵀ·x[:, columns] (the
    /// first also sums the bias gradient over the batch); then one task per block of rows of dx = dy·W.
    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, Int, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (dy, x, batch, weightTasks) = arguments
        let (inF, outF) = (self.inFeatures, self.outFeatures)
        if task < weightTasks {
            let perTask = self.weightColumnsPerTask
            let first = task * perTask, columns = min(perTask, inF - first)
            BLAS.sgemm(transA: true, m: outF, n: columns, k: batch, a: dy, lda: outF, b: x + first, ldb: inF, beta: 1,
                       c: self.weight.gradient.pointer + first, ldc: inF)
            if task == 0 { self.accumulateBiasGradient(dy, batch: batch) }
        } else {
            let first = (task - weightTasks) * Linear.rowsPerTask, rows = min(Linear.rowsPerTask, batch - first)
            BLAS.sgemm(m: rows, n: inF, k: outF, a: dy + first * outF, lda: outF, b: self.weight.value.pointer,
                       ldb: inF, beta: 0, c: self.gradInput.pointer + first * inF, ldc: inF)
        }
    }

    /// db += Σ_n dy[n].
    private func accumulateBiasGradient(_ dy: UnsafePointer<Float>, batch: Int) {
        let db = bias.gradient.pointer
        for n in 0..<batch {
            let row = dy + n * outFeatures
            for o in 0..<outFeatures { db[o] += row[o] }
        }
    }
}

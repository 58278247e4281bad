/// 2-D convolution, as torch.nn.Conv2d (square kernel, stride, zero padding; no dilation or groups).
///
/// Lowered to GEMM through im2col: each sample's patches form a (C·k·k)×(OH·OW) matrix, and
/// y = W·cols + b with W viewed as out_c×(C·k·k). The patch matrices are kept for backward.
/// Default init: W and b ~ U(-1/√fan_in, 1/√fan_in), fan_in = in_c·k·k (as PyTorch).
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter

    private let height: Int, width: Int, outHeight: Int, outWidth: Int
    /// Rows of the patch matrix: C·k·k.
    private let patchSize: Int
    private let columns = FloatBuffer()

    /// - Parameter inputShape: one sample's shape [C, H, W].
    public init(inputShape shape: [Int], outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                random: inout SeededRandom) throws {
        guard shape.count == 3 else {
            throw BNDError.shape("Conv2d expects a sample shape [C, H, W], got \(shape)")
        }
        guard shape.allSatisfy({ $0 > 0 }) else { throw BNDError.shape("Conv2d input shape \(shape) has an empty dimension") }
        guard outChannels > 0 else { throw BNDError.invalidArgument("Conv2d out_channels must be positive, got \(outChannels)") }
        guard kernelSize > 0 else { throw BNDError.invalidArgument("Conv2d kernel_size must be positive, got \(kernelSize)") }
        guard stride > 0 else { throw BNDError.invalidArgument("Conv2d stride must be positive, got \(stride)") }
        guard padding >= 0 else { throw BNDError.invalidArgument("Conv2d padding must be non-negative, got \(padding)") }
        (inChannels, height, width) = (shape[0], shape[1], shape[2])
        guard padding <= 1 << 20, kernelSize <= 1 << 20 else {
            throw BNDError.invalidArgument("Conv2d kernel_size \(kernelSize) or padding \(padding) is unreasonably large")
        }
        let (ph, o1) = height.addingReportingOverflow(2 * padding)
        let (pw, o2) = width.addingReportingOverflow(2 * padding)
        guard !o1, !o2, ph >= kernelSize, pw >= kernelSize else {
            throw BNDError.shape("Conv2d kernel \(kernelSize) is larger than the padded input \(shape) (padding \(padding))")
        }
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        outHeight = (ph - kernelSize) / stride + 1
        outWidth = (pw - kernelSize) / stride + 1
        patchSize = try Checked.product([inChannels, kernelSize, kernelSize], "Conv2d kernel")
        _ = try Checked.blasInt(outChannels, patchSize, "Conv2d weight")
        try BLAS.prepare()
        _ = try Checked.blasInt(patchSize, outHeight * outWidth, "Conv2d patch matrix")
        weight = try Parameter(shape: [outChannels, inChannels, kernelSize, kernelSize])
        bias = try Parameter(shape: [outChannels])
        try super.init("Conv2d", inputShape: shape, outputShape: [outChannels, outHeight, outWidth])
        reset(random: &random)
    }

    public override var state: [StateEntry] { [.parameter("weight", weight), .parameter("bias", bias)] }

    public override func reset(random: inout SeededRandom) {
        let bound = 1 / Float(patchSize).squareRoot()
        fillUniform(weight.value, bound: bound, random: &random)
        fillUniform(bias.value, bound: bound, random: &random)
    }

    private var planeSize: Int { outHeight * outWidth }

    /// Writes sample `x`'s patches into `cols` ((C·k·k) × (OH·OW), zero outside the image).
    private func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>) {
        let k = kernelSize, plane = planeSize
        for c in 0..<inChannels {
            let image = x + c * height * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = cols + ((c * k + ky) * k + kx) * plane
                    for oy in 0..<outHeight {
                        let iy = oy * stride - padding + ky
                        let dst = row + oy * outWidth
                        guard iy >= 0 && iy < height else {
                            dst.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let src = image + iy * width
                        for ox in 0..<outWidth {
                            let ix = ox * stride - padding + kx
                            dst[ox] = (ix >= 0 && ix < width) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Adds the patch gradients in `cols` back onto sample gradient `dx` (the adjoint of im2col).
    private func col2im(_ cols: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        let k = kernelSize, plane = planeSize
        dx.update(repeating: 0, count: inChannels * height * width)
        for c in 0..<inChannels {
            let image = dx + c * height * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = cols + ((c * k + ky) * k + kx) * plane
                    for oy in 0..<outHeight {
                        let iy = oy * stride - padding + ky
                        guard iy >= 0 && iy < height else { continue }
                        let dst = image + iy * width, src = row + oy * outWidth
                        for ox in 0..<outWidth {
                            let ix = ox * stride - padding + kx
                            if ix >= 0 && ix < width { dst[ix] += src[ox] }
                        }
                    }
                }
            }
        }
    }

    /// Samples per task: a fixed size, so the same products and the same partial sums are computed
    /// whatever the thread count (see `ThreadPool`).
    static let samplesPerTask = 8

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        try output.resize(batch * outputCount)
        try columns.resize(Checked.multiply(Checked.multiply(batch, patchSize, "Conv2d patch matrices"), planeSize,
                                            "Conv2d patch matrices"))
        forwardKernel.run(tasks(batch, Conv2d.samplesPerTask), (x, batch))
        return UnsafePointer(output.pointer)
    }

    /// Task `task` of the forward pass: for each of its samples, the patch matrix and y_n = W·cols_n + b.
    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int)> { [unowned self] arguments, task in
        let (x, batch) = arguments
        let plane = self.planeSize, patch = self.patchSize, outC = self.outChannels
        let w = self.weight.value.pointer, b = self.bias.value.pointer
        let first = task * Conv2d.samplesPerTask
        for n in first..<min(first + Conv2d.samplesPerTask, batch) {
            let cols = self.columns.pointer + n * patch * plane
            self.im2col(x + n * self.inputCount, cols)
            let yn = self.output.pointer + n * self.outputCount
            for o in 0..<outC { (yn + o * plane).update(repeating: b[o], count: plane) }
            BLAS.sgemm(m: outC, n: plane, k: patch, a: w, lda: patch, b: cols, ldb: plane, beta: 1, c: yn, ldc: plane)
        }
    }

    /// Per task: its partial weight and bias gradients, then (for the input gradient) its patch scratch.
    private let taskScratch = FloatBuffer()

    /// Floats of `taskScratch` per task: the partial dW and db, then the patch-gradient scratch.
    private func scratchPerTask(needInputGradient: Bool) -> Int {
        outChannels * patchSize + outChannels + (needInputGradient ? patchSize * planeSize : 0)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        let taskCount = tasks(batch, Conv2d.samplesPerTask)
        let perTask = scratchPerTask(needInputGradient: needInputGradient)
        try taskScratch.resize(Checked.multiply(taskCount, perTask, "Conv2d backward scratch"))
        if needInputGradient { try gradInput.resize(batch * inputCount) }
        backwardKernel.run(taskCount, (dy, batch, needInputGradient))
        // The partial sums, added in task order: the same order for any thread count.
        let outC = outChannels, weights = outChannels * patchSize
        let dw = weight.gradient.pointer, db = bias.gradient.pointer
        for task in 0..<taskCount {
            let dwPartial = taskScratch.pointer + task * perTask, dbPartial = dwPartial + weights
            for i in 0..<weights { dw[i] += dwPartial[i] }
            for o in 0..<outC { db[o] += dbPartial[o] }
        }
        return needInputGradient ? UnsafePointer(gradInput.pointer) : nil
    }

    /// Task `task` of the backward pass: for its samples, the partial dW and db, and dx through col2im.
    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, Int, Bool)> { [unowned self] arguments, task in
        let (dy, batch, needInputGradient) = arguments
        let plane = self.planeSize, patch = self.patchSize, outC = self.outChannels
        let dwPartial = self.taskScratch.pointer + task * self.scratchPerTask(needInputGradient: needInputGradient)
        let dbPartial = dwPartial + outC * patch, gradCols = dbPartial + outC
        dwPartial.update(repeating: 0, count: outC * patch + outC)
        let first = task * Conv2d.samplesPerTask
        for n in first..<min(first + Conv2d.samplesPerTask, batch) {
            let dyn = dy + n * self.outputCount
            // dW += dy_n · cols_nᵀ ; db += Σ dy_n
            BLAS.sgemm(transB: true, m: outC, n: patch, k: plane, a: dyn, lda: plane,
                       b: self.columns.pointer + n * patch * plane, ldb: plane, beta: 1, c: dwPartial, ldc: patch)
            for o in 0..<outC {
                let row = dyn + o * plane
                var sum: Float = 0
                for i in 0..<plane { sum += row[i] }
                dbPartial[o] += sum
            }
            guard needInputGradient else { continue }
            // dcols = Wᵀ · dy_n, then scatter back to the image.
            BLAS.sgemm(transA: true, m: patch, n: plane, k: outC, a: self.weight.value.pointer, lda: patch, b: dyn,
                       ldb: plane, beta: 0, c: gradCols, ldc: plane)
            self.col2im(gradCols, self.gradInput.pointer + n * self.inputCount)
        }
    }
}

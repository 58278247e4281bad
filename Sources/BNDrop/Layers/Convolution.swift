import BNDropKernels

/// 2-D convolution, as torch.nn.Conv2d (square kernel, stride, zero padding, dilation, groups).
///
/// Two lowerings, chosen per layer from its shape (`Lowering.automatic`):
/// - im2col + GEMM: each sample's patches form a (C·k·k)×(OH·OW) matrix, and y = W·cols + b with W
///   viewed as out_c×(C/groups·k·k), one GEMM per group of channels (group g's output channels take
///   the matrix's rows of its input channels, which are contiguous); a group of samples shares one
///   matrix and one GEMM (see `samplesPerTask`), and backward builds the matrix again instead of
///   keeping it.
/// - direct: the C kernels of convolution.c (bndk_conv_*), vectorised along the output rows, for layers
///   with few weights per output position (the article's CNN: 75 and 162 weights), where the patch
///   matrix is mostly copies of the input and each GEMM is small; without dilation or groups only.
/// Both split the batch into the same fixed groups of samples and add the groups' weight gradients in
/// group order, so either gives the same bits for any thread count.
/// Default init: W and b ~ U(-1/√fan_in, 1/√fan_in), fan_in = in_c/groups·k·k (as PyTorch).
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    /// The distance between a kernel's taps (1: adjacent), and the channel groups (each group's output
    /// channels see only its input channels; weight [out_c, in_c/groups, k, k]).
    public let dilation: Int, groups: Int
    public let weight: Parameter
    public let bias: Parameter

    private let height: Int, width: Int, outHeight: Int, outWidth: Int
    /// Weights per output channel (a row of W, one group's rows of the patch matrix): C/groups·k·k.
    private let patchSize: Int
    /// Rows of the patch matrix: C·k·k.
    private let columnRows: Int

    /// How the layer computes (for tests and measurements: the results agree to rounding).
    @_spi(Testing) public enum Lowering: Equatable {
        /// The faster of the two for the layer's shape (`Conv2d.directIsFaster`).
        case automatic
        case im2col
        case direct
    }

    /// The lowering to use; `.automatic` by default.
    @_spi(Testing) public var lowering = Lowering.automatic

    /// Whether the layer computes with the direct kernels now.
    @_spi(Testing) public var usesDirectKernels: Bool { usesDirect }

    /// Whether this forward and backward use the direct kernels.
    private var usesDirect: Bool {
        switch lowering {
        case .automatic: return prefersDirect
        case .im2col: return false
        case .direct: return directScratch > 0  // (im2col when the shape is too large for the kernels)
        }
    }

    /// The direct kernels' shape, and their scratch per thread (floats).
    private let directShape: bndk_conv_shape
    private let directScratch: Int
    /// Direct when the kernels measured faster than im2col + GEMM (see `Conv2d.directIsFaster`).
    private let prefersDirect: Bool

    /// - Parameter inputShape: one sample's shape [C, H, W].
    public init(inputShape shape: [Int], outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, random: inout SeededRandom) throws {
        guard shape.count == 3 else {
            throw BNDError.shape("Conv2d expects a sample shape [C, H, W], got \(shape)")
        }
        guard shape.allSatisfy({ $0 > 0 }) else { throw BNDError.shape("Conv2d input shape \(shape) has an empty dimension") }
        guard outChannels > 0 else { throw BNDError.invalidArgument("Conv2d out_channels must be positive, got \(outChannels)") }
        guard kernelSize > 0 else { throw BNDError.invalidArgument("Conv2d kernel_size must be positive, got \(kernelSize)") }
        guard stride > 0 else { throw BNDError.invalidArgument("Conv2d stride must be positive, got \(stride)") }
        guard padding >= 0 else { throw BNDError.invalidArgument("Conv2d padding must be non-negative, got \(padding)") }
        guard dilation > 0 else { throw BNDError.invalidArgument("Conv2d dilation must be positive, got \(dilation)") }
        guard groups > 0 else { throw BNDError.invalidArgument("Conv2d groups must be positive, got \(groups)") }
        (inChannels, height, width) = (shape[0], shape[1], shape[2])
        guard inChannels % groups == 0, outChannels % groups == 0 else {
            throw BNDError.invalidArgument("Conv2d in_channels (\(inChannels)) and out_channels (\(outChannels)) must "
                                           + "both be divisible by groups (\(groups))")
        }
        guard padding <= 1 << 20, kernelSize <= 1 << 20, dilation <= 1 << 20 else {
            throw BNDError.invalidArgument("Conv2d kernel_size \(kernelSize), padding \(padding) or dilation \(dilation) "
                                           + "is unreasonably large")
        }
        // The taps span dilation·(k − 1) + 1 cells (no overflow: both factors are at most 2^20).
        let span = dilation * (kernelSize - 1) + 1
        let (ph, o1) = height.addingReportingOverflow(2 * padding)
        let (pw, o2) = width.addingReportingOverflow(2 * padding)
        guard !o1, !o2, ph >= span, pw >= span else {
            throw BNDError.shape("Conv2d kernel \(kernelSize)"
                                 + (dilation > 1 ? " with dilation \(dilation) (\(span) cells)" : "")
                                 + " is larger than the padded input \(shape) (padding \(padding))")
        }
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        (self.dilation, self.groups) = (dilation, groups)
        outHeight = (ph - span) / stride + 1
        outWidth = (pw - span) / stride + 1
        patchSize = try Checked.product([inChannels / groups, kernelSize, kernelSize], "Conv2d kernel")
        columnRows = patchSize * groups
        _ = try Checked.blasInt(outChannels, patchSize, "Conv2d weight")
        try BLAS.prepare()
        _ = try Checked.blasInt(columnRows, outHeight * outWidth, "Conv2d patch matrix")
        weight = try Parameter(shape: [outChannels, inChannels / groups, kernelSize, kernelSize])
        bias = try Parameter(shape: [outChannels])
        directShape = bndk_conv_shape(channels: Int64(inChannels), height: Int64(height), width: Int64(width),
                                      out_channels: Int64(outChannels), kernel: Int64(kernelSize), stride: Int64(stride),
                                      padding: Int64(padding))
        // The direct kernels index their phase planes with 32-bit offsets.
        // (Fewer than C·(Hp + s)·(Wp + s) floats: s·s phase planes per channel, ⌈Hp/s⌉ × ⌈Wp/s⌉ each.)
        let (hs, o3) = ph.addingReportingOverflow(stride), (ws, o4) = pw.addingReportingOverflow(stride)
        let phasePlanes = o3 || o4 ? Int.max : (try? Checked.product([inChannels, hs, ws], "")) ?? .max
        let directFits = phasePlanes < 1 << 30 && dilation == 1 && groups == 1
        directScratch = directFits ? Int(withUnsafePointer(to: directShape) { bndk_conv_scratch_floats($0, Int64(Conv2d.samplesPerTask)) }) : 0
        prefersDirect = directFits && Conv2d.directIsFaster(inChannels: inChannels, outChannels: outChannels,
                                                           kernelSize: kernelSize, outputPlane: outHeight * outWidth)
        try super.init("Conv2d", inputShape: shape, outputShape: [outChannels, outHeight, outWidth])
        reset(random: &random)
    }

    /// Whether the direct kernels beat im2col + GEMM for this shape. Measured (batch 512, forward plus
    /// backward with an input gradient, one thread, AVX-512): direct was 1.3-7x faster from the article's
    /// layers up to 128 → 128 channels on 14×14, strides 1 and 2, kernels 1 to 5, planes from 1×1 to
    /// 28×28; even at 128 → 128 on 7×7 (3000 weights per output position); and 1.8x slower at 256 → 256
    /// on 4×4 (37000 per position), where the GEMM is large and the output plane too small for the
    /// vector blocks. Hence at most 1024 weights per output position, and at most 128·128·3·3 weights
    /// (the largest layer measured: beyond it GEMM's efficiency grows, unmeasured).
    static func directIsFaster(inChannels: Int, outChannels: Int, kernelSize: Int, outputPlane: Int) -> Bool {
        let (weights, overflow) = outChannels.multipliedReportingOverflow(by: inChannels * kernelSize * kernelSize)
        let (perPlane, overflow2) = outputPlane.multipliedReportingOverflow(by: 1024)
        return !overflow && (overflow2 || weights <= perPlane) && weights <= 128 * 128 * 3 * 3
    }

    public override var state: [StateEntry] { [.parameter("weight", weight), .parameter("bias", bias)] }

    public override func reset(random: inout SeededRandom) {
        let bound = 1 / Float(patchSize).squareRoot()
        fillUniform(weight.value, bound: bound, random: &random)
        fillUniform(bias.value, bound: bound, random: &random)
    }

    private var planeSize: Int { outHeight * outWidth }

    /// Writes sample `x`'s patches into the columns at `cols`: row r (one of the C·k·k kernel taps) holds
    /// the tap's value at every output position, zero outside the image; rows are `rowStride` apart, so
    /// several samples can sit side by side in one patch matrix.
    private func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>, rowStride: Int) {
        let k = kernelSize
        for c in 0..<inChannels {
            let image = x + c * height * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = cols + ((c * k + ky) * k + kx) * rowStride
                    for oy in 0..<outHeight {
                        let iy = oy * stride - padding + ky * dilation
                        let dst = row + oy * outWidth
                        guard iy >= 0 && iy < height else {
                            dst.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let src = image + iy * width
                        if stride == 1 && padding == 0 {
                            copyRow(from: src + kx * dilation, to: dst, count: outWidth)
                            continue
                        }
                        for ox in 0..<outWidth {
                            let ix = ox * stride - padding + kx * dilation
                            dst[ox] = (ix >= 0 && ix < width) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Sets sample gradient `dx` to the patch gradients at `cols` added back onto the image (the adjoint
    /// of im2col, same layout).
    private func col2im(_ cols: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rowStride: Int) {
        let k = kernelSize
        dx.update(repeating: 0, count: inChannels * height * width)
        for c in 0..<inChannels {
            let image = dx + c * height * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = cols + ((c * k + ky) * k + kx) * rowStride
                    for oy in 0..<outHeight {
                        let iy = oy * stride - padding + ky * dilation
                        guard iy >= 0 && iy < height else { continue }
                        let dst = image + iy * width, src = row + oy * outWidth
                        if stride == 1 && padding == 0 {
                            addRow(src, to: dst + kx * dilation, count: outWidth)
                            continue
                        }
                        for ox in 0..<outWidth {
                            let ix = ox * stride - padding + kx * dilation
                            if ix >= 0 && ix < width { dst[ix] += src[ox] }
                        }
                    }
                }
            }
        }
    }

    /// Samples per task. The samples of a task share one patch matrix (C·k·k rows, samples × OH·OW
    /// columns), so each pass is one GEMM per task instead of one per sample; the matrix is built in the
    /// running thread's scratch, small enough to stay in its cache, and built again in backward rather
    /// than kept (writing and re-reading every patch of the batch costs more memory traffic than it
    /// saves). The size is fixed, so the same products and partial sums are computed whatever the
    /// thread count (see `ThreadPool`).
    static let samplesPerTask = 8

    /// Task `task`'s first sample and sample count for `batch`.
    private func samples(of task: Int, batch: Int) -> (first: Int, count: Int) {
        let first = task * Conv2d.samplesPerTask
        return (first, min(Conv2d.samplesPerTask, batch - first))
    }

    /// Per thread: a patch matrix, an out_c × (samples·OH·OW) product (output or output gradient), and
    /// in backward with an input gradient the patch gradients.
    private let threadScratch = FloatBuffer()
    /// Per task of backward: its partial weight and bias gradients, added in task order afterwards.
    private let taskPartials = FloatBuffer()

    private var groupSize: Int { Conv2d.samplesPerTask * planeSize }

    /// Floats of `threadScratch` per thread.
    private func scratchPerThread(needInputGradient: Bool) -> Int {
        if usesDirect { return directScratch }
        return (columnRows + outChannels + (needInputGradient ? columnRows : 0)) * groupSize
    }

    /// Sizes the scratch for the pool's thread count now; returns that count and the floats per thread.
    private func prepareScratch(needInputGradient: Bool) throws -> (threads: Int, perThread: Int) {
        let threads = ThreadPool.shared.threadCount
        let perThread = scratchPerThread(needInputGradient: needInputGradient)
        try threadScratch.resize(Checked.multiply(threads, perThread, "Conv2d scratch"))
        return (threads, perThread)
    }

    /// Writes the patch matrix of task `task`'s samples (row length: its samples × OH·OW) at `cols`.
    private func buildColumns(_ x: UnsafePointer<Float>, task: Int, batch: Int, into cols: UnsafeMutablePointer<Float>) {
        let (first, count) = samples(of: task, batch: batch)
        for j in 0..<count {
            im2col(x + (first + j) * inputCount, cols + j * planeSize, rowStride: count * planeSize)
        }
    }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        _ = try prepareForward(x, batch: batch)
        let (threads, perThread) = forwardScratch
        if usesDirect {
            directForwardKernel.run(tasks(batch, Conv2d.samplesPerTask), (x, batch, perThread),
                                    work: batch * outputCount * patchSize, threads: threads)
            return UnsafePointer(output.pointer)
        }
        forwardKernel.run(tasks(batch, Conv2d.samplesPerTask), (x, batch, perThread),
                          work: batch * outputCount * patchSize, threads: threads)
        return UnsafePointer(output.pointer)
    }

    /// Task `task` of the forward pass: its samples' patch matrix, Y = W·cols, then y_n = Y's columns of
    /// sample n + b.
    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int, Int)>(perThread: {
        [unowned(unsafe) self] arguments, task, thread in
        let (x, batch, perThread) = arguments
        let plane = self.planeSize, patch = self.patchSize, outC = self.outChannels
        let (first, count) = self.samples(of: task, batch: batch)
        let rowLength = count * plane, groupOut = outC / self.groups
        let cols = self.threadScratch.pointer + thread * perThread, product = cols + self.columnRows * self.groupSize
        self.buildColumns(x, task: task, batch: batch, into: cols)
        for g in 0..<self.groups {
            BLAS.sgemm(m: groupOut, n: rowLength, k: patch, a: self.weight.value.pointer + g * groupOut * patch, lda: patch,
                       b: cols + g * patch * rowLength, ldb: rowLength, beta: 0, c: product + g * groupOut * rowLength,
                       ldc: rowLength)
        }
        let b = self.bias.value.pointer, y = self.output.pointer
        for j in 0..<count {
            let yn = y + (first + j) * self.outputCount
            for o in 0..<outC {
                let src = product + o * rowLength + j * plane, dst = yn + o * plane, bias = b[o]
                for p in 0..<plane { dst[p] = src[p] + bias }
            }
        }
    })

    // By blocks of samples (see `Layer.forwardsBySample`), with the direct kernels: each sample's output
    // is computed from that sample alone, whatever samples share a call (the im2col path's products
    // are OpenBLAS's, whose sums could depend on how many samples one call takes: it stays layer by
    // layer). In the article's CNN the whole eval pass then runs as one region, each block of samples
    // through every layer while its values are in cache.
    override var forwardsBySample: Bool { usesDirect }
    override var samplesIndependentOfBlocks: Bool { true }
    override var forwardWorkPerSample: Int { outputCount * patchSize }
    /// The threads and floats per thread of scratch `prepareForward` sized (for either forward).
    private var forwardScratch = (threads: 0, perThread: 0)
    override var samplesThreadLimit: Int { forwardScratch.threads }

    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        try output.resize(batch * outputCount)
        forwardScratch = try prepareScratch(needInputGradient: false)
        return UnsafePointer(output.pointer)
    }

    override func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int, thread: Int) {
        guard thread < forwardScratch.threads else { return }  // (the network never runs more: samplesThreadLimit)
        let scratch = threadScratch.pointer + thread * forwardScratch.perThread
        withUnsafePointer(to: directShape) { shape in
            // At most samplesPerTask samples per call: the scratch holds that many.
            for start in Swift.stride(from: first, to: first + count, by: Conv2d.samplesPerTask) {
                bndk_conv_forward(shape, x + start * inputCount, Int64(min(Conv2d.samplesPerTask, first + count - start)),
                                  weight.value.pointer, bias.value.pointer, output.pointer + start * outputCount, scratch)
            }
        }
    }

    /// Task `task` of the direct forward pass: its samples through `bndk_conv_forward`.
    private lazy var directForwardKernel = ParallelKernel<(UnsafePointer<Float>, Int, Int)>(perThread: {
        [unowned(unsafe) self] arguments, task, thread in
        let (x, batch, perThread) = arguments
        let (first, count) = self.samples(of: task, batch: batch)
        withUnsafePointer(to: self.directShape) { shape in
            bndk_conv_forward(shape, x + first * self.inputCount, Int64(count), self.weight.value.pointer,
                              self.bias.value.pointer, self.output.pointer + first * self.outputCount,
                              self.threadScratch.pointer + thread * perThread)
        }
    })

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        try backward(.given(dy), input: x, batch: batch, needInputGradient: needInputGradient)
    }

    // MARK: Backward through the pooling after

    /// With the direct kernels, an AvgPool2d(2) right after this layer (the ReLU between them folded into
    /// it, or none: the article's CNN, twice) hands its output gradient to this layer's backward, which
    /// makes its own output gradient from it as the kernels read it (`bndk_conv_backward_pooled`, the
    /// same bits): the pooling's input gradient, batch·O·OH·OW floats, is neither written nor read back.
    override func takesGradient(through pool: AvgPool2d) -> Bool {
        usesDirect && pool.isHalving && pool.lastForwardInput == UnsafePointer(output.pointer)
            && pool.geometry.channels == outChannels && pool.geometry.height == outHeight
            && pool.geometry.width == outWidth
    }

    override func computeBackward(through pool: AvgPool2d, _ poolGradient: UnsafePointer<Float>,
                                  input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        let reluInput = pool.foldsReLU ? UnsafePointer(output.pointer) : nil
        return try backward(.pooled(bndk_pooled_gradient(pooled: poolGradient, relu_input: reluInput)), input: x,
                            batch: batch, needInputGradient: needInputGradient)
    }

    /// The output gradient a backward starts from: as given, or the gradient of the pooling after this
    /// layer (the direct kernels only).
    private enum OutputGradient {
        case given(UnsafePointer<Float>)
        case pooled(bndk_pooled_gradient)
    }

    private func backward(_ dy: OutputGradient, input x: UnsafePointer<Float>, batch: Int,
                          needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        let taskCount = tasks(batch, Conv2d.samplesPerTask)
        let weights = outChannels * patchSize, partialSize = weights + outChannels
        try taskPartials.resize(Checked.multiply(taskCount, partialSize, "Conv2d backward partial sums"))
        let (threads, perThread) = try prepareScratch(needInputGradient: needInputGradient)
        if needInputGradient { try gradInput.resize(batch * inputCount) }
        let work = (needInputGradient ? 2 : 1) * batch * outputCount * patchSize
        if usesDirect {
            directBackwardKernel.run(taskCount, (dy, x, batch, needInputGradient, perThread), work: work, threads: threads)
        } else if case .given(let given) = dy {
            backwardKernel.run(taskCount, (given, x, batch, needInputGradient, perThread), work: work, threads: threads)
        } else {
            throw BNDError.internalError("Conv2d's im2col backward cannot take the gradient of a pooling")
        }
        // The partial sums, added in task order: the same order for any thread count.
        let dw = weight.gradient.pointer, db = bias.gradient.pointer
        for task in 0..<taskCount {
            let dwPartial = taskPartials.pointer + task * partialSize, dbPartial = dwPartial + weights
            for i in 0..<weights { dw[i] += dwPartial[i] }
            for o in 0..<outChannels { db[o] += dbPartial[o] }
        }
        return needInputGradient ? UnsafePointer(gradInput.pointer) : nil
    }

    /// Task `task` of the backward pass: its samples' patch matrix again and output gradient as one
    /// matrix dY; the partial dW = dY·colsᵀ and db = Σ dY; and, for the input gradient, dcols = Wᵀ·dY
    /// scattered back by col2im.
    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool, Int)>(
        perThread: { [unowned(unsafe) self] arguments, task, thread in
        let (dy, x, batch, needInputGradient, perThread) = arguments
        let plane = self.planeSize, patch = self.patchSize, outC = self.outChannels
        let (first, count) = self.samples(of: task, batch: batch)
        let rowLength = count * plane, groupOut = outC / self.groups
        let cols = self.threadScratch.pointer + thread * perThread, gradOutput = cols + self.columnRows * self.groupSize
        let gradCols = gradOutput + outC * self.groupSize
        let dwPartial = self.taskPartials.pointer + task * (outC * patch + outC), dbPartial = dwPartial + outC * patch
        self.buildColumns(x, task: task, batch: batch, into: cols)
        for j in 0..<count {
            let dyn = dy + (first + j) * self.outputCount
            for o in 0..<outC { (gradOutput + o * rowLength + j * plane).update(from: dyn + o * plane, count: plane) }
        }
        // Each sample's terms one by one, then the samples' sums in order (as bndk_conv_backward).
        for o in 0..<outC {
            let row = gradOutput + o * rowLength
            var total: Float = 0
            for j in 0..<count {
                var sum: Float = 0
                for i in (j * plane)..<((j + 1) * plane) { sum += row[i] }
                total += sum
            }
            dbPartial[o] = total
        }
        for g in 0..<self.groups {
            BLAS.sgemm(transB: true, m: groupOut, n: patch, k: rowLength, a: gradOutput + g * groupOut * rowLength,
                       lda: rowLength, b: cols + g * patch * rowLength, ldb: rowLength, beta: 0,
                       c: dwPartial + g * groupOut * patch, ldc: patch)
        }
        guard needInputGradient else { return }
        for g in 0..<self.groups {
            BLAS.sgemm(transA: true, m: patch, n: rowLength, k: groupOut, a: self.weight.value.pointer + g * groupOut * patch,
                       lda: patch, b: gradOutput + g * groupOut * rowLength, ldb: rowLength, beta: 0,
                       c: gradCols + g * patch * rowLength, ldc: rowLength)
        }
        for j in 0..<count {
            self.col2im(gradCols + j * plane, self.gradInput.pointer + (first + j) * self.inputCount, rowStride: rowLength)
        }
    })

    /// Task `task` of the direct backward pass: its samples' partial dW, db (and input gradient) through
    /// `bndk_conv_backward`.
    private lazy var directBackwardKernel = ParallelKernel<(OutputGradient, UnsafePointer<Float>, Int, Bool, Int)>(
        perThread: { [unowned(unsafe) self] arguments, task, thread in
        let (dy, x, batch, needInputGradient, perThread) = arguments
        let (first, count) = self.samples(of: task, batch: batch)
        let outC = self.outChannels, weights = outC * self.patchSize
        let dwPartial = self.taskPartials.pointer + task * (weights + outC), dbPartial = dwPartial + weights
        let dx = needInputGradient ? self.gradInput.pointer + first * self.inputCount : nil
        let scratch = self.threadScratch.pointer + thread * perThread
        withUnsafePointer(to: self.directShape) { shape in
            switch dy {
            case .given(let given):
                bndk_conv_backward(shape, x + first * self.inputCount, given + first * self.outputCount, Int64(count),
                                   self.weight.value.pointer, dwPartial, dbPartial, dx, scratch)
            case .pooled(let pooled):
                bndk_conv_backward_pooled(shape, x + first * self.inputCount, self.samples(first, of: pooled),
                                          Int64(count), self.weight.value.pointer, dwPartial, dbPartial, dx, scratch)
            }
        }
    })

    /// `pooled` from sample `first` on.
    private func samples(_ first: Int, of pooled: bndk_pooled_gradient) -> bndk_pooled_gradient {
        bndk_pooled_gradient(pooled: pooled.pooled + first * outChannels * (outHeight / 2) * (outWidth / 2),
                             relu_input: pooled.relu_input.map { $0 + first * outputCount })
    }
}

/// dst[0..<count] = src[0..<count], eight floats at a time: the rows of a patch matrix are short (24
/// values in the article's CNN), too short for a memmove call or a loop with alias checks to pay.
@inline(__always)
private func copyRow(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { store8(load8(src + i), dst + i); i += 8 }
    while i < count { dst[i] = src[i]; i += 1 }
}

/// dst[0..<count] += src[0..<count], eight floats at a time.
@inline(__always)
private func addRow(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { store8(load8(dst + i) + load8(src + i), dst + i); i += 8 }
    while i < count { dst[i] += src[i]; i += 1 }
}

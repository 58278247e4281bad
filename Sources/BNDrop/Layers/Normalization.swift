import BNDropKernels

/// Batch normalization over the channel axis, as torch.nn.BatchNorm1d (N×C or N×C×L input) and
/// torch.nn.BatchNorm2d (N×C×H×W input).
///
/// Train mode (or eval without running statistics) normalises with the batch's mean and biased
/// variance; with running statistics it then updates running_mean and the *unbiased* running_var with
/// `momentum` (or the cumulative average when `momentum` is nil). Eval mode with running statistics
/// normalises with them and updates nothing. Sums are taken in double precision, shifted by each channel's
/// first value, so inputs with a large common offset keep their variance. The loops are C kernels
/// (`Sources/BNDropKernels/batchnorm.c`).
///
/// `eps`, `momentum`, `affine` and `trackRunningStats` are fixed at construction; only the mode changes.
public final class BatchNorm: Layer {
    public let numFeatures: Int
    public let eps: Float
    /// nil: cumulative moving average (PyTorch's momentum=None).
    public let momentum: Float?
    public let affine: Bool
    public let trackRunningStats: Bool

    /// γ and β (nil when `affine` is false).
    public let weight: Parameter?
    public let bias: Parameter?
    /// Running statistics (nil when `trackRunningStats` is false).
    public let runningMean: FloatBuffer?
    public let runningVar: FloatBuffer?
    public let numBatchesTracked: Counter?

    /// Elements per channel per sample: 1 for N×C, L for N×C×L, H·W for N×C×H×W.
    let spatial: Int
    /// Per channel: the mean and 1/√(var+eps) the last forward normalised with, and (after batch
    /// statistics) the unbiased variance for the running-statistics update.
    private let savedMean: FloatBuffer
    private let savedInvStd: FloatBuffer
    private let unbiasedVar: FloatBuffer
    /// Per-channel scratch of the N×C path (`spatial == 1`), which walks rows rather than channels:
    /// two double sums, and four float constants per channel (the N×C×L path's constants too).
    private let rowSums: Buffer<Double>
    private let rowConstants: FloatBuffer
    /// The N×C×L path's sums per block of samples: two doubles per channel per block (`blockSums(_:)`).
    private let blockSumSpace = Buffer<Double>()
    /// Whether the last forward normalised with the batch's statistics (train mode, or eval without
    /// running statistics) rather than the running ones.
    private var usedBatchStatistics = true

    /// - Parameter inputShape: one sample's shape: [C], [C, L] (BatchNorm1d) or [C, H, W] (BatchNorm2d).
    public init(inputShape shape: [Int], eps: Float = 1e-5, momentum: Float? = 0.1, affine: Bool = true,
                trackRunningStats: Bool = true) throws {
        guard (1...3).contains(shape.count), let channels = shape.first, channels > 0 else {
            throw BNDError.shape("BatchNorm expects a sample shape [C], [C, L] or [C, H, W] with C > 0, got \(shape)")
        }
        guard eps.isFinite, eps > 0 else {
            throw BNDError.invalidArgument("BatchNorm eps must be a positive finite number, got \(eps)")
        }
        if let m = momentum { try Checked.finite(m, in: 0...1, "BatchNorm momentum") }
        numFeatures = channels
        spatial = try Checked.product(Array(shape.dropFirst()), "BatchNorm shape")
        guard spatial > 0 else { throw BNDError.shape("BatchNorm shape \(shape) has an empty dimension") }
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.trackRunningStats = trackRunningStats
        weight = affine ? try Parameter(shape: [channels]) : nil
        bias = affine ? try Parameter(shape: [channels]) : nil
        runningMean = trackRunningStats ? try FloatBuffer(count: channels) : nil
        runningVar = trackRunningStats ? try FloatBuffer(count: channels) : nil
        numBatchesTracked = trackRunningStats ? Counter() : nil
        savedMean = try FloatBuffer(count: channels)
        savedInvStd = try FloatBuffer(count: channels)
        unbiasedVar = try FloatBuffer(count: channels)
        rowSums = try Buffer<Double>(count: 2 * channels, value: 0)
        rowConstants = try FloatBuffer(count: 4 * channels)
        try super.init(shape.count == 3 ? "BatchNorm2d" : "BatchNorm1d", inputShape: shape, outputShape: shape)
        resetState()
    }

    public override var state: [StateEntry] {
        var entries: [StateEntry] = []
        if let w = weight, let b = bias {
            entries += [.parameter("weight", w), .parameter("bias", b)]
        }
        if let rm = runningMean, let rv = runningVar, let nbt = numBatchesTracked {
            entries.append(StateEntry(name: "running_mean", shape: [numFeatures], storage: .buffer(rm)))
            entries.append(StateEntry(name: "running_var", shape: [numFeatures], storage: .buffer(rv)))
            entries.append(StateEntry(name: "num_batches_tracked", shape: [], storage: .counter(nbt)))
        }
        return entries
    }

    /// BatchNorm draws nothing: its initial state is fixed.
    public override func reset(random: inout SeededRandom) { resetState() }

    /// weight=1, bias=0, running_mean=0, running_var=1, num_batches_tracked=0.
    private func resetState() {
        weight?.value.fill(1)
        bias?.value.fill(0)
        runningMean?.fill(0)
        runningVar?.fill(1)
        numBatchesTracked?.value = 0
    }

    /// The smallest batch this layer can normalise with batch statistics (more than one value per
    /// channel): 2 for an N×C input, 1 otherwise.
    public var minimumTrainingBatch: Int { spatial > 1 ? 1 : 2 }

    /// Whether a forward in the current mode normalises with the batch's statistics.
    var usesBatchStatistics: Bool { isTraining || !trackRunningStats }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let useBatchStats = usesBatchStatistics
        if useBatchStats && batch * spatial <= 1 {
            throw BNDError.shape("Expected more than 1 value per channel when training, got input size "
                                 + "\([batch] + inputShape)")
        }
        if !useBatchStats && runningMean == nil {
            throw BNDError.internalError("\(typeName): no statistics to normalise with")
        }
        try output.resize(batch * inputCount)
        if spatial > 1 { try reserveBlockSums(batch: batch) }
        // The factor of this batch's running-statistics update, when there is one.
        var factor: Float? = nil
        if isTraining, let nbt = numBatchesTracked {
            if nbt.value < Int64.max { nbt.value += 1 }  // a loaded count can be anything >= 0: no overflow
            factor = momentum ?? Float(1 / Double(nbt.value))
        }
        if spatial > 1 {
            forwardByBlocks(x, batch: batch, useBatchStats: useBatchStats, factor: factor)
        } else {
            // Channels are independent: each task takes a group of them.
            let group = channelsPerTask(batch: batch)
            forwardKernel.run(tasks(numFeatures, group), (x, batch, useBatchStats, factor, group), order: .inOrder)
        }
        usedBatchStatistics = useBatchStats
        return UnsafePointer(output.pointer)
    }

    /// Eval mode with running statistics: each sample is normalised alone.
    override var forwardsBySample: Bool { !usesBatchStatistics }
    override var samplesIndependentOfBlocks: Bool { true }

    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        guard !usesBatchStatistics, runningMean != nil else {
            throw BNDError.internalError("\(typeName) normalises with the batch's statistics: not sample by sample")
        }
        try output.resize(batch * inputCount)
        runningStatistics(channels: 0..<numFeatures)
        storeAffineConstants(channels: 0..<numFeatures)
        usedBatchStatistics = false
        return UnsafePointer(output.pointer)
    }

    /// Samples [first, first + count), y = (x − running mean)·scale + β per channel, with the statistics
    /// (and, for rows, the constants) `prepareForward` made: the element-wise kernels of the forward by
    /// channels, so the same bits.
    override func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int) {
        if spatial == 1 {
            let offset = first * inputCount
            let scale = rowConstants.pointer, beta = rowConstants.pointer + numFeatures
            bndk_rows_affine(x + offset, output.pointer + offset, Int64(count), Int64(numFeatures), Int64(numFeatures),
                             savedMean.pointer, scale, beta)
            return
        }
        for c in 0..<numFeatures {
            normalize(x, into: output.pointer, batch: batch, channel: c, samples: first..<(first + count))
        }
    }

    /// Values a task should at least cover for its start-up to be worth it (about 256 KiB).
    static let minimumValuesPerTask = 65_536

    /// Channels per task: enough for `minimumValuesPerTask` values. Each channel is computed the same way
    /// whatever the grouping, so the grouping only decides how much runs in parallel.
    private func channelsPerTask(batch: Int) -> Int {
        min(numFeatures, max(1, BatchNorm.minimumValuesPerTask / max(1, batch * spatial)))
    }

    /// Task `task` of the N×C forward pass: its channels' statistics, their running average, the
    /// normalisation.
    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int, Bool, Float?, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (x, batch, useBatchStats, factor, group) = arguments
        let channels = (task * group)..<min((task + 1) * group, self.numFeatures)
        self.forwardRows(x, batch: batch, channels: channels, useBatchStats: useBatchStats, factor: factor)
    }

    /// Eval mode: channel `c` normalises with the running statistics.
    private func runningStatistics(channels: Range<Int>) {
        guard let rm = runningMean?.pointer, let rv = runningVar?.pointer else { return }
        let mean = savedMean.pointer, invStd = savedInvStd.pointer
        for c in channels {
            mean[c] = rm[c]
            invStd[c] = 1 / (rv[c] + eps).squareRoot()
        }
    }

    /// running = (1 − f)·running + f·batch statistic, with f = momentum or 1/num_batches_tracked.
    private func updateRunningStatistics(channels: Range<Int>, factor: Float) {
        guard let rm = runningMean?.pointer, let rv = runningVar?.pointer else { return }
        let mean = savedMean.pointer, variance = unbiasedVar.pointer
        for c in channels {
            rm[c] = (1 - factor) * rm[c] + factor * mean[c]
            rv[c] = (1 - factor) * rv[c] + factor * variance[c]
        }
    }

    /// Outputs (and input gradients) of at least this many bytes are written past the caches: they cannot
    /// stay cached until the next layer reads them anyway (BatchNorm2d on 256×64×28×28: 51 MB), and a
    /// cached store first reads the old contents. Smaller ones (the article's CNN: about 1 MB) stay in cache.
    /// (A variable only so that tests can send small tensors down the streaming path: SPI, not API.)
    @_spi(Testing) public nonisolated(unsafe) static var streamingBytes = 32 << 20

    private func streams(_ batch: Int) -> Bool { batch * inputCount * 4 >= BatchNorm.streamingBytes }

    /// y = (x − mean)·invStd·γ + β for channel `c` of `samples` (default: the whole batch), with its
    /// saved statistics.
    private func normalize(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, batch: Int, channel c: Int,
                           samples: Range<Int>? = nil) {
        let samples = samples ?? 0..<batch
        let offset = samples.lowerBound * inputCount + c * spatial
        let scale = savedInvStd.pointer[c] * (weight?.value.pointer[c] ?? 1)
        bndk_channel_affine(x + offset, y + offset, Int64(samples.count), Int64(numFeatures * spatial), Int64(spatial),
                            savedMean.pointer[c], scale, bias?.value.pointer[c] ?? 0, streams(batch) ? 1 : 0)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        if needInputGradient { try gradInput.resize(batch * inputCount) }
        if spatial > 1 {
            try reserveBlockSums(batch: batch)
            backwardByBlocks(dy, x, batch: batch, needInputGradient: needInputGradient)
        } else {
            let group = channelsPerTask(batch: batch)
            backwardKernel.run(tasks(numFeatures, group), (dy, x, batch, needInputGradient, group), order: .inOrder)
        }
        return needInputGradient ? UnsafePointer(gradInput.pointer) : nil
    }

    /// Task `task` of the N×C backward pass: its channels.
    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (dy, x, batch, needInputGradient, group) = arguments
        let channels = (task * group)..<min((task + 1) * group, self.numFeatures)
        self.backwardRows(dy, x, batch: batch, channels: channels, needInputGradient: needInputGradient)
    }

    // MARK: N×C input (spatial == 1): row by row
    //
    // A channel's values are a column, `numFeatures` floats apart. The kernels (`bndk_rows_*`) keep the
    // sums of blocks of channels in registers while the rows stream by, and walk the rows in memory order
    // for the element-wise passes; each channel's sums are taken in row order.

    private func forwardRows(_ x: UnsafePointer<Float>, batch: Int, channels: Range<Int>, useBatchStats: Bool,
                             factor: Float?) {
        let (width, first, count) = (numFeatures, channels.lowerBound, channels.count)
        // The buffers' pointers read once: inside the per-channel loops each read of a class property
        // was a dynamic exclusivity check (5% of a BatchNorm1d 512×48 forward + backward).
        let savedMean = self.savedMean.pointer, savedInvStd = self.savedInvStd.pointer
        if useBatchStats {
            let perChannel = Double(batch)
            let means = rowSums.pointer, squares = rowSums.pointer + width, unbiasedVar = self.unbiasedVar.pointer
            bndk_rows_moments(x + first, Int64(batch), Int64(width), Int64(count), means + first, squares + first)
            for c in channels {
                savedMean[c] = Float(means[c])
                savedInvStd[c] = Float(1 / (squares[c] / perChannel + Double(eps)).squareRoot())
                unbiasedVar[c] = Float(squares[c] / (perChannel - 1))
            }
            if let factor { updateRunningStatistics(channels: channels, factor: factor) }
        } else {
            runningStatistics(channels: channels)
        }
        storeAffineConstants(channels: channels)
        let scale = rowConstants.pointer, beta = rowConstants.pointer + width
        bndk_rows_affine(x + first, output.pointer + first, Int64(batch), Int64(width), Int64(count),
                         savedMean + first, scale + first, beta + first)
    }

    /// y = (x − mean)·scale + β: for `channels`, scale = invStd·γ and β into `rowConstants` (scales first,
    /// then the shifts), from the saved statistics (γ = 1, β = 0 without affine).
    private func storeAffineConstants(channels: Range<Int>) {
        let savedInvStd = self.savedInvStd.pointer, scale = rowConstants.pointer, beta = rowConstants.pointer + numFeatures
        let gamma = weight?.value.pointer, shift = bias?.value.pointer
        for c in channels {
            scale[c] = savedInvStd[c] * (gamma?[c] ?? 1)
            beta[c] = shift?[c] ?? 0
        }
    }

    private func backwardRows(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, batch: Int, channels: Range<Int>,
                              needInputGradient: Bool) {
        let (width, first, count) = (numFeatures, channels.lowerBound, channels.count)
        let (rows, stride, n) = (Int64(batch), Int64(width), Int64(count))
        let perChannel = Double(batch)
        let mean = savedMean.pointer, invStd = savedInvStd.pointer
        let sumDy = rowSums.pointer, dot = rowSums.pointer + width
        bndk_rows_gradient_sums(dy + first, x + first, rows, stride, n, mean + first, sumDy + first, dot + first)
        if let w = weight, let b = bias {
            let dGamma = w.gradient.pointer, dBeta = b.gradient.pointer
            for c in channels {
                dGamma[c] += Float(dot[c] * Double(invStd[c]))
                dBeta[c] += Float(sumDy[c])
            }
        }
        guard needInputGradient else { return }
        let scale = rowConstants.pointer, meanDy = scale + width, projection = meanDy + width
        let gamma = weight?.value.pointer
        for c in channels {
            scale[c] = invStd[c] * (gamma?[c] ?? 1)
            meanDy[c] = Float(sumDy[c] / perChannel)
            projection[c] = Float(dot[c] / perChannel) * invStd[c] * invStd[c]
        }
        let dx = gradInput.pointer
        if usedBatchStatistics {
            bndk_rows_input_gradient(dy + first, x + first, dx + first, rows, stride, n, mean + first, meanDy + first,
                                     projection + first, scale + first)
        } else {
            bndk_rows_scale(dy + first, dx + first, rows, stride, n, scale + first)
        }
    }

    // MARK: N×C×L and N×C×H×W input: by blocks of samples
    //
    // The layers around (Conv2d, pooling, the forward by blocks of samples) split the batch into blocks of
    // samples, which the pool's threads take from both ends (`TaskOrder.fromBothEnds`): each core's caches
    // hold about half of the batch's samples. Split by channels instead, every task read every sample, half
    // of them from the other core's cache: on two threads the article's CNN-BN epoch spent about twice the
    // CPU time in BatchNorm2d's kernels that it spent on one. By blocks, each task sums its samples' values
    // per channel (`blockSums`), the blocks' sums are added in block order (the same for any thread count),
    // and a second region normalises (or back-propagates through) each block with the channels' constants.

    /// Samples per block: about `minimumValuesPerTask` values but at most an eighth of the batch (so that
    /// the blocks spread evenly over the threads), in whole groups of 8 samples (Conv2d's tasks), at least
    /// 8 and at most the batch. Depends on the batch and the shape only.
    @_spi(Testing) public static func samplesPerBlock(batch: Int, sampleValues: Int) -> Int {
        let wanted = BatchNorm.minimumValuesPerTask / max(1, sampleValues)
        let eighth = (batch + 63) / 64 * 8
        return min(batch, max(8, min(wanted, eighth) / 8 * 8))
    }

    private func blockLayout(batch: Int) -> (perBlock: Int, blocks: Int) {
        let perBlock = BatchNorm.samplesPerBlock(batch: batch, sampleValues: inputCount)
        return (perBlock, tasks(batch, perBlock))
    }

    /// Makes room for the sums of a batch's blocks (before anything changes: an allocation can fail).
    private func reserveBlockSums(batch: Int) throws {
        try blockSumSpace.resize(Checked.multiply(2 * numFeatures, blockLayout(batch: batch).blocks,
                                                  "BatchNorm sums per block"))
    }

    /// Block `block`'s two sums of channel `c`.
    private func blockSums(_ block: Int, channel c: Int) -> UnsafeMutablePointer<Double> {
        blockSumSpace.pointer + 2 * (block * numFeatures + c)
    }

    /// Channel `c`'s two sums over the first `blocks` blocks, added in block order.
    private func totalOfBlocks(_ blocks: Int, channel c: Int) -> (Double, Double) {
        var first = 0.0, second = 0.0
        for block in 0..<blocks {
            let sums = blockSums(block, channel: c)
            first += sums[0]
            second += sums[1]
        }
        return (first, second)
    }

    /// Channel `c`'s shift: its first value when finite, else 0 (a non-finite mean then comes out as the
    /// plain sum gives it).
    private func shift(_ x: UnsafePointer<Float>, channel c: Int) -> Float {
        let first = x[c * spatial]
        return first.isFinite ? first : 0
    }

    private func forwardByBlocks(_ x: UnsafePointer<Float>, batch: Int, useBatchStats: Bool, factor: Float?) {
        let (perBlock, blocks) = blockLayout(batch: batch)
        if useBatchStats {
            blockStatisticsKernel.run(blocks, (x, batch, perBlock))
            let count = Double(batch * spatial)
            let savedMean = self.savedMean.pointer, savedInvStd = self.savedInvStd.pointer
            let unbiasedVar = self.unbiasedVar.pointer
            for c in 0..<numFeatures {
                let (sum, squares) = totalOfBlocks(blocks, channel: c)
                // Σ(x − mean)² = Σd² − (Σd)²/n, d = x − shift; never below 0 (NaN stays NaN).
                let raw = squares - sum * sum / count, centred = raw < 0 ? 0 : raw
                savedMean[c] = Float(Double(shift(x, channel: c)) + sum / count)
                savedInvStd[c] = Float(1 / (centred / count + Double(eps)).squareRoot())
                unbiasedVar[c] = Float(centred / (count - 1))
            }
            if let factor { updateRunningStatistics(channels: 0..<numFeatures, factor: factor) }
        } else {
            runningStatistics(channels: 0..<numFeatures)
        }
        normalizeKernel.run(blocks, (x, batch, perBlock))
    }

    /// Block `task`'s shifted sums of every channel (`bndk_channel_shifted_sums`).
    private lazy var blockStatisticsKernel = ParallelKernel<(UnsafePointer<Float>, Int, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (x, batch, perBlock) = arguments
        let first = task * perBlock, count = min(perBlock, batch - first)
        for c in 0..<self.numFeatures {
            let sums = self.blockSums(task, channel: c)
            bndk_channel_shifted_sums(x + first * self.inputCount + c * self.spatial, Int64(count),
                                      Int64(self.inputCount), Int64(self.spatial), self.shift(x, channel: c),
                                      sums, sums + 1)
        }
    }

    /// Block `task` normalised with the saved statistics, every channel.
    private lazy var normalizeKernel = ParallelKernel<(UnsafePointer<Float>, Int, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (x, batch, perBlock) = arguments
        let samples = (task * perBlock)..<min((task + 1) * perBlock, batch)
        for c in 0..<self.numFeatures {
            self.normalize(x, into: self.output.pointer, batch: batch, channel: c, samples: samples)
        }
    }

    private func backwardByBlocks(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) {
        let (perBlock, blocks) = blockLayout(batch: batch)
        blockGradientSumsKernel.run(blocks, (dy, x, batch, perBlock))
        let count = Double(batch * spatial)
        let invStd = savedInvStd.pointer, gamma = weight?.value.pointer
        let scale = rowConstants.pointer, meanDy = scale + numFeatures, projection = meanDy + numFeatures
        for c in 0..<numFeatures {
            let (sumDy, dot) = totalOfBlocks(blocks, channel: c)
            if let w = weight, let b = bias {
                w.gradient.pointer[c] += Float(dot * Double(invStd[c]))
                b.gradient.pointer[c] += Float(sumDy)
            }
            // dx = (dy − Σdy/n − (x−μ)·invstd²·Σ(x−μ)dy/n)·invstd·γ
            scale[c] = invStd[c] * (gamma?[c] ?? 1)
            meanDy[c] = Float(sumDy / count)
            projection[c] = Float(dot / count) * invStd[c] * invStd[c]
        }
        guard needInputGradient else { return }
        blockInputGradientKernel.run(blocks, (dy, x, batch, perBlock))
    }

    /// Block `task`'s sums Σdy and Σ(x − mean)·dy of every channel.
    private lazy var blockGradientSumsKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, Int, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (dy, x, batch, perBlock) = arguments
        let first = task * perBlock, count = min(perBlock, batch - first)
        let mean = self.savedMean.pointer
        for c in 0..<self.numFeatures {
            let offset = first * self.inputCount + c * self.spatial, sums = self.blockSums(task, channel: c)
            bndk_channel_gradient_sums(dy + offset, x + offset, Int64(count), Int64(self.inputCount),
                                       Int64(self.spatial), mean[c], sums, sums + 1)
        }
    }

    /// Block `task`'s input gradient, every channel, with the constants `backwardByBlocks` stored.
    private lazy var blockInputGradientKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, Int, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (dy, x, batch, perBlock) = arguments
        let first = task * perBlock, count = min(perBlock, batch - first)
        let (rows, stride, run) = (Int64(count), Int64(self.inputCount), Int64(self.spatial))
        let scale = self.rowConstants.pointer, meanDy = scale + self.numFeatures, projection = meanDy + self.numFeatures
        let streaming: Int32 = self.streams(batch) ? 1 : 0
        let dx = self.gradInput.pointer
        for c in 0..<self.numFeatures {
            let offset = first * self.inputCount + c * self.spatial
            if self.usedBatchStatistics {
                bndk_channel_input_gradient(dy + offset, x + offset, dx + offset, rows, stride, run,
                                            self.savedMean.pointer[c], meanDy[c], projection[c], scale[c], streaming)
            } else {
                // Running statistics are constants of the input: dx = dy·invstd·γ.
                bndk_channel_affine(dy + offset, dx + offset, rows, stride, run, 0, scale[c], 0, streaming)
            }
        }
    }
}

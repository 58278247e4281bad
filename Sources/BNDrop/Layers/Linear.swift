import BNDropKernels
import Glibc

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

    /// Rows of the batch per task, and input columns per task of the weight gradient: sizes that depend
    /// on the batch and the layer only, so the same products run whatever the thread count (see
    /// `ThreadPool`). Each task packs the whole weight for its GEMM: 128 rows halve that repacking
    /// against 64 (inference of the article's MLP in batches of 1000: ~5% faster, measured) and still
    /// give four tasks to a batch of 512. A batch under 256 rows is cut in two tasks (half of it,
    /// rounded up to whole 8 rows), so both cores take part: the article's MLP with batches of 64 ran
    /// its first layer's forward on one core while the other waited.
    static let rowsPerTask = 128
    static let columnsPerTask = 256

    /// Rows per task for a batch of `batch` rows (see `rowsPerTask`).
    static func rowsPerTask(batch: Int) -> Int {
        batch >= 2 * rowsPerTask ? rowsPerTask : max(8, (batch + 15) / 16 * 8)
    }

    /// Input columns per weight-gradient task: at most `columnsPerTask`, spread evenly (784 columns: four
    /// tasks of 196, not three of 256 and one of 16, which left a thread idle). Depends on the layer's
    /// size only.
    private var weightColumnsPerTask: Int { tasks(inFeatures, tasks(inFeatures, Linear.columnsPerTask)) }

    /// Input columns per weight-gradient task of a backward pass that does not take dyᵀ's rows: the dense
    /// product's, or `sparseInputColumnsPerTask` when it skips the input's zeros.
    private func columnsPerWeightTask(_ sparse: SparseBackward) -> Int {
        sparse.weightGradientSkipsInputZeros ? Linear.sparseInputColumnsPerTask : weightColumnsPerTask
    }

    /// Takes in the ReLU before it where its forward product can skip zeros (the CPU and the sizes allow
    /// it: see "Skipping zeros"): the kernel then lists only the positive entries of the ReLU's input,
    /// and the input gradient is masked as it is stored, so the ReLU's output and its backward pass are
    /// never written (the bits are the ReLU's own). Where the product runs dense after all, the ReLU's
    /// output is made first, as the ReLU would have. A Linear with one output (the regression net's last
    /// layer) always takes it in: its dot products read their input through the ReLU.
    override var canFoldReLU: Bool {
        Linear.fitsSparseProduct(width: outFeatures, rightFloats: inFeatures * outFeatures, takesReLU: true) || outFeatures == 1
    }

    /// Whether the forward product x·Wᵀ runs `bndk_narrow_product` (rows in groups of 8, their sums in
    /// registers): an output 2 to 31 wide, too narrow to skip zeros, on a CPU with the sparse product's
    /// AVX-512. OpenBLAS's product paid fixed costs per block of 128 rows far above the multiply-adds of
    /// the article's 48 -> 24 and 24 -> 10 layers: eval-mode passes over the 10,000 test images in batches
    /// of 1000, two threads, took 0.96 of the time with this kernel (median of 10 interleaved rounds), the
    /// 48 -> 24 layer about 0.16 ms instead of 0.21. The kernel reads the weight transposed, a copy that
    /// costs memory and a pass per training step: a weight over `narrowMaximumRightFloats` (4 MiB) stays
    /// with OpenBLAS, which reads it in place.
    private var forwardFitsNarrowProduct: Bool {
        Linear.skippingZerosAvailable && outFeatures > 1 && outFeatures < Linear.sparseMinimumWidth && inFeatures > 1
            && inFeatures * outFeatures <= Linear.narrowMaximumRightFloats
    }

    static let narrowMaximumRightFloats = 1 << 20

    /// Whether the sizes (and the CPU) let the forward product x·Wᵀ skip zeros, as it reads its input
    /// (through the ReLU before it when it takes that in).
    private var forwardFitsSparseProduct: Bool {
        Linear.fitsSparseProduct(width: outFeatures, rightFloats: inFeatures * outFeatures, takesReLU: foldsReLU)
    }

    override var forwardsBySample: Bool { true }
    override var forwardWorkPerSample: Int { inFeatures * outFeatures }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let y = try prepareForward(x, batch: batch)
        forwardKernel.run(tasks(batch, Linear.rowsPerTask(batch: batch)), (x, batch), work: batch * inFeatures * outFeatures)
        return y
    }

    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        _ = try Checked.blasInt(batch, max(inFeatures, outFeatures), "Linear batch")
        try output.resize(batch * outFeatures)
        weightFoundFinite = nil
        // x·Wᵀ row by row reads rows of Wᵀ: the weight transposed. Each block of rows then decides by its
        // own rows whether skipping zeros pays (see `listedLimit`).
        forwardWeight = forwardFitsSparseProduct || forwardFitsNarrowProduct ? try transposedWeightForForward() : nil
        // Room for the ReLU of the rows that run dense, when one is taken in (no memory is touched).
        if foldsReLU && outFeatures != 1 { try reluInput.resize(batch * inFeatures) }
        return UnsafePointer(output.pointer)
    }

    /// The forward's transposed weight, from `prepareForward` (nil: the product runs dense).
    private var forwardWeight: Packed?

    /// Task `task` of the forward pass: the block of rows [r·task, r·task + r), r = `rowsPerTask(batch:)`,
    /// the same blocks a network's forward by blocks of samples uses. The rows of a block depend on the
    /// batch size only, so each block's choice below is the same for any thread count.
    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int)>(perThread: {
        [unowned(unsafe) self] arguments, task, thread in
        let (x, batch) = arguments
        let perTask = Linear.rowsPerTask(batch: batch)
        self.computeSamples(x, batch: batch, first: task * perTask, count: min(perTask, batch - task * perTask),
                            thread: thread)
    })

    override func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int) {
        computeSamples(x, batch: batch, first: first, count: count, thread: 0)
    }

    override func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int, thread: Int) {
        computeRows(x, first: first, count: count,
                    ahead: Linear.rowsLikelyNext(batch: batch, first: first, count: count, thread: thread))
    }

    /// The rows pool thread `thread` most likely computes after its block [first, first + count): the
    /// pool's caller (thread 0) takes a region's tasks from the first up, its workers from the last down
    /// (`TaskOrder.fromBothEnds`), the tasks `rowsPerTask(batch:)` rows each. Only a hint for loading
    /// rows into cache ahead (see `computeRows`): a wrong guess costs some loads, never a bit of a result.
    static func rowsLikelyNext(batch: Int, first: Int, count: Int, thread: Int) -> Range<Int> {
        let start = thread == 0 ? first + count : first - rowsPerTask(batch: batch)
        guard start >= 0 && start < batch else { return 0..<0 }
        return start..<min(batch, start + rowsPerTask(batch: batch))
    }

    /// Rows [first, first + count) of y = x·Wᵀ + b. With the weight packed for skipping zeros, the rows
    /// skip them when they have few enough nonzero entries, and otherwise run the dense product (on their
    /// ReLU, made here, when one is taken in). `ahead`: the rows likely computed next, which the sparse
    /// product in pairs loads into cache while it computes.
    private func computeRows(_ x: UnsafePointer<Float>, first: Int, count rows: Int, ahead: Range<Int>) {
        let (inF, outF) = (inFeatures, outFeatures)
        let y = output.pointer + first * outF
        var rowsInput = x + first * inF
        let bias = self.bias.value.pointer  // read once: each read of the property is an access check
        if let transposedWeight = forwardWeight {
            if forwardFitsSparseProduct {
                // Rows in groups (no ReLU taken in, a right operand over `sparseWholeRightFloats`, as the
                // kernel decides it): calls of at most `sparseGroupRows` rows, each checking its own limit
                // as the kernel orders its rows (a larger call would count them in a pass of its own), and
                // running dense on its own when over it.
                let inGroups = !foldsReLU && inF * transposedWeight.stride > Linear.sparseWholeRightFloats
                if inGroups && rows > Linear.sparseGroupRows {
                    for part in stride(from: 0, to: rows, by: Linear.sparseGroupRows) {
                        let partRows = min(Linear.sparseGroupRows, rows - part), next = part + partRows
                        computeRows(x, first: first + part, count: partRows,
                                    ahead: next < rows ? first + next..<first + rows : ahead)
                    }
                    return
                }
                let limit = Linear.listedLimit(entries: rows * inF, rightFloats: inF * outF)
                if bndk_sparse_product_within(Int64(limit), Int64(rows), Int64(inF), Int64(outF), rowsInput, Int64(inF),
                                              foldsReLU ? 1 : 0, transposedWeight.start, Int64(transposedWeight.stride),
                                              bias, 0, nil, 0, y, Int64(outF),
                                              ahead.isEmpty ? nil : x + ahead.lowerBound * inF, Int64(ahead.count)) != 0 {
                    return
                }
            } else if !foldsReLU,
                      bndk_narrow_product(Int64(rows), Int64(inF), Int64(outF), rowsInput, Int64(inF), transposedWeight.start,
                                          Int64(transposedWeight.stride), bias, y, Int64(outF)) != 0 {
                return
            }
        }
        // (One output first: that case reads x through the ReLU it takes in, also with one input.)
        if outF == 1 {  // y[n] = b + x[n]·w (w: the weight's one row), through the ReLU taken in
            bndk_row_dots(rowsInput, Int64(rows), Int64(inF), foldsReLU ? 1 : 0, weight.value.pointer, bias[0], y)
            return
        }
        if foldsReLU {
            let relu = reluInput.pointer + first * inF
            bndk_relu_select(rowsInput, rowsInput, relu, Int64(rows * inF))
            rowsInput = UnsafePointer(relu)
        }
        if inF == 1 {  // y[n] = b + x[n]·w (w: the weight's one column)
            bndk_outer_product(rowsInput, Int64(rows), weight.value.pointer, Int64(outF), bias, nil, y)
            return
        }
        // Start from the bias in every row, then y += x·Wᵀ.
        for n in 0..<rows { (y + n * outF).update(from: bias, count: outF) }
        BLAS.sgemm(transB: true, m: rows, n: outF, k: inF, a: rowsInput, lda: inF, b: weight.value.pointer,
                   ldb: inF, beta: 1, c: y, ldc: outF)
    }

    /// The weight transposed for the forward's sparse product, or nil when the weight is not all finite.
    /// In eval mode the copy is kept with a snapshot of the weight it was made from, and a forward whose
    /// weight still equals the snapshot byte for byte reuses it (and the finiteness found then): inference
    /// in batches would otherwise transpose the same weight for every batch, on one core while the other
    /// waits (784 → 48, batches of 1000: 4% of the pass). Comparing catches a change made any way,
    /// through the C API's pointers included. In training mode the weight changes at every step: no
    /// snapshot is kept.
    private func transposedWeightForForward() throws -> Packed? {
        let count = inFeatures * outFeatures
        if !isTraining, let kept = keptTransposedWeight,
           memcmp(weightSnapshot.pointer, weight.value.pointer, count * MemoryLayout<Float>.stride) == 0 {
            return kept.packed
        }
        keptTransposedWeight = nil
        let packed = weightIsFinite()
            ? try Linear.packTransposed(weight.value.pointer, rows: outFeatures, columns: inFeatures, into: transposedWeight)
            : nil
        // (Without memory for the snapshot the forward goes on, and the next one transposes again.)
        if !isTraining, (try? weightSnapshot.resize(count)) != nil {
            weightSnapshot.pointer.update(from: weight.value.pointer, count: count)
            keptTransposedWeight = KeptPacking(packed: packed)
        }
        return packed
    }

    /// The forward's transposed weight (its own buffer: the backward packs the weight into `packedWeight`).
    private let transposedWeight = Buffer<Float>()
    /// In eval mode: the weight `keptTransposedWeight` was made from.
    private let weightSnapshot = FloatBuffer()
    private struct KeptPacking { let packed: Packed? }
    private var keptTransposedWeight: KeptPacking?

    /// Whether the weight is all finite (a skipped zero would lose 0·∞ = NaN). The forward's answer is
    /// kept for the backward of the same training step, when nothing can have changed the weight since.
    private func weightIsFinite() -> Bool {
        if parametersUnchangedSinceForward, let known = weightFoundFinite { return known }
        let finite = Checked.firstNonFinite(weight.value.pointer, inFeatures * outFeatures) == nil
        weightFoundFinite = finite
        return finite
    }

    private var weightFoundFinite: Bool?

    /// The ReLU of the input a folded ReLU's layer received (its input `z`), made for a dense product.
    private func reluOfInput(_ z: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let count = batch * inFeatures
        try reluInput.resize(count)
        bndk_relu_select(z, z, reluInput.pointer, Int64(count))
        return UnsafePointer(reluInput.pointer)
    }

    /// The ReLU's output, when a Linear that took the ReLU in runs a dense product.
    private let reluInput = FloatBuffer()

    override func computeBackward(_ dy: UnsafePointer<Float>, input z: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        if needInputGradient { try gradInput.resize(batch * inFeatures) }
        let (inF, outF) = (inFeatures, outFeatures)
        // With a ReLU taken in, `z` is the ReLU's input: x = ReLU(z) is the product's, and the gradient
        // returned is for z.
        // Both products read the output gradient as their left operand (dW = dyᵀ·x, dx = dy·W); it is
        // mostly zeros where the output went through ReLU.
        var weightGradientFits = Linear.fitsSparseProduct(width: inF, rightFloats: batch * inF)
        var inputGradientFits = needInputGradient && Linear.fitsSparseProduct(width: inF, rightFloats: outF * inF)
        if weightGradientFits || inputGradientFits {
            let share = Linear.listedShare(dy, rows: batch, width: outF)
            weightGradientFits = weightGradientFits && Linear.fewEnoughTerms(share, rightFloats: batch * inF)
            inputGradientFits = inputGradientFits && Linear.fewEnoughTerms(share, rightFloats: outF * inF)
        }
        var sparse = SparseBackward()
        // (A non-finite z is refused here even where its ReLU is finite, -∞: the dense product is right too.)
        if weightGradientFits && Checked.firstNonFinite(z, batch * inF) == nil,
           let transposedGradient = try Linear.packTransposed(dy, rows: batch, columns: outF, into: packedGradient) {
            let input = try Linear.packRows(z, rows: batch, columns: inF, relu: foldsReLU, into: packedInput)
            sparse.weightGradient = (transposedGradient, input)
        }
        if inputGradientFits && weightIsFinite() {
            sparse.weight = try Linear.packRows(weight.value.pointer, rows: outF, columns: inF, relu: false, into: packedWeight)
        }
        // (A Linear with one output reads z through the ReLU itself.)
        let x = sparse.weightGradient == nil && foldsReLU && outF != 1 ? try reluOfInput(z, batch: batch) : z
        // A dense output gradient (after BatchNorm) with a mostly-zero input (the images): the weight
        // gradient skips the input's zeros instead.
        if sparse.weightGradient == nil, Linear.skipsInputZeros(x, batch: batch, inFeatures: inF, outFeatures: outF),
           Checked.firstNonFinite(dy, batch * outF) == nil {
            sparse.weightGradientSkipsInputZeros = true
        }
        let weightTasks = sparse.weightGradient != nil ? tasks(outF, Linear.rowsPerTask)
            : tasks(inF, columnsPerWeightTask(sparse))
        let rowTasks = needInputGradient ? tasks(batch, Linear.rowsPerTask(batch: batch)) : 0
        backwardKernel.run(weightTasks + rowTasks, (dy, x, z, batch, weightTasks, sparse), work: 2 * batch * inF * outF)
        return needInputGradient ? UnsafePointer(gradInput.pointer) : nil
    }

    /// The packed operands of a backward pass that skips zeros: dyᵀ and x for the weight gradient, W for
    /// the input gradient (nil: that product runs dense); or, with a dense dy, whether the weight gradient
    /// skips the zeros of the input x instead (`bndk_sparse_input_weight_gradient`).
    private struct SparseBackward {
        var weightGradient: (transposedGradient: Packed, input: Packed)?
        var weight: Packed?
        var weightGradientSkipsInputZeros = false
    }

    /// Task `task` of the backward pass. Tasks [0, weightTasks): dW[:, columns] += dyᵀ·x[:, columns], or
    /// when skipping zeros rows [128·task, +128) of dW += dyᵀ·x; the first also sums the bias gradient
    /// over the batch. Then one task per block of rows of dx = dy·W (masked where z <= 0 when a ReLU was
    /// taken in: x = ReLU(z)).
    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int,
                                                      Int, SparseBackward)> {
        [unowned(unsafe) self] arguments, task in
        let (dy, x, z, batch, weightTasks, sparse) = arguments
        let (inF, outF) = (self.inFeatures, self.outFeatures)
        if task < weightTasks {
            if case let (transposedGradient, input)? = sparse.weightGradient {
                let first = task * Linear.rowsPerTask, rows = min(Linear.rowsPerTask, outF - first)
                bndk_sparse_product(Int64(rows), Int64(batch), Int64(inF), transposedGradient.start + first * transposedGradient.stride,
                                    Int64(transposedGradient.stride), 0, input.start, Int64(input.stride), nil, 1, nil, 0,
                                    self.weight.gradient.pointer + first * inF, Int64(inF))
            } else {
                let perTask = self.columnsPerWeightTask(sparse)
                let first = task * perTask, columns = min(perTask, inF - first)
                let dW = self.weight.gradient.pointer + first
                if outF == 1 {  // dW[k] += Σ_n dy[n]·x[n][k], x = ReLU(z) when taken in
                    bndk_weighted_column_sums(x + first, Int64(batch), Int64(columns), Int64(inF), dy,
                                              self.foldsReLU ? 1 : 0, dW)
                } else if inF == 1 {  // dW[o] += Σ_n dy[n][o]·x[n]
                    bndk_weighted_column_sums(dy, Int64(batch), Int64(outF), Int64(outF), x, 0, dW)
                } else if sparse.weightGradientSkipsInputZeros {
                    _ = bndk_sparse_input_weight_gradient(Int64(batch), Int64(columns), Int64(outF), x + first, Int64(inF),
                                                          dy, Int64(outF), dW, Int64(inF))
                } else {
                    BLAS.sgemm(transA: true, m: outF, n: columns, k: batch, a: dy, lda: outF, b: x + first, ldb: inF,
                               beta: 1, c: dW, ldc: inF)
                }
            }
            if task == 0 { self.accumulateBiasGradient(dy, batch: batch) }
        } else {
            let perTask = Linear.rowsPerTask(batch: batch)
            let first = (task - weightTasks) * perTask, rows = min(perTask, batch - first)
            let dx = self.gradInput.pointer + first * inF
            if let weight = sparse.weight {
                bndk_sparse_product(Int64(rows), Int64(outF), Int64(inF), dy + first * outF, Int64(outF), 0, weight.start,
                                    Int64(weight.stride), nil, 0, self.foldsReLU ? z + first * inF : nil, Int64(inF), dx,
                                    Int64(inF))
            } else if outF == 1 {  // dx[n] = dy[n]·w, zero where the ReLU taken in had z <= 0
                bndk_outer_product(dy + first, Int64(rows), self.weight.value.pointer, Int64(inF), nil,
                                   self.foldsReLU ? z + first * inF : nil, dx)
            } else {
                if inF == 1 {  // dx[n] = Σ_o dy[n][o]·w[o]
                    bndk_row_dots(dy + first * outF, Int64(rows), Int64(outF), 0, self.weight.value.pointer, 0, dx)
                } else {
                    BLAS.sgemm(m: rows, n: inF, k: outF, a: dy + first * outF, lda: outF, b: self.weight.value.pointer,
                               ldb: inF, beta: 0, c: dx, ldc: inF)
                }
                if self.foldsReLU { bndk_relu_select(z + first * inF, dx, dx, Int64(rows * inF)) }
            }
        }
    }

    // MARK: Skipping zeros

    /// The input of a Linear after ReLU or Dropout is mostly zeros, and so is the output gradient of one
    /// whose output goes through ReLU. A product whose left operand is like that skips its zero entries
    /// (`bndk_sparse_product`: each nonzero entry adds its multiple of one row of the right operand,
    /// which is first copied with its rows padded to whole vectors and aligned to cache lines) when:
    /// - the CPU has AVX-512 (the kernel's compresses and its 32 registers), or AVX2 and FMA for right
    ///   operands up to 64 KB (`sparseWholeRightFloats`) and for larger ones read without a ReLU (rows in
    ///   pairs: the article's 784→48 layer on the Fashion-MNIST test images, one core, 0.76-0.78 of
    ///   OpenBLAS's time; MLP-BN inference on both cores 0.72 of the time with OpenBLAS's product, median of 10
    ///   alternating rounds),
    ///   and OpenBLAS is loaded (its tuned `cblas_somatcopy` packs the right operand);
    /// - a row of the result fits in those registers (at most 128 floats), and fills at least two of them
    ///   (a narrower result is better served by OpenBLAS's products along the depth: the regression
    ///   net's 100→1 layer was slower skipping zeros);
    /// - at most half of the left operand's entries are nonzero (measured with 100×100 weights and a
    ///   batch of 50, packing included, one core: with 60% zeros the three products take 0.56-0.80 of
    ///   OpenBLAS's time, with half 0.65-0.94, with 45% 0.73-0.99, with none 1.6-2.3 times), or, for a
    ///   right operand over 64 KB, which the kernel takes in 32 KB blocks (or in groups of rows that
    ///   share one list of columns, when no ReLU is taken in: 784→48 with any share of random zeros,
    ///   one core, 0.73-0.89 of OpenBLAS's time; on the Fashion-MNIST test images 0.60, widths 32-128
    ///   0.60-0.68), at most 70% (for the blocks: the article's 784→48 layer on 10,000 Fashion-MNIST
    ///   images, one core: 0.70 of OpenBLAS's time with half the pixels nonzero, 0.79 with 70%, 0.92
    ///   with 90%; widths 32, 64 and 128: 0.68-0.72 with half, 0.84-0.85 with 70%);
    /// - the right operand is finite: 0·∞ is NaN, which a skipped term would lose.
    /// The choice depends on the data and the shapes, never on the thread count, and each result row is
    /// computed whole by one task: the bits are the same for any number of threads.
    static let skippingZerosAvailable = bndk_sparse_product_available() != 0
    static let sparseMinimumWidth = 32
    static let sparseMaximumWidth = 128
    /// The kernel's offsets into the right operand are 32-bit.
    static let sparseMaximumRightFloats = 1 << 30
    /// Right operands up to this size are read whole by the kernel, larger ones in blocks.
    static let sparseWholeRightFloats = 16 * 1024

    /// Whether right operands over `sparseWholeRightFloats` may skip zeros too (AVX-512 only: see
    /// `bndk_sparse_product_in_blocks_available`).
    static let skippingZerosInBlocksAvailable = bndk_sparse_product_in_blocks_available() != 0

    /// Whether they may when the left operand is read as it is (no ReLU taken in), its rows in groups
    /// that share one list of columns (AVX-512, or AVX2 with rows in pairs: see
    /// `bndk_sparse_product_in_groups_available`): the article's 784 -> 48 layer on the images.
    static let skippingZerosInGroupsAvailable = bndk_sparse_product_in_groups_available() != 0

    /// The most rows per call of the product in groups (see `bndk_sparse_product_group_rows`).
    static let sparseGroupRows = Int(bndk_sparse_product_group_rows())

    /// Whether a product `width` wide with a right operand of `rightFloats` floats skips zeros, its left
    /// operand read through a ReLU (`takesReLU`, the only case the backward's products ask about) or as
    /// it is.
    static func fitsSparseProduct(width: Int, rightFloats: Int, takesReLU: Bool = true) -> Bool {
        skippingZerosAvailable && width >= sparseMinimumWidth && width <= sparseMaximumWidth && rightFloats <= sparseMaximumRightFloats
            && (rightFloats <= sparseWholeRightFloats || skippingZerosInBlocksAvailable
                || (!takesReLU && skippingZerosInGroupsAvailable))
    }

    /// How many entries the sparse product would list (nonzero, or with `afterReLU` positive), counted
    /// in every row of up to 127 rows, else in every (rows / 64)-th row (at least 64 rows): the backward's
    /// choice for its two products over the whole output gradient. (The forward counts inside each task,
    /// every entry of its rows: see `forwardKernel`.) Returns the entries listed and the entries looked
    /// at. A function of the data and the shapes alone, so the choice it makes is the same for any
    /// thread count.
    static func listedShare(_ values: UnsafePointer<Float>, rows: Int, width: Int, afterReLU: Bool = false)
        -> (listed: Int, of: Int) {
        let (listed, rowsSeen) = countOnSampledRows(rows) { first, count in
            Int(bndk_count_listed(values + first * width, Int64(count * width), afterReLU ? 1 : 0))
        }
        return (listed, rowsSeen * width)
    }

    static let sparseSampleRows = 64

    /// `count(first, n)` (what rows [first, first + n) list) summed over the rows the backward's choices
    /// look at: every row of up to 127 rows (one call over them all), else every (rows / 64)-th row.
    /// Returns that sum and the number of rows looked at.
    private static func countOnSampledRows(_ rows: Int, _ count: (_ first: Int, _ n: Int) -> Int)
        -> (listed: Int, rowsSeen: Int) {
        let step = max(1, rows / sparseSampleRows)
        if step == 1 { return (count(0, rows), rows) }
        var listed = 0, seen = 0
        for row in stride(from: 0, to: rows, by: step) {
            listed += count(row, 1)
            seen += 1
        }
        return (listed, seen)
    }

    /// Whether the weight gradient dW += dyᵀ·x skips the zeros of its input x (`batch` rows of
    /// `inFeatures`): with AVX-512, a result 2-128 wide, and at most three quarters of the groups of
    /// columns the kernel takes together (4 for up to 64 outputs) listing a nonzero entry, counted on
    /// every row of up to 127 rows, else on every (batch / 64)-th; a batch of at least
    /// `sparseInputMinimumBatch`. The kernel's time against OpenBLAS's
    /// product on 512 Fashion-MNIST images, 784 -> 48, one core: 0.80 (62% of the groups listed), 1.23
    /// with every group listed; a ReLU's zeros, scattered, leave few groups empty (48 -> 24 after
    /// ReLU: 94%), so the article's later layers keep OpenBLAS. A function of the data and the shapes
    /// alone, the same for any thread count; dy must be finite besides (checked by the caller).
    @_spi(Testing) public static func skipsInputZeros(_ x: UnsafePointer<Float>, batch: Int, inFeatures: Int,
                                                      outFeatures: Int) -> Bool {
        guard sparseInputWeightGradientAvailable, outFeatures >= 2, outFeatures <= sparseMaximumWidth,
              inFeatures >= 2, batch >= sparseInputMinimumBatch else { return false }
        let group = Int(bndk_sparse_input_weight_gradient_group(Int64(outFeatures)))
        let (listed, rowsSeen) = countOnSampledRows(batch) { first, count in
            Int(bndk_count_listed_groups(x + first * inFeatures, Int64(count), Int64(inFeatures), Int64(inFeatures),
                                         Int64(group)))
        }
        return listed * 4 <= rowsSeen * tasks(inFeatures, group) * 3
    }

    /// The smallest batch whose weight gradient skips the input's zeros: with 64 samples OpenBLAS's
    /// product took 0.75-0.85 of the kernel's time (784 -> 48, one core), with 128 1.2-1.7 times it.
    static let sparseInputMinimumBatch = 128

    /// Input columns per task of that weight gradient: images' zeros lie mostly in their first and last
    /// rows, so four tasks of 196 columns (the dense product's) differ several times in work; 13 of 64
    /// keep both threads busy to the end (the split changes no bit).
    static let sparseInputColumnsPerTask = 64

    /// See `skipsInputZeros` (`bndk_sparse_input_weight_gradient_available`).
    static let sparseInputWeightGradientAvailable = bndk_sparse_input_weight_gradient_available() != 0

    /// Whether few enough of the entries are listed for skipping zeros to pay with a right operand of
    /// `rightFloats` (see above: half, or 70% for one taken in blocks).
    static func fewEnoughTerms(_ share: (listed: Int, of: Int), rightFloats: Int) -> Bool {
        share.listed <= listedLimit(entries: share.of, rightFloats: rightFloats)
    }

    /// The most of `entries` entries a left operand may list for skipping zeros to pay (see above).
    static func listedLimit(entries: Int, rightFloats: Int) -> Int {
        entries * (rightFloats > sparseWholeRightFloats ? 7 : 5) / 10
    }

    /// A right operand copied for the sparse kernel: rows `stride` floats apart (whole 16-float vectors),
    /// the first at a 64-byte boundary, so that no vector load straddles two cache lines (with 100×100
    /// weights and a batch of 50 the forward product took 7.4 µs instead of 12, the input gradient's 7.2
    /// instead of 9.1, each copy under 1 µs).
    struct Packed {
        let start: UnsafePointer<Float>
        let stride: Int
    }

    /// aᵀ (a: rows × columns) copied into `buffer` with each row padded; nil (nothing written) when
    /// OpenBLAS, whose `cblas_somatcopy` transposes, is not loaded.
    static func packTransposed(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into buffer: Buffer<Float>) throws -> Packed? {
        let packed = try paddedRows(columns, width: rows, in: buffer)
        guard BLAS.transpose(rows: rows, columns: columns, a: a, lda: columns, b: UnsafeMutablePointer(mutating: packed.start),
                             ldb: packed.stride) else { return nil }
        return packed
    }

    /// `a` (rows × columns), or its ReLU with `relu`, copied into `buffer` with each row padded (row by
    /// row in C: OpenBLAS's plain copy went one float at a time, 3 µs for 100×100, 10 times this).
    static func packRows(_ a: UnsafePointer<Float>, rows: Int, columns: Int, relu: Bool, into buffer: Buffer<Float>) throws -> Packed {
        let packed = try paddedRows(rows, width: columns, in: buffer)
        bndk_pack_rows(a, Int64(rows), Int64(columns), relu ? 1 : 0, UnsafeMutablePointer(mutating: packed.start),
                       Int64(packed.stride))
        return packed
    }

    /// Room in `buffer` for `rows` rows of `width` floats padded to whole vectors (the first at a 64-byte
    /// boundary: where every buffer starts).
    private static func paddedRows(_ rows: Int, width: Int, in buffer: Buffer<Float>) throws -> Packed {
        let stride = (width + 15) / 16 * 16
        try buffer.resize(rows * stride)
        return Packed(start: UnsafePointer(buffer.pointer), stride: stride)
    }

    /// Wᵀ for the forward pass or W for the input gradient; x and dyᵀ for the weight gradient.
    private let packedWeight = Buffer<Float>()
    private let packedInput = Buffer<Float>()
    private let packedGradient = Buffer<Float>()

    /// db += Σ_n dy[n], the sum taken over runs of 32 rows, then added (a C loop: vectorised across the
    /// outputs; see `bndk_column_sums_accumulate`).
    private func accumulateBiasGradient(_ dy: UnsafePointer<Float>, batch: Int) {
        bndk_column_sums_accumulate(dy, Int64(batch), Int64(outFeatures), bias.gradient.pointer)
    }
}

import BNDropKernels

/// One mini-batch from a `BatchLoader`. The pointers belong to the loader and stay valid until its next
/// `nextBatch()` call.
public struct Batch {
    /// The epoch this batch belongs to (0-based).
    public let epoch: Int
    /// The batch's index within its epoch (0-based).
    public let index: Int
    /// The number of samples (the loader's batch size, or fewer for the last batch of an epoch).
    public let size: Int
    /// `size`·`sampleSize` features.
    public let inputs: UnsafePointer<Float>
    /// `size` labels (classification), else nil.
    public let labels: UnsafePointer<Int32>?
    /// `size`·`targetCount` targets (regression), else nil.
    public let targets: UnsafePointer<Float>?
    /// The dataset indices of the batch's samples, in batch order.
    public let sampleIndices: UnsafeBufferPointer<Int>
    /// Features per sample.
    public let sampleSize: Int
    /// Targets per sample (0 for classification).
    public let targetCount: Int

    /// A copy of the inputs (`size`·`sampleSize` values).
    public var inputArray: [Float] { Array(UnsafeBufferPointer(start: inputs, count: size * sampleSize)) }
    /// A copy of the labels (empty for regression).
    public var labelArray: [Int32] { labels.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [] }
    /// A copy of the targets (empty for classification).
    public var targetArray: [Float] {
        targets.map { Array(UnsafeBufferPointer(start: $0, count: size * targetCount)) } ?? []
    }
}

/// A shuffling mini-batch loader, as torch.utils.data.DataLoader(shuffle=True, drop_last=…).
///
/// Each epoch visits every sample once in a fresh random order: the order is reset to 0, 1, …, n−1 and
/// shuffled by Fisher–Yates (for i from n−1 down to 1, swap i with j uniform in [0, i], drawn from
/// `SeededRandom(seed:)` by Lemire's multiply-and-reject method). The generator carries over from epoch
/// to epoch, so two loaders built with the same seed over equally sized datasets give exactly the same
/// batches, epoch after epoch. The last, smaller batch of an epoch is included unless `dropLast`.
///
/// Batches are gathered into buffers allocated once at construction; `nextBatch` allocates nothing.
/// While the caller trains on one batch, the next is gathered into a second set of buffers by the thread
/// pool's idle workers (`prefetch`; see `nextBatch`): the same values, copied earlier.
public final class BatchLoader {
    public let dataset: Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    /// The current (or last) epoch's index; -1 before the first batch.
    public private(set) var epoch = -1

    /// Whether the next batch is gathered in the background while the caller uses the current one.
    public let prefetch: Bool

    private var random: SeededRandom
    private let order: Buffer<Int>
    /// One set of batch buffers, or two when prefetching: the batch handed out and the next one.
    private let slots: [Slot]
    private var position = 0
    private var batchIndex = 0
    private var inEpoch = false
    /// The background gather under way, if any: always the batch at `position`, into
    /// `backgroundGather.slot` (set when it is offered; `startEpoch` and `reset` finish it first).
    private var ahead: BackgroundTicket?
    /// The slot of the batch handed out last.
    private var current = 0
    /// Batches handed out whose gather had been offered to the pool as background work (tests).
    @_spi(Testing) public private(set) var batchesGatheredAhead = 0

    /// The buffers one batch is gathered into.
    private struct Slot {
        let inputs: FloatBuffer
        let labels: Buffer<Int32>?
        let targets: FloatBuffer?
    }

    /// Batches whose inputs take more room than this are not prefetched (that would double the loader's
    /// memory for them): a full-batch loader over a large dataset.
    static let prefetchLimitBytes = 64 << 20

    /// - Parameters:
    ///   - shuffle: false visits the samples in order (seed unused).
    ///   - dropLast: leave out an epoch's last batch when it is smaller than `batchSize`.
    ///   - prefetch: gather each next batch in the background (a second set of batch buffers); ignored
    ///     for batches past `prefetchLimitBytes`. Either way the batches are the same.
    public init(dataset: Dataset, batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false,
                prefetch: Bool = true) throws {
        try Checked.batch(batchSize, "batch_size")
        if dropLast, dataset.count < batchSize {
            throw BNDError.shape("drop_last with \(dataset.count) samples and batch_size \(batchSize) leaves no batch")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        random = SeededRandom(seed: seed)
        let capacity = min(batchSize, dataset.count)
        order = try Buffer<Int>(uninitializedCount: dataset.count, what: "the sample order")
        for i in 0..<dataset.count { order.pointer[i] = i }
        let inputCount = try Checked.multiply(capacity, dataset.sampleSize, "batch inputs")
        self.prefetch = prefetch && inputCount <= BatchLoader.prefetchLimitBytes / MemoryLayout<Float>.stride
        var slots: [Slot] = []
        for _ in 0..<(self.prefetch ? 2 : 1) {
            slots.append(Slot(
                inputs: try FloatBuffer(count: inputCount),
                labels: dataset.isClassification ? try Buffer<Int32>(uninitializedCount: capacity, what: "batch labels") : nil,
                targets: dataset.isClassification ? nil
                    : try FloatBuffer(count: try Checked.multiply(capacity, dataset.targetCount, "batch targets"))))
        }
        self.slots = slots
        // The bytes the gather reads from: the pixels, else the features.
        let gatheredBytes = dataset.pixelStorage?.count ?? dataset.count * dataset.sampleSize * MemoryLayout<Float>.stride
        rowFetchWork = gatheredBytes >= BatchLoader.rowsFromMemoryBytes ? 1 << 14 : 0
    }

    /// The number of batches each epoch yields.
    public var batchesPerEpoch: Int {
        // Written so that no batch size, however large, overflows.
        dataset.count / batchSize + (!dropLast && dataset.count % batchSize != 0 ? 1 : 0)
    }

    /// The size of the smallest batch an epoch yields (its last one).
    public var smallestBatch: Int {
        let remainder = dataset.count % batchSize
        return dropLast || remainder == 0 ? min(batchSize, dataset.count) : remainder
    }

    deinit { finishAhead() }

    /// Starts the next epoch now (reshuffling), abandoning what is left of the current one.
    public func startEpoch() {
        finishAhead()  // (its gather reads the order about to change)
        epoch += 1
        position = 0
        batchIndex = 0
        inEpoch = true
        guard shuffle else { return }
        let p = order.pointer
        let n = dataset.count
        for i in 0..<n { p[i] = i }
        var i = n - 1
        while i > 0 {
            let j = Int(BatchLoader.uniform(below: UInt64(i + 1), using: &random))
            let t = p[i]; p[i] = p[j]; p[j] = t
            i -= 1
        }
    }

    /// Restarts from the seed's first epoch, as a freshly built loader.
    public func reset() {
        finishAhead()
        random = SeededRandom(seed: seed)
        epoch = -1
        inEpoch = false
        for i in 0..<dataset.count { order.pointer[i] = i }
    }

    /// An unbiased draw in [0, bound) (Lemire, "Fast random integer generation in an interval", 2019).
    static func uniform(below bound: UInt64, using random: inout SeededRandom) -> UInt64 {
        var m = random.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = random.next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }

    /// Samples per task of the gather: the copy of a large batch (1.6 MB of floats for 512 images) is
    /// spread over the pool's threads.
    static let samplesPerGatherTask = 32

    /// Samples per chunk of a background gather: a worker busy with one joins a region that starts
    /// meanwhile within a few microseconds (8 rows from memory: 2-3 µs on the project's VM).
    static let samplesPerBackgroundChunk = 8

    /// What the gather's cost counts per sample besides its values (a copied value costs about four
    /// arithmetic operations): in a dataset past the caches (`rowsFromMemoryBytes`), each sample's row sits
    /// at a random place and comes from memory, 200-300 ns a row on the project's VM whatever was asked
    /// for ahead (bench/NOTES.md). Counted so, a batch of 64 images (two tasks) is worth both threads,
    /// whose waits on memory overlap: the MLP-BN epoch in batches of 64 took 0.89-0.93 of its time
    /// (paired medians of 12 alternating runs, two series). A small dataset stays in cache: not counted.
    private let rowFetchWork: Int
    static let rowsFromMemoryBytes = 16 << 20

    /// Samples [first, first + count) of the batch at `indices` (its sample indices in `dataset`) into `slot`.
    private static func gather(_ dataset: Dataset, _ indices: UnsafePointer<Int>, first: Int, count: Int,
                               into slot: Slot) {
        let sampleSize = dataset.sampleSize
        indices.withMemoryRebound(to: Int64.self, capacity: first + count) { indices64 in
            let destination = slot.inputs.pointer + first * sampleSize, rows = indices64 + first
            if let pixels = dataset.pixelStorage {
                // An IDX dataset: its bytes, converted to the very floats `features` holds.
                bndk_gather_unit_bytes(destination, pixels.pointer, rows, Int64(count), Int64(sampleSize))
            } else {
                bndk_gather_rows(destination, dataset.features, rows, Int64(count), Int64(sampleSize))
            }
        }
        if let labels = dataset.labels, let out = slot.labels?.pointer {
            for k in first..<(first + count) { out[k] = labels[indices[k]] }
        }
        if let targets = dataset.targets, let out = slot.targets?.pointer {
            let t = dataset.targetCount
            for k in first..<(first + count) { (out + k * t).update(from: targets + indices[k] * t, count: t) }
        }
    }

    /// Task `task` of the gather: samples [32·task, 32·task + 32) of the batch into a slot.
    private lazy var gatherKernel = ParallelKernel<(UnsafePointer<Int>, Int, Int)> { [unowned(unsafe) self] arguments, task in
        let (indices, size, slot) = arguments
        let first = task * BatchLoader.samplesPerGatherTask
        BatchLoader.gather(self.dataset, indices, first: first, count: min(BatchLoader.samplesPerGatherTask, size - first),
                           into: self.slots[slot])
    }

    /// The background gather: chunk `chunk` is samples [8·chunk, 8·chunk + 8) of the batch into a slot.
    /// It holds what it reads and writes (the dataset, the buffers), never the loader: a worker that
    /// took a reference to the loader for a chunk could hold its last one when the caller drops it, and
    /// releasing that would run the loader's deinit on the worker, where it waits for the worker's own
    /// chunk (a deadlock that the full test suite met about once in ten runs). The sample indices point
    /// into the loader's order, which its deinit keeps until the gather is finished.
    private final class BackgroundGather: ParallelWork {
        let dataset: Dataset
        let slots: [Slot]
        var indices: UnsafePointer<Int>?
        var size = 0
        var slot = 0
        init(dataset: Dataset, slots: [Slot]) {
            self.dataset = dataset
            self.slots = slots
        }
        func perform(_ chunk: Int, thread: Int) {
            guard let indices else { return }
            let first = chunk * BatchLoader.samplesPerBackgroundChunk
            BatchLoader.gather(dataset, indices, first: first,
                               count: min(BatchLoader.samplesPerBackgroundChunk, size - first), into: slots[slot])
        }
    }
    private lazy var backgroundGather = BackgroundGather(dataset: dataset, slots: slots)

    /// The size of the batch starting at `position` of the epoch (0: none, the epoch is over).
    private func batchSize(at position: Int) -> Int {
        let size = min(batchSize, dataset.count - position)
        return size == 0 || (dropLast && size < batchSize) ? 0 : size
    }

    /// Waits for the background gather, if one is under way, and forgets it.
    private func finishAhead() {
        if let ahead { ThreadPool.shared.finishBackground(ahead) }
        ahead = nil
    }

    /// The next batch of the current epoch, starting a new epoch first when none is running; nil once the
    /// epoch is exhausted (the call after that starts the next epoch). So `while let b = loader.nextBatch()`
    /// runs exactly one epoch.
    ///
    /// With `prefetch`, the batch after the one returned is then offered to the thread pool as a background
    /// job (`ThreadPool.postBackground`), gathered into the other set of buffers by workers while they
    /// would otherwise wait (during a training step's serial stretches); the next call finishes what they
    /// left. The batch returned is never written meanwhile: its buffers are the other set.
    public func nextBatch() -> Batch? {
        if !inEpoch { startEpoch() }
        let size = batchSize(at: position)
        if size == 0 {  // (no gather is under way: none is offered past an epoch's last batch)
            inEpoch = false
            return nil
        }
        let indices = order.pointer + position
        let slot: Int
        if ahead != nil {
            finishAhead()
            slot = backgroundGather.slot
            batchesGatheredAhead += 1
        } else {
            slot = (current + 1) % slots.count
            gatherKernel.run(tasks(size, BatchLoader.samplesPerGatherTask), (UnsafePointer(indices), size, slot),
                             work: size * (4 * dataset.sampleSize + rowFetchWork))
        }
        current = slot
        let buffers = slots[slot]
        let batch = Batch(epoch: epoch, index: batchIndex, size: size, inputs: UnsafePointer(buffers.inputs.pointer),
                          labels: buffers.labels.map { UnsafePointer($0.pointer) },
                          targets: buffers.targets.map { UnsafePointer($0.pointer) },
                          sampleIndices: UnsafeBufferPointer(start: indices, count: size),
                          sampleSize: dataset.sampleSize, targetCount: dataset.targetCount)
        position += size
        batchIndex += 1
        let nextSize = batchSize(at: position)
        if slots.count > 1, nextSize > 0 {
            let job = backgroundGather
            job.indices = UnsafePointer(order.pointer + position)
            job.size = nextSize
            job.slot = 1 - slot
            let ticket = ThreadPool.shared.postBackground(tasks(nextSize, BatchLoader.samplesPerBackgroundChunk), job)
            // (Not taken, as with one thread: the next call gathers it as this one did.)
            if ticket.offered { ahead = ticket }
        }
        return batch
    }
}

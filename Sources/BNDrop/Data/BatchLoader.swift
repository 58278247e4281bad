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
public final class BatchLoader {
    public let dataset: Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    /// The current (or last) epoch's index; -1 before the first batch.
    public private(set) var epoch = -1

    private var random: SeededRandom
    private let order: Buffer<Int>
    private let inputBuffer: FloatBuffer
    private let labelBuffer: Buffer<Int32>?
    private let targetBuffer: FloatBuffer?
    private var position = 0
    private var batchIndex = 0
    private var inEpoch = false

    /// - Parameters:
    ///   - shuffle: false visits the samples in order (seed unused).
    ///   - dropLast: leave out an epoch's last batch when it is smaller than `batchSize`.
    public init(dataset: Dataset, batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false) throws {
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
        inputBuffer = try FloatBuffer(count: try Checked.multiply(capacity, dataset.sampleSize, "batch inputs"))
        labelBuffer = dataset.isClassification ? try Buffer<Int32>(uninitializedCount: capacity, what: "batch labels") : nil
        targetBuffer = dataset.isClassification ? nil
            : try FloatBuffer(count: try Checked.multiply(capacity, dataset.targetCount, "batch targets"))
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

    /// Starts the next epoch now (reshuffling), abandoning what is left of the current one.
    public func startEpoch() {
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

    /// What the gather's cost counts per sample besides its values (a copied value costs about four
    /// arithmetic operations): in a dataset past the caches (`rowsFromMemoryBytes`), each sample's row sits
    /// at a random place and comes from memory, 200-300 ns a row on the project's VM whatever was asked
    /// for ahead (bench/NOTES.md). Counted so, a batch of 64 images (two tasks) is worth both threads,
    /// whose waits on memory overlap: the MLP-BN epoch in batches of 64 took 0.89-0.93 of its time
    /// (paired medians of 12 alternating runs, two series). A small dataset stays in cache: not counted.
    private let rowFetchWork: Int
    static let rowsFromMemoryBytes = 16 << 20

    /// Task `task` of the gather: samples [32·task, 32·task + 32) of the batch into the input buffer.
    private lazy var gatherKernel = ParallelKernel<(UnsafePointer<Int>, Int)> { [unowned(unsafe) self] arguments, task in
        let (indices, size) = arguments
        let sampleSize = self.dataset.sampleSize, inputs = self.inputBuffer.pointer
        let first = task * BatchLoader.samplesPerGatherTask
        let count = min(BatchLoader.samplesPerGatherTask, size - first)
        indices.withMemoryRebound(to: Int64.self, capacity: size) { indices64 in
            let destination = inputs + first * sampleSize, rows = indices64 + first
            if let pixels = self.dataset.pixelStorage {
                // An IDX dataset: its bytes, converted to the very floats `features` holds.
                bndk_gather_unit_bytes(destination, pixels.pointer, rows, Int64(count), Int64(sampleSize))
            } else {
                bndk_gather_rows(destination, self.dataset.features, rows, Int64(count), Int64(sampleSize))
            }
        }
    }

    /// The next batch of the current epoch, starting a new epoch first when none is running; nil once the
    /// epoch is exhausted (the call after that starts the next epoch). So `while let b = loader.nextBatch()`
    /// runs exactly one epoch.
    public func nextBatch() -> Batch? {
        if !inEpoch { startEpoch() }
        let remaining = dataset.count - position
        let size = min(batchSize, remaining)
        if size == 0 || (dropLast && size < batchSize) {
            inEpoch = false
            return nil
        }
        let sampleSize = dataset.sampleSize
        let indices = order.pointer + position
        let inputs = inputBuffer.pointer
        gatherKernel.run(tasks(size, BatchLoader.samplesPerGatherTask), (UnsafePointer(indices), size),
                         work: size * (4 * sampleSize + rowFetchWork))
        if let labels = dataset.labels, let out = labelBuffer?.pointer {
            for k in 0..<size { out[k] = labels[indices[k]] }
        }
        if let targets = dataset.targets, let out = targetBuffer?.pointer {
            let t = dataset.targetCount
            for k in 0..<size { (out + k * t).update(from: targets + indices[k] * t, count: t) }
        }
        let batch = Batch(epoch: epoch, index: batchIndex, size: size, inputs: UnsafePointer(inputs),
                          labels: labelBuffer.map { UnsafePointer($0.pointer) },
                          targets: targetBuffer.map { UnsafePointer($0.pointer) },
                          sampleIndices: UnsafeBufferPointer(start: indices, count: size),
                          sampleSize: sampleSize, targetCount: dataset.targetCount)
        position += size
        batchIndex += 1
        return batch
    }
}

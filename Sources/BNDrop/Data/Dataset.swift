import Glibc

/// A data set held in memory: `count` samples of `sampleShape` float32 features, each with either an
/// integer class label (classification) or `targetCount` float targets (regression).
///
/// Features are stored contiguously, sample after sample (`count`·`sampleSize` floats). Images read from
/// IDX files are scaled to [0, 1] as uint8/255 (what torchvision's ToTensor does); their sample shape is
/// [1, rows, cols], which `reshape` can change to the flat [rows·cols] an MLP takes. Every constructor
/// copies its input; a `Dataset` never changes its values afterwards.
public final class Dataset {
    /// Which of the standard MNIST files `loadDirectory` reads.
    public enum Split: Int32, Sendable {
        /// train-images-idx3-ubyte / train-labels-idx1-ubyte
        case train = 0
        /// t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte
        case test = 1
    }

    /// The number of samples (at least 1).
    public let count: Int
    /// One sample's shape, 1 to 3 positive dimensions ([784], [1, 28, 28], ...).
    public private(set) var sampleShape: [Int]
    /// The number of features per sample (the product of `sampleShape`).
    public let sampleSize: Int
    /// The number of classes for classification (labels are in 0..<classes); 0 for regression.
    public let classes: Int
    /// Float targets per sample for regression; 0 for classification.
    public let targetCount: Int

    let featureStorage: FloatBuffer
    let labelStorage: Buffer<Int32>?
    let targetStorage: FloatBuffer?
    /// An IDX dataset's pixels as read, of which `features` are exactly pixel/255; nil for datasets made
    /// from floats. The batch loader gathers these (a quarter of the bytes of the floats) and converts
    /// them to the same bits.
    let pixelStorage: Buffer<UInt8>?

    public var isClassification: Bool { labelStorage != nil }

    /// Whether no feature is NaN or infinite (checked once at creation; the features never change), so
    /// the training steps of `fit` need not check each batch again.
    let featuresAreFinite: Bool
    /// All features, `count`·`sampleSize` values, valid as long as the dataset lives.
    public var features: UnsafePointer<Float> { UnsafePointer(featureStorage.pointer) }
    /// All labels (`count` values), nil for a regression dataset.
    public var labels: UnsafePointer<Int32>? { labelStorage.map { UnsafePointer($0.pointer) } }
    /// All targets (`count`·`targetCount` values), nil for a classification dataset.
    public var targets: UnsafePointer<Float>? { targetStorage.map { UnsafePointer($0.pointer) } }

    /// A copy of all features.
    public var featureArray: [Float] { featureStorage.array }
    /// A copy of all labels (empty for regression).
    public var labelArray: [Int32] { labelStorage.map { Array($0.buffer) } ?? [] }
    /// A copy of all targets (empty for classification).
    public var targetArray: [Float] { targetStorage?.array ?? [] }

    private init(count: Int, sampleShape: [Int], sampleSize: Int, classes: Int, targetCount: Int,
                 features: FloatBuffer, labels: Buffer<Int32>?, targets: FloatBuffer?,
                 pixels: Buffer<UInt8>? = nil) {
        self.count = count
        self.sampleShape = sampleShape
        self.sampleSize = sampleSize
        self.classes = classes
        self.targetCount = targetCount
        featureStorage = features
        labelStorage = labels
        targetStorage = targets
        pixelStorage = pixels
        featuresAreFinite = Checked.firstNonFinite(features.pointer, count * sampleSize) == nil
    }

    // MARK: Constructors

    /// The number of features of `shape`, or a thrown `.shape` error.
    static func checkedSampleSize(_ shape: [Int]) throws -> Int {
        guard (1...3).contains(shape.count), shape.allSatisfy({ $0 > 0 }) else {
            throw BNDError.shape("a sample shape needs rank 1 to 3 and positive dimensions, got \(shape)")
        }
        let size = try Checked.product(shape, "sample shape")
        guard size <= IDX.maxElements else {
            throw BNDError.shape("sample shape \(shape) has \(size) elements, more than \(IDX.maxElements)")
        }
        return size
    }

    /// Checks `labels` (all ≥ 0 and below `classes` when given) and returns the number of classes.
    static func checkedClasses(_ labels: UnsafeBufferPointer<Int32>, classes: Int?) throws -> Int {
        var maxLabel: Int32 = -1
        for (i, label) in labels.enumerated() {
            guard label >= 0 else {
                throw BNDError.invalidArgument("label \(label) of sample \(i) is negative: labels must be class indices ≥ 0")
            }
            if label > maxLabel { maxLabel = label }
        }
        guard let classes else { return Int(maxLabel) + 1 }
        guard classes > 0, classes > Int(maxLabel) else {
            throw BNDError.invalidArgument("classes is \(classes) but the labels go up to \(maxLabel): "
                                           + "labels must be in [0, classes)")
        }
        return classes
    }

    /// A classification dataset copied from `count`·`sampleSize` features and `count` labels.
    /// - Parameter classes: the number of classes; nil means the largest label + 1.
    public convenience init(features: UnsafePointer<Float>, sampleShape: [Int], labels: UnsafePointer<Int32>,
                            count: Int, classes: Int? = nil) throws {
        let size = try Dataset.checkedSampleSize(sampleShape)
        guard count > 0 else { throw BNDError.shape("count must be positive (a dataset needs at least 1 sample), got \(count)") }
        let total = try Checked.multiply(count, size, "dataset features")
        let classCount = try Dataset.checkedClasses(UnsafeBufferPointer(start: labels, count: count), classes: classes)
        let featureBuffer = try FloatBuffer(count: total)
        featureBuffer.copy(from: features)
        let labelBuffer = try Buffer<Int32>(uninitializedCount: count, what: "dataset labels")
        labelBuffer.pointer.update(from: labels, count: count)
        self.init(count: count, sampleShape: sampleShape, sampleSize: size, classes: classCount, targetCount: 0,
                  features: featureBuffer, labels: labelBuffer, targets: nil)
    }

    /// A classification dataset copied from arrays: `features.count` must be `labels.count`·`sampleSize`.
    public convenience init(features: [Float], sampleShape: [Int], labels: [Int32], classes: Int? = nil) throws {
        let size = try Dataset.checkedSampleSize(sampleShape)
        guard !labels.isEmpty else { throw BNDError.shape("a dataset needs at least 1 sample, got 0 labels") }
        guard features.count == labels.count * size else {
            throw BNDError.shape("\(features.count) feature values do not match \(labels.count) labels × "
                                 + "\(size) values per sample of shape \(sampleShape)")
        }
        let made = try features.withUnsafeBufferPointer { x in
            try labels.withUnsafeBufferPointer { y in
                try Dataset(features: x.baseAddress!, sampleShape: sampleShape, labels: y.baseAddress!,
                            count: labels.count, classes: classes)
            }
        }
        self.init(count: made.count, sampleShape: made.sampleShape, sampleSize: made.sampleSize,
                  classes: made.classes, targetCount: 0, features: made.featureStorage,
                  labels: made.labelStorage, targets: nil)
    }

    /// A regression dataset copied from `count`·`sampleSize` features and `count`·`targetCount` targets.
    public convenience init(features: UnsafePointer<Float>, sampleShape: [Int], targets: UnsafePointer<Float>,
                            targetCount: Int, count: Int) throws {
        let size = try Dataset.checkedSampleSize(sampleShape)
        guard count > 0 else { throw BNDError.shape("count must be positive (a dataset needs at least 1 sample), got \(count)") }
        guard targetCount > 0 else { throw BNDError.shape("targetCount must be positive, got \(targetCount)") }
        let total = try Checked.multiply(count, size, "dataset features")
        let targetTotal = try Checked.multiply(count, targetCount, "dataset targets")
        let featureBuffer = try FloatBuffer(count: total)
        featureBuffer.copy(from: features)
        let targetBuffer = try FloatBuffer(count: targetTotal)
        targetBuffer.copy(from: targets)
        self.init(count: count, sampleShape: sampleShape, sampleSize: size, classes: 0, targetCount: targetCount,
                  features: featureBuffer, labels: nil, targets: targetBuffer)
    }

    /// A regression dataset copied from arrays: `targets.count / targetCount` samples, and
    /// `features.count` must be that many samples of `sampleShape`.
    public convenience init(features: [Float], sampleShape: [Int], targets: [Float], targetCount: Int = 1) throws {
        let size = try Dataset.checkedSampleSize(sampleShape)
        guard targetCount > 0 else { throw BNDError.shape("targetCount must be positive, got \(targetCount)") }
        guard !targets.isEmpty, targets.count % targetCount == 0 else {
            throw BNDError.shape("\(targets.count) target values are not a whole, non-empty number of samples of "
                                 + "\(targetCount) targets")
        }
        let count = targets.count / targetCount
        guard features.count == count * size else {
            throw BNDError.shape("\(features.count) feature values do not match \(count) samples × \(size) values "
                                 + "per sample of shape \(sampleShape)")
        }
        let made = try features.withUnsafeBufferPointer { x in
            try targets.withUnsafeBufferPointer { t in
                try Dataset(features: x.baseAddress!, sampleShape: sampleShape, targets: t.baseAddress!,
                            targetCount: targetCount, count: count)
            }
        }
        self.init(count: made.count, sampleShape: made.sampleShape, sampleSize: made.sampleSize, classes: 0,
                  targetCount: targetCount, features: made.featureStorage, labels: nil, targets: made.targetStorage)
    }

    /// The default of `loadIDX`'s and `loadDirectory`'s `maxBytes`: 4 GiB of float32 features
    /// (over 1.3 million 28×28 images; Fashion-MNIST's training set takes 188 MB).
    public static let defaultMaxBytes = 4 << 30

    /// Images and labels from two IDX files (gzip-compressed or not): images must be 3-D
    /// (count × rows × cols, uint8), labels 1-D (count, uint8) with the same count. Pixels become
    /// float32 value/255 in [0, 1]; the sample shape is [1, rows, cols]. The pixel bytes are kept too (a
    /// quarter more memory): batch loaders gather them instead of the floats, four times fewer bytes.
    ///
    /// The files are streamed, the labels first: each header is checked first (the images' count against
    /// the labels' before any image is decompressed), the dataset's storage is then allocated once (a
    /// failure is `.outOfMemory`) and filled as the data is decompressed, through one 64 KiB buffer, so
    /// the peak memory is the dataset itself.
    /// - Parameter classes: the number of classes; nil means the largest label + 1.
    /// - Parameter maxBytes: the most memory the images may take as float32 (4 bytes per pixel); a file
    ///   declaring more is refused with `.outOfMemory` before anything is allocated or decompressed (a
    ///   legal file, too large for this limit; raise it to load it). The pixel bytes take 1 byte per pixel
    ///   more, the labels 4 bytes per image (a label file declaring more than `maxBytes` of them is
    ///   refused the same way).
    public static func loadIDX(images: String, labels: String, classes: Int? = nil,
                               maxBytes: Int = defaultMaxBytes) throws -> Dataset {
        guard maxBytes >= 0 else { throw BNDError.invalidArgument("maxBytes must be >= 0, got \(maxBytes)") }
        // Both files must be there (the images are named first when neither is). The labels are read first
        // (a few bytes per image): a count that differs from the images' is then found at the images'
        // header, before their data is decompressed or anything is allocated for it.
        try IDX.regularFile(images)
        try IDX.regularFile(labels)
        /// `.outOfMemory` when `elements` of `elementBytes` each exceed `maxBytes`; `need(bytes)` says what
        /// needs that many bytes.
        func withinLimit(_ elements: Int, _ elementBytes: Int, _ need: (String) -> String) throws {
            let (bytes, overflow) = elements.multipliedReportingOverflow(by: elementBytes)
            guard !overflow, bytes <= maxBytes else {
                throw BNDError.outOfMemory(need(overflow ? "too many" : String(bytes)) + ", above the dataset memory "
                                           + "limit of \(maxBytes) bytes (raise maxBytes / bnd_load_params.max_bytes "
                                           + "to load it)")
            }
        }
        var labelBuffer: Buffer<Int32>?
        var maxLabel: UInt8 = 0
        let labelHeader = try IDX.stream(path: labels, dimensions: 1, accept: { dims, total in
            try withinLimit(total, MemoryLayout<Int32>.stride) { "\(labels): \(dims[0]) labels need \($0) bytes" }
        }, prepare: { _, total in
            labelBuffer = try Buffer<Int32>(uninitializedCount: total, what: "the labels of \(labels)")
        }, consume: { chunk, offset in
            let out = labelBuffer!.pointer + offset
            for i in 0..<chunk.count {
                out[i] = Int32(chunk[i])
                maxLabel = max(maxLabel, chunk[i])
            }
        })
        let count = labelHeader.dims[0]
        var featureBuffer: FloatBuffer?
        var pixelBuffer: Buffer<UInt8>?
        let imageHeader = try IDX.stream(path: images, dimensions: 3, accept: { dims, total in
            guard dims[0] == count else {
                throw BNDError.format("image/label count mismatch: \(images) has \(dims[0]) images but \(labels) has "
                                      + "\(count) labels")
            }
            try withinLimit(total, MemoryLayout<Float>.stride) {
                "\(images): dimensions \(dims) need \(total) float32 values (\($0) bytes)"
            }
        }, prepare: { _, total in
            featureBuffer = try FloatBuffer(uninitializedCount: total, what: "the images of \(images)")
            pixelBuffer = try Buffer<UInt8>(uninitializedCount: total, what: "the pixels of \(images)")
        }, consume: { chunk, offset in
            let out = featureBuffer!.pointer + offset
            for i in 0..<chunk.count { out[i] = Float(chunk[i]) / 255 }
            if let bytes = chunk.baseAddress { (pixelBuffer!.pointer + offset).update(from: bytes, count: chunk.count) }
        })
        guard let labelBuffer else { throw BNDError.internalError("labels read without their buffer") }
        if let classes, classes <= Int(maxLabel) {
            throw BNDError.invalidArgument("classes is \(classes) but \(labels) has labels up to \(maxLabel)")
        }
        let shape = [1, imageHeader.dims[1], imageHeader.dims[2]]
        return Dataset(count: count, sampleShape: shape, sampleSize: imageHeader.dims[1] * imageHeader.dims[2],
                       classes: classes ?? Int(maxLabel) + 1, targetCount: 0, features: featureBuffer!,
                       labels: labelBuffer, targets: nil, pixels: pixelBuffer)
    }

    /// The file names `loadDirectory` looks for (each also with ".gz").
    public static func idxFileNames(split: Split) -> (images: String, labels: String) {
        switch split {
        case .train: return ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
        case .test: return ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        }
    }

    /// The MNIST-layout split in `directory` (e.g. /usr/share/datasets/fashion-mnist): each file is taken
    /// uncompressed if present, else with ".gz".
    /// `maxBytes`: as in `loadIDX`.
    public static func loadDirectory(_ directory: String, split: Split, classes: Int? = nil,
                                     maxBytes: Int = defaultMaxBytes) throws -> Dataset {
        var info = stat()
        guard stat(directory, &info) == 0 else {
            throw BNDError.io("\(directory): cannot open dataset directory: \(systemError(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw BNDError.io("\(directory): not a directory")
        }
        let names = idxFileNames(split: split)
        func find(_ name: String) throws -> String {
            let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            for candidate in [base, base + ".gz"] {
                var st = stat()
                if stat(candidate, &st) == 0 { return candidate }
            }
            throw BNDError.io("\(base): missing file: neither \(name) nor \(name).gz exists in \(directory)")
        }
        return try loadIDX(images: find(names.images), labels: find(names.labels), classes: classes,
                           maxBytes: maxBytes)
    }

    // MARK: Access

    /// Changes the sample shape to `shape`, which must have the same number of elements
    /// (e.g. [1, 28, 28] to [784]). The data is not moved.
    public func reshape(_ shape: [Int]) throws {
        let size = try Dataset.checkedSampleSize(shape)
        guard size == sampleSize else {
            throw BNDError.shape("cannot reshape samples of shape \(sampleShape) (\(sampleSize) values) to \(shape) "
                                 + "(\(size) values)")
        }
        sampleShape = shape
    }

    private func checkIndex(_ index: Int) throws {
        guard index >= 0, index < count else {
            throw BNDError.invalidArgument("sample index \(index) is out of range 0..<\(count)")
        }
    }

    /// The features of sample `index`.
    public func sample(_ index: Int) throws -> [Float] {
        try checkIndex(index)
        return Array(UnsafeBufferPointer(start: features + index * sampleSize, count: sampleSize))
    }

    /// The label of sample `index` (classification only).
    public func label(_ index: Int) throws -> Int32 {
        try checkIndex(index)
        guard let labels else { throw BNDError.state("a regression dataset has targets, not labels") }
        return labels[index]
    }

    /// The targets of sample `index` (regression only).
    public func target(_ index: Int) throws -> [Float] {
        try checkIndex(index)
        guard let targets else { throw BNDError.state("a classification dataset has labels, not targets") }
        return Array(UnsafeBufferPointer(start: targets + index * targetCount, count: targetCount))
    }

    /// Copies samples `first ..< first + count` into the given buffers (any may be nil): their features
    /// (`count`·`sampleSize`), labels (classification) or targets (regression). A range outside the
    /// dataset or a buffer without room is `.shape`; asking for labels of a regression dataset (or
    /// targets of a classification one) is `.invalidArgument`. Nothing is written unless all is well.
    public func copySamples(first: Int, count k: Int, features: UnsafeMutableBufferPointer<Float>?,
                            labels outLabels: UnsafeMutableBufferPointer<Int32>?,
                            targets outTargets: UnsafeMutableBufferPointer<Float>?) throws {
        guard first >= 0, k >= 0, first <= count, k <= count - first else {
            throw BNDError.shape("samples \(first) ..< \(first) + \(k) are outside the dataset's 0 ..< \(count)")
        }
        if isClassification, outTargets != nil {
            throw BNDError.invalidArgument("a classification dataset has class labels, not targets: ask for no targets")
        }
        if !isClassification, outLabels != nil {
            throw BNDError.invalidArgument("a regression dataset has float targets, not labels: ask for no labels")
        }
        // Within the dataset, so these products fit (it holds count·sampleSize values).
        if let features { try Checked.room(features, k * sampleSize, "features") }
        if let outLabels { try Checked.room(outLabels, k, "labels") }
        if let outTargets { try Checked.room(outTargets, k * targetCount, "targets") }
        guard k > 0 else { return }
        features?.baseAddress?.update(from: self.features + first * sampleSize, count: k * sampleSize)
        if let dst = outLabels?.baseAddress, let labels { dst.update(from: labels + first, count: k) }
        if let dst = outTargets?.baseAddress, let targets {
            dst.update(from: targets + first * targetCount, count: k * targetCount)
        }
    }

    /// A copy of the samples in `range` (same shape and number of classes).
    public func subset(_ range: Range<Int>) throws -> Dataset {
        guard range.lowerBound >= 0, range.upperBound <= count, !range.isEmpty else {
            throw BNDError.invalidArgument("subset \(range) must be a non-empty range inside 0..<\(count)")
        }
        let n = range.count
        let featureBuffer = try FloatBuffer(count: n * sampleSize)
        featureBuffer.copy(from: features + range.lowerBound * sampleSize)
        var labelBuffer: Buffer<Int32>?
        var targetBuffer: FloatBuffer?
        if let labels {
            let storage = try Buffer<Int32>(uninitializedCount: n, what: "dataset labels")
            storage.pointer.update(from: labels + range.lowerBound, count: n)
            labelBuffer = storage
        }
        if let targets {
            let buffer = try FloatBuffer(count: n * targetCount)
            buffer.copy(from: targets + range.lowerBound * targetCount)
            targetBuffer = buffer
        }
        var pixelBuffer: Buffer<UInt8>?
        if let pixels = pixelStorage {
            let storage = try Buffer<UInt8>(uninitializedCount: n * sampleSize, what: "dataset pixels")
            storage.pointer.update(from: pixels.pointer + range.lowerBound * sampleSize, count: n * sampleSize)
            pixelBuffer = storage
        }
        return Dataset(count: n, sampleShape: sampleShape, sampleSize: sampleSize, classes: classes,
                       targetCount: targetCount, features: featureBuffer, labels: labelBuffer, targets: targetBuffer,
                       pixels: pixelBuffer)
    }
}

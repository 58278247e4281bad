// Datasets and mini-batch loaders: bnd_dataset_* and bnd_loader_*.
//
// Everything a C caller passes is validated here before the Swift core sees it (ranks before a shape
// array is read, signs and overflow of every size, kinds of out pointers, capacities), so the core's
// own checks are a second line that should never be the one to fire for the documented statuses.
import BNDrop
import BNDropCSupport

// MARK: - Argument helpers

/// A C sample shape: `rank` (1 to 3) positive dimensions whose product fits an `Int`. The rank is
/// checked before the array is read.
func readSampleShape(_ pointer: UnsafePointer<Int64>?, _ rank: UInt) throws -> (shape: [Int], size: Int) {
    let values = try required(pointer, "sample_shape")
    guard (1...3).contains(rank) else {
        throw BNDError.shape("sample shape rank must be 1 to 3 ({features}, {C, L} or {C, H, W}), got \(rank)")
    }
    var shape: [Int] = []
    var size = 1
    for i in 0..<Int(rank) {
        guard values[i] > 0, let d = Int(exactly: values[i]) else {
            throw BNDError.shape("sample shape dimension \(i) must be positive, got \(values[i])")
        }
        let (product, overflow) = size.multipliedReportingOverflow(by: d)
        guard !overflow else {
            throw BNDError.shape("sample shape \(Array(UnsafeBufferPointer(start: values, count: Int(rank)))) "
                                 + "has too many elements")
        }
        shape.append(d)
        size = product
    }
    return (shape, size)
}

/// A positive `int64_t` count as an `Int` (BND_ERR_SHAPE otherwise).
func positiveCount(_ value: Int64, _ name: StaticString) throws -> Int {
    guard value > 0, let result = Int(exactly: value) else {
        throw BNDError.shape("\(name) must be positive, got \(value)")
    }
    return result
}

/// `a`·`b`, or BND_ERR_SHAPE naming `what` when it overflows.
func checkedProduct(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    guard !overflow else { throw BNDError.shape("\(what): \(a) × \(b) values overflow") }
    return product
}

private func publish(_ dataset: Dataset, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = OpaquePointer(Unmanaged.passRetained(DatasetBox(dataset)).toOpaque())
}

// MARK: - Creating datasets

@_cdecl("bnd_dataset_load_idx")
public func bnd_dataset_load_idx(_ imagesPath: UnsafePointer<CChar>?, _ labelsPath: UnsafePointer<CChar>?,
                                 _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_load_idx") {
        let images = try text(imagesPath, "images_path")
        let labels = try text(labelsPath, "labels_path")
        let out = try required(outDataset, "out_dataset")
        publish(try Dataset.loadIDX(images: images, labels: labels), out)
    }
}

@_cdecl("bnd_dataset_load_dir")
public func bnd_dataset_load_dir(_ directory: UnsafePointer<CChar>?, _ split: Int32,
                                 _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_load_dir") {
        let directory = try text(directory, "directory")
        let out = try required(outDataset, "out_dataset")
        guard let which = Dataset.Split(rawValue: split) else {
            throw BNDError.invalidArgument("split must be BND_SPLIT_TRAIN (0) or BND_SPLIT_TEST (1), got \(split)")
        }
        publish(try Dataset.loadDirectory(directory, split: which), out)
    }
}

@_cdecl("bnd_dataset_from_labels")
public func bnd_dataset_from_labels(_ features: UnsafePointer<Float>?, _ sampleShape: UnsafePointer<Int64>?,
                                    _ rank: UInt, _ labels: UnsafePointer<Int32>?, _ count: Int64,
                                    _ classes: Int64, _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_from_labels") {
        let features = try required(features, "features")
        let labels = try required(labels, "labels")
        let out = try required(outDataset, "out_dataset")
        let (shape, size) = try readSampleShape(sampleShape, rank)
        let n = try positiveCount(count, "count")
        _ = try checkedProduct(n, size, "features")
        var classCount: Int?
        if classes != 0 {
            guard classes > 0, let c = Int(exactly: classes) else {
                throw BNDError.invalidArgument("classes must be positive (or 0 for the largest label + 1), got \(classes)")
            }
            classCount = c
        }
        publish(try Dataset(features: features, sampleShape: shape, labels: labels, count: n, classes: classCount), out)
    }
}

@_cdecl("bnd_dataset_from_targets")
public func bnd_dataset_from_targets(_ features: UnsafePointer<Float>?, _ sampleShape: UnsafePointer<Int64>?,
                                     _ rank: UInt, _ targets: UnsafePointer<Float>?, _ targetCount: Int64,
                                     _ count: Int64, _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_from_targets") {
        let features = try required(features, "features")
        let targets = try required(targets, "targets")
        let out = try required(outDataset, "out_dataset")
        let (shape, size) = try readSampleShape(sampleShape, rank)
        let t = try positiveCount(targetCount, "target_count")
        let n = try positiveCount(count, "count")
        _ = try checkedProduct(n, size, "features")
        _ = try checkedProduct(n, t, "targets")
        publish(try Dataset(features: features, sampleShape: shape, targets: targets, targetCount: t, count: n), out)
    }
}

@_cdecl("bnd_dataset_free")
public func bnd_dataset_free(_ dataset: OpaquePointer?) {
    guard let dataset else { return }
    Unmanaged<DatasetBox>.fromOpaque(UnsafeRawPointer(dataset)).release()
}

// MARK: - Inspecting and reading

@_cdecl("bnd_dataset_info")
public func bnd_dataset_info(_ dataset: OpaquePointer?, _ outCount: UnsafeMutablePointer<Int64>?,
                             _ outClasses: UnsafeMutablePointer<Int64>?,
                             _ outTargetCount: UnsafeMutablePointer<Int64>?) -> bnd_status {
    api("bnd_dataset_info") {
        let data = try datasetBox(dataset).dataset
        outCount?.pointee = Int64(data.count)
        outClasses?.pointee = Int64(data.classes)
        outTargetCount?.pointee = Int64(data.targetCount)
    }
}

@_cdecl("bnd_dataset_sample_shape")
public func bnd_dataset_sample_shape(_ dataset: OpaquePointer?, _ outShape: UnsafeMutablePointer<Int64>?,
                                     _ capacity: UInt, _ outRank: UnsafeMutablePointer<UInt>?) -> bnd_status {
    api("bnd_dataset_sample_shape") {
        let data = try datasetBox(dataset).dataset
        try writeShape(data.sampleShape, outShape, capacity, outRank)
    }
}

@_cdecl("bnd_dataset_reshape")
public func bnd_dataset_reshape(_ dataset: OpaquePointer?, _ sampleShape: UnsafePointer<Int64>?,
                                _ rank: UInt) -> bnd_status {
    api("bnd_dataset_reshape") {
        let data = try datasetBox(dataset).dataset
        let (shape, size) = try readSampleShape(sampleShape, rank)
        guard size == data.sampleSize else {
            throw BNDError.shape("cannot reshape samples of shape \(data.sampleShape) (\(data.sampleSize) values) to "
                                 + "\(shape) (\(size) values)")
        }
        try data.reshape(shape)
    }
}

@_cdecl("bnd_dataset_get")
public func bnd_dataset_get(_ dataset: OpaquePointer?, _ first: Int64, _ count: Int64,
                            _ outFeatures: UnsafeMutablePointer<Float>?, _ featuresCapacity: UInt,
                            _ outLabels: UnsafeMutablePointer<Int32>?, _ labelsCapacity: UInt,
                            _ outTargets: UnsafeMutablePointer<Float>?, _ targetsCapacity: UInt) -> bnd_status {
    api("bnd_dataset_get") {
        let data = try datasetBox(dataset).dataset
        let n = data.count
        guard first >= 0, count >= 0, let start = Int(exactly: first), let k = Int(exactly: count),
              start <= n, k <= n - start else {
            throw BNDError.shape("samples \(first) ..< \(first) + \(count) are outside the dataset's 0 ..< \(n)")
        }
        if data.isClassification, outTargets != nil {
            throw BNDError.invalidArgument("out_targets must be NULL: the dataset has class labels, not targets")
        }
        if !data.isClassification, outLabels != nil {
            throw BNDError.invalidArgument("out_labels must be NULL: the dataset has float targets, not labels")
        }
        // Within the dataset, so these products fit (the dataset holds n·size values).
        let featureTotal = k * data.sampleSize
        let targetTotal = k * data.targetCount
        if outFeatures != nil { try requireCapacity(featuresCapacity, featureTotal, "features_capacity") }
        if outLabels != nil { try requireCapacity(labelsCapacity, k, "labels_capacity") }
        if outTargets != nil { try requireCapacity(targetsCapacity, targetTotal, "targets_capacity") }
        guard k > 0 else { return }
        outFeatures?.update(from: data.features + start * data.sampleSize, count: featureTotal)
        if let outLabels, let labels = data.labels { outLabels.update(from: labels + start, count: k) }
        if let outTargets, let targets = data.targets {
            outTargets.update(from: targets + start * data.targetCount, count: targetTotal)
        }
    }
}

// MARK: - Mini-batch loaders

@_cdecl("bnd_loader_create")
public func bnd_loader_create(_ dataset: OpaquePointer?, _ batchSize: Int64, _ shuffle: Int32, _ seed: UInt64,
                              _ dropLast: Int32, _ outLoader: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_loader_create") {
        let data = try datasetBox(dataset).dataset
        let out = try required(outLoader, "out_loader")
        let shuffle = try flag(shuffle, "shuffle")
        let dropLast = try flag(dropLast, "drop_last")
        let batch = try positiveCount(batchSize, "batch_size")
        if dropLast, data.count < batch {
            throw BNDError.shape("drop_last with \(data.count) samples and batch_size \(batch) leaves no batch")
        }
        let loader = try BatchLoader(dataset: data, batchSize: batch, shuffle: shuffle, seed: seed,
                                     dropLast: dropLast)
        out.pointee = OpaquePointer(Unmanaged.passRetained(LoaderBox(loader)).toOpaque())
    }
}

@_cdecl("bnd_loader_free")
public func bnd_loader_free(_ loader: OpaquePointer?) {
    guard let loader else { return }
    Unmanaged<LoaderBox>.fromOpaque(UnsafeRawPointer(loader)).release()
}

@_cdecl("bnd_loader_next")
public func bnd_loader_next(_ loader: OpaquePointer?, _ outInputs: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                            _ outLabels: UnsafeMutablePointer<UnsafePointer<Int32>?>?,
                            _ outTargets: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                            _ outBatch: UnsafeMutablePointer<Int64>?) -> bnd_status {
    api("bnd_loader_next") {
        let loader = try loaderBox(loader).loader
        let outInputs = try required(outInputs, "out_inputs")
        let outBatch = try required(outBatch, "out_batch")
        if let batch = loader.nextBatch() {
            outInputs.pointee = batch.inputs
            outLabels?.pointee = batch.labels
            outTargets?.pointee = batch.targets
            outBatch.pointee = Int64(batch.size)
        } else {
            outInputs.pointee = nil
            outLabels?.pointee = nil
            outTargets?.pointee = nil
            outBatch.pointee = 0
        }
    }
}

@_cdecl("bnd_loader_batches_per_epoch")
public func bnd_loader_batches_per_epoch(_ loader: OpaquePointer?, _ outBatches: UnsafeMutablePointer<Int64>?) -> bnd_status {
    api("bnd_loader_batches_per_epoch") {
        let loader = try loaderBox(loader).loader
        let out = try required(outBatches, "out_batches")
        out.pointee = Int64(loader.batchesPerEpoch)
    }
}

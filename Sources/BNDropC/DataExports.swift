// Datasets and mini-batch loaders: bnd_dataset_* and bnd_loader_*.
import BNDrop
import BNDropCSupport

// MARK: - Creating datasets

@_cdecl("bnd_load_default_params")
public func bnd_load_default_params() -> bnd_load_params {
    bnd_load_params(max_bytes: Dataset.defaultMaxBytes)
}

/// The limit of `params` (a size_t, which Swift sees as Int: above Int.max it is no limit at all).
private func maxBytes(_ params: bnd_load_params) -> Int { params.max_bytes < 0 ? .max : params.max_bytes }

@_cdecl("bnd_dataset_load_idx_ex")
public func bnd_dataset_load_idx_ex(_ imagesPath: UnsafePointer<CChar>?, _ labelsPath: UnsafePointer<CChar>?,
                                    _ params: UnsafePointer<bnd_load_params>?,
                                    _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_load_idx_ex") {
        let images = try text(imagesPath, "images_path")
        let labels = try text(labelsPath, "labels_path")
        let out = try required(outDataset, "out_dataset")
        let p = params?.pointee ?? bnd_load_default_params()
        publish(DatasetBox(try Dataset.loadIDX(images: images, labels: labels, maxBytes: maxBytes(p))), out)
    }
}

@_cdecl("bnd_dataset_load_dir_ex")
public func bnd_dataset_load_dir_ex(_ directory: UnsafePointer<CChar>?, _ which: bnd_split,
                                    _ params: UnsafePointer<bnd_load_params>?,
                                    _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_load_dir_ex") {
        let directory = try text(directory, "directory")
        let out = try required(outDataset, "out_dataset")
        let p = params?.pointee ?? bnd_load_default_params()
        publish(DatasetBox(try Dataset.loadDirectory(directory, split: split(which), maxBytes: maxBytes(p))), out)
    }
}

@_cdecl("bnd_dataset_load_idx")
public func bnd_dataset_load_idx(_ imagesPath: UnsafePointer<CChar>?, _ labelsPath: UnsafePointer<CChar>?,
                                 _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_load_idx") {
        let images = try text(imagesPath, "images_path")
        let labels = try text(labelsPath, "labels_path")
        let out = try required(outDataset, "out_dataset")
        publish(DatasetBox(try Dataset.loadIDX(images: images, labels: labels)), out)
    }
}

@_cdecl("bnd_dataset_load_dir")
public func bnd_dataset_load_dir(_ directory: UnsafePointer<CChar>?, _ which: bnd_split,
                                 _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_dataset_load_dir") {
        let directory = try text(directory, "directory")
        let out = try required(outDataset, "out_dataset")
        publish(DatasetBox(try Dataset.loadDirectory(directory, split: split(which))), out)
    }
}

/// The body both array constructors share: the features and the out pointer required, the dataset made
/// by `make` (the core checks everything else) and handed to C.
private func datasetFromArrays(_ function: StaticString, _ features: UnsafePointer<Float>?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?,
                               _ make: (UnsafePointer<Float>) throws -> Dataset) -> bnd_status {
    api(function) {
        let features = try required(features, "features")
        let out = try required(out, "out_dataset")
        publish(DatasetBox(try make(features)), out)
    }
}

@_cdecl("bnd_dataset_from_labels")
public func bnd_dataset_from_labels(_ features: UnsafePointer<Float>?, _ sampleShape: UnsafePointer<Int64>?,
                                    _ rank: UInt, _ labels: UnsafePointer<Int32>?, _ count: Int64,
                                    _ classes: Int64, _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    datasetFromArrays("bnd_dataset_from_labels", features, outDataset) { features in
        // classes 0 means "the largest label + 1" (nil in Swift).
        try Dataset(features: features, sampleShape: shape(sampleShape, rank, "sample_shape"),
                    labels: required(labels, "labels"), count: int(count), classes: classes == 0 ? nil : int(classes))
    }
}

@_cdecl("bnd_dataset_from_targets")
public func bnd_dataset_from_targets(_ features: UnsafePointer<Float>?, _ sampleShape: UnsafePointer<Int64>?,
                                     _ rank: UInt, _ targets: UnsafePointer<Float>?, _ targetCount: Int64,
                                     _ count: Int64, _ outDataset: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    datasetFromArrays("bnd_dataset_from_targets", features, outDataset) { features in
        try Dataset(features: features, sampleShape: shape(sampleShape, rank, "sample_shape"),
                    targets: required(targets, "targets"), targetCount: int(targetCount), count: int(count))
    }
}

@_cdecl("bnd_dataset_free")
public func bnd_dataset_free(_ dataset: OpaquePointer?) {
    release(dataset, as: DatasetBox.self)
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
        try writeShape(datasetBox(dataset).dataset.sampleShape, outShape, capacity, outRank)
    }
}

@_cdecl("bnd_dataset_reshape")
public func bnd_dataset_reshape(_ dataset: OpaquePointer?, _ sampleShape: UnsafePointer<Int64>?,
                                _ rank: UInt) -> bnd_status {
    api("bnd_dataset_reshape") {
        let data = try datasetBox(dataset).dataset
        try data.reshape(shape(sampleShape, rank, "sample_shape"))
    }
}

@_cdecl("bnd_dataset_get")
public func bnd_dataset_get(_ dataset: OpaquePointer?, _ first: Int64, _ count: Int64,
                            _ outFeatures: UnsafeMutablePointer<Float>?, _ featuresCapacity: UInt,
                            _ outLabels: UnsafeMutablePointer<Int32>?, _ labelsCapacity: UInt,
                            _ outTargets: UnsafeMutablePointer<Float>?, _ targetsCapacity: UInt) -> bnd_status {
    api("bnd_dataset_get") {
        try datasetBox(dataset).dataset.copySamples(
            first: int(first), count: int(count), features: optionalOutput(outFeatures, featuresCapacity),
            labels: optionalOutput(outLabels, labelsCapacity), targets: optionalOutput(outTargets, targetsCapacity))
    }
}

// MARK: - Mini-batch loaders

@_cdecl("bnd_loader_create")
public func bnd_loader_create(_ dataset: OpaquePointer?, _ batchSize: Int64, _ shuffle: Int32, _ seed: UInt64,
                              _ dropLast: Int32, _ outLoader: UnsafeMutablePointer<OpaquePointer?>?) -> bnd_status {
    api("bnd_loader_create") {
        let data = try datasetBox(dataset).dataset
        let out = try required(outLoader, "out_loader")
        let loader = try BatchLoader(dataset: data, batchSize: int(batchSize), shuffle: flag(shuffle, "shuffle"),
                                     seed: seed, dropLast: flag(dropLast, "drop_last"))
        publish(LoaderBox(loader), out)
    }
}

@_cdecl("bnd_loader_free")
public func bnd_loader_free(_ loader: OpaquePointer?) {
    release(loader, as: LoaderBox.self)
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
        let batch = loader.nextBatch()
        outInputs.pointee = batch?.inputs
        outLabels?.pointee = batch?.labels
        outTargets?.pointee = batch?.targets
        outBatch.pointee = Int64(batch?.size ?? 0)
    }
}

@_cdecl("bnd_loader_batches_per_epoch")
public func bnd_loader_batches_per_epoch(_ loader: OpaquePointer?, _ outBatches: UnsafeMutablePointer<Int64>?) -> bnd_status {
    api("bnd_loader_batches_per_epoch") {
        let loader = try loaderBox(loader).loader
        store(Int64(loader.batchesPerEpoch), try required(outBatches, "out_batches"))
    }
}

// Opaque handles and the validation helpers every export shares.
import BNDrop
import BNDropCSupport

/// What a `bnd_net *` points at: a retained box around the Swift network.
final class NetBox {
    let net: Sequential
    init(_ net: Sequential) { self.net = net }
}

/// What a `bnd_optimizer *` points at. It remembers its net weakly (to refuse a foreign net and to
/// notice a freed one) and the layer count it was built for (to refuse a net that gained layers).
final class OptimizerBox {
    let optimizer: Optimizer
    weak var owner: NetBox?
    let layerCount: Int

    init(_ optimizer: Optimizer, owner: NetBox) {
        self.optimizer = optimizer
        self.owner = owner
        layerCount = owner.net.layers.count
    }

    /// Throws unless the optimizer may update `net` now (`net` nil: whichever net it belongs to).
    func checkUsable(with net: NetBox?) throws {
        guard let owner else {
            throw BNDError.state("the optimizer's network was freed; free the optimizer too")
        }
        if let net, net !== owner {
            throw BNDError.invalidArgument("the optimizer was created for a different network")
        }
        guard owner.net.layers.count == layerCount else {
            throw BNDError.state("the network has \(owner.net.layers.count) layers but the optimizer was created when it had "
                                 + "\(layerCount); create optimizers after the last bnd_net_add_*")
        }
    }
}

func netBox(_ pointer: OpaquePointer?) throws -> NetBox {
    guard let pointer else { throw BNDError.invalidArgument("net is NULL") }
    return Unmanaged<NetBox>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

func optimizerBox(_ pointer: OpaquePointer?) throws -> OptimizerBox {
    guard let pointer else { throw BNDError.invalidArgument("optimizer is NULL") }
    return Unmanaged<OptimizerBox>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

/// `pointer`, or an invalid-argument error naming the C parameter.
func required<T>(_ pointer: T?, _ name: StaticString) throws -> T {
    guard let pointer else { throw BNDError.invalidArgument("\(name) is NULL") }
    return pointer
}

/// A C flag: exactly 0 or 1.
func flag(_ value: Int32, _ name: StaticString) throws -> Bool {
    switch value {
    case 0: return false
    case 1: return true
    default: throw BNDError.invalidArgument("\(name) must be 0 or 1, got \(value)")
    }
}

/// A `size_t` count as an `Int`.
func count(_ value: UInt, _ name: StaticString) throws -> Int {
    guard let result = Int(exactly: value) else {
        throw BNDError.shape("\(name) \(value) is too large")
    }
    return result
}

/// A `size_t` index checked against `0..<limit`.
func index(_ value: UInt, below limit: Int, _ what: String) throws -> Int {
    guard let result = Int(exactly: value), result < limit else {
        throw BNDError.invalidArgument("\(what) index \(value) is out of range 0..<\(limit)")
    }
    return result
}

/// Validates `batch` and returns it with `batch`·`perSample`.
func batchTotal(_ batch: Int64, _ perSample: Int, _ what: String) throws -> (batch: Int, total: Int) {
    guard batch > 0, let b = Int(exactly: batch) else {
        throw BNDError.shape("batch must be positive, got \(batch)")
    }
    let (total, overflow) = b.multipliedReportingOverflow(by: perSample)
    guard !overflow else {
        throw BNDError.shape("a batch of \(batch) × \(perSample) \(what) overflows")
    }
    return (b, total)
}

/// Throws unless a buffer of `capacity` floats can take `needed`.
func requireCapacity(_ capacity: UInt, _ needed: Int, _ name: StaticString) throws {
    guard needed >= 0, capacity >= UInt(needed) else {
        throw BNDError.shape("\(name) is \(capacity) elements but \(needed) are needed")
    }
}

/// Copies `values` into `out` after checking the capacity.
func copyOut(_ values: [Float], _ out: UnsafeMutablePointer<Float>?, _ capacity: UInt,
             _ name: StaticString = "capacity") throws {
    let out = try required(out, "out")
    try requireCapacity(capacity, values.count, name)
    values.withUnsafeBufferPointer { src in
        if let base = src.baseAddress { out.update(from: base, count: values.count) }
    }
}

/// Reads `count` floats from `data`, which is only touched after `count` was checked against
/// `expected`.
func readFloats(_ data: UnsafePointer<Float>?, _ count: UInt, expected: Int, _ what: String) throws -> [Float] {
    let data = try required(data, "data")
    guard count == UInt(expected) else {
        throw BNDError.shape("\(what) has \(expected) elements, got count \(count)")
    }
    return Array(UnsafeBufferPointer(start: data, count: expected))
}

/// Writes a shape as int64_t values; the rank goes to `outRank` even when the capacity is too small.
func writeShape(_ shape: [Int], _ outShape: UnsafeMutablePointer<Int64>?, _ capacity: UInt,
                _ outRank: UnsafeMutablePointer<UInt>?) throws {
    let outShape = try required(outShape, "out_shape")
    let outRank = try required(outRank, "out_rank")
    outRank.pointee = UInt(shape.count)
    guard capacity >= UInt(shape.count) else {
        throw BNDError.shape("capacity is \(capacity) but the shape \(shape) has rank \(shape.count)")
    }
    for (i, d) in shape.enumerated() { outShape[i] = Int64(d) }
}

/// Copies `text` NUL-terminated into `out` (`capacity` bytes including the NUL).
func writeText(_ text: String, _ out: UnsafeMutablePointer<CChar>?, _ capacity: UInt) throws {
    let out = try required(out, "out")
    let bytes = Array(text.utf8)
    guard capacity > UInt(bytes.count) else {
        throw BNDError.shape("capacity is \(capacity) bytes but '\(text)' needs \(bytes.count + 1) (with the NUL)")
    }
    for (i, b) in bytes.enumerated() { out[i] = CChar(bitPattern: b) }
    out[bytes.count] = 0
}

/// A C string argument.
func text(_ pointer: UnsafePointer<CChar>?, _ name: StaticString) throws -> String {
    String(cString: try required(pointer, name))
}

/// Stores `value` through `out` once the call has succeeded.
@inline(__always)
func store<T>(_ value: T, _ out: UnsafeMutablePointer<T>) { out.pointee = value }

/// What a `bnd_dataset *` points at: a retained box around the Swift dataset.
final class DatasetBox {
    let dataset: Dataset
    init(_ dataset: Dataset) { self.dataset = dataset }
}

/// What a `bnd_loader *` points at. The loader holds its dataset strongly, so the dataset's handle may
/// be freed first.
final class LoaderBox {
    let loader: BatchLoader
    init(_ loader: BatchLoader) { self.loader = loader }
}

func datasetBox(_ pointer: OpaquePointer?, _ name: StaticString = "dataset") throws -> DatasetBox {
    guard let pointer else { throw BNDError.invalidArgument("\(name) is NULL") }
    return Unmanaged<DatasetBox>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

func loaderBox(_ pointer: OpaquePointer?) throws -> LoaderBox {
    guard let pointer else { throw BNDError.invalidArgument("loader is NULL") }
    return Unmanaged<LoaderBox>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

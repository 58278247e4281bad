// Converting C arguments to Swift values and Swift results back to C. Nothing here judges a value
// (ranges, sizes, shapes that fit): the Swift core does, once, and the exports only map its BNDError to
// a status. What is decided here is what only C has: NULL pointers, 0/1 flags, enum codes, and the
// caller's memory described as (pointer, capacity).
import BNDrop
import BNDropCSupport

// MARK: - From C

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

/// A C string argument: UTF-8, as every string of the Swift API. Bytes that are not UTF-8 (a path in
/// another encoding) are refused rather than repaired: a repaired path names another file.
func text(_ pointer: UnsafePointer<CChar>?, _ name: StaticString) throws -> String {
    guard let string = String(validatingCString: try required(pointer, name)) else {
        throw BNDError.invalidArgument("\(name) is not valid UTF-8")
    }
    return string
}

/// A C `int64_t` as a Swift `Int` (the same width on the 64-bit platforms bndrop builds for).
@inline(__always)
func int(_ value: Int64) -> Int { Int(truncatingIfNeeded: value) }

/// A C `size_t` capacity or index as a Swift `Int`; a value above `Int.max` becomes `Int.max` (as a
/// capacity it is more than enough, as an index it is out of range either way).
@inline(__always)
func int(_ value: UInt) -> Int { Int(exactly: value) ?? .max }

/// A C `size_t` element count of the caller's input: at most `SizeLimits.maxElements` (2^60, whose bytes
/// still fit a `ptrdiff_t`; a larger count cannot describe a real buffer).
func count(_ value: UInt, _ name: StaticString) throws -> Int {
    guard let result = Int(exactly: value), result <= SizeLimits.maxElements else {
        throw BNDError.shape("\(name) \(value) is too large for any buffer")
    }
    return result
}

/// The most dimensions a shape argument may claim before it is read: far above any rank bndrop takes,
/// it only keeps a garbage rank from making this layer read or allocate wildly.
private let maxShapeRank: UInt = 64

/// A shape given as `rank` `int64_t` values. The core checks the rank and the dimensions.
func shape(_ values: UnsafePointer<Int64>?, _ rank: UInt, _ name: StaticString) throws -> [Int] {
    let values = try required(values, name)
    guard rank <= maxShapeRank else {
        throw BNDError.shape("\(name) has rank \(rank); a sample shape has 1 to 3 dimensions")
    }
    return (0..<Int(rank)).map { int(values[$0]) }
}

/// The caller's input array of `count` elements.
func input<T>(_ pointer: UnsafePointer<T>?, _ elements: UInt, _ name: StaticString) throws -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: try required(pointer, name), count: try count(elements, "count"))
}

/// The caller's output array of `capacity` elements (the core checks that it has room).
func output<T>(_ pointer: UnsafeMutablePointer<T>?, _ capacity: UInt, _ name: StaticString) throws
    -> UnsafeMutableBufferPointer<T> {
    UnsafeMutableBufferPointer(start: try required(pointer, name), count: int(capacity))
}

/// An optional output array: nil stays nil.
func optionalOutput<T>(_ pointer: UnsafeMutablePointer<T>?, _ capacity: UInt) -> UnsafeMutableBufferPointer<T>? {
    pointer.map { UnsafeMutableBufferPointer(start: $0, count: int(capacity)) }
}

/// A `bnd_loss` code: nil for BND_LOSS_AUTO.
func loss(_ code: Int32, _ name: StaticString) throws -> Loss? {
    if code == BND_LOSS_AUTO.rawValue { return nil }
    guard let loss = Loss(rawValue: code) else {
        throw BNDError.invalidArgument("\(name) must be BND_LOSS_AUTO (-1), BND_LOSS_CROSS_ENTROPY (0) or "
                                       + "BND_LOSS_MSE (1), got \(code)")
    }
    return loss
}

/// A `bnd_split` code.
func split(_ code: bnd_split) throws -> Dataset.Split {
    guard let split = Dataset.Split(rawValue: Int32(truncatingIfNeeded: code.rawValue)) else {
        throw BNDError.invalidArgument("split must be BND_SPLIT_TRAIN (0) or BND_SPLIT_TEST (1), got \(code.rawValue)")
    }
    return split
}

/// A pooling stride: 0 means "= kernel_size" (PyTorch's stride=None).
func poolStride(_ stride: Int64) -> Int? { stride == 0 ? nil : int(stride) }

// MARK: - To C

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

/// Stores `value` through `out` once the call has succeeded.
@inline(__always)
func store<T>(_ value: T, _ out: UnsafeMutablePointer<T>) { out.pointee = value }

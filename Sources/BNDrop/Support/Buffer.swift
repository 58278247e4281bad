import Glibc

/// The library's one memory owner: an allocated array of a trivial element type (Float, Int32, Int, ...).
///
/// Allocation goes through `posix_memalign` and release through `free`, always, so a failed allocation is a
/// thrown `BNDError.outOfMemory`, never a trap. A non-empty buffer's pointer is 64-byte aligned (a cache
/// line; large buffers 2 MiB), which kernels may rely on. The pointer stays valid for the buffer's lifetime (unlike a
/// Swift array's), which is what layers, datasets and loaders hand to BLAS and to C callers.
///
/// Buffers are sized once and reused: `resize` reallocates only when more elements are needed than ever
/// before, so a training loop at a fixed batch size allocates nothing after its first step.
public final class Buffer<Element> {
    public private(set) var pointer: UnsafeMutablePointer<Element>
    /// The number of valid elements.
    public private(set) var count: Int
    private var capacity: Int

    /// A buffer of `count` elements, all equal to `value`.
    public init(count: Int, value: Element) throws {
        pointer = try Buffer.allocate(count)
        self.count = count
        capacity = count
        fill(value)
    }

    /// A buffer of `count` elements whose values are left for the caller to write. `what` names the
    /// buffer in the out-of-memory message.
    init(uninitializedCount count: Int, what: @autoclosure () -> String) throws {
        pointer = try Buffer.allocate(count, what())
        self.count = count
        capacity = count
    }

    /// An empty buffer, for scratch space that `resize` sizes on first use.
    public init() {
        // malloc(1 element) cannot be relied on to succeed, but an empty buffer must not throw: keep a
        // dangling-but-aligned pointer that is never read (count is 0) and never freed (capacity is 0).
        pointer = UnsafeMutablePointer(bitPattern: MemoryLayout<Element>.alignment)!
        count = 0
        capacity = 0
    }

    deinit { if capacity > 0 { free(pointer) } }

    private static func allocate(_ count: Int, _ what: @autoclosure () -> String = "a buffer") throws
        -> UnsafeMutablePointer<Element> {
        guard count >= 0 else { throw BNDError.shape("\(what()): negative size \(count)") }
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard !overflow, let raw = bytes >= hugePageThreshold ? hugePageAligned(bytes) : cacheLineAligned(bytes) else {
            throw BNDError.outOfMemory("cannot allocate \(count) elements for \(what())")
        }
        return raw.bindMemory(to: Element.self, capacity: max(count, 1))
    }

    /// Makes the buffer hold `newCount` elements. Existing contents are kept only when no reallocation
    /// was needed; callers overwrite what they resize.
    public func resize(_ newCount: Int) throws {
        guard newCount >= 0 else { throw BNDError.shape("buffer size must be non-negative, got \(newCount)") }
        if newCount > capacity {
            let fresh = try Buffer.allocate(newCount)
            if capacity > 0 { free(pointer) }
            pointer = fresh
            capacity = newCount
        }
        count = newCount
    }

    public func fill(_ value: Element) {
        pointer.update(repeating: value, count: count)
    }

    /// Copies `count` elements from `source` (which must hold `count` values).
    public func copy(from source: UnsafePointer<Element>) {
        pointer.update(from: source, count: count)
    }

    public var buffer: UnsafeBufferPointer<Element> { UnsafeBufferPointer(start: pointer, count: count) }
    public var array: [Element] { Array(buffer) }

    /// Replaces the contents with `values`, which must have exactly `count` elements.
    public func assign(_ values: UnsafeBufferPointer<Element>) throws {
        guard values.count == count else {
            throw BNDError.shape("expected \(count) values, got \(values.count)")
        }
        if let base = values.baseAddress { pointer.update(from: base, count: count) }
    }

    /// Array form of `assign`.
    public func assign(_ values: [Element]) throws {
        try values.withUnsafeBufferPointer { try assign($0) }
    }
}

/// The float32 buffers of parameters, gradients, activations and running statistics.
public typealias FloatBuffer = Buffer<Float>

extension Buffer where Element == Float {
    /// A float buffer of `count` zeros (or `value`).
    public convenience init(count: Int) throws { try self.init(count: count, value: 0) }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) throws {
        try self.init(count: values.count)
        try assign(values)
    }
}

/// Buffers of at least this many bytes (datasets, large activations) are placed on 2 MiB pages when the
/// kernel allows it: the loader reads a dataset's samples in random order, and with 4 KiB pages nearly
/// every sample it copies costs a TLB miss.
private let hugePageThreshold = 4 << 20
private let hugePageSize = 2 << 20

/// Smaller buffers start on a cache line (with malloc's 16 bytes, half the vector loads and stores of a
/// streaming kernel straddled two lines: Adam's step on 10,000 unaligned parameters took 6% longer).
/// nil when the allocation fails. Released with `free`, like `malloc`'s.
private func cacheLineAligned(_ bytes: Int) -> UnsafeMutableRawPointer? {
    var raw: UnsafeMutableRawPointer?
    guard posix_memalign(&raw, 64, bytes) == 0, let raw else { return nil }
    return raw
}

/// `bytes` bytes aligned to 2 MiB and advised for transparent huge pages (ignored where unsupported);
/// nil when the allocation fails. Released with `free`, like `malloc`'s.
private func hugePageAligned(_ bytes: Int) -> UnsafeMutableRawPointer? {
    var raw: UnsafeMutableRawPointer?
    guard posix_memalign(&raw, hugePageSize, bytes) == 0, let raw else { return nil }
    _ = madvise(raw, (bytes + hugePageSize - 1) / hugePageSize * hugePageSize, MADV_HUGEPAGE)
    return raw
}

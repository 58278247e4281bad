import Glibc

/// A growable float32 buffer owned by a layer, a network or an optimizer.
///
/// Buffers are sized once for a batch size and reused across steps: `resize` only reallocates when a
/// larger batch comes, so a training loop at a fixed batch size allocates nothing after its first step.
/// Allocation failure is reported as `BNDError.outOfMemory`, never a trap.
public final class FloatBuffer {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// The number of valid elements.
    public private(set) var count: Int
    private var capacity: Int

    /// A buffer of `count` elements, all equal to `value`.
    public init(count: Int, value: Float = 0) throws {
        guard count >= 0 else { throw BNDError.shape("buffer size must be non-negative, got \(count)") }
        pointer = try FloatBuffer.allocate(count)
        self.count = count
        capacity = count
        fill(value)
    }

    /// An empty buffer, for scratch space that is sized on first use.
    public init() {
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        count = 0
        capacity = 0
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) throws {
        try self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { free(pointer) }

    private static func allocate(_ count: Int) throws -> UnsafeMutablePointer<Float> {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, let raw = malloc(bytes) else {
            throw BNDError.outOfMemory("cannot allocate \(count) floats")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Makes the buffer hold `newCount` elements. Existing contents are kept only when no reallocation
    /// was needed; callers overwrite what they resize.
    public func resize(_ newCount: Int) throws {
        guard newCount >= 0 else { throw BNDError.shape("buffer size must be non-negative, got \(newCount)") }
        if newCount > capacity {
            let fresh = try FloatBuffer.allocate(newCount)
            free(pointer)
            pointer = fresh
            capacity = newCount
        }
        count = newCount
    }

    public func fill(_ value: Float) {
        pointer.update(repeating: value, count: count)
    }

    /// Copies `count` elements from `source` (which must hold `count` values).
    public func copy(from source: UnsafePointer<Float>) {
        pointer.update(from: source, count: count)
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Replaces the contents with `values`, which must have exactly `count` elements.
    public func assign(_ values: [Float]) throws {
        guard values.count == count else {
            throw BNDError.shape("expected \(count) values, got \(values.count)")
        }
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: count) }
        }
    }
}

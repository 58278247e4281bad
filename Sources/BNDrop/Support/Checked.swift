import BNDropKernels
/// The limits on sizes that every layer of the library applies (the C exports before they read a caller's
/// array, the core everywhere).
public enum SizeLimits {
    /// The most elements any array may have: 2^60, so that its bytes (8 at most per element) fit an
    /// `Int`. A larger count cannot describe memory a caller holds (a C object is at most PTRDIFF_MAX
    /// bytes), so it is refused as a size instead of being read past the caller's buffer.
    public static let maxElements = Int.max / 8
}

/// Checked arithmetic and range checks for sizes and values that come from a caller or a file.
///
/// Every check throws a `BNDError` and never traps or overflows. The statuses follow one rule (the same
/// that `bndrop.h` states): sizes that are not positive, that overflow or that do not fit each other are
/// `.shape`; a value outside its allowed range (a hyper-parameter, a flag, an index, a label) is
/// `.invalidArgument`; `.outOfMemory` is reserved for allocations that really failed.
enum Checked {
    /// The product of `dims`, or a `.shape` error naming `what` when a factor is negative or the product
    /// overflows.
    static func product(_ dims: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var total = 1
        for d in dims {
            guard d >= 0 else { throw BNDError.shape("\(what()): negative dimension \(d) in \(dims)") }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= SizeLimits.maxElements else {
                throw BNDError.shape("\(what()): \(dims) has too many elements")
            }
            total = p
        }
        return total
    }

    /// `a`·`b` (no array: this runs in every forward pass, which must not allocate).
    static func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        guard a >= 0, b >= 0 else { throw BNDError.shape("\(what()): negative size in \(a)×\(b)") }
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow, p <= SizeLimits.maxElements else {
            throw BNDError.shape("\(what()): \(a)×\(b) elements is too many")
        }
        return p
    }

    /// A batch size (or any sample count) that must be at least 1: `.shape` otherwise.
    static func batch(_ value: Int, _ what: @autoclosure () -> String = "batch") throws {
        guard value > 0 else { throw BNDError.shape("\(what()) must be positive, got \(value)") }
    }

    /// The element count of a caller's array: at least 1 and at most `SizeLimits.maxElements`.
    static func elements(_ value: Int, _ what: @autoclosure () -> String) throws {
        try batch(value, what())
        guard value <= SizeLimits.maxElements else {
            throw BNDError.shape("\(what()) \(value) is too large for any buffer")
        }
    }

    /// Throws `.invalidArgument` unless `value` is finite and inside `range` (closed).
    static func finite(_ value: Float, in range: ClosedRange<Float>, _ name: String) throws {
        guard value.isFinite, range.contains(value) else {
            throw BNDError.invalidArgument("\(name) must be in [\(range.lowerBound), \(range.upperBound)], got \(value)")
        }
    }

    /// Throws `.invalidArgument` unless `index` is in `0..<count`.
    static func index(_ index: Int, below count: Int, _ what: @autoclosure () -> String) throws {
        guard index >= 0, index < count else {
            throw BNDError.invalidArgument("\(what()) index \(index) is out of range 0..<\(count)")
        }
    }

    /// `a·b` as a BLAS dimension: throws `.shape` when the product overflows or exceeds the 32-bit range
    /// that OpenBLAS's CBLAS interface takes. Returns `a` converted.
    static func blasInt(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int32 {
        guard a >= 0, b >= 0 else { throw BNDError.shape("\(what()): negative size \(a)×\(b)") }
        let (total, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow, total <= Int(Int32.max), let value = Int32(exactly: a) else {
            throw BNDError.shape("\(what()): \(a)×\(b) elements exceed the 2³¹−1 that BLAS takes")
        }
        return value
    }

    /// Throws `.shape` unless the caller's `buffer` has room for `needed` values.
    static func room<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ needed: Int, _ name: String) throws {
        guard buffer.count >= needed else {
            throw BNDError.shape("\(name) has room for \(buffer.count) values but \(needed) are needed")
        }
    }

    /// The index of the first value that is NaN or infinite, or nil when all `count` are finite.
    static func firstNonFinite(_ values: UnsafePointer<Float>, _ count: Int) -> Int? {
        // A C kernel: Swift's loop, built for the SSE2 baseline, had no unsigned 32-bit max instruction.
        let index = bndk_first_non_finite(values, Int64(count))
        return index < 0 ? nil : Int(index)
    }

    /// Throws `.numeric` at the first value that is NaN or infinite.
    static func allFinite(_ values: UnsafePointer<Float>, _ count: Int, _ name: String) throws {
        if let i = firstNonFinite(values, count) {
            throw BNDError.numeric("\(name)[\(i)] is \(values[i]); no parameter or statistic was updated")
        }
    }
}

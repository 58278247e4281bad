/// Every mistake a caller can make is reported as a `BNDError`; the library never traps on input.
///
/// The cases mirror the C ABI's `bnd_status` values one to one, so the C layer maps them without
/// guessing.
public enum BNDError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A value out of range, an unknown name, a missing argument.
    case invalidArgument(String)
    /// Shapes, sizes or capacities that do not fit together.
    case shape(String)
    /// A call that is not valid now (backward before forward, ...).
    case state(String)
    /// The file system refused.
    case io(String)
    /// A malformed file or data.
    case format(String)
    /// An allocation failed or a size would not fit in memory.
    case outOfMemory(String)
    /// A non-finite loss or value.
    case numeric(String)
    /// A bug in bndrop.
    case internalError(String)

    /// The human-readable explanation, without the category.
    public var message: String {
        switch self {
        case .invalidArgument(let m), .shape(let m), .state(let m), .io(let m), .format(let m),
             .outOfMemory(let m), .numeric(let m), .internalError(let m):
            return m
        }
    }

    public var description: String { message }
}

/// Helpers for validating user-supplied sizes without ever overflowing.
enum Checked {
    /// The product of `dims`, or a thrown error naming `what` when a factor is negative or the product
    /// overflows.
    static func product(_ dims: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var total = 1
        for d in dims {
            guard d >= 0 else { throw BNDError.shape("\(what()): negative dimension \(d) in \(dims)") }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw BNDError.outOfMemory("\(what()): \(dims) has too many elements") }
            total = p
        }
        return total
    }

    /// `a`·`b` (no array: this runs in every forward pass, which must not allocate).
    static func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        guard a >= 0, b >= 0 else { throw BNDError.shape("\(what()): negative dimension in \(a)×\(b)") }
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw BNDError.outOfMemory("\(what()): \(a)×\(b) elements is too many") }
        return p
    }

    /// Throws unless `value` is finite and inside `range` (closed).
    static func finite(_ value: Float, in range: ClosedRange<Float>, _ name: String) throws {
        guard value.isFinite, range.contains(value) else {
            throw BNDError.invalidArgument("\(name) must be in [\(range.lowerBound), \(range.upperBound)], got \(value)")
        }
    }
}

/// `a·b` as a BLAS dimension: throws when the product overflows or exceeds the 32-bit range that
/// OpenBLAS's CBLAS interface takes. Returns `a` converted.
func blasInt(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int32 {
    guard a >= 0, b >= 0 else { throw BNDError.shape("\(what()): negative size \(a)×\(b)") }
    let (total, overflow) = a.multipliedReportingOverflow(by: b)
    guard !overflow, total <= Int(Int32.max), let value = Int32(exactly: a) else {
        throw BNDError.shape("\(what()): \(a)×\(b) elements exceed the 2³¹−1 that BLAS takes")
    }
    return value
}

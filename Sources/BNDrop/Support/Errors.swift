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

    /// The same error with `context` before its message (e.g. which of several networks failed).
    public func prefixed(_ context: String) -> BNDError {
        switch self {
        case .invalidArgument(let m): return .invalidArgument(context + m)
        case .shape(let m): return .shape(context + m)
        case .state(let m): return .state(context + m)
        case .io(let m): return .io(context + m)
        case .format(let m): return .format(context + m)
        case .outOfMemory(let m): return .outOfMemory(context + m)
        case .numeric(let m): return .numeric(context + m)
        case .internalError(let m): return .internalError(context + m)
        }
    }
}

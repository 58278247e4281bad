// Status mapping, the per-thread error message, version and status strings.
//
// Every export runs its body through `api(_:_:)`: a thrown `BNDError` becomes the matching
// `bnd_status` (1:1) and its message, prefixed with the C function's name, becomes the calling
// thread's `bnd_last_error()`. A successful call leaves the message alone (errno-like, documented in
// bndrop.h). Nothing in this layer may trap: C arguments are converted in Arguments.swift and judged
// by the Swift core, which reports every mistake with `throws`.
import BNDrop
import BNDropCSupport

/// Runs `body` and maps its outcome to a `bnd_status`.
@inline(__always)
func api(_ function: StaticString, _ body: () throws -> Void) -> bnd_status {
    do {
        try body()
        return BND_OK
    } catch let error as BNDError {
        return fail(function, error)
    } catch {
        return fail(function, .internalError("unexpected error \(error)"))
    }
}

/// The status of `error` (one per case).
func status(of error: BNDError) -> bnd_status {
    switch error {
    case .invalidArgument: return BND_ERR_INVALID_ARGUMENT
    case .shape: return BND_ERR_SHAPE
    case .state: return BND_ERR_STATE
    case .io: return BND_ERR_IO
    case .format: return BND_ERR_FORMAT
    case .outOfMemory: return BND_ERR_OUT_OF_MEMORY
    case .numeric: return BND_ERR_NUMERIC
    case .internalError: return BND_ERR_INTERNAL
    }
}

/// Records `error` as the calling thread's last error and returns its status.
func fail(_ function: StaticString, _ error: BNDError) -> bnd_status {
    let status = status(of: error)
    let message = error.message.isEmpty ? "failed" : error.message
    bndi_set_last_error("\(function): \(message)")
    return status
}

/// A pointer to static, NUL-terminated text (Swift string literals are emitted NUL-terminated).
@inline(__always)
func staticText(_ text: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

// The version has one source, the header's macros: the library reports the header it was built with.
@_cdecl("bnd_version_number")
public func bnd_version_number() -> UInt32 {
    UInt32(BND_VERSION_MAJOR * 10000 + BND_VERSION_MINOR * 100 + BND_VERSION_PATCH)
}

@_cdecl("bnd_version_string")
public func bnd_version_string() -> UnsafePointer<CChar> {
    bndi_version_string()
}

@_cdecl("bnd_status_string")
public func bnd_status_string(_ status: bnd_status) -> UnsafePointer<CChar> {
    switch status {
    case BND_OK: return staticText("BND_OK: success")
    case BND_ERR_INVALID_ARGUMENT: return staticText("BND_ERR_INVALID_ARGUMENT: invalid argument")
    case BND_ERR_SHAPE: return staticText("BND_ERR_SHAPE: shape or capacity mismatch")
    case BND_ERR_STATE: return staticText("BND_ERR_STATE: call not valid in the current state")
    case BND_ERR_IO: return staticText("BND_ERR_IO: input/output error")
    case BND_ERR_FORMAT: return staticText("BND_ERR_FORMAT: malformed file or data")
    case BND_ERR_OUT_OF_MEMORY: return staticText("BND_ERR_OUT_OF_MEMORY: out of memory")
    case BND_ERR_NUMERIC: return staticText("BND_ERR_NUMERIC: non-finite value")
    case BND_ERR_INTERNAL: return staticText("BND_ERR_INTERNAL: internal error in bndrop")
    default: return staticText("unknown bnd_status")
    }
}

@_cdecl("bnd_last_error")
public func bnd_last_error() -> UnsafePointer<CChar> {
    bndi_last_error()
}

@_cdecl("bnd_clear_last_error")
public func bnd_clear_last_error() {
    bndi_set_last_error(nil)
}

import XCTest
@preconcurrency import BNDrop

/// The category of a `BNDError` (its case without the message), for tests that expect one.
enum BNDErrorKind: Equatable {
    case invalidArgument, shape, state, io, format, outOfMemory, numeric, internalError

    init(_ error: BNDError) {
        switch error {
        case .invalidArgument: self = .invalidArgument
        case .shape: self = .shape
        case .state: self = .state
        case .io: self = .io
        case .format: self = .format
        case .outOfMemory: self = .outOfMemory
        case .numeric: self = .numeric
        case .internalError: self = .internalError
        }
    }
}

/// Asserts that `expression` throws a `BNDError` of `kind` (any kind when nil) with a non-empty message
/// that contains each of `texts`. `context` is added to every failure's description (e.g. the case a
/// loop is at).
func assertThrowsBNDError<T>(_ expression: @autoclosure () throws -> T, _ kind: BNDErrorKind?,
                             containing texts: String..., context: @autoclosure () -> String = "",
                             file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), context(), file: file, line: line) { error in
        guard let error = error as? BNDError else {
            return XCTFail("\(context()): not a BNDError: \(error)", file: file, line: line)
        }
        if let kind { XCTAssertEqual(BNDErrorKind(error), kind, "\(context()): \(error)", file: file, line: line) }
        XCTAssertFalse(error.message.isEmpty, "\(context()): empty message", file: file, line: line)
        for text in texts {
            XCTAssertTrue(error.message.contains(text), "\(context()): '\(error.message)' lacks '\(text)'", file: file,
                          line: line)
        }
    }
}

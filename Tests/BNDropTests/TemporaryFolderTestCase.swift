import XCTest
import Foundation
import Glibc

/// A test case with a fresh temporary folder per test, removed afterwards (for the tests that write
/// checkpoint files).
class TemporaryFolderTestCase: XCTestCase {
    private(set) var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("bndrop-\(type(of: self))-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// The path of `name` inside the test's folder.
    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
}

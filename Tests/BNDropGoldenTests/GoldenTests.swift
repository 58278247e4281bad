import XCTest

/// Every case in the golden folder (PyTorch 2.15 references, $BNDROP_GOLDEN_DIR or ../shared/golden),
/// and in this repository's Tests/golden, through the Swift API and through the C ABI, by one runner
/// (GoldenRunner). Cases are discovered,
/// not listed, so new files are picked up; a missing or empty folder fails both tests.
final class GoldenTests: XCTestCase {
    func testEveryGoldenCaseThroughTheSwiftAPI() throws {
        try runEveryCase(through: SwiftAPIBackend())
    }

    func testEveryGoldenCaseThroughTheCABI() throws {
        try runEveryCase(through: CABIBackend())
    }

    func testThisRepositorysGoldenCasesThroughTheSwiftAPI() throws {
        try runEveryCase(through: SwiftAPIBackend(), cases: Golden.teamCases(), from: "Tests/golden")
    }

    func testThisRepositorysGoldenCasesThroughTheCABI() throws {
        try runEveryCase(through: CABIBackend(), cases: Golden.teamCases(), from: "Tests/golden")
    }

    private func runEveryCase(through backend: GoldenBackend) throws {
        try runEveryCase(through: backend, cases: Golden.allCases(), from: nil)
    }

    /// `from`: the folder named in the summary line, when not the shared one.
    private func runEveryCase(through backend: GoldenBackend, cases: [GoldenCase], from folder: String?) throws {
        let runner = GoldenRunner(backend: backend)
        var failed: [String] = []
        for golden in cases {
            let failuresBefore = testRun?.failureCount ?? 0
            do {
                try runner.run(golden)
            } catch {
                XCTFail("\(golden.name) through the \(backend.apiName): \(error)")
            }
            if (testRun?.failureCount ?? 0) != failuresBefore { failed.append(golden.name) }
        }
        let passed = cases.count - failed.count
        print("golden\(folder.map { " (\($0))" } ?? ""): \(passed) of \(cases.count) cases passed through the "
              + backend.apiName)
        XCTAssertTrue(failed.isEmpty, "failed through the \(backend.apiName): \(failed.joined(separator: ", "))")
    }
}

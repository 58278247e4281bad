import XCTest

/// Every case in the golden folder (PyTorch 2.15 references, $BNDROP_GOLDEN_DIR or ../shared/golden)
/// through the Swift API and through the C ABI, by one runner (GoldenRunner). Cases are discovered,
/// not listed, so new files are picked up; a missing or empty folder fails both tests.
final class GoldenTests: XCTestCase {
    func testEveryGoldenCaseThroughTheSwiftAPI() throws {
        try runEveryCase(through: SwiftAPIBackend())
    }

    func testEveryGoldenCaseThroughTheCABI() throws {
        try runEveryCase(through: CABIBackend())
    }

    private func runEveryCase(through backend: GoldenBackend) throws {
        let cases = try Golden.allCases()
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
        print("golden: \(passed) of \(cases.count) cases passed through the \(backend.apiName)")
        XCTAssertTrue(failed.isEmpty, "failed through the \(backend.apiName): \(failed.joined(separator: ", "))")
    }
}

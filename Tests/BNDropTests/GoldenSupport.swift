import Foundation
import XCTest
@preconcurrency import BNDrop

/// A reference tensor from ../shared/golden: shape and row-major data.
struct GoldenTensor {
    let shape: [Int]
    let data: [Float]
}

/// One golden case file, parsed.
struct GoldenCase {
    let name: String
    let op: String
    let json: [String: Any]

    var config: [String: Any] { json["config"] as? [String: Any] ?? [:] }
    var tensors: [String: Any] { json["tensors"] as? [String: Any] ?? [:] }
    var steps: [[String: Any]] { json["steps"] as? [[String: Any]] ?? [] }

    func tensor(_ key: String, in dict: [String: Any]? = nil) throws -> GoldenTensor {
        guard let raw = (dict ?? tensors)[key] else { throw GoldenError.missing("\(name): no tensor '\(key)'") }
        return try GoldenCase.decode(raw, "\(name).\(key)")
    }

    static func decode(_ raw: Any, _ what: String) throws -> GoldenTensor {
        if let number = raw as? NSNumber { return GoldenTensor(shape: [], data: [number.floatValue]) }
        guard let dict = raw as? [String: Any], let shape = dict["shape"] as? [Int],
              let data = dict["data"] as? [NSNumber] else {
            throw GoldenError.missing("\(what) is not a tensor")
        }
        return GoldenTensor(shape: shape, data: data.map(\.floatValue))
    }
}

enum GoldenError: Error, CustomStringConvertible {
    case missing(String)
    var description: String { if case .missing(let m) = self { return m }; return "" }
}

enum Golden {
    /// The golden folder: $BNDROP_GOLDEN_DIR, or ../shared/golden beside the package.
    static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["BNDROP_GOLDEN_DIR"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return package.deletingLastPathComponent().appendingPathComponent("shared/golden")
    }

    /// Every *.json case, sorted by name. Fails the calling test when there are none.
    static func allCases(file: StaticString = #filePath, line: UInt = #line) throws -> [GoldenCase] {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertFalse(files.isEmpty, "no golden cases in \(directory.path)", file: file, line: line)
        return try files.map { url in
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
            guard let json = object as? [String: Any], let op = json["op"] as? String else {
                throw GoldenError.missing("\(url.lastPathComponent): no 'op'")
            }
            return GoldenCase(name: url.deletingPathExtension().lastPathComponent, op: op, json: json)
        }
    }
}

/// Compares element-wise with |a−e| <= atol + rtol·|e|; records at most a few mismatches per check.
/// Returns whether everything matched.
@discardableResult
func assertClose(_ actual: [Float], _ expected: GoldenTensor, atol: Float, rtol: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) -> Bool {
    assertClose(actual, expected.data, atol: atol, rtol: rtol, what, file: file, line: line)
}

@discardableResult
func assertClose(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) -> Bool {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return false
    }
    var worst = (index: -1, excess: Float(0))
    for i in actual.indices {
        let error = abs(actual[i] - expected[i])
        let allowed = atol + rtol * abs(expected[i])
        if !(error <= allowed), error - allowed > worst.excess || worst.index < 0 { worst = (i, error - allowed) }
    }
    if worst.index >= 0 {
        let i = worst.index
        XCTFail("\(what): element \(i) is \(actual[i]), expected \(expected[i]) (worst mismatch)", file: file, line: line)
        return false
    }
    return true
}

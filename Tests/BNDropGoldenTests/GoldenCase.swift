import Foundation
import XCTest

/// A reference tensor from the golden folder: shape and row-major data.
struct GoldenTensor {
    let shape: [Int]
    let data: [Float]
}

/// One golden case file, parsed (schema: golden/README.md).
struct GoldenCase {
    let name: String
    let op: String
    let json: [String: Any]

    var config: [String: Any] { json["config"] as? [String: Any] ?? [:] }
    var tensors: [String: Any] { json["tensors"] as? [String: Any] ?? [:] }
    var steps: [[String: Any]] { json["steps"] as? [[String: Any]] ?? [] }

    /// `key` from `dict` (the case's `tensors` when nil); throws when it is missing.
    func tensor(_ key: String, in dict: [String: Any]? = nil) throws -> GoldenTensor {
        guard let raw = (dict ?? tensors)[key] else { throw GoldenError("\(name): no tensor '\(key)'") }
        return try GoldenCase.decode(raw, "\(name).\(key)")
    }

    /// A tensor object, or a bare number as a rank-0 tensor.
    static func decode(_ raw: Any, _ what: String) throws -> GoldenTensor {
        if let number = raw as? NSNumber { return GoldenTensor(shape: [], data: [number.floatValue]) }
        guard let dict = raw as? [String: Any], let shape = dict["shape"] as? [Int],
              let data = dict["data"] as? [NSNumber] else {
            throw GoldenError("\(what) is not a tensor")
        }
        return GoldenTensor(shape: shape, data: data.map(\.floatValue))
    }

    /// A state_dict (`state_initial`, `state_before`, ...) as name -> values.
    func state(_ key: String) throws -> [String: [Float]] {
        guard let raw = json[key] as? [String: Any] else { throw GoldenError("\(name): no state '\(key)'") }
        return try raw.mapValues { try GoldenCase.decode($0, "\(name).\(key)").data }
    }
}

struct GoldenError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Golden {
    static let environmentVariable = "BNDROP_GOLDEN_DIR"

    /// ../shared/golden beside the package (this file is Tests/BNDropGoldenTests/GoldenCase.swift).
    static var defaultDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/golden")
            .standardizedFileURL
    }

    /// The golden folder: $BNDROP_GOLDEN_DIR, or ../shared/golden beside the package.
    static var directory: URL {
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return defaultDirectory
    }

    /// This repository's own cases (Tests/golden: made by PyTorch 2.15 with Tests/golden/make_cases.py,
    /// for what the shared folder does not cover), in the shared folder's schema.
    static var teamDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("golden").standardizedFileURL
    }

    /// Every *.json case in Tests/golden, sorted by name; throws when there is none.
    static func teamCases() throws -> [GoldenCase] {
        let files = try FileManager.default.contentsOfDirectory(at: teamDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
        guard !files.isEmpty else { throw GoldenError("golden cases: no *.json case in \(teamDirectory.path)") }
        return try cases(files)
    }

    /// Every *.json case in `directory`, sorted by name. Throws, naming the folder and how to choose
    /// another one, when the folder is missing or holds no case.
    static func allCases() throws -> [GoldenCase] {
        let dir = directory
        let source = ProcessInfo.processInfo.environment[environmentVariable].map { "\(environmentVariable)=\($0)" }
            ?? "the default, ../shared/golden beside the package"
        let hint = "Set \(environmentVariable) to the folder that holds the golden *.json cases (make test sets it "
            + "from GOLDEN_DIR, by default ../shared/golden); without it the tests look in ../shared/golden next to "
            + "the package."
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw GoldenError("golden cases: the folder \(dir.path) (\(source)) does not exist. \(hint)")
        }
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
        guard !files.isEmpty else {
            throw GoldenError("golden cases: no *.json case in \(dir.path) (\(source)). \(hint)")
        }
        return try cases(files)
    }

    /// The cases in `files`, sorted by name.
    private static func cases(_ files: [URL]) throws -> [GoldenCase] {
        try files.sorted { $0.lastPathComponent < $1.lastPathComponent }.map { url in
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
            guard let json = object as? [String: Any], let op = json["op"] as? String else {
                throw GoldenError("\(url.lastPathComponent): no 'op'")
            }
            return GoldenCase(name: url.deletingPathExtension().lastPathComponent, op: op, json: json)
        }
    }
}

/// Compares element-wise with |a−e| <= atol + rtol·|e| and records the worst mismatch, if any.
func assertClose(_ actual: [Float], _ expected: GoldenTensor, atol: Float, rtol: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    assertClose(actual, expected.data, atol: atol, rtol: rtol, what, file: file, line: line)
}

func assertClose(_ actual: [Float], _ expected: [Float], atol: Float, rtol: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        return XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
    }
    var worst = (index: -1, excess: Float(0)), mismatches = 0
    for i in actual.indices {
        let error = abs(actual[i] - expected[i])
        let allowed = atol + rtol * abs(expected[i])
        guard !(error <= allowed) else { continue }
        mismatches += 1
        let excess = error.isNaN ? .infinity : error - allowed
        if worst.index < 0 || excess > worst.excess { worst = (i, excess) }
    }
    if worst.index >= 0 {
        let i = worst.index
        XCTFail("\(what): \(mismatches) of \(actual.count) values differ; worst: element \(i) is \(actual[i]), "
                + "expected \(expected[i])", file: file, line: line)
    }
}

import XCTest
import Foundation
@preconcurrency import BNDrop

/// The checkpoints PyTorch wrote (../shared/fixtures/safetensors, or $BNDROP_SAFETENSORS_DIR): each
/// NAME.safetensors loads with `loadWeights` into the bndrop net built from NAME.json's architecture and
/// reproduces PyTorch's eval-mode outputs.
final class CheckpointFixtureTests: XCTestCase {
    static let environmentVariable = "BNDROP_SAFETENSORS_DIR"
    static let names = ["mlp_bn", "cnn_bn", "regression_dropout"]

    /// $BNDROP_SAFETENSORS_DIR, or ../shared/fixtures/safetensors beside the package.
    static var directory: URL {
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared/fixtures/safetensors").standardizedFileURL
    }

    struct FixtureError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The nn.Sequential of a PyTorch repr ("Sequential(\n  (0): Linear(in_features=784, ...)\n ...)") as a
    /// bndrop net.
    static func build(architecture: String, sampleShape: [Int]) throws -> Sequential {
        let net = try Sequential(sampleShape: sampleShape)
        for line in architecture.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) })
        where line.hasPrefix("(") {
            // "(4): BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, ...)"
            guard let colon = line.range(of: "): "), let open = line.firstIndex(of: "("),
                  let index = Int(line[line.index(after: open)..<colon.lowerBound]) else {
                throw FixtureError("cannot read '\(line)'")
            }
            XCTAssertEqual(index, net.layers.count, "layers are listed in order")
            let call = line[colon.upperBound...]
            guard let paren = call.firstIndex(of: "("), call.hasSuffix(")") else { throw FixtureError("cannot read '\(line)'") }
            let type = String(call[..<paren])
            let (positional, named) = arguments(String(call[call.index(after: paren)..<call.index(before: call.endIndex)]))
            func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
                guard let text = named[key] ?? fallback.map(String.init) else { throw FixtureError("\(type): no \(key)") }
                // "(5, 5)" -> 5 (square kernels and strides only)
                let parts = text.trimmingCharacters(in: CharacterSet(charactersIn: "()")).split(separator: ",")
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                guard let first = parts.first.flatMap({ Int($0) }), parts.allSatisfy({ Int($0) == first }) else {
                    throw FixtureError("\(type): \(key)=\(text) is not one whole number")
                }
                return first
            }
            switch type {
            case "Linear":
                XCTAssertEqual(try int("in_features"), net.outputCount)
                try net.addLinear(int("out_features"))
            case "Conv2d":
                XCTAssertEqual(Int(positional[0]), net.outputShape[0])
                try net.addConv2d(outChannels: Int(positional[1])!, kernelSize: int("kernel_size"), stride: int("stride", 1),
                                  padding: int("padding", 0))
            case "ReLU": try net.addReLU()
            case "Flatten": try net.addFlatten()
            case "AvgPool2d", "MaxPool2d":
                XCTAssertEqual(try int("padding", 0), 0)
                let (kernel, stride) = (try int("kernel_size"), try int("stride"))
                if type == "AvgPool2d" { try net.addAvgPool2d(kernelSize: kernel, stride: stride) }
                else { try net.addMaxPool2d(kernelSize: kernel, stride: stride) }
            case "BatchNorm1d", "BatchNorm2d":
                XCTAssertEqual(Int(positional[0]), net.outputShape[0])
                let momentum = named["momentum"] == "None" ? nil : Float(named["momentum"] ?? "0.1")
                try net.addBatchNorm(eps: Float(named["eps"] ?? "1e-05")!, momentum: momentum,
                                     affine: named["affine"] != "False", trackRunningStats: named["track_running_stats"] != "False")
            case "Dropout": try net.addDropout(Float(named["p"] ?? "0.5")!)
            default: throw FixtureError("layer type \(type) is not known to this test")
            }
        }
        return net
    }

    /// "6, eps=1e-05, kernel_size=(5, 5)" -> (["6"], ["eps": "1e-05", "kernel_size": "(5, 5)"]).
    private static func arguments(_ text: String) -> ([String], [String: String]) {
        var parts: [String] = [], current = "", depth = 0
        for c in text {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            if c == "," && depth == 0 { parts.append(current); current = "" } else { current.append(c) }
        }
        if !current.isEmpty { parts.append(current) }
        var positional: [String] = [], named: [String: String] = [:]
        for part in parts.map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if let eq = part.firstIndex(of: "=") {
                named[String(part[..<eq])] = String(part[part.index(after: eq)...])
            } else {
                positional.append(part)
            }
        }
        return (positional, named)
    }

    func testPyTorchCheckpointsReproduceEvalOutputs() throws {
        let dir = Self.directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return XCTFail("safetensors fixtures: the folder \(dir.path) does not exist. Set \(Self.environmentVariable) to the "
                           + "folder holding mlp_bn.json/.safetensors, cnn_bn.*, regression_dropout.* (make test sets it from "
                           + "SAFETENSORS_DIR, by default ../shared/fixtures/safetensors)")
        }
        for name in Self.names {
            let jsonURL = dir.appendingPathComponent("\(name).json")
            guard let data = FileManager.default.contents(atPath: jsonURL.path),
                  let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                XCTFail("safetensors fixture \(jsonURL.path) is missing or not JSON (\(Self.environmentVariable) chooses the folder)")
                continue
            }
            let architecture = try XCTUnwrap(json["architecture"] as? String)
            let sampleShape = try XCTUnwrap(json["sample_shape"] as? [Int])
            let batch = try XCTUnwrap(json["batch"] as? Int)
            let input = try XCTUnwrap(json["input"] as? [Double]).map(Float.init)
            let expected = try XCTUnwrap(json["eval_output"] as? [Double]).map(Float.init)
            let net = try Self.build(architecture: architecture, sampleShape: sampleShape)
            try net.loadWeights(from: dir.appendingPathComponent("\(name).safetensors").path)
            net.isTraining = false
            let output = try net.forward(input, batch: batch)
            XCTAssertEqual(output.count, expected.count, name)
            var worst: Float = 0
            for (got, want) in zip(output, expected) {
                XCTAssertLessThanOrEqual(abs(got - want), 1e-6 + 1e-5 * abs(want), "\(name): got \(got), PyTorch \(want)")
                worst = max(worst, abs(got - want))
            }
            // The tensors PyTorch wrote, e.g. num_batches_tracked as an integer.
            if let tensors = json["tensors"] as? [String: Any] {
                XCTAssertEqual(Set(tensors.keys), Set(net.stateDict.map(\.name)), name)
            }
            print("safetensors fixture \(name): max |bndrop - PyTorch| = \(worst)")
        }
    }
}

import XCTest
import Foundation
import Glibc
@preconcurrency import BNDrop

/// A table of damaged checkpoint files: each gives its error (the BNDError case the C API maps to a
/// status) and a message naming what is wrong; none traps, reads out of bounds or changes the net.
final class CheckpointDamageTests: TemporaryFolderTestCase {
    // MARK: Building files

    /// {3} -> Linear(2) -> BatchNorm1d(2): 7 tensors, 72 data bytes when laid out as `layout`.
    private func net() throws -> Sequential {
        let net = try Sequential(sampleShape: [3])
        try net.addLinear(2)
        try net.addBatchNorm()
        return net
    }

    private struct Tensor {
        var name: String, dtype: String, shape: [Int], offsets: [Int]
    }

    /// The valid layout of `net()`'s tensors.
    private let layout: [Tensor] = [
        Tensor(name: "1.num_batches_tracked", dtype: "I64", shape: [], offsets: [0, 8]),
        Tensor(name: "0.weight", dtype: "F32", shape: [2, 3], offsets: [8, 32]),
        Tensor(name: "0.bias", dtype: "F32", shape: [2], offsets: [32, 40]),
        Tensor(name: "1.weight", dtype: "F32", shape: [2], offsets: [40, 48]),
        Tensor(name: "1.bias", dtype: "F32", shape: [2], offsets: [48, 56]),
        Tensor(name: "1.running_mean", dtype: "F32", shape: [2], offsets: [56, 64]),
        Tensor(name: "1.running_var", dtype: "F32", shape: [2], offsets: [64, 72]),
    ]

    /// 72 data bytes: num_batches_tracked = 3, then the floats 0.5, 1.5, 2.5, ...
    private func data(_ count: Int = 72) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: Int64(3).littleEndian) { bytes += $0 }
        var i = 0
        while bytes.count < count {
            withUnsafeBytes(of: (Float(i) + 0.5).bitPattern.littleEndian) { bytes += $0 }
            i += 1
        }
        return Array(bytes.prefix(count))
    }

    private func quoted(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    /// A header text: metadata (values as JSON text, so that non-strings can be written) then the tensors.
    private func header(_ tensors: [Tensor], metadata: [(String, String)]? = nil) -> String {
        var members: [String] = []
        if let metadata {
            members.append("\"__metadata__\":{" + metadata.map { quoted($0.0) + ":" + $0.1 }.joined(separator: ",") + "}")
        }
        for t in tensors {
            func list(_ values: [Int]) -> String { "[" + values.map(String.init).joined(separator: ",") + "]" }
            members.append(quoted(t.name) + ":{\"dtype\":\(quoted(t.dtype)),\"shape\":\(list(t.shape)),\"data_offsets\":\(list(t.offsets))}")
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// The metadata of `net()` as bndrop writes it, as JSON text values.
    private func metadata(layers: String? = nil, _ changes: [String: String?] = [:]) -> [(String, String)] {
        var items: [(String, String)] = [
            ("format", "bndrop-1"), ("bndrop_version", "0.1.0"), ("sample_shape", "[3]"), ("seed", "0"), ("training", "true"),
            ("layers", layers ?? #"[{"type":"Linear","in_features":3,"out_features":2,"bias":true},{"type":"BatchNorm1d","num_features":2,"eps":1e-05,"momentum":0.1,"affine":true,"track_running_stats":true}]"#),
        ]
        for (key, value) in changes {
            items.removeAll { $0.0 == key }
            if let value { items.append((key, value)) }
        }
        return items.map { ($0.0, quoted($0.1)) }
    }

    private var fileCount = 0

    /// Writes a file: the header length (or `length`), `header`, `data`.
    private func file(_ header: String, _ data: [UInt8], length: UInt64? = nil) -> String {
        file(bytes: header.utf8.map { $0 }, data, length: length)
    }

    private func file(bytes header: [UInt8], _ data: [UInt8], length: UInt64? = nil) -> String {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { bytes += $0 }
        bytes += header + data
        fileCount += 1
        let path = folder.appendingPathComponent("case\(fileCount).safetensors").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    // MARK: Checking

    private enum Kind: String { case format, shape, io, invalidArgument }

    private func kind(_ error: Error) -> Kind? {
        switch error as? BNDError {
        case .format?: return .format
        case .shape?: return .shape
        case .io?: return .io
        case .invalidArgument?: return .invalidArgument
        default: return nil
        }
    }

    /// `load` fails with `expected` and a message holding the path and `text`; the net is unchanged.
    private func expect(_ label: String, _ path: String, _ expected: Kind, _ text: String, load: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let target = try net()
        let before = target.stateDict.map { try! target.tensor($0.name) }
        do {
            if load { _ = try Sequential(contentsOf: path) } else { try target.loadWeights(from: path) }
            XCTFail("\(label): loaded", file: file, line: line)
        } catch {
            XCTAssertEqual(kind(error), expected, "\(label): \(error)", file: file, line: line)
            let message = (error as? BNDError)?.message ?? ""
            XCTAssertTrue(message.contains(text), "\(label): '\(message)' lacks '\(text)'", file: file, line: line)
            XCTAssertTrue(message.contains(path), "\(label): '\(message)' does not name the file", file: file, line: line)
        }
        XCTAssertEqual(target.stateDict.map { try! target.tensor($0.name) }, before, "\(label): the net changed", file: file, line: line)
    }

    // MARK: The table

    func testTheValidFilesLoad() throws {
        let plain = file(header(layout), data())
        let target = try net()
        try target.loadWeights(from: plain)
        XCTAssertEqual(try target.tensor("1.num_batches_tracked"), [3])
        XCTAssertEqual(try target.tensor("0.weight"), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
        XCTAssertEqual(try target.tensor("1.running_var"), [14.5, 15.5])
        let full = file(header(layout, metadata: metadata()), data())
        XCTAssertEqual(try Sequential(contentsOf: full).tensor("1.running_mean"), [12.5, 13.5])
        // Header padded with spaces (as the reference writer pads to 8 bytes), tensors in any order.
        _ = try Sequential(contentsOf: file(header(layout.reversed(), metadata: metadata()) + "     ", data()))
    }

    func testTruncatedAtEveryByte() throws {
        let target = try net()
        let path = folder.appendingPathComponent("whole.safetensors").path
        try target.save(to: path)
        let whole = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let headerEnd = 8 + Int(whole.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        for cut in 0..<whole.count {
            let cutPath = folder.appendingPathComponent("cut.safetensors").path
            XCTAssertTrue(FileManager.default.createFile(atPath: cutPath, contents: whole.prefix(cut)))
            let text = cut < 8 ? "too short for a safetensors file" : cut < headerEnd ? "runs past the end of the file" : "run past the end of the data"
            try expect("cut at \(cut)", cutPath, .format, text)
            try expect("cut at \(cut)", cutPath, .format, text, load: true)
        }
    }

    func testHeaderLengths() throws {
        let h = header(layout)
        try expect("length past the end", file(h, data(), length: UInt64(h.utf8.count + 73)), .format, "runs past the end of the file")
        try expect("length 2^63", file(h, data(), length: 1 << 63), .format, "larger than the 16777216 bytes")
        try expect("length UInt64.max", file(h, data(), length: .max), .format, "larger than")
        try expect("length 0", file("", []), .format, "too short for a JSON object")
        try expect("length short of the header", file(h, data(), length: UInt64(h.utf8.count - 1)), .format, "not valid JSON")
    }

    func testDtypes() throws {
        var t = layout
        t[1].dtype = "I32"
        try expect("I32 weight", file(header(t), data()), .format, "tensor '0.weight' has dtype I32; bndrop reads it as F32")
        t = layout
        t[0].dtype = "F64"
        try expect("F64 counter", file(header(t), data()), .format, "tensor '1.num_batches_tracked' has dtype F64; bndrop reads it as I64")
        t = layout
        t[1].dtype = "F16"
        try expect("F16 weight", file(header(t), data()), .format, "tensor '0.weight': data_offsets [8, 32] hold 24 bytes but shape [2, 3] of F16 needs 12")
        t = layout
        t[2].dtype = "F33"
        try expect("unknown dtype", file(header(t), data()), .format, "tensor '0.bias' has an unknown dtype 'F33'")
        let numeric = header(layout).replacingOccurrences(of: #""dtype":"F32""#, with: #""dtype":32"#)
        try expect("dtype a number", file(numeric, data()), .format, "dtype must be a string")
    }

    func testOffsets() throws {
        var t = layout
        t[2].offsets = [28, 36]
        try expect("overlap", file(header(t), data()), .format, "tensors '0.weight' and '0.bias' overlap")
        t = layout
        t[6].offsets = [68, 76]
        try expect("gap", file(header(t), data(76)), .format, "data bytes 64..<68 belong to no tensor (a gap before '1.running_var')")
        try expect("trailing bytes", file(header(layout), data(76)), .format, "4 data bytes after '1.running_var' belong to no tensor")
        try expect("no tensors, some data", file("{}", data(4)), .format, "4 data bytes after the header belong to no tensor")
        t = layout
        t[6].offsets = [72, 80]
        try expect("past the end", file(header(t), data()), .format, "tensor '1.running_var': data_offsets [72, 80] run past the end of the data (72 bytes)")
        t = layout
        t[2].offsets = [40, 32]
        try expect("reversed", file(header(t), data()), .format, "tensor '0.bias': data_offsets [40, 32] end before they begin")
        t = layout
        t[2].offsets = [32, 40, 48]
        try expect("three offsets", file(header(t), data()), .format, "data_offsets must be [begin, end], got 3 values")
        t = layout
        t[2].offsets = [-8, 40]
        try expect("negative", file(header(t), data()), .format, "tensor '0.bias': data_offsets[0] must be a whole number >= 0, got -8")
        let huge = header(layout).replacingOccurrences(of: "[32,40]", with: "[1e300,40]")
        try expect("1e300", file(huge, data()), .format, "data_offsets[0] must be a whole number >= 0")
        let fraction = header(layout).replacingOccurrences(of: "[32,40]", with: "[32.5,40]")
        try expect("fraction", file(fraction, data()), .format, "data_offsets[0] must be a whole number >= 0, got 32.5")
    }

    func testShapes() throws {
        var t = layout
        t[1].shape = [4_294_967_296, 4_294_967_296]
        try expect("overflowing shape", file(header(t), data()), .format, "tensor '0.weight': shape [4294967296, 4294967296] (F32) has too many bytes to exist")
        t[1].shape = [1 << 40]
        try expect("huge shape", file(header(t), data()), .format, "needs 4398046511104")
        t[1].shape = [-2, 3]
        try expect("negative dimension", file(header(t), data()), .format, "tensor '0.weight': shape[0] must be a whole number >= 0, got -2")
        t[1].shape = [3, 2]
        try expect("another shape", file(header(t), data()), .shape, "tensor '0.weight' has shape [3, 2] but the network's is [2, 3]")
        try expect("another shape, load", file(header(t, metadata: metadata()), data()), .format, "tensor '0.weight' has shape [3, 2] but the network's is [2, 3]", load: true)
        t = layout
        t[0].shape = [1]
        try expect("counter with a dimension", file(header(t), data()), .shape, "tensor '1.num_batches_tracked' has shape [1] but the network's is []")
        let text = header(layout).replacingOccurrences(of: "\"shape\":[2]", with: "\"shape\":2")
        try expect("shape not an array", file(text, data()), .format, "shape must be an array, got a number")
    }

    func testBadJSON() throws {
        try expect("cut JSON", file(#"{"0.weight":"#, []), .format, "the header is not valid JSON (error at byte")
        try expect("array", file("[]", []), .format, "the header must be an object, got an array")
        try expect("garbage after", file("{} x", []), .format, "not valid JSON")
        try expect("control character", file("{\"a\u{01}\":1}", []), .format, "a raw control character (0x1) in a string")
        try expect("NUL escape", file(#"{"0.bias\u0000x":1}"#, []), .format, "\\u0000 in a string")
        try expect("bad \\u", file(#"{"\uZZZZ":1}"#, []), .format, "a \\u escape without 4 hex digits")
        try expect("bad escape", file(#"{"\q":1}"#, []), .format, "an invalid escape")
        try expect("not UTF-8", file(bytes: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], []), .format, "the header is not valid UTF-8")
        try expect("NUL byte", file(bytes: Array("{}".utf8) + [0], []), .format, "a control character (0x0)")
        try expect("nesting", file(String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000), []), .format, "not valid JSON")
        let many = "{\"x\":[" + Array(repeating: "0", count: (1 << 20) + 1).joined(separator: ",") + "]}"
        try expect("too many values", file(many, []), .format, "holds more than 1048576 JSON values")
        try expect("a tensor that is a number", file(#"{"0.bias":5}"#, []), .format, "tensor '0.bias' must be an object, got a number")
    }

    func testNames() throws {
        var t = layout
        t.append(t[2])
        try expect("duplicate tensor", file(header(t), data()), .format, "the header has the name '0.bias' twice")
        let twiceDtype = header(layout).replacingOccurrences(of: #"{"dtype":"F32","shape":[2],"data_offsets":[32,40]}"#,
                                                             with: #"{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[32,40]}"#)
        try expect("duplicate field", file(twiceDtype, data()), .format, "tensor '0.bias' has the name 'dtype' twice")
        var meta = metadata()
        meta.append(meta[0])
        try expect("duplicate metadata", file(header(layout, metadata: meta), data()), .format, "__metadata__ has the name 'format' twice", load: true)
        t = Array(layout.dropLast())
        try expect("missing tensor", file(header(t), data(64)), .format, "has no tensor '1.running_var'")
        t = layout
        t.append(Tensor(name: "2.weight", dtype: "F32", shape: [1], offsets: [72, 76]))
        try expect("extra tensor", file(header(t), data(76)), .format, "has a tensor '2.weight' that the network does not have")
        let extraField = header(layout).replacingOccurrences(of: #""data_offsets":[32,40]"#, with: #""data_offsets":[32,40],"x":1"#)
        try expect("unknown field", file(extraField, data()), .format, "tensor '0.bias' has an unknown field 'x'")
        let noShape = header(layout).replacingOccurrences(of: #""shape":[2],"data_offsets":[32,40]"#, with: #""data_offsets":[32,40]"#)
        try expect("no shape", file(noShape, data()), .format, "tensor '0.bias' has no shape")
        var negative = data()
        withUnsafeBytes(of: Int64(-1).littleEndian) { negative.replaceSubrange(0..<8, with: $0) }
        try expect("negative counter", file(header(layout), negative), .format, "tensor '1.num_batches_tracked' is -1")
    }

    func testMetadata() throws {
        let d = data()
        func withMeta(_ m: [(String, String)]?) -> String { file(header(layout, metadata: m), d) }
        try expect("no metadata", withMeta(nil), .format, "has no __metadata__, so it is not a bndrop checkpoint", load: true)
        try expect("non-string value", withMeta([("format", "1")]), .format, "__metadata__ 'format' must be a string", load: true)
        try expect("no format", withMeta(metadata(["format": nil])), .format, "__metadata__ has no 'format'", load: true)
        try expect("other format", withMeta(metadata(["format": "bndrop-9"])), .format, "'format' is 'bndrop-9'", load: true)
        try expect("no layers", withMeta(metadata(["layers": nil])), .format, "__metadata__ has no 'layers'", load: true)
        try expect("layers not JSON", withMeta(metadata(layers: "[{")), .format, "__metadata__ 'layers' is not valid JSON", load: true)
        try expect("layers an object", withMeta(metadata(layers: "{}")), .format, "__metadata__ 'layers' must be an array", load: true)
        try expect("unknown type", withMeta(metadata(layers: #"[{"type":"Conv3d"}]"#)), .format, "layers[0] (Conv3d): unknown layer type 'Conv3d'", load: true)
        try expect("no type", withMeta(metadata(layers: #"[{"out_features":2}]"#)), .format, "layers[0] has no 'type'", load: true)
        try expect("in_features", withMeta(metadata(layers: #"[{"type":"Linear","in_features":5,"out_features":2,"bias":true}]"#)), .format,
                   "layers[0] (Linear): in_features is 5 but the layer's input [3] gives 3", load: true)
        try expect("no bias", withMeta(metadata(layers: #"[{"type":"Linear","in_features":3,"out_features":2,"bias":false}]"#)), .format,
                   "bias false is not supported", load: true)
        try expect("extra field", withMeta(metadata(layers: #"[{"type":"ReLU","inplace":false}]"#)), .format,
                   "layers[0] (ReLU) has an unknown field 'inplace'", load: true)
        try expect("out_features 0", withMeta(metadata(layers: #"[{"type":"Linear","in_features":3,"out_features":0,"bias":true}]"#)), .format,
                   "layers[0] (Linear): ", load: true)
        try expect("dropout p", withMeta(metadata(layers: #"[{"type":"Dropout","p":2}]"#)), .format,
                   "layers[0] (Dropout): dropout probability has to be between 0 and 1", load: true)
        try expect("BatchNorm2d on a flat shape", withMeta(metadata(layers: #"[{"type":"BatchNorm2d","num_features":3,"eps":1e-05,"momentum":0.1,"affine":true,"track_running_stats":true}]"#)), .format,
                   "the input [3] takes a BatchNorm1d", load: true)
        try expect("momentum a string", withMeta(metadata(layers: #"[{"type":"BatchNorm1d","num_features":3,"eps":1e-05,"momentum":"x","affine":true,"track_running_stats":true}]"#)), .format,
                   "momentum must be a number", load: true)
        try expect("tensors of another architecture", withMeta(metadata(layers: #"[{"type":"Linear","in_features":3,"out_features":2,"bias":true}]"#)), .format,
                   "has a tensor '1.num_batches_tracked' that the network does not have", load: true)
        // A description of a huge layer with no tensor to match: refused before the layer is built (it
        // would allocate 2^28 x 2 floats, twice, for a file of a few hundred bytes).
        try expect("huge Linear", withMeta(metadata(layers: #"[{"type":"Linear","in_features":3,"out_features":268435456,"bias":true},{"type":"Linear","in_features":268435456,"out_features":1,"bias":true}]"#)), .format,
                   "tensor '0.weight' has shape [2, 3] but the network's is [268435456, 3]", load: true)
        try expect("huge Conv2d", withMeta(metadata(layers: #"[{"type":"Conv2d","in_channels":3,"out_channels":1048576,"kernel_size":1,"stride":1,"padding":0,"bias":true}]"#, ["sample_shape": "[3,1,1]"])), .format,
                   "tensor '0.weight' has shape [2, 3] but the network's is [1048576, 3, 1, 1]", load: true)
        try expect("sample shape", withMeta(metadata(["sample_shape": "[0]"])), .format, "sample_shape must have 1 to 3 positive dimensions", load: true)
        try expect("sample shape rank 4", withMeta(metadata(["sample_shape": "[1,1,1,3]"])), .format, "sample_shape must have 1 to 3", load: true)
        try expect("seed", withMeta(metadata(["seed": "-1"])), .format, "'seed' must be a whole number", load: true)
        try expect("seed with a sign", withMeta(metadata(["seed": "+1"])), .format, "'seed' must be a whole number", load: true)
        try expect("training", withMeta(metadata(["training": "yes"])), .format, "'training' must be 'true' or 'false'", load: true)
        let dropoutLayers = #"[{"type":"Linear","in_features":3,"out_features":2,"bias":true},{"type":"Dropout","p":0.5},{"type":"BatchNorm1d","num_features":2,"eps":1e-05,"momentum":0.1,"affine":true,"track_running_stats":true}]"#
        var t = layout
        for i in t.indices where t[i].name.hasPrefix("1.") { t[i].name = "2." + t[i].name.dropFirst(2) }
        try expect("no rng", file(header(t, metadata: metadata(layers: dropoutLayers)), d), .format, "__metadata__ has no 'rng.1'", load: true)
        try expect("zero rng", file(header(t, metadata: metadata(layers: dropoutLayers, ["rng.1": "0000000000000000,0000000000000000,0000000000000000,0000000000000000"])), d),
                   .format, "'rng.1' must be four 16-digit hex words", load: true)
        try expect("rng word with a sign", file(header(t, metadata: metadata(layers: dropoutLayers, ["rng.1": "+000000000000001,0000000000000000,0000000000000000,00000000000000ff"])), d),
                   .format, "'rng.1' must be four 16-digit hex words", load: true)
        let good = try Sequential(contentsOf: file(header(t, metadata: metadata(layers: dropoutLayers, ["rng.1": "0000000000000001,0000000000000000,0000000000000000,00000000000000ff"])), d))
        XCTAssertEqual(good.layers.map(\.typeName), ["Linear", "Dropout", "BatchNorm1d"])
    }

    /// Seeded random damage (1 to 4 bytes overwritten, or a cut) to a saved net with every layer kind: each
    /// load either succeeds or throws a BNDError; none traps.
    func testRandomDamageIsAnErrorOrALoad() throws {
        let net = try Sequential(sampleShape: [1, 6, 6], seed: 5)
        try net.addConv2d(outChannels: 2, kernelSize: 3)
        try net.addBatchNorm()
        try net.addMaxPool2d(kernelSize: 2)
        try net.addFlatten()
        try net.addDropout(0.25)
        try net.addLinear(3)
        let path = folder.appendingPathComponent("net.safetensors").path
        try net.save(to: path)
        let whole = try XCTUnwrap(FileManager.default.contents(atPath: path))
        var random = SeededRandom(seed: 2024)
        var outcomes: [String: Int] = [:]
        for _ in 0..<800 {
            var bytes = [UInt8](whole)
            if random.next() % 8 == 0 {
                bytes.removeLast(Int(random.next() % UInt64(bytes.count)))
            } else {
                for _ in 0...(random.next() % 4) {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            for load in [false, true] {
                do {
                    if load { _ = try Sequential(contentsOf: path) } else { try net.loadWeights(from: path) }
                    outcomes["loaded", default: 0] += 1
                } catch let error as BNDError {
                    outcomes["\(kind(error).map(\.rawValue) ?? "other")", default: 0] += 1
                    XCTAssertFalse(error.message.isEmpty)
                }
            }
        }
        XCTAssertNil(outcomes["other"], "\(outcomes)")
        XCTAssertGreaterThan(outcomes["format", default: 0], 500, "\(outcomes)")
    }

    func testFileSystem() throws {
        try expect("missing file", folder.appendingPathComponent("none.safetensors").path, .io, "No such file or directory")
        try expect("a folder", folder.path, .io, "not a regular file")
        let empty = folder.appendingPathComponent("empty.safetensors").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        try expect("empty file", empty, .format, "is 0 bytes: too short for a safetensors file")
    }
}

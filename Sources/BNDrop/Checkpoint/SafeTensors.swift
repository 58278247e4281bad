// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON header, then the tensors' raw little-endian bytes. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after
// the header) and may hold "__metadata__", a map of strings to strings.
//
// The reader trusts nothing: before a byte of tensor data is read it checks the header length (at most
// `maxHeaderBytes`, and inside the file), the JSON (see JSON.swift), every entry's fields, dtype, shape
// (whole numbers whose product cannot overflow), offsets (inside the data, matching the shape's byte
// size), that the tensors cover the data exactly (no overlap, no gap, nothing after the last), and
// duplicate names. Any problem is BNDError.format naming the file and the tensor or field.
import Glibc

/// The element types of the format and their sizes in bytes (bndrop itself reads and writes F32 and I64).
enum SafeTensorsDType: String {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E5M2, F8_E4M3

    var size: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E5M2, .F8_E4M3: return 1
        }
    }
}

/// One tensor's header entry; `begin` and `end` are offsets into the data (after the header).
struct SafeTensorsEntry {
    let name: String
    let dtype: SafeTensorsDType
    let shape: [Int]
    let begin: Int
    let end: Int
    var byteCount: Int { end - begin }
    var elementCount: Int { byteCount / dtype.size }
}

/// A validated safetensors file, open for reading its tensors.
final class SafeTensorsReader {
    /// The largest header accepted (the reference implementation's limit is 100 MB; bndrop's headers are
    /// a few kilobytes, and a bound keeps a damaged length from deciding an allocation).
    static let maxHeaderBytes = 16 << 20

    let path: String
    /// "__metadata__", nil when the header has none.
    let metadata: [String: String]?
    /// The tensors in header order.
    let entries: [SafeTensorsEntry]
    private let byName: [String: Int]
    private let file: FileReader
    private let dataStart: Int

    init(path: String) throws {
        self.path = path
        let file = try FileReader(path: path)
        self.file = file
        let quoted = "'\(path)'"
        guard file.size >= 8 else {
            throw BNDError.format("\(quoted) is \(file.size) bytes: too short for a safetensors file "
                                  + "(which starts with an 8-byte header length)")
        }
        var lengthBytes: UInt64 = 0
        try file.read(into: &lengthBytes, count: 8, at: 0)
        let length = UInt64(littleEndian: lengthBytes)
        guard length <= UInt64(SafeTensorsReader.maxHeaderBytes) else {
            throw BNDError.format("\(quoted): header length \(length) is larger than the \(SafeTensorsReader.maxHeaderBytes) "
                                  + "bytes bndrop accepts (a damaged file?)")
        }
        guard length <= UInt64(file.size - 8) else {
            throw BNDError.format("\(quoted): header length \(length) runs past the end of the file (\(file.size) bytes)")
        }
        guard length >= 2 else {
            throw BNDError.format("\(quoted): header length \(length) is too short for a JSON object")
        }
        let headerLength = Int(length)
        dataStart = 8 + headerLength
        let dataSize = file.size - dataStart
        var header = [UInt8](repeating: 0, count: headerLength)
        try header.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: headerLength, at: 8) }
        let root = try header.withUnsafeBytes { try JSON.parse($0, what: "\(quoted): the header") }
        let members = try root.uniqueMembers("\(quoted): the header")

        var metadata: [String: String]? = nil
        var entries: [SafeTensorsEntry] = []
        for (name, value) in members {
            if name == "__metadata__" {
                var map: [String: String] = [:]
                for (key, item) in try value.uniqueMembers("\(quoted): __metadata__") {
                    map[key] = try item.string("\(quoted): __metadata__ '\(key)'")
                }
                metadata = map
                continue
            }
            entries.append(try SafeTensorsReader.entry(name, value, dataSize: dataSize, file: quoted))
        }
        // The tensors must index the data exactly: sorted by offset, each starts where the previous ended.
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        var previous: String? = nil
        for entry in sorted {
            if entry.begin < position, let previous {
                throw BNDError.format("\(quoted): tensors '\(previous)' and '\(entry.name)' overlap (bytes \(entry.begin)"
                                      + "..<\(position) of the data)")
            }
            if entry.begin > position {
                throw BNDError.format("\(quoted): data bytes \(position)..<\(entry.begin) belong to no tensor (a gap before "
                                      + "'\(entry.name)'); the format requires the data to be fully indexed")
            }
            position = entry.end
            previous = entry.name
        }
        guard position == dataSize else {
            throw BNDError.format("\(quoted): \(dataSize - position) data bytes after \(previous.map { "'\($0)'" } ?? "the header") "
                                  + "belong to no tensor; the format requires the data to be fully indexed")
        }
        self.metadata = metadata
        self.entries = entries
        byName = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    /// One tensor's entry, checked on its own.
    private static func entry(_ name: String, _ value: JSON, dataSize: Int, file: String) throws -> SafeTensorsEntry {
        let what = "\(file): tensor '\(name)'"
        var dtypeText: String? = nil
        var shapeJSON: [JSON]? = nil
        var offsetsJSON: [JSON]? = nil
        for (key, item) in try value.uniqueMembers(what) {
            switch key {
            case "dtype": dtypeText = try item.string("\(what): dtype")
            case "shape": shapeJSON = try item.array("\(what): shape")
            case "data_offsets": offsetsJSON = try item.array("\(what): data_offsets")
            default: throw BNDError.format("\(what) has an unknown field '\(key)' (expected dtype, shape, data_offsets)")
            }
        }
        guard let dtypeText else { throw BNDError.format("\(what) has no dtype") }
        guard let shapeJSON else { throw BNDError.format("\(what) has no shape") }
        guard let offsetsJSON else { throw BNDError.format("\(what) has no data_offsets") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeText) else {
            throw BNDError.format("\(what) has an unknown dtype '\(dtypeText)'")
        }
        let shape = try shapeJSON.enumerated().map { try $1.count("\(what): shape[\($0)]") }
        var bytes = dtype.size
        for d in shape {
            let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else { throw BNDError.format("\(what): shape \(shape) (\(dtypeText)) has too many bytes to exist") }
            bytes = p
        }
        guard offsetsJSON.count == 2 else {
            throw BNDError.format("\(what): data_offsets must be [begin, end], got \(offsetsJSON.count) values")
        }
        let begin = try offsetsJSON[0].count("\(what): data_offsets[0]")
        let end = try offsetsJSON[1].count("\(what): data_offsets[1]")
        guard begin <= end else { throw BNDError.format("\(what): data_offsets [\(begin), \(end)] end before they begin") }
        guard end <= dataSize else {
            throw BNDError.format("\(what): data_offsets [\(begin), \(end)] run past the end of the data (\(dataSize) bytes)")
        }
        guard end - begin == bytes else {
            throw BNDError.format("\(what): data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) "
                                  + "of \(dtypeText) needs \(bytes)")
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    func entry(_ name: String) -> SafeTensorsEntry? { byName[name].map { entries[$0] } }

    /// Reads an F32 tensor's values into `out` (which holds `entry.elementCount` floats).
    func readFloats(_ entry: SafeTensorsEntry, into out: UnsafeMutablePointer<Float>) throws {
        guard entry.dtype == .F32 else { throw BNDError.internalError("readFloats of \(entry.dtype) '\(entry.name)'") }
        try file.read(into: out, count: entry.byteCount, at: dataStart + entry.begin)
        #if _endian(big)
        let bits = UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt32.self)
        for i in 0..<entry.elementCount { bits[i] = UInt32(littleEndian: bits[i]) }
        #endif
    }

    /// Reads an I64 scalar.
    func readInt64(_ entry: SafeTensorsEntry) throws -> Int64 {
        guard entry.dtype == .I64, entry.byteCount == 8 else {
            throw BNDError.internalError("readInt64 of \(entry.dtype) '\(entry.name)'")
        }
        var value: Int64 = 0
        try file.read(into: &value, count: 8, at: dataStart + entry.begin)
        return Int64(littleEndian: value)
    }
}

/// Writes a safetensors file atomically (see `AtomicFileWriter`).
enum SafeTensorsWriter {
    enum Payload {
        /// `count` floats at the pointer (valid for the duration of the write).
        case floats(UnsafePointer<Float>, count: Int)
        case int64(Int64)
    }

    struct Tensor {
        let name: String
        let shape: [Int]
        let payload: Payload

        var dtype: SafeTensorsDType {
            if case .int64 = payload { return .I64 }
            return .F32
        }

        var byteCount: Int {
            switch payload {
            case .floats(_, let count): return 4 * count
            case .int64: return 8
            }
        }
    }

    /// Writes `tensors` and `metadata` to `path`. The 8-byte I64 tensors come first so every tensor is
    /// aligned to its element size; the header is padded with spaces to a multiple of 8 bytes.
    static func write(to path: String, metadata: [(String, String)], tensors: [Tensor]) throws {
        let ordered = tensors.filter { $0.dtype == .I64 } + tensors.filter { $0.dtype != .I64 }
        var offset = 0
        var members: [(String, String)] = [("__metadata__", JSONText.object(metadata.map { ($0.0, JSONText.string($0.1)) }))]
        for tensor in ordered {
            let end = offset + tensor.byteCount
            members.append((tensor.name, JSONText.object([
                ("dtype", JSONText.string(tensor.dtype.rawValue)),
                ("shape", JSONText.ints(tensor.shape)),
                ("data_offsets", JSONText.ints([offset, end])),
            ])))
            offset = end
        }
        var header = Array(JSONText.object(members).utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        let writer = try AtomicFileWriter(path: path)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try writer.write($0) }
        try writer.write(header)
        for tensor in ordered {
            switch tensor.payload {
            case .floats(let pointer, let count):
                #if _endian(big)
                var chunk = [UInt32](repeating: 0, count: 4096)
                var start = 0
                while start < count {
                    let n = min(4096, count - start)
                    for i in 0..<n { chunk[i] = pointer[start + i].bitPattern.littleEndian }
                    try chunk.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<(4 * n)])) }
                    start += n
                }
                #else
                try writer.write(UnsafeRawBufferPointer(start: pointer, count: 4 * count))
                #endif
            case .int64(let value):
                var little = value.littleEndian
                try withUnsafeBytes(of: &little) { try writer.write($0) }
            }
        }
        try writer.commit()
    }
}

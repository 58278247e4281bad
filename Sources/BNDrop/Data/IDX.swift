import CZlib
import Glibc

/// One array read from an IDX file (the MNIST format): its type code, dimensions and raw data bytes.
public struct IDXArray: Sendable, Equatable {
    /// The IDX type code; always 0x08 (unsigned byte), the only type bndrop reads.
    public let typeCode: UInt8
    /// The dimensions, outermost first (e.g. [60000, 28, 28]).
    public let dims: [Int]
    /// The data, row-major, `dims` product bytes.
    public let bytes: [UInt8]

    public init(typeCode: UInt8 = 0x08, dims: [Int], bytes: [UInt8]) {
        self.typeCode = typeCode
        self.dims = dims
        self.bytes = bytes
    }
}

/// Reading (and, for tests and tools, writing) IDX files, gzip-compressed or not.
///
/// The format: two zero bytes, a type code, the number of dimensions, one big-endian UInt32 per
/// dimension, then the data. Only type 0x08 (unsigned byte, what MNIST and Fashion-MNIST use) is read;
/// the other IDX types are refused with `BNDError.format`.
///
/// The reader is strict and never traps on any input. Every problem is a thrown error naming the file:
/// `.io` for a missing or unreadable file, `.format` for a truncated header, bad magic, an unsupported
/// type, the wrong number of dimensions, a zero dimension, more than `maxElements` elements, fewer data
/// bytes than the dimensions say, corrupt or truncated gzip data, and **trailing bytes after the data**
/// (an error rather than ignored: a file longer than its header says is most likely not what the caller
/// meant to read). Sizes are checked against what the file could hold before anything is allocated.
public enum IDX {
    /// The largest number of elements accepted (2³¹ − 1).
    public static let maxElements = Int(Int32.max)
    /// deflate's best ratio is about 1032:1, so a gzip file of n bytes holds at most ~1032·n bytes.
    static let maxDeflateRatio = 1040

    /// Reads the IDX file at `path`; gzip-compressed files (any name) are decompressed transparently.
    /// The bytes end up in a Swift array, which cannot report a failed allocation: this is for tests and
    /// tools. Loading a dataset goes through `stream`, which allocates fallibly (`Dataset.loadIDX`).
    /// - Parameter dimensions: if given, the number of dimensions the file must have.
    public static func read(path: String, dimensions: Int? = nil) throws -> IDXArray {
        var bytes: [UInt8] = []
        let header = try stream(path: path, dimensions: dimensions, prepare: { _, _ in },
                                consume: { chunk, _ in bytes.append(contentsOf: chunk) })
        return IDXArray(typeCode: header.typeCode, dims: header.dims, bytes: bytes)
    }

    /// Streams the IDX file at `path` (gzip-compressed or not) without holding its data: after the
    /// header is read and checked, `accept(dims, elements)` may refuse the declared size (nothing else
    /// has been read or allocated yet); once the file could hold the data, `prepare(dims, elements)`
    /// makes room for it; then `consume(chunk, offset)` gets the data bytes in order, in chunks of at
    /// most `chunkSize` bytes from one fixed buffer. Every check of `read` applies (truncated data and
    /// trailing garbage are found after the last chunk: the caller drops what it built when this throws).
    public static func stream(path: String, dimensions: Int? = nil,
                              accept: (_ dims: [Int], _ elements: Int) throws -> Void = { _, _ in },
                              prepare: (_ dims: [Int], _ elements: Int) throws -> Void,
                              consume: (_ chunk: UnsafeBufferPointer<UInt8>, _ offset: Int) -> Void) throws
        -> (typeCode: UInt8, dims: [Int]) {
        var source = try GzipSource(path: path)  // (it checks for a regular file, on what it opened)
        return try parse(&source, name: path, dimensions: dimensions, accept: accept, prepare: prepare, consume: consume)
    }

    /// Nothing when `path` names a regular file; else `.io` saying what is there instead (as `stream` says
    /// it; this checks without opening, e.g. both files of a dataset before either is read).
    static func regularFile(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw BNDError.io("\(path): cannot open IDX file: \(openFailure(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw BNDError.io("\(path): cannot read IDX file: not a regular file")
        }
    }

    /// Why an IDX file could not be opened or examined: "no such file", or the system's message.
    static func openFailure(_ code: Int32) -> String { code == ENOENT ? "no such file" : systemError(code) }

    /// The size of the one buffer `stream` reads the data through.
    public static let chunkSize = 1 << 16

    /// Parses an uncompressed IDX file held in memory. `name` is used in error messages.
    public static func decode(_ data: [UInt8], name: String = "<memory>", dimensions: Int? = nil) throws -> IDXArray {
        var source = MemorySource(data: data)
        var bytes: [UInt8] = []
        let header = try parse(&source, name: name, dimensions: dimensions, accept: { _, _ in }, prepare: { _, _ in },
                               consume: { chunk, _ in bytes.append(contentsOf: chunk) })
        return IDXArray(typeCode: header.typeCode, dims: header.dims, bytes: bytes)
    }

    /// The bytes of an uncompressed IDX file holding `array`.
    public static func encode(_ array: IDXArray) throws -> [UInt8] {
        try validate(array)
        var out: [UInt8] = [0, 0, array.typeCode, UInt8(array.dims.count)]
        for d in array.dims {
            let v = UInt32(d)
            out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
        }
        out += array.bytes
        return out
    }

    /// Writes `array` to `path`, gzip-compressed when `compressed` is true (default: when the path ends
    /// in ".gz").
    public static func write(_ array: IDXArray, path: String, compressed: Bool? = nil) throws {
        let data = try encode(array)
        let gzip = compressed ?? path.hasSuffix(".gz")
        guard let file = gzopen(path, gzip ? "wb6" : "wbT") else {
            throw BNDError.io("\(path): cannot create IDX file: \(systemError(errno))")
        }
        var offset = 0
        var failure: String?
        while offset < data.count {
            let chunk = min(data.count - offset, 1 << 30)
            let written = data.withUnsafeBytes { gzwrite(file, $0.baseAddress! + offset, UInt32(chunk)) }
            if written <= 0 { failure = gzipMessage(file) ?? "write failed"; break }
            offset += Int(written)
        }
        let closed = gzclose_w(file)
        if let failure { throw BNDError.io("\(path): cannot write IDX file: \(failure)") }
        guard closed == Z_OK else { throw BNDError.io("\(path): cannot write IDX file: closing failed (\(closed))") }
    }

    // MARK: Parsing

    static func typeName(_ code: UInt8) -> String? {
        switch code {
        case 0x08: return "unsigned byte"
        case 0x09: return "signed byte"
        case 0x0B: return "int16"
        case 0x0C: return "int32"
        case 0x0D: return "float32"
        case 0x0E: return "float64"
        default: return nil
        }
    }

    static func validate(_ array: IDXArray) throws {
        guard array.typeCode == 0x08 else {
            throw BNDError.invalidArgument("IDX: only type 0x08 (unsigned byte) is supported, got 0x\(hex(array.typeCode))")
        }
        guard (1...255).contains(array.dims.count) else {
            throw BNDError.invalidArgument("IDX: an array needs 1 to 255 dimensions, got \(array.dims.count)")
        }
        guard array.dims.allSatisfy({ $0 > 0 && $0 <= Int(UInt32.max) }) else {
            throw BNDError.invalidArgument("IDX: dimensions must be in 1...\(UInt32.max), got \(array.dims)")
        }
        let total = try Checked.product(array.dims, "IDX dimensions")
        guard total == array.bytes.count else {
            throw BNDError.shape("IDX: dimensions \(array.dims) need \(total) bytes, got \(array.bytes.count)")
        }
    }

    static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
    }

    static func gzipMessage(_ file: gzFile) -> String? {
        var code: Int32 = 0
        guard let text = gzerror(file, &code), code != Z_OK else { return nil }
        return String(cString: text)
    }

    private static func parse<S: IDXSource>(_ source: inout S, name: String, dimensions: Int?,
                                            accept: ([Int], Int) throws -> Void, prepare: ([Int], Int) throws -> Void,
                                            consume: (UnsafeBufferPointer<UInt8>, Int) -> Void) throws
        -> (typeCode: UInt8, dims: [Int]) {
        // Fixed part of the header.
        var head = [UInt8](repeating: 0, count: 4)
        let got = try head.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: 4, what: "header") }
        guard got == 4 else {
            throw BNDError.format("\(name): truncated header: the file has \(got) bytes, an IDX header needs at least 4")
        }
        guard head[0] == 0, head[1] == 0 else {
            throw BNDError.format("\(name): bad magic number 0x\(hex(head[0]))\(hex(head[1]))\(hex(head[2]))\(hex(head[3])): "
                                  + "not an IDX file (it must start with two zero bytes, a type code and the number of dimensions)")
        }
        let type = head[2]
        guard type == 0x08 else {
            if let known = typeName(type) {
                throw BNDError.format("\(name): unsupported IDX type 0x\(hex(type)) (\(known)); only 0x08 (unsigned byte) is supported")
            }
            throw BNDError.format("\(name): invalid IDX type code 0x\(hex(type)) (valid codes are 08, 09, 0B, 0C, 0D, 0E)")
        }
        let ndims = Int(head[3])
        guard ndims > 0 else {
            throw BNDError.format("\(name): the IDX header declares 0 dimensions")
        }
        if let expected = dimensions, ndims != expected {
            throw BNDError.format("\(name): wrong number of dimensions: the file has \(ndims), expected \(expected)"
                                  + (expected == 3 ? " (images: count × rows × columns)" : expected == 1 ? " (labels: count)" : ""))
        }
        // Dimensions.
        var dimBytes = [UInt8](repeating: 0, count: 4 * ndims)
        let gotDims = try dimBytes.withUnsafeMutableBytes {
            try source.read(into: $0.baseAddress!, count: 4 * ndims, what: "header")
        }
        guard gotDims == 4 * ndims else {
            throw BNDError.format("\(name): truncated header: \(4 + gotDims) bytes, an IDX header with \(ndims) dimensions needs \(4 + 4 * ndims)")
        }
        var dims: [Int] = []
        dims.reserveCapacity(ndims)
        for i in 0..<ndims {
            let b = dimBytes[(4 * i)..<(4 * i + 4)].map(Int.init)
            dims.append(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3])
        }
        if let zero = dims.firstIndex(of: 0) {
            throw BNDError.format("\(name): dimension \(zero) is 0 in \(dims): the file holds no data")
        }
        // Int is 64-bit; the product of up to 255 values below 2³² can still overflow, so check as we go.
        var total = 1
        for d in dims {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxElements else {
                throw BNDError.format("\(name): dimensions \(dims) are too large: more than \(maxElements) elements")
            }
            total = p
        }
        try accept(dims, total)
        let headerSize = 4 + 4 * ndims
        if let available = source.maximumRemaining(headerSize: headerSize), total > available {
            throw BNDError.format("\(name): truncated data: dimensions \(dims) need \(total) data bytes, "
                                  + "but the file can hold at most \(available)")
        }
        try prepare(dims, total)
        // Data, through one fixed buffer: the caller converts each chunk as it comes.
        let buffer = try Buffer<UInt8>(uninitializedCount: chunkSize, what: "the IDX read buffer")
        var filled = 0
        while filled < total {
            let want = min(total - filled, chunkSize)
            let got = try source.read(into: buffer.pointer, count: want, what: "data")
            consume(UnsafeBufferPointer(start: buffer.pointer, count: got), filled)
            guard got == want else {
                throw BNDError.format("\(name): truncated data: dimensions \(dims) need \(total) data bytes, "
                                      + "the file has \(filled + got)")
            }
            filled += got
        }
        var extra = 0
        // Count trailing bytes (up to 1 MiB, enough to say how wrong the file is).
        while extra < 1 << 20 {
            let n = try source.read(into: buffer.pointer, count: chunkSize, what: "data")
            extra += n
            if n < chunkSize { break }
        }
        guard extra == 0 else {
            let amount = extra >= 1 << 20 ? "at least \(extra)" : "\(extra)"
            throw BNDError.format("\(name): trailing garbage: \(amount) unexpected bytes after the \(total) data bytes "
                                  + "of dimensions \(dims)")
        }
        return (type, dims)
    }
}

/// A stream of (decompressed) bytes for the IDX parser.
protocol IDXSource {
    /// Reads up to `count` bytes into the start of `buffer`; fewer only at the end of the data.
    /// Throws `.format` for corrupt compressed data and `.io` for read errors.
    mutating func read(into buffer: UnsafeMutableRawPointer, count: Int, what: String) throws -> Int
    /// An upper bound on the data bytes after a header of `headerSize`, when one is known.
    func maximumRemaining(headerSize: Int) -> Int?
}

struct MemorySource: IDXSource {
    let data: [UInt8]
    var position = 0

    mutating func read(into buffer: UnsafeMutableRawPointer, count: Int, what: String) throws -> Int {
        let n = min(count, data.count - position)
        if n > 0 {
            data.withUnsafeBytes { src in buffer.copyMemory(from: src.baseAddress! + position, byteCount: n) }
        }
        position += n
        return n
    }

    func maximumRemaining(headerSize: Int) -> Int? { max(0, data.count - headerSize) }
}

/// The bytes of an IDX file as the parser reads them: inflated when the file starts as gzip, as they are
/// otherwise (recognised by the bytes, not the name). zlib's inflate is driven directly rather than through
/// gzread because gzread ignores whatever follows the last gzip member: here the members may follow one
/// another (as `cat a.gz b.gz` makes them), but any other byte after the last one is an error, as trailing
/// bytes after the IDX data are. The z_stream lives on the heap: zlib checks that it does not move.
final class GzipSource: IDXSource {
    let name: String
    let fileSize: Int
    private let fd: Int32
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutablePointer<UInt8>
    private static let inputSize = 1 << 16
    /// The file starts with gzip's magic bytes (0x1F 0x8B): its bytes are inflated.
    private(set) var compressed = false
    private var inflating = false   // inflateInit2 succeeded: inflateEnd is owed
    private var fileEnded = false   // read(2) returned 0
    private var membersEnded = false  // the last gzip member is complete and nothing follows it

    /// Opens `path` (a regular file: a FIFO is refused at once rather than waited on).
    init(path: String) throws {
        name = path
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw BNDError.io("\(path): cannot open IDX file: \(IDX.openFailure(errno))")
        }
        var info = stat()
        let statFailed = fstat(fd, &info) != 0, statError = errno
        guard !statFailed, (info.st_mode & S_IFMT) == S_IFREG else {
            let reason = statFailed ? systemError(statError) : "not a regular file"
            close(fd)
            throw BNDError.io("\(path): cannot read IDX file: \(reason)")
        }
        fileSize = Int(info.st_size)
        // (From here on every stored property is set: a throw runs deinit, which frees these.)
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(capacity: GzipSource.inputSize)
        stream.pointee.next_in = input
        stream.pointee.avail_in = 0
        try fill(what: "header")
        let available = Int(stream.pointee.avail_in)
        compressed = available >= 2 && input[0] == 0x1F && input[1] == 0x8B
        if compressed {
            // 15 + 16: a window of up to 32 KB, gzip wrapper only (header, CRC-32 and length checked).
            guard inflateInit2_(stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw BNDError.outOfMemory("\(path): zlib could not start inflating")
            }
            inflating = true
        }
    }

    deinit {
        if inflating { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
        close(fd)
    }

    /// Moves the unread input to the front of the buffer and reads the file after it until the buffer
    /// is full or the file ends.
    private func fill(what: String) throws {
        let kept = Int(stream.pointee.avail_in)
        if kept > 0, let next = stream.pointee.next_in, next != input { input.update(from: next, count: kept) }
        var total = kept
        while total < GzipSource.inputSize && !fileEnded {
            let n = Glibc.read(fd, input + total, GzipSource.inputSize - total)
            if n < 0 {
                if errno == EINTR { continue }
                throw BNDError.io("\(name): cannot read the \(what): \(systemError(errno))")
            }
            if n == 0 { fileEnded = true }
            total += n
        }
        stream.pointee.next_in = input
        stream.pointee.avail_in = UInt32(total)
    }

    func read(into buffer: UnsafeMutableRawPointer, count: Int, what: String) throws -> Int {
        let out = buffer.assumingMemoryBound(to: UInt8.self)
        guard compressed else {
            var total = 0
            while total < count {
                if stream.pointee.avail_in == 0 {
                    if fileEnded { break }
                    try fill(what: what)
                    continue
                }
                let n = min(count - total, Int(stream.pointee.avail_in))
                (out + total).update(from: stream.pointee.next_in, count: n)
                stream.pointee.next_in += n
                stream.pointee.avail_in -= UInt32(n)
                total += n
            }
            return total
        }
        var total = 0
        while total < count && !membersEnded {
            if stream.pointee.avail_in == 0 {
                if fileEnded {
                    throw truncated(what)
                }
                try fill(what: what)
                continue
            }
            let room = min(count - total, Int(UInt32.max))
            stream.pointee.next_out = out + total
            stream.pointee.avail_out = UInt32(room)
            let inputBefore = stream.pointee.avail_in
            let status = inflate(stream, Z_NO_FLUSH)
            let produced = room - Int(stream.pointee.avail_out)
            total += produced
            switch status {
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress: inflate needs more input than the buffer holds now. (With the buffer full it
                // cannot: a guard against a loop that would never end.)
                if produced == 0 && stream.pointee.avail_in == inputBefore {
                    if fileEnded {
                        throw truncated(what)
                    }
                    guard Int(stream.pointee.avail_in) < GzipSource.inputSize else {
                        throw BNDError.format("\(name): corrupt gzip data in the \(what): zlib made no progress")
                    }
                    try fill(what: what)
                }
            case Z_STREAM_END:
                try nextMember(what: what)
            case Z_MEM_ERROR:
                throw BNDError.outOfMemory("\(name): zlib ran out of memory inflating the \(what)")
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "error \(status)"
                throw BNDError.format("\(name): corrupt gzip data in the \(what): \(message)")
            }
        }
        return total
    }

    private func truncated(_ what: String) -> BNDError {
        .format("\(name): truncated gzip stream in the \(what) (the file ends inside it)")
    }

    /// After a gzip member: the end of the file, another member (inflated next), or an error.
    private func nextMember(what: String) throws {
        if stream.pointee.avail_in < 2 && !fileEnded { try fill(what: what) }
        let available = Int(stream.pointee.avail_in)
        if available == 0 {
            membersEnded = true
            return
        }
        let next = stream.pointee.next_in!
        guard available >= 2, next[0] == 0x1F, next[1] == 0x8B else {
            let consumed = lseek(fd, 0, SEEK_CUR) - off_t(available)
            throw BNDError.format("\(name): trailing garbage: the gzip data ends at byte \(consumed) of "
                                  + "\(fileSize), and what follows is not another gzip member")
        }
        inflateReset(stream)
    }

    func maximumRemaining(headerSize: Int) -> Int? {
        if !compressed { return max(0, fileSize - headerSize) }
        let (bound, overflow) = fileSize.multipliedReportingOverflow(by: IDX.maxDeflateRatio)
        return overflow ? nil : bound
    }
}

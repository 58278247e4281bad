import Foundation
import XCTest
import CZlib
@preconcurrency import BNDrop

/// The IDX reader and the Dataset constructors: exact round trips (raw and gzip), every malformed-file
/// error naming the file, and a fuzz test that no byte string traps.
final class IDXTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bndrop-idx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        directory = base.path
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Helpers

    private func path(_ name: String) -> String { directory + "/" + name }

    /// Writes `bytes` as is.
    @discardableResult
    private func writeRaw(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// Writes `bytes` gzip-compressed through zlib's gzopen/gzwrite.
    @discardableResult
    private func writeGzip(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        guard let file = gzopen(p, "wb9") else { throw BNDError.io("gzopen \(p)") }
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32(bytes.count)) }
        XCTAssertEqual(Int(written), bytes.count)
        XCTAssertEqual(gzclose(file), Z_OK)
        return p
    }

    private func fileBytes(_ p: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: p))) }

    /// An IDX header: 0, 0, type, ndims, big-endian dims.
    private func header(type: UInt8 = 0x08, _ dims: [UInt32]) -> [UInt8] {
        var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24), UInt8((d >> 16) & 0xFF), UInt8((d >> 8) & 0xFF), UInt8(d & 0xFF)] }
        return out
    }

    /// 3 images of 2×4 pixels covering the extremes, and their labels.
    private let pixels: [UInt8] = [0, 1, 2, 3, 127, 128, 254, 255,
                                   10, 20, 30, 40, 50, 60, 70, 80,
                                   255, 0, 255, 0, 1, 2, 3, 4]
    private let labels: [UInt8] = [2, 0, 7]

    private func imageFile() -> [UInt8] { header([3, 2, 4]) + pixels }
    private func labelFile() -> [UInt8] { header([3]) + labels }

    /// Asserts that `body` throws a `BNDError` of `kind` whose message names `file` and contains `text`.
    private func assertFails<T>(_ body: @autoclosure () throws -> T, _ kind: BNDErrorKind, file: String, _ text: String,
                                sourceFile: StaticString = #filePath, line: UInt = #line) {
        assertThrowsBNDError(try body(), kind, containing: file, text, file: sourceFile, line: line)
    }

    private let io = BNDErrorKind.io, format = BNDErrorKind.format, outOfMemory = BNDErrorKind.outOfMemory

    // MARK: Round trips

    private func checkLoaded(_ data: Dataset, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(data.count, 3, file: file, line: line)
        XCTAssertEqual(data.sampleShape, [1, 2, 4], file: file, line: line)
        XCTAssertEqual(data.sampleSize, 8, file: file, line: line)
        XCTAssertEqual(data.classes, 8, file: file, line: line)
        XCTAssertTrue(data.isClassification, file: file, line: line)
        XCTAssertEqual(data.labelArray, [2, 0, 7], file: file, line: line)
        XCTAssertEqual(data.featureArray, pixels.map { Float($0) / 255 }, file: file, line: line)
        XCTAssertEqual(data.featureArray[7], 1.0, file: file, line: line)
        XCTAssertEqual(data.featureArray[0], 0.0, file: file, line: line)
    }

    /// The batch loader gathers an IDX dataset's pixel bytes and converts them itself: for every byte
    /// value, in shuffled batches and after `subset`, it must give exactly the floats `features` holds.
    func testLoaderBatchesOfPixelsEqualTheFeatures() throws {
        // 32 images of 3×3 pixels: every byte value once (plus a few again), in a scrambled order.
        let count = 32, size = 9
        let values = (0..<count * size).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        XCTAssertEqual(Set(values).count, 256)
        let images = try writeRaw("all-bytes", header([UInt32(count), 3, 3]) + values)
        let labelBytes = (0..<count).map { UInt8($0 % 10) }
        let labels = try writeRaw("all-labels", header([UInt32(count)]) + labelBytes)
        let data = try Dataset.loadIDX(images: images, labels: labels)
        XCTAssertEqual(data.featureArray, values.map { Float($0) / 255 })
        for source in [data, try data.subset(5..<29)] {
            let features = source.featureArray
            let loader = try BatchLoader(dataset: source, batchSize: 7, shuffle: true, seed: 3)
            var seen = 0
            for _ in 0..<2 {
                while let batch = loader.nextBatch() {
                    for (k, index) in batch.sampleIndices.enumerated() {
                        let row = Array(batch.inputArray[(k * size)..<((k + 1) * size)])
                        XCTAssertEqual(row.map(\.bitPattern), features[(index * size)..<((index + 1) * size)].map(\.bitPattern))
                        seen += 1
                    }
                }
            }
            XCTAssertEqual(seen, 2 * source.count)
        }
    }

    func testRawAndGzipRoundTrip() throws {
        let rawImages = try writeRaw("img", imageFile()), rawLabels = try writeRaw("lbl", labelFile())
        let gzImages = try writeGzip("img.gz", imageFile()), gzLabels = try writeGzip("lbl.gz", labelFile())
        XCTAssertEqual(try fileBytes(gzImages).prefix(2), [0x1F, 0x8B])  // really compressed
        checkLoaded(try Dataset.loadIDX(images: rawImages, labels: rawLabels))
        checkLoaded(try Dataset.loadIDX(images: gzImages, labels: gzLabels))
        checkLoaded(try Dataset.loadIDX(images: gzImages, labels: rawLabels))
        // gzip is recognised by its bytes, not by the name.
        checkLoaded(try Dataset.loadIDX(images: try writeGzip("img-no-suffix", imageFile()), labels: rawLabels))

        let array = try IDX.read(path: gzImages)
        XCTAssertEqual(array.dims, [3, 2, 4])
        XCTAssertEqual(array.typeCode, 0x08)
        XCTAssertEqual(array.bytes, pixels)
        XCTAssertEqual(try IDX.decode(imageFile()), array)
    }

    func testWriterProducesTheStandardLayout() throws {
        let array = IDXArray(dims: [3, 2, 4], bytes: pixels)
        XCTAssertEqual(try IDX.encode(array), imageFile())
        let raw = path("w-raw"), gz = path("w.gz")
        try IDX.write(array, path: raw)
        try IDX.write(array, path: gz)
        XCTAssertEqual(try fileBytes(raw), imageFile())
        XCTAssertEqual(try fileBytes(gz).prefix(2), [0x1F, 0x8B])
        XCTAssertEqual(try IDX.read(path: gz), array)
        XCTAssertEqual(try IDX.read(path: raw, dimensions: 3), array)
        // A big dimension (above 65535) survives the big-endian encoding.
        let wide = IDXArray(dims: [70_000], bytes: (0..<70_000).map { UInt8($0 % 251) })
        try IDX.write(wide, path: path("wide.gz"))
        XCTAssertEqual(try IDX.read(path: path("wide.gz")), wide)
    }

    func testLoadDirectoryFindsStandardNames() throws {
        try writeGzip("train-images-idx3-ubyte.gz", imageFile())
        try writeRaw("train-labels-idx1-ubyte", labelFile())
        try writeRaw("t10k-images-idx3-ubyte", header([1, 2, 4]) + Array(pixels[8..<16]))
        try writeGzip("t10k-labels-idx1-ubyte.gz", header([1]) + [5])
        checkLoaded(try Dataset.loadDirectory(directory, split: .train))
        let test = try Dataset.loadDirectory(directory + "/", split: .test, classes: 10)
        XCTAssertEqual(test.count, 1)
        XCTAssertEqual(test.classes, 10)
        XCTAssertEqual(test.labelArray, [5])
        XCTAssertEqual(try test.sample(0), pixels[8..<16].map { Float($0) / 255 })

        try FileManager.default.removeItem(atPath: path("t10k-labels-idx1-ubyte.gz"))
        assertFails(try Dataset.loadDirectory(directory, split: .test), io,
                    file: path("t10k-labels-idx1-ubyte"), "missing file")
        assertFails(try Dataset.loadDirectory(path("nowhere"), split: .train), io, file: path("nowhere"), "directory")
        try FileManager.default.createDirectory(atPath: path("empty"), withIntermediateDirectories: false)
        assertFails(try Dataset.loadDirectory(path("empty"), split: .train), io,
                    file: path("empty/train-images-idx3-ubyte"), "missing file")
        let regular = try writeRaw("regular-file", labelFile())
        assertFails(try Dataset.loadDirectory(regular, split: .train), io, file: regular, "not a directory")
    }

    func testReshapeAndAccessors() throws {
        let data = try Dataset.loadIDX(images: try writeRaw("i", imageFile()), labels: try writeRaw("l", labelFile()))
        try data.reshape([8])
        XCTAssertEqual(data.sampleShape, [8])
        try data.reshape([2, 4])
        XCTAssertEqual(data.sampleShape, [2, 4])
        assertThrowsBNDError(try data.reshape([9]), .shape)
        assertThrowsBNDError(try data.reshape([2, 0, 4]), .shape)
        XCTAssertEqual(data.sampleShape, [2, 4])
        XCTAssertEqual(try data.label(2), 7)
        assertThrowsBNDError(try data.sample(3), nil)
        assertThrowsBNDError(try data.target(0), nil)
        let tail = try data.subset(1..<3)
        XCTAssertEqual(tail.count, 2)
        XCTAssertEqual(tail.classes, 8)
        XCTAssertEqual(tail.labelArray, [0, 7])
        XCTAssertEqual(tail.featureArray, pixels[8...].map { Float($0) / 255 })
        assertThrowsBNDError(try data.subset(2..<4), nil)
    }

    func testArrayConstructors() throws {
        let c = try Dataset(features: [1, 2, 3, 4, 5, 6], sampleShape: [3], labels: [1, 0])
        XCTAssertEqual(c.count, 2)
        XCTAssertEqual(c.classes, 2)
        XCTAssertEqual(try c.sample(1), [4, 5, 6])
        XCTAssertEqual(try Dataset(features: [1, 2, 3], sampleShape: [3], labels: [1], classes: 10).classes, 10)
        let r = try Dataset(features: [1, 2, 3, 4], sampleShape: [1], targets: [10, 11, 20, 21, 30, 31, 40, 41], targetCount: 2)
        XCTAssertFalse(r.isClassification)
        XCTAssertEqual(r.count, 4)
        XCTAssertEqual(r.classes, 0)
        XCTAssertEqual(try r.target(2), [30, 31])
        XCTAssertNil(r.labels)
        assertThrowsBNDError(try r.label(0), nil)
        // Mistakes throw.
        assertThrowsBNDError(try Dataset(features: [1, 2], sampleShape: [3], labels: [0]), nil)
        assertThrowsBNDError(try Dataset(features: [], sampleShape: [3], labels: []), nil)
        assertThrowsBNDError(try Dataset(features: [1, 2, 3], sampleShape: [3], labels: [-1]), nil)
        assertThrowsBNDError(try Dataset(features: [1, 2, 3], sampleShape: [3], labels: [4], classes: 4), nil)
        assertThrowsBNDError(try Dataset(features: [1, 2, 3], sampleShape: [0, 3], labels: [0]), nil)
        assertThrowsBNDError(try Dataset(features: [1, 2, 3], sampleShape: [1], targets: [1, 2, 3], targetCount: 2), nil)
        assertThrowsBNDError(try Dataset(features: [1, 2], sampleShape: [1], targets: [1, 2, 3], targetCount: 1), nil)
    }

    // MARK: Errors

    func testMissingAndUnreadableFiles() throws {
        let missing = path("absent-idx3-ubyte.gz")
        assertFails(try IDX.read(path: missing), io, file: missing, "no such file")
        assertFails(try Dataset.loadIDX(images: missing, labels: missing), io, file: missing, "no such file")
        let labelPath = try writeRaw("labels", labelFile())
        assertFails(try Dataset.loadIDX(images: try writeRaw("images", imageFile()), labels: missing + "x"), io,
                    file: missing + "x", "no such file")
        try FileManager.default.createDirectory(atPath: path("adir"), withIntermediateDirectories: false)
        assertFails(try Dataset.loadIDX(images: path("adir"), labels: labelPath), io, file: path("adir"), "not a regular file")
    }

    func testTruncatedHeader() throws {
        for gzip in [false, true] {
            let write = gzip ? writeGzip : writeRaw
            let short = try write("short\(gzip)", [0, 0, 8])
            assertFails(try IDX.read(path: short), format, file: short, "truncated header")
            let empty = try write("empty\(gzip)", [])
            assertFails(try IDX.read(path: empty), format, file: empty, "truncated header")
            let partDims = try write("dims\(gzip)", Array(imageFile().prefix(10)))
            assertFails(try IDX.read(path: partDims), format, file: partDims, "truncated header")
        }
    }

    /// The dataset memory limit: a declared size above `maxBytes` is refused before anything is read or
    /// allocated (an IDX "bomb": a 2 MB gzip file may declare 46340×46340 pixels, 8.6 GB as floats).
    func testDeclaredSizeAboveTheLimitIsRefused() throws {
        let labelPath = try writeRaw("one-label", header([1]) + [0])
        for gzip in [false, true] {
            let write = gzip ? writeGzip : writeRaw
            // Only the header: the refusal must not depend on the data (there is none).
            let bomb = try write("bomb\(gzip)", header([1, 46340, 46340]))
            assertFails(try Dataset.loadIDX(images: bomb, labels: labelPath), outOfMemory, file: bomb,
                        "above the dataset memory limit of \(Dataset.defaultMaxBytes) bytes")
            // Under a raised limit, the header alone is a truncated file, found before any allocation.
            assertFails(try Dataset.loadIDX(images: bomb, labels: labelPath, maxBytes: .max), format, file: bomb,
                        "truncated data")
        }
        // The limit is inclusive: exactly the images' float bytes (3·2·4·4 = 96) loads, one byte less does not.
        let images = try writeGzip("img.gz", imageFile()), labels = try writeRaw("lbl", labelFile())
        checkLoaded(try Dataset.loadIDX(images: images, labels: labels, maxBytes: 96))
        assertFails(try Dataset.loadIDX(images: images, labels: labels, maxBytes: 95), outOfMemory, file: images,
                    "limit of 95 bytes")
        let folder = path("mnist")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeRaw("mnist/t10k-images-idx3-ubyte", imageFile())
        try writeRaw("mnist/t10k-labels-idx1-ubyte", labelFile())
        checkLoaded(try Dataset.loadDirectory(folder, split: .test, maxBytes: 96))
        assertThrowsBNDError(try Dataset.loadDirectory(folder, split: .test, maxBytes: 95), .outOfMemory)
        assertThrowsBNDError(try Dataset.loadIDX(images: images, labels: labels, maxBytes: -1), .invalidArgument)
    }

    /// Files larger than the read buffer arrive in several chunks, converted in place, in order.
    func testStreamingAcrossChunks() throws {
        let count = 3 * IDX.chunkSize / 100 + 7  // images of 10×10: ~3.01 chunks of pixels
        let pixels = (0..<(count * 100)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let labelBytes = (0..<count).map { UInt8($0 % 10) }
        for gzip in [false, true] {
            let write = gzip ? writeGzip : writeRaw
            let images = try write("big-img\(gzip)", header([UInt32(count), 10, 10]) + pixels)
            let labels = try write("big-lbl\(gzip)", header([UInt32(count)]) + labelBytes)
            let data = try Dataset.loadIDX(images: images, labels: labels)
            XCTAssertEqual(data.count, count)
            XCTAssertEqual(data.featureArray, pixels.map { Float($0) / 255 })
            XCTAssertEqual(data.labelArray, labelBytes.map { Int32($0) })
            XCTAssertEqual(try IDX.read(path: images).bytes, pixels)
        }
    }

    func testTruncatedData() throws {
        for gzip in [false, true] {
            let write = gzip ? writeGzip : writeRaw
            let cut = try write("cut\(gzip)", Array(imageFile().dropLast(3)))
            assertFails(try IDX.read(path: cut), format, file: cut, "truncated data")
            let labelsCut = try write("lcut\(gzip)", header([5]) + [1, 2])
            assertFails(try Dataset.loadIDX(images: try write("ok\(gzip)", imageFile()), labels: labelsCut), format,
                        file: labelsCut, "truncated data")
        }
        // A truncated gzip stream (the compressed file itself cut short).
        let full = try fileBytes(try writeGzip("whole.gz", imageFile()))
        let cutGzip = try writeRaw("cutstream.gz", Array(full.prefix(full.count - 10)))
        assertFails(try IDX.read(path: cutGzip), format, file: cutGzip, "truncated gzip stream")
    }

    func testCorruptGzip() throws {
        var bytes = try fileBytes(try writeGzip("good.gz", imageFile()))
        bytes[bytes.count - 6] ^= 0xFF  // the CRC-32 in the trailer
        let badCRC = try writeRaw("badcrc.gz", bytes)
        assertFails(try IDX.read(path: badCRC), format, file: badCRC, "corrupt gzip data")
    }

    func testBadMagicAndType() throws {
        let magic = try writeRaw("magic", [0x1F, 0x00, 0x08, 0x01, 0, 0, 0, 1, 9])
        assertFails(try IDX.read(path: magic), format, file: magic, "bad magic number 0x1F000801")
        let text = try writeRaw("text.gz", Array("hello, world\n".utf8))
        assertFails(try IDX.read(path: text), format, file: text, "bad magic")
        let float = try writeGzip("float.gz", header(type: 0x0D, [1]) + [0, 0, 0, 0])
        assertFails(try IDX.read(path: float), format, file: float, "unsupported IDX type 0x0D (float32)")
        let int32 = try writeRaw("int32", header(type: 0x0C, [1]) + [0, 0, 0, 0])
        assertFails(try IDX.read(path: int32), format, file: int32, "unsupported IDX type 0x0C")
        let invalid = try writeRaw("invalid", header(type: 0x07, [1]) + [0])
        assertFails(try IDX.read(path: invalid), format, file: invalid, "invalid IDX type code 0x07")
    }

    func testWrongNumberOfDimensions() throws {
        let images = try writeRaw("images", imageFile()), labelsPath = try writeRaw("labels", labelFile())
        assertFails(try Dataset.loadIDX(images: labelsPath, labels: labelsPath), format, file: labelsPath,
                    "wrong number of dimensions: the file has 1, expected 3")
        assertFails(try Dataset.loadIDX(images: images, labels: images), format, file: images,
                    "wrong number of dimensions: the file has 3, expected 1")
        let flat = try writeRaw("flat", header([3, 8]) + pixels)
        assertFails(try Dataset.loadIDX(images: flat, labels: labelsPath), format, file: flat, "expected 3")
        let none = try writeRaw("none", [0, 0, 8, 0])
        assertFails(try IDX.read(path: none), format, file: none, "0 dimensions")
    }

    func testCountMismatchNamesBothFiles() throws {
        let images = try writeGzip("images.gz", imageFile())
        let labelsPath = try writeGzip("labels.gz", header([4]) + [1, 2, 3, 4])
        assertFails(try Dataset.loadIDX(images: images, labels: labelsPath), format, file: images, "count mismatch")
        assertFails(try Dataset.loadIDX(images: images, labels: labelsPath), format, file: labelsPath, "has 4 labels")
        // Found at the images' header, before their data: images whose data is cut short (3 declared, none
        // there) against 4 labels are a count mismatch, not a truncated file.
        let cut = try writeRaw("cut", header([3, 28, 28]))
        assertFails(try Dataset.loadIDX(images: cut, labels: labelsPath), format, file: cut, "has 3 images but")
        // Labels take 4 bytes each under the same memory limit as the images.
        assertFails(try Dataset.loadIDX(images: images, labels: labelsPath, maxBytes: 15),
                    outOfMemory, file: labelsPath,
                    "4 labels need 16 bytes, above the dataset memory limit of 15 bytes")
    }

    func testHugeOrZeroDimensionsAreRefusedBeforeAllocating() throws {
        // Products that overflow Int, or exceed 2³¹−1 elements.
        let overflow = try writeRaw("overflow", header([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF]) + [1, 2, 3])
        assertFails(try IDX.read(path: overflow), format, file: overflow, "too large")
        let twoG = try writeGzip("2g.gz", header([65_536, 32_768, 1]) + [1])
        assertFails(try IDX.read(path: twoG), format, file: twoG, "too large")
        let manyDims = try writeRaw("many", header(Array(repeating: 0xFFFF_FFFF, count: 200)))
        assertFails(try IDX.read(path: manyDims), format, file: manyDims, "too large")
        // Allowed sizes that the file cannot hold: refused from the file size, nothing allocated.
        let big = try writeRaw("big", header([2_000_000_000]) + [1, 2, 3])
        assertFails(try IDX.read(path: big), format, file: big, "can hold at most 3")
        let bigGz = try writeGzip("big.gz", header([60_000, 28, 28]) + [1, 2, 3])
        assertFails(try IDX.read(path: bigGz), format, file: bigGz, "truncated data")
        let zero = try writeRaw("zero", header([0, 28, 28]))
        assertFails(try IDX.read(path: zero), format, file: zero, "dimension 0 is 0")
    }

    func testTrailingGarbageIsAnError() throws {
        let raw = try writeRaw("trail", imageFile() + [9, 9])
        assertFails(try IDX.read(path: raw), format, file: raw, "trailing garbage: 2 unexpected bytes")
        let gz = try writeGzip("trail.gz", labelFile() + [1])
        assertFails(try IDX.read(path: gz), format, file: gz, "trailing garbage: 1 unexpected bytes")
        assertFails(try IDX.decode(labelFile() + [1, 2, 3], name: "memory-labels"), format, file: "memory-labels",
                    "trailing garbage")
    }

    /// gzip members may follow one another (`cat a.gz b.gz`); any other byte after the last one is an error
    /// (zlib's gzread ignores them), small or large, after one member or several.
    func testBytesAfterTheGzipDataAreAnError() throws {
        let whole = imageFile()
        let first = try fileBytes(try writeGzip("first.gz", Array(whole.prefix(11))))
        let second = try fileBytes(try writeGzip("second.gz", Array(whole.dropFirst(11))))
        let concatenated = try writeRaw("concatenated.gz", first + second)
        XCTAssertEqual(try IDX.read(path: concatenated), try IDX.decode(whole))
        let single = try fileBytes(try writeGzip("single.gz", whole))
        for (label, garbage) in [("one zero byte", [UInt8(0)]), ("text", Array("garbage".utf8)),
                                 ("a lone magic byte", [0x1F]), ("100 KB", [UInt8](repeating: 7, count: 100_000))] {
            for (what, bytes) in [("one member", single), ("two members", first + second)] {
                let damaged = try writeRaw("after-\(what)-\(label).gz", bytes + garbage)
                assertFails(try IDX.read(path: damaged), format, file: damaged,
                            "trailing garbage: the gzip data ends at byte \(bytes.count) of \(bytes.count + garbage.count)")
            }
        }
    }

    // MARK: Fuzz

    /// Every truncation, random bytes, random headers and bit flips: each throws a BNDError or yields a
    /// consistent array; none traps.
    func testCorruptedBytesNeverTrap() throws {
        var random = SeededRandom(seed: 42)
        func check(_ bytes: [UInt8], mustFail: Bool, _ what: String) {
            do {
                let a = try IDX.decode(bytes, name: "fuzz")
                XCTAssertFalse(mustFail, "\(what) decoded: \(a.dims)")
                XCTAssertEqual(a.dims.reduce(1, *), a.bytes.count, what)
            } catch let error as BNDError {
                XCTAssertTrue(error.message.hasPrefix("fuzz: "), "\(what): \(error.message)")
            } catch {
                XCTFail("\(what): not a BNDError: \(error)")
            }
        }
        let valid = imageFile()
        for n in 0..<valid.count { check(Array(valid.prefix(n)), mustFail: true, "prefix \(n)") }
        check(valid, mustFail: false, "whole")
        for n in 0..<3000 {
            let length = Int(random.next() % 48)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if n % 2 == 0, length >= 4 {  // plausible headers reach the deeper checks
                bytes[0] = 0; bytes[1] = 0
                bytes[2] = n % 4 == 0 ? 8 : bytes[2]
                bytes[3] = UInt8(random.next() % 5)
            }
            check(bytes, mustFail: false, "random \(n)")
        }
        for n in 0..<2000 {
            var bytes = valid
            let flips = 1 + Int(random.next() % 3)
            for _ in 0..<flips { bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 8)) }
            check(bytes, mustFail: false, "flip \(n)")
        }

        // Through files and zlib: every truncation of a gzip file, and bit flips in it.
        let gz = try fileBytes(try writeGzip("fuzz.gz", valid))
        for n in 0..<gz.count {
            let p = try writeRaw("t.gz", Array(gz.prefix(n)))
            assertThrowsBNDError(try IDX.read(path: p), .format, containing: p, context: "gzip prefix \(n)")
        }
        for n in 0..<300 {
            var bytes = gz
            bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 8))
            let p = try writeRaw("f.gz", bytes)
            do {
                let a = try IDX.read(path: p)
                XCTAssertEqual(a.dims.reduce(1, *), a.bytes.count, "gzip flip \(n)")
            } catch let error as BNDError {
                XCTAssertTrue(error.message.hasPrefix(p), "gzip flip \(n): \(error.message)")
            }
        }
    }

    // MARK: The real data

    func testFashionMNIST() throws {
        let dir = "/usr/share/datasets/fashion-mnist"
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw XCTSkip("\(dir) is not installed")
        }
        let train = try Dataset.loadDirectory(dir, split: .train)
        let test = try Dataset.loadDirectory(dir, split: .test)
        for (data, count) in [(train, 60_000), (test, 10_000)] {
            XCTAssertEqual(data.count, count)
            XCTAssertEqual(data.sampleShape, [1, 28, 28])
            XCTAssertEqual(data.sampleSize, 784)
            XCTAssertEqual(data.classes, 10)
            var perClass = [Int](repeating: 0, count: 10)
            for label in data.labelArray {
                XCTAssertTrue((0...9).contains(label))
                perClass[Int(label)] += 1
            }
            XCTAssertEqual(perClass, [Int](repeating: count / 10, count: 10))  // Fashion-MNIST is balanced
            let features = UnsafeBufferPointer(start: data.features, count: data.count * data.sampleSize)
            XCTAssertEqual(features.min(), 0)
            XCTAssertEqual(features.max(), 1)
            let mean = features.reduce(0.0) { $0 + Double($1) } / Double(features.count)
            XCTAssertEqual(mean, 0.286, accuracy: 0.01)  // torchvision's normalisation mean for Fashion-MNIST
        }
        try train.reshape([784])
        XCTAssertEqual(train.sampleShape, [784])
    }
}

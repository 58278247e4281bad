import XCTest
@_spi(Testing) import BNDrop
import BNDropKernels

/// Products whose left operand is mostly zeros skip the zeros (`bndk_sparse_product`, chosen by Linear on
/// AVX-512 and AVX2 CPUs): the results must be the products' values, and a skipped zero must never hide a NaN that
/// the full product has (0·∞).
final class SparseProductTests: XCTestCase {
    /// Values with about `zeroShare` of them exactly zero (ReLU's and Dropout's zeros).
    private func mostlyZeros(_ count: Int, zeroShare: Double, random: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in Double(random.nextUnitFloat()) < zeroShare ? 0 : random.nextNormal() }
    }

    /// Each actual value within float rounding of the expected one: 2e-6 of the sum of the magnitudes of
    /// its terms (`scale`), which bounds the rounding of any order of adding them at these lengths.
    private func assertClose(_ actual: UnsafePointer<Float>, _ expected: [(value: Double, scale: Double)], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        for (i, e) in expected.enumerated() {
            let a = Double(actual[i])
            if !(abs(a - e.value) <= 2e-6 * e.scale) {
                XCTFail("\(what)[\(i)] = \(a), expected \(e.value)", file: file, line: line)
                return
            }
        }
    }

    /// The product through a kept-lanes mask, as `bndk_sparse_product` defines it: c[r][o] = start[o] +
    /// Σ_k a[r][k]·b[k][o] in double precision (with the sum of the magnitudes as the scale), or exactly
    /// +0 where keep[r][o] <= 0. Asserts both of `c`.
    private func assertMaskedProduct(_ c: [Float], a: [Float], b: [Float], bStride: Int, start: [Float], keep: [Float],
                                     depth: Int, width: Int, _ what: String, file: StaticString = #filePath,
                                     line: UInt = #line) {
        let want = keep.indices.map { i -> (value: Double, scale: Double) in
            guard !(keep[i] <= 0) else { return (0, 0) }
            var sum = Double(start[i % width]), scale = abs(sum)
            for k in 0..<depth {
                let term = Double(a[(i / width) * depth + k]) * Double(b[k * bStride + i % width])
                sum += term
                scale += abs(term)
            }
            return (sum, scale)
        }
        c.withUnsafeBufferPointer { assertClose($0.baseAddress!, want, what, file: file, line: line) }
        XCTAssertTrue(zip(c, keep).allSatisfy { !($1 <= 0) || $0.bitPattern == 0 }, "\(what): masked lanes are +0",
                      file: file, line: line)
    }

    /// The kernel on its own, where the library's size limits do not reach: more than one chunk of 512
    /// columns, every register count, each way of starting the sums; a NaN entry of `a` spreads.
    func testKernelGivesTheProductForEveryWidthAndStart() throws {
        guard bndk_sparse_product_available() != 0 else { throw XCTSkip("the CPU has neither AVX-512 nor AVX2 with FMA") }
        var random = SeededRandom(seed: 3)
        let depth = 1100
        // A right operand over 16K floats (all but width 1 here) is taken in groups of rows sharing one
        // list (zeros listed as zeros), or, through a ReLU, in blocks of columns of a for panels of 64
        // rows: 130 rows make two orderings of groups (the last group partial) and three panels.
        for (rows, width) in [(4, 1), (4, 15), (4, 16), (4, 17), (4, 48), (4, 100), (4, 128), (130, 48)] {
            let bStride = width + 3
            let a = mostlyZeros(rows * depth, zeroShare: 0.6, random: &random)
            let b = (0..<(depth * bStride)).map { _ in random.nextNormal() }
            let start = (0..<width).map { _ in random.nextNormal() }
            let initial = (0..<(rows * width)).map { _ in random.nextNormal() }
            func expected(_ r: Int, _ o: Int, from s: Float) -> (value: Double, scale: Double) {
                var sum = 0.0, scale = abs(Double(s))
                for k in 0..<depth {
                    let term = Double(a[r * depth + k]) * Double(b[k * bStride + o])
                    sum += term
                    scale += abs(term)
                }
                return (Double(s) + sum, scale)
            }
            for mode in ["zero", "start", "accumulate"] {
                var c = initial
                c.withUnsafeMutableBufferPointer { c in
                    bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), a, Int64(depth), 0, b, Int64(bStride),
                                        mode == "start" ? start : nil, mode == "accumulate" ? 1 : 0, nil, 0, c.baseAddress,
                                        Int64(width))
                }
                let want = (0..<(rows * width)).map { i in
                    expected(i / width, i % width, from: mode == "zero" ? 0 : mode == "start" ? start[i % width] : initial[i])
                }
                c.withUnsafeBufferPointer { assertClose($0.baseAddress!, want, "width \(width), \(mode)") }
            }
            // A row of zeros gives exactly its start; a NaN in a row makes the whole row NaN.
            var a2 = a
            for k in 0..<depth { a2[k] = 0 }
            a2[depth + 700] = .nan
            var c = [Float](repeating: 7, count: rows * width)
            bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), a2, Int64(depth), 0, b, Int64(bStride), start, 0,
                                nil, 0, &c, Int64(width))
            XCTAssertEqual(Array(c[0..<width]).map(\.bitPattern), start.map(\.bitPattern), "width \(width)")
            XCTAssertTrue(c[width..<(2 * width)].allSatisfy(\.isNaN), "width \(width)")

            // Through a ReLU (only positive entries are terms; a NaN still spreads) and with a kept-lanes
            // mask on the result (zero where keep <= 0, NaN keeps): the product of ReLU(a), masked.
            var signed = a
            for i in signed.indices where i % 3 == 0 { signed[i] = -abs(signed[i]) - 1 }
            let keep = (0..<(rows * width)).map { i in i % 5 == 0 ? Float.nan : i % 2 == 0 ? Float(-0.0) : 1 }
            var masked = [Float](repeating: 7, count: rows * width)
            bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), signed, Int64(depth), 1, b, Int64(bStride), start, 0,
                                keep, Int64(width), &masked, Int64(width))
            assertMaskedProduct(masked, a: signed.map { $0 > 0 ? $0 : 0 }, b: b, bStride: bStride, start: start, keep: keep,
                                depth: depth, width: width, "width \(width), through a ReLU, masked")
            signed[2 * depth + 5] = .nan
            bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), signed, Int64(depth), 1, b, Int64(bStride), start, 0,
                                nil, 0, &masked, Int64(width))
            XCTAssertTrue(masked[(2 * width)..<(3 * width)].allSatisfy(\.isNaN), "width \(width): NaN through the ReLU")
        }
    }

    /// The dense product for narrow results (`bndk_narrow_product`, Linear's forward for outputs 2 to 31
    /// wide): every width up to 32 (one or two vectors, the last of at most 8 lanes a 256-bit one), rows
    /// in groups of 8 and a partial group, with and without a start; each row's bits the same computed
    /// alone; NaN and infinity spread; over 32 wide it refuses and writes nothing.
    func testNarrowProductGivesEachRowItsOwnProduct() throws {
        guard bndk_sparse_product_available() != 0 else { throw XCTSkip("the CPU has neither AVX-512 nor AVX2 with FMA") }
        var random = SeededRandom(seed: 21)
        let (rows, depth) = (19, 45)
        for width in [1, 2, 7, 8, 9, 16, 17, 24, 31, 32] {
            let bStride = (width + 15) / 16 * 16
            var a = (0..<(rows * depth)).map { _ in random.nextNormal() }
            let b = (0..<(depth * bStride)).map { _ in random.nextNormal() }
            let start = (0..<width).map { _ in random.nextNormal() }
            for withStart in [false, true] {
                var c = [Float](repeating: 7, count: rows * width)
                XCTAssertEqual(bndk_narrow_product(Int64(rows), Int64(depth), Int64(width), a, Int64(depth), b, Int64(bStride),
                                                   withStart ? start : nil, &c, Int64(width)), 1)
                let want = (0..<(rows * width)).map { i -> (value: Double, scale: Double) in
                    var sum = withStart ? Double(start[i % width]) : 0, scale = abs(sum)
                    for k in 0..<depth {
                        let term = Double(a[(i / width) * depth + k]) * Double(b[k * bStride + i % width])
                        sum += term
                        scale += abs(term)
                    }
                    return (sum, scale)
                }
                c.withUnsafeBufferPointer { assertClose($0.baseAddress!, want, "narrow width \(width)") }
                // Row 13 (in the second group of 8) alone, and row 17 (in the partial group) alone.
                for r in [13, 17] {
                    var alone = [Float](repeating: 7, count: width)
                    _ = bndk_narrow_product(1, Int64(depth), Int64(width), Array(a[(r * depth)..<((r + 1) * depth)]),
                                            Int64(depth), b, Int64(bStride), withStart ? start : nil, &alone, Int64(width))
                    XCTAssertEqual(alone.map(\.bitPattern), c[(r * width)..<((r + 1) * width)].map(\.bitPattern),
                                   "narrow width \(width): row \(r) alone")
                }
            }
            // A NaN in row 3 and an infinity times zero in row 9: both rows NaN throughout, nothing skipped.
            a[3 * depth + 20] = .nan
            for k in 0..<depth { a[9 * depth + k] = 0 }
            var bInfinite = b
            for o in 0..<width { bInfinite[5 * bStride + o] = .infinity }
            var c = [Float](repeating: 7, count: rows * width)
            _ = bndk_narrow_product(Int64(rows), Int64(depth), Int64(width), a, Int64(depth), bInfinite, Int64(bStride),
                                    start, &c, Int64(width))
            XCTAssertTrue(c[(3 * width)..<(4 * width)].allSatisfy(\.isNaN), "narrow width \(width): NaN spreads")
            XCTAssertTrue(c[(9 * width)..<(10 * width)].allSatisfy(\.isNaN), "narrow width \(width): 0·∞ is NaN")
        }
        var c = [Float](repeating: 7, count: 33)
        let b = [Float](repeating: 1, count: 48)
        XCTAssertEqual(bndk_narrow_product(1, 1, 33, [2], 1, b, 48, nil, &c, 33), 0)
        XCTAssertTrue(c.allSatisfy { $0 == 7 }, "over 32 wide: nothing written")
    }

    /// Rows taken in groups (a right operand over 16K floats, zeros listed as plain zeros, e.g. the
    /// article's first layer on images): a column listed for the group but zero in a row must change
    /// nothing in that row, so each row's result has the same bits computed alone or with the rows in
    /// another order, and is the product (with a kept-lanes mask: zero where keep <= 0). Widths 32-128
    /// make groups of 4, 3 and 2 rows with AVX-512 (pairs with AVX2, 6 vectors of columns at a time);
    /// 130 rows, two orderings, the last group partial.
    func testRowsInGroupsGiveEachRowItsOwnBits() throws {
        guard bndk_sparse_product_available() != 0 else { throw XCTSkip("the CPU has neither AVX-512 nor AVX2 with FMA") }
        var random = SeededRandom(seed: 11)
        let rows = 130
        // 784 columns: whole vectors; 1001: a last vector of 9 (the listing reads the masks that the
        // ordering kept, up to 1024 columns); 1100: over 1024, the listing reads the rows again.
        for depth in [784, 1001, 1100] {
        for width in [32, 48, 100, 112, 128] {
            // Rows with their nonzeros in different stretches (as objects in images), some rows all zero.
            var a = [Float](repeating: 0, count: rows * depth)
            for r in 0..<rows where r % 17 != 5 {
                let begin = (r * 37) % 400, end = begin + 200 + (r * 13) % 180
                for k in begin..<end where random.nextUnitFloat() < 0.7 { a[r * depth + k] = random.nextNormal() }
            }
            let b = (0..<(depth * width)).map { _ in random.nextNormal() }
            let start = (0..<width).map { _ in random.nextNormal() }
            let keep = (0..<(rows * width)).map { i in i % 7 == 0 ? Float(-1) : i % 11 == 0 ? Float.nan : 1 }
            func product(_ a: [Float], _ keep: [Float], rows: Int) -> [Float] {
                var c = [Float](repeating: 7, count: rows * width)
                bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), a, Int64(depth), 0, b, Int64(width), start, 0,
                                    keep, Int64(width), &c, Int64(width))
                return c
            }
            let together = product(a, keep, rows: rows)
            assertMaskedProduct(together, a: a, b: b, bStride: width, start: start, keep: keep, depth: depth, width: width,
                                "width \(width), depth \(depth), in groups")
            for r in 0..<rows {
                let alone = product(Array(a[(r * depth)..<((r + 1) * depth)]), Array(keep[(r * width)..<((r + 1) * width)]),
                                    rows: 1)
                XCTAssertEqual(alone.map(\.bitPattern), together[(r * width)..<((r + 1) * width)].map(\.bitPattern),
                               "width \(width), row \(r) alone")
            }
            // The rows in reverse order (other groups): the same rows of bits, reversed.
            let reversedRows = (0..<rows).reversed()
            let backwards = product(reversedRows.flatMap { a[($0 * depth)..<(($0 + 1) * depth)] },
                                    reversedRows.flatMap { keep[($0 * width)..<(($0 + 1) * width)] }, rows: rows)
            XCTAssertEqual(backwards.map(\.bitPattern),
                           reversedRows.flatMap { together[($0 * width)..<(($0 + 1) * width)] }.map(\.bitPattern),
                           "width \(width), rows reversed")
            // A NaN in the last column of one row spreads over that row only.
            var withNaN = a
            withNaN[4 * depth + depth - 1] = .nan
            let spread = product(withNaN, [Float](repeating: 1, count: rows * width), rows: rows)
            XCTAssertTrue(spread[(4 * width)..<(5 * width)].allSatisfy(\.isNaN), "width \(width), depth \(depth): NaN")
            XCTAssertFalse(spread[(5 * width)..<(6 * width)].contains(where: \.isNaN), "width \(width): other rows")
        }
        }
        let depth = 784

        // The sign of a zero: a row whose only product underflows to -0, starting from -0, shares a
        // group with a row that lists another column (a +0 term for the first row). Alone or grouped,
        // the same bits.
        let width = 48
        var a = [Float](repeating: 0, count: 2 * depth)
        a[0] = 1e-30
        a[depth + 5] = 1
        var b = [Float](repeating: 1, count: depth * width)
        for o in 0..<width { b[o] = -1e-30 }
        let start = [Float](repeating: -0.0, count: width)
        var grouped = [Float](repeating: 7, count: 2 * width), alone = [Float](repeating: 7, count: width)
        bndk_sparse_product(2, Int64(depth), Int64(width), a, Int64(depth), 0, b, Int64(width), start, 0, nil, 0, &grouped,
                            Int64(width))
        bndk_sparse_product(1, Int64(depth), Int64(width), a, Int64(depth), 0, b, Int64(width), start, 0, nil, 0, &alone,
                            Int64(width))
        XCTAssertEqual(alone.map(\.bitPattern), grouped[0..<width].map(\.bitPattern), "an underflowed row, alone and grouped")
        XCTAssertTrue(alone.allSatisfy { $0 == 0 }, "the row's values are zeros")

        // A right operand whose rows are 1 float apart (width 1), 20,000 of them: over 16K floats, so in
        // groups, with a block of rows that fits L1 far longer than one list may be.
        let (thinRows, thinDepth) = (5, 20_000)
        let thinA = mostlyZeros(thinRows * thinDepth, zeroShare: 0.5, random: &random)
        let thinB = (0..<thinDepth).map { _ in random.nextNormal() }
        var thin = [Float](repeating: 7, count: thinRows)
        bndk_sparse_product(Int64(thinRows), Int64(thinDepth), 1, thinA, Int64(thinDepth), 0, thinB, 1, [0.5], 0, nil, 0,
                            &thin, 1)
        assertMaskedProduct(thin, a: thinA, b: thinB, bStride: 1, start: [0.5], keep: [Float](repeating: 1, count: thinRows),
                            depth: thinDepth, width: 1, "width 1, rows of the right operand 1 float apart")
    }

    /// With a limit (`bndk_sparse_product_within`), a left operand listing more entries than the limit
    /// leaves c as it was and returns 0; one listing exactly the limit gives bndk_sparse_product's bits.
    /// Every way the kernel runs: rows in groups (up to `bndk_sparse_product_group_rows()` rows, 128 with
    /// AVX-512 and 64 with AVX2: counted while ordering; over that: counted first), whole right operand,
    /// blocked right operand (both through a ReLU: positive entries listed).
    func testKernelWithinALimitComputesOrLeavesTheResultUntouched() throws {
        guard bndk_sparse_product_available() != 0 else { throw XCTSkip("the CPU has neither AVX-512 nor AVX2 with FMA") }
        var random = SeededRandom(seed: 21)
        for (rows, depth, width, positiveOnly) in [(61, 800, 48, false), (100, 800, 48, false), (130, 800, 48, false),
                                                   (20, 100, 100, true),
                                                   (20, 300, 64, true), (9, 40, 33, false)] {
            let bStride = (width + 15) / 16 * 16
            var a = mostlyZeros(rows * depth, zeroShare: 0.5, random: &random)
            a[5] = .nan  // listed either way
            let b = (0..<(depth * bStride)).map { _ in random.nextNormal() }
            let start = (0..<width).map { _ in random.nextNormal() }
            let listed = a.filter { positiveOnly ? !($0 <= 0) : $0 != 0 || $0.isNaN }.count
            let what = "\(rows)×\(depth)→\(width)\(positiveOnly ? " through a ReLU" : "")"
            XCTAssertEqual(Int(bndk_count_listed(a, Int64(a.count), positiveOnly ? 1 : 0)), listed, what)
            var expected = [Float](repeating: 0, count: rows * width)
            bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), a, Int64(depth), positiveOnly ? 1 : 0, b,
                                Int64(bStride), start, 0, nil, 0, &expected, Int64(width))
            let sentinel = Float(bitPattern: 0x7FC0_1234)
            for limit in [listed - 1, 0, listed, listed + 1, Int(Int64.max)] {
                var c = [Float](repeating: sentinel, count: rows * width)
                // (With the largest limit, the rows named as the next call's: a hint for loading them into
                // cache, which must change nothing.)
                let hinted = limit == Int(Int64.max)
                let done = bndk_sparse_product_within(Int64(limit), Int64(rows), Int64(depth), Int64(width), a, Int64(depth),
                                                      positiveOnly ? 1 : 0, b, Int64(bStride), start, 0, nil, 0, &c,
                                                      Int64(width), hinted ? a : nil, hinted ? Int64(rows) : 0)
                if limit < listed {
                    XCTAssertEqual(done, 0, "\(what), limit \(limit)")
                    XCTAssertTrue(c.allSatisfy { $0.bitPattern == sentinel.bitPattern }, "\(what), limit \(limit): c untouched")
                } else {
                    XCTAssertEqual(done, 1, "\(what), limit \(limit)")
                    XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), "\(what), limit \(limit)")
                }
            }
        }
    }

    /// Each task of Linear's forward (128 rows of a large batch, in calls of 64 with AVX2) chooses by its
    /// own rows whether to skip zeros: a batch whose first 128 rows have no zeros and the next 128 mostly
    /// zeros (70% nonzero in all, which a choice for the whole batch would take as few enough) gives, row
    /// for row, the bits of each half in a batch of its own kind, for any thread count, and the product's
    /// values.
    func testLinearForwardChoosesSkippingZerosPerTaskOfRows() throws {
        let (inF, outF) = (784, 48)
        var random = SeededRandom(seed: 23)
        let linear = try Linear(inputShape: [inF], outFeatures: outF, random: &random)
        linear.isTraining = false
        let dense = (0..<(128 * inF)).map { _ in random.nextNormal() }
        let sparse = mostlyZeros(128 * inF, zeroShare: 0.6, random: &random)
        let both = dense + sparse
        func forward(_ x: [Float], threads: Int) throws -> [UInt32] {
            let original = ThreadPool.shared.threadCount
            try ThreadPool.shared.setThreadCount(threads)
            defer { try? ThreadPool.shared.setThreadCount(original) }
            let batch = x.count / inF
            return try x.withUnsafeBufferPointer {
                Array(UnsafeBufferPointer(start: try linear.forward($0.baseAddress!, batch: batch), count: batch * outF))
            }.map(\.bitPattern)
        }
        // Each half twice over: the same tasks of 128 rows, all dense or all mostly zeros.
        let alone = try Array(forward(dense + dense, threads: 1).prefix(128 * outF))
            + Array(forward(sparse + sparse, threads: 1).suffix(128 * outF))
        for threads in [1, 2, 3] {
            XCTAssertEqual(try forward(both, threads: threads), alone, "\(threads) threads")
        }
        let w = linear.weight.value.array, b = linear.bias.value.array
        let expected = (0..<(256 * outF)).map { i -> (value: Double, scale: Double) in
            let (n, o) = (i / outF, i % outF)
            var sum = Double(b[o]), scale = abs(Double(b[o]))
            for k in 0..<inF {
                let term = Double(both[n * inF + k]) * Double(w[o * inF + k])
                sum += term
                scale += abs(term)
            }
            return (sum, scale)
        }
        let y = try forward(both, threads: 2).map { Float(bitPattern: $0) }
        y.withUnsafeBufferPointer { assertClose($0.baseAddress!, expected, "784→48, half dense") }
    }

    /// In eval mode Linear keeps the weight it transposed for skipping zeros and reuses it while the weight
    /// is unchanged: a weight changed through its pointer (as the C API allows) between forwards, made
    /// infinite, or restored, gives each time the bits of a fresh layer with that weight.
    func testEvalForwardSeesEveryChangeOfTheWeight() throws {
        let (inF, outF, batch) = (784, 48, 200)
        var random = SeededRandom(seed: 25)
        let linear = try Linear(inputShape: [inF], outFeatures: outF, random: &random)
        let x = mostlyZeros(batch * inF, zeroShare: 0.6, random: &random)
        func output(_ layer: Linear) throws -> [UInt32] {
            try x.withUnsafeBufferPointer {
                Array(UnsafeBufferPointer(start: try layer.forward($0.baseAddress!, batch: batch), count: batch * outF))
            }.map(\.bitPattern)
        }
        func fresh() throws -> [UInt32] {
            let twin = try Linear(inputShape: [inF], outFeatures: outF, random: &random)
            twin.weight.value.copy(from: linear.weight.value.pointer)
            twin.bias.value.copy(from: linear.bias.value.pointer)
            twin.isTraining = false
            return try output(twin)
        }
        linear.isTraining = false
        let original = linear.weight.value.array
        let first = try output(linear)
        XCTAssertEqual(first, try fresh(), "first forward")
        XCTAssertEqual(try output(linear), first, "unchanged weight")
        linear.weight.value.pointer[3 * inF + 100] += 0.25
        let changed = try output(linear)
        XCTAssertNotEqual(changed, first, "a changed weight changes the output")
        XCTAssertEqual(changed, try fresh(), "changed weight")
        linear.weight.value.pointer[5 * inF + 7] = .infinity
        let infinite = try output(linear)
        XCTAssertEqual(infinite, try fresh(), "infinite weight")
        XCTAssertTrue((0..<batch).allSatisfy { Float(bitPattern: infinite[$0 * outF + 5]).isNaN || x[$0 * inF + 7] != 0 },
                      "0·∞ is NaN where input column 7 is zero")
        linear.weight.value.copy(from: original)
        XCTAssertEqual(try output(linear), first, "restored weight")
        linear.isTraining = true
        linear.weight.value.pointer[0] = -1
        XCTAssertEqual(try output(linear), try fresh(), "training mode")
        linear.isTraining = false
        XCTAssertEqual(try output(linear), try fresh(), "eval mode after training mode")
    }

    /// A Linear that takes in the ReLU before it (the sparse path lists only positive entries and masks
    /// the input gradient as it stores it; the dense path makes the ReLU's output first) gives the bits
    /// of the ReLU and the Linear run one after the other: outputs, input gradient, every parameter
    /// gradient, and the ReLU's output read back from the network. Preactivations mostly negative (the
    /// sparse path) and mostly positive (dense), a batch of 50 and of 150 (two row tasks).
    func testLinearTakingInTheReLUGivesTheSameBitsAsBoth() throws {
        guard bndk_sparse_product_available() != 0 else { throw XCTSkip("the CPU has no AVX-512: Linear takes no ReLU in") }
        for (batch, shift) in [(50, Float(-0.4)), (50, 0.4), (150, -0.4)] {
            let net = try Sequential(sampleShape: [64], seed: 4)
            try net.addLinear(100)
            try net.addReLU()
            try net.addLinear(96)
            try net.addReLU()
            try net.addLinear(40)
            let linears = net.layers.compactMap { $0 as? Linear }
            for i in 0..<linears[0].outFeatures { linears[0].bias.value.pointer[i] += shift }
            var random = SeededRandom(seed: 11)
            var twins: [Layer] = []
            for layer in net.layers {
                if let linear = layer as? Linear {
                    let twin = try Linear(inputShape: [linear.inFeatures], outFeatures: linear.outFeatures, random: &random)
                    twin.weight.value.copy(from: linear.weight.value.pointer)
                    twin.bias.value.copy(from: linear.bias.value.pointer)
                    twins.append(twin)
                } else {
                    twins.append(try ReLU(inputShape: layer.inputShape))
                }
            }
            // The backward passes read the forward's input: it must outlive them (an array could be freed
            // after its last use in an optimised build).
            let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * 64)
            defer { x.deallocate() }
            x.initialize(from: (0..<(batch * 64)).map { _ in random.nextNormal() }, count: batch * 64)
            let dy = (0..<(batch * 40)).map { _ in random.nextNormal() }
            let what = "batch \(batch), shift \(shift)"

            let y = Array(try net.forward(x, batch: batch))
            var outputs: [[Float]] = []
            var current = try twins[0].forward(x, batch: batch)
            outputs.append(Array(UnsafeBufferPointer(start: current, count: batch * twins[0].outputShape.reduce(1, *))))
            for twin in twins.dropFirst() {
                current = try twin.forward(current, batch: batch)
                outputs.append(Array(UnsafeBufferPointer(start: current, count: batch * twin.outputShape.reduce(1, *))))
            }
            XCTAssertEqual(y.map(\.bitPattern), outputs[4].map(\.bitPattern), "\(what): output")
            for index in [1, 3] {
                XCTAssertEqual(try net.layerOutput(index).map(\.bitPattern), outputs[index].map(\.bitPattern),
                               "\(what): the ReLU's output read back")
            }

            var dx = [Float](repeating: 0, count: batch * 64)
            try dy.withUnsafeBufferPointer { dy in
                try dx.withUnsafeMutableBufferPointer { try net.backward(dy.baseAddress!, batch: batch, gradInput: $0) }
            }
            var gradient = try dy.withUnsafeBufferPointer {
                try XCTUnwrap(try twins[4].backward($0.baseAddress!, batch: batch, needInputGradient: true))
            }
            for twin in twins[0..<4].reversed() {
                gradient = try XCTUnwrap(try twin.backward(gradient, batch: batch, needInputGradient: true))
            }
            XCTAssertEqual(dx.map(\.bitPattern), Array(UnsafeBufferPointer(start: gradient, count: batch * 64)).map(\.bitPattern),
                           "\(what): input gradient")
            for (linear, twin) in zip(linears, twins.compactMap { $0 as? Linear }) {
                XCTAssertEqual(linear.weight.gradient.array.map(\.bitPattern), twin.weight.gradient.array.map(\.bitPattern),
                               "\(what): weight gradient")
                XCTAssertEqual(linear.bias.gradient.array.map(\.bitPattern), twin.bias.gradient.array.map(\.bitPattern),
                               "\(what): bias gradient")
            }
        }
    }

    /// Linear's forward and backward on mostly-zero inputs and output gradients (the shapes the library
    /// skips zeros for: the article's 100→100 layer at a batch of 50, a result width with a partial
    /// vector, more than one task of rows) against the definition in double precision.
    func testLinearOnMostlyZeroOperandsGivesTheProducts() throws {
        for (batch, inF, outF) in [(50, 100, 100), (7, 40, 33), (150, 64, 96)] {
            var random = SeededRandom(seed: UInt64(batch))
            let linear = try Linear(inputShape: [inF], outFeatures: outF, random: &random)
            let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * inF)
            defer { x.deallocate() }
            x.initialize(from: mostlyZeros(batch * inF, zeroShare: 0.6, random: &random), count: batch * inF)
            let dy = mostlyZeros(batch * outF, zeroShare: 0.55, random: &random)
            let w = linear.weight.value.array, b = linear.bias.value.array
            let name = "\(batch)×\(inF)→\(outF)"

            let y = try linear.forward(x, batch: batch)
            var expectedY = [(value: Double, scale: Double)](repeating: (0, 0), count: batch * outF)
            for n in 0..<batch {
                for o in 0..<outF {
                    var sum = Double(b[o]), scale = abs(Double(b[o]))
                    for k in 0..<inF {
                        sum += Double(x[n * inF + k]) * Double(w[o * inF + k])
                        scale += abs(Double(x[n * inF + k]) * Double(w[o * inF + k]))
                    }
                    expectedY[n * outF + o] = (sum, scale)
                }
            }
            assertClose(y, expectedY, "\(name) y")

            linear.weight.gradient.fill(0.5)  // gradients accumulate
            linear.bias.gradient.fill(0)
            let dx = try XCTUnwrap(try linear.backward(dy, batch: batch, needInputGradient: true))
            var expectedDx = [(value: Double, scale: Double)](repeating: (0, 0), count: batch * inF)
            var expectedDw = [(value: Double, scale: Double)](repeating: (0.5, 0.5), count: outF * inF)
            for n in 0..<batch {
                for o in 0..<outF {
                    let g = Double(dy[n * outF + o])
                    for k in 0..<inF {
                        let dxTerm = g * Double(w[o * inF + k]), dwTerm = g * Double(x[n * inF + k])
                        expectedDx[n * inF + k].value += dxTerm
                        expectedDx[n * inF + k].scale += abs(dxTerm)
                        expectedDw[o * inF + k].value += dwTerm
                        expectedDw[o * inF + k].scale += abs(dwTerm)
                    }
                }
            }
            assertClose(dx, expectedDx, "\(name) dx")
            assertClose(linear.weight.gradient.pointer, expectedDw, "\(name) dW")
        }
    }

    /// 0·∞ is NaN: an infinite weight (or input) meeting only zeros must still make the outputs (or
    /// gradients) it touches NaN, as PyTorch's full product does, and leave the others finite.
    func testInfinityMeetingSkippedZerosStillGivesNaN() throws {
        let (batch, inF, outF) = (50, 100, 100)
        var random = SeededRandom(seed: 8)
        let linear = try Linear(inputShape: [inF], outFeatures: outF, random: &random)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * inF)
        defer { x.deallocate() }
        x.initialize(from: mostlyZeros(batch * inF, zeroShare: 0.6, random: &random), count: batch * inF)
        for n in 0..<batch { x[n * inF + 3] = 0 }           // input column 3: zero everywhere
        linear.weight.value.pointer[7 * inF + 3] = .infinity  // W[7][3] meets only those zeros
        let y = try linear.forward(x, batch: batch)
        for n in 0..<batch {
            XCTAssertTrue(y[n * outF + 7].isNaN, "y[\(n)][7]")
            XCTAssertTrue(y[n * outF + 8].isFinite, "y[\(n)][8]")
        }
        // Backward: output column 7's gradient is zero everywhere, so dx meets W[7][3] = ∞ only through
        // zeros (NaN in every row's column 3); x[0][5] = ∞ meets dy[0][·]'s zeros (dW[o][5] NaN where dy[0][o] = 0).
        var dy = mostlyZeros(batch * outF, zeroShare: 0.55, random: &random)
        for n in 0..<batch { dy[n * outF + 7] = 0 }
        x[5] = .infinity
        _ = try linear.forward(x, batch: batch)
        let dx = try XCTUnwrap(try linear.backward(dy, batch: batch, needInputGradient: true))
        for n in 0..<batch { XCTAssertTrue(dx[n * inF + 3].isNaN, "dx[\(n)][3]") }
        for o in 0..<outF where o != 7 && dy[o] == 0 {
            XCTAssertTrue(linear.weight.gradient.pointer[o * inF + 5].isNaN, "dW[\(o)][5]")
        }
    }

    /// Rows like images: zeros at both ends of each row (the background) and scattered within.
    private func imageLike(rows: Int, width: Int, random: inout SeededRandom) -> [Float] {
        (0..<rows * width).map { i in
            let column = i % width
            guard column >= width / 4, column < width - width / 4 else { return 0 }
            return random.nextUnitFloat() < 0.3 ? 0 : random.nextUnitFloat()
        }
    }

    /// With a dense output gradient (after BatchNorm) and an input mostly zeros in runs (images), the
    /// weight gradient skips the input's zeros (`bndk_sparse_input_weight_gradient`, with AVX-512): each
    /// value is the old one plus one chain of fused multiply-adds over the samples in order whose input is
    /// not zero (a zero sum taken as +0), within rounding of the exact sum, and the same bits for any
    /// thread count; a dense input or a small batch keeps OpenBLAS.
    func testWeightGradientSkipsTheZerosOfTheInput() throws {
        for (batch, inF, outF) in [(130, 102, 48), (128, 37, 100), (200, 30, 2)] {
            var random = SeededRandom(seed: UInt64(inF))
            let x = imageLike(rows: batch, width: inF, random: &random)
            let input = UnsafeMutablePointer<Float>.allocate(capacity: batch * inF)  // the forward keeps a pointer to it
            defer { input.deallocate() }
            input.initialize(from: x, count: batch * inF)
            let dy = (0..<batch * outF).map { _ in random.nextNormal() }
            let name = "\(batch)×\(inF)→\(outF)"
            let skips = Linear.skipsInputZeros(input, batch: batch, inFeatures: inF, outFeatures: outF)
            XCTAssertEqual(skips, bndk_sparse_input_weight_gradient_available() != 0, "\(name): skips the input's zeros")
            var results: [[Float]] = []
            let original = ThreadPool.shared.threadCount
            defer { try? ThreadPool.shared.setThreadCount(original) }
            for threads in [1, 2, 3] {
                try ThreadPool.shared.setThreadCount(threads)
                var seeded = SeededRandom(seed: 3)
                let linear = try Linear(inputShape: [inF], outFeatures: outF, random: &seeded)
                let old = (0..<outF * inF).map { Float($0 % 7) - 3 }
                linear.weight.gradient.pointer.update(from: old, count: outF * inF)
                _ = try linear.forward(input, batch: batch)
                _ = try linear.backward(dy, batch: batch, needInputGradient: false)
                let dW = Array(UnsafeBufferPointer(start: linear.weight.gradient.pointer, count: outF * inF))
                var expected = [(value: Double, scale: Double)]()
                for o in 0..<outF {
                    for k in 0..<inF {
                        var sum = Double(old[o * inF + k]), scale = abs(sum)
                        var chain: Float = 0
                        for n in 0..<batch where x[n * inF + k] != 0 {
                            let term = Double(x[n * inF + k]) * Double(dy[n * outF + o])
                            sum += term
                            scale += abs(term)
                            chain = chain.addingProduct(x[n * inF + k], dy[n * outF + o])  // fused
                        }
                        expected.append((sum, scale))
                        if skips {
                            let exact = old[o * inF + k] + (chain + 0)
                            XCTAssertEqual(dW[o * inF + k].bitPattern, exact.bitPattern, "\(name) dW[\(o)][\(k)] in the defined order")
                        }
                    }
                }
                dW.withUnsafeBufferPointer { assertClose($0.baseAddress!, expected, "\(name) dW") }
                results.append(dW)
            }
            XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern), "\(name): 1 and 2 threads")
            XCTAssertEqual(results[0].map(\.bitPattern), results[2].map(\.bitPattern), "\(name): 1 and 3 threads")
        }
        // Inputs without zeros in runs (a ReLU's, scattered), and batches under 128, keep OpenBLAS's product.
        var random = SeededRandom(seed: 5)
        let small = imageLike(rows: 64, width: 100, random: &random)
        XCTAssertFalse(small.withUnsafeBufferPointer {
            Linear.skipsInputZeros($0.baseAddress!, batch: 64, inFeatures: 100, outFeatures: 48)
        })
        let dense = (0..<128 * 100).map { _ in random.nextUnitFloat() < 0.5 ? 0 : random.nextUnitFloat() }
        XCTAssertFalse(dense.withUnsafeBufferPointer {
            Linear.skipsInputZeros($0.baseAddress!, batch: 128, inFeatures: 100, outFeatures: 48)
        })
    }

    /// A skipped zero of the input must not hide the NaN of 0·∞ when the output gradient is infinite:
    /// the weight gradient then runs dense, as PyTorch's does.
    func testInfiniteOutputGradientMeetingTheInputsZerosStillGivesNaN() throws {
        let (batch, inF, outF) = (128, 40, 48)
        var random = SeededRandom(seed: 11)
        let input = UnsafeMutablePointer<Float>.allocate(capacity: batch * inF)
        defer { input.deallocate() }
        input.initialize(from: imageLike(rows: batch, width: inF, random: &random), count: batch * inF)
        input[3 * inF] = 0
        XCTAssertEqual(Linear.skipsInputZeros(input, batch: batch, inFeatures: inF, outFeatures: outF),
                       bndk_sparse_input_weight_gradient_available() != 0, "an input whose zeros would be skipped")
        var dy = (0..<batch * outF).map { _ in random.nextNormal() }
        dy[3 * outF + 5] = .infinity  // sample 3, output 5: meets x[3][0] = 0
        let linear = try Linear(inputShape: [inF], outFeatures: outF, random: &random)
        linear.weight.gradient.fill(0)
        _ = try linear.forward(input, batch: batch)
        _ = try linear.backward(dy, batch: batch, needInputGradient: false)
        XCTAssertTrue(linear.weight.gradient.pointer[5 * inF + 0].isNaN, "dW[5][0] = Σ … + 0·∞")
        XCTAssertTrue(linear.weight.gradient.pointer[6 * inF + 0].isFinite, "dW[6][0]")
    }
}

import XCTest
import BNDrop
import BNDropKernels

/// Products whose left operand is mostly zeros skip the zeros (`bndk_sparse_product`, chosen by Linear on
/// AVX-512 CPUs): the results must be the products' values, and a skipped zero must never hide a NaN that
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

    /// The kernel on its own, where the library's size limits do not reach: more than one chunk of 512
    /// columns, every register count, each way of starting the sums; a NaN entry of `a` spreads.
    func testKernelGivesTheProductForEveryWidthAndStart() throws {
        guard bndk_sparse_product_available() != 0 else { throw XCTSkip("the CPU has no AVX-512") }
        var random = SeededRandom(seed: 3)
        let (rows, depth) = (4, 1100)
        for width in [1, 15, 16, 17, 48, 100, 128] {
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
                    bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), a, Int64(depth), b, Int64(bStride),
                                        mode == "start" ? start : nil, mode == "accumulate" ? 1 : 0, c.baseAddress, Int64(width))
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
            bndk_sparse_product(Int64(rows), Int64(depth), Int64(width), a2, Int64(depth), b, Int64(bStride), start, 0,
                                &c, Int64(width))
            XCTAssertEqual(Array(c[0..<width]).map(\.bitPattern), start.map(\.bitPattern), "width \(width)")
            XCTAssertTrue(c[width..<(2 * width)].allSatisfy(\.isNaN), "width \(width)")
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
}

import XCTest
@_spi(Testing) import BNDrop

/// Conv2d's two lowerings, im2col + GEMM and the direct kernels (convolution.c), compute the same
/// forward pass and the same gradients, to float rounding; and the direct one is bit-identical for
/// any thread count.
final class ConvolutionLoweringTests: XCTestCase {
    private struct Case: CustomStringConvertible {
        let channels: Int, height: Int, width: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
        let batch: Int
        var description: String {
            "C\(channels) \(height)x\(width) -> \(outChannels), k\(kernel) s\(stride) p\(padding), batch \(batch)"
        }
    }

    // Batches that are not multiples of the 8 samples of a task; odd sizes, so the phase planes of a
    // stride of 2 have unequal sizes.
    private static let cases: [Case] = [
        Case(channels: 1, height: 28, width: 28, outChannels: 3, kernel: 5, stride: 1, padding: 0, batch: 19),
        Case(channels: 3, height: 12, width: 12, outChannels: 6, kernel: 3, stride: 1, padding: 0, batch: 11),
        Case(channels: 2, height: 9, width: 7, outChannels: 5, kernel: 3, stride: 1, padding: 1, batch: 3),
        Case(channels: 4, height: 8, width: 11, outChannels: 8, kernel: 5, stride: 1, padding: 2, batch: 9),
        Case(channels: 8, height: 6, width: 6, outChannels: 1, kernel: 1, stride: 1, padding: 0, batch: 10),
        Case(channels: 3, height: 11, width: 9, outChannels: 4, kernel: 3, stride: 2, padding: 0, batch: 13),
        Case(channels: 5, height: 10, width: 13, outChannels: 7, kernel: 3, stride: 2, padding: 1, batch: 17),
        Case(channels: 1, height: 15, width: 15, outChannels: 2, kernel: 5, stride: 2, padding: 2, batch: 5),
        Case(channels: 2, height: 7, width: 8, outChannels: 3, kernel: 1, stride: 2, padding: 1, batch: 1),
        Case(channels: 6, height: 13, width: 10, outChannels: 2, kernel: 5, stride: 3, padding: 2, batch: 4),
        Case(channels: 7, height: 5, width: 5, outChannels: 3, kernel: 5, stride: 1, padding: 0, batch: 2),
        // Stride 1, output rows whole vectors of 8 (the forward by rows): 1-3 vectors per block, groups of
        // 1-3 output channels, with and without padding.
        Case(channels: 2, height: 10, width: 32, outChannels: 4, kernel: 3, stride: 1, padding: 1, batch: 5),
        Case(channels: 1, height: 9, width: 10, outChannels: 5, kernel: 3, stride: 1, padding: 0, batch: 7),
        Case(channels: 3, height: 7, width: 16, outChannels: 1, kernel: 5, stride: 1, padding: 2, batch: 3),
        // Many tasks of 8 samples, the last one partial.
        Case(channels: 1, height: 12, width: 12, outChannels: 3, kernel: 3, stride: 1, padding: 1, batch: 75),
        Case(channels: 2, height: 9, width: 9, outChannels: 10, kernel: 3, stride: 2, padding: 0, batch: 139),
    ]

    /// Forward, then backward with an input gradient, twice (the parameter gradients accumulate).
    private func run(_ c: Case, _ lowering: Conv2d.Lowering) throws
        -> (output: [Float], weightGradient: [Float], biasGradient: [Float], inputGradient: [Float]) {
        var random = SeededRandom(seed: 3)
        let conv = try Conv2d(inputShape: [c.channels, c.height, c.width], outChannels: c.outChannels,
                              kernelSize: c.kernel, stride: c.stride, padding: c.padding, random: &random)
        conv.lowering = lowering
        var data = SeededRandom(seed: 17)
        let x = (0..<(c.batch * c.channels * c.height * c.width)).map { _ in data.nextNormal() }
        let outputCount = conv.outputShape.reduce(1, *) * c.batch
        let dy = (0..<outputCount).map { _ in data.nextNormal() }
        var output: [Float] = [], inputGradient: [Float] = []
        for _ in 0..<2 {
            output = Array(UnsafeBufferPointer(start: try conv.forward(x, batch: c.batch), count: outputCount))
            let dx = try conv.backward(dy, batch: c.batch, needInputGradient: true)
            inputGradient = Array(UnsafeBufferPointer(start: try XCTUnwrap(dx), count: x.count))
        }
        func values(_ b: FloatBuffer) -> [Float] { Array(UnsafeBufferPointer(start: b.pointer, count: b.count)) }
        return (output, values(conv.weight.gradient), values(conv.bias.gradient), inputGradient)
    }

    /// |a − b| within float rounding of sums as large as the tensor's largest value.
    private func assertClose(_ a: [Float], _ b: [Float], _ what: String, _ c: Case) {
        XCTAssertEqual(a.count, b.count, "\(c): \(what) size")
        let scale = b.map(abs).max() ?? 0
        XCTAssertGreaterThan(scale, 0, "\(c): \(what) is all zeros")
        XCTAssertTrue(a.allSatisfy(\.isFinite), "\(c): \(what) has non-finite values")
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a[i] - b[i])) }
        XCTAssertLessThanOrEqual(worst, 2e-5 * scale, "\(c): \(what) differs by \(worst) (largest value \(scale))")
    }

    /// The bias gradient's order, the same in both lowerings: each sample's terms one by one in the order
    /// of its positions (PyTorch's own order for one sample), then the samples' sums in order within each
    /// task of 8 samples, then the tasks' sums in order; twice (the gradient accumulates).
    func testBiasGradientIsEachSampleSummedOneByOneThenTheSamplesInOrder() throws {
        for c in Self.cases {
            let plane = ((c.height + 2 * c.padding - c.kernel) / c.stride + 1) * ((c.width + 2 * c.padding - c.kernel) / c.stride + 1)
            var data = SeededRandom(seed: 17)  // the same draws as `run`
            _ = (0..<(c.batch * c.channels * c.height * c.width)).map { _ in data.nextNormal() }
            let dy = (0..<(c.batch * c.outChannels * plane)).map { _ in data.nextNormal() }
            var expected = [Float](repeating: 0, count: c.outChannels)
            for _ in 0..<2 {
                for o in 0..<c.outChannels {
                    for first in stride(from: 0, to: c.batch, by: 8) {
                        var task: Float = 0
                        for n in first..<min(first + 8, c.batch) {
                            var sample: Float = 0
                            for i in 0..<plane { sample += dy[(n * c.outChannels + o) * plane + i] }
                            task += sample
                        }
                        expected[o] += task
                    }
                }
            }
            for lowering in [Conv2d.Lowering.direct, .im2col] {
                XCTAssertEqual(try run(c, lowering).biasGradient.map(\.bitPattern), expected.map(\.bitPattern),
                               "\(c), \(lowering)")
            }
        }
    }

    func testDirectAndIm2colAgree() throws {
        for c in Self.cases {
            let direct = try run(c, .direct), reference = try run(c, .im2col)
            assertClose(direct.output, reference.output, "output", c)
            assertClose(direct.weightGradient, reference.weightGradient, "weight gradient", c)
            assertClose(direct.biasGradient, reference.biasGradient, "bias gradient", c)
            // Both add the bias gradient's terms in the same order: same bits.
            XCTAssertEqual(direct.biasGradient.map(\.bitPattern), reference.biasGradient.map(\.bitPattern), "\(c)")
            assertClose(direct.inputGradient, reference.inputGradient, "input gradient", c)
        }
    }

    /// On CPUs without AVX-512 the direct forward computes a stride-1 layer whose output rows are whole
    /// vectors of 8 row by row (no junk columns, no copy of an unpadded sample), and others over the
    /// phase planes: each output is the same sum either way. The same input with one more column (an
    /// output row 8k + 1 wide, so the phase planes) must give the first 8k columns of every row bit for
    /// bit. (With AVX-512 both widths below take the phase planes; `make kernel-isa-test` runs the AVX2
    /// build's rows on any CPU with AVX2.)
    func testForwardByRowsMatchesThePhasePlanes() throws {
        for (channels, height, width, outChannels, kernel, padding) in [(1, 28, 28, 3, 5, 0), (2, 10, 32, 4, 3, 1),
                                                                         (3, 7, 16, 5, 5, 2), (1, 9, 10, 2, 3, 0)] {
            let outWidth = width + 2 * padding - kernel + 1, outHeight = height + 2 * padding - kernel + 1
            XCTAssertEqual(outWidth % 8, 0)
            func forward(extraColumn: Bool) throws -> [Float] {
                var random = SeededRandom(seed: 4)  // the same weights for both widths
                let w = width + (extraColumn ? 1 : 0)
                let conv = try Conv2d(inputShape: [channels, height, w], outChannels: outChannels, kernelSize: kernel,
                                      padding: padding, random: &random)
                conv.lowering = .direct
                XCTAssertTrue(conv.usesDirectKernels)
                var data = SeededRandom(seed: 9)
                let batch = 3
                var x = [Float](repeating: 0, count: batch * channels * height * w)
                for n in 0..<batch {
                    for c in 0..<channels {
                        for y in 0..<height {
                            for i in 0..<width { x[((n * channels + c) * height + y) * w + i] = data.nextNormal() }
                            // (With padding the extra column stands where the narrower input has a zero
                            // of its padding; without, no output compared reads it.)
                            if extraColumn { x[((n * channels + c) * height + y) * w + width] = padding > 0 ? 0 : 7 }
                        }
                    }
                }
                let ow = outWidth + (extraColumn ? 1 : 0)
                let y = try conv.forward(x, batch: batch)
                var rows: [Float] = []
                for row in 0..<(batch * outChannels * outHeight) {
                    rows += UnsafeBufferPointer(start: y + row * ow, count: outWidth)
                }
                return rows
            }
            let byRows = try forward(extraColumn: false), byPlanes = try forward(extraColumn: true)
            XCTAssertTrue(byRows.contains { $0 != 0 })
            XCTAssertEqual(byRows.count, byPlanes.count)
            let differing = zip(byRows, byPlanes).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "C\(channels) \(height)x\(width) k\(kernel) p\(padding): outputs whose bits differ")
        }
    }

    /// Without an input gradient (a first layer) the parameter gradients are the same as with one.
    func testDirectWithoutInputGradient() throws {
        var random = SeededRandom(seed: 5)
        let conv = try Conv2d(inputShape: [2, 10, 9], outChannels: 3, kernelSize: 3, stride: 1, padding: 1,
                              random: &random)
        conv.lowering = .direct
        let x = (0..<(13 * 2 * 10 * 9)).map { _ in random.nextNormal() }
        let dy = (0..<(13 * 3 * 10 * 9)).map { _ in random.nextNormal() }
        _ = try conv.forward(x, batch: 13)
        XCTAssertNil(try conv.backward(dy, batch: 13, needInputGradient: false))
        let withoutDx = Array(UnsafeBufferPointer(start: conv.weight.gradient.pointer, count: conv.weight.count))
        conv.weight.gradient.fill(0)
        _ = try conv.forward(x, batch: 13)
        XCTAssertNotNil(try conv.backward(dy, batch: 13, needInputGradient: true))
        let withDx = Array(UnsafeBufferPointer(start: conv.weight.gradient.pointer, count: conv.weight.count))
        XCTAssertEqual(withoutDx.map(\.bitPattern), withDx.map(\.bitPattern))
        withExtendedLifetime(x) {}  // backward reads the input of forward
        XCTAssertTrue(withoutDx.contains { $0 != 0 })
    }

    /// The article's CNN layers choose the direct kernels.
    func testArticleConvolutionsChooseTheDirectKernels() throws {
        let net = try Sequential(sampleShape: [1, 28, 28], seed: 1)
        try net.addConv2d(outChannels: 3, kernelSize: 5)
        try net.addAvgPool2d(kernelSize: 2)
        try net.addConv2d(outChannels: 6, kernelSize: 3)
        for index in [0, 2] {
            let conv = try XCTUnwrap(try net.layer(index) as? Conv2d)
            XCTAssertTrue(conv.usesDirectKernels, "layer \(index)")
            conv.lowering = .im2col
            XCTAssertFalse(conv.usesDirectKernels, "layer \(index)")
        }
    }

    /// Layers with many weights per output position, or many weights, keep im2col + GEMM.
    func testLayersWithManyWeightsKeepIm2col() throws {
        var random = SeededRandom(seed: 2)
        let cases: [([Int], Int, Bool)] = [([128, 7, 7], 128, false), ([16, 6, 6], 16, true), ([256, 30, 30], 256, false),
                                           ([64, 14, 14], 64, true), ([8, 10, 10], 4, true)]
        for (shape, outChannels, direct) in cases {
            let conv = try Conv2d(inputShape: shape, outChannels: outChannels, kernelSize: 3, random: &random)
            XCTAssertEqual(conv.usesDirectKernels, direct, "\(shape) -> \(outChannels)")
            conv.lowering = .direct
            XCTAssertTrue(conv.usesDirectKernels, "\(shape) -> \(outChannels), forced")
        }
        // A stride far larger than the image: the phase planes would be too many; im2col even when forced.
        let sparse = try Conv2d(inputShape: [1, 4, 4], outChannels: 1, kernelSize: 1, stride: 1 << 20, random: &random)
        sparse.lowering = .direct
        XCTAssertFalse(sparse.usesDirectKernels)
        let x: [Float] = (0..<32).map(Float.init)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: try sparse.forward(x, batch: 2), count: 2)),
                       [x[0] * sparse.weight.value.pointer[0] + sparse.bias.value.pointer[0],
                        x[16] * sparse.weight.value.pointer[0] + sparse.bias.value.pointer[0]])
    }

    /// Trains a network whose convolutions are forced onto the direct kernels (strides, padding, an
    /// input gradient through the second one) with 1 and 2 threads: every bit agrees.
    func testDirectKernelsAreBitIdenticalForAnyThreadCount() throws {
        func train(threads: Int) throws -> [[UInt32]] {
            let original = ThreadPool.shared.threadCount
            try ThreadPool.shared.setThreadCount(threads)
            defer { try? ThreadPool.shared.setThreadCount(original) }
            let net = try Sequential(sampleShape: [2, 33, 31], seed: 8)
            try net.addConv2d(outChannels: 4, kernelSize: 3, stride: 2, padding: 1)
            try net.addReLU()
            try net.addConv2d(outChannels: 5, kernelSize: 3, padding: 1)
            try net.addBatchNorm()
            try net.addReLU()
            try net.addFlatten()
            try net.addLinear(10)
            for index in [0, 2] { try XCTUnwrap(try net.layer(index) as? Conv2d).lowering = .direct }
            var random = SeededRandom(seed: 21)
            let batch = 61  // 8 tasks of 8 samples, the last partial; enough work to use both threads
            let input = (0..<(batch * 2 * 33 * 31)).map { _ in random.nextNormal() }
            let labels = (0..<batch).map { Int32($0 % 10) }
            let optimizer = try SGD(parameters: net.parameters, learningRate: 0.05, momentum: 0.9)
            var state: [[UInt32]] = []
            for _ in 0..<3 {
                state.append([try net.trainStep(input: input, labels: labels, optimizer: optimizer).bitPattern])
            }
            for (name, entry) in net.stateDict {
                state.append(try net.tensor(name).map(\.bitPattern))
                if case .parameter = entry.storage { state.append(try net.gradient(name).map(\.bitPattern)) }
            }
            return state
        }
        let reference = try train(threads: 1)
        XCTAssertGreaterThan(reference.count, 10)
        for threads in [2, 3] { XCTAssertEqual(try train(threads: threads), reference, "\(threads) threads") }
    }
}

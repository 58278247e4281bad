import BNDropKernels

/// Shared geometry of the 2-D pooling layers (no padding, floor mode, as PyTorch's defaults).
struct PoolGeometry {
    let channels: Int, height: Int, width: Int, kernel: Int, stride: Int, outHeight: Int, outWidth: Int

    init(_ layer: String, shape: [Int], kernel: Int, stride: Int) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw BNDError.shape("\(layer) expects a sample shape [C, H, W], got \(shape)")
        }
        guard kernel > 0, stride > 0 else {
            throw BNDError.invalidArgument("\(layer) needs kernel_size and stride > 0, got \(kernel) and \(stride)")
        }
        guard kernel <= shape[1], kernel <= shape[2] else {
            throw BNDError.shape("\(layer) kernel \(kernel) is larger than the input \(shape)")
        }
        (channels, height, width) = (shape[0], shape[1], shape[2])
        self.kernel = kernel
        self.stride = stride
        outHeight = (height - kernel) / stride + 1
        outWidth = (width - kernel) / stride + 1
    }

    var outputShape: [Int] { [channels, outHeight, outWidth] }
}

/// What AvgPool2d and MaxPool2d share: kernel, stride, the geometry they give on a [C, H, W] input,
/// and running plane by plane on the thread pool (planes are independent: any split gives the same bits).
public class Pool2d: Layer {
    public let kernelSize: Int, stride: Int
    let geometry: PoolGeometry

    /// - Parameter stride: nil means `kernelSize` (PyTorch's default).
    init(_ typeName: String, inputShape: [Int], kernelSize: Int, stride: Int?) throws {
        geometry = try PoolGeometry(typeName, shape: inputShape, kernel: kernelSize, stride: stride ?? kernelSize)
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        try super.init(typeName, inputShape: inputShape, outputShape: geometry.outputShape)
    }

    /// Planes per task: enough for about 64K input values.
    private var planesPerTask: Int { max(1, 65_536 / (geometry.height * geometry.width)) }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        _ = try prepareForward(x, batch: batch)
        let planes = batch * geometry.channels
        forwardKernel.run(tasks(planes, planesPerTask), (x, planes, planesPerTask))
        return UnsafePointer(output.pointer)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        try gradInput.resize(batch * inputCount)
        let planes = batch * geometry.channels
        backwardKernel.run(tasks(planes, planesPerTask), (dy, x, planes, planesPerTask))
        return UnsafePointer(gradInput.pointer)
    }

    // By blocks of samples (see `Layer.forwardsBySample`): a sample's planes from that sample alone.
    override var forwardsBySample: Bool { true }
    override var samplesIndependentOfBlocks: Bool { true }
    override var forwardWorkPerSample: Int { inputCount }

    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        try output.resize(batch * outputCount)
        try prepareForward(batch: batch)
        return UnsafePointer(output.pointer)
    }

    override func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int) {
        forward(planes: (first * geometry.channels)..<((first + count) * geometry.channels), x)
    }

    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int, Int)> { [unowned(unsafe) self] arguments, task in
        let (x, planes, group) = arguments
        self.forward(planes: (task * group)..<min((task + 1) * group, planes), x)
    }

    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, UnsafePointer<Float>, Int, Int)> {
        [unowned(unsafe) self] arguments, task in
        let (dy, x, planes, group) = arguments
        self.backward(planes: (task * group)..<min((task + 1) * group, planes), dy, input: x)
    }

    // One call per task (not per plane) from the kernels: the closure's reference to the layer is
    // taken once. A subclass may take the planes of a task at once.
    func forward(planes: Range<Int>, _ x: UnsafePointer<Float>) {
        for plane in planes { forward(plane: plane, x) }
    }

    /// `input`: the forward's input (the ReLU's, when one was folded in).
    func backward(planes: Range<Int>, _ dy: UnsafePointer<Float>, input: UnsafePointer<Float>) {
        for plane in planes { backward(plane: plane, dy) }
    }

    /// Sizes what the subclass keeps per forward (nothing by default).
    func prepareForward(batch: Int) throws {}
    /// Writes output plane `plane` (of batch·C) from input `x`.
    func forward(plane: Int, _ x: UnsafePointer<Float>) {}
    /// Writes input-gradient plane `plane` from the output gradient `dy`.
    func backward(plane: Int, _ dy: UnsafePointer<Float>) {}
}

/// Average pooling, as torch.nn.AvgPool2d(kernel_size, stride) with padding 0: each window's sum / k².
public final class AvgPool2d: Pool2d {
    /// - Parameter stride: nil means `kernelSize` (PyTorch's default).
    public init(inputShape: [Int], kernelSize: Int, stride: Int? = nil) throws {
        try super.init("AvgPool2d", inputShape: inputShape, kernelSize: kernelSize, stride: stride)
    }

    /// 2×2 windows, stride 2 (the article's): the C kernels, vectorised (each window's sum in the order
    /// ((top-left + top-right) + bottom-left) + bottom-right); other windows: the loops below.
    var isHalving: Bool { geometry.kernel == 2 && geometry.stride == 2 }

    /// The article's ReLU → AvgPool2d(2) pairs: the C kernels apply the ReLU as they read.
    override var canFoldReLU: Bool { isHalving }

    override func forward(planes: Range<Int>, _ x: UnsafePointer<Float>) {
        guard isHalving else { return super.forward(planes: planes, x) }
        let g = geometry
        bndk_avgpool2_forward(x + planes.lowerBound * g.height * g.width,
                              output.pointer + planes.lowerBound * g.outHeight * g.outWidth,
                              Int64(planes.count), Int64(g.height), Int64(g.width), foldsReLU ? 1 : 0)
    }

    override func backward(planes: Range<Int>, _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>) {
        guard isHalving else { return super.backward(planes: planes, dy, input: x) }
        let g = geometry
        bndk_avgpool2_backward(dy + planes.lowerBound * g.outHeight * g.outWidth,
                               foldsReLU ? x + planes.lowerBound * g.height * g.width : nil,
                               gradInput.pointer + planes.lowerBound * g.height * g.width,
                               Int64(planes.count), Int64(g.height), Int64(g.width))
    }

    override func forward(plane p: Int, _ x: UnsafePointer<Float>) {
        let g = geometry
        let src = x + p * g.height * g.width, dst = output.pointer + p * g.outHeight * g.outWidth
        let divisor = Float(g.kernel * g.kernel)
        for oy in 0..<g.outHeight {
            let out = dst + oy * g.outWidth
            for ox in 0..<g.outWidth {
                var sum: Float = 0
                for ky in 0..<g.kernel {
                    let row = src + (oy * g.stride + ky) * g.width + ox * g.stride
                    for kx in 0..<g.kernel { sum += row[kx] }
                }
                out[ox] = sum / divisor
            }
        }
    }

    override func backward(plane p: Int, _ dy: UnsafePointer<Float>) {
        let g = geometry
        let src = dy + p * g.outHeight * g.outWidth, dst = gradInput.pointer + p * g.height * g.width
        dst.update(repeating: 0, count: g.height * g.width)
        let divisor = Float(g.kernel * g.kernel)
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let share = src[oy * g.outWidth + ox] / divisor
                for ky in 0..<g.kernel {
                    let row = dst + (oy * g.stride + ky) * g.width + ox * g.stride
                    for kx in 0..<g.kernel { row[kx] += share }
                }
            }
        }
    }
}

/// Max pooling, as torch.nn.MaxPool2d(kernel_size, stride) with padding 0. The gradient goes to the
/// first maximum of each window (a NaN counts as the maximum, as in PyTorch).
public final class MaxPool2d: Pool2d {
    /// For each output element, the offset of its maximum inside its input plane.
    private let argmax = Buffer<Int32>()

    /// - Parameter stride: nil means `kernelSize` (PyTorch's default).
    public init(inputShape: [Int], kernelSize: Int, stride: Int? = nil) throws {
        try super.init("MaxPool2d", inputShape: inputShape, kernelSize: kernelSize, stride: stride)
        guard geometry.height * geometry.width <= Int(Int32.max) else {
            throw BNDError.shape("MaxPool2d input plane \(inputShape) is too large")
        }
    }

    override func prepareForward(batch: Int) throws {
        try argmax.resize(batch * outputCount)
    }

    override func forward(plane p: Int, _ x: UnsafePointer<Float>) {
        let g = geometry
        let src = x + p * g.height * g.width
        let base = p * g.outHeight * g.outWidth
        let out = output.pointer + base, arg = argmax.pointer + base
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                var best = (oy * g.stride) * g.width + ox * g.stride
                var bestValue = src[best]
                for ky in 0..<g.kernel {
                    for kx in 0..<g.kernel {
                        let at = (oy * g.stride + ky) * g.width + ox * g.stride + kx
                        let v = src[at]
                        if v > bestValue || (v.isNaN && !bestValue.isNaN) { best = at; bestValue = v }
                    }
                }
                out[oy * g.outWidth + ox] = bestValue
                arg[oy * g.outWidth + ox] = Int32(best)
            }
        }
    }

    override func backward(plane p: Int, _ dy: UnsafePointer<Float>) {
        let g = geometry
        let outPlane = g.outHeight * g.outWidth, inPlane = g.height * g.width
        let dst = gradInput.pointer + p * inPlane, src = dy + p * outPlane, arg = argmax.pointer + p * outPlane
        dst.update(repeating: 0, count: inPlane)
        for i in 0..<outPlane { dst[Int(arg[i])] += src[i] }
    }
}

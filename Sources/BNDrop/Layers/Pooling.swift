import BNDropKernels

/// Shared geometry of the 2-D pooling layers: square windows of `kernel` cells (`dilation` apart in
/// MaxPool2d), `stride`, implicit padding on every side, floor or ceil mode, with PyTorch's rules:
/// padding at most kernel/2; out = ⌊(in + 2·pad − dilation·(kernel − 1) − 1 + (ceil ? stride − 1 : 0)) /
/// stride⌋ + 1, less one in ceil mode when that last window would start past the input and its left
/// padding; an output of at least one cell.
struct PoolGeometry {
    let channels: Int, height: Int, width: Int
    let kernel: Int, stride: Int, padding: Int, dilation: Int, ceilMode: Bool
    let outHeight: Int, outWidth: Int

    /// The largest kernel_size, stride, padding or dilation taken: 2^31 − 1, so that no sum or product
    /// of them with a size can overflow.
    static let maxArgument = Int(Int32.max)

    init(_ layer: String, shape: [Int], kernel: Int, stride: Int, padding: Int = 0, dilation: Int = 1,
         ceilMode: Bool = false) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw BNDError.shape("\(layer) expects a sample shape [C, H, W], got \(shape)")
        }
        guard kernel > 0, stride > 0, dilation > 0 else {
            throw BNDError.invalidArgument("\(layer) needs kernel_size, stride and dilation > 0, got \(kernel), "
                                           + "\(stride) and \(dilation)")
        }
        guard kernel <= Self.maxArgument, dilation <= Self.maxArgument else {  // (padding is then bounded too)
            throw BNDError.shape("\(layer) window (kernel_size \(kernel), dilation \(dilation)) is larger than any "
                                 + "input: both must be at most \(Self.maxArgument)")
        }
        guard stride <= Self.maxArgument else {
            throw BNDError.invalidArgument("\(layer) stride must be at most \(Self.maxArgument), got \(stride)")
        }
        guard padding >= 0, padding <= kernel / 2 else {
            throw BNDError.invalidArgument("\(layer) padding must be between 0 and half the kernel size "
                                           + "(\(kernel / 2) for kernel_size \(kernel)), got \(padding)")
        }
        (channels, height, width) = (shape[0], shape[1], shape[2])
        (self.kernel, self.stride, self.padding, self.dilation, self.ceilMode) = (kernel, stride, padding, dilation, ceilMode)
        let (h, w) = (Self.outputSize(height, kernel, stride, padding, dilation, ceilMode),
                      Self.outputSize(width, kernel, stride, padding, dilation, ceilMode))
        guard h >= 1, w >= 1 else {
            let span = dilation * (kernel - 1) + 1
            throw BNDError.shape("\(layer) window of \(span) cells (kernel_size \(kernel), dilation \(dilation)) does not "
                                 + "fit the input \(shape) padded by \(padding): the output would be \(h)×\(w)")
        }
        (outHeight, outWidth) = (h, w)
    }

    /// PyTorch's output size along one axis of `input` cells (may be < 1: then there is no output).
    /// Every argument is at most `maxArgument` and `input` at most `SizeLimits.maxElements`: no overflow.
    static func outputSize(_ input: Int, _ kernel: Int, _ stride: Int, _ padding: Int, _ dilation: Int,
                           _ ceilMode: Bool) -> Int {
        let room = input + 2 * padding - dilation * (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0)
        var size = (room >= 0 ? room / stride : -((-room + stride - 1) / stride)) + 1  // floor division
        if ceilMode && (size - 1) * stride >= input + padding { size -= 1 }
        return size
    }

    var outputShape: [Int] { [channels, outHeight, outWidth] }

    /// Output position `o`'s window along an axis of `size` cells (AvgPool2d: no dilation): the input
    /// cells [first, end) it covers, and its length clipped only to the padded input, which
    /// count_include_pad divides by (a ceil-mode window hanging past the padding does not count that part).
    func window(_ o: Int, size: Int) -> (first: Int, end: Int, paddedLength: Int) {
        let start = o * stride - padding
        let paddedEnd = min(start + kernel, size + padding)
        return (max(start, 0), min(paddedEnd, size), paddedEnd - start)
    }

    /// Output position `o`'s window along an axis of `size` cells with the dilation: its first cell inside
    /// the input and the end of its cells (the cells are first, first + dilation, ... < end).
    func dilatedWindow(_ o: Int, size: Int) -> (first: Int, end: Int) {
        let start = o * stride - padding
        let end = min(start + dilation * (kernel - 1) + 1, size)
        let first = start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation
        return (first, end)
    }

    /// Whether the windows are the plain ones: no padding, and no ceil-mode window hanging past the input.
    var windowsInside: Bool {
        padding == 0 && (outHeight - 1) * stride + dilation * (kernel - 1) < height
            && (outWidth - 1) * stride + dilation * (kernel - 1) < width
    }
}

/// What AvgPool2d and MaxPool2d share: kernel, stride, padding, ceil mode, the geometry they give on a
/// [C, H, W] input, and running plane by plane on the thread pool (planes are independent: any split
/// gives the same bits).
public class Pool2d: Layer {
    let geometry: PoolGeometry
    public var kernelSize: Int { geometry.kernel }
    /// The stride taken (`kernelSize` when nil was given).
    public var stride: Int { geometry.stride }
    public var padding: Int { geometry.padding }
    public var ceilMode: Bool { geometry.ceilMode }

    /// - Parameter stride: nil means `kernelSize` (PyTorch's default).
    init(_ typeName: String, inputShape: [Int], kernelSize: Int, stride: Int?, padding: Int, dilation: Int,
         ceilMode: Bool) throws {
        geometry = try PoolGeometry(typeName, shape: inputShape, kernel: kernelSize, stride: stride ?? kernelSize,
                                    padding: padding, dilation: dilation, ceilMode: ceilMode)
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

/// Average pooling, as torch.nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad,
/// divisor_override) with square windows: each window's sum, over its cells inside the input in row-major
/// order, divided by divisor_override when given, else by the window's size within the padded input
/// (count_include_pad) or by its cells inside the input (not count_include_pad). The padding adds nothing.
public final class AvgPool2d: Pool2d {
    public let countIncludePad: Bool
    /// The divisor of every window when not nil (never 0).
    public let divisorOverride: Int?

    /// - Parameters:
    ///   - stride: nil means `kernelSize` (PyTorch's default).
    ///   - padding: cells of implicit zeros on every side, at most kernelSize / 2.
    ///   - ceilMode: output sizes rounded up: a last window may hang past the input (it still starts
    ///     inside the input or its left padding).
    ///   - divisorOverride: nil, or a nonzero divisor for every window.
    public init(inputShape: [Int], kernelSize: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false,
                countIncludePad: Bool = true, divisorOverride: Int? = nil) throws {
        if let divisor = divisorOverride, divisor == 0 || divisor.magnitude > UInt(PoolGeometry.maxArgument) {
            throw BNDError.invalidArgument("AvgPool2d divisor_override must be nonzero and at most "
                                           + "\(PoolGeometry.maxArgument) in magnitude, got \(divisor)")
        }
        (self.countIncludePad, self.divisorOverride) = (countIncludePad, divisorOverride)
        try super.init("AvgPool2d", inputShape: inputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                       dilation: 1, ceilMode: ceilMode)
    }

    /// 2×2 windows, stride 2, all inside the input (the article's): the C kernels, vectorised (each
    /// window's sum in the order ((top-left + top-right) + bottom-left) + bottom-right, as the loops
    /// below); other windows: the loops below.
    var isHalving: Bool {
        geometry.kernel == 2 && geometry.stride == 2 && geometry.windowsInside && divisorOverride == nil
    }

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

    /// Output (oy, ox)'s window: its rows and columns inside the input, and what its sum is divided by.
    @inline(__always)
    private func window(_ oy: Int, _ ox: Int) -> (rows: Range<Int>, columns: Range<Int>, divisor: Float) {
        let g = geometry
        let (y0, y1, paddedRows) = g.window(oy, size: g.height)
        let (x0, x1, paddedColumns) = g.window(ox, size: g.width)
        let divisor = divisorOverride ?? (countIncludePad ? paddedRows * paddedColumns : (y1 - y0) * (x1 - x0))
        return (y0..<y1, x0..<x1, Float(divisor))
    }

    override func forward(plane p: Int, _ x: UnsafePointer<Float>) {
        let g = geometry
        let src = x + p * g.height * g.width, dst = output.pointer + p * g.outHeight * g.outWidth
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let (rows, columns, divisor) = window(oy, ox)
                var sum: Float = 0
                for y in rows {
                    for x in columns { sum += src[y * g.width + x] }
                }
                dst[oy * g.outWidth + ox] = sum / divisor
            }
        }
    }

    override func backward(plane p: Int, _ dy: UnsafePointer<Float>) {
        let g = geometry
        let src = dy + p * g.outHeight * g.outWidth, dst = gradInput.pointer + p * g.height * g.width
        dst.update(repeating: 0, count: g.height * g.width)
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let (rows, columns, divisor) = window(oy, ox)
                let share = src[oy * g.outWidth + ox] / divisor
                for y in rows {
                    for x in columns { dst[y * g.width + x] += share }
                }
            }
        }
    }
}

/// Max pooling, as torch.nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode) with square
/// windows: the padding never wins (it is −∞). The gradient goes to the first maximum of each window in
/// row-major order, or to its last NaN (a NaN counts as the maximum, as in PyTorch); overlapping windows
/// add theirs.
public final class MaxPool2d: Pool2d {
    public var dilation: Int { geometry.dilation }
    /// For each output element, the offset of its maximum inside its input plane.
    private let argmax = Buffer<Int32>()

    /// - Parameters:
    ///   - stride: nil means `kernelSize` (PyTorch's default).
    ///   - padding: cells of implicit −∞ on every side, at most kernelSize / 2.
    ///   - dilation: the distance between a window's cells (1: adjacent).
    ///   - ceilMode: output sizes rounded up (see `AvgPool2d`).
    public init(inputShape: [Int], kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1,
                ceilMode: Bool = false) throws {
        try super.init("MaxPool2d", inputShape: inputShape, kernelSize: kernelSize, stride: stride, padding: padding,
                       dilation: dilation, ceilMode: ceilMode)
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
            let (y0, y1) = g.dilatedWindow(oy, size: g.height)
            for ox in 0..<g.outWidth {
                let (x0, x1) = g.dilatedWindow(ox, size: g.width)
                // A window with no cell inside the input (a dilation wider than the input) gives −∞ and
                // takes no gradient, as in PyTorch.
                var best = y0 < y1 && x0 < x1 ? y0 * g.width + x0 : -1
                var bestValue = -Float.infinity
                for y in Swift.stride(from: y0, to: y1, by: g.dilation) {
                    for x in Swift.stride(from: x0, to: x1, by: g.dilation) {
                        let at = y * g.width + x
                        let v = src[at]
                        if v > bestValue || v.isNaN { best = at; bestValue = v }
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
        for i in 0..<outPlane where arg[i] >= 0 { dst[Int(arg[i])] += src[i] }
    }
}

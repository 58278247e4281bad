/// 2-D convolution, as torch.nn.Conv2d (square kernel, stride, zero padding; no dilation or groups).
///
/// Lowered to GEMM through im2col: each sample's patches form a (C·k·k)×(OH·OW) matrix, and
/// y = W·cols + b with W viewed as out_c×(C·k·k). The patch matrices are kept for backward.
/// Default init: W and b ~ U(-1/√fan_in, 1/√fan_in), fan_in = in_c·k·k (as PyTorch).
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter

    private let height: Int, width: Int, outHeight: Int, outWidth: Int
    /// Rows of the patch matrix: C·k·k.
    private let patchSize: Int
    private let columns = FloatBuffer()
    private let gradColumns = FloatBuffer()

    /// - Parameter inputShape: one sample's shape [C, H, W].
    public init(inputShape shape: [Int], outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                random: inout SeededRandom) throws {
        guard shape.count == 3 else {
            throw BNDError.shape("Conv2d expects a sample shape [C, H, W], got \(shape)")
        }
        guard shape.allSatisfy({ $0 > 0 }) else { throw BNDError.shape("Conv2d input shape \(shape) has an empty dimension") }
        guard outChannels > 0 else { throw BNDError.invalidArgument("Conv2d out_channels must be positive, got \(outChannels)") }
        guard kernelSize > 0 else { throw BNDError.invalidArgument("Conv2d kernel_size must be positive, got \(kernelSize)") }
        guard stride > 0 else { throw BNDError.invalidArgument("Conv2d stride must be positive, got \(stride)") }
        guard padding >= 0 else { throw BNDError.invalidArgument("Conv2d padding must be non-negative, got \(padding)") }
        (inChannels, height, width) = (shape[0], shape[1], shape[2])
        guard padding <= 1 << 20, kernelSize <= 1 << 20 else {
            throw BNDError.invalidArgument("Conv2d kernel_size \(kernelSize) or padding \(padding) is unreasonably large")
        }
        let (ph, o1) = height.addingReportingOverflow(2 * padding)
        let (pw, o2) = width.addingReportingOverflow(2 * padding)
        guard !o1, !o2, ph >= kernelSize, pw >= kernelSize else {
            throw BNDError.shape("Conv2d kernel \(kernelSize) is larger than the padded input \(shape) (padding \(padding))")
        }
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        outHeight = (ph - kernelSize) / stride + 1
        outWidth = (pw - kernelSize) / stride + 1
        patchSize = try Checked.product([inChannels, kernelSize, kernelSize], "Conv2d kernel")
        _ = try Checked.blasInt(outChannels, patchSize, "Conv2d weight")
        _ = try Checked.blasInt(patchSize, outHeight * outWidth, "Conv2d patch matrix")
        weight = try Parameter(shape: [outChannels, inChannels, kernelSize, kernelSize])
        bias = try Parameter(shape: [outChannels])
        try super.init("Conv2d", inputShape: shape, outputShape: [outChannels, outHeight, outWidth])
        reset(random: &random)
    }

    public override var state: [StateEntry] { [.parameter("weight", weight), .parameter("bias", bias)] }

    public override func reset(random: inout SeededRandom) {
        let bound = 1 / Float(patchSize).squareRoot()
        fillUniform(weight.value, bound: bound, random: &random)
        fillUniform(bias.value, bound: bound, random: &random)
    }

    private var planeSize: Int { outHeight * outWidth }

    /// Writes sample `x`'s patches into `cols` ((C·k·k) × (OH·OW), zero outside the image).
    private func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>) {
        let k = kernelSize, plane = planeSize
        for c in 0..<inChannels {
            let image = x + c * height * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = cols + ((c * k + ky) * k + kx) * plane
                    for oy in 0..<outHeight {
                        let iy = oy * stride - padding + ky
                        let dst = row + oy * outWidth
                        guard iy >= 0 && iy < height else {
                            dst.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let src = image + iy * width
                        for ox in 0..<outWidth {
                            let ix = ox * stride - padding + kx
                            dst[ox] = (ix >= 0 && ix < width) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Adds the patch gradients in `cols` back onto sample gradient `dx` (the adjoint of im2col).
    private func col2im(_ cols: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        let k = kernelSize, plane = planeSize
        dx.update(repeating: 0, count: inChannels * height * width)
        for c in 0..<inChannels {
            let image = dx + c * height * width
            for ky in 0..<k {
                for kx in 0..<k {
                    let row = cols + ((c * k + ky) * k + kx) * plane
                    for oy in 0..<outHeight {
                        let iy = oy * stride - padding + ky
                        guard iy >= 0 && iy < height else { continue }
                        let dst = image + iy * width, src = row + oy * outWidth
                        for ox in 0..<outWidth {
                            let ix = ox * stride - padding + kx
                            if ix >= 0 && ix < width { dst[ix] += src[ox] }
                        }
                    }
                }
            }
        }
    }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let plane = planeSize
        let inCount = inputCount, outCount = outputCount
        try output.resize(batch * outCount)
        try columns.resize(Checked.multiply(Checked.multiply(batch, patchSize, "Conv2d patch matrices"), plane,
                                            "Conv2d patch matrices"))
        let y = output.pointer
        for n in 0..<batch {
            let cols = columns.pointer + n * patchSize * plane
            im2col(x + n * inCount, cols)
            let yn = y + n * outCount
            for o in 0..<outChannels { (yn + o * plane).update(repeating: bias.value.pointer[o], count: plane) }
            BLAS.sgemm(m: outChannels, n: plane, k: patchSize, a: weight.value.pointer, lda: patchSize, b: cols,
                       ldb: plane, beta: 1, c: yn, ldc: plane)
        }
        return UnsafePointer(y)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        let plane = planeSize, inCount = inputCount, outCount = outputCount
        if needInputGradient {
            try gradInput.resize(batch * inCount)
            try gradColumns.resize(patchSize * plane)
        }
        let db = bias.gradient.pointer
        for n in 0..<batch {
            let dyn = dy + n * outCount
            let cols = columns.pointer + n * patchSize * plane
            // dW += dy_n · cols_nᵀ ; db += Σ dy_n
            BLAS.sgemm(transB: true, m: outChannels, n: patchSize, k: plane, a: dyn, lda: plane, b: cols, ldb: plane,
                       beta: 1, c: weight.gradient.pointer, ldc: patchSize)
            for o in 0..<outChannels {
                let row = dyn + o * plane
                var sum: Float = 0
                for i in 0..<plane { sum += row[i] }
                db[o] += sum
            }
            guard needInputGradient else { continue }
            // dcols = Wᵀ · dy_n, then scatter back to the image.
            BLAS.sgemm(transA: true, m: patchSize, n: plane, k: outChannels, a: weight.value.pointer, lda: patchSize,
                       b: dyn, ldb: plane, beta: 0, c: gradColumns.pointer, ldc: plane)
            col2im(gradColumns.pointer, gradInput.pointer + n * inCount)
        }
        return needInputGradient ? UnsafePointer(gradInput.pointer) : nil
    }
}

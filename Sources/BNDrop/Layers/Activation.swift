import BNDropKernels

/// y = max(x, 0), as torch.nn.ReLU. The gradient is 0 where x <= 0 (x == 0 included). NaN passes
/// through, forward and backward, as in PyTorch, so a NaN input ends in a non-finite loss.
public final class ReLU: Layer {
    /// Elements per task (element-wise work: any split gives the same bits).
    static let elementsPerTask = 65_536

    public init(inputShape: [Int]) throws {
        try super.init("ReLU", inputShape: inputShape, outputShape: inputShape)
    }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let count = batch * inputCount
        try output.resize(count)
        kernel.run(tasks(count, ReLU.elementsPerTask), (x, count, false))
        return UnsafePointer(output.pointer)
    }

    override var forwardsBySample: Bool { true }
    override var samplesIndependentOfBlocks: Bool { true }

    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        try output.resize(batch * inputCount)
        return UnsafePointer(output.pointer)
    }

    override func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int) {
        let offset = first * inputCount
        bndk_relu_select(x + offset, x + offset, output.pointer + offset, Int64(count * inputCount))
    }

    /// The network skips a ReLU that the next layer takes in (`Layer.forward(_:batch:foldingReLU:)`) and
    /// makes its output only when asked: `reserveOutput` at each forward makes room for it (no memory is
    /// touched), so that `materializedOutput`, which writes it for the input `x` of that forward, cannot
    /// fail for lack of memory.
    func reserveOutput(batch: Int) throws {
        try output.resize(Checked.multiply(batch, inputCount, "ReLU output"))
    }

    func materializedOutput(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        try computeForward(x, batch: batch)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let count = batch * inputCount
        try gradInput.resize(count)
        kernel.run(tasks(count, ReLU.elementsPerTask), (dy, count, true))
        return UnsafePointer(gradInput.pointer)
    }

    /// One chunk of elements. Forward: y = x where x > 0, else 0. Backward: dx = dy where y > 0, else 0
    /// (y <= 0 exactly where x <= 0, so the saved output is the mask).
    private lazy var kernel = ParallelKernel<(UnsafePointer<Float>, Int, Bool)> { [unowned(unsafe) self] arguments, task in
        let (source, total, backward) = arguments
        let mask = backward ? UnsafePointer(self.output.pointer) : source
        let destination = backward ? self.gradInput.pointer : self.output.pointer
        let first = task * ReLU.elementsPerTask
        let count = min(ReLU.elementsPerTask, total - first)
        bndk_relu_select(mask + first, source + first, destination + first, Int64(count))
    }
}

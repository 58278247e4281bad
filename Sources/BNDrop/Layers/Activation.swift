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
        forwardKernel.run(tasks(count, ReLU.elementsPerTask), (x, count))
        return UnsafePointer(output.pointer)
    }

    private lazy var forwardKernel = ParallelKernel<(UnsafePointer<Float>, Int)> { [unowned self] arguments, task in
        let (x, count) = arguments
        let y = self.output.pointer
        var i = task * ReLU.elementsPerTask
        let end = min(i + ReLU.elementsPerTask, count)
        while i + 8 <= end {
            let v = load8(x + i)
            store8(v.replacing(with: 0, where: v .<= 0), y + i)
            i += 8
        }
        while i < end { y[i] = x[i] <= 0 ? 0 : x[i]; i += 1 }
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let count = batch * inputCount
        try gradInput.resize(count)
        backwardKernel.run(tasks(count, ReLU.elementsPerTask), (dy, count))
        return UnsafePointer(gradInput.pointer)
    }

    /// y <= 0 exactly where x <= 0, so the saved output is the mask.
    private lazy var backwardKernel = ParallelKernel<(UnsafePointer<Float>, Int)> { [unowned self] arguments, task in
        let (dy, count) = arguments
        let y = self.output.pointer, dx = self.gradInput.pointer
        var i = task * ReLU.elementsPerTask
        let end = min(i + ReLU.elementsPerTask, count)
        while i + 8 <= end {
            store8(load8(dy + i).replacing(with: 0, where: load8(y + i) .<= 0), dx + i)
            i += 8
        }
        while i < end { dx[i] = y[i] <= 0 ? 0 : dy[i]; i += 1 }
    }
}

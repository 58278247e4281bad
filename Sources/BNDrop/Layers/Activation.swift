/// y = max(x, 0), as torch.nn.ReLU. The gradient is 0 where x <= 0 (x == 0 included). NaN passes
/// through, forward and backward, as in PyTorch, so a NaN input ends in a non-finite loss.
public final class ReLU: Layer {
    public init(inputShape: [Int]) throws {
        try super.init("ReLU", inputShape: inputShape, outputShape: inputShape)
    }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let count = batch * inputCount
        try output.resize(count)
        let y = output.pointer
        for i in 0..<count { y[i] = x[i] <= 0 ? 0 : x[i] }
        return UnsafePointer(y)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let count = batch * inputCount
        try gradInput.resize(count)
        // y <= 0 exactly where x <= 0, so the saved output is the mask.
        let y = output.pointer, dx = gradInput.pointer
        for i in 0..<count { dx[i] = y[i] <= 0 ? 0 : dy[i] }
        return UnsafePointer(dx)
    }
}

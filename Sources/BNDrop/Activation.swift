/// y = max(x, 0), as torch.nn.ReLU. The gradient is 0 where x <= 0 (x == 0 included). NaN passes
/// through, forward and backward, as in PyTorch, so a NaN input ends in a non-finite loss.
public final class ReLU: Layer {
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public var isTraining = true
    public var typeName: String { "ReLU" }
    public var state: [StateEntry] { [] }

    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()
    private var record = ForwardRecord()

    public init(shape: [Int]) throws {
        _ = try Checked.product(shape, "ReLU shape")
        inputShape = shape
    }

    public func reset(random: inout SeededRandom) {}

    public func forward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let count = try Checked.multiply(batch, inputCount, "ReLU input")
        try output.resize(count)
        let y = output.pointer
        for i in 0..<count { y[i] = x[i] <= 0 ? 0 : x[i] }
        record = ForwardRecord(batch: batch, wasTraining: isTraining)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) throws
        -> UnsafePointer<Float>? {
        try record.requireBackward(batch, typeName)
        guard needInputGradient else { return nil }
        let count = batch * inputCount
        try gradInput.resize(count)
        // y <= 0 exactly where x <= 0, so the saved output is the mask.
        let y = output.pointer, dx = gradInput.pointer
        for i in 0..<count { dx[i] = y[i] <= 0 ? 0 : dy[i] }
        return UnsafePointer(dx)
    }
}

/// Flattens each sample to one dimension, as torch.nn.Flatten (start_dim=1). Costs no copy.
public final class Flatten: Layer {
    public let inputShape: [Int]
    public let outputShape: [Int]
    public var isTraining = true
    public var typeName: String { "Flatten" }
    public var state: [StateEntry] { [] }
    private var record = ForwardRecord()

    public init(shape: [Int]) throws {
        inputShape = shape
        outputShape = [try Checked.product(shape, "Flatten shape")]
    }

    public func reset(random: inout SeededRandom) {}

    public func forward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        _ = try Checked.multiply(batch, inputCount, "Flatten input")
        record = ForwardRecord(batch: batch, wasTraining: isTraining)
        return x
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) throws
        -> UnsafePointer<Float>? {
        try record.requireBackward(batch, typeName)
        return needInputGradient ? dy : nil
    }
}

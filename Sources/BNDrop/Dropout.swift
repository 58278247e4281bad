/// Inverted dropout, as torch.nn.Dropout.
///
/// Train mode: each element is kept with probability 1−p and the kept ones are scaled by 1/(1−p);
/// backward applies the same mask and scale. p == 0 is the identity, p == 1 gives zeros (no division).
/// Eval mode: the identity. Masks come from the layer's own `SeededRandom`, so a given seed gives the
/// same masks on every run.
public final class Dropout: Layer {
    public let p: Float
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public var isTraining = true
    public var typeName: String { "Dropout" }
    public var state: [StateEntry] { [] }

    /// The random source of the masks; `reset` reseeds it.
    public var random: SeededRandom
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()
    /// Per element: 0 or 1/(1−p) for the last train-mode forward.
    private let mask = FloatBuffer()
    private var record = ForwardRecord()

    public init(p: Float, shape: [Int], random: inout SeededRandom) throws {
        guard p.isFinite, p >= 0, p <= 1 else {
            throw BNDError.invalidArgument("dropout probability has to be between 0 and 1, but got \(p)")
        }
        _ = try Checked.product(shape, "Dropout shape")
        self.p = p
        inputShape = shape
        self.random = SeededRandom(seed: random.next())
    }

    public func reset(random: inout SeededRandom) {
        self.random = SeededRandom(seed: random.next())
    }

    /// The mask of the last train-mode forward pass (0 or 1/(1−p) per element).
    public var lastMask: [Float] { mask.array }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        let count = try Checked.multiply(batch, inputCount, "Dropout input")
        record = ForwardRecord(batch: batch, wasTraining: isTraining)
        guard isTraining else { return x }
        try mask.resize(count)
        try output.resize(count)
        let m = mask.pointer, y = output.pointer
        if p == 1 {
            mask.fill(0)
        } else if p == 0 {
            mask.fill(1)
        } else {
            let scale = 1 / (1 - p)
            for i in 0..<count { m[i] = random.nextUnitFloat() < p ? 0 : scale }
        }
        for i in 0..<count { y[i] = x[i] * m[i] }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) throws
        -> UnsafePointer<Float>? {
        try record.requireBackward(batch, typeName)
        guard needInputGradient else { return nil }
        guard record.wasTraining else { return dy }
        let count = batch * inputCount
        try gradInput.resize(count)
        let m = mask.pointer, dx = gradInput.pointer
        for i in 0..<count { dx[i] = dy[i] * m[i] }
        return UnsafePointer(dx)
    }
}

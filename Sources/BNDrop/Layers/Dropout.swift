import BNDropKernels

/// Inverted dropout, as torch.nn.Dropout.
///
/// Train mode: each element is kept with probability 1−p and the kept ones are scaled by 1/(1−p);
/// backward applies the same mask and scale. p == 0 is the identity, p == 1 gives zeros (no division).
/// Eval mode: the identity. Masks come from the layer's own `SeededRandom`, so a given seed gives the
/// same masks on every run: each train-mode forward takes one value from it, the key of that pass, and
/// element i is dropped when the top 24 bits of SplitMix64(key)'s (i+1)-th value, over 2^24, are below p
/// (a counter-based draw: the kernel vectorises, and the generator's four words still say all the
/// masks to come, which is what a checkpoint saves).
public final class Dropout: Layer {
    public let p: Float
    /// The random source of the masks; `reset` reseeds it.
    public var random: SeededRandom
    /// Per element: 0 or 1/(1−p) for the last train-mode forward.
    private let mask = FloatBuffer()
    /// Whether the last forward applied the mask (train mode) or passed the input through (eval mode).
    private var maskApplied = false

    public init(inputShape: [Int], p: Float, random: inout SeededRandom) throws {
        guard p.isFinite, p >= 0, p <= 1 else {
            throw BNDError.invalidArgument("dropout probability has to be between 0 and 1, but got \(p)")
        }
        self.p = p
        self.random = SeededRandom(seed: random.next())
        try super.init("Dropout", inputShape: inputShape, outputShape: inputShape)
    }

    public override func reset(random: inout SeededRandom) {
        self.random = SeededRandom(seed: random.next())
    }

    /// The mask of the last train-mode forward pass (0 or 1/(1−p) per element).
    public var lastMask: [Float] { mask.array }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        maskApplied = isTraining
        guard isTraining else { return x }
        let count = batch * inputCount
        try mask.resize(count)
        try output.resize(count)
        let m = mask.pointer, y = output.pointer
        if p == 1 || p == 0 {
            mask.fill(p == 1 ? 0 : 1)
            for i in 0..<count { y[i] = x[i] * m[i] }
        } else {
            // One draw of the layer's generator keys the whole pass; each element's uniform comes from
            // that key and its index (bndrop_kernels.h), a vectorised loop.
            let (p, scale) = (self.p, 1 / (1 - self.p))
            bndk_dropout_forward(random.next(), 0, p, scale, x, m, y, Int64(count))
        }
        return UnsafePointer(y)
    }

    /// Eval mode passes the input through.
    override var forwardsBySample: Bool { !isTraining }
    override var samplesIndependentOfBlocks: Bool { true }
    override var forwardWorkPerSample: Int { 0 }

    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        maskApplied = false
        return x
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        guard maskApplied else { return dy }
        let count = batch * inputCount
        try gradInput.resize(count)
        let m = mask.pointer, dx = gradInput.pointer
        for i in 0..<count { dx[i] = dy[i] * m[i] }
        return UnsafePointer(dx)
    }
}

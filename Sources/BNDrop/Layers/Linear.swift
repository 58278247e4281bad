/// y = x·Wᵀ + b, as torch.nn.Linear. Weight (out, in), bias (out).
/// Default init: W and b ~ U(-1/√in, 1/√in) (kaiming_uniform with a=√5, as PyTorch).
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter

    /// - Parameter inputShape: one sample's shape, [in_features].
    public init(inputShape: [Int], outFeatures: Int, random: inout SeededRandom) throws {
        guard inputShape.count == 1 else {
            throw BNDError.shape("Linear needs a flat input, got \(inputShape): add a Flatten first")
        }
        let inFeatures = inputShape[0]
        guard inFeatures > 0, outFeatures > 0 else {
            throw BNDError.invalidArgument("Linear needs positive sizes, got in=\(inFeatures) out=\(outFeatures)")
        }
        _ = try Checked.blasInt(outFeatures, inFeatures, "Linear weight")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try Parameter(shape: [outFeatures, inFeatures])
        bias = try Parameter(shape: [outFeatures])
        try super.init("Linear", inputShape: inputShape, outputShape: [outFeatures])
        reset(random: &random)
    }

    public override var state: [StateEntry] { [.parameter("weight", weight), .parameter("bias", bias)] }

    public override func reset(random: inout SeededRandom) {
        let bound = 1 / Float(inFeatures).squareRoot()
        fillUniform(weight.value, bound: bound, random: &random)
        fillUniform(bias.value, bound: bound, random: &random)
    }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        _ = try Checked.blasInt(batch, max(inFeatures, outFeatures), "Linear batch")
        try output.resize(batch * outFeatures)
        let y = output.pointer
        // Start from the bias in every row, then y += x·Wᵀ.
        for n in 0..<batch { (y + n * outFeatures).update(from: bias.value.pointer, count: outFeatures) }
        BLAS.sgemm(transB: true, m: batch, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                   b: weight.value.pointer, ldb: inFeatures, beta: 1, c: y, ldc: outFeatures)
        return UnsafePointer(y)
    }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        // dW += dyᵀ·x ; db += Σ_n dy
        BLAS.sgemm(transA: true, m: outFeatures, n: inFeatures, k: batch, a: dy, lda: outFeatures, b: x,
                   ldb: inFeatures, beta: 1, c: weight.gradient.pointer, ldc: inFeatures)
        let db = bias.gradient.pointer
        for n in 0..<batch {
            let row = dy + n * outFeatures
            for o in 0..<outFeatures { db[o] += row[o] }
        }
        guard needInputGradient else { return nil }
        // dx = dy·W
        try gradInput.resize(batch * inFeatures)
        BLAS.sgemm(m: batch, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures, b: weight.value.pointer,
                   ldb: inFeatures, beta: 0, c: gradInput.pointer, ldc: inFeatures)
        return UnsafePointer(gradInput.pointer)
    }
}

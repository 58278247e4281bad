/// Flattens each sample to one dimension, as torch.nn.Flatten (start_dim=1). Costs no copy: the
/// output is the input, seen with another shape.
public final class Flatten: Layer {
    public init(inputShape: [Int]) throws {
        try super.init("Flatten", inputShape: inputShape,
                       outputShape: [Checked.product(inputShape, "Flatten input shape")])
    }

    override func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> { x }

    override var forwardsBySample: Bool { true }
    override var samplesIndependentOfBlocks: Bool { true }
    override var forwardWorkPerSample: Int { 0 }
    override func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> { x }

    override func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                                  needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        needInputGradient ? dy : nil
    }
}

/// A trainable tensor: its values, the gradient accumulated by `backward`, and its shape.
public final class Parameter {
    public let shape: [Int]
    public let value: FloatBuffer
    public let gradient: FloatBuffer

    public init(shape: [Int]) throws {
        self.shape = shape
        let count = try Checked.product(shape, "parameter shape")
        value = try FloatBuffer(count: count)
        gradient = try FloatBuffer(count: count)
    }

    public var count: Int { value.count }

    /// Counts the changes made to `value` in place (an optimizer step, a tensor set or loaded, a re-seed),
    /// as PyTorch's tensor version counter does: a backward refuses to run when the parameters its forward
    /// used have changed since (their gradients would mix the old values and the new).
    public private(set) var version: UInt64 = 0

    /// Records that `value` changed.
    public func markChanged() { version &+= 1 }
}

/// An integer buffer such as BatchNorm's `num_batches_tracked`.
public final class Counter {
    public var value: Int64 = 0
}

/// One named entry of a layer's state, as PyTorch's state_dict lists it.
public struct StateEntry {
    public enum Storage {
        case parameter(Parameter)
        case buffer(FloatBuffer)
        case counter(Counter)
    }

    /// The name inside the layer: "weight", "bias", "running_mean", "running_var", "num_batches_tracked".
    public let name: String
    /// The tensor's shape ([] for a counter).
    public let shape: [Int]
    public let storage: Storage

    public var count: Int {
        switch storage {
        case .parameter(let p): return p.count
        case .buffer(let b): return b.count
        case .counter: return 1
        }
    }

    static func parameter(_ name: String, _ p: Parameter) -> StateEntry {
        StateEntry(name: name, shape: p.shape, storage: .parameter(p))
    }
}

/// A layer of a `Sequential` network: what every layer shares, said once.
///
/// Layers compute on whole batches in row-major layout (N×C, N×C×L, N×C×H×W). `inputShape` and
/// `outputShape` describe one sample. `forward` and `backward` are fixed here: they check the batch,
/// remember what backward needs, and call the layer's own `computeForward` / `computeBackward`, which
/// hold its kernels. A layer's `output` and `gradInput` buffers are sized for the largest batch seen and
/// reused, so steps at a fixed batch size allocate nothing. The pointer `forward` returns stays valid
/// until the layer's next `forward`; the `input` pointer passed to `forward` must stay valid until
/// `backward` (the network guarantees both).
public class Layer {
    /// PyTorch's class name: "Linear", "BatchNorm1d", ...
    public let typeName: String
    public let inputShape: [Int]
    public let outputShape: [Int]
    /// Train (true) or eval (false) mode. Only BatchNorm and Dropout behave differently.
    public var isTraining = true

    /// Elements of one input sample and of one output sample.
    let inputCount: Int
    let outputCount: Int
    /// The layer's own output and input-gradient storage (unused by layers that pass data through).
    let output = FloatBuffer()
    let gradInput = GradientDestination()
    /// The batch and input of the last successful forward; nil before one, or after a failed one.
    private var lastForward: (batch: Int, input: UnsafePointer<Float>)?
    /// Set by a training step around its own backward pass (`Sequential.step`): nothing can have changed
    /// the parameters since this layer's forward, so what the forward found out about them still holds.
    var parametersUnchangedSinceForward = false

    init(_ typeName: String, inputShape: [Int], outputShape: [Int]) throws {
        self.typeName = typeName
        self.inputShape = inputShape
        self.outputShape = outputShape
        inputCount = try Checked.product(inputShape, "\(typeName) input shape")
        outputCount = try Checked.product(outputShape, "\(typeName) output shape")
    }

    /// Parameters and buffers in state_dict order (none by default).
    public var state: [StateEntry] { [] }

    public var parameters: [Parameter] {
        state.compactMap { if case .parameter(let p) = $0.storage { return p } else { return nil } }
    }

    /// Sets the parameters and buffers to their initial values, drawing from `random` (nothing to do by
    /// default).
    public func reset(random: inout SeededRandom) {}

    /// Computes the output for `batch` samples at `input`.
    public final func forward(_ input: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        try forward(input, batch: batch, foldingReLU: false)
    }

    /// Whether this layer can take in the ReLU right before it (`forward(_:batch:foldingReLU:)`).
    var canFoldReLU: Bool { false }
    /// Whether the last forward took in the ReLU before it: its input was that ReLU's input.
    private(set) var foldsReLU = false

    /// `forward`; with `foldingReLU` (only where `canFoldReLU`), `input` is the input of a ReLU that the
    /// network skips, and the kernels apply it as they read, forward and backward: the ReLU's output and
    /// input gradient are never written, a pass over memory less each way, with the same bits.
    final func forward(_ input: UnsafePointer<Float>, batch: Int, foldingReLU: Bool) throws -> UnsafePointer<Float> {
        try startForward(batch: batch, foldingReLU: foldingReLU)
        let y = try computeForward(input, batch: batch)
        lastForward = (batch, input)
        return y
    }

    /// What every forward does first, whole or by blocks: forgets the last one, checks `batch` and
    /// whether a ReLU can be taken in, and records whether one is.
    private func startForward(batch: Int, foldingReLU: Bool) throws {
        lastForward = nil
        guard !foldingReLU || canFoldReLU else {
            throw BNDError.internalError("\(typeName) cannot take in a ReLU")
        }
        try Checked.batch(batch)
        _ = try Checked.multiply(batch, max(inputCount, outputCount), "\(typeName) batch of \(batch)")
        foldsReLU = foldingReLU
    }

    /// Accumulates parameter gradients for the last forward pass and returns the input gradient
    /// (nil when `needInputGradient` is false and the layer could skip it).
    /// With `destination` (room for batch·inputCount floats, overlapping neither `gradOutput` nor the
    /// forward's input), a layer that computes its input gradient writes it there instead of into its own
    /// buffer; one that passes the gradient through (Flatten, an unapplied Dropout) still returns
    /// `gradOutput`, so the caller compares the pointer returned with `destination`.
    public final func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool,
                               into destination: UnsafeMutablePointer<Float>? = nil) throws -> UnsafePointer<Float>? {
        try withLastForward(batch: batch, needInputGradient: needInputGradient, into: destination) { input in
            try computeBackward(gradOutput, input: input, batch: batch, needInputGradient: needInputGradient)
        }
    }

    /// What every backward does around its kernel: checks that a forward of `batch` samples ran, lends
    /// `destination` to the input gradient for the call, and runs `kernel` on that forward's input.
    private func withLastForward(batch: Int, needInputGradient: Bool, into destination: UnsafeMutablePointer<Float>?,
                                 _ kernel: (UnsafePointer<Float>) throws -> UnsafePointer<Float>?) throws
        -> UnsafePointer<Float>? {
        guard let last = lastForward else {
            throw BNDError.state("\(typeName): backward called before forward")
        }
        guard last.batch == batch else {
            throw BNDError.shape("\(typeName): backward batch \(batch) differs from the forward batch \(last.batch)")
        }
        gradInput.borrowed = needInputGradient ? destination : nil
        defer { gradInput.borrowed = nil }
        return try kernel(last.input)
    }

    // MARK: Backward through the pooling after

    /// Whether `backward(through:_:batch:needInputGradient:into:)` takes the output gradient of `pool`, the
    /// layer right after this one (or after a ReLU folded into it), instead of this layer's own output
    /// gradient: the network then skips the pooling's backward (no by default).
    func takesGradient(through pool: AvgPool2d) -> Bool { false }

    /// `backward` given `poolGradient`, the output gradient of `pool` (see `takesGradient(through:)`):
    /// the layer makes its own output gradient from it, the pooling's backward (and its folded ReLU's),
    /// as its kernels read it, and otherwise does what `backward` does, with the same bits.
    final func backward(through pool: AvgPool2d, _ poolGradient: UnsafePointer<Float>, batch: Int,
                        needInputGradient: Bool, into destination: UnsafeMutablePointer<Float>?) throws
        -> UnsafePointer<Float>? {
        try withLastForward(batch: batch, needInputGradient: needInputGradient, into: destination) { input in
            guard takesGradient(through: pool) else {
                throw BNDError.internalError("\(typeName) cannot take the gradient of the pooling after it")
            }
            return try computeBackward(through: pool, poolGradient, input: input, batch: batch,
                                       needInputGradient: needInputGradient)
        }
    }

    /// The layer's backward kernel through `pool` (only where `takesGradient(through:)`).
    func computeBackward(through pool: AvgPool2d, _ poolGradient: UnsafePointer<Float>, input x: UnsafePointer<Float>,
                         batch: Int, needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        throw BNDError.internalError("\(typeName) has no backward through a pooling")
    }

    // MARK: Forward by blocks of samples

    /// Whether this layer's forward, in its current mode, computes each sample from that sample alone,
    /// in block form (`prepareForward`, then `computeSamples` for each block). The network runs a stretch
    /// of such layers block by block (`Sequential.forwardBySample`): one parallel region for all of them,
    /// each task taking its block of samples through every layer while the values are in cache, instead
    /// of a region per layer with the whole batch going through memory between them.
    var forwardsBySample: Bool { false }

    /// Multiply-adds (or element operations) of one sample's forward: the network's estimate of whether a
    /// stretch is worth waking the workers.
    var forwardWorkPerSample: Int { max(inputCount, outputCount) }

    /// The forward up to its computation: the checks, room for the output, what every block shares.
    /// Returns where the output will be (`x` itself for a layer that passes its input through).
    func prepareForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        throw BNDError.internalError("\(typeName) has no forward by blocks of samples")
    }

    /// Samples [first, first + count) of the output `prepareForward` prepared for `x` and `batch`. Runs on
    /// the calling thread, cannot fail and allocates nothing; the result does not depend on the blocks.
    func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int) {}

    /// `computeSamples` on pool thread `thread` (0 for the caller), for a layer that keeps per-thread
    /// scratch (Conv2d); by default the same as without it.
    func computeSamples(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int, thread: Int) {
        computeSamples(x, batch: batch, first: first, count: count)
    }

    /// Whether `computeSamples` gives each sample the same bits however the samples are split into calls
    /// (not Linear: its choice of product is made per call). The network then slices its blocks finer
    /// for such layers.
    var samplesIndependentOfBlocks: Bool { false }

    /// The threads a stretch of layers may run its blocks on after `prepareForward` (per-thread scratch
    /// sized then); no limit by default.
    var samplesThreadLimit: Int { ThreadPool.maxThreads }

    /// The forward prepared by `beginForwardBySample`, until `endForwardBySample`.
    private var preparedForward: (batch: Int, input: UnsafePointer<Float>)?

    /// A forward by blocks, step 1: as `forward(_:batch:foldingReLU:)` up to the computation. Returns
    /// where the output will be once every block is computed.
    final func beginForwardBySample(_ input: UnsafePointer<Float>, batch: Int, foldingReLU: Bool) throws
        -> UnsafePointer<Float> {
        preparedForward = nil
        try startForward(batch: batch, foldingReLU: foldingReLU)
        guard forwardsBySample else {
            throw BNDError.internalError("\(typeName) cannot run this forward by blocks of samples")
        }
        let y = try prepareForward(input, batch: batch)
        preparedForward = (batch, input)
        return y
    }

    /// Step 2, for each block (on any thread): computes samples [first, first + count).
    final func forwardSamples(first: Int, count: Int, thread: Int) {
        guard let prepared = preparedForward else { return }
        computeSamples(prepared.input, batch: prepared.batch, first: first, count: count, thread: thread)
    }

    /// Step 3, after every block: the forward counts as done (backward may follow).
    final func endForwardBySample() {
        lastForward = preparedForward
        preparedForward = nil
    }

    /// The input of the last successful forward, for overlap checks.
    var lastForwardInput: UnsafePointer<Float>? { lastForward?.input }

    /// The layer's forward kernel. `batch` is positive and `batch`·(input or output count) fits an `Int`.
    func computeForward(_ x: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float> {
        throw BNDError.internalError("\(typeName) has no forward")
    }

    /// The layer's backward kernel, for the forward that saw `input` with the same `batch`.
    func computeBackward(_ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, batch: Int,
                         needInputGradient: Bool) throws -> UnsafePointer<Float>? {
        throw BNDError.internalError("\(typeName) has no backward")
    }
}

/// Where a layer's backward writes its input gradient: the layer's own buffer, or for one backward call
/// the caller's (see `Layer.backward(_:batch:needInputGradient:into:)`), which saves a copy of the
/// whole gradient. Layers use it as a buffer: `resize`, then `pointer`.
final class GradientDestination {
    private let own = FloatBuffer()
    /// The caller's buffer for the running backward call, if any.
    fileprivate(set) var borrowed: UnsafeMutablePointer<Float>?

    var pointer: UnsafeMutablePointer<Float> { borrowed ?? own.pointer }

    /// Makes room for `count` floats (the caller's buffer was sized before the call).
    func resize(_ count: Int) throws { if borrowed == nil { try own.resize(count) } }
}

/// Fills `buffer` with U(-bound, bound), PyTorch's default for Linear and Conv2d weights and biases.
func fillUniform(_ buffer: FloatBuffer, bound: Float, random: inout SeededRandom) {
    for i in 0..<buffer.count { buffer.pointer[i] = random.nextUniform(-bound, bound) }
}

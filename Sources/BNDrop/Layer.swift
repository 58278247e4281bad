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
}

/// A layer of a `Sequential` network.
///
/// Layers compute on whole batches in row-major layout (N×C, N×C×L, N×C×H×W). `inputShape` and
/// `outputShape` describe one sample. A layer owns its output and input-gradient buffers and reuses them
/// across steps. The pointer `forward` returns stays valid until the layer's next `forward`; the
/// `input` pointer passed to `forward` must stay valid until `backward` (the network guarantees both).
public protocol Layer: AnyObject {
    /// PyTorch's class name: "Linear", "BatchNorm1d", ...
    var typeName: String { get }
    var inputShape: [Int] { get }
    var outputShape: [Int] { get }
    /// Train (true) or eval (false) mode. Only BatchNorm and Dropout behave differently.
    var isTraining: Bool { get set }
    /// Parameters and buffers in state_dict order.
    var state: [StateEntry] { get }
    /// Sets the parameters and buffers to their initial values, drawing from `random`.
    func reset(random: inout SeededRandom)
    /// Computes the output for `batch` samples at `input`.
    func forward(_ input: UnsafePointer<Float>, batch: Int) throws -> UnsafePointer<Float>
    /// Accumulates parameter gradients for the last forward pass and returns the input gradient
    /// (nil when `needInputGradient` is false and the layer could skip it).
    func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) throws
        -> UnsafePointer<Float>?
}

extension Layer {
    public var parameters: [Parameter] {
        state.compactMap { if case .parameter(let p) = $0.storage { return p } else { return nil } }
    }

    var inputCount: Int { inputShape.reduce(1, *) }
    var outputCount: Int { outputShape.reduce(1, *) }
}

/// Bookkeeping every layer shares: which batch the last forward saw and in which mode.
struct ForwardRecord {
    var batch: Int? = nil
    var wasTraining = true

    func requireBackward(_ batch: Int, _ layer: String) throws {
        guard let last = self.batch else {
            throw BNDError.state("\(layer): backward called before forward")
        }
        guard last == batch else {
            throw BNDError.shape("\(layer): backward batch \(batch) differs from the forward batch \(last)")
        }
    }
}

/// Fills `buffer` with U(-bound, bound), PyTorch's default for Linear and Conv2d weights and biases.
func fillUniform(_ buffer: FloatBuffer, bound: Float, random: inout SeededRandom) {
    for i in 0..<buffer.count { buffer.pointer[i] = random.nextUniform(-bound, bound) }
}

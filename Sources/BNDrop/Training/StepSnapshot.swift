/// What a training step saves before its forward pass so that a failed step can put it back: every
/// float buffer (BatchNorm's running_mean and running_var), every counter (num_batches_tracked) and
/// every Dropout's generator. Parameters and optimizer state need no copy: only the optimizer step
/// changes them, and it runs last, after every check.
///
/// The storage is allocated once per network shape (the first step, and the first step after a layer
/// was added): saving and restoring copy into it and allocate nothing.
final class StepSnapshot {
    /// The number of layers the snapshot was built for.
    let layerCount: Int
    private let buffers: [FloatBuffer]
    private let bufferCopies: [FloatBuffer]
    private let counters: [Counter]
    private var counterValues: [Int64]
    private let dropouts: [Dropout]
    private var generators: [SeededRandom]

    init(layers: [Layer]) throws {
        layerCount = layers.count
        var buffers: [FloatBuffer] = [], counters: [Counter] = [], dropouts: [Dropout] = []
        for layer in layers {
            for entry in layer.state {
                switch entry.storage {
                case .parameter: break
                case .buffer(let buffer): buffers.append(buffer)
                case .counter(let counter): counters.append(counter)
                }
            }
            if let dropout = layer as? Dropout { dropouts.append(dropout) }
        }
        self.buffers = buffers
        bufferCopies = try buffers.map { try FloatBuffer(count: $0.count) }
        self.counters = counters
        counterValues = counters.map(\.value)
        self.dropouts = dropouts
        generators = dropouts.map(\.random)
    }

    /// Copies the network's buffers, counters and generators into the snapshot.
    func save() {
        for i in buffers.indices { bufferCopies[i].copy(from: buffers[i].pointer) }
        for i in counters.indices { counterValues[i] = counters[i].value }
        for i in dropouts.indices { generators[i] = dropouts[i].random }
    }

    /// Puts back what `save` copied.
    func restore() {
        for i in buffers.indices { buffers[i].copy(from: bufferCopies[i].pointer) }
        for i in counters.indices { counters[i].value = counterValues[i] }
        for i in dropouts.indices { dropouts[i].random = generators[i] }
    }
}

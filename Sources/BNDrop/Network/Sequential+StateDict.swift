/// The network's state by PyTorch state_dict name: "<layer index>.<name>" ("0.weight",
/// "1.running_var", "1.num_batches_tracked"); every layer takes an index, ReLU/Flatten/Dropout included.
/// Values can be read and written as arrays or straight between a caller's memory and the network's
/// own storage (no intermediate copy, so a huge tensor needs no second allocation).
extension Sequential {
    /// The state_dict: (name, entry) in PyTorch's order.
    public var stateDict: [(name: String, entry: StateEntry)] {
        layers.enumerated().flatMap { index, layer in layer.state.map { ("\(index).\($0.name)", $0) } }
    }

    /// The name of state_dict entry `index`.
    public func stateName(at index: Int) throws -> String {
        let names = stateDict.map(\.name)
        try Checked.index(index, below: names.count, "tensor")
        return names[index]
    }

    /// The state entry called `name`.
    public func stateEntry(_ name: String) throws -> StateEntry {
        let parts = name.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        // The index exactly as the state_dict writes it ("0", "12"; not "00", "+0" or "-0").
        if parts.count == 2, let index = Int(parts[0]), String(index) == parts[0], layers.indices.contains(index),
           let entry = layers[index].state.first(where: { $0.name == parts[1] }) {
            return entry
        }
        let known = stateDict.map(\.name).joined(separator: ", ")
        throw BNDError.invalidArgument("no tensor named '\(name)'; this network has: \(known.isEmpty ? "none" : known)")
    }

    /// The parameter called `name`; a buffer's name is an invalid-argument error.
    public func parameter(_ name: String) throws -> Parameter {
        guard case .parameter(let p) = try stateEntry(name).storage else {
            throw BNDError.invalidArgument("'\(name)' is a buffer, not a parameter: it has no gradient")
        }
        return p
    }

    // MARK: Values

    /// The values of tensor `name` (num_batches_tracked as one float, rounded over 2^24: `tensorInt64`
    /// reads it exactly).
    public func tensor(_ name: String) throws -> [Float] {
        let entry = try stateEntry(name)
        var values = [Float](repeating: 0, count: entry.count)
        try values.withUnsafeMutableBufferPointer { _ = try copy(entry, name, into: $0) }
        return values
    }

    /// Copies tensor `name` into `out` (checked for room first); returns the number of values.
    @discardableResult
    public func tensor(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws -> Int {
        try copy(stateEntry(name), name, into: out)
    }

    /// Replaces the values of tensor `name`; the count must match exactly. num_batches_tracked takes a
    /// non-negative whole number.
    public func setTensor(_ name: String, _ values: [Float]) throws {
        try values.withUnsafeBufferPointer { try setTensor(name, from: $0) }
    }

    /// `setTensor` from a caller's memory.
    public func setTensor(_ name: String, from values: UnsafeBufferPointer<Float>) throws {
        let entry = try stateEntry(name)
        guard values.count == entry.count else {
            throw BNDError.shape("'\(name)' has \(entry.count) elements (shape \(entry.shape)), got \(values.count)")
        }
        switch entry.storage {
        case .parameter(let p):
            try p.value.assign(values)
            p.markChanged()
        case .buffer(let b): try b.assign(values)
        case .counter(let c):
            guard let v = values.first, v >= 0, v == v.rounded(), v < 9.0e15 else {
                throw BNDError.invalidArgument("'\(name)' takes a non-negative whole number, got \(Array(values))")
            }
            c.value = Int64(v)
        }
    }

    // MARK: Whole numbers (num_batches_tracked)

    /// The value of int64 entry `name` (a BatchNorm's num_batches_tracked), exactly; `tensor(_:)` gives it
    /// as a Float, which rounds counts over 2^24.
    public func tensorInt64(_ name: String) throws -> Int64 {
        try counter(name).value
    }

    /// Replaces the value of int64 entry `name` (a BatchNorm's num_batches_tracked); it counts batches, so
    /// it must be >= 0.
    public func setTensorInt64(_ name: String, _ value: Int64) throws {
        let counter = try counter(name)
        guard value >= 0 else {
            throw BNDError.invalidArgument("'\(name)' takes a non-negative whole number, got \(value)")
        }
        counter.value = value
    }

    private func counter(_ name: String) throws -> Counter {
        guard case .counter(let c) = try stateEntry(name).storage else {
            throw BNDError.invalidArgument("'\(name)' is a float32 tensor; only num_batches_tracked is int64")
        }
        return c
    }

    // MARK: Gradients

    /// The accumulated gradient of parameter `name`.
    public func gradient(_ name: String) throws -> [Float] {
        try parameter(name).gradient.array
    }

    /// Copies the gradient of parameter `name` into `out` (checked for room first); returns the count.
    @discardableResult
    public func gradient(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws -> Int {
        let gradient = try parameter(name).gradient
        try Checked.room(out, gradient.count, "out")
        if let dst = out.baseAddress { dst.update(from: gradient.pointer, count: gradient.count) }
        return gradient.count
    }

    /// Overwrites the gradient of parameter `name` (the count must match exactly), e.g. to apply an
    /// optimizer to gradients computed elsewhere.
    public func setGradient(_ name: String, from values: UnsafeBufferPointer<Float>) throws {
        let p = try parameter(name)
        guard values.count == p.count else {
            throw BNDError.shape("'\(name)' has \(p.count) elements (shape \(p.shape)), got \(values.count)")
        }
        try p.gradient.assign(values)
    }

    private func copy(_ entry: StateEntry, _ name: String, into out: UnsafeMutableBufferPointer<Float>) throws -> Int {
        try Checked.room(out, entry.count, "out")
        guard let dst = out.baseAddress else { return 0 }
        switch entry.storage {
        case .parameter(let p): dst.update(from: p.value.pointer, count: p.count)
        case .buffer(let b): dst.update(from: b.pointer, count: b.count)
        case .counter(let c): dst.pointee = Float(c.value)
        }
        return entry.count
    }
}

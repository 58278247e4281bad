/// Inference helpers: a copy of the network with BatchNorm folded into the preceding Linear / Conv2d, and
/// Monte-Carlo dropout predictions (mean and variance over dropout masks).
extension Sequential {
    // MARK: Folding BatchNorm

    /// A new, independent copy of the network for inference (eval mode, same sample shape and seed) in
    /// which every BatchNorm that directly follows a Linear or Conv2d and tracks running statistics is
    /// folded into that layer and removed: per output channel o, with s = γ/√(running_var + eps)
    /// (γ = 1, β = 0 without affine), W'[o] = W[o]·s and b'[o] = (b[o] − running_mean[o])·s + β[o], the
    /// factors computed in double precision. Every other layer is rebuilt with the same hyper-parameters
    /// and gets the original's parameters and buffers (a Dropout also its random generator's state).
    ///
    /// Removing layers renumbers the ones after them, so the copy's state_dict names differ from the
    /// original's (a net Linear, BatchNorm1d, ReLU, Linear has "0.*", "1.*", "3.*" before and "0.*",
    /// "2.*" after). Eval outputs agree with the original's eval outputs up to float rounding.
    public func foldingBatchNorm() throws -> Sequential {
        let folded = try Sequential(sampleShape: sampleShape, seed: seed)
        folded.isTraining = false
        var index = 0
        while index < layers.count {
            let layer = layers[index]
            try folded.addCopy(of: layer)
            if index + 1 < layers.count, let bn = layers[index + 1] as? BatchNorm, bn.trackRunningStats,
               layer is Linear || layer is Conv2d {
                try Sequential.fold(bn, into: folded.layers[folded.layers.count - 1])
                index += 2
            } else {
                index += 1
            }
        }
        return folded
    }

    /// Appends a layer like `layer` (same type and hyper-parameters) with a copy of its state.
    private func addCopy(of layer: Layer) throws {
        switch layer {
        case let l as Linear: try addLinear(l.outFeatures)
        case let c as Conv2d:
            try addConv2d(outChannels: c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding,
                          dilation: c.dilation, groups: c.groups)
        case is ReLU: try addReLU()
        case is Flatten: try addFlatten()
        case let p as AvgPool2d:
            try addAvgPool2d(kernelSize: p.kernelSize, stride: p.stride, padding: p.padding, ceilMode: p.ceilMode,
                             countIncludePad: p.countIncludePad, divisorOverride: p.divisorOverride)
        case let p as MaxPool2d:
            try addMaxPool2d(kernelSize: p.kernelSize, stride: p.stride, padding: p.padding, dilation: p.dilation,
                             ceilMode: p.ceilMode)
        case let bn as BatchNorm:
            try addBatchNorm(eps: bn.eps, momentum: bn.momentum, affine: bn.affine, trackRunningStats: bn.trackRunningStats)
        case let d as Dropout:
            try addDropout(d.p)
            (layers[layers.count - 1] as? Dropout)?.random = d.random
        default:
            throw BNDError.internalError("cannot copy a \(layer.typeName) layer")
        }
        let copy = layers[layers.count - 1]
        guard copy.outputShape == layer.outputShape else {
            throw BNDError.internalError("the copy of \(layer.typeName) has output \(copy.outputShape), not \(layer.outputShape)")
        }
        for (source, target) in zip(layer.state, copy.state) {
            guard source.name == target.name, source.count == target.count else {
                throw BNDError.internalError("\(layer.typeName): state '\(source.name)' does not match its copy's")
            }
            switch (source.storage, target.storage) {
            case (.parameter(let s), .parameter(let t)): try t.value.assign(s.value.buffer)
            case (.buffer(let s), .buffer(let t)): try t.assign(s.buffer)
            case (.counter(let s), .counter(let t)): t.value = s.value
            default: throw BNDError.internalError("\(layer.typeName): state '\(source.name)' changed its kind")
            }
        }
    }

    /// Folds `bn`'s eval-mode transform into `layer` (a Linear or Conv2d whose outputs `bn` normalises).
    private static func fold(_ bn: BatchNorm, into layer: Layer) throws {
        let weight: Parameter, bias: Parameter
        switch layer {
        case let l as Linear: (weight, bias) = (l.weight, l.bias)
        case let c as Conv2d: (weight, bias) = (c.weight, c.bias)
        default: throw BNDError.internalError("BatchNorm can only be folded into Linear or Conv2d")
        }
        guard let runningMean = bn.runningMean, let runningVar = bn.runningVar, bias.count == bn.numFeatures,
              weight.count % bn.numFeatures == 0 else {
            throw BNDError.internalError("\(bn.typeName) does not fit the \(layer.typeName) before it")
        }
        let perChannel = weight.count / bn.numFeatures
        let w = weight.value.pointer, b = bias.value.pointer
        for o in 0..<bn.numFeatures {
            let gamma = Double(bn.weight?.value.pointer[o] ?? 1), beta = Double(bn.bias?.value.pointer[o] ?? 0)
            let scale = gamma / (Double(runningVar.pointer[o]) + Double(bn.eps)).squareRoot()
            for i in (o * perChannel)..<((o + 1) * perChannel) { w[i] = Float(Double(w[i]) * scale) }
            b[o] = Float((Double(b[o]) - Double(runningMean.pointer[o])) * scale + beta)
        }
    }

    // MARK: Monte-Carlo dropout

    /// Monte-Carlo dropout: `passes` forward passes of `batch` samples with dropout active (train-mode
    /// masks) and BatchNorm in eval mode (running statistics, not updated); per output value, the mean
    /// and the population variance (divided by `passes`) over the passes, accumulated in double precision
    /// (Welford). The masks come from `seed` alone (Dropout layer i draws from stream i of it), so the same
    /// seed gives the same result. Afterwards the network's tensors, num_batches_tracked, mode and dropout
    /// generators are as before the call; like a failed forward, it discards the last forward pass
    /// (backward and layer outputs need a new forward).
    ///
    /// `mean` and `variance` need room for `batch`·`outputCount` values each (checked before anything
    /// runs); nothing is written to them on failure. `passes` must be at least 1.
    public func predictMCDropout(input: UnsafePointer<Float>, batch: Int, passes: Int, seed: UInt64,
                                 mean: UnsafeMutableBufferPointer<Float>,
                                 variance: UnsafeMutableBufferPointer<Float>) throws {
        try Checked.batch(batch)
        guard passes >= 1 else {
            throw BNDError.invalidArgument("passes must be at least 1, got \(passes)")
        }
        let needed = try Checked.multiply(batch, outputCount, "the output of a batch of \(batch)")
        try Checked.room(mean, needed, "mean")
        try Checked.room(variance, needed, "variance")
        let runningMean = try Buffer<Double>(count: needed, value: 0)
        let squares = try Buffer<Double>(count: needed, value: 0)

        let wasTraining = isTraining, layerModes = layers.map(\.isTraining)
        let dropouts = layers.enumerated().compactMap { index, layer in (layer as? Dropout).map { (index, $0) } }
        let generators = dropouts.map { $0.1.random }
        defer {
            for ((_, dropout), generator) in zip(dropouts, generators) { dropout.random = generator }
            isTraining = wasTraining
            for (layer, mode) in zip(layers, layerModes) { layer.isTraining = mode }
            lastBatch = nil
        }
        isTraining = false
        for (index, dropout) in dropouts {
            dropout.isTraining = true
            dropout.random = SeededRandom(seed: seed, stream: UInt64(index))
        }
        let m = runningMean.pointer, s = squares.pointer
        for pass in 1...passes {
            let y = try forward(input, batch: batch)
            let k = Double(pass)
            for i in 0..<needed {
                let value = Double(y[i])
                let delta = value - m[i]
                m[i] += delta / k
                s[i] += delta * (value - m[i])
            }
        }
        let n = Double(passes)
        for i in 0..<needed {
            mean[i] = Float(m[i])
            variance[i] = Float(max(0, s[i] / n))
        }
    }

    /// Array form of `predictMCDropout`.
    public func predictMCDropout(input: [Float], batch: Int, passes: Int, seed: UInt64) throws
        -> (mean: [Float], variance: [Float]) {
        try Checked.batch(batch)
        guard input.count == batch * inputCount else {
            throw BNDError.shape("input has \(input.count) values; a batch of \(batch) samples of \(sampleShape) needs "
                                 + "\(batch * inputCount)")
        }
        let needed = try Checked.multiply(batch, outputCount, "the output of a batch of \(batch)")
        var mean = [Float](repeating: 0, count: needed), variance = [Float](repeating: 0, count: needed)
        try input.withUnsafeBufferPointer { x in
            try mean.withUnsafeMutableBufferPointer { mb in
                try variance.withUnsafeMutableBufferPointer { vb in
                    try predictMCDropout(input: x.baseAddress!, batch: batch, passes: passes, seed: seed, mean: mb, variance: vb)
                }
            }
        }
        return (mean, variance)
    }
}

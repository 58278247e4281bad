/// Training steps of several independent networks on the same batch, run at the same time: each network's
/// step on one of the library's threads, its own parallel regions then on that thread alone. The
/// article trains its networks in pairs (with and without dropout, with and without BatchNorm); a small
/// one (its 1-100-100-1 regression net) leaves the second core idle in a step of its own, since splitting
/// its 50×100×100 products costs more than they take (`ParallelKernel.minimumParallelWork`).
///
/// Each network's step is exactly `trainStep` on it: the same bits as the steps one after the other, for
/// any thread count. Everything a single step refuses before running is checked first for every network,
/// and so is what running them together needs (no network, layer or optimizer twice): a refused call
/// runs no step and changes nothing. A step that fails while running (a non-finite loss or gradient, an
/// allocation) fails alone and changes what a failed `trainStep` changes; the other networks' steps take
/// place. The results say which.
extension Sequential {
    /// The most networks one call takes (a bound on what a C caller's count may claim).
    public static let maxNetworksSideBySide = 4096

    /// One regression step (mean squared error against `targets`, `batch`·outputCount values) of each
    /// network with its optimizer, on the same input. Returns each step's loss or error, in order.
    public static func trainSteps(networks: [Sequential], optimizers: [Optimizer], input: UnsafePointer<Float>,
                                  targets: UnsafePointer<Float>, batch: Int) throws -> [Result<Float, BNDError>] {
        try checkSideBySide(networks, optimizers, input: input, batch: batch)
        try Checked.allFinite(targets, batch * networks[0].outputCount, "targets")
        return sideBySide(networks, optimizers) { network, optimizer in
            try network.trainStep(input: input, targets: targets, batch: batch, optimizer: optimizer, inputKnownFinite: true)
        }
    }

    /// One classification step (cross-entropy against `labels`) of each network with its optimizer, on
    /// the same input. Returns each step's loss or error, in order.
    public static func trainSteps(networks: [Sequential], optimizers: [Optimizer], input: UnsafePointer<Float>,
                                  labels: UnsafePointer<Int32>, batch: Int) throws -> [Result<Float, BNDError>] {
        try checkSideBySide(networks, optimizers, input: input, batch: batch)
        for network in networks {
            guard network.outputShape.count == 1 else {
                throw BNDError.shape("classification needs a flat output (batch × classes), got \(network.outputShape)")
            }
            try Loss.checkLabels(labels, batch: batch, classes: network.outputCount)
        }
        return sideBySide(networks, optimizers) { network, optimizer in
            try network.trainStep(input: input, labels: labels, batch: batch, optimizer: optimizer, inputKnownFinite: true)
        }
    }

    /// What every step would refuse, and what running them at the same time needs: one optimizer per
    /// network, of that network; no network, layer or optimizer twice (two threads would write it); the
    /// same input and output sizes (one input and one set of targets for all); the input finite.
    private static func checkSideBySide(_ networks: [Sequential], _ optimizers: [Optimizer], input: UnsafePointer<Float>,
                                        batch: Int) throws {
        guard !networks.isEmpty, networks.count <= maxNetworksSideBySide, networks.count == optimizers.count else {
            throw BNDError.invalidArgument("one optimizer per network, 1 to \(maxNetworksSideBySide) of them, is needed: "
                                           + "\(networks.count) networks, \(optimizers.count) optimizers")
        }
        try Checked.batch(batch)
        _ = try Checked.blasInt(batch, networks[0].inputCount, "a batch of \(batch)")
        _ = try Checked.blasInt(batch, networks[0].outputCount, "targets for a batch of \(batch)")
        var layersSeen = Set<ObjectIdentifier>(), optimizersSeen = Set<ObjectIdentifier>()
        for (index, (network, optimizer)) in zip(networks, optimizers).enumerated() {
            guard network.inputCount == networks[0].inputCount, network.outputCount == networks[0].outputCount else {
                throw BNDError.shape("network \(index) takes \(network.sampleShape) to \(network.outputShape), network 0 "
                                     + "\(networks[0].sampleShape) to \(networks[0].outputShape): one batch cannot train both")
            }
            guard optimizersSeen.insert(ObjectIdentifier(optimizer)).inserted else {
                throw BNDError.invalidArgument("optimizer \(index) is given twice: each network needs its own")
            }
            for layer in Set(network.layers.map(ObjectIdentifier.init)) where !layersSeen.insert(layer).inserted {
                throw BNDError.invalidArgument("network \(index) shares a layer with an earlier network (or is given "
                                               + "twice): their steps cannot run at the same time")
            }
            try network.checkOptimizer(optimizer)
            try network.checkBatchNormBatch(batch, training: true)
        }
        try Checked.allFinite(input, batch * networks[0].inputCount, "input")
    }

    /// Runs `step` for every network, one task each, on the shared pool.
    private static func sideBySide(_ networks: [Sequential], _ optimizers: [Optimizer],
                                   _ step: @escaping (Sequential, Optimizer) throws -> Float) -> [Result<Float, BNDError>] {
        var results = [Result<Float, BNDError>](repeating: .failure(.internalError("the step did not run")),
                                                count: networks.count)
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = buffer  // each task writes its own slot
            let kernel = ParallelKernel<Void> { _, task in
                do {
                    slots[task] = .success(try step(networks[task], optimizers[task]))
                } catch let error as BNDError {
                    slots[task] = .failure(error)
                } catch {
                    slots[task] = .failure(.internalError("unexpected error \(error)"))
                }
            }
            kernel.run(networks.count, ())
        }
        return results
    }
}

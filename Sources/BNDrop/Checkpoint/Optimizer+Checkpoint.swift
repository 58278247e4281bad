// An optimizer's state as a safetensors checkpoint, so that training resumes exactly.
//
// Tensors, named after PyTorch's optimizer.state_dict()["state"] (i = the parameter's index in the
// optimizer's list, state_dict order), present only once the optimizer has stepped (as in PyTorch):
//   SGD with momentum:  state.<i>.momentum_buffer   F32, the parameter's shape
//   Adam, AdamW:        state.<i>.step              I64 scalar (PyTorch keeps a float32 tensor; an integer
//                                                   stays exact), the same for every i
//                       state.<i>.exp_avg           F32, the parameter's shape
//                       state.<i>.exp_avg_sq        F32, the parameter's shape
// "__metadata__": format "bndrop-optimizer-1", bndrop_version, optimizer ("SGD", "Adam" or "AdamW"), its
// hyper-parameters by PyTorch's names (lr, momentum, dampening, weight_decay, nesterov / lr, beta1, beta2,
// eps, weight_decay; floats as their shortest decimal text), and param_shapes (JSON: one shape per
// parameter).
//
// Loading needs an optimizer of the same kind (else .invalidArgument) over parameters of the same shapes
// (else .shape). The optimizer keeps its own hyper-parameters (so a run can resume with, say, another
// learning rate); the file's are a record.

extension Optimizer {
    /// The kind written to and expected in checkpoints.
    private var checkpointKind: String {
        get throws {
            switch self {
            case is SGD: return "SGD"
            case let adam as Adam: return adam.decoupledWeightDecay ? "AdamW" : "Adam"
            default: throw BNDError.invalidArgument("bndrop saves and loads SGD, Adam and AdamW state, not \(type(of: self))")
            }
        }
    }

    /// Writes the optimizer's state to `path` (atomically, as `Sequential.save(to:)`).
    public func save(to path: String) throws {
        let kind = try checkpointKind
        var metadata: [(String, String)] = [
            ("format", CheckpointFormat.optimizer), ("bndrop_version", libraryVersion), ("optimizer", kind),
        ]
        var tensors: [SafeTensorsWriter.Tensor] = []
        func floats(_ name: String, _ index: Int, _ buffer: FloatBuffer) {
            tensors.append(.init(name: "state.\(index).\(name)", shape: parameters[index].shape,
                                 payload: .floats(buffer.pointer, count: buffer.count)))
        }
        if let sgd = self as? SGD {
            metadata += [("lr", JSONText.float(sgd.learningRate)), ("momentum", JSONText.float(sgd.momentum)),
                         ("dampening", JSONText.float(sgd.dampening)), ("weight_decay", JSONText.float(sgd.weightDecay)),
                         ("nesterov", "\(sgd.nesterov)")]
            if sgd.momentum != 0 && sgd.started {
                for (i, buffer) in sgd.momentumBuffers.enumerated() { floats("momentum_buffer", i, buffer) }
            }
        } else if let adam = self as? Adam {
            metadata += [("lr", JSONText.float(adam.learningRate)), ("beta1", JSONText.float(adam.beta1)),
                         ("beta2", JSONText.float(adam.beta2)), ("eps", JSONText.float(adam.eps)),
                         ("weight_decay", JSONText.float(adam.weightDecay))]
            if adam.stepCount > 0 {
                for i in parameters.indices {
                    tensors.append(.init(name: "state.\(i).step", shape: [], payload: .int64(Int64(adam.stepCount))))
                    floats("exp_avg", i, adam.firstMoments[i])
                    floats("exp_avg_sq", i, adam.secondMoments[i])
                }
            }
        }
        metadata.append(("param_shapes", JSONText.array(parameters.map { JSONText.ints($0.shape) })))
        try SafeTensorsWriter.write(to: path, metadata: metadata, tensors: tensors)
    }

    /// Replaces the optimizer's state (momentum buffers; Adam's step and moments) with the one saved at
    /// `path`. Everything is checked and read before anything changes.
    public func load(from path: String) throws {
        let kind = try checkpointKind
        let file = try SafeTensorsReader(path: path)
        let quoted = "'\(path)'"
        let metadata = try CheckpointFormat.require(CheckpointFormat.optimizer, in: file)
        let saved = try CheckpointFormat.field(metadata, "optimizer", file)
        guard ["SGD", "Adam", "AdamW"].contains(saved) else {
            throw BNDError.format("\(quoted): __metadata__ 'optimizer' is '\(saved)', which bndrop does not know")
        }
        guard saved == kind else {
            throw BNDError.invalidArgument("\(quoted) holds \(saved) state but the optimizer is \(kind)")
        }
        let shapesJSON = try CheckpointFormat.json(metadata, "param_shapes", file).array("\(quoted): param_shapes")
        let shapes = try shapesJSON.enumerated().map { i, shape in
            try shape.array("\(quoted): param_shapes[\(i)]").enumerated().map { try $1.count("\(quoted): param_shapes[\(i)][\($0)]") }
        }
        let mine = parameters.map(\.shape)
        guard shapes == mine else {
            let detail = shapes.count != mine.count
                ? "\(shapes.count) parameters in the file, \(mine.count) in the optimizer"
                : zip(shapes, mine).enumerated().first { $1.0 != $1.1 }.map { "parameter \($0): \($1.0) in the file, \($1.1) in the optimizer" } ?? ""
            throw BNDError.shape("\(quoted) is the state of an optimizer over other parameters (\(detail))")
        }

        // The tensors the file must hold when it holds any: (name, index, is the step).
        var expected: [(name: String, index: Int, isStep: Bool)] = []
        for i in parameters.indices {
            if self is SGD {
                expected.append(("state.\(i).momentum_buffer", i, false))
            } else {
                expected += [("state.\(i).step", i, true), ("state.\(i).exp_avg", i, false), ("state.\(i).exp_avg_sq", i, false)]
            }
        }
        if let sgd = self as? SGD, sgd.momentum == 0, let first = file.entries.first {
            throw BNDError.invalidArgument("\(quoted) holds momentum buffers ('\(first.name)') but the SGD has momentum 0")
        }
        var staged: [FloatBuffer?] = []
        var step: Int64? = nil
        if !file.entries.isEmpty {
            let names = Set(expected.map(\.name))
            for item in expected where file.entry(item.name) == nil {
                throw BNDError.format("\(quoted) has no tensor '\(item.name)' (\(saved) state has "
                                      + (self is SGD ? "momentum_buffer" : "step, exp_avg and exp_avg_sq")
                                      + " for every parameter once it has stepped)")
            }
            if let extra = file.entries.first(where: { !names.contains($0.name) }) {
                throw BNDError.format("\(quoted) has a tensor '\(extra.name)' that \(saved) state does not have")
            }
            for item in expected {
                let entry = file.entry(item.name)!
                let (dtype, shape): (SafeTensorsDType, [Int]) = item.isStep ? (.I64, []) : (.F32, mine[item.index])
                guard entry.dtype == dtype, entry.shape == shape else {
                    throw BNDError.format("\(quoted): tensor '\(item.name)' is \(entry.dtype.rawValue) \(entry.shape); "
                                          + "expected \(dtype.rawValue) \(shape)")
                }
                if item.isStep {
                    let value = try file.readInt64(entry)
                    guard value >= 1, step == nil || step == value else {
                        throw BNDError.format("\(quoted): tensor '\(item.name)' is \(value); every parameter's step must be "
                                              + "the same count >= 1" + (step.map { " (state.0.step is \($0))" } ?? ""))
                    }
                    step = value
                    staged.append(nil)
                } else {
                    let buffer = try FloatBuffer(uninitializedCount: entry.elementCount, what: "tensor '\(item.name)' of \(quoted)")
                    try file.readFloats(entry, into: buffer.pointer)
                    // State no step makes (its gradients are finite, though a square or a sum may
                    // overflow to infinity): a NaN, or a negative mean of squares, would turn parameters
                    // into NaN at the next step.
                    let values = UnsafeBufferPointer(start: buffer.pointer, count: buffer.count)
                    if let bad = values.firstIndex(where: { $0.isNaN }) {
                        throw BNDError.format("\(quoted): tensor '\(item.name)' holds NaN at \(bad); optimizer state has none")
                    }
                    if item.name.hasSuffix(".exp_avg_sq"), let bad = values.firstIndex(where: { $0 < 0 }) {
                        throw BNDError.format("\(quoted): tensor '\(item.name)' holds \(values[bad]) at \(bad); a mean of squares is >= 0")
                    }
                    staged.append(buffer)
                }
            }
        }

        // Commit.
        if let sgd = self as? SGD {
            sgd.started = !staged.isEmpty
            for (i, buffer) in staged.enumerated() {
                sgd.momentumBuffers[i].pointer.update(from: buffer!.pointer, count: buffer!.count)
            }
        } else if let adam = self as? Adam {
            guard let step, let count = Int(exactly: step) else {
                adam.stepCount = 0
                for buffer in adam.firstMoments + adam.secondMoments { buffer.fill(0) }
                return
            }
            adam.stepCount = count
            for (k, buffer) in staged.enumerated() {
                guard let buffer else { continue }
                let item = expected[k]
                let target = item.name.hasSuffix(".exp_avg") ? adam.firstMoments[item.index] : adam.secondMoments[item.index]
                target.pointer.update(from: buffer.pointer, count: buffer.count)
            }
        }
    }
}

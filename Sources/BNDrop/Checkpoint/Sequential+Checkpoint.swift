// A network as a safetensors checkpoint.
//
// Tensors: the state_dict, by its PyTorch names ("0.weight", "1.running_var", ...), float tensors as F32
// and num_batches_tracked as an I64 scalar, as PyTorch stores it; so PyTorch reads the file with
// model.load_state_dict(safetensors.torch.load_file(path), strict=True).
//
// "__metadata__" (strings only, as the format requires) holds what rebuilds the network:
//   format          "bndrop-1"
//   bndrop_version  the library's version (BND_VERSION_STRING of include/bndrop.h)
//   sample_shape    JSON array, e.g. "[1,28,28]"
//   seed            the net's seed, decimal
//   training        "true" or "false" (the mode it was saved in)
//   layers          JSON array, one object per layer: "type" (PyTorch's class name) and every constructor
//                   argument by PyTorch's name, e.g. {"type":"Linear","in_features":784,"out_features":48,
//                   "bias":true}, {"type":"BatchNorm1d","num_features":48,"eps":1e-05,"momentum":0.1,
//                   "affine":true,"track_running_stats":true} (momentum null: cumulative average),
//                   {"type":"Conv2d","in_channels":1,"out_channels":3,"kernel_size":5,"stride":1,
//                   "padding":0,"bias":true}, {"type":"AvgPool2d","kernel_size":2,"stride":2} (Conv2d's
//                   dilation and groups, pooling's padding, ceil_mode, count_include_pad,
//                   divisor_override and dilation only where they are not PyTorch's defaults),
//                   {"type":"Flatten","start_dim":1,"end_dim":-1}, {"type":"Dropout","p":0.5}, {"type":"ReLU"}
//   rng.<i>         for each Dropout layer i: its mask generator's state (four 64-bit words in hex), so
//                   that training continues with the very masks it would have drawn
internal import BNDropHeader

/// The library's version as checkpoints record it. The C header's BND_VERSION_STRING is the one source:
/// the core reads that macro (through the header's module) rather than keeping a copy that could drift.
let libraryVersion: String = BND_VERSION_STRING

/// The metadata format tags.
enum CheckpointFormat {
    static let network = "bndrop-1"
    static let optimizer = "bndrop-optimizer-1"

    /// The format tag of `file`, which must be `expected`; `.format` naming the file otherwise.
    static func require(_ expected: String, in file: SafeTensorsReader) throws -> [String: String] {
        let quoted = "'\(file.path)'"
        guard let metadata = file.metadata else {
            throw BNDError.format("\(quoted) has no __metadata__, so it is not a bndrop checkpoint"
                                  + (expected == network ? " (a plain state_dict loads with loadWeights / "
                                     + "bnd_net_load_weights into a network you build)" : ""))
        }
        guard let tag = metadata["format"] else { throw BNDError.format("\(quoted): __metadata__ has no 'format'") }
        guard tag == expected else {
            let known = [network: "a network checkpoint", optimizer: "an optimizer checkpoint"]
            throw BNDError.format("\(quoted): __metadata__ 'format' is '\(tag)' (\(known[tag] ?? "unknown to bndrop \(libraryVersion)")); "
                                  + "expected '\(expected)' (\(known[expected]!))")
        }
        return metadata
    }

    /// Metadata value `key`, which must be present.
    static func field(_ metadata: [String: String], _ key: String, _ file: SafeTensorsReader) throws -> String {
        guard let value = metadata[key] else { throw BNDError.format("'\(file.path)': __metadata__ has no '\(key)'") }
        return value
    }

    /// Metadata value `key` parsed as JSON.
    static func json(_ metadata: [String: String], _ key: String, _ file: SafeTensorsReader) throws -> JSON {
        let text = Array(try field(metadata, key, file).utf8)
        return try text.withUnsafeBytes { try JSON.parse($0, what: "'\(file.path)': __metadata__ '\(key)'") }
    }
}

extension Sequential {
    // MARK: Saving

    /// Writes the network to `path` as a safetensors checkpoint: its state_dict (F32, num_batches_tracked
    /// I64) and, in the metadata, the architecture, seed, mode and dropout generators (see the top of this
    /// file). The file is replaced atomically: a failure leaves the previous file as it was.
    /// Throws `.io` when the file system refuses.
    public func save(to path: String) throws {
        let tensors: [SafeTensorsWriter.Tensor] = stateDict.map { name, entry in
            switch entry.storage {
            case .parameter(let p): return .init(name: name, shape: entry.shape, payload: .floats(p.value.pointer, count: p.count))
            case .buffer(let b): return .init(name: name, shape: entry.shape, payload: .floats(b.pointer, count: b.count))
            case .counter(let c): return .init(name: name, shape: entry.shape, payload: .int64(c.value))
            }
        }
        var metadata: [(String, String)] = [
            ("format", CheckpointFormat.network),
            ("bndrop_version", libraryVersion),
            ("sample_shape", JSONText.ints(sampleShape)),
            ("seed", String(seed)),
            ("training", isTraining ? "true" : "false"),
            ("layers", JSONText.array(layers.map(Sequential.describe))),
        ]
        for (index, layer) in layers.enumerated() {
            if let dropout = layer as? Dropout {
                metadata.append(("rng.\(index)", dropout.random.state.map(Sequential.hex16).joined(separator: ",")))
            }
        }
        try SafeTensorsWriter.write(to: path, metadata: metadata, tensors: tensors)
    }

    private static func hex16(_ word: UInt64) -> String {
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// One layer as JSON: its PyTorch class name and constructor arguments.
    private static func describe(_ layer: Layer) -> String {
        var members: [(String, String)] = [("type", JSONText.string(layer.typeName))]
        switch layer {
        case let linear as Linear:
            members += [("in_features", "\(linear.inFeatures)"), ("out_features", "\(linear.outFeatures)"), ("bias", "true")]
        case let conv as Conv2d:
            members += [("in_channels", "\(conv.inChannels)"), ("out_channels", "\(conv.outChannels)"),
                        ("kernel_size", "\(conv.kernelSize)"), ("stride", "\(conv.stride)"), ("padding", "\(conv.padding)")]
            // As for pooling: dilation and groups only where they are not PyTorch's defaults.
            if conv.dilation != 1 { members.append(("dilation", "\(conv.dilation)")) }
            if conv.groups != 1 { members.append(("groups", "\(conv.groups)")) }
            members.append(("bias", "true"))
        case let pool as Pool2d:
            // The arguments bndrop 1.x had, then the others only where they differ from PyTorch's defaults,
            // so that a checkpoint of the article's pooling still loads in a bndrop without them.
            members += [("kernel_size", "\(pool.kernelSize)"), ("stride", "\(pool.stride)")]
            if pool.padding != 0 { members.append(("padding", "\(pool.padding)")) }
            if let max = pool as? MaxPool2d, max.dilation != 1 { members.append(("dilation", "\(max.dilation)")) }
            if pool.ceilMode { members.append(("ceil_mode", "true")) }
            if let avg = pool as? AvgPool2d {
                if !avg.countIncludePad { members.append(("count_include_pad", "false")) }
                if let divisor = avg.divisorOverride { members.append(("divisor_override", "\(divisor)")) }
            }
        case is Flatten:
            members += [("start_dim", "1"), ("end_dim", "-1")]
        case let bn as BatchNorm:
            members += [("num_features", "\(bn.numFeatures)"), ("eps", JSONText.float(bn.eps)),
                        ("momentum", bn.momentum.map(JSONText.float) ?? "null"), ("affine", "\(bn.affine)"),
                        ("track_running_stats", "\(bn.trackRunningStats)")]
        case let dropout as Dropout:
            members += [("p", JSONText.float(dropout.p))]
        default:
            break   // ReLU: no arguments
        }
        return JSONText.object(members)
    }

    // MARK: Loading

    /// The network saved at `path` by `save(to:)`: the architecture from the metadata, then every tensor,
    /// the dropout generators and the mode. The file is checked whole before it is trusted; any damage
    /// (safetensors structure, metadata, a layer that does not fit, a tensor missing, extra, of another
    /// dtype or shape) is `.format` naming the file and the tensor or field; `.io` when it cannot be read.
    public convenience init(contentsOf path: String) throws {
        let file = try SafeTensorsReader(path: path)
        let quoted = "'\(path)'"
        let metadata = try CheckpointFormat.require(CheckpointFormat.network, in: file)
        let shapeJSON = try CheckpointFormat.json(metadata, "sample_shape", file)
        let sampleShape = try shapeJSON.array("\(quoted): sample_shape").enumerated().map {
            try $1.integer("\(quoted): sample_shape[\($0)]")
        }
        let seedText = try CheckpointFormat.field(metadata, "seed", file)
        // Digits only: Swift's UInt64("+1") would also take a sign, which bndrop never writes.
        guard seedText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let seed = UInt64(seedText) else {
            throw BNDError.format("\(quoted): __metadata__ 'seed' must be a whole number in 0...2^64-1, got '\(seedText)'")
        }
        let training: Bool
        switch try CheckpointFormat.field(metadata, "training", file) {
        case "true": training = true
        case "false": training = false
        case let other: throw BNDError.format("\(quoted): __metadata__ 'training' must be 'true' or 'false', got '\(other)'")
        }
        let layers = try CheckpointFormat.json(metadata, "layers", file).array("\(quoted): __metadata__ 'layers'")
        try Sequential.validSampleShape(sampleShape, file: quoted)
        try self.init(sampleShape: sampleShape, seed: seed)
        for (index, description) in layers.enumerated() {
            try addLayer(index, description, file: quoted, tensors: file)
        }
        for (index, layer) in self.layers.enumerated() {
            guard let dropout = layer as? Dropout else { continue }
            let key = "rng.\(index)"
            let text = try CheckpointFormat.field(metadata, key, file)
            let words = text.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.utf8.count == 16 && $0.utf8.allSatisfy(Sequential.isHexDigit) ? UInt64($0, radix: 16) : nil
            }
            guard words.count == 4, text.count == 67, let random = SeededRandom(state: words.compactMap { $0 }) else {
                throw BNDError.format("\(quoted): __metadata__ '\(key)' must be four 16-digit hex words separated by commas, "
                                      + "not all zero; got '\(text)'")
            }
            dropout.random = random
        }
        try fill(from: file) { .format($0) }
        isTraining = training
    }

    /// An ASCII hexadecimal digit (a generator word is 16 of them, no sign or prefix).
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
             UInt8(ascii: "A")...UInt8(ascii: "F"): return true
        default: return false
        }
    }

    /// The sample shape rules of `init(sampleShape:seed:)`, as format errors (a convenience initialiser
    /// cannot catch what it delegates to).
    private static func validSampleShape(_ shape: [Int], file: String) throws {
        guard !shape.isEmpty, shape.count <= 3, shape.allSatisfy({ $0 > 0 }) else {
            throw BNDError.format("\(file): sample_shape must have 1 to 3 positive dimensions, got \(shape)")
        }
        var total = 1
        for d in shape {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Int(Int32.max) else {
                throw BNDError.format("\(file): sample_shape \(shape) has more than 2^31-1 elements")
            }
            total = p
        }
    }

    /// Adds the layer `description` (from the metadata) describes; `.format` naming the layer when it is
    /// malformed or does not fit. (The file system and memory keep their own errors.)
    /// A layer with a weight (Linear, Conv2d) is built only when `tensors` holds that weight in the shape
    /// the layer will have: the layer allocates its parameters and gradients, so a description of a
    /// huge layer in a file of a few hundred bytes would otherwise take gigabytes before the file's
    /// tensors were compared (they fill the net afterwards, every one checked).
    private func addLayer(_ index: Int, _ description: JSON, file: String, tensors: SafeTensorsReader) throws {
        var what = "\(file): layers[\(index)]"
        var fields: [String: JSON] = [:]
        for (key, value) in try description.uniqueMembers(what) { fields[key] = value }
        func take(_ key: String) throws -> JSON {
            guard let value = fields.removeValue(forKey: key) else { throw BNDError.format("\(what) has no '\(key)'") }
            return value
        }
        let type = try take("type").string("\(what): type")
        what += " (\(type))"
        let shape = outputShape
        /// `expected` must equal the value of `key` (an argument implied by the input, e.g. in_features).
        func implied(_ key: String, _ expected: Int) throws {
            let value = try take(key).integer("\(what): \(key)")
            guard value == expected else {
                throw BNDError.format("\(what): \(key) is \(value) but the layer's input \(shape) gives \(expected)")
            }
        }
        func requireBias() throws {
            guard try take("bias").bool("\(what): bias") else {
                throw BNDError.format("\(what): bias false is not supported (bndrop's \(type) always has a bias)")
            }
        }
        /// An argument written only when it is not PyTorch's default (absent: the default).
        func optional<T>(_ key: String, _ fallback: T, _ read: (JSON) throws -> T) throws -> T {
            try fields[key] == nil ? fallback : read(take(key))
        }
        var add: () throws -> Void
        /// The file's tensor '<index>.weight' must exist with shape `dims` before the layer is built.
        /// (Sizes the layer itself refuses, such as 0, are left to it.)
        func weightInFile(_ dims: [Int]) throws {
            guard dims.allSatisfy({ $0 > 0 }) else { return }
            let name = "\(index).weight"
            guard let entry = tensors.entry(name) else {
                throw BNDError.format("\(file) has no tensor '\(name)' (layers[\(index)], a \(type), has a weight of shape \(dims))")
            }
            guard entry.shape == dims else {
                throw BNDError.format("\(file): tensor '\(name)' has shape \(entry.shape) but the network's is \(dims)")
            }
        }
        switch type {
        case "Linear":
            if shape.count == 1 { try implied("in_features", shape[0]) } else { _ = try take("in_features").count("\(what): in_features") }
            let out = try take("out_features").integer("\(what): out_features")
            try requireBias()
            if shape.count == 1 { try weightInFile([out, shape[0]]) }  // else addLinear refuses the input
            add = { try self.addLinear(out) }
        case "Conv2d":
            if shape.count == 3 { try implied("in_channels", shape[0]) } else { _ = try take("in_channels").count("\(what): in_channels") }
            let out = try take("out_channels").integer("\(what): out_channels")
            let kernel = try take("kernel_size").integer("\(what): kernel_size")
            let stride = try take("stride").integer("\(what): stride")
            let padding = try take("padding").integer("\(what): padding")
            let dilation = try optional("dilation", 1) { try $0.integer("\(what): dilation") }
            let groups = try optional("groups", 1) { try $0.integer("\(what): groups") }
            try requireBias()
            if shape.count == 3, groups > 0, shape[0] % groups == 0 {  // (else addConv2d refuses the groups)
                try weightInFile([out, shape[0] / groups, kernel, kernel])
            }
            add = { try self.addConv2d(outChannels: out, kernelSize: kernel, stride: stride, padding: padding,
                                       dilation: dilation, groups: groups) }
        case "AvgPool2d", "MaxPool2d":
            let kernel = try take("kernel_size").integer("\(what): kernel_size")
            let stride = try take("stride").integer("\(what): stride")
            let padding = try optional("padding", 0) { try $0.integer("\(what): padding") }
            let ceilMode = try optional("ceil_mode", false) { try $0.bool("\(what): ceil_mode") }
            if type == "AvgPool2d" {
                let includePad = try optional("count_include_pad", true) { try $0.bool("\(what): count_include_pad") }
                let divisor: Int? = try optional("divisor_override", nil) { json in
                    if case .null = json { return nil }
                    return try json.integer("\(what): divisor_override")
                }
                add = { try self.addAvgPool2d(kernelSize: kernel, stride: stride, padding: padding, ceilMode: ceilMode,
                                              countIncludePad: includePad, divisorOverride: divisor) }
            } else {
                let dilation = try optional("dilation", 1) { try $0.integer("\(what): dilation") }
                add = { try self.addMaxPool2d(kernelSize: kernel, stride: stride, padding: padding, dilation: dilation,
                                              ceilMode: ceilMode) }
            }
        case "ReLU":
            add = { try self.addReLU() }
        case "Flatten":
            let start = try take("start_dim").integer("\(what): start_dim")
            let end = try take("end_dim").integer("\(what): end_dim")
            guard start == 1, end == -1 else {
                throw BNDError.format("\(what): only start_dim 1 and end_dim -1 are supported, got \(start) and \(end)")
            }
            add = { try self.addFlatten() }
        case "BatchNorm1d", "BatchNorm2d":
            let expected = shape.count == 3 ? "BatchNorm2d" : "BatchNorm1d"
            guard type == expected else { throw BNDError.format("\(what): the input \(shape) takes a \(expected)") }
            try implied("num_features", shape[0])
            let eps = try take("eps").float("\(what): eps")
            let momentumJSON = try take("momentum")
            let momentum: Float? = if case .null = momentumJSON { nil } else { try momentumJSON.float("\(what): momentum") }
            let affine = try take("affine").bool("\(what): affine")
            let track = try take("track_running_stats").bool("\(what): track_running_stats")
            add = { try self.addBatchNorm(eps: eps, momentum: momentum, affine: affine, trackRunningStats: track) }
        case "Dropout":
            let p = try take("p").float("\(what): p")
            add = { try self.addDropout(p) }
        default:
            throw BNDError.format("\(what): unknown layer type '\(type)'")
        }
        if let extra = fields.keys.sorted().first {
            throw BNDError.format("\(what) has an unknown field '\(extra)'")
        }
        do {
            try add()
        } catch let error as BNDError {
            switch error {
            case .invalidArgument(let m), .shape(let m), .state(let m): throw BNDError.format("\(what): \(m)")
            default: throw error
            }
        }
    }

    /// Replaces the network's state from PyTorch state_dict names in a safetensors file (any writer).
    public func loadWeights(from path: String) throws {
        let file = try SafeTensorsReader(path: path)
        try fill(from: file) { .shape($0) }
    }

    /// Fills every state_dict entry from `file`, strictly: each of the network's names present and no
    /// other, F32 (I64 for num_batches_tracked, a non-negative scalar), shapes equal (`shapeMismatch` makes
    /// that error). Everything is read into staging memory first: on failure the network is unchanged.
    func fill(from file: SafeTensorsReader, shapeMismatch: (String) -> BNDError) throws {
        let quoted = "'\(file.path)'"
        let state = stateDict
        let names = Set(state.map(\.name))
        func listed() -> String {
            let all = state.map(\.name)
            return all.isEmpty ? "none" : all.prefix(12).joined(separator: ", ") + (all.count > 12 ? ", …" : "")
        }
        var entries: [SafeTensorsEntry] = []
        for (name, _) in state {
            guard let entry = file.entry(name) else {
                throw BNDError.format("\(quoted) has no tensor '\(name)' (a strict load needs every tensor of the network: "
                                      + "\(listed()))")
            }
            entries.append(entry)
        }
        if let extra = file.entries.first(where: { !names.contains($0.name) }) {
            throw BNDError.format("\(quoted) has a tensor '\(extra.name)' that the network does not have (its tensors: "
                                  + "\(listed()))")
        }
        for ((name, entry), found) in zip(state, entries) {
            let wanted: SafeTensorsDType = if case .counter = entry.storage { .I64 } else { .F32 }
            guard found.dtype == wanted else {
                throw BNDError.format("\(quoted): tensor '\(name)' has dtype \(found.dtype.rawValue); bndrop reads it as "
                                      + "\(wanted.rawValue)")
            }
            guard found.shape == entry.shape else {
                throw shapeMismatch("\(quoted): tensor '\(name)' has shape \(found.shape) but the network's is \(entry.shape)")
            }
        }
        var staged: [FloatBuffer?] = []
        var counters: [Int64?] = []
        for ((name, entry), found) in zip(state, entries) {
            if case .counter = entry.storage {
                let value = try file.readInt64(found)
                guard value >= 0 else { throw BNDError.format("\(quoted): tensor '\(name)' is \(value); it counts batches (>= 0)") }
                staged.append(nil)
                counters.append(value)
            } else {
                let buffer = try FloatBuffer(uninitializedCount: found.elementCount, what: "tensor '\(name)' of \(quoted)")
                try file.readFloats(found, into: buffer.pointer)
                staged.append(buffer)
                counters.append(nil)
            }
        }
        for (i, (_, entry)) in state.enumerated() {
            switch entry.storage {
            case .parameter(let p):
                p.value.pointer.update(from: staged[i]!.pointer, count: p.count)
                p.markChanged()
            case .buffer(let b): b.pointer.update(from: staged[i]!.pointer, count: b.count)
            case .counter(let c): c.value = counters[i]!
            }
        }
    }
}

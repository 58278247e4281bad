// The opaque handles of the C ABI: what a bnd_net *, bnd_optimizer *, bnd_dataset * and bnd_loader *
// point at (a retained box around the Swift object), how one is made, found and released.
import BNDrop
import BNDropCSupport

final class NetBox {
    let net: Sequential
    init(_ net: Sequential) { self.net = net }
}

/// A C optimizer is bound to the net it was created for (the Swift `Optimizer` only holds parameters).
/// It remembers the net weakly, to refuse a foreign net and notice a freed one, and the layer count it
/// was built for, to refuse a net that gained layers.
final class OptimizerBox {
    let optimizer: Optimizer
    weak var owner: NetBox?
    let layerCount: Int

    init(_ optimizer: Optimizer, owner: NetBox) {
        self.optimizer = optimizer
        self.owner = owner
        layerCount = owner.net.layers.count
    }

    /// Throws unless the optimizer may update `net` now (`net` nil: whichever net it belongs to).
    func checkUsable(with net: NetBox?) throws {
        guard let owner else {
            throw BNDError.state("the optimizer's network was freed; free the optimizer too")
        }
        if let net, net !== owner {
            throw BNDError.invalidArgument("the optimizer was created for a different network")
        }
        guard owner.net.layers.count == layerCount else {
            throw BNDError.state("the network has \(owner.net.layers.count) layers but the optimizer was created when it had "
                                 + "\(layerCount); create optimizers after the last bnd_net_add_*")
        }
    }
}

/// The loader holds its dataset strongly, so the dataset's handle may be freed first.
final class DatasetBox {
    let dataset: Dataset
    init(_ dataset: Dataset) { self.dataset = dataset }
}

final class LoaderBox {
    let loader: BatchLoader
    init(_ loader: BatchLoader) { self.loader = loader }
}

/// Hands `object` to C: the caller owns one reference until the matching `release`.
func publish<T: AnyObject>(_ object: T, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

/// The object behind a handle, or an invalid-argument error naming the C parameter when it is NULL.
func box<T: AnyObject>(_ handle: OpaquePointer?, _ name: StaticString, as type: T.Type = T.self) throws -> T {
    guard let handle else { throw BNDError.invalidArgument("\(name) is NULL") }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

/// Releases the caller's reference; NULL is a no-op.
func release<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) {
    guard let handle else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).release()
}

func netBox(_ handle: OpaquePointer?) throws -> NetBox { try box(handle, "net") }
func optimizerBox(_ handle: OpaquePointer?) throws -> OptimizerBox { try box(handle, "optimizer") }
func datasetBox(_ handle: OpaquePointer?, _ name: StaticString = "dataset") throws -> DatasetBox { try box(handle, name) }
func loaderBox(_ handle: OpaquePointer?) throws -> LoaderBox { try box(handle, "loader") }

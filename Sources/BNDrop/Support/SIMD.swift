// Eight-float loads and stores for the kernels. Swift builds for the x86-64 baseline, so a SIMD8<Float>
// operation is two SSE instructions: still several times the throughput of scalar code, with no
// dependence on the CPU the library happens to be built on.

/// Eight floats from `p` (any alignment).
@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores eight floats at `p` (any alignment).
@inline(__always)
func store8(_ value: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: SIMD8<Float>.self)
}

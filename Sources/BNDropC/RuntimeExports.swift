// The runtime: bndrop's thread count and what it computes with (the OpenBLAS core, the CPU's SIMD width).
import BNDrop
import BNDropCSupport

@_cdecl("bnd_get_runtime_info")
public func bnd_get_runtime_info(_ outInfo: UnsafeMutablePointer<bnd_runtime_info>?) -> bnd_status {
    api("bnd_get_runtime_info") {
        let outInfo = try required(outInfo, "out_info")
        let runtime = try RuntimeInfo.current
        var info = bnd_runtime_info()  // every byte 0: unused text and the reserved fields
        copyText(runtime.blasCore, into: &info.blas_core)
        copyText(runtime.blasDetectedCore ?? "", into: &info.blas_detected_core)
        copyText(runtime.blasConfig, into: &info.blas_config)
        info.blas_core_by_environment = runtime.blasCoreSource == .environment ? 1 : 0
        info.blas_core_by_bndrop = runtime.blasCoreSource == .bndrop ? 1 : 0
        info.blas_loaded_by_host = runtime.blasCoreSource == .host ? 1 : 0
        info.blas_threads = Int32(clamping: runtime.blasThreads)
        info.threads = Int32(clamping: runtime.threads)
        info.simd_width = Int32(clamping: runtime.simdWidth)
        info.kernel_simd_width = Int32(clamping: runtime.kernelSimdWidth)
        info.subnormals_in_double = runtime.subnormalsInDouble ? 1 : 0
        outInfo.pointee = info
    }
}

@_cdecl("bnd_set_num_threads")
public func bnd_set_num_threads(_ threads: Int32) -> bnd_status {
    api("bnd_set_num_threads") {
        try ThreadPool.shared.setThreadCount(Int(threads))
    }
}

@_cdecl("bnd_get_num_threads")
public func bnd_get_num_threads() -> Int32 {
    Int32(clamping: ThreadPool.shared.threadCount)
}

/// Copies `text` into a fixed-size C char array (imported as a tuple), NUL-terminated; a text too long
/// is cut at a character boundary.
private func copyText<Tuple>(_ text: String, into field: inout Tuple) {
    withUnsafeMutableBytes(of: &field) { bytes in
        var utf8 = Array(text.utf8)
        if utf8.count >= bytes.count {
            var end = bytes.count - 1
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
            utf8.removeSubrange(end...)
        }
        bytes.copyBytes(from: utf8)
        bytes[utf8.count] = 0
    }
}

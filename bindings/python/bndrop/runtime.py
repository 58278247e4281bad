"""The library's version, threads and BLAS."""
import ctypes

from ._lib import RuntimeInfoStruct, lib
from ._support import integer
from .errors import check


def version():
    """The library's version, e.g. "0.1.0" (bnd_version_string)."""
    return lib.bnd_version_string().decode()


def version_number():
    """The library's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return lib.bnd_version_number()


def runtime_info():
    """bnd_get_runtime_info as a dict: the OpenBLAS core in use and how it was chosen, OpenBLAS's and
    bndrop's thread counts, the CPU's SIMD width in floats. Loads OpenBLAS if nothing has yet
    (BndropIOError when it cannot be loaded)."""
    info = RuntimeInfoStruct()
    check(lib.bnd_get_runtime_info(ctypes.byref(info)), "bnd_get_runtime_info")
    return {
        "blas_core": info.blas_core.decode(),
        "blas_detected_core": info.blas_detected_core.decode(),
        "blas_config": info.blas_config.decode(),
        "blas_core_by_environment": bool(info.blas_core_by_environment),
        "blas_core_by_bndrop": bool(info.blas_core_by_bndrop),
        "blas_loaded_by_host": bool(info.blas_loaded_by_host),
        "blas_threads": info.blas_threads,
        "threads": info.threads,
        "simd_width": info.simd_width,
        "kernel_simd_width": info.kernel_simd_width,
        "subnormals_in_double": bool(info.subnormals_in_double),
    }


def set_num_threads(threads):
    """bndrop's thread count (1 to 256, the calling thread included), for every net, from the next
    forward or backward pass on."""
    check(lib.bnd_set_num_threads(integer(threads, "threads", -(1 << 31), (1 << 31) - 1)), "bnd_set_num_threads")


def get_num_threads():
    return lib.bnd_get_num_threads()

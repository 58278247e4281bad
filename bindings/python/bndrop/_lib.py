"""Finding libbndrop.so and declaring its C functions (include/bndrop.h) for ctypes.

The library is looked for, in this order:
  1. the path in the BNDROP_LIBRARY environment variable (when it is set, nothing else is tried);
  2. an installed library: ctypes.util.find_library("bndrop"), the dynamic loader's own search for
     libbndrop.so.0 / libbndrop.so (LD_LIBRARY_PATH, ld.so.cache, /lib, /usr/lib), then the usual
     library folders (/usr/local/lib, the multiarch folders, <sys.prefix>/lib);
  3. the build folder of the checkout this package is run from: <repo>/.build/release/libbndrop.so.
Failing all of them, importing bndrop raises ImportError naming every place tried and why it failed.
"""
import ctypes
import ctypes.util
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int32, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)
from pathlib import Path

ENV_VAR = "BNDROP_LIBRARY"
# The major version this binding was written for (BND_VERSION_MAJOR of include/bndrop.h) and the
# oldest library version number (MAJOR*10000 + MINOR*100 + PATCH) that has every function it declares.
HEADER_MAJOR = 0
MIN_VERSION_NUMBER = 100
MIN_VERSION = "0.1.0"
NAME_MAX = 64       # BND_NAME_MAX
MAX_RANK = 4        # BND_MAX_RANK


# ----------------------------------------------------------------------------------------- structs
# Field for field as in include/bndrop.h (ctypes applies the same natural alignment as the C compiler).

class BatchNormParams(Structure):
    _fields_ = [("eps", c_float), ("momentum", c_float), ("cumulative_average", c_int32),
                ("affine", c_int32), ("track_running_stats", c_int32)]


class Conv2dParams(Structure):
    _fields_ = [("out_channels", c_int64), ("kernel_size", c_int64), ("stride", c_int64), ("padding", c_int64),
                ("dilation", c_int64), ("groups", c_int64)]


class CrossEntropyParams(Structure):
    _fields_ = [("weight", POINTER(c_float)), ("weight_count", c_int64), ("ignore_index", c_int64),
                ("label_smoothing", c_float), ("reduction", c_int32)]


class AvgPool2dParams(Structure):
    _fields_ = [("kernel_size", c_int64), ("stride", c_int64), ("padding", c_int64), ("ceil_mode", c_int32),
                ("count_include_pad", c_int32), ("divisor_override", c_int64)]


class MaxPool2dParams(Structure):
    _fields_ = [("kernel_size", c_int64), ("stride", c_int64), ("padding", c_int64), ("dilation", c_int64),
                ("ceil_mode", c_int32)]


class SGDParams(Structure):
    _fields_ = [("lr", c_float), ("momentum", c_float), ("dampening", c_float), ("weight_decay", c_float),
                ("nesterov", c_int32)]


class AdamParams(Structure):
    _fields_ = [("lr", c_float), ("beta1", c_float), ("beta2", c_float), ("eps", c_float),
                ("weight_decay", c_float), ("decoupled_weight_decay", c_int32)]


class FitParams(Structure):
    _fields_ = [("epochs", c_int64), ("batch_size", c_int64), ("shuffle_seed", c_uint64), ("drop_last", c_int32),
                ("loss", c_int32), ("eval_batch_size", c_int64)]


class FitEventStruct(Structure):
    _fields_ = [("kind", c_int32), ("reserved", c_int32), ("epoch", c_int64), ("step", c_int64),
                ("global_step", c_int64), ("batch_size", c_int64), ("loss", c_double),
                ("samples_per_second", c_double), ("elapsed_seconds", c_double), ("validation_loss", c_double),
                ("validation_accuracy", c_double)]


class FitSummaryStruct(Structure):
    _fields_ = [("steps", c_int64), ("epochs_completed", c_int64), ("stopped_early", c_int32),
                ("reserved", c_int32), ("last_loss", c_double), ("last_epoch_loss", c_double),
                ("validation_loss", c_double), ("validation_accuracy", c_double), ("samples", c_int64),
                ("seconds", c_double)]


class RuntimeInfoStruct(Structure):
    _fields_ = [("blas_core", c_char * 32), ("blas_detected_core", c_char * 32), ("blas_config", c_char * 128),
                ("blas_core_by_environment", c_int32), ("blas_core_by_bndrop", c_int32),
                ("blas_loaded_by_host", c_int32), ("blas_threads", c_int32), ("threads", c_int32),
                ("simd_width", c_int32), ("kernel_simd_width", c_int32), ("subnormals_in_double", c_int32),
                ("reserved", c_int32 * 8)]


FIT_CALLBACK = CFUNCTYPE(c_int32, POINTER(FitEventStruct), c_void_p)

# ----------------------------------------------------------------------------------------- prototypes
# Handles are c_void_p; data buffers are c_void_p too (numpy arrays pass their address).
status = c_int32
P = c_void_p
P_SIZE = POINTER(c_size_t)
P_I64 = POINTER(c_int64)
P_I32 = POINTER(c_int32)
P_F32 = POINTER(c_float)
P_F64 = POINTER(c_double)
P_P = POINTER(c_void_p)

PROTOTYPES = {
    "bnd_version_number": (c_uint32, []),
    "bnd_version_string": (c_char_p, []),
    "bnd_status_string": (c_char_p, [c_int32]),
    "bnd_last_error": (c_char_p, []),
    "bnd_clear_last_error": (None, []),
    "bnd_batchnorm_default_params": (BatchNormParams, []),
    "bnd_conv2d_default_params": (Conv2dParams, [c_int64, c_int64]),
    "bnd_cross_entropy_default_params": (CrossEntropyParams, []),
    "bnd_avgpool2d_default_params": (AvgPool2dParams, [c_int64]),
    "bnd_maxpool2d_default_params": (MaxPool2dParams, [c_int64]),
    "bnd_sgd_default_params": (SGDParams, []),
    "bnd_adam_default_params": (AdamParams, []),
    "bnd_adamw_default_params": (AdamParams, []),
    "bnd_net_create": (status, [P, c_size_t, P_P]),
    "bnd_net_free": (None, [P]),
    "bnd_net_add_linear": (status, [P, c_int64]),
    "bnd_net_add_conv2d": (status, [P, c_int64, c_int64, c_int64, c_int64]),
    "bnd_net_add_conv2d_v2": (status, [P, POINTER(Conv2dParams)]),
    "bnd_net_add_relu": (status, [P]),
    "bnd_net_add_avgpool2d": (status, [P, c_int64, c_int64]),
    "bnd_net_add_maxpool2d": (status, [P, c_int64, c_int64]),
    "bnd_net_add_avgpool2d_v2": (status, [P, POINTER(AvgPool2dParams)]),
    "bnd_net_add_maxpool2d_v2": (status, [P, POINTER(MaxPool2dParams)]),
    "bnd_net_add_flatten": (status, [P]),
    "bnd_net_add_batchnorm": (status, [P, POINTER(BatchNormParams)]),
    "bnd_net_add_dropout": (status, [P, c_float]),
    "bnd_net_seed": (status, [P, c_uint64]),
    "bnd_net_set_training": (status, [P, c_int32]),
    "bnd_net_is_training": (status, [P, P_I32]),
    "bnd_net_input_shape": (status, [P, P_I64, c_size_t, P_SIZE]),
    "bnd_net_output_shape": (status, [P, P_I64, c_size_t, P_SIZE]),
    "bnd_net_input_count": (status, [P, P_SIZE]),
    "bnd_net_output_count": (status, [P, P_SIZE]),
    "bnd_net_layer_count": (status, [P, P_SIZE]),
    "bnd_net_layer_type": (status, [P, c_size_t, c_char_p, c_size_t]),
    "bnd_net_layer_output_shape": (status, [P, c_size_t, P_I64, c_size_t, P_SIZE]),
    "bnd_net_tensor_count": (status, [P, P_SIZE]),
    "bnd_net_tensor_name": (status, [P, c_size_t, c_char_p, c_size_t]),
    "bnd_net_tensor_numel": (status, [P, c_char_p, P_SIZE]),
    "bnd_net_tensor_shape": (status, [P, c_char_p, P_I64, c_size_t, P_SIZE]),
    "bnd_net_tensor_is_parameter": (status, [P, c_char_p, P_I32]),
    "bnd_net_set_tensor": (status, [P, c_char_p, P, c_size_t]),
    "bnd_net_get_tensor": (status, [P, c_char_p, P, c_size_t]),
    "bnd_net_get_tensor_int64": (status, [P, c_char_p, P_I64]),
    "bnd_net_set_tensor_int64": (status, [P, c_char_p, c_int64]),
    "bnd_net_save": (status, [P, c_char_p]),
    "bnd_net_load": (status, [c_char_p, P_P]),
    "bnd_net_load_weights": (status, [P, c_char_p]),
    "bnd_optimizer_save": (status, [P, c_char_p]),
    "bnd_optimizer_load": (status, [P, c_char_p]),
    "bnd_net_get_grad": (status, [P, c_char_p, P, c_size_t]),
    "bnd_net_set_grad": (status, [P, c_char_p, P, c_size_t]),
    "bnd_net_forward": (status, [P, P, c_int64, P, c_size_t]),
    "bnd_net_zero_grad": (status, [P]),
    "bnd_net_backward": (status, [P, P, c_int64, P, c_size_t]),
    "bnd_net_get_layer_output": (status, [P, c_size_t, P, c_size_t, P_SIZE]),
    "bnd_net_fold_batchnorm": (status, [P, P_P]),
    "bnd_net_predict_mc_dropout": (status, [P, P, c_int64, c_int64, c_uint64, P, P, c_size_t]),
    "bnd_optimizer_create_sgd": (status, [P, POINTER(SGDParams), P_P]),
    "bnd_optimizer_create_adam": (status, [P, POINTER(AdamParams), P_P]),
    "bnd_optimizer_step": (status, [P]),
    "bnd_optimizer_free": (None, [P]),
    "bnd_loss_cross_entropy": (status, [P, P, c_int64, c_int64, P_F32, P]),
    "bnd_loss_mse": (status, [P, P, c_size_t, P_F32, P]),
    "bnd_loss_cross_entropy_v2": (status, [P, P, c_int64, c_int64, POINTER(CrossEntropyParams), P_F32, P]),
    "bnd_loss_mse_v2": (status, [P, P, c_size_t, c_int32, P_F32, P]),
    "bnd_net_train_step_classification_v2": (status, [P, P, P, P, c_int64, POINTER(CrossEntropyParams), P_F32]),
    "bnd_net_train_step_regression_v2": (status, [P, P, P, P, c_int64, c_int32, P_F32]),
    "bnd_net_train_step_classification": (status, [P, P, P, P, c_int64, P_F32]),
    "bnd_net_train_step_regression": (status, [P, P, P, P, c_int64, P_F32]),
    "bnd_nets_train_step_classification": (status, [P_P, P_P, c_int64, P, P, c_int64, P_F32, P]),
    "bnd_nets_train_step_regression": (status, [P_P, P_P, c_int64, P, P, c_int64, P_F32, P]),
    "bnd_dataset_load_idx": (status, [c_char_p, c_char_p, P_P]),
    "bnd_dataset_load_dir": (status, [c_char_p, c_int32, P_P]),
    "bnd_dataset_from_labels": (status, [P, P, c_size_t, P, c_int64, c_int64, P_P]),
    "bnd_dataset_from_targets": (status, [P, P, c_size_t, P, c_int64, c_int64, P_P]),
    "bnd_dataset_free": (None, [P]),
    "bnd_dataset_info": (status, [P, P_I64, P_I64, P_I64]),
    "bnd_dataset_sample_shape": (status, [P, P_I64, c_size_t, P_SIZE]),
    "bnd_dataset_reshape": (status, [P, P, c_size_t]),
    "bnd_dataset_get": (status, [P, c_int64, c_int64, P, c_size_t, P, c_size_t, P, c_size_t]),
    "bnd_loader_create": (status, [P, c_int64, c_int32, c_uint64, c_int32, P_P]),
    "bnd_loader_free": (None, [P]),
    "bnd_loader_next": (status, [P, P_P, P_P, P_P, P_I64]),
    "bnd_loader_batches_per_epoch": (status, [P, P_I64]),
    "bnd_fit_default_params": (FitParams, []),
    "bnd_fit": (status, [P, P, P, P, POINTER(FitParams), FIT_CALLBACK, c_void_p, POINTER(FitSummaryStruct)]),
    "bnd_evaluate": (status, [P, P, c_int64, P_F64, P_F64]),
    "bnd_get_runtime_info": (status, [POINTER(RuntimeInfoStruct)]),
    "bnd_set_num_threads": (status, [c_int32]),
    "bnd_get_num_threads": (c_int32, []),
}


# ----------------------------------------------------------------------------------------- discovery

def _checkout_library():
    """<repo>/.build/release/libbndrop.so when this file is <repo>/bindings/python/bndrop/_lib.py."""
    here = Path(__file__).resolve()
    if len(here.parents) < 4 or here.parents[1].name != "python" or here.parents[2].name != "bindings":
        return None
    return here.parents[3] / ".build" / "release" / "libbndrop.so"


def _standard_dirs():
    dirs = ["/usr/local/lib"]
    multiarch = getattr(sys.implementation, "_multiarch", None)
    if multiarch:
        dirs += [f"/usr/local/lib/{multiarch}", f"/usr/lib/{multiarch}"]
    dirs += ["/usr/lib", os.path.join(sys.prefix, "lib")]
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _candidates():
    """(what is tried, what to dlopen), in search order after the environment variable; a target None
    means there was nothing to try, and `what` then says why when it has a colon."""
    found = ctypes.util.find_library("bndrop")
    yield ("ctypes.util.find_library('bndrop')", found)
    for name in ("libbndrop.so.0", "libbndrop.so"):
        yield (f"the dynamic loader's search for {name}", name)
    for d in _standard_dirs():
        for name in ("libbndrop.so.0", "libbndrop.so"):
            path = os.path.join(d, name)
            yield (path, path)
    checkout = _checkout_library()
    if checkout is None:
        yield (f"the checkout's build folder: none, this package ({Path(__file__).parent}) is not inside a "
               f"checkout", None)
    else:
        yield (f"the checkout's build folder, {checkout}", str(checkout))


def _declare(lib, where):
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"bndrop: the library {where} lacks {name}: it is older than this binding, which "
                              f"needs version {MIN_VERSION} or a later {HEADER_MAJOR}.x") from None
        fn.restype = restype
        fn.argtypes = argtypes
    number = lib.bnd_version_number()
    if number // 10000 != HEADER_MAJOR or number < MIN_VERSION_NUMBER:
        raise ImportError(f"bndrop: the library {where} is version {lib.bnd_version_string().decode()}; this "
                          f"binding needs {MIN_VERSION} or a later {HEADER_MAJOR}.x")
    return lib


def load():
    """Returns (the CDLL with every prototype declared, the path or name it was loaded from)."""
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            lib = ctypes.CDLL(env)
        except OSError as error:
            raise ImportError(f"bndrop: cannot load the library named by {ENV_VAR}={env}: {error}. Unset "
                              f"{ENV_VAR} to look in the installed and build locations instead.") from None
        return _declare(lib, f"{env} (from {ENV_VAR})"), env
    tried = [f"{ENV_VAR}: not set"]
    for what, target in _candidates():
        if target is None:
            tried.append(what if ": " in what else f"{what}: nothing found")
            continue
        if os.sep in target and not os.path.exists(target):
            tried.append(f"{what}: no such file")
            continue
        try:
            lib = ctypes.CDLL(target)
        except OSError as error:
            tried.append(f"{what}: {error}")
            continue
        return _declare(lib, target), target
    raise ImportError("bndrop: cannot find libbndrop.so. Tried, in order:\n  " + "\n  ".join(tried)
                      + f"\nBuild it with `make` in the bndrop checkout, install it, or set {ENV_VAR} to its path.")


lib, library_path = load()

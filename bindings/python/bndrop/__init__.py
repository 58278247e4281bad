"""bndrop: neural networks with batch normalization and dropout that compute PyTorch's numbers
(CPU, float32), from Python through libbndrop.so's C API (ctypes; numpy arrays in and out).

    import bndrop
    net = bndrop.Net((784,), seed=0)
    net.add_linear(48).add_batchnorm().add_relu().add_linear(10)
    opt = bndrop.SGD(net, lr=0.01)
    loss = net.train_step(opt, x, labels=y)

The library is found through $BNDROP_LIBRARY, then the installed libbndrop.so, then the build folder of
the checkout this package lives in (see bndrop._lib); library_path says which one was loaded.
"""
from ._lib import library_path
from .data import Dataset, DatasetInfo, Loader
from .errors import (BndropError, BndropIOError, FormatError, InternalError, InvalidArgumentError, NumericError,
                     OutOfMemoryError, ShapeError, StateError, Status)
from .losses import cross_entropy, mse
from .net import IncompatibleKeys, LayerInfo, Net
from .optim import SGD, Adam, AdamW, Optimizer
from .runtime import get_num_threads, runtime_info, set_num_threads, version, version_number
from .training import Evaluation, FitEvent, FitSummary, evaluate, fit, train_steps

__version__ = "0.1.0"

__all__ = [
    "Net", "LayerInfo", "IncompatibleKeys", "Optimizer", "SGD", "Adam", "AdamW", "cross_entropy", "mse",
    "Dataset", "DatasetInfo", "Loader", "fit", "evaluate", "train_steps", "FitEvent", "FitSummary", "Evaluation",
    "runtime_info", "set_num_threads", "get_num_threads", "version", "version_number", "library_path",
    "Status", "BndropError", "InvalidArgumentError", "ShapeError", "StateError", "BndropIOError", "FormatError",
    "OutOfMemoryError", "NumericError", "InternalError",
]

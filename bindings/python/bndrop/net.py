"""Net: a feed-forward network (PyTorch's nn.Sequential) over bnd_net."""
import ctypes
import math
import os
import weakref
from typing import NamedTuple

import numpy as np

from ._lib import lib
from ._support import (Handle, address, batch_of, c_shape, empty, expect_shape, floats, i64, integer,
                       labels_array, new_handle, number, plain, read_count, read_name, read_shape, shape_tuple, u64)
from .errors import InvalidArgumentError, ShapeError, Status, check


class LayerInfo(NamedTuple):
    index: int
    type: str             # PyTorch's class name: "Linear", "BatchNorm1d", ...
    output_shape: tuple   # one sample's output shape


class IncompatibleKeys(NamedTuple):
    """What load_state_dict returns, as PyTorch's: names it did not set, and names it did not know."""
    missing_keys: list
    unexpected_keys: list


def _square(value, what):
    """A kernel size, stride or padding: an int, or a pair of equal ints (only square ones exist)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise InvalidArgumentError(f"{what} = {tuple(value)}: only square (equal) sizes are supported")
        value = value[0]
    return i64(value, what, InvalidArgumentError)


def _pool_stride(stride, kernel_size):
    """A pool's stride for the C API, where 0 means the kernel size: None does; 0 is PyTorch's error."""
    if stride is None:
        return 0
    value = _square(stride, "stride")
    if value == 0:
        raise InvalidArgumentError("stride should not be zero")
    return value


def _whole_number(value, name):
    """The one whole number an int64 entry (num_batches_tracked) takes: an integer, or a whole float."""
    a = np.asarray(plain(value))
    if a.size != 1:
        raise ShapeError(f"{name!r} takes one number, got shape {tuple(a.shape)}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name!r} takes a whole number, got dtype {a.dtype}")
    v = a.reshape(()).item()
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise InvalidArgumentError(f"{name!r} takes a non-negative whole number, got {v}")
        v = int(v)
    if not 0 <= v <= 2**63 - 1:
        raise InvalidArgumentError(f"{name!r} takes a non-negative whole number below 2^63, got {v}")
    return v


def _name(name):
    if not isinstance(name, str):
        raise TypeError(f"a tensor name must be a str, not {type(name).__name__}")
    if "\0" in name:
        raise InvalidArgumentError(f"tensor name {name!r} contains a NUL character")
    return name.encode()


class Net(Handle):
    """A network taking samples of `sample_shape` (one sample, without the batch: (784,) or (1, 28, 28)),
    built layer by layer with the add_* methods, whose parameters are drawn from `seed` as PyTorch
    initialises them. It starts in train mode.

    Tensors are reached by PyTorch state_dict names ("0.weight", "1.running_mean", ...); arrays go in as
    anything numpy can turn into float32 and come out as new float32 arrays of shape (N, *sample shape).
    Close it with close() or a with block, or let it be collected; the optimizers made for it are closed
    with it.
    """

    _kind = "Net"
    _free = lib.bnd_net_free

    def __init__(self, sample_shape, seed=0):
        dims = shape_tuple(sample_shape, "sample_shape")
        seed = u64(seed, "seed")
        super().__init__(new_handle(lib.bnd_net_create, c_shape(dims), len(dims), call="bnd_net_create"))
        self._optimizers = weakref.WeakSet()
        self._input_shape = read_shape(lib.bnd_net_input_shape, self._ptr, call="bnd_net_input_shape")
        self._output_shape = self._input_shape
        if seed:
            self.seed(seed)

    @classmethod
    def _adopt(cls, handle):
        """A Net owning `handle`, a bnd_net the library made (loaded or folded)."""
        net = cls.__new__(cls)
        Handle.__init__(net, handle)
        net._optimizers = weakref.WeakSet()
        net._input_shape = read_shape(lib.bnd_net_input_shape, net._ptr, call="bnd_net_input_shape")
        net._output_shape = read_shape(lib.bnd_net_output_shape, net._ptr, call="bnd_net_output_shape")
        return net

    @classmethod
    def load(cls, path):
        """A net rebuilt from a checkpoint bndrop saved (layers, tensors, seed, mode, dropout state)."""
        return cls._adopt(new_handle(lib.bnd_net_load, os.fsencode(path), call="bnd_net_load"))

    def save(self, path):
        """Writes the net to a safetensors checkpoint at `path`, atomically (a failed save leaves the
        old file). PyTorch reads its tensors: load_state_dict(safetensors.torch.load_file(path))."""
        self._call(lib.bnd_net_save, os.fsencode(path))

    def load_weights(self, path):
        """Fills this net's tensors from a safetensors file with its state_dict names (e.g. one written
        by safetensors.torch.save_file(model.state_dict(), path)); strict: every name, the same shapes."""
        self._call(lib.bnd_net_load_weights, os.fsencode(path))

    def _call(self, fn, *args):
        with self._use() as p:
            check(fn(p, *args), fn.__name__)

    def _release(self):
        # An optimizer must not outlive its net's handle: close them first.
        for opt in list(getattr(self, "_optimizers", ())):
            opt._release()
        super()._release()

    # ------------------------------------------------------------------------------- building

    def _add(self, fn, *args):
        with self._use() as p:
            check(fn(p, *args), fn.__name__)
            self._output_shape = read_shape(lib.bnd_net_output_shape, p, call="bnd_net_output_shape")
        return self

    def add_linear(self, out_features):
        """nn.Linear(in, out_features) with in taken from the current shape (flat: add_flatten first)."""
        return self._add(lib.bnd_net_add_linear, i64(out_features, "out_features", InvalidArgumentError))

    def add_conv2d(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1):
        """nn.Conv2d(in, out_channels, kernel_size, stride, padding, dilation, groups) on a (C, H, W)
        shape; square kernels, zero padding, with bias."""
        params = lib.bnd_conv2d_default_params(i64(out_channels, "out_channels", InvalidArgumentError),
                                               _square(kernel_size, "kernel_size"))
        params.stride = _square(stride, "stride")
        params.padding = _square(padding, "padding")
        params.dilation = _square(dilation, "dilation")
        params.groups = i64(groups, "groups", InvalidArgumentError)
        return self._add(lib.bnd_net_add_conv2d_v2, ctypes.byref(params))

    def add_relu(self):
        return self._add(lib.bnd_net_add_relu)

    def add_avgpool2d(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
        """nn.AvgPool2d with PyTorch's arguments (square windows); stride None means kernel_size."""
        params = lib.bnd_avgpool2d_default_params(_square(kernel_size, "kernel_size"))
        params.stride = _pool_stride(stride, kernel_size)
        params.padding = _square(padding, "padding")
        params.ceil_mode = 1 if ceil_mode else 0
        params.count_include_pad = 1 if count_include_pad else 0
        if divisor_override is not None:
            params.divisor_override = i64(divisor_override, "divisor_override", InvalidArgumentError)
            if params.divisor_override == 0:
                raise InvalidArgumentError("divisor must be not zero")
        return self._add(lib.bnd_net_add_avgpool2d_v2, ctypes.byref(params))

    def add_maxpool2d(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        """nn.MaxPool2d with PyTorch's arguments (square windows, no return_indices); stride None means
        kernel_size."""
        params = lib.bnd_maxpool2d_default_params(_square(kernel_size, "kernel_size"))
        params.stride = _pool_stride(stride, kernel_size)
        params.padding = _square(padding, "padding")
        params.dilation = _square(dilation, "dilation")
        params.ceil_mode = 1 if ceil_mode else 0
        return self._add(lib.bnd_net_add_maxpool2d_v2, ctypes.byref(params))

    def add_flatten(self):
        """nn.Flatten(): (C, ...) -> (C * ...)."""
        return self._add(lib.bnd_net_add_flatten)

    def add_batchnorm(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        """nn.BatchNorm1d for a (C,) or (C, L) shape, nn.BatchNorm2d for (C, H, W), with PyTorch's
        arguments; momentum=None is PyTorch's cumulative moving average."""
        params = lib.bnd_batchnorm_default_params()
        params.eps = number(eps, "eps")
        if momentum is None:
            params.cumulative_average = 1
        else:
            params.momentum = number(momentum, "momentum")
        params.affine = 1 if affine else 0
        params.track_running_stats = 1 if track_running_stats else 0
        return self._add(lib.bnd_net_add_batchnorm, ctypes.byref(params))

    def add_dropout(self, p=0.5):
        """nn.Dropout(p): inverted dropout, masks drawn from the net's seed."""
        return self._add(lib.bnd_net_add_dropout, number(p, "p"))

    def seed(self, seed):
        """Re-initialises every layer as if the net had been built with `seed` (parameters, BatchNorm
        statistics, dropout masks; gradients zeroed). Optimizer state is not reset."""
        self._call(lib.bnd_net_seed, u64(seed, "seed"))
        return self

    # ------------------------------------------------------------------------------- modes

    @property
    def training(self):
        with self._use() as p:
            out = ctypes.c_int32()
            check(lib.bnd_net_is_training(p, ctypes.byref(out)), "bnd_net_is_training")
            return bool(out.value)

    @training.setter
    def training(self, mode):
        self._call(lib.bnd_net_set_training, 1 if mode else 0)

    def train(self, mode=True):
        """Train mode (model.train()); returns the net."""
        self.training = mode
        return self

    def eval(self):
        """Eval mode (model.eval()); returns the net."""
        return self.train(False)

    # ------------------------------------------------------------------------------- shapes and layers

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        return self._output_shape

    def __len__(self):
        with self._use() as p:
            return read_count(lib.bnd_net_layer_count, p, "bnd_net_layer_count")

    def _layer_index(self, index):
        index = integer(index, "layer index", -(1 << 63), (1 << 64) - 1)
        if index < 0:
            index += len(self)
            if index < 0:
                raise InvalidArgumentError(f"layer index {index - len(self)} is out of range for {len(self)} layers")
        return index

    def layer_type(self, index):
        """Layer `index`'s PyTorch class name ("Linear", "BatchNorm2d", ...)."""
        index = self._layer_index(index)
        with self._use() as p:
            return read_name(lib.bnd_net_layer_type, p, index, "bnd_net_layer_type")

    def layer_output_shape(self, index):
        index = self._layer_index(index)
        with self._use() as p:
            return read_shape(lib.bnd_net_layer_output_shape, p, index, call="bnd_net_layer_output_shape")

    @property
    def layers(self):
        """[LayerInfo(index, type, output_shape), ...]"""
        with self._use():
            return [LayerInfo(i, self.layer_type(i), self.layer_output_shape(i)) for i in range(len(self))]

    def __repr__(self):
        if self.closed:
            return "Net(closed)"
        lines = [f"  ({layer.index}) {layer.type} -> {layer.output_shape}" for layer in self.layers]
        mode = "train" if self.training else "eval"
        return f"Net(input {self._input_shape}, {mode} mode" + ("\n" + "\n".join(lines) + "\n" if lines else "") + ")"

    # ------------------------------------------------------------------------------- running

    def forward(self, x):
        """The output for a batch x of shape (N, *input_shape), in the current mode: an array of shape
        (N, *output_shape). In train mode BatchNorm updates its running statistics."""
        x = floats(x, "input")
        with self._use() as p:
            n = batch_of(x, self._input_shape, "the input")
            out = empty((n,) + self._output_shape)
            check(lib.bnd_net_forward(p, address(x), n, address(out), out.size), "bnd_net_forward")
            return out

    __call__ = forward

    def zero_grad(self):
        """Sets every parameter gradient to zero."""
        self._call(lib.bnd_net_zero_grad)

    def backward(self, grad_output, need_input_grad=True):
        """Back-propagates grad_output (shape (N, *output_shape), N the last forward's batch), adding the
        parameter gradients to the accumulated ones. Returns d loss / d input, or None when
        need_input_grad is false."""
        g = floats(grad_output, "grad_output")
        with self._use() as p:
            n = batch_of(g, self._output_shape, "grad_output")
            grad_input = empty((n,) + self._input_shape) if need_input_grad else None
            check(lib.bnd_net_backward(p, address(g), n, None if grad_input is None else address(grad_input),
                                       0 if grad_input is None else grad_input.size), "bnd_net_backward")
            return grad_input

    def layer_output(self, index):
        """Layer `index`'s output in the last forward pass: an array of shape (N, *layer output shape)."""
        index = self._layer_index(index)
        with self._use() as p:
            needed = ctypes.c_size_t()
            probe = ctypes.c_float()
            code = lib.bnd_net_get_layer_output(p, index, ctypes.addressof(probe), 0, ctypes.byref(needed))
            if code != Status.SHAPE:
                check(code, "bnd_net_get_layer_output")
            lib.bnd_clear_last_error()
            shape = self.layer_output_shape(index)
            sample = int(np.prod(shape, dtype=np.int64))
            out = empty((needed.value // sample,) + shape)
            check(lib.bnd_net_get_layer_output(p, index, address(out), out.size, None), "bnd_net_get_layer_output")
            return out

    # ------------------------------------------------------------------------------- inference

    def fold_batchnorm(self):
        """A new, independent eval-mode Net in which every BatchNorm that directly follows a Linear or
        Conv2d and tracks running statistics is folded into that layer and removed (W' = W·s,
        b' = (b - running_mean)·s + beta, s = gamma / sqrt(running_var + eps)); other layers are copied as
        they are. Its eval outputs agree with this net's to float rounding. Removing layers renumbers
        the later ones, so its tensor names differ. This net is not changed."""
        with self._use() as p:
            handle = new_handle(lib.bnd_net_fold_batchnorm, p, call="bnd_net_fold_batchnorm")
        return Net._adopt(handle)

    def predict_mc_dropout(self, x, passes, seed=0):
        """Monte-Carlo dropout: `passes` forward passes of the batch x (shape (N, *input_shape)) with
        Dropout on (fresh masks drawn from `seed` alone) and BatchNorm in eval mode. Returns (mean,
        variance), each of shape (N, *output_shape): the mean and the population variance (divided by
        passes) of each output over the passes. The net's tensors, mode and dropout state are as
        before; the last forward pass is discarded (layer_output and backward need a new forward)."""
        x = floats(x, "input")
        passes = i64(passes, "passes", error=InvalidArgumentError)
        seed = u64(seed, "seed")
        with self._use() as p:
            n = batch_of(x, self._input_shape, "the input")
            mean = empty((n,) + self._output_shape)
            variance = empty((n,) + self._output_shape)
            check(lib.bnd_net_predict_mc_dropout(p, address(x), n, passes, seed, address(mean), address(variance),
                                                 mean.size), "bnd_net_predict_mc_dropout")
            return mean, variance

    # ------------------------------------------------------------------------------- training

    def train_step(self, optimizer, x, labels=None, targets=None, weight=None, ignore_index=-100,
                   label_smoothing=0.0, reduction="mean"):
        """One step: zero_grad, forward in train mode, loss (cross-entropy with `labels`, with
        F.cross_entropy's weight, ignore_index, label_smoothing and reduction; the squared error with
        `targets` of shape (N, *output_shape), with reduction), backward, optimizer step. Returns the
        batch's loss."""
        from .losses import cross_entropy_params, reduction_value
        from .optim import Optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a bndrop optimizer, not {type(optimizer).__name__}")
        if (labels is None) == (targets is None):
            raise TypeError("train_step needs exactly one of labels= (classification) or targets= (regression)")
        if optimizer.net is not self:
            raise InvalidArgumentError("the optimizer was created for a different network")
        x = floats(x, "input")
        loss = ctypes.c_float()
        with self._use() as p, optimizer._use() as o:
            n = batch_of(x, self._input_shape, "the input")
            if labels is not None:
                y = labels_array(labels, "labels")
                expect_shape(y, (n,), "labels")
                params, keep = cross_entropy_params(weight, ignore_index, label_smoothing, reduction,
                                                    classes=int(np.prod(self._output_shape)))
                check(lib.bnd_net_train_step_classification_v2(p, o, address(x), address(y), n, ctypes.byref(params),
                                                               ctypes.byref(loss)),
                      "bnd_net_train_step_classification_v2")
            else:
                t = floats(targets, "targets")
                expect_shape(t, (n,) + self._output_shape, "targets")
                check(lib.bnd_net_train_step_regression_v2(p, o, address(x), address(t), n, reduction_value(reduction),
                                                           ctypes.byref(loss)),
                      "bnd_net_train_step_regression_v2")
        return loss.value

    # ------------------------------------------------------------------------------- tensors by name

    def tensor_names(self):
        """Every state_dict name (parameters and buffers), in PyTorch's order."""
        with self._use() as p:
            n = read_count(lib.bnd_net_tensor_count, p, "bnd_net_tensor_count")
            return [read_name(lib.bnd_net_tensor_name, p, i, "bnd_net_tensor_name") for i in range(n)]

    def tensor_shape(self, name):
        with self._use() as p:
            return read_shape(lib.bnd_net_tensor_shape, p, _name(name), call="bnd_net_tensor_shape")

    def is_parameter(self, name):
        """True for a trainable parameter, False for a buffer (running statistics, num_batches_tracked)."""
        with self._use() as p:
            out = ctypes.c_int32()
            check(lib.bnd_net_tensor_is_parameter(p, _name(name), ctypes.byref(out)), "bnd_net_tensor_is_parameter")
            return bool(out.value)

    def _read(self, fn, name):
        key = _name(name)
        with self._use() as p:
            shape = read_shape(lib.bnd_net_tensor_shape, p, key, call="bnd_net_tensor_shape")
            if shape == () and fn is lib.bnd_net_get_tensor:  # num_batches_tracked: int64, as in PyTorch
                value = ctypes.c_int64()
                check(lib.bnd_net_get_tensor_int64(p, key, ctypes.byref(value)), "bnd_net_get_tensor_int64")
                return np.array(value.value, dtype=np.int64)
            out = empty(shape)
            check(fn(p, key, address(out), out.size), fn.__name__)
        return out

    def _write(self, fn, name, value):
        key = _name(name)
        with self._use() as p:
            shape = read_shape(lib.bnd_net_tensor_shape, p, key, call="bnd_net_tensor_shape")
            if shape == () and fn is lib.bnd_net_set_tensor:  # num_batches_tracked: int64, exactly
                check(lib.bnd_net_set_tensor_int64(p, key, _whole_number(value, name)), "bnd_net_set_tensor_int64")
                return
            a = floats(value, f"the value for {name!r}")
            if shape == ():
                if a.size != 1:
                    raise ShapeError(f"{name!r} takes one number, got shape {tuple(a.shape)}")
            else:
                expect_shape(a, shape, f"the value for {name!r}")
            check(fn(p, key, address(a), a.size), fn.__name__)

    def get_tensor(self, name):
        """A copy of tensor `name`, in its shape (num_batches_tracked: a 0-d int64 array)."""
        return self._read(lib.bnd_net_get_tensor, name)

    def set_tensor(self, name, value):
        """Replaces tensor `name` with `value`, which must have its shape."""
        self._write(lib.bnd_net_set_tensor, name, value)

    def grad(self, name):
        """A copy of parameter `name`'s accumulated gradient (PyTorch's param.grad)."""
        return self._read(lib.bnd_net_get_grad, name)

    def set_grad(self, name, value):
        """Overwrites parameter `name`'s gradient, e.g. to step an optimizer on gradients from elsewhere."""
        self._write(lib.bnd_net_set_grad, name, value)

    def state_dict(self):
        """{name: array} for every parameter and buffer, in PyTorch's order; the arrays are copies."""
        with self._use():
            return {name: self.get_tensor(name) for name in self.tensor_names()}

    def load_state_dict(self, state_dict, strict=True):
        """Sets tensors from a mapping name -> array (e.g. a PyTorch nn.Sequential's state_dict(), whose
        CPU tensors numpy reads directly). strict: every name must be known and every tensor given
        (InvalidArgumentError otherwise). Shapes must match. All or nothing: when any value is refused,
        the net keeps the tensors it had. Returns IncompatibleKeys(missing_keys, unexpected_keys)."""
        with self._use():
            names = self.tensor_names()
            missing = [n for n in names if n not in state_dict]
            unexpected = [k for k in state_dict if k not in names]
            if strict and (missing or unexpected):
                parts = []
                if missing:
                    parts.append("missing: " + ", ".join(missing))
                if unexpected:
                    parts.append("unexpected: " + ", ".join(map(str, unexpected)))
                raise InvalidArgumentError("load_state_dict(strict=True): " + "; ".join(parts))
            before = self.state_dict()
            try:
                for name in names:
                    if name in state_dict:
                        self.set_tensor(name, state_dict[name])
            except BaseException:
                for name, value in before.items():
                    self.set_tensor(name, value)
                raise
            return IncompatibleKeys(missing, unexpected)

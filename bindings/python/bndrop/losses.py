"""The two losses, as torch.nn.functional's (with their weight, ignore_index, label_smoothing and
'mean' or 'sum' reduction); each also gives its gradient."""
import ctypes

from ._lib import lib
from ._support import address, empty, expect_shape, floats, i64, labels_array, number
from .errors import InvalidArgumentError, ShapeError, check


_REDUCTIONS = {"mean": 0, "sum": 1}   # BND_REDUCTION_MEAN, BND_REDUCTION_SUM


def reduction_value(reduction):
    """A bnd_reduction for PyTorch's reduction name."""
    if reduction not in _REDUCTIONS:
        raise InvalidArgumentError(f"reduction must be 'mean' or 'sum', got {reduction!r} ('none' is not offered)")
    return _REDUCTIONS[reduction]


def cross_entropy_params(weight, ignore_index, label_smoothing, reduction, classes):
    """bnd_cross_entropy_params for F.cross_entropy's arguments, and the weight array it points into
    (keep it alive for the call)."""
    params = lib.bnd_cross_entropy_default_params()
    w = None
    if weight is not None:
        w = floats(weight, "weight")
        expect_shape(w, (classes,), "weight")
        params.weight = ctypes.cast(address(w), ctypes.POINTER(ctypes.c_float))
        params.weight_count = w.size
    params.ignore_index = i64(ignore_index, "ignore_index", InvalidArgumentError)
    params.label_smoothing = number(label_smoothing, "label_smoothing")
    params.reduction = reduction_value(reduction)
    return params, w


def cross_entropy(logits, labels, need_grad=True, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """F.cross_entropy(logits, labels, weight, ignore_index=ignore_index, reduction=reduction,
    label_smoothing=label_smoothing) for logits of shape (N, C) and N integer labels in [0, C) (or
    ignore_index). Returns (loss, d loss / d logits), the gradient None when need_grad is false."""
    x = floats(logits, "logits")
    if x.ndim != 2:
        raise ShapeError(f"logits has shape {tuple(x.shape)}, expected (N, C)")
    y = labels_array(labels, "labels")
    expect_shape(y, (x.shape[0],), "labels")
    params, keep = cross_entropy_params(weight, ignore_index, label_smoothing, reduction, classes=x.shape[1])
    grad = empty(x.shape) if need_grad else None
    loss = ctypes.c_float()
    check(lib.bnd_loss_cross_entropy_v2(address(x), address(y), x.shape[0], x.shape[1], ctypes.byref(params),
                                        ctypes.byref(loss), None if grad is None else address(grad)),
          "bnd_loss_cross_entropy_v2")
    return loss.value, grad


def mse(prediction, target, need_grad=True, reduction="mean"):
    """F.mse_loss(prediction, target, reduction=reduction) for two arrays of the same shape (no
    broadcasting). Returns (loss, d loss / d prediction), the gradient None when need_grad is false."""
    p = floats(prediction, "prediction")
    t = floats(target, "target")
    expect_shape(t, p.shape, "target")
    grad = empty(p.shape) if need_grad else None
    loss = ctypes.c_float()
    check(lib.bnd_loss_mse_v2(address(p), address(t), p.size, reduction_value(reduction), ctypes.byref(loss),
                              None if grad is None else address(grad)), "bnd_loss_mse_v2")
    return loss.value, grad

"""The two losses, mean reduction, as torch.nn.functional's; each also gives its gradient."""
import ctypes

from ._lib import lib
from ._support import address, empty, expect_shape, floats, labels_array
from .errors import ShapeError, check


def cross_entropy(logits, labels, need_grad=True):
    """F.cross_entropy(logits, labels) for logits of shape (N, C) and N integer labels in [0, C).
    Returns (loss, d loss / d logits), the gradient None when need_grad is false."""
    x = floats(logits, "logits")
    if x.ndim != 2:
        raise ShapeError(f"logits has shape {tuple(x.shape)}, expected (N, C)")
    y = labels_array(labels, "labels")
    expect_shape(y, (x.shape[0],), "labels")
    grad = empty(x.shape) if need_grad else None
    loss = ctypes.c_float()
    check(lib.bnd_loss_cross_entropy(address(x), address(y), x.shape[0], x.shape[1], ctypes.byref(loss),
                                     None if grad is None else address(grad)), "bnd_loss_cross_entropy")
    return loss.value, grad


def mse(prediction, target, need_grad=True):
    """F.mse_loss(prediction, target) for two arrays of the same shape (no broadcasting).
    Returns (loss, d loss / d prediction), the gradient None when need_grad is false."""
    p = floats(prediction, "prediction")
    t = floats(target, "target")
    expect_shape(t, p.shape, "target")
    grad = empty(p.shape) if need_grad else None
    loss = ctypes.c_float()
    check(lib.bnd_loss_mse(address(p), address(t), p.size, ctypes.byref(loss), None if grad is None else address(grad)),
          "bnd_loss_mse")
    return loss.value, grad

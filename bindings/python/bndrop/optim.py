"""Optimizers over a net's parameters: SGD, Adam and AdamW, as torch.optim's."""
import ctypes
import os

from ._lib import lib
from ._support import Handle, new_handle, number
from .errors import InvalidArgumentError, check
from .net import Net


class Optimizer(Handle):
    """An optimizer over the parameters `net` has now (create it after the last add_*). It keeps the
    net alive and is closed with it; `net` is the Net it steps."""

    _kind = "optimizer"
    _free = lib.bnd_optimizer_free

    def __init__(self, net, create, params, call):
        if not isinstance(net, Net):
            raise TypeError(f"an optimizer needs a bndrop Net, not {type(net).__name__}")
        with net._use() as p:
            super().__init__(new_handle(create, p, ctypes.byref(params), call=call), lock=net._lock)
            self.net = net
            net._optimizers.add(self)

    def step(self):
        """One update from the accumulated gradients (optimizer.step())."""
        with self._use() as o:
            check(lib.bnd_optimizer_step(o), "bnd_optimizer_step")

    def zero_grad(self):
        """The net's zero_grad(), as optimizer.zero_grad(set_to_none=False)."""
        self.net.zero_grad()

    def save(self, path):
        """Writes the optimizer's state (momentum buffers, or Adam's step and moments) to a safetensors
        file, atomically; with Net.save it lets training resume bit for bit."""
        with self._use() as o:
            check(lib.bnd_optimizer_save(o, os.fsencode(path)), "bnd_optimizer_save")

    def load(self, path):
        """Replaces the state with one saved from an optimizer of the same kind over the same shapes."""
        with self._use() as o:
            check(lib.bnd_optimizer_load(o, os.fsencode(path)), "bnd_optimizer_load")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({args}{', closed' if self.closed else ''})"


class SGD(Optimizer):
    """torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov); lr defaults to 0.01, the C
    library's default (bnd_sgd_default_params)."""

    def __init__(self, net, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        params = lib.bnd_sgd_default_params()
        params.lr = number(lr, "lr")
        params.momentum = number(momentum, "momentum")
        params.dampening = number(dampening, "dampening")
        params.weight_decay = number(weight_decay, "weight_decay")
        params.nesterov = 1 if nesterov else 0
        self.defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                             nesterov=bool(nesterov))
        super().__init__(net, lib.bnd_optimizer_create_sgd, params, "bnd_optimizer_create_sgd")


def _adam_params(defaults, lr, betas, eps, weight_decay):
    params = defaults
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    params.lr = number(lr, "lr")
    params.beta1 = number(beta1, "betas[0]")
    params.beta2 = number(beta2, "betas[1]")
    params.eps = number(eps, "eps")
    params.weight_decay = number(weight_decay, "weight_decay")
    return params


class Adam(Optimizer):
    """torch.optim.Adam(lr, betas, eps, weight_decay), with its defaults (weight decay added to the
    gradient)."""

    def __init__(self, net, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        params = _adam_params(lib.bnd_adam_default_params(), lr, betas, eps, weight_decay)
        self.defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(net, lib.bnd_optimizer_create_adam, params, "bnd_optimizer_create_adam")


class AdamW(Optimizer):
    """torch.optim.AdamW(lr, betas, eps, weight_decay), with its defaults (decoupled weight decay,
    1e-2)."""

    def __init__(self, net, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        params = _adam_params(lib.bnd_adamw_default_params(), lr, betas, eps, weight_decay)
        self.defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(net, lib.bnd_optimizer_create_adam, params, "bnd_optimizer_create_adam")

"""The training loop: fit (shuffled mini-batches, a callback after every step and epoch) and evaluate."""
import ctypes
import math
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from typing import NamedTuple, Optional

from ._lib import FIT_CALLBACK, FitSummaryStruct, lib
from ._support import address, batch_of, expect_shape, floats, i64, labels_array, u64
from .data import Dataset
from .errors import InvalidArgumentError, check
from .net import Net
from .optim import Optimizer

LOSSES = {"auto": -1, "cross_entropy": 0, "mse": 1}


def _maybe(value):
    """NaN, the C API's "nothing to report", as None."""
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class FitEvent:
    """What fit's callback receives (bnd_fit_event). kind is "step" (after every optimizer step) or
    "epoch" (after every epoch and its validation)."""
    kind: str
    epoch: int                # 0-based
    step: int                 # step: index within the epoch; epoch: steps in the epoch
    global_step: int          # steps since fit began, this one included
    batch_size: int           # step: the batch's size; epoch: samples trained on in the epoch
    loss: float               # step: the batch's loss; epoch: the epoch's mean training loss
    samples_per_second: float
    elapsed_seconds: float
    validation_loss: Optional[float]      # epoch with a validation set, else None
    validation_accuracy: Optional[float]  # epoch with a labelled validation set, else None


@dataclass(frozen=True)
class FitSummary:
    """What fit returns (bnd_fit_summary)."""
    steps: int
    epochs_completed: int
    stopped_early: bool       # the callback stopped training before its end
    last_loss: float
    last_epoch_loss: Optional[float]
    validation_loss: Optional[float]
    validation_accuracy: Optional[float]
    samples: int
    seconds: float


class Evaluation(NamedTuple):
    loss: float
    accuracy: Optional[float]   # None for a regression dataset


def _event(e):
    return FitEvent("step" if e.kind == 0 else "epoch", e.epoch, e.step, e.global_step, e.batch_size, e.loss,
                    e.samples_per_second, e.elapsed_seconds, _maybe(e.validation_loss), _maybe(e.validation_accuracy))


def fit(net, optimizer, train, epochs=1, batch_size=64, shuffle_seed=0, drop_last=False, loss="auto",
        validation=None, eval_batch_size=256, callback=None):
    """Trains `net` with `optimizer` on the Dataset `train`: `epochs` epochs of mini-batches shuffled by
    `shuffle_seed`, each step zero_grad, forward in train mode, loss ("auto": cross-entropy for labels,
    MSE for targets), backward, optimizer step; `validation` (a Dataset) is evaluated after every epoch.

    callback(event) is called after every step and every epoch with a FitEvent; return a false value
    (False, 0) to stop training early. None (no return statement) goes on. An exception raised in the
    callback stops training and propagates from fit. The callback may use the net (an eval-mode forward
    to look at hidden values; its mode is put back afterwards) but cannot close the net, the optimizer
    or the datasets while fit runs. Returns a FitSummary; the net is left in the mode it was in."""
    if not isinstance(net, Net):
        raise TypeError(f"net must be a bndrop Net, not {type(net).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a bndrop optimizer, not {type(optimizer).__name__}")
    for what, data in (("train", train), ("validation", validation)):
        if not isinstance(data, Dataset) and not (what == "validation" and data is None):
            raise TypeError(f"{what} must be a bndrop Dataset, not {type(data).__name__}")
    if optimizer.net is not net:
        raise InvalidArgumentError("the optimizer was created for a different network")
    if loss not in LOSSES:
        raise InvalidArgumentError(f"loss must be one of {', '.join(map(repr, LOSSES))}, not {loss!r}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    params = lib.bnd_fit_default_params()
    params.epochs = i64(epochs, "epochs", InvalidArgumentError)
    params.batch_size = i64(batch_size, "batch_size")
    params.shuffle_seed = u64(shuffle_seed, "shuffle_seed")
    params.drop_last = 1 if drop_last else 0
    params.loss = LOSSES[loss]
    params.eval_batch_size = i64(eval_batch_size, "eval_batch_size")

    raised = []

    def trampoline(event_pointer, _user_data):
        try:
            was_training = net.training
            go_on = callback(_event(event_pointer.contents))
            if net.training != was_training:
                net.training = was_training
            return 0 if go_on is not None and not go_on else 1
        except BaseException as error:  # stop training, re-raised below once bnd_fit has returned
            raised.append(error)
            return 0

    c_callback = FIT_CALLBACK(trampoline) if callback is not None else FIT_CALLBACK()  # () is NULL
    summary = FitSummaryStruct()
    with net._pinned() as n, optimizer._pinned() as o, train._pinned() as t, \
            (validation._pinned() if validation is not None else nullcontext()) as v:
        code = lib.bnd_fit(n, o, t, v, ctypes.byref(params), c_callback, None, ctypes.byref(summary))
    if raised:
        raise raised[0]
    check(code, "bnd_fit")
    s = summary
    return FitSummary(s.steps, s.epochs_completed, bool(s.stopped_early), s.last_loss, _maybe(s.last_epoch_loss),
                      _maybe(s.validation_loss), _maybe(s.validation_accuracy), s.samples, s.seconds)


def evaluate(net, data, batch_size=256):
    """The mean loss (cross-entropy for labels, MSE for targets) and accuracy (None for regression) of
    `net` on the Dataset `data`, in eval mode (the mode is restored afterwards)."""
    if not isinstance(net, Net):
        raise TypeError(f"net must be a bndrop Net, not {type(net).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a bndrop Dataset, not {type(data).__name__}")
    loss, accuracy = ctypes.c_double(), ctypes.c_double()
    with net._use() as n, data._use() as d:
        check(lib.bnd_evaluate(n, d, i64(batch_size, "batch_size"), ctypes.byref(loss), ctypes.byref(accuracy)),
              "bnd_evaluate")
    return Evaluation(loss.value, _maybe(accuracy.value))


def train_steps(nets, optimizers, x, labels=None, targets=None):
    """One training step of each net (with its optimizer, in the same order) on the same batch, the
    steps running at the same time, one net per core (bnd_nets_train_step_*): the same results, bit for
    bit, as net.train_step for each in turn. The article trains its nets in pairs; a small net cannot
    use both cores in a step of its own. Exactly one of labels= (cross-entropy) or targets= (MSE,
    shape (N, *output_shape)). Returns the losses, in order.

    A refused call (a net or optimizer given twice, an optimizer of another net, nets of different
    sizes, bad input) raises and runs no step. A step that fails while running raises too, naming the
    net (nets[i]) in its message; the other nets' steps took place.
    """
    nets, optimizers = list(nets), list(optimizers)
    if not nets or len(nets) != len(optimizers):
        raise InvalidArgumentError(f"one optimizer per net is needed: {len(nets)} nets, {len(optimizers)} optimizers")
    for net, opt in zip(nets, optimizers):
        if not isinstance(net, Net) or not isinstance(opt, Optimizer):
            raise TypeError("train_steps needs bndrop nets and bndrop optimizers")
    if (labels is None) == (targets is None):
        raise TypeError("train_steps needs exactly one of labels= (classification) or targets= (regression)")
    x = floats(x, "input")
    n = batch_of(x, nets[0]._input_shape, "the input")
    with ExitStack() as stack:
        # Each handle's lock once, in one order for every caller (no two threads wait on each other).
        pointers = {}
        for handle in sorted({id(h): h for h in nets + optimizers}.values(), key=id):
            pointers[id(handle)] = stack.enter_context(handle._use())
        net_array = (ctypes.c_void_p * len(nets))(*[pointers[id(net)] for net in nets])
        opt_array = (ctypes.c_void_p * len(nets))(*[pointers[id(opt)] for opt in optimizers])
        losses = (ctypes.c_float * len(nets))()
        if labels is not None:
            y = labels_array(labels, "labels")
            expect_shape(y, (n,), "labels")
            check(lib.bnd_nets_train_step_classification(net_array, opt_array, len(nets), address(x), address(y), n,
                                                         losses, None), "bnd_nets_train_step_classification")
        else:
            t = floats(targets, "targets")
            expect_shape(t, (n,) + nets[0]._output_shape, "targets")
            check(lib.bnd_nets_train_step_regression(net_array, opt_array, len(nets), address(x), address(t), n,
                                                     losses, None), "bnd_nets_train_step_regression")
    return list(losses)

"""Errors become exceptions: a table of real bad calls, one or more per bnd_status, each checked for its
class (and the built-in it also is), its status, the C function, and bnd_last_error()'s text."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bndrop
from conftest import source_env
from bndrop import Status
from bndrop._lib import lib


def small_mlp():
    """(4,) -> Linear(3) -> BatchNorm1d -> ReLU -> Linear(2), as the C table's."""
    return bndrop.Net((4,)).add_linear(3).add_batchnorm().add_relu().add_linear(2)


def fresh_optimizer_then_grow():
    net = small_mlp()
    opt = bndrop.SGD(net)
    net.add_relu()
    opt.step()


def step_between_forward_and_backward():
    """PyTorch: out = net(x); opt.step(); out.backward(g) raises "modified by an inplace operation"."""
    net = small_mlp()
    opt = bndrop.SGD(net)
    net.forward(np.arange(16, dtype=np.float32).reshape(4, 4))
    opt.step()
    net.backward(np.ones((4, 2)))


def bad_idx(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(bytes([1, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7]))
    labels = tmp_path / "labels"
    labels.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 0]))
    bndrop.Dataset.load_idx(path, labels)


# (what, the bad call (given tmp_path), class, built-in base, status, C function, text in the message)
TABLE = [
    ("dropout p out of range", lambda t: bndrop.Net((4,)).add_dropout(1.5), bndrop.InvalidArgumentError,
     ValueError, Status.INVALID_ARGUMENT, "bnd_net_add_dropout", "between 0 and 1"),
    ("unknown tensor name", lambda t: small_mlp().get_tensor("9.weight"), bndrop.InvalidArgumentError,
     ValueError, Status.INVALID_ARGUMENT, "bnd_net_tensor_shape", "9.weight"),
    ("Nesterov without momentum", lambda t: bndrop.SGD(small_mlp(), nesterov=True), bndrop.InvalidArgumentError,
     ValueError, Status.INVALID_ARGUMENT, "bnd_optimizer_create_sgd", "Nesterov"),
    ("label out of range", lambda t: bndrop.cross_entropy(np.zeros((2, 4)), [0, 4]), bndrop.InvalidArgumentError,
     ValueError, Status.INVALID_ARGUMENT, "bnd_loss_cross_entropy_v2", "out of bounds"),
    ("label smoothing above 1", lambda t: bndrop.cross_entropy(np.zeros((2, 4)), [0, 1], label_smoothing=1.5),
     bndrop.InvalidArgumentError, ValueError, Status.INVALID_ARGUMENT, "bnd_loss_cross_entropy_v2", "label_smoothing"),
    ("Linear on an image shape", lambda t: bndrop.Net((1, 6, 6)).add_linear(3), bndrop.ShapeError, ValueError,
     Status.SHAPE, "bnd_net_add_linear", "Flatten"),
    ("BatchNorm training on one sample", lambda t: small_mlp().forward(np.ones((1, 4))), bndrop.ShapeError,
     ValueError, Status.SHAPE, "bnd_net_forward", "per channel"),
    ("kernel larger than the input", lambda t: bndrop.Net((1, 6, 6)).add_conv2d(2, 7), bndrop.ShapeError,
     ValueError, Status.SHAPE, "bnd_net_add_conv2d_v2", None),
    ("backward before forward", lambda t: small_mlp().backward(np.ones((4, 2))), bndrop.StateError, RuntimeError,
     Status.STATE, "bnd_net_backward", None),
    ("backward after an optimizer step", lambda t: step_between_forward_and_backward(), bndrop.StateError,
     RuntimeError, Status.STATE, "bnd_net_backward", "the parameters changed after the forward"),
    ("optimizer older than the last layer", lambda t: fresh_optimizer_then_grow(), bndrop.StateError,
     RuntimeError, Status.STATE, "bnd_optimizer_step", "after the last"),
    ("missing IDX file", lambda t: bndrop.Dataset.load_idx(t / "no-such-file", t / "no-such-labels"),
     bndrop.BndropIOError, OSError, Status.IO, "bnd_dataset_load_idx", "no-such-file"),
    ("missing IDX folder", lambda t: bndrop.Dataset.load_dir(t / "nothing-here"), bndrop.BndropIOError, OSError,
     Status.IO, "bnd_dataset_load_dir", "nothing-here"),
    ("IDX file with a bad magic number", bad_idx, bndrop.FormatError, ValueError, Status.FORMAT,
     "bnd_dataset_load_idx", "bad-magic"),
    ("NaN in a training input",
     lambda t: (lambda n: n.train_step(bndrop.SGD(n), np.full((4, 4), np.nan), labels=[0, 1, 0, 1]))(small_mlp()),
     bndrop.NumericError, ArithmeticError, Status.NUMERIC, "bnd_net_train_step_classification_v2", None),
    ("infinite regression target",
     lambda t: (lambda n: n.train_step(bndrop.SGD(n), np.ones((4, 4)), targets=np.full((4, 2), np.inf)))(small_mlp()),
     bndrop.NumericError, ArithmeticError, Status.NUMERIC, "bnd_net_train_step_regression_v2", None),
]


@pytest.mark.parametrize("what, call, cls, builtin, status, function, needle", TABLE, ids=[row[0] for row in TABLE])
def test_bad_call_raises_its_class(tmp_path, what, call, cls, builtin, status, function, needle):
    lib.bnd_clear_last_error()
    with pytest.raises(cls) as info:
        call(tmp_path)
    e = info.value
    assert type(e) is cls
    assert isinstance(e, bndrop.BndropError) and isinstance(e, builtin)
    assert e.status == status and e.call == function
    assert e.message and str(e) == e.message
    assert e.message == lib.bnd_last_error().decode(), "the message is bnd_last_error()'s text"
    assert e.status_name.startswith(f"BND_ERR_{status.name}")
    if needle:
        assert needle in e.message


def test_out_of_memory_from_a_real_allocation():
    """An allocation that really fails (a 46340 x 46340 Linear weight, 8.6 GB, under a 4 GB address-space
    limit, in a child process) is OutOfMemoryError, a MemoryError too."""
    code = textwrap.dedent("""
        import resource, sys
        import bndrop
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        try:
            bndrop.Net((46340,)).add_linear(46340)
        except bndrop.OutOfMemoryError as e:
            assert isinstance(e, MemoryError) and e.status == bndrop.Status.OUT_OF_MEMORY, e
            assert e.call == "bnd_net_add_linear", e.call
            print("OOM:", e)
            sys.exit(0)
        sys.exit("no OutOfMemoryError")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=source_env(),
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cannot allocate" in result.stdout


def test_internal_and_unknown_statuses_map_too():
    """No bad call reaches BND_ERR_INTERNAL (it means a bug in bndrop), so its mapping is checked directly;
    a status newer than the binding becomes the base class with its number."""
    from bndrop.errors import check
    with pytest.raises(bndrop.InternalError) as info:
        check(Status.INTERNAL, "bnd_something")
    assert isinstance(info.value, RuntimeError) and info.value.status == Status.INTERNAL
    with pytest.raises(bndrop.BndropError) as info:
        check(99, "bnd_something")
    assert type(info.value) is bndrop.BndropError and info.value.status == 99
    assert info.value.status_name == "unknown bnd_status"


def test_every_status_has_one_class():
    classes = {bndrop.InvalidArgumentError, bndrop.ShapeError, bndrop.StateError, bndrop.BndropIOError,
               bndrop.FormatError, bndrop.OutOfMemoryError, bndrop.NumericError, bndrop.InternalError}
    assert {c.status for c in classes} == set(Status) - {Status.OK}
    assert all(issubclass(c, bndrop.BndropError) for c in classes)
    assert issubclass(bndrop.OutOfMemoryError, MemoryError) and issubclass(bndrop.BndropIOError, OSError)
    assert bndrop.BndropIOError is not IOError


# The binding's own checks, before the library is called: Python exceptions with clear messages.

def test_arrays_of_the_wrong_kind_are_refused():
    net = small_mlp()
    with pytest.raises(TypeError, match="real numbers"):
        net.forward(np.ones((4, 4), dtype=complex))
    with pytest.raises(TypeError, match="integer class indices"):
        bndrop.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(bndrop.ShapeError, match=r"expected \(N, 4\)") as info:
        net.forward(np.ones((4, 5)))
    assert info.value.status == Status.SHAPE and info.value.call is None
    with pytest.raises(bndrop.ShapeError):
        net.set_tensor("0.weight", np.ones((4, 3)))      # (3, 4) expected
    with pytest.raises(bndrop.ShapeError):
        bndrop.mse(np.ones((4, 1)), np.ones(4))           # no broadcasting
    with pytest.raises(TypeError, match="exactly one"):
        net.train_step(bndrop.SGD(net), np.ones((4, 4)))
    with pytest.raises(bndrop.InvalidArgumentError, match="different network"):
        net.train_step(bndrop.SGD(small_mlp()), np.ones((4, 4)), labels=[0, 1, 0, 1])
    with pytest.raises(bndrop.InvalidArgumentError, match="does not fit int32"):
        bndrop.cross_entropy(np.zeros((1, 3)), np.array([1 << 40]))
    with pytest.raises(bndrop.InvalidArgumentError):
        bndrop.Net((4,), seed=-1)
    with pytest.raises(TypeError):
        bndrop.Net((4,)).add_linear(2.5)


def test_the_message_is_written_by_the_failing_call_only():
    """A successful call leaves bnd_last_error() alone (as errno); the next failure replaces it."""
    net = small_mlp()
    with pytest.raises(bndrop.InvalidArgumentError) as first:
        net.add_dropout(-1)
    net.forward(np.ones((4, 4)))
    with pytest.raises(bndrop.ShapeError) as second:
        net.forward(np.ones((1, 4)))
    assert first.value.message != second.value.message

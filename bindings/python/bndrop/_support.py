"""What every wrapper shares: handle lifetime and locking, numpy conversions, integer arguments."""
import ctypes
import operator
import threading
from contextlib import contextmanager

import numpy as np

from ._lib import MAX_RANK
from .errors import InternalError, InvalidArgumentError, ShapeError, StateError, check

# ----------------------------------------------------------------------------------------- handles


class Handle:
    """An owned C handle: freed exactly once, by close() or when the object is collected.

    Every call on the handle runs under `_lock` (a re-entrant lock, so a fit callback may use the net
    on the thread that runs fit): two Python threads never use one net at once, and close() cannot free
    the handle under a call running in another thread. `_pins` counts uses that let Python code run in
    the middle of a C call (bnd_fit's callback); close() refuses while there are any.
    """

    _kind = "handle"
    _free = None        # the C function that releases it, set by each subclass

    def __init__(self, ptr, lock=None):
        self._ptr = ptr
        self._lock = lock if lock is not None else threading.RLock()
        self._pins = 0

    @contextmanager
    def _use(self):
        with self._lock:
            if self._ptr is None:
                raise StateError(f"this {self._kind} was closed")
            yield self._ptr

    @contextmanager
    def _pinned(self):
        """Held (with the lock) by calls during which Python code may run on this thread."""
        with self._use() as ptr:
            self._pins += 1
            try:
                yield ptr
            finally:
                self._pins -= 1

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Frees the C object now. Later calls raise StateError; closing again does nothing."""
        with self._lock:
            if self._pins:
                raise StateError(f"this {self._kind} cannot be closed while fit() is using it")
            self._release()

    def _release(self):
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            type(self)._free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # No call can be running on this object (each holds a reference to it), so there is no need
        # for the lock, which an optimizer shares with its net and which another thread may hold.
        if getattr(self, "_ptr", None) is not None:
            self._release()


def new_handle(create, *args, call):
    """Calls create(*args, &out) and returns out's address (an int)."""
    out = ctypes.c_void_p()
    check(create(*args, ctypes.byref(out)), call)
    if not out.value:
        raise InternalError(f"{call} returned BND_OK and no handle", call=call)
    return out.value


# ----------------------------------------------------------------------------------------- numbers


def integer(value, what, lo, hi, error=InvalidArgumentError):
    """operator.index(value), checked to lie in [lo, hi] (the C type's range)."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise error(f"{what} = {v} does not fit the C argument (from {lo} to {hi})")
    return v


I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)


def i64(value, what, error=ShapeError):
    return integer(value, what, *I64, error=error)


def u64(value, what):
    return integer(value, what, *U64)


def number(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}") from None


def shape_tuple(shape, what):
    """A shape from an int or a sequence of ints."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{what} must be an int or a sequence of ints, not {type(shape).__name__}") from None
    return tuple(i64(d, f"{what}[{i}]") for i, d in enumerate(dims))


def c_shape(dims):
    return (ctypes.c_int64 * max(len(dims), 1))(*dims)


def read_shape(fn, *args, call):
    """A shape from one of the C functions that write (shape, capacity, rank)."""
    out = (ctypes.c_int64 * MAX_RANK)()
    rank = ctypes.c_size_t()
    check(fn(*args, out, MAX_RANK, ctypes.byref(rank)), call)
    return tuple(out[i] for i in range(rank.value))


def read_count(fn, ptr, call):
    n = ctypes.c_size_t()
    check(fn(ptr, ctypes.byref(n)), call)
    return n.value


def read_name(fn, ptr, index, call):
    buf = ctypes.create_string_buffer(64)
    check(fn(ptr, index, buf, len(buf)), call)
    return buf.value.decode()


# ----------------------------------------------------------------------------------------- arrays
# Inputs: any array-like of real numbers becomes a C-contiguous float32 array (copied only when it is
# not one already); complex, object, string or datetime data is refused with TypeError. Labels must be
# integers (any integer dtype) and become int32. Outputs are new float32 arrays owned by the caller.


def plain(x):
    """x, or for a tensor that tracks gradients (a PyTorch Parameter) its detached values, which numpy can
    read where it refuses the tensor itself."""
    detach = getattr(x, "detach", None)
    return detach() if callable(detach) else x


def floats(x, what):
    a = np.asarray(plain(x))
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers (it becomes float32), got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def labels_array(y, what):
    a = np.asarray(plain(y))
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.int32)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integer class indices (e.g. int64), got dtype {a.dtype}")
    lo, hi = a.min(), a.max()
    if lo < -(1 << 31) or hi > (1 << 31) - 1:
        raise InvalidArgumentError(f"{what}: label {lo if lo < -(1 << 31) else hi} does not fit int32")
    return np.ascontiguousarray(a, dtype=np.int32)


def address(a):
    return a.ctypes.data


def expect_shape(a, shape, what):
    if tuple(a.shape) != tuple(shape):
        raise ShapeError(f"{what} has shape {tuple(a.shape)}, expected {shape_text(shape)}")


def shape_text(shape):
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def batch_of(a, sample_shape, what):
    """The batch size of `a`, which must have shape (N, *sample_shape)."""
    if a.ndim != len(sample_shape) + 1 or tuple(a.shape[1:]) != tuple(sample_shape):
        raise ShapeError(f"{what} has shape {tuple(a.shape)}, expected {shape_text((None,) + tuple(sample_shape))}")
    return a.shape[0]


def empty(shape):
    return np.empty(shape, dtype=np.float32)

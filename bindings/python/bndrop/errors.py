"""Exceptions: one class per bnd_status, all under BndropError.

Each also derives from the closest built-in exception, so code that catches ValueError, OSError,
MemoryError, ... keeps working: InvalidArgumentError, ShapeError and FormatError are ValueErrors,
StateError and InternalError RuntimeErrors, BndropIOError an OSError (named so that it does not shadow
the built-in IOError, which is OSError), OutOfMemoryError a MemoryError, NumericError an ArithmeticError.
"""
import enum

from ._lib import lib


class Status(enum.IntEnum):
    """bnd_status (include/bndrop.h)."""
    OK = 0
    INVALID_ARGUMENT = 1
    SHAPE = 2
    STATE = 3
    IO = 4
    FORMAT = 5
    OUT_OF_MEMORY = 6
    NUMERIC = 7
    INTERNAL = 8


class BndropError(Exception):
    """A bndrop call failed. `status` is its bnd_status (a Status, or an int the binding does not know),
    `message` the library's bnd_last_error() text (or the binding's own, for mistakes it catches before
    calling the library), `call` the C function (None for the binding's own checks)."""

    status = None

    def __init__(self, message, status=None, call=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.call = call

    def __str__(self):
        return self.message

    @property
    def status_name(self):
        """bnd_status_string(status), e.g. "BND_ERR_SHAPE: shape mismatch"."""
        return lib.bnd_status_string(int(self.status)).decode()


class InvalidArgumentError(BndropError, ValueError):
    """BND_ERR_INVALID_ARGUMENT: a value outside its range, an unknown name, a foreign handle."""
    status = Status.INVALID_ARGUMENT


class ShapeError(BndropError, ValueError):
    """BND_ERR_SHAPE: sizes that are not positive, overflow, or do not fit each other."""
    status = Status.SHAPE


class StateError(BndropError, RuntimeError):
    """BND_ERR_STATE: valid, but not now (backward before forward, an optimizer older than the net's
    last layer, a closed handle)."""
    status = Status.STATE


class BndropIOError(BndropError, OSError):
    """BND_ERR_IO: a file missing or unreadable, OpenBLAS not loadable."""
    status = Status.IO


class FormatError(BndropError, ValueError):
    """BND_ERR_FORMAT: a malformed file."""
    status = Status.FORMAT


class OutOfMemoryError(BndropError, MemoryError):
    """BND_ERR_OUT_OF_MEMORY: an allocation failed or a size cannot fit memory."""
    status = Status.OUT_OF_MEMORY


class NumericError(BndropError, ArithmeticError):
    """BND_ERR_NUMERIC: NaN or infinite inputs, targets or loss."""
    status = Status.NUMERIC


class InternalError(BndropError, RuntimeError):
    """BND_ERR_INTERNAL: a bug in bndrop; please report it."""
    status = Status.INTERNAL


ERROR_CLASSES = {cls.status: cls for cls in (InvalidArgumentError, ShapeError, StateError, BndropIOError,
                                             FormatError, OutOfMemoryError, NumericError, InternalError)}


def check(code, call):
    """Raises the exception of bnd_status `code` with bnd_last_error()'s text unless it is BND_OK."""
    if code == 0:
        return
    message = lib.bnd_last_error().decode("utf-8", "replace") or f"{call} failed without a message"
    try:
        status = Status(code)
    except ValueError:  # a status appended after this binding was written
        raise BndropError(message, code, call) from None
    raise ERROR_CLASSES[status](message, status, call)

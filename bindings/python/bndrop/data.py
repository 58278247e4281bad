"""Datasets held by the library (from arrays or IDX files) and seeded mini-batch loaders."""
import ctypes
import os
import threading
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

import numpy as np

from ._lib import lib
from ._support import (Handle, address, c_shape, empty, floats, i64, labels_array, new_handle, read_shape,
                       shape_tuple, u64)
from .errors import InvalidArgumentError, ShapeError, StateError, check

SPLITS = {"train": 0, "test": 1}


class DatasetInfo(NamedTuple):
    count: int
    classes: int         # 0 for a regression dataset
    target_count: int    # 0 for a classification dataset
    sample_shape: tuple


def _path(value, what):
    try:
        return os.fsencode(os.fspath(value))
    except TypeError:
        raise TypeError(f"{what} must be a path (str, bytes or os.PathLike), not {type(value).__name__}") from None


class Dataset(Handle):
    """Samples of float32 features with an integer label each (classification) or a fixed number of
    float targets (regression), copied into the library. Make one with from_arrays, load_idx or load_dir.
    Its values never change; reshape() only changes how a sample's shape is seen. Several threads may
    read one dataset at once (fit, evaluate, loaders); reshape() and close() refuse while any does."""

    _kind = "Dataset"
    _free = lib.bnd_dataset_free

    def __init__(self, ptr):
        super().__init__(ptr, lock=threading.Lock())
        self._readers = 0
        self._refresh(ptr)

    def _refresh(self, ptr):
        count, classes, targets = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        check(lib.bnd_dataset_info(ptr, ctypes.byref(count), ctypes.byref(classes), ctypes.byref(targets)),
              "bnd_dataset_info")
        self._info = DatasetInfo(count.value, classes.value, targets.value,
                                 read_shape(lib.bnd_dataset_sample_shape, ptr, call="bnd_dataset_sample_shape"))

    # A dataset is read concurrently: readers count themselves under the lock, then call without it;
    # writers (reshape, close) hold the lock and refuse while anyone reads.
    @contextmanager
    def _use(self):
        with self._lock:
            if self._ptr is None:
                raise StateError("this Dataset was closed")
            self._readers += 1
        try:
            yield self._ptr
        finally:
            with self._lock:
                self._readers -= 1

    _pinned = _use

    def _use_if_open(self):
        """For loaders, which hold their own reference to the C dataset: a read when still open."""
        return nullcontext() if self._ptr is None else self._use()

    def close(self):
        with self._lock:
            if self._readers:
                raise StateError("this Dataset cannot be closed while it is in use (fit, evaluate or a loader call)")
            self._release()

    # ------------------------------------------------------------------------------- making one

    @classmethod
    def from_arrays(cls, features, labels=None, *, classes=None, targets=None):
        """A dataset copied from arrays: features of shape (N, *sample_shape) (sample rank 1 to 3) with
        either N integer `labels` (classification; `classes` defaults to the largest label + 1) or
        `targets` of shape (N,) or (N, T) (regression, T targets per sample)."""
        if (labels is None) == (targets is None):
            raise TypeError("from_arrays needs exactly one of labels= (classification) or targets= (regression)")
        x = floats(features, "features")
        if x.ndim < 2:
            raise ShapeError(f"features has shape {tuple(x.shape)}, expected (N, *sample_shape)")
        n, sample = x.shape[0], x.shape[1:]
        if labels is not None:
            y = labels_array(labels, "labels")
            if y.shape != (n,):
                raise ShapeError(f"labels has shape {tuple(y.shape)}, expected ({n},) for {n} samples")
            classes = 0 if classes is None else i64(classes, "classes", InvalidArgumentError)
            return cls(new_handle(lib.bnd_dataset_from_labels, address(x), c_shape(sample), len(sample), address(y),
                                  n, classes, call="bnd_dataset_from_labels"))
        if classes is not None:
            raise TypeError("classes= applies to labels, not to targets")
        t = floats(targets, "targets")
        if t.ndim == 1:
            t = t.reshape(-1, 1)
        if t.ndim != 2 or t.shape[0] != n:
            raise ShapeError(f"targets has shape {tuple(np.shape(targets))}, expected ({n},) or ({n}, T) "
                             f"for {n} samples")
        return cls(new_handle(lib.bnd_dataset_from_targets, address(x), c_shape(sample), len(sample), address(t),
                              t.shape[1], n, call="bnd_dataset_from_targets"))

    @classmethod
    def load_idx(cls, images, labels):
        """An image file and a label file in IDX format (MNIST's), gzip-compressed or not; pixels become
        value / 255 with sample shape (1, rows, cols)."""
        return cls(new_handle(lib.bnd_dataset_load_idx, _path(images, "images"), _path(labels, "labels"),
                              call="bnd_dataset_load_idx"))

    @classmethod
    def load_dir(cls, directory, split="train"):
        """One split ("train" or "test") of a folder holding the four IDX files of MNIST or
        Fashion-MNIST (each with or without .gz)."""
        if split not in SPLITS:
            raise InvalidArgumentError(f"split must be 'train' or 'test', not {split!r}")
        return cls(new_handle(lib.bnd_dataset_load_dir, _path(directory, "directory"), SPLITS[split],
                              call="bnd_dataset_load_dir"))

    # ------------------------------------------------------------------------------- looking at it

    @property
    def info(self):
        """DatasetInfo(count, classes, target_count, sample_shape)."""
        return self._info

    def __len__(self):
        return self._info.count

    @property
    def sample_shape(self):
        return self._info.sample_shape

    @property
    def classes(self):
        return self._info.classes

    @property
    def target_count(self):
        return self._info.target_count

    @property
    def is_classification(self):
        return self._info.target_count == 0

    def __repr__(self):
        i = self._info
        kind = f"{i.classes} classes" if self.is_classification else f"{i.target_count} targets"
        return f"Dataset({i.count} samples of shape {i.sample_shape}, {kind}{', closed' if self.closed else ''})"

    def reshape(self, *shape):
        """Sees each sample with another shape of the same size, e.g. (784,) for (1, 28, 28). Returns the
        dataset."""
        dims = shape_tuple(shape[0] if len(shape) == 1 else shape, "sample_shape")
        with self._lock:
            if self._ptr is None:
                raise StateError("this Dataset was closed")
            if self._readers:
                raise StateError("this Dataset cannot be reshaped while it is in use (fit, evaluate or a loader call)")
            check(lib.bnd_dataset_reshape(self._ptr, c_shape(dims), len(dims)), "bnd_dataset_reshape")
            self._refresh(self._ptr)
        return self

    def get(self, first=0, count=None):
        """Samples first .. first+count-1 (count None: to the end) as (features, labels) with int64
        labels, or (features, targets) of shape (count, T)."""
        first = i64(first, "first")
        with self._use() as p:
            info = self._info
            count = info.count - first if count is None else i64(count, "count")
            features = empty((max(count, 0),) + info.sample_shape)
            if self.is_classification:
                labels = np.empty(max(count, 0), dtype=np.int32)
                check(lib.bnd_dataset_get(p, first, count, address(features), features.size, address(labels),
                                          labels.size, None, 0), "bnd_dataset_get")
                return features, labels.astype(np.int64)
            targets = empty((max(count, 0), info.target_count))
            check(lib.bnd_dataset_get(p, first, count, address(features), features.size, None, 0,
                                      address(targets), targets.size), "bnd_dataset_get")
            return features, targets

    def loader(self, batch_size=64, shuffle=True, seed=0, drop_last=False):
        """Loader(self, ...)."""
        return Loader(self, batch_size, shuffle, seed, drop_last)


class Loader(Handle):
    """Mini-batches over a dataset: each epoch visits every sample once, shuffled by a seeded
    permutation (the same seed gives the same batches), the last batch partial unless drop_last.
    Iterating yields (inputs, labels) or (inputs, targets) arrays (copies) to the end of the current
    epoch; the next iteration is the next epoch, reshuffled (an epoch left midway is resumed).
    It keeps its dataset alive."""

    _kind = "Loader"
    _free = lib.bnd_loader_free

    def __init__(self, dataset, batch_size=64, shuffle=True, seed=0, drop_last=False):
        if not isinstance(dataset, Dataset):
            raise TypeError(f"a Loader needs a bndrop Dataset, not {type(dataset).__name__}")
        batch_size, seed = i64(batch_size, "batch_size"), u64(seed, "seed")
        with dataset._use() as d:
            super().__init__(new_handle(lib.bnd_loader_create, d, batch_size, 1 if shuffle else 0, seed,
                                        1 if drop_last else 0, call="bnd_loader_create"))
        self.dataset = dataset

    def __len__(self):
        """Batches per epoch."""
        with self._use() as p:
            out = ctypes.c_int64()
            check(lib.bnd_loader_batches_per_epoch(p, ctypes.byref(out)), "bnd_loader_batches_per_epoch")
            return out.value

    def next_batch(self):
        """The next batch of the current epoch as (inputs, labels or targets), or None when the epoch has
        ended (the call after that starts the next one)."""
        inputs, labels, targets = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        n = ctypes.c_int64()
        with self._use() as p, self.dataset._use_if_open():
            check(lib.bnd_loader_next(p, ctypes.byref(inputs), ctypes.byref(labels), ctypes.byref(targets),
                                      ctypes.byref(n)), "bnd_loader_next")
            if n.value == 0:
                return None
            info = self.dataset.info
            x = _copy(inputs, ctypes.c_float, (n.value,) + info.sample_shape)
            if labels.value:
                return x, _copy(labels, ctypes.c_int32, (n.value,)).astype(np.int64)
            return x, _copy(targets, ctypes.c_float, (n.value, info.target_count))

    def __iter__(self):
        while True:
            batch = self.next_batch()
            if batch is None:
                return
            yield batch


def _copy(pointer, ctype, shape):
    count = int(np.prod(shape, dtype=np.int64))
    view = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctype)), shape=(count,))
    return view.reshape(shape).copy()

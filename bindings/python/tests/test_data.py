"""Datasets (from arrays, IDX files, a folder) and loaders through Python."""
import gzip
import os

import numpy as np
import pytest

import bndrop

FASHION = "/usr/share/datasets/fashion-mnist"

# Three 2 x 2 images and their labels as IDX bytes (uint8, big-endian dimensions), as Tests/C/test_data.c.
IMAGES = bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 17, 128, 1, 2, 3, 4, 200, 100, 50, 25])
LABELS = bytes([0, 0, 8, 1, 0, 0, 0, 3, 4, 0, 2])


def test_from_arrays_with_labels():
    x = np.arange(36, dtype=np.float32).reshape(6, 2, 3) * 0.5 - 3
    y = np.array([1, 0, 2, 1, 4, 0])
    d = bndrop.Dataset.from_arrays(x, y)
    assert len(d) == 6 and d.info == (6, 5, 0, (2, 3)) and d.is_classification
    features, labels = d.get()
    np.testing.assert_array_equal(features, x)
    assert labels.dtype == np.int64 and (labels == y).all()
    features, labels = d.get(2, 3)
    np.testing.assert_array_equal(features, x[2:5])
    assert d.reshape(6) is d and d.sample_shape == (6,)
    np.testing.assert_array_equal(d.get()[0], x.reshape(6, 6))
    d.reshape(3, 1, 2)
    assert d.sample_shape == (3, 1, 2)
    with pytest.raises(bndrop.ShapeError):
        d.reshape(7)
    assert bndrop.Dataset.from_arrays(x, y, classes=10).classes == 10
    with pytest.raises(bndrop.InvalidArgumentError):
        bndrop.Dataset.from_arrays(x, y, classes=3)                 # label 4 >= 3
    with pytest.raises(bndrop.ShapeError):
        bndrop.Dataset.from_arrays(x, y[:5])
    with pytest.raises(bndrop.ShapeError):
        d.get(4, 5)
    assert "6 samples of shape (3, 1, 2), 5 classes" in repr(d)


def test_from_arrays_with_targets():
    x = np.linspace(-1, 1, 8).reshape(8, 1)
    d = bndrop.Dataset.from_arrays(x, targets=3 * x[:, 0])
    assert d.info == (8, 0, 1, (1,)) and not d.is_classification
    features, targets = d.get()
    assert targets.shape == (8, 1)
    np.testing.assert_allclose(targets[:, 0], 3 * x[:, 0], rtol=1e-6)
    two = bndrop.Dataset.from_arrays(x, targets=np.hstack([x, -x]))
    assert two.target_count == 2
    with pytest.raises(TypeError):
        bndrop.Dataset.from_arrays(x)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_and_folders(tmp_path, compress):
    suffix = ".gz" if compress else ""
    write = (lambda p, b: p.write_bytes(gzip.compress(b))) if compress else (lambda p, b: p.write_bytes(b))
    write(tmp_path / f"t10k-images-idx3-ubyte{suffix}", IMAGES)
    write(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", LABELS)
    d = bndrop.Dataset.load_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}",
                                str(tmp_path / f"t10k-labels-idx1-ubyte{suffix}"))
    assert d.info == (3, 5, 0, (1, 2, 2))
    features, labels = d.get()
    np.testing.assert_array_equal(features.ravel(), np.frombuffer(IMAGES[16:], np.uint8).astype(np.float32) / 255)
    assert labels.tolist() == [4, 0, 2]
    assert bndrop.Dataset.load_dir(tmp_path, split="test").info == d.info
    with pytest.raises(bndrop.BndropIOError):
        bndrop.Dataset.load_dir(tmp_path, split="train")
    with pytest.raises(bndrop.InvalidArgumentError):
        bndrop.Dataset.load_dir(tmp_path, split="validation")


@pytest.mark.skipif(not os.path.isdir(FASHION),
                    reason=f"no Fashion-MNIST in {FASHION} (Debian's dataset-fashion-mnist)")
def test_fashion_mnist():
    d = bndrop.Dataset.load_dir(FASHION, "test")
    assert d.info == (10000, 10, 0, (1, 28, 28))
    features, labels = d.get(0, 100)
    assert features.shape == (100, 1, 28, 28) and 0 <= features.min() and features.max() <= 1
    assert np.bincount(d.get()[1], minlength=10).tolist() == [1000] * 10


def test_loader_batches():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    d = bndrop.Dataset.from_arrays(x, np.arange(10) % 3)
    loader = bndrop.Loader(d, batch_size=4, seed=1)
    assert len(loader) == 3
    epoch1 = list(loader)
    assert [len(b[0]) for b in epoch1] == [4, 4, 2]
    seen = np.concatenate([b[0][:, 0] for b in epoch1])
    assert sorted(seen) == list(range(10))
    for inputs, labels in epoch1:
        assert labels.dtype == np.int64 and (labels == inputs[:, 0].astype(np.int64) % 3).all()
    epoch2 = np.concatenate([b[0][:, 0] for b in loader])
    assert sorted(epoch2) == list(range(10)) and not (epoch2 == seen).all()   # reshuffled
    again = np.concatenate([b[0][:, 0] for b in bndrop.Loader(d, batch_size=4, seed=1)])
    np.testing.assert_array_equal(again, seen)                                # same seed, same order
    plain = d.loader(batch_size=4, shuffle=False, drop_last=True)
    assert len(plain) == 2 and [b[0][:, 0].tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(bndrop.ShapeError):
        bndrop.Loader(d, batch_size=11, drop_last=True)
    # An epoch left midway is resumed by the next iteration; next_batch() is None at its end.
    half = bndrop.Loader(d, batch_size=4, shuffle=False)
    assert half.next_batch()[0][0, 0] == 0
    assert [b[0][0, 0] for b in half] == [4, 8]
    assert half.next_batch()[0][0, 0] == 0


def test_loader_regression_batches_follow_reshape():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    d = bndrop.Dataset.from_arrays(x, targets=np.stack([x[:, 0], x[:, 1]], 1))
    loader = bndrop.Loader(d, batch_size=6, shuffle=False)
    inputs, targets = loader.next_batch()
    assert inputs.shape == (6, 2) and targets.shape == (6, 2)
    np.testing.assert_array_equal(inputs, targets)
    d.reshape(2, 1)
    loader.next_batch()                                   # end of the epoch
    assert loader.next_batch()[0].shape == (6, 2, 1)

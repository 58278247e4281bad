"""Checkpoints through Python: safetensors files bndrop writes and PyTorch wrote (bnd_net_save / _load /
_load_weights, bnd_optimizer_save / _load)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

import bndrop
from conftest import REPO

ENV_FIXTURES = "BNDROP_SAFETENSORS_DIR"


def fixtures_dir():
    env = os.environ.get(ENV_FIXTURES)
    return Path(env) if env else (REPO.parent / "shared" / "fixtures" / "safetensors").resolve()


def mlp_with_dropout(seed=3):
    net = bndrop.Net((20,), seed=seed)
    return net.add_linear(16).add_batchnorm().add_relu().add_dropout(0.3).add_linear(4)


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((32, 20)).astype(np.float32), (np.arange(32) % 4).astype(np.int32)


def test_a_saved_net_loads_with_its_layers_tensors_and_outputs(tmp_path):
    net = mlp_with_dropout()
    opt = bndrop.SGD(net, lr=0.1, momentum=0.9)
    x, y = data()
    for _ in range(3):
        net.train_step(opt, x, labels=y)
    path = tmp_path / "net.safetensors"
    net.save(path)
    copy = bndrop.Net.load(path)
    assert [layer.type for layer in copy.layers] == [layer.type for layer in net.layers]
    assert copy.input_shape == net.input_shape and copy.output_shape == net.output_shape
    original, loaded = net.state_dict(), copy.state_dict()
    assert list(loaded) == list(original)
    for name, values in original.items():
        assert loaded[name].dtype == values.dtype and np.array_equal(loaded[name], values), name
    net.eval()
    copy.eval()
    assert np.array_equal(copy.forward(x), net.forward(x))


def test_training_resumes_bit_for_bit_from_a_net_and_adam_checkpoint(tmp_path):
    x, y = data(1)
    straight = mlp_with_dropout()
    straight_opt = bndrop.Adam(straight, lr=1e-2)
    for _ in range(6):
        straight.train_step(straight_opt, x, labels=y)

    first = mlp_with_dropout()
    first_opt = bndrop.Adam(first, lr=1e-2)
    for _ in range(3):
        first.train_step(first_opt, x, labels=y)
    first.save(tmp_path / "net.safetensors")
    first_opt.save(tmp_path / "adam.safetensors")
    resumed = bndrop.Net.load(tmp_path / "net.safetensors")
    resumed_opt = bndrop.Adam(resumed, lr=1e-2)
    resumed_opt.load(tmp_path / "adam.safetensors")
    for _ in range(3):
        resumed.train_step(resumed_opt, x, labels=y)
    expected, got = straight.state_dict(), resumed.state_dict()
    for name in expected:
        assert np.array_equal(got[name], expected[name]), f"{name} differs from the uninterrupted run"


def test_damaged_and_missing_files_raise_their_errors(tmp_path):
    net = mlp_with_dropout()
    path = tmp_path / "net.safetensors"
    net.save(path)
    whole = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(bndrop.FormatError) as damaged:
        bndrop.Net.load(tmp_path / "cut.safetensors")
    assert damaged.value.call == "bnd_net_load" and "cut.safetensors" in str(damaged.value)
    with pytest.raises(bndrop.BndropIOError):
        bndrop.Net.load(tmp_path / "missing.safetensors")
    other = bndrop.Net((20,)).add_linear(5)
    with pytest.raises(bndrop.BndropError):
        other.load_weights(path)                     # names and shapes of another net
    assert path.read_bytes() == whole              # a failed load changes no file


def article_net(name, sample_shape):
    """The bndrop twin of the fixture's nn.Sequential (the article's nets)."""
    net = bndrop.Net(tuple(sample_shape))
    if name == "mlp_bn":
        return net.add_linear(48).add_batchnorm().add_relu().add_linear(24).add_batchnorm().add_relu().add_linear(10)
    if name == "cnn_bn":
        return (net.add_conv2d(3, 5).add_relu().add_avgpool2d(2, 2).add_conv2d(6, 3).add_batchnorm().add_relu()
                .add_avgpool2d(2, 2).add_flatten().add_linear(25).add_relu().add_linear(10))
    if name == "regression_dropout":
        return (net.add_linear(100).add_dropout(0.5).add_relu().add_linear(100).add_dropout(0.2).add_relu()
                .add_linear(1))
    raise AssertionError(f"no bndrop twin for the fixture {name}")


def test_checkpoints_pytorch_wrote_reproduce_its_eval_outputs():
    directory = fixtures_dir()
    files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    assert files, (f"no PyTorch checkpoint in {directory}: set {ENV_FIXTURES} to the folder of "
                   f"shared/fixtures/safetensors (make test sets it)")
    for file in files:
        case = json.loads(file.with_suffix(".json").read_text())
        net = article_net(file.stem, case["sample_shape"])
        net.load_weights(file)
        net.eval()
        x = np.asarray(case["input"], dtype=np.float32).reshape([case["batch"], *case["sample_shape"]])
        expected = np.asarray(case["eval_output"], dtype=np.float32).reshape(case["output_shape"])
        got = net.forward(x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=file.stem)

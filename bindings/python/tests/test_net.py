"""Nets through Python: building, shapes and layer types, modes, seeds, forward/backward, hidden layers,
tensors by name, state_dict round trips, losses, optimizer defaults, the runtime functions."""
import inspect

import numpy as np
import pytest

import bndrop
from bndrop._lib import lib


def cnn(seed=0):
    """The article's CNN with BatchNorm2d."""
    return (bndrop.Net((1, 28, 28), seed=seed).add_conv2d(3, 5).add_relu().add_avgpool2d(2).add_conv2d(6, 3)
            .add_batchnorm().add_relu().add_avgpool2d(2).add_flatten().add_linear(25).add_relu().add_linear(10))


def mlp(seed=0, dropout=0.0):
    net = bndrop.Net(784, seed=seed).add_linear(48).add_batchnorm().add_relu()
    if dropout:
        net.add_dropout(dropout)
    return net.add_linear(10)


def test_layers_shapes_and_types():
    net = cnn()
    assert net.input_shape == (1, 28, 28) and net.output_shape == (10,) and len(net) == 11
    assert [layer.type for layer in net.layers] == ["Conv2d", "ReLU", "AvgPool2d", "Conv2d", "BatchNorm2d", "ReLU",
                                                    "AvgPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    assert net.layer_output_shape(0) == (3, 24, 24) and net.layer_output_shape(6) == (6, 5, 5)
    assert net.layer_type(-1) == "Linear" and net.layer_output_shape(-4) == (150,)
    assert "BatchNorm2d -> (6, 10, 10)" in repr(net)
    pool = bndrop.Net((2, 7, 7)).add_maxpool2d(3, stride=2).add_avgpool2d((2, 2))
    assert pool.layer_output_shape(0) == (2, 3, 3) and pool.output_shape == (2, 1, 1)
    assert bndrop.Net((3, 8, 8)).add_conv2d(4, 3, stride=2, padding=1).output_shape == (4, 4, 4)
    for add in (bndrop.Net.add_avgpool2d, bndrop.Net.add_maxpool2d):
        with pytest.raises(bndrop.InvalidArgumentError, match="stride should not be zero"):  # PyTorch's error
            add(bndrop.Net((2, 7, 7)), 2, 0)
    # PyTorch's other pooling arguments: the output sizes PyTorch 2.15 gives for them
    assert bndrop.Net((1, 7, 7)).add_avgpool2d(3, 2, padding=1).output_shape == (1, 4, 4)
    assert bndrop.Net((1, 7, 7)).add_avgpool2d(2, ceil_mode=True).output_shape == (1, 4, 4)
    assert bndrop.Net((1, 8, 8)).add_avgpool2d(3, 2, 1, ceil_mode=True, count_include_pad=False,
                                               divisor_override=4).output_shape == (1, 5, 5)
    assert bndrop.Net((1, 10, 9)).add_maxpool2d(3, 2, 1, dilation=2, ceil_mode=True).output_shape == (1, 5, 4)
    with pytest.raises(bndrop.InvalidArgumentError, match="padding"):
        bndrop.Net((1, 7, 7)).add_maxpool2d(3, padding=2)
    with pytest.raises(bndrop.InvalidArgumentError, match="divisor"):
        bndrop.Net((1, 7, 7)).add_avgpool2d(3, divisor_override=0)
    with pytest.raises(bndrop.ShapeError):
        bndrop.Net((1, 3, 3)).add_maxpool2d(2, stride=1, dilation=3)
    # Conv2d's dilation and groups (shapes as PyTorch 2.15 gives them): a grouped weight is (out, in/groups, k, k)
    grouped = bndrop.Net((4, 11, 9)).add_conv2d(6, 3, stride=2, padding=1, dilation=2, groups=2)
    assert grouped.output_shape == (6, 5, 4) and grouped.state_dict()["0.weight"].shape == (6, 2, 3, 3)
    with pytest.raises(bndrop.InvalidArgumentError, match="divisible by groups"):
        bndrop.Net((4, 8, 8)).add_conv2d(6, 3, groups=4)
    with pytest.raises(bndrop.ShapeError, match="larger than the padded input"):
        bndrop.Net((4, 8, 8)).add_conv2d(4, 3, dilation=4)
    # the ceil-mode average of a 3x3 plane without the padding in the divisor: every window's mean
    ceil = bndrop.Net((1, 3, 3)).add_avgpool2d(2, ceil_mode=True, count_include_pad=False).eval()
    assert ceil(np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)).ravel().tolist() == [3.0, 4.5, 7.5, 9.0]
    bn1d = bndrop.Net((3, 6)).add_batchnorm(eps=1e-3, momentum=None, affine=False)
    assert bn1d.layer_type(0) == "BatchNorm1d"
    assert bn1d.tensor_names() == ["0.running_mean", "0.running_var", "0.num_batches_tracked"]
    assert bndrop.Net(4).add_batchnorm(track_running_stats=False).tensor_names() == ["0.weight", "0.bias"]


def test_modes_and_dropout():
    net = mlp(dropout=0.5)
    assert net.training
    x = np.random.default_rng(0).normal(size=(16, 784))
    assert net.eval() is net and not net.training
    a, b = net(x), net(x)
    np.testing.assert_array_equal(a, b)                  # eval: no dropout, running statistics
    net.train()
    assert net.training
    net(x)
    relu, dropped = net.layer_output(2), net.layer_output(3)
    kept = dropped != 0
    assert 0.3 < kept[relu != 0].mean() < 0.7            # dropout keeps about half of the ReLU's non-zeros
    np.testing.assert_allclose(dropped[kept], 2 * relu[kept], rtol=1e-6)   # and scales them by 1/(1-p)
    net.training = False
    assert not net.training


def with_running_statistics(net, seed=5):
    """Gives every BatchNorm of `net` made-up running statistics and affine parameters, as training would."""
    rng = np.random.default_rng(seed)
    for name in net.tensor_names():
        shape = net.tensor_shape(name)
        if name.endswith("running_mean") or name.endswith(".bias"):
            net.set_tensor(name, rng.normal(size=shape))
        elif name.endswith("running_var"):
            net.set_tensor(name, rng.uniform(0.2, 3.0, size=shape))
        elif name.endswith(".weight") and net.layer_type(int(name.split(".")[0])).startswith("BatchNorm"):
            net.set_tensor(name, rng.uniform(0.5, 2.0, size=shape))
    return net


def test_fold_batchnorm():
    net = with_running_statistics(mlp(seed=3))
    before = net.state_dict()
    x = np.random.default_rng(2).normal(size=(32, 784))
    net.eval()
    expected = net(x)
    net.train()
    folded = net.fold_batchnorm()
    assert isinstance(folded, bndrop.Net) and not folded.training and net.training
    assert [layer.type for layer in folded.layers] == ["Linear", "ReLU", "Linear"]
    assert folded.tensor_names() == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, value in before.items():                   # the original is not changed
        np.testing.assert_array_equal(net.get_tensor(name) if value.dtype == np.float32 else value, value)
    # The folded first layer is W·s and (b - mean)·s + beta, s = gamma / sqrt(var + eps), s in double.
    s = before["1.weight"].astype(np.float64) / np.sqrt(before["1.running_var"].astype(np.float64) + 1e-5)
    np.testing.assert_allclose(folded.get_tensor("0.weight"), before["0.weight"] * s[:, None], rtol=1e-6)
    np.testing.assert_allclose(folded.get_tensor("0.bias"),
                               (before["0.bias"] - before["1.running_mean"]) * s + before["1.bias"], rtol=1e-5,
                               atol=1e-6)
    out = folded(x)
    assert np.abs(out - expected).max() <= 1e-5 * np.abs(expected).max()
    folded_bias = folded.get_tensor("2.bias")
    folded.set_tensor("2.bias", np.zeros(10))             # independent of the original
    np.testing.assert_array_equal(net.get_tensor("3.bias"), before["3.bias"])
    folded.set_tensor("2.bias", folded_bias)
    net.close()
    np.testing.assert_array_equal(folded(x), out)         # and outlives it


def test_predict_mc_dropout():
    x = np.random.default_rng(4).normal(size=(8, 784))
    net = with_running_statistics(mlp(seed=1, dropout=0.5))
    twin = with_running_statistics(mlp(seed=1, dropout=0.5))
    mean, variance = net.predict_mc_dropout(x, passes=40, seed=9)
    assert mean.shape == variance.shape == (8, 10) and mean.dtype == variance.dtype == np.float32
    assert (variance >= 0).all() and (variance > 0).any()
    again, again_variance = net.predict_mc_dropout(x, 40, seed=9)
    np.testing.assert_array_equal(again, mean)            # the masks come from the seed alone
    np.testing.assert_array_equal(again_variance, variance)
    assert not np.array_equal(net.predict_mc_dropout(x, 40, seed=10)[0], mean)
    # Mode, tensors and dropout state are as before: the next train-mode forward draws what the twin's does.
    assert net.training
    np.testing.assert_array_equal(net(x), twin(x))
    np.testing.assert_array_equal(net.get_tensor("1.running_mean"), twin.get_tensor("1.running_mean"))
    # Without Dropout every pass is the eval output: the mean is it, the variance 0.
    plain = with_running_statistics(mlp(seed=1))
    plain_mean, plain_variance = plain.predict_mc_dropout(x, 5, seed=0)
    plain.eval()
    np.testing.assert_array_equal(plain_mean, plain(x))
    np.testing.assert_array_equal(plain_variance, np.zeros((8, 10), np.float32))
    with pytest.raises(bndrop.InvalidArgumentError):
        net.predict_mc_dropout(x, 0)
    with pytest.raises(bndrop.ShapeError):
        net.predict_mc_dropout(x[:, :100], 3)
    with pytest.raises(bndrop.InvalidArgumentError):
        net.predict_mc_dropout(x, 3, seed=-1)


def test_seeds_reproduce_and_reinitialise():
    a, b, c = mlp(seed=7), mlp(seed=7), mlp(seed=8)
    np.testing.assert_array_equal(a.get_tensor("0.weight"), b.get_tensor("0.weight"))
    assert not np.array_equal(a.get_tensor("0.weight"), c.get_tensor("0.weight"))
    c.seed(7)
    np.testing.assert_array_equal(a.get_tensor("0.weight"), c.get_tensor("0.weight"))
    bound = 1 / np.sqrt(784)
    assert np.abs(a.get_tensor("0.weight")).max() <= bound      # U(-1/sqrt(fan_in), +)


def test_forward_backward_and_gradients():
    rng = np.random.default_rng(1)
    net = bndrop.Net(5).add_linear(3)
    w, bias = net.get_tensor("0.weight"), net.get_tensor("0.bias")
    x = rng.normal(size=(4, 5))
    y = net.forward(x)
    assert y.dtype == np.float32 and y.shape == (4, 3)
    np.testing.assert_allclose(y, x.astype(np.float32) @ w.T + bias, rtol=1e-5, atol=1e-6)
    g = rng.normal(size=(4, 3)).astype(np.float32)
    gx = net.backward(g)
    np.testing.assert_allclose(gx, g @ w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.grad("0.weight"), g.T @ x.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert net.backward(g, need_input_grad=False) is None                 # accumulates a second time
    np.testing.assert_allclose(net.grad("0.bias"), 2 * g.sum(0), rtol=1e-5, atol=1e-5)
    net.zero_grad()
    assert not net.grad("0.bias").any()
    # Non-contiguous and float64 inputs are converted, with the same result.
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(net.forward(xt), net.forward(x.astype(np.float32)))
    np.testing.assert_array_equal(net.forward(x.tolist()), y)


def test_layer_output_is_the_hidden_values():
    net = mlp().eval()
    x = np.random.default_rng(2).normal(size=(6, 784))
    out = net(x)
    hidden = net.layer_output(0)
    assert hidden.shape == (6, 48)
    np.testing.assert_allclose(hidden, x.astype(np.float32) @ net.get_tensor("0.weight").T + net.get_tensor("0.bias"),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(net.layer_output(-1), out)
    with pytest.raises(bndrop.StateError):
        mlp().layer_output(0)                                              # no forward yet
    with pytest.raises(bndrop.InvalidArgumentError):
        net.layer_output(4)


def test_tensors_by_name():
    net = mlp()
    names = net.tensor_names()
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                     "1.num_batches_tracked", "3.weight", "3.bias"]
    assert [net.is_parameter(n) for n in names] == [True, True, True, True, False, False, False, True, True]
    assert net.tensor_shape("0.weight") == (48, 784) and net.tensor_shape("1.num_batches_tracked") == ()
    nbt = net.get_tensor("1.num_batches_tracked")
    assert nbt.dtype == np.int64 and nbt.shape == () and int(nbt) == 0
    net.set_tensor("1.num_batches_tracked", 12)
    assert int(net.get_tensor("1.num_batches_tracked")) == 12
    for bad in (1.5, -1, float("inf"), 1 << 63):
        with pytest.raises(bndrop.InvalidArgumentError, match="whole number"):
            net.set_tensor("1.num_batches_tracked", bad)
    assert int(net.get_tensor("1.num_batches_tracked")) == 12              # refused values change nothing
    for exact in ((1 << 24) + 1, 10**10 + 1, (1 << 63) - 1, np.int64(7), 3.0):   # an int64, as in PyTorch
        net.set_tensor("1.num_batches_tracked", exact)
        assert int(net.get_tensor("1.num_batches_tracked")) == int(exact)
    net.set_tensor("1.num_batches_tracked", 10**10)
    train_a_little(net, steps=1)                                           # counted exactly past 2^24 too
    assert int(net.get_tensor("1.num_batches_tracked")) == 10**10 + 1
    values = np.arange(48, dtype=np.float32)
    net.set_tensor("1.running_mean", values)
    np.testing.assert_array_equal(net.get_tensor("1.running_mean"), values)
    with pytest.raises(bndrop.InvalidArgumentError):
        net.grad("1.running_mean")                                         # a buffer has no gradient
    net.set_grad("3.bias", np.ones(10))
    np.testing.assert_array_equal(net.grad("3.bias"), np.ones(10, np.float32))
    out = net.get_tensor("0.bias")
    out[:] = 99                                                            # a copy, not a view
    assert not (net.get_tensor("0.bias") == 99).any()


def train_a_little(net, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    opt = bndrop.SGD(net, lr=0.1, momentum=0.9)
    for _ in range(steps):
        net.train_step(opt, rng.normal(size=(32, 784)), labels=rng.integers(0, 10, 32))


def test_state_dict_round_trip():
    source = mlp(seed=1)
    train_a_little(source)
    state = source.state_dict()
    assert list(state) == source.tensor_names() and int(state["1.num_batches_tracked"]) == 3
    target = mlp(seed=2)
    result = target.load_state_dict(state)
    assert result == ([], []) and result.missing_keys == []
    for name in state:
        np.testing.assert_array_equal(target.get_tensor(name), state[name])
    x = np.random.default_rng(5).normal(size=(8, 784))
    np.testing.assert_array_equal(source.eval()(x), target.eval()(x))
    # The dict holds copies: changing it changes no net.
    state["0.bias"][:] = 5
    assert not (source.get_tensor("0.bias") == 5).any()


def test_load_state_dict_strictness_and_atomicity():
    net = mlp()
    state = net.state_dict()
    before = net.state_dict()
    partial = dict(state)
    del partial["3.bias"]
    partial["extra.weight"] = np.zeros(1)
    with pytest.raises(bndrop.InvalidArgumentError, match="missing: 3.bias; unexpected: extra.weight"):
        net.load_state_dict(partial)
    partial["0.bias"] = np.full(48, 0.5)
    result = net.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["3.bias"] and result.unexpected_keys == ["extra.weight"]
    assert (net.get_tensor("0.bias") == 0.5).all()
    # All or nothing: a value refused midway (by shape, or by the library) leaves every tensor as it was.
    net.load_state_dict(before)
    for bad in ({"3.weight": np.zeros((10, 47))}, {"1.num_batches_tracked": np.array(-1)}):
        changed = dict(state, **{"0.weight": np.zeros((48, 784))}, **bad)
        with pytest.raises(bndrop.BndropError):
            net.load_state_dict(changed)
        for name, value in before.items():
            np.testing.assert_array_equal(net.get_tensor(name), value)


def test_losses():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 1, 2])
    loss, grad = bndrop.cross_entropy(logits, y)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(5), y]).mean(), rel=1e-5)
    np.testing.assert_allclose(grad, (p - np.eye(4)[y]) / 5, rtol=1e-4, atol=1e-6)
    pred, target = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    loss, grad = bndrop.mse(pred, target)
    assert loss == pytest.approx(((pred - target) ** 2).mean(), rel=1e-5)
    np.testing.assert_allclose(grad, 2 * (pred - target) / 6, rtol=1e-5, atol=1e-6)
    assert bndrop.mse(pred, target, need_grad=False)[1] is None
    # PyTorch's other arguments (Tests/golden holds PyTorch's values): a sum is the mean times the count,
    # an ignored sample has a zero gradient row, weights of the wrong length or an unknown reduction fail.
    total, total_grad = bndrop.mse(pred, target, reduction="sum")
    assert total == pytest.approx(6 * bndrop.mse(pred, target)[0], rel=1e-6)
    np.testing.assert_allclose(total_grad, 2 * (pred - target), rtol=1e-6)
    ignored = np.array([0, -100, 1, 1, 2])
    loss, grad = bndrop.cross_entropy(logits, ignored)
    kept = ignored != -100
    assert loss == pytest.approx(-np.log(p[np.arange(5)[kept], ignored[kept]]).mean(), rel=1e-5)
    assert not grad[1].any() and grad[0].any()
    with pytest.raises(bndrop.ShapeError, match="weight"):
        bndrop.cross_entropy(logits, y, weight=[1.0, 2.0, 3.0])
    with pytest.raises(bndrop.InvalidArgumentError, match="reduction"):
        bndrop.cross_entropy(logits, y, reduction="none")


def test_optimizer_defaults_are_the_librarys():
    def defaults(cls):
        return {k: p.default for k, p in inspect.signature(cls).parameters.items() if k != "net"}
    sgd, adam, adamw = (lib.bnd_sgd_default_params(), lib.bnd_adam_default_params(), lib.bnd_adamw_default_params())
    f32 = lambda v: float(np.float32(v))
    d = defaults(bndrop.SGD)
    assert {k: f32(v) for k, v in d.items() if k != "nesterov"} == dict(
        lr=sgd.lr, momentum=sgd.momentum, dampening=sgd.dampening, weight_decay=sgd.weight_decay)
    assert d["nesterov"] == bool(sgd.nesterov)
    for cls, c in ((bndrop.Adam, adam), (bndrop.AdamW, adamw)):
        d = defaults(cls)
        assert {k: f32(v) for k, v in d.items() if k != "betas"} == dict(lr=c.lr, eps=c.eps,
                                                                         weight_decay=c.weight_decay)
        assert tuple(map(f32, d["betas"])) == (c.beta1, c.beta2)
    bn = lib.bnd_batchnorm_default_params()
    d = {k: p.default for k, p in inspect.signature(bndrop.Net.add_batchnorm).parameters.items() if k != "self"}
    assert (f32(d["eps"]), f32(d["momentum"]), d["affine"], d["track_running_stats"]) == \
        (bn.eps, bn.momentum, bool(bn.affine), bool(bn.track_running_stats))


def test_optimizers_step_like_the_formulas():
    net = bndrop.Net(3).add_linear(1)
    start = net.get_tensor("0.weight").copy()
    opt = bndrop.SGD(net, lr=0.5)
    net.set_grad("0.weight", [[1, 2, 3]])
    opt.step()
    np.testing.assert_allclose(net.get_tensor("0.weight"), start - 0.5 * np.array([[1, 2, 3]]), rtol=1e-6)
    adam = bndrop.Adam(net, lr=0.1)
    w = net.get_tensor("0.weight").copy()
    adam.step()                                   # the first Adam step moves each weight by lr (sign of grad)
    np.testing.assert_allclose(net.get_tensor("0.weight"), w - 0.1, rtol=1e-5)
    assert "AdamW(lr=0.001" in repr(bndrop.AdamW(net))


def test_runtime():
    assert bndrop.version() == "0.1.0" and bndrop.version_number() == 100
    info = bndrop.runtime_info()
    assert info["threads"] == bndrop.get_num_threads() >= 1
    assert info["blas_config"].startswith("OpenBLAS") and info["simd_width"] in (4, 8, 16)
    assert info["kernel_simd_width"] in (4, 8, 16) and info["kernel_simd_width"] <= info["simd_width"]
    assert isinstance(info["subnormals_in_double"], bool)
    assert info["blas_threads"] == 1
    threads = bndrop.get_num_threads()
    try:
        bndrop.set_num_threads(1)
        assert bndrop.get_num_threads() == 1
        with pytest.raises(bndrop.InvalidArgumentError):
            bndrop.set_num_threads(0)
        with pytest.raises(bndrop.InvalidArgumentError):
            bndrop.set_num_threads(257)
    finally:
        bndrop.set_num_threads(threads)

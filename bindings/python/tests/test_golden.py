"""Every PyTorch reference case in the golden folder through the Python binding. The logic mirrors
Tests/BNDropGoldenTests/GoldenRunner.swift (the Swift and C runners) case for case, with the same
tolerances; cases are discovered, not listed, and a missing or empty folder fails."""
import numpy as np
import pytest

import bndrop
from conftest import golden_files, load_case, team_golden_files

# Tolerances of golden/README.md, as GoldenRunner.swift: single layers, multi-step network
# trajectories, and the ill-conditioned large-offset BatchNorm case (absolute only).
LAYER_ATOL, LAYER_RTOL = 1e-5, 1e-4
NET_ATOL, NET_RTOL = 1e-4, 1e-3
LARGE_OFFSET_ATOL = 2e-3

FILES, WHY_NONE = golden_files()
TEAM_FILES = team_golden_files()


def assert_close(actual, expected, atol, rtol, what):
    """|a - e| <= atol + rtol * |e| element-wise (NaN fails); reports the worst mismatch."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    assert a.size == e.size, f"{what}: {a.size} values, expected {e.size}"
    error = np.abs(a - e)
    allowed = atol + rtol * np.abs(e)
    bad = ~(error <= allowed)
    if bad.any():
        excess = np.where(np.isnan(error), np.inf, error - allowed)
        i = int(np.argmax(np.where(bad, excess, -np.inf)))
        pytest.fail(f"{what}: {int(bad.sum())} of {a.size} values differ; worst: element {i} is {a[i]!r}, "
                    f"expected {e[i]!r}")


def tensor(raw):
    """A golden tensor {"shape", "data"} (or a bare number, rank 0) as a float32 array of its shape."""
    if isinstance(raw, (int, float)):
        return np.array(raw, dtype=np.float32)
    return np.array(raw["data"], dtype=np.float32).reshape(raw["shape"])


def labels(raw):
    return tensor(raw).astype(np.int64).ravel()


# ------------------------------------------------------------------------------------ layer specs

def pool_stride(d):
    return d.get("stride")   # absent or null: the kernel size


def add_pool(net, op, d, kernel_key):
    """A pooling layer with PyTorch's arguments (those absent: PyTorch's defaults)."""
    common = dict(stride=pool_stride(d), padding=d.get("padding", 0), ceil_mode=d.get("ceil_mode", False))
    if op == "avgpool2d":
        net.add_avgpool2d(d[kernel_key], count_include_pad=d.get("count_include_pad", True),
                          divisor_override=d.get("divisor_override"), **common)
    else:
        net.add_maxpool2d(d[kernel_key], dilation=d.get("dilation", 1), **common)


def add_batchnorm(net, d):
    # momentum absent: PyTorch's 0.1; null: the cumulative average
    momentum = None if "momentum" in d and d["momentum"] is None else d.get("momentum", 0.1)
    net.add_batchnorm(eps=d.get("eps", 1e-5), momentum=momentum, affine=d.get("affine", True),
                      track_running_stats=d.get("track_running_stats", True))


def add_single_layer(net, case):
    c, op = case["config"], case["op"]
    if op == "linear":
        net.add_linear(c["out_features"])
    elif op == "relu":
        net.add_relu()
    elif op == "conv2d":
        net.add_conv2d(c["out_channels"], c["kernel_size"], c.get("stride", 1), c.get("padding", 0),
                       c.get("dilation", 1), c.get("groups", 1))
    elif op in ("avgpool2d", "maxpool2d"):
        add_pool(net, op, c, "kernel_size")
    else:
        raise AssertionError(f"{case['case']}: {op} is not a single layer")


def add_network_layer(net, layer, what):
    kind = layer.get("type")
    if kind == "linear":
        net.add_linear(layer["out"])
    elif kind == "relu":
        net.add_relu()
    elif kind == "flatten":
        net.add_flatten()
    elif kind == "conv2d":
        net.add_conv2d(layer["out"], layer["kernel"], layer.get("stride", 1), layer.get("padding", 0),
                       layer.get("dilation", 1), layer.get("groups", 1))
    elif kind in ("avgpool2d", "maxpool2d"):
        add_pool(net, kind, layer, "kernel")
    elif kind in ("batchnorm1d", "batchnorm2d"):
        add_batchnorm(net, layer)
    elif kind == "dropout":
        net.add_dropout(layer.get("p", 0.5))
    else:
        raise AssertionError(f"{what}: unknown layer type {kind}")


def make_optimizer(kind, c, net, what):
    if kind == "sgd":
        return bndrop.SGD(net, lr=c.get("lr", 0.01), momentum=c.get("momentum", 0), dampening=c.get("dampening", 0),
                          weight_decay=c.get("weight_decay", 0), nesterov=c.get("nesterov", False))
    if kind in ("adam", "adamw"):
        betas = c.get("betas", [0.9, 0.999])
        assert len(betas) == 2, f"{what}: betas {betas}"
        cls = bndrop.AdamW if kind == "adamw" else bndrop.Adam
        return cls(net, lr=c.get("lr", 1e-3), betas=tuple(betas), eps=c.get("eps", 1e-8),
                   weight_decay=c.get("weight_decay", 1e-2 if kind == "adamw" else 0))
    raise AssertionError(f"{what}: unknown optimizer {kind}")


# ------------------------------------------------------------------------------------ kinds of case

def run_layer(case):
    t = case["tensors"]
    x = tensor(t["input"])
    net = bndrop.Net(x.shape[1:])
    add_single_layer(net, case)
    for key in ("weight", "bias"):
        if key in t:
            net.set_tensor(f"0.{key}", tensor(t[key]))
    name = case["case"]
    assert_close(net.forward(x), tensor(t["output"]), LAYER_ATOL, LAYER_RTOL, f"{name} output")
    grad_input = net.backward(tensor(t["grad_output"]))
    assert_close(grad_input, tensor(t["grad_input"]), LAYER_ATOL, LAYER_RTOL, f"{name} grad_input")
    for key in ("weight", "bias"):
        if f"grad_{key}" in t:
            assert_close(net.grad(f"0.{key}"), tensor(t[f"grad_{key}"]), LAYER_ATOL, LAYER_RTOL, f"{name} grad_{key}")


def run_batchnorm(case):
    name = case["case"]
    large_offset = name == "batchnorm1d_large_offset"
    atol = LARGE_OFFSET_ATOL if large_offset else LAYER_ATOL
    rtol = 0 if large_offset else LAYER_RTOL
    steps = case["steps"]
    assert steps, f"{name}: no steps"
    net = bndrop.Net(tensor(steps[0]["input"]).shape[1:])
    add_batchnorm(net, case["config"])
    for key, raw in case["state_before"].items():
        net.set_tensor(f"0.{key}", tensor(raw))
    for i, step in enumerate(steps):
        what = f"{name} step {i}"
        net.train(step.get("mode") != "eval")
        net.zero_grad()
        x = tensor(step["input"])
        assert_close(net.forward(x), tensor(step["output"]), atol, rtol, f"{what} output")
        grad_input = net.backward(tensor(step["grad_output"]))
        assert_close(grad_input, tensor(step["grad_input"]), atol, rtol, f"{what} grad_input")
        for key in ("weight", "bias"):
            if f"grad_{key}" in step:
                assert_close(net.grad(f"0.{key}"), tensor(step[f"grad_{key}"]), atol, rtol, f"{what} grad_{key}")
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            if key in step:
                assert_close(net.get_tensor(f"0.{key}"), tensor(step[key]), atol, rtol, f"{what} {key}")
        if "running_mean" not in step:
            with pytest.raises(bndrop.BndropError):
                net.get_tensor("0.running_mean")


def run_loss(case):
    t, name = case["tensors"], case["case"]
    x = tensor(t["input"])
    c = case.get("config", {})
    if case["op"] == "cross_entropy":
        y = labels(t["target"])
        options = {k: c[k] for k in ("weight", "ignore_index", "reduction", "label_smoothing") if k in c}
        loss, grad = bndrop.cross_entropy(x, y, **options)
        alone, none = bndrop.cross_entropy(x, y, need_grad=False, **options)
    else:
        y = tensor(t["target"])
        loss, grad = bndrop.mse(x, y, reduction=c.get("reduction", "mean"))
        alone, none = bndrop.mse(x, y, need_grad=False, reduction=c.get("reduction", "mean"))
    assert_close([loss], tensor(t["loss"]), LAYER_ATOL, LAYER_RTOL, f"{name} loss")
    assert_close(grad, tensor(t["grad_input"]), LAYER_ATOL, LAYER_RTOL, f"{name} grad_input")
    assert none is None and alone == loss, f"{name}: the loss without its gradient differs"


def run_optimizer(case):
    """As the C runner: the n values are a Linear(n-1 -> 1)'s weight (first n-1) and bias (last), and
    the optimizer steps that net with gradients set by name."""
    name = case["case"]
    before = tensor(case["tensors"]["param_before"]).ravel()
    n = before.size
    assert n >= 2, f"{name}: a parameter of {n} values does not fit Linear(n-1 -> 1)"
    net = bndrop.Net((n - 1,)).add_linear(1)
    opt = make_optimizer(case["op"], case["config"], net, name)

    def put(setter, values):
        setter("0.weight", values[:-1].reshape(1, n - 1))
        setter("0.bias", values[-1:])

    put(net.set_tensor, before)
    assert case["steps"], f"{name}: no steps"
    for i, step in enumerate(case["steps"]):
        put(net.set_grad, tensor(step["grad"]).ravel())
        opt.step()
        value = np.concatenate([net.get_tensor("0.weight").ravel(), net.get_tensor("0.bias")])
        assert_close(value, tensor(step["param_after"]), LAYER_ATOL, LAYER_RTOL, f"{name} step {i}")


def run_network(case):
    """The trajectory twice: forward, loss, backward and optimizer step as separate calls (checking
    every output), then the one-call training step."""
    name, c = case["case"], case["config"]
    classification = c.get("loss") == "cross_entropy"
    initial, final = case["state_initial"], case["state_final"]
    assert case["steps"], f"{name}: no steps"
    for one_call in (False, True):
        path = f"{name} ({'one-call train step' if one_call else 'forward/loss/backward/step'})"
        net = bndrop.Net(c["input_shape"])
        for i, layer in enumerate(c["layers"]):
            add_network_layer(net, layer, f"{name} layer {i}")
        assert set(net.tensor_names()) == set(initial), f"{path}: state_dict names"
        net.load_state_dict({k: tensor(v) for k, v in initial.items()})
        opt = make_optimizer(c["optimizer"], c.get("optimizer_config", {}), net, name)
        for i, step in enumerate(case["steps"]):
            what = f"{path} step {i}"
            x = tensor(step["input"])
            if classification:
                target = dict(labels=labels(step["target"]))
            else:
                target = dict(targets=tensor(step["target"]).reshape((x.shape[0],) + net.output_shape))
            if one_call:
                loss = net.train_step(opt, x, **target)
            else:
                net.zero_grad()
                out = net.forward(x)
                assert_close(out, tensor(step["output"]), NET_ATOL, NET_RTOL, f"{what} output")
                if classification:
                    loss, grad = bndrop.cross_entropy(out, target["labels"])
                else:
                    loss, grad = bndrop.mse(out, target["targets"])
                net.backward(grad, need_input_grad=False)
                opt.step()
            assert_close([loss], tensor(step["loss"]), NET_ATOL, NET_RTOL, f"{what} loss")
        state = net.state_dict()
        for key, raw in final.items():
            assert_close(state[key], tensor(raw), NET_ATOL, NET_RTOL, f"{path} final {key}")
        net.eval()
        eval_input = tensor(case["tensors"]["eval_input"])
        assert_close(net.forward(eval_input), tensor(case["tensors"]["eval_output"]), NET_ATOL, NET_RTOL,
                     f"{path} eval output")


RUNNERS = {
    "linear": run_layer, "relu": run_layer, "conv2d": run_layer, "avgpool2d": run_layer, "maxpool2d": run_layer,
    "batchnorm1d": run_batchnorm, "batchnorm2d": run_batchnorm,
    "cross_entropy": run_loss, "mse": run_loss,
    "sgd": run_optimizer, "adam": run_optimizer, "adamw": run_optimizer,
    "network": run_network,
}


def test_golden_cases_exist():
    """Fails, naming the folder it looked in, when there is no case to run."""
    assert FILES, WHY_NONE


@pytest.mark.parametrize("path", FILES or [], ids=[p.stem for p in FILES or []])
def test_golden_case(path):
    case = load_case(path)
    case.setdefault("case", path.stem)
    op = case.get("op")
    assert op in RUNNERS, f"{path.stem}: unknown op {op!r}"
    RUNNERS[op](case)


def test_team_golden_cases_exist():
    assert TEAM_FILES, "no *.json case in Tests/golden"


@pytest.mark.parametrize("path", TEAM_FILES, ids=[p.stem for p in TEAM_FILES])
def test_team_golden_case(path):
    """This repository's cases (Tests/golden, PyTorch 2.15): the same runners."""
    test_golden_case(path)

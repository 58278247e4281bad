"""Writes this folder's golden cases with PyTorch: pooling with padding, ceil_mode, count_include_pad,
divisor_override and (MaxPool2d) dilation, Conv2d with dilation and groups, and the losses' weight,
ignore_index, label_smoothing and reduction, which ../shared/golden does not cover.

The cases use ../shared/golden's schema (see its README.md), so the same runners read both folders.
Run it with a Python that has torch (not needed by `make test`, which reads the JSON files):

    python3 Tests/golden/make_cases.py

Inputs come from fixed seeds; the files are written atomically (temporary file, then rename).
"""
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def tensor(t):
    t = t.detach().contiguous()
    values = [float(v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": values}


def write(name, document):
    path = HERE / f"{name}.json"
    fd, temporary = tempfile.mkstemp(dir=HERE, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, separators=(",", ":"))
        f.write("\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def pooling_case(name, op, shape, config, seed, integers=False, notes=""):
    """One pooling layer: output of the input, and the input gradient of a random output gradient."""
    generator = torch.Generator().manual_seed(seed)
    if integers:  # small integers: many ties inside windows, to test which maximum takes the gradient
        x = torch.randint(-3, 4, shape, generator=generator).float()
    else:
        x = torch.randn(shape, generator=generator)
    x.requires_grad_(True)
    arguments = {k: v for k, v in config.items()}
    layer = torch.nn.AvgPool2d(**arguments) if op == "avgpool2d" else torch.nn.MaxPool2d(**arguments)
    y = layer(x)
    grad_output = torch.randn(y.shape, generator=generator)
    y.backward(grad_output)
    write(name, {
        "case": name, "op": op, "torch_version": torch.__version__, "config": config, "notes": notes,
        "tensors": {"input": tensor(x), "output": tensor(y), "grad_output": tensor(grad_output),
                    "grad_input": tensor(x.grad)},
    })


def conv_case(name, shape, config, seed, notes=""):
    """One Conv2d: output, and the input, weight and bias gradients of a random output gradient."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)   # the layer's initial weights
    layer = torch.nn.Conv2d(**config)
    x = torch.randn(shape, generator=generator, requires_grad=True)
    y = layer(x)
    grad_output = torch.randn(y.shape, generator=generator)
    y.backward(grad_output)
    write(name, {
        "case": name, "op": "conv2d", "torch_version": torch.__version__, "config": dict(config, bias=True),
        "notes": notes,
        "tensors": {"input": tensor(x), "weight": tensor(layer.weight), "bias": tensor(layer.bias),
                    "output": tensor(y), "grad_output": tensor(grad_output), "grad_input": tensor(x.grad),
                    "grad_weight": tensor(layer.weight.grad), "grad_bias": tensor(layer.bias.grad)},
    })


def loss_case(name, op, config, seed, batch=6, classes=5, labels=None):
    """One loss: its value and the gradient of its input, with the options in `config` (PyTorch's names)."""
    generator = torch.Generator().manual_seed(seed)
    arguments = dict(config)
    if op == "cross_entropy":
        x = (3 * torch.randn((batch, classes), generator=generator)).requires_grad_(True)
        target = torch.tensor(labels) if labels is not None else torch.randint(0, classes, (batch,), generator=generator)
        if "weight" in arguments:
            arguments["weight"] = torch.tensor(arguments["weight"])
        loss = torch.nn.functional.cross_entropy(x, target, **arguments)
    else:
        x = torch.randn((batch, classes), generator=generator).requires_grad_(True)
        target = torch.randn((batch, classes), generator=generator)
        loss = torch.nn.functional.mse_loss(x, target, **arguments)
    loss.backward()
    write(name, {
        "case": name, "op": op, "torch_version": torch.__version__, "config": config, "notes": "",
        "tensors": {"input": tensor(x), "target": tensor(target), "loss": tensor(loss.reshape(1)),
                    "grad_input": tensor(x.grad)},
    })


def main():
    torch.use_deterministic_algorithms(True)
    avg = "avgpool2d"
    pooling_case("avgpool2d_k3_s2_p1", avg, (2, 3, 7, 7),
                 {"kernel_size": 3, "stride": 2, "padding": 1}, seed=101,
                 notes="padding counted in the divisor (count_include_pad=True, the default)")
    pooling_case("avgpool2d_k3_s2_p1_exclude_pad_ceil", avg, (2, 2, 8, 8),
                 {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
                 seed=102, notes="divisor = the window's cells inside the input; ceil mode adds a last window")
    pooling_case("avgpool2d_k2_s2_ceil_odd", avg, (2, 2, 7, 7),
                 {"kernel_size": 2, "stride": 2, "ceil_mode": True}, seed=103,
                 notes="the last row and column of windows hang over the input: divisor 2 or 1 there")
    pooling_case("avgpool2d_k4_s3_p2_ceil_rectangular", avg, (2, 2, 9, 6),
                 {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}, seed=104,
                 notes="pad = kernel/2; a window past the right padding is clipped to it for the divisor")
    pooling_case("avgpool2d_k3_s1_p1_divisor_override", avg, (1, 2, 5, 5),
                 {"kernel_size": 3, "stride": 1, "padding": 1, "divisor_override": 5}, seed=105)
    mx = "maxpool2d"
    pooling_case("maxpool2d_k3_s2_p1", mx, (2, 3, 7, 7),
                 {"kernel_size": 3, "stride": 2, "padding": 1}, seed=201)
    pooling_case("maxpool2d_k2_s2_ceil_odd", mx, (2, 2, 7, 7),
                 {"kernel_size": 2, "stride": 2, "ceil_mode": True}, seed=202)
    pooling_case("maxpool2d_k3_s2_p1_dilation2_ceil", mx, (2, 2, 10, 9),
                 {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}, seed=203)
    pooling_case("maxpool2d_k3_s1_p1_ties", mx, (2, 2, 6, 6),
                 {"kernel_size": 3, "stride": 1, "padding": 1}, seed=204, integers=True,
                 notes="integer inputs: ties in most windows; overlapping windows add their gradients")
    conv_case("conv2d_k3_dilation2_p2", (2, 3, 9, 9),
              {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 2, "dilation": 2}, seed=301)
    conv_case("conv2d_k3_s2_dilation3", (2, 2, 13, 11),
              {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "dilation": 3}, seed=302)
    conv_case("conv2d_groups2_k3_p1", (2, 4, 7, 7),
              {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 2}, seed=303,
              notes="weight (6, 2, 3, 3): output channels 0-2 see input channels 0-1, 3-5 see 2-3")
    conv_case("conv2d_depthwise_k5_s2_p2", (2, 3, 10, 10),
              {"in_channels": 3, "out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 2, "groups": 3},
              seed=304, notes="depthwise with multiplier 2")
    conv_case("conv2d_groups4_dilation2_s2_p1", (2, 8, 12, 12),
              {"in_channels": 8, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2,
               "groups": 4}, seed=305)
    weights = [0.5, 2.0, 1.0, 3.0, 0.25]
    loss_case("cross_entropy_weight", "cross_entropy", {"weight": weights}, seed=401)
    loss_case("cross_entropy_ignore_index", "cross_entropy", {}, seed=402, labels=[0, -100, 4, 2, -100, 1])
    loss_case("cross_entropy_label_smoothing", "cross_entropy", {"label_smoothing": 0.1}, seed=403)
    loss_case("cross_entropy_weight_smoothing_ignore", "cross_entropy",
              {"weight": weights, "ignore_index": 3, "label_smoothing": 0.25}, seed=404, labels=[3, 0, 1, 3, 4, 2])
    loss_case("cross_entropy_sum_all_options", "cross_entropy",
              {"weight": weights, "ignore_index": 1, "label_smoothing": 0.2, "reduction": "sum"}, seed=405,
              labels=[1, 0, 4, 2, 2, 3])
    loss_case("cross_entropy_sum", "cross_entropy", {"reduction": "sum"}, seed=406, batch=9, classes=10)
    loss_case("mse_sum", "mse", {"reduction": "sum"}, seed=407)
    return 0


if __name__ == "__main__":
    sys.exit(main())

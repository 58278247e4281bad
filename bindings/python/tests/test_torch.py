"""Against PyTorch itself, when it is installed (skipped otherwise): a state_dict moves both ways, and
the same net computes the same outputs and gradients in train and eval mode."""
import numpy as np
import pytest

try:
    import torch
except ImportError:
    pytest.skip("PyTorch is not installed for this interpreter: the torch comparisons are skipped (the golden "
                "cases, made by PyTorch, still run)", allow_module_level=True)

import bndrop


def pair(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 5), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                                torch.nn.Conv2d(3, 6, 3), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(150, 25),
                                torch.nn.BatchNorm1d(25, momentum=None), torch.nn.ReLU(), torch.nn.Linear(25, 10))
    net = (bndrop.Net((1, 28, 28)).add_conv2d(3, 5).add_relu().add_avgpool2d(2).add_conv2d(6, 3).add_batchnorm()
           .add_relu().add_maxpool2d(2).add_flatten().add_linear(25).add_batchnorm(momentum=None).add_relu()
           .add_linear(10))
    return model, net


def test_torch_state_dict_in_and_out():
    model, net = pair()
    assert net.tensor_names() == list(model.state_dict())
    net.load_state_dict(model.state_dict())                      # torch CPU tensors, read by numpy
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(net.get_tensor(name), value.numpy())
    other = pair(seed=1)[0]
    other.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in net.state_dict().items()})
    for name, value in other.state_dict().items():
        assert value.dtype == model.state_dict()[name].dtype     # int64 num_batches_tracked, as PyTorch's
        assert torch.equal(value, model.state_dict()[name])
    # Parameters that track gradients, as named_parameters() gives them, load too; num_batches_tracked
    # keeps every bit of its int64 (past 2^24, where a float32 would round it).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1)
    net.load_state_dict(dict(model.named_parameters()), strict=False)
    for name, value in model.named_parameters():
        np.testing.assert_array_equal(net.get_tensor(name), value.detach().numpy())
    model.state_dict()["4.num_batches_tracked"].fill_(2**24 + 1)
    net.load_state_dict(model.state_dict())
    assert int(net.state_dict()["4.num_batches_tracked"]) == 2**24 + 1


def test_the_same_numbers_as_torch():
    model, net = pair()
    net.load_state_dict(model.state_dict())
    x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    for step in range(3):
        xt = torch.from_numpy(x).requires_grad_(True)
        model.zero_grad()
        net.zero_grad()
        out = model(xt)
        np.testing.assert_allclose(net.forward(x), out.detach().numpy(), atol=1e-4, rtol=1e-3)
        g = np.random.default_rng(step).normal(size=out.shape).astype(np.float32)
        out.backward(torch.from_numpy(g))
        np.testing.assert_allclose(net.backward(g), xt.grad.numpy(), atol=1e-5, rtol=1e-3)
        for name, p in model.named_parameters():
            np.testing.assert_allclose(net.grad(name), p.grad.numpy(), atol=1e-4, rtol=1e-3, err_msg=name)
    for name, value in model.state_dict().items():              # running statistics after three batches
        np.testing.assert_allclose(net.get_tensor(name), value.numpy(), atol=1e-5, rtol=1e-4, err_msg=name)
    model.eval()
    net.eval()
    with torch.no_grad():
        np.testing.assert_allclose(net(x), model(torch.from_numpy(x)).numpy(), atol=1e-4, rtol=1e-3)


def test_the_same_numbers_as_torch_where_products_skip_zeros():
    """The dropout experiment's 1-100-100-1 net: the 100->100 layer's input (after ReLU) and output gradient
    (through ReLU) are mostly zeros, so on AVX-512 CPUs bndrop's products skip them; still PyTorch's numbers."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(1, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100), torch.nn.ReLU(),
                                torch.nn.Linear(100, 1))
    with torch.no_grad():                                       # more units off: more zeros to skip
        model[0].bias -= 0.3
        model[2].bias -= 0.1
    net = bndrop.Net((1,)).add_linear(100).add_relu().add_linear(100).add_relu().add_linear(1)
    net.load_state_dict(model.state_dict())
    x = np.linspace(-1, 1, 50, dtype=np.float32).reshape(50, 1)
    with torch.no_grad():                                       # at least half zeros: the sparse path's case,
        hidden = torch.relu(model[0](torch.from_numpy(x)))      # for the forward and both gradient products
        assert (hidden == 0).float().mean() >= 0.5
        assert (model[2](hidden) <= 0).float().mean() >= 0.5
    xt = torch.from_numpy(x).requires_grad_(True)
    out = model(xt)
    np.testing.assert_allclose(net.forward(x), out.detach().numpy(), atol=1e-5, rtol=1e-4)
    g = np.random.default_rng(4).normal(size=out.shape).astype(np.float32)
    out.backward(torch.from_numpy(g))
    np.testing.assert_allclose(net.backward(g), xt.grad.numpy(), atol=1e-5, rtol=1e-4)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(net.grad(name), p.grad.numpy(), atol=1e-5, rtol=1e-4, err_msg=name)

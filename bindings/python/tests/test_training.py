"""Training end to end through Python: a manual loop with train_step and a Loader, fit with validation
and a callback (stopping, exceptions, looking at the net), regression, evaluate."""
import numpy as np
import pytest

import bndrop


def blobs(n=400, seed=0):
    """Two Gaussian blobs in 2-D, centres (-1.5, -1.5) and (1.5, 1.5), unit variance."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    features = rng.normal(size=(n, 2)) + np.where(labels[:, None] == 1, 1.5, -1.5)
    return features.astype(np.float32), labels


def classifier(seed=0):
    return bndrop.Net(2, seed=seed).add_linear(16).add_batchnorm().add_relu().add_dropout(0.1).add_linear(2)


def test_two_blobs_with_train_step_and_a_loader():
    x, y = blobs()
    net = classifier()
    opt = bndrop.SGD(net, lr=0.1, momentum=0.9)
    loader = bndrop.Dataset.from_arrays(x, y).loader(batch_size=32, seed=0, drop_last=True)
    first_epoch, last_epoch = [], []
    for epoch in range(5):
        losses = [net.train_step(opt, inputs, labels=labels) for inputs, labels in loader]
        (first_epoch if epoch == 0 else last_epoch).append(np.mean(losses))
    assert last_epoch[-1] < 0.5 * first_epoch[0]
    test_x, test_y = blobs(200, seed=1)
    accuracy = (net.eval()(test_x).argmax(1) == test_y).mean()
    assert accuracy > 0.9


def test_two_blobs_with_fit():
    x, y = blobs()
    train, validation = bndrop.Dataset.from_arrays(x, y), bndrop.Dataset.from_arrays(*blobs(200, seed=1))
    net = classifier()
    opt = bndrop.Adam(net, lr=0.01)
    events = []
    summary = bndrop.fit(net, opt, train, epochs=4, batch_size=32, shuffle_seed=3, validation=validation,
                         callback=lambda e: events.append(e) or True)
    steps = [e for e in events if e.kind == "step"]
    epochs = [e for e in events if e.kind == "epoch"]
    assert summary.steps == len(steps) == 4 * 13 and summary.epochs_completed == len(epochs) == 4
    assert not summary.stopped_early and summary.samples == 4 * 400
    assert steps[-1].global_step == 52 and steps[0].step == 0 and steps[-1].batch_size == 400 - 12 * 32
    assert steps[0].validation_loss is None and epochs[0].validation_accuracy is not None
    assert epochs[-1].loss < 0.5 * epochs[0].loss or epochs[-1].loss < 0.2
    assert summary.validation_accuracy > 0.9 and summary.last_epoch_loss == pytest.approx(epochs[-1].loss)
    evaluation = bndrop.evaluate(net, validation, batch_size=64)
    assert evaluation.accuracy == pytest.approx(summary.validation_accuracy)
    assert evaluation.loss == pytest.approx(summary.validation_loss, rel=1e-6)
    assert net.training                                            # left in the mode it was in


def test_the_same_seeds_give_the_same_training():
    x, y = blobs()
    results = []
    for _ in range(2):
        net = classifier(seed=4)
        bndrop.fit(net, bndrop.SGD(net, lr=0.05), bndrop.Dataset.from_arrays(x, y), epochs=2, batch_size=50,
                   shuffle_seed=9)
        results.append(net.state_dict())
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name])


def test_the_callback_stops_training():
    x, y = blobs()
    net = classifier()
    calls = []

    def stop_after_three_steps(event):
        calls.append(event.kind)
        return len(calls) < 3

    summary = bndrop.fit(net, bndrop.SGD(net), bndrop.Dataset.from_arrays(x, y), epochs=3, batch_size=32,
                         callback=stop_after_three_steps)
    assert summary.stopped_early and summary.steps == 3 and calls == ["step"] * 3
    # None (a callback without a return statement) goes on.
    summary = bndrop.fit(net, bndrop.SGD(net), bndrop.Dataset.from_arrays(x, y), epochs=1, batch_size=100,
                         callback=lambda event: None)
    assert not summary.stopped_early and summary.steps == 4


def test_an_exception_in_the_callback_stops_training_and_propagates():
    x, y = blobs()
    net = classifier()
    opt = bndrop.SGD(net)
    train = bndrop.Dataset.from_arrays(x, y)
    seen = []

    class Stop(Exception):
        pass

    def failing(event):
        seen.append(event.global_step)
        if event.global_step == 2:
            raise Stop("from the callback")
        return True

    with pytest.raises(Stop, match="from the callback"):
        bndrop.fit(net, opt, train, epochs=2, batch_size=32, callback=failing)
    assert seen == [1, 2]
    # Nothing is left locked or pinned: the net trains again, and everything can be closed.
    assert bndrop.fit(net, opt, train, epochs=1, batch_size=32).steps == 13
    for handle in (opt, net, train):
        handle.close()


def test_the_callback_may_look_at_the_net_but_not_close_it():
    x, y = blobs()
    net = classifier()
    opt = bndrop.SGD(net)
    train = bndrop.Dataset.from_arrays(x, y)
    hidden = []

    def look(event):
        if event.kind == "epoch":
            net.eval()                                   # left in eval mode: fit puts train mode back
            net.forward(x[:8])
            hidden.append(net.layer_output(0))
        return True

    bndrop.fit(net, opt, train, epochs=2, batch_size=64, callback=look)
    assert len(hidden) == 2 and hidden[0].shape == (8, 16) and net.training
    for victim in (net, opt, train):
        def close_it(event, victim=victim):
            victim.close()
        with pytest.raises(bndrop.StateError, match="cannot be closed"):
            bndrop.fit(net, opt, train, epochs=1, batch_size=64, callback=close_it)
        assert not victim.closed
    with pytest.raises(bndrop.StateError, match="reshaped"):
        bndrop.fit(net, opt, train, epochs=1, batch_size=64, callback=lambda e: train.reshape(1, 2))


def test_a_callback_that_adds_a_layer_stops_training_with_a_state_error():
    x, y = blobs()
    net = classifier()
    with pytest.raises(bndrop.StateError):
        bndrop.fit(net, bndrop.SGD(net), bndrop.Dataset.from_arrays(x, y), callback=lambda e: net.add_relu())


def test_regression_fit_and_evaluate():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 1)).astype(np.float32)
    data = bndrop.Dataset.from_arrays(x, targets=np.sin(3 * x))
    net = bndrop.Net(1, seed=1).add_linear(32).add_relu().add_linear(1)
    before = bndrop.evaluate(net, data)
    assert before.accuracy is None
    summary = bndrop.fit(net, bndrop.Adam(net, lr=0.01), data, epochs=60, batch_size=50, loss="mse")
    after = bndrop.evaluate(net, data)
    assert summary.validation_loss is None and after.loss < 0.2 * before.loss
    with pytest.raises(bndrop.InvalidArgumentError):
        bndrop.fit(net, bndrop.SGD(net), data, loss="cross_entropy")   # a loss that does not suit targets
    with pytest.raises(bndrop.InvalidArgumentError):
        bndrop.fit(net, bndrop.SGD(net), data, loss="hinge")
    with pytest.raises(bndrop.ShapeError):
        bndrop.fit(net, bndrop.SGD(net), data, batch_size=0)


def test_train_step_regression_matches_forward_mse_backward_step():
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    a, b = bndrop.Net(3, seed=5).add_linear(4).add_relu().add_linear(2), bndrop.Net(3, seed=5)
    b.add_linear(4).add_relu().add_linear(2)
    opt_a, opt_b = bndrop.SGD(a, lr=0.1), bndrop.SGD(b, lr=0.1)
    loss_a = a.train_step(opt_a, x, targets=t)
    b.zero_grad()
    loss_b, grad = bndrop.mse(b.forward(x), t)
    b.backward(grad, need_input_grad=False)
    opt_b.step()
    assert loss_a == loss_b
    for name in a.tensor_names():
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name))


def test_train_step_with_loss_arguments_matches_the_loss_by_hand():
    """F.cross_entropy's weight, ignore_index and label_smoothing, and the squared error's sum, in the
    one-call step: the bits of forward, the loss with those arguments, backward and the optimizer step."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(8, 5)), np.array([0, 2, 1, 2, 9, 0, 1, 9])
    options = dict(weight=[0.5, 2.0, 1.5], ignore_index=9, label_smoothing=0.2, reduction="sum")
    a, b = (bndrop.Net(5, seed=3).add_linear(6).add_relu().add_linear(3) for _ in range(2))
    opt_a, opt_b = bndrop.SGD(a, lr=0.05), bndrop.SGD(b, lr=0.05)
    loss_a = a.train_step(opt_a, x, labels=y, **options)
    b.zero_grad()
    loss_b, grad = bndrop.cross_entropy(b.forward(x), y, **options)
    b.backward(grad, need_input_grad=False)
    opt_b.step()
    assert loss_a == loss_b
    for name in a.tensor_names():
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name))
    t = rng.normal(size=(8, 3))
    summed = a.train_step(opt_a, x, targets=t, reduction="sum")
    assert summed == pytest.approx(24 * bndrop.mse(b.forward(x), t)[0], rel=1e-5)   # b is a's twin again
    with pytest.raises(bndrop.InvalidArgumentError, match="out of bounds"):
        a.train_step(opt_a, x, labels=y)   # label 9 without ignore_index=9


def test_the_readme_example_runs(capsys):
    """The Python block of the project README's "Using it from Python", run as written."""
    import os
    import re
    from conftest import REPO
    readme = REPO / "README.md"
    if not os.path.isdir("/usr/share/datasets/fashion-mnist") or not readme.exists():
        pytest.skip("needs the checkout's README.md and Debian's dataset-fashion-mnist")
    section = readme.read_text().split("## Using it from Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md (Using it from Python)", "exec"), scope)
    assert scope["summary"].epochs_completed == 2 and scope["summary"].validation_accuracy > 0.7
    out = capsys.readouterr().out
    assert "epoch 1: loss" in out and "epoch 2: loss" in out


def _regression_pair():
    """The article's regression net, plain and with dropout, and an Adam for each."""
    plain = bndrop.Net(1, seed=1).add_linear(100).add_relu().add_linear(100).add_relu().add_linear(1)
    dropped = bndrop.Net(1, seed=2).add_linear(100).add_dropout(0.2).add_relu().add_linear(100).add_dropout(0.2)
    dropped.add_relu().add_linear(1)
    return [plain, dropped], [bndrop.Adam(plain, lr=0.01), bndrop.Adam(dropped, lr=0.01)]


def test_train_steps_side_by_side_give_the_bits_of_train_step_in_turn():
    x = np.linspace(-1, 1, 50, dtype=np.float32).reshape(50, 1)
    t = x + 0.3 * np.random.default_rng(4).normal(size=(50, 1)).astype(np.float32)
    together, together_opts = _regression_pair()
    alone, alone_opts = _regression_pair()
    for _ in range(20):
        losses = bndrop.train_steps(together, together_opts, x, targets=t)
        expected = [net.train_step(opt, x, targets=t) for net, opt in zip(alone, alone_opts)]
        assert losses == expected
    for a, b in zip(together, alone):
        for name in a.tensor_names():
            np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name))


def test_train_steps_refuses_without_running_any_step():
    nets, opts = _regression_pair()
    before = [{name: net.get_tensor(name) for name in net.tensor_names()} for net in nets]
    x, t = np.zeros((4, 1), np.float32), np.ones((4, 1), np.float32)
    with pytest.raises(bndrop.InvalidArgumentError, match="different network"):
        bndrop.train_steps(nets, list(reversed(opts)), x, targets=t)
    with pytest.raises(bndrop.InvalidArgumentError, match="twice"):
        bndrop.train_steps([nets[0], nets[0]], [opts[0], opts[0]], x, targets=t)
    with pytest.raises(TypeError):
        bndrop.train_steps(nets, opts, x)
    for net, saved in zip(nets, before):
        for name, value in saved.items():
            np.testing.assert_array_equal(net.get_tensor(name), value)

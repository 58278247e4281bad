"""Handles from Python: each freed exactly once (close(), with, or collection), closed ones refused,
optimizers and loaders keeping what they need alive, nets shared between threads serialized."""
import gc
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import bndrop
from conftest import source_env


@pytest.fixture
def frees(monkeypatch):
    """Counts the C free calls per class, still freeing. Earlier tests' garbage (a net kept by the
    traceback of an exception a test expected) is collected first, so only this test's frees count."""
    gc.collect()
    counts = {}
    for cls in (bndrop.Net, bndrop.Optimizer, bndrop.Dataset, bndrop.Loader):
        real = cls.__dict__["_free"]

        def counting(ptr, real=real, name=cls.__name__):
            counts[name] = counts.get(name, 0) + 1
            real(ptr)
        monkeypatch.setattr(cls, "_free", counting)
    return counts


def test_close_frees_once_and_refuses_later_use(frees):
    net = bndrop.Net(3).add_linear(2)
    net.close()
    net.close()
    del net
    gc.collect()
    assert frees == {"Net": 1}
    closed = bndrop.Net(3)
    closed.close()
    for use in (lambda: closed.forward(np.ones((1, 3))), lambda: closed.add_relu(), lambda: closed.training,
                lambda: closed.state_dict(), lambda: bndrop.SGD(closed)):
        with pytest.raises(bndrop.StateError, match="closed"):
            use()
    assert repr(closed) == "Net(closed)"


def test_with_blocks_and_collection_free_once(frees):
    with bndrop.Net(3).add_linear(2) as net:
        with bndrop.SGD(net) as opt:
            pass
        assert opt.closed and not net.closed
    assert net.closed
    data = bndrop.Dataset.from_arrays(np.ones((4, 3)), [0, 1, 0, 1])
    with data.loader(batch_size=2) as loader:
        list(loader)
    del net, opt, data, loader
    gc.collect()
    assert frees == {"Net": 1, "Optimizer": 1, "Dataset": 1, "Loader": 1}


def test_the_optimizer_keeps_its_net_alive_and_closes_with_it(frees):
    net = bndrop.Net(3).add_linear(2)
    opt = bndrop.SGD(net)
    del net
    gc.collect()
    assert frees == {}
    opt.net.set_grad("0.bias", [1, 1])
    opt.step()                                             # the net is still there
    opt.net.close()                                        # closes the optimizer first
    assert opt.closed and frees == {"Optimizer": 1, "Net": 1}
    with pytest.raises(bndrop.StateError, match="closed"):
        opt.step()
    del opt
    gc.collect()
    assert frees == {"Optimizer": 1, "Net": 1}


def test_reference_cycles_are_collected_safely(frees):
    """An optimizer and its net in a cycle are collected in some order; either order is safe."""
    for _ in range(50):
        net = bndrop.Net(3).add_linear(2)
        net.opt = bndrop.Adam(net)
        net.self = net
        del net
    gc.collect()
    assert frees == {"Net": 50, "Optimizer": 50}


def test_a_loader_keeps_its_data_after_the_dataset_is_closed():
    data = bndrop.Dataset.from_arrays(np.arange(6.0).reshape(6, 1), [0, 1, 2, 0, 1, 2])
    loader = bndrop.Loader(data, batch_size=6, shuffle=False)
    data.close()
    with pytest.raises(bndrop.StateError):
        data.get()
    inputs, labels = loader.next_batch()
    assert inputs[:, 0].tolist() == [0, 1, 2, 3, 4, 5] and labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_interpreter_exit_with_live_handles():
    """Handles still alive when the interpreter exits (in cycles, at module level) end cleanly."""
    code = textwrap.dedent("""
        import numpy as np, bndrop
        net = bndrop.Net(4).add_linear(3).add_batchnorm().add_linear(2)
        opt = bndrop.SGD(net)
        net.cycle = (net, opt)
        data = bndrop.Dataset.from_arrays(np.ones((8, 4)), np.arange(8) % 2)
        loader = data.loader(batch_size=4)
        bndrop.fit(net, opt, data, epochs=1, batch_size=4)
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=source_env(),
                            timeout=60)
    assert result.returncode == 0 and result.stdout == "done\n" and result.stderr == "", result.stderr


def test_threads_sharing_a_net_are_serialized():
    """The library forbids two threads in one net at once; the binding's per-net lock makes that safe.
    Four threads each train the same net; the result is some serial order of their steps."""
    net = bndrop.Net(8, seed=1).add_linear(16).add_batchnorm().add_relu().add_linear(4)
    opt = bndrop.SGD(net, lr=0.01)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8)), rng.integers(0, 4, 32)
    reference = net.eval()(x)
    net.train()
    errors = []

    def work():
        try:
            for _ in range(50):
                net.train_step(opt, x, labels=y)
                assert net.grad("0.weight").shape == (16, 8)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert int(net.get_tensor("1.num_batches_tracked")) == 200
    assert not np.array_equal(net.eval()(x), reference)


def test_closing_from_another_thread_waits_for_the_running_call():
    net = bndrop.Net(784).add_linear(256).add_relu().add_linear(10)
    x = np.ones((512, 784), np.float32)
    results, errors = [], []

    def forward_many():
        try:
            for _ in range(20):
                results.append(net.forward(x).shape)
        except bndrop.StateError:
            pass                                      # closed between two calls: refused, not crashed
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=forward_many)
    t.start()
    net.close()
    t.join()
    assert not errors and all(shape == (512, 10) for shape in results)

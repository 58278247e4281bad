#!/usr/bin/env python3
"""bndrop's checkpoints against independent readers and writers of the safetensors format.

Usage: check_safetensors.py LIBBNDROP_SO

Through ctypes on libbndrop.so (the C API): a trained net with every layer kind and an Adam optimizer are
saved; then
  - numpy and the standard json module read the files by the format's specification (8-byte little-endian
    header length, JSON header, little-endian data) and must find every tensor with the values
    bnd_net_get_tensor reports, num_batches_tracked as I64, string-only metadata, the data fully indexed;
  - a file written here by hand with numpy (tensors in another order, unpadded header, no metadata) must
    load with bnd_net_load_weights and give back its values;
  - with the `safetensors` package (skipped, with a message, when it is not installed): its numpy reader
    must read bndrop's files (values and metadata), and a file its writer made must load into bndrop.
Prints one line per check and "N checks passed"; exits 1 at the first failure.
"""
import ctypes
import json
import os
import struct
import sys
import tempfile

import numpy as np

checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)
    checks += 1


lib = ctypes.CDLL(sys.argv[1])
lib.bnd_last_error.restype = ctypes.c_char_p
lib.bnd_version_string.restype = ctypes.c_char_p
P = ctypes.c_void_p


def ok(status):
    if status != 0:
        print(f"FAIL: bndrop status {status}: {lib.bnd_last_error().decode()}")
        sys.exit(1)


def build(seed):
    """{1, 8, 8} -> Conv2d(3, 3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2) -> AvgPool2d(2, stride 1)
    -> Flatten -> Dropout(0.25) -> Linear(6) -> BatchNorm1d(momentum None) -> Linear(3)."""
    net = P()
    shape = (ctypes.c_int64 * 3)(1, 8, 8)
    ok(lib.bnd_net_create(shape, ctypes.c_size_t(3), ctypes.byref(net)))
    ok(lib.bnd_net_seed(net, ctypes.c_uint64(seed)))
    i64 = ctypes.c_int64
    ok(lib.bnd_net_add_conv2d(net, i64(3), i64(3), i64(1), i64(1)))
    ok(lib.bnd_net_add_batchnorm(net, None))
    ok(lib.bnd_net_add_relu(net))
    ok(lib.bnd_net_add_maxpool2d(net, i64(2), i64(0)))
    ok(lib.bnd_net_add_avgpool2d(net, i64(2), i64(1)))
    ok(lib.bnd_net_add_flatten(net))
    ok(lib.bnd_net_add_dropout(net, ctypes.c_float(0.25)))
    ok(lib.bnd_net_add_linear(net, i64(6)))

    class BatchNormParams(ctypes.Structure):
        _fields_ = [("eps", ctypes.c_float), ("momentum", ctypes.c_float), ("cumulative_average", ctypes.c_int32),
                    ("affine", ctypes.c_int32), ("track_running_stats", ctypes.c_int32)]
    ok(lib.bnd_net_add_batchnorm(net, ctypes.byref(BatchNormParams(1e-5, 0.1, 1, 1, 1))))
    ok(lib.bnd_net_add_linear(net, i64(3)))
    return net


def state(net):
    """{name: numpy array} through bnd_net_get_tensor / bnd_net_tensor_shape."""
    count = ctypes.c_size_t()
    ok(lib.bnd_net_tensor_count(net, ctypes.byref(count)))
    result = {}
    for i in range(count.value):
        name = ctypes.create_string_buffer(64)
        ok(lib.bnd_net_tensor_name(net, ctypes.c_size_t(i), name, ctypes.c_size_t(64)))
        numel, rank = ctypes.c_size_t(), ctypes.c_size_t()
        dims = (ctypes.c_int64 * 4)()
        ok(lib.bnd_net_tensor_numel(net, name, ctypes.byref(numel)))
        ok(lib.bnd_net_tensor_shape(net, name, dims, ctypes.c_size_t(4), ctypes.byref(rank)))
        values = (ctypes.c_float * numel.value)()
        ok(lib.bnd_net_get_tensor(net, name, values, numel))
        result[name.value.decode()] = np.array(values, dtype=np.float32).reshape([dims[k] for k in range(rank.value)])
    return result


def read_by_spec(path):
    """(metadata, {name: array}) read with numpy and json alone, checking the format's rules."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    check(8 + length <= len(data), f"{path}: header inside the file")
    check((8 + length) % 8 == 0, f"{path}: tensor data starts 8-byte aligned")
    header = json.loads(data[8:8 + length].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    check(metadata is None or all(isinstance(v, str) for v in metadata.values()), f"{path}: metadata values are strings")
    body = data[8 + length:]
    dtypes = {"F32": "<f4", "I64": "<i8"}
    spans, tensors = [], {}
    for name, info in header.items():
        check(set(info) == {"dtype", "shape", "data_offsets"}, f"{path}: {name} has dtype, shape, data_offsets")
        begin, end = info["data_offsets"]
        dtype = np.dtype(dtypes[info["dtype"]])
        check(end - begin == dtype.itemsize * int(np.prod(info["shape"], dtype=np.int64)), f"{path}: {name} size")
        check(begin % dtype.itemsize == 0, f"{path}: {name} aligned to its element size")
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(info["shape"])
        spans.append((begin, end))
    spans.sort()
    position = 0
    for begin, end in spans:
        check(begin == position, f"{path}: data indexed without gap or overlap")
        position = end
    check(position == len(body), f"{path}: no bytes after the last tensor")
    return metadata, tensors


def main():
    folder = tempfile.mkdtemp(prefix="bndrop-st-")
    net_path = os.path.join(folder, "net.safetensors")
    opt_path = os.path.join(folder, "opt.safetensors")

    # A trained net and its Adam state.
    net, opt = build(3), P()
    ok(lib.bnd_optimizer_create_adam(net, None, ctypes.byref(opt)))
    rng = np.random.default_rng(0)
    for step in range(3):
        x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
        labels = (np.arange(8) % 3).astype(np.int32)
        ok(lib.bnd_net_train_step_classification(net, opt, x.ctypes.data_as(P), labels.ctypes.data_as(P),
                                                 ctypes.c_int64(8), None))
    ok(lib.bnd_net_save(net, net_path.encode()))
    ok(lib.bnd_optimizer_save(opt, opt_path.encode()))
    expected = state(net)

    # numpy + json by the specification.
    metadata, tensors = read_by_spec(net_path)
    check(list(tensors) != [] and set(tensors) == set(expected), "the file holds exactly the state_dict")
    for name, values in tensors.items():
        if name.endswith("num_batches_tracked"):
            check(values.dtype == np.int64 and values.shape == () and int(values) == 3, f"{name}: I64 scalar 3")
        else:
            check(values.dtype == np.float32 and np.array_equal(values, expected[name]), f"{name}: the same F32 values")
    check(metadata["format"] == "bndrop-1" and metadata["bndrop_version"] == lib.bnd_version_string().decode(),
          "metadata: format tag and library version")
    layers = json.loads(metadata["layers"])
    check([layer["type"] for layer in layers] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d", "Flatten",
                                                  "Dropout", "Linear", "BatchNorm1d", "Linear"], "metadata: layer types")
    check(layers[8]["momentum"] is None and layers[0]["padding"] == 1 and layers[6]["p"] == 0.25, "metadata: arguments")
    check(json.loads(metadata["sample_shape"]) == [1, 8, 8], "metadata: sample shape")
    opt_metadata, opt_tensors = read_by_spec(opt_path)
    check(opt_metadata["optimizer"] == "Adam" and np.float32(float(opt_metadata["lr"])) == np.float32(1e-3), "optimizer metadata")
    steps = [int(v) for k, v in opt_tensors.items() if k.endswith(".step")]
    check(len(steps) == 10 and set(steps) == {3}, "optimizer: state.<i>.step = 3 for each of the 10 parameters")
    check(opt_tensors["state.0.exp_avg"].shape == expected["0.weight"].shape, "optimizer: exp_avg has its parameter's shape")
    print(f"numpy reader: {checks} checks on bndrop's files")

    # A file written here by hand (no metadata, reversed order, unpadded header) into bndrop.
    fresh = {name: (np.asarray(v) + 1).astype(v.dtype) for name, v in expected.items()}
    header, body = {}, b""
    for name in reversed(list(fresh)):
        is_counter = name.endswith("num_batches_tracked")
        raw = np.asarray(7, dtype="<i8").tobytes() if is_counter else fresh[name].astype("<f4").tobytes()
        header[name] = {"dtype": "I64" if is_counter else "F32", "shape": list(fresh[name].shape),
                        "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    text = json.dumps(header).encode()
    hand_path = os.path.join(folder, "hand.safetensors")
    with open(hand_path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)
    other = build(99)
    ok(lib.bnd_net_load_weights(other, hand_path.encode()))
    got = state(other)
    for name in fresh:
        want = 7 if name.endswith("num_batches_tracked") else fresh[name]
        check(np.array_equal(got[name], want), f"hand-written file: {name}")
    print(f"numpy writer: a hand-written file loads ({checks} checks so far)")

    try:
        import safetensors.numpy as stnp
        from safetensors import safe_open
    except ImportError:
        print("SKIP: the safetensors package is not installed (pip install safetensors); numpy checks only")
    else:
        loaded = stnp.load_file(net_path)
        for name, values in expected.items():
            if name.endswith("num_batches_tracked"):
                check(loaded[name].dtype == np.int64 and int(loaded[name]) == 3, f"safetensors reads {name} as I64")
            else:
                check(np.array_equal(loaded[name], values), f"safetensors reads {name}")
        with safe_open(net_path, framework="numpy") as f:
            check(f.metadata()["format"] == "bndrop-1", "safetensors reads the metadata")
        check(set(stnp.load_file(opt_path)) == set(opt_tensors), "safetensors reads the optimizer file")
        st_path = os.path.join(folder, "st.safetensors")
        stnp.save_file({k: np.ascontiguousarray(v) for k, v in fresh.items() if not k.endswith("num_batches_tracked")}
                       | {k: np.asarray(11, dtype=np.int64) for k in fresh if k.endswith("num_batches_tracked")},
                       st_path, metadata={"written_by": "safetensors"})
        ok(lib.bnd_net_load_weights(other, st_path.encode()))
        got = state(other)
        for name in fresh:
            want = 11 if name.endswith("num_batches_tracked") else fresh[name]
            check(np.array_equal(got[name], want), f"a file safetensors wrote: {name}")
        print(f"safetensors {__import__('safetensors').__version__}: reads bndrop's files, bndrop reads its file")

    lib.bnd_optimizer_free(opt)
    for handle in (net, other):
        lib.bnd_net_free(handle)
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)
    print(f"{checks} checks passed")


main()

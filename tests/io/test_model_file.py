"""Model files: exact round trips, atomic saves, a clear error for every bad file."""

from __future__ import annotations

import copy
import io
import json
import os
import pathlib
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import backend
from chainrule.config import describe
from chainrule.errors import ModelFileError
from chainrule.io import load_model, read_header, save_model
from chainrule.layers import (
    Dense,
    Flatten,
    Identity,
    LeakyReLU,
    ReLU,
    Rescaling,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD

HEADER = "__chainrule__"
INPUT_SHAPE = (3, 4)
CLASSES = 5
KNOWN_LAYERS = [
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Flatten",
    "GlobalAvgPool2D",
    "Identity",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Rescaling",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


# ---------------------------------------------------------------------- helpers
def every_layer() -> list[Any]:
    """One of each layer type, Dense with and without bias."""
    return [
        Rescaling(2.0, offset=-1.0),
        Flatten(),
        Dense(8),
        Sigmoid(),
        Dense(8, use_bias=False, init="normal"),
        Tanh(),
        Dense(8, init="he"),
        ReLU(),
        Dense(8, init="glorot_normal"),
        LeakyReLU(0.2),
        Dense(8),
        Softmax(),
        Dense(CLASSES, bias_init="glorot"),
        Identity(),
    ]


LOSSES: dict[str, Callable[[], Any]] = {
    "cross_entropy": CrossEntropy,
    "bce_batchmean": lambda: BinaryCrossEntropy(reduction="batchmean"),
    "mse": MSE,
}
OPTIMIZERS: dict[str, Callable[[], SGD]] = {
    "plain_weight_decay": lambda: SGD(0.1, weight_decay=1e-3),
    "momentum": lambda: SGD(0.05, momentum=0.9),
    "nesterov_weight_decay": lambda: SGD(
        0.05, momentum=0.8, nesterov=True, weight_decay=1e-2
    ),
}


def targets(loss_name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if loss_name == "cross_entropy":
        return rng.integers(0, CLASSES, size=n)
    if loss_name == "bce_batchmean":
        return rng.random((n, CLASSES))
    return rng.standard_normal((n, CLASSES))


def make_model(
    loss_name: str = "cross_entropy",
    optimizer_name: str = "nesterov_weight_decay",
    dtype: str = "float32",
) -> Sequential:
    model = Sequential(every_layer(), input_shape=INPUT_SHAPE, seed=7, dtype=dtype)
    model.compile(LOSSES[loss_name](), OPTIMIZERS[optimizer_name]())
    return model


def step(model: Sequential, x: np.ndarray, y: np.ndarray) -> None:
    model.train_step(backend.asarray(x, model.dtype), backend.xp().asarray(y))


def trained_model(
    rng: np.random.Generator,
    loss_name: str = "cross_entropy",
    optimizer_name: str = "nesterov_weight_decay",
    dtype: str = "float32",
) -> Sequential:
    """A model after a few train steps and one fit epoch (state is non-trivial)."""
    model = make_model(loss_name, optimizer_name, dtype)
    x = rng.random((12, *INPUT_SHAPE))
    y = targets(loss_name, rng, 12)
    step(model, x[:6], y[:6])
    step(model, x[6:], y[6:])
    model.fit(x, y, epochs=1, batch_size=5, seed=1, verbose=0)
    return model


def optimizer_state(model: Sequential) -> list[dict[str, np.ndarray]]:
    """Per-parameter state; an optimizer with no buffers counts as all-empty."""
    assert model.optimizer is not None
    state = model.optimizer.state or [{} for _ in model.parameters()]
    return [{k: backend.to_numpy(v) for k, v in s.items()} for s in state]


def params(model: Sequential) -> dict[str, np.ndarray]:
    return {n: backend.to_numpy(p.data).copy() for n, p in model.named_parameters()}


def assert_same_params(a: Sequential, b: Sequential) -> None:
    pa, pb = params(a), params(b)
    assert list(pa) == list(pb)
    for name in pa:
        assert pa[name].dtype == pb[name].dtype, name
        assert np.array_equal(pa[name], pb[name]), name


def saved_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write_npz(path: Path, arrays: dict[str, Any], raw: dict[str, bytes] | None = None):
    """Write an archive by hand: ``arrays`` as .npy members, ``raw`` bytes as-is."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=True)
        for name, data in (raw or {}).items():
            archive.writestr(name, data)
    return path


def header_of(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return json.loads(str(arrays[HEADER]))


def with_header(arrays: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    return {**arrays, HEADER: np.array(json.dumps(header))}


def npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    """A .npy member that declares ``shape`` but holds no data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A valid model file (every layer type, SGD with momentum state)."""
    path = tmp_path / "good.npz"
    save_model(trained_model(rng), path)
    return path


# ------------------------------------------------------------------- round trip
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_round_trip_is_exact(
    tmp_path: Path,
    rng: np.random.Generator,
    loss_name: str,
    optimizer_name: str,
    dtype: str,
) -> None:
    model = trained_model(rng, loss_name, optimizer_name, dtype)
    path = tmp_path / "model.npz"
    metadata = {"run": "round trip", "n": 3, "nested": {"lr": [0.1, 0.2], "ok": True}}
    save_model(model, path, metadata=metadata)
    loaded = load_model(path)

    assert loaded.dtype == np.dtype(dtype)
    assert loaded.input_shape == INPUT_SHAPE
    assert loaded.output_shape == model.output_shape
    assert [describe(layer) for layer in loaded.layers] == [
        describe(layer) for layer in model.layers
    ]
    assert [repr(layer) for layer in loaded.layers] == [
        repr(layer) for layer in model.layers
    ]
    assert_same_params(loaded, model)
    for _, p in loaded.named_parameters():
        assert p.dtype == np.dtype(dtype)
        assert p.grad.shape == p.shape and p.grad.dtype == p.dtype

    assert loaded.loss is not None and model.loss is not None
    assert describe(loaded.loss) == describe(model.loss)
    assert loaded.optimizer is not None and model.optimizer is not None
    assert describe(loaded.optimizer) == describe(model.optimizer)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 5
    saved_state, loaded_state = optimizer_state(model), optimizer_state(loaded)
    assert [sorted(s) for s in loaded_state] == [sorted(s) for s in saved_state]
    if optimizer_name != "plain_weight_decay":
        assert all("momentum_buffer" in s for s in loaded_state)
    for a, b in zip(saved_state, loaded_state, strict=True):
        for key in a:
            assert a[key].dtype == b[key].dtype == np.dtype(dtype)
            assert np.array_equal(a[key], b[key])

    x = rng.random((7, *INPUT_SHAPE))
    y = targets(loss_name, rng, 7)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert np.array_equal(loaded.predict_logits(x), model.predict_logits(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)

    header = read_header(path)
    assert header["format"] == "chainrule-model"
    assert header["format_version"] == "1.1"
    assert header["library_version"] == chainrule.__version__
    assert header["dtype"] == dtype
    assert header["input_shape"] == list(INPUT_SHAPE)
    assert header["metadata"] == metadata
    assert header["optimizer"]["iterations"] == 5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
def test_training_resumes_bit_identically(
    tmp_path: Path, rng: np.random.Generator, optimizer_name: str, dtype: str
) -> None:
    model = trained_model(rng, "cross_entropy", optimizer_name, dtype)
    path = tmp_path / "model.npz"
    save_model(model, path)
    loaded = load_model(path)

    x = rng.random((9, *INPUT_SHAPE))
    y = targets("cross_entropy", rng, 9)
    step(model, x, y)
    step(loaded, x, y)
    assert_same_params(loaded, model)
    model.fit(x, y, epochs=2, batch_size=4, seed=5, verbose=0)
    loaded.fit(x, y, epochs=2, batch_size=4, seed=5, verbose=0)
    assert_same_params(loaded, model)
    assert loaded.optimizer is not None and model.optimizer is not None
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_resume_needs_the_momentum_buffers(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Without the saved buffers the next step differs: the resume test has teeth."""
    model = trained_model(rng, optimizer_name="momentum")
    path = tmp_path / "model.npz"
    save_model(model, path, include_optimizer=False)
    loaded = load_model(path)
    assert loaded.optimizer is None and loaded.loss is not None
    assert read_header(path)["optimizer"] is None
    assert not any(n.startswith("optimizer.") for n in saved_arrays(path))
    loaded.compile(loaded.loss, OPTIMIZERS["momentum"]())
    x = rng.random((9, *INPUT_SHAPE))
    y = targets("cross_entropy", rng, 9)
    step(model, x, y)
    step(loaded, x, y)
    assert not np.array_equal(params(model)["layers.2.W"], params(loaded)["layers.2.W"])


def test_model_without_loss_round_trips(tmp_path: Path, rng: np.random.Generator):
    model = Sequential(every_layer(), input_shape=INPUT_SHAPE, seed=3)
    path = tmp_path / "bare.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.loss is None and loaded.optimizer is None
    x = rng.random((4, *INPUT_SHAPE))
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert read_header(path)["metadata"] == {}


def test_file_holds_exactly_the_expected_arrays(saved: Path) -> None:
    names = set(saved_arrays(saved))
    params_ = {f"layers.{i}.W" for i in (2, 4, 6, 8, 10, 12)}
    params_ |= {f"layers.{i}.b" for i in (2, 6, 8, 10, 12)}
    buffers = {f"optimizer.{i}.momentum_buffer" for i in range(len(params_))}
    assert names == {HEADER} | params_ | buffers


def test_save_rejects_bad_input(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="Sequential"):
        save_model(Dense(3), path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not built"):
        save_model(Sequential([Dense(3)]), path)
    model = trained_model(rng)
    save_model(model, path)
    before = path.read_bytes()
    for metadata in ({"f": object()}, {"x": float("nan")}):
        with pytest.raises(
            ValueError, match="metadata and training history must be plain JSON"
        ):
            save_model(model, path, metadata=metadata)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


# ----------------------------------------------------------------- atomic write
def test_save_leaves_no_temp_files(tmp_path: Path, rng: np.random.Generator) -> None:
    model = trained_model(rng)
    save_model(model, tmp_path / "a.npz")
    save_model(model, tmp_path / "a.npz")  # overwriting too
    save_model(model, tmp_path / "sub" / "dir" / "b.npz")
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "sub"]
    assert os.listdir(tmp_path / "sub" / "dir") == ["b.npz"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_the_old_file(
    tmp_path: Path,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    path = tmp_path / "model.npz"
    model = trained_model(rng)
    save_model(model, path, metadata={"version": "old"})
    before = path.read_bytes()
    real_savez = np.savez

    def half_savez(file: Any, *args: Any, **kwargs: Any) -> None:
        buf = io.BytesIO()
        real_savez(buf, *args, **kwargs)
        file.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        file.flush()
        raise error

    monkeypatch.setattr(np, "savez", half_savez)
    step(model, rng.random((4, *INPUT_SHAPE)), np.arange(4))
    with pytest.raises(type(error)):
        save_model(model, path, metadata={"version": "new"})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    assert read_header(path)["metadata"] == {"version": "old"}
    load_model(path)


def test_failed_first_save_leaves_nothing(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_savez(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(trained_model(rng), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_saved_file_mode_follows_umask(
    tmp_path: Path, rng: np.random.Generator, umask: int, mode: int
) -> None:
    model = trained_model(rng)
    previous = os.umask(umask)
    try:
        save_model(model, tmp_path / "model.npz")
    finally:
        os.umask(previous)
    assert (tmp_path / "model.npz").stat().st_mode & 0o777 == mode


# ------------------------------------------------------------- malformed files
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        read_header(tmp_path / "nope.npz")


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        load_model(tmp_path / "dir.npz")


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is text\n", bytes(range(256)) * 4, b"PK\x03\x04garbage"],
    ids=["empty", "text", "binary", "zip_magic_only"],
)
def test_not_an_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        load_model(path)


def test_random_bytes(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        load_model(path)


def test_plain_npy_file_is_not_a_model(tmp_path: Path) -> None:
    """``np.load`` returns an array, not an archive, for .npy content."""
    path = tmp_path / "weights.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 3), np.float32))
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        load_model(path)
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        read_header(path)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_truncated_archive(tmp_path: Path, saved: Path, fraction: float) -> None:
    data = saved.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError, match="not a chainrule model file"):
        load_model(path)


def test_corrupted_member_fails_its_checksum(tmp_path: Path, saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("layers.2.W.npy")
    start = _member_data_offset(data, info)
    data[start + info.compress_size - 1] ^= 0xFF
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"layers\.2\.W.*CRC"):
        load_model(path)


def _member_data_offset(data: bytes | bytearray, info: zipfile.ZipInfo) -> int:
    # local file header: 30 fixed bytes, then the name and the local extra field
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + name_len + extra_len


def test_corrupted_compressed_member(tmp_path: Path, saved: Path) -> None:
    """A damaged deflate stream (np.savez_compressed) is a ModelFileError too."""
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, **saved_arrays(saved))
    load_model(compressed)  # the intact compressed file loads
    data = bytearray(compressed.read_bytes())
    with zipfile.ZipFile(compressed) as archive:
        info = archive.getinfo(f"{HEADER}.npy")
    start = _member_data_offset(data, info)
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0xFF
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        load_model(path)
    with pytest.raises(ModelFileError):
        read_header(path)


def test_plain_numpy_archive_without_header(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    del arrays[HEADER]
    path = tmp_path / "plain.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match=f"no {HEADER} entry.*plain NumPy"):
        load_model(path)
    with pytest.raises(ModelFileError, match=f"no {HEADER} entry"):
        read_header(path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array("{not json"), "not valid JSON"),
        (np.array(""), "not valid JSON"),
        (np.array(b"{}"), "must be a JSON string"),
        (np.array(["{}"]), "must be a JSON string"),
        (np.array(3), "must be a JSON string"),
        (np.array("[1, 2]"), "not a chainrule-model file"),
        (np.array('{"format": "other"}'), "not a chainrule-model file"),
    ],
    ids=["garbage", "empty", "bytes", "1d", "int", "json_list", "wrong_format"],
)
def test_bad_header_entry(
    tmp_path: Path, saved: Path, value: np.ndarray, message: str
) -> None:
    path = write_npz(tmp_path / "m.npz", {**saved_arrays(saved), HEADER: value})
    with pytest.raises(ModelFileError, match=message):
        load_model(path)
    with pytest.raises(ModelFileError, match=message):
        read_header(path)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(header: dict[str, Any]) -> None:
        header[key] = value

    return mutate


def _set_layer(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(header: dict[str, Any]) -> None:
        header["layers"][index].update(changes)

    return mutate


def _set_layer_config(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(header: dict[str, Any]) -> None:
        header["layers"][index]["config"].update(changes)

    return mutate


def _set_optimizer(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(header: dict[str, Any]) -> None:
        header["optimizer"].update(changes)

    return mutate


HEADER_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "layers_not_a_list": (_set("layers", {"0": "Dense"}), "layers must be a list"),
    "layers_missing": (_set("layers", None), "layers must be a list"),
    "input_shape_not_a_list": (_set("input_shape", 12), "input_shape must be a list"),
    "dtype_a_number": (_set("dtype", 32), "dtype must be a str"),
    "dtype_int32": (_set("dtype", "int32"), "dtype must be float32 or float64"),
    "dtype_unknown": (_set("dtype", "float99"), "dtype must be float32 or float64"),
    "metadata_a_list": (_set("metadata", [1, 2]), "metadata must be an object"),
    "optimizer_a_string": (_set("optimizer", "SGD"), "optimizer must be an object"),
    "optimizer_unknown": (
        _set("optimizer", {"type": "Adagrad", "config": {}}),
        "unknown optimizer type 'Adagrad'; known types: Adam, AdamW, RMSprop, SGD",
    ),
    "optimizer_bad_lr": (
        _set_optimizer(config={"lr": -1.0}),
        "invalid learning rate",
    ),
    "optimizer_iterations_negative": (
        _set_optimizer(iterations=-1),
        "iterations must be >= 0",
    ),
    "optimizer_iterations_text": (
        _set_optimizer(iterations="5"),
        "iterations must be >= 0",
    ),
    "loss_a_string": (_set("loss", "CrossEntropy"), "loss description must be a dict"),
    "loss_unknown": (
        _set("loss", {"type": "Hinge", "config": {}}),
        "unknown loss type 'Hinge'; known types: BinaryCrossEntropy, CrossEntropy, MSE",
    ),
    "loss_bad_reduction": (
        _set("loss", {"type": "MSE", "config": {"reduction": "max"}}),
        "reduction must be one of",
    ),
    "no_layers": (_set("layers", []), "needs at least one layer"),
    "layer_a_string": (
        lambda h: h["layers"].__setitem__(2, "Dense"),
        "layer description must be a dict",
    ),
    "layer_config_a_list": (
        _set_layer(2, config=[8]),
        "config of layer Dense must be a dict",
    ),
    "dense_negative_units": (
        _set_layer_config(2, units=-1),
        r"Dense: units must be a positive integer, got -1",
    ),
    "dense_unknown_kwarg": (
        _set_layer_config(2, activation="relu"),
        "bad config for layer Dense.*unexpected keyword argument 'activation'",
    ),
    "dense_bad_init": (_set_layer_config(2, init="ones"), "init must be one of"),
    "rescaling_not_finite": (
        _set_layer_config(0, scale=float("inf")),
        r"invalid scale inf \(must be finite\)",
    ),
    "leaky_relu_nan_alpha": (_set_layer_config(9, alpha=float("nan")), "alpha"),
    "input_shape_negative": (
        _set("input_shape", [-3, 4]),
        "input_shape must be a tuple of positive integers",
    ),
    "input_shape_changed": (
        _set("input_shape", [4, 4]),
        r"parameter layers\.2\.W should be float32 of shape \(16, 8\), "
        r"found float32 of shape \(12, 8\)",
    ),
    "units_changed": (
        _set_layer_config(2, units=9),
        r"parameter layers\.2\.W should be float32 of shape \(12, 9\)",
    ),
    "newer_major_version": (
        _set("format_version", "2.0"),
        r"format version 2\.0 is newer than this chainrule .*upgrade chainrule",
    ),
    "version_garbage": (_set("format_version", "one"), "bad format_version 'one'"),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_bad_header_field(tmp_path: Path, saved: Path, case: str) -> None:
    mutate, message = HEADER_CASES[case]
    arrays = saved_arrays(saved)
    header = copy.deepcopy(header_of(arrays))
    mutate(header)
    path = write_npz(tmp_path / "m.npz", with_header(arrays, header))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_unknown_layer_type_lists_the_known_ones(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    header = header_of(arrays)
    header["layers"][2]["type"] = "Conv3D"
    path = write_npz(tmp_path / "m.npz", with_header(arrays, header))
    with pytest.raises(ModelFileError, match="unknown layer type 'Conv3D'") as info:
        load_model(path)
    # other test modules may register layer classes of their own, so check
    # that every built-in one is listed rather than the exact list
    listed = str(info.value).split("known types: ")[1].split(", ")
    assert set(KNOWN_LAYERS) <= set(listed)


def test_registered_base_classes_cannot_be_named(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    header = header_of(arrays)
    header["layers"][2] = {"type": "Layer", "config": {}}
    path = write_npz(tmp_path / "m.npz", with_header(arrays, header))
    with pytest.raises(ModelFileError, match="unknown layer type 'Layer'"):
        load_model(path)


def test_older_and_newer_minor_versions_load(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    for version in ("1.0", "1.7"):
        header = header_of(arrays)
        header["format_version"] = version
        path = write_npz(tmp_path / f"{version}.npz", with_header(arrays, header))
        assert_same_params(load_model(path), load_model(saved))


def test_missing_parameter(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    del arrays["layers.6.b"]
    path = write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(ModelFileError, match=r"parameter layers\.6\.b is missing"):
        load_model(path)


def test_parameter_with_wrong_shape(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    arrays["layers.2.W"] = arrays["layers.2.W"].T
    path = write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(
        ModelFileError,
        match=r"parameter layers\.2\.W should be float32 of shape \(12, 8\), "
        r"found float32 of shape \(8, 12\)",
    ):
        load_model(path)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.complex64])
def test_parameter_with_wrong_dtype(tmp_path: Path, saved: Path, dtype: Any) -> None:
    arrays = saved_arrays(saved)
    arrays["layers.4.W"] = arrays["layers.4.W"].astype(dtype)
    path = write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(
        ModelFileError,
        match=rf"parameter layers\.4\.W should be float32 .*found {np.dtype(dtype)}",
    ):
        load_model(path)


def test_parameter_member_that_is_not_npy(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    del arrays["layers.2.W"]
    path = write_npz(tmp_path / "m.npz", arrays, raw={"layers.2.W.npy": b"garbage"})
    with pytest.raises(ModelFileError, match=r"layers\.2\.W"):
        load_model(path)


@pytest.mark.parametrize(
    "extra",
    [
        {"junk": np.zeros(3)},
        {"layers.1.W": np.zeros((2, 2), np.float32)},
        {"optimizer.99.momentum_buffer": np.zeros(3, np.float32)},
        {"optimizer.momentum": np.zeros(3, np.float32)},
        {"optimizer.0.velocity": np.zeros((12, 8), np.float32)},
    ],
    ids=["junk", "param_of_flatten", "optimizer_index", "optimizer_name", "state_key"],
)
def test_extra_unexpected_array(
    tmp_path: Path, saved: Path, extra: dict[str, np.ndarray]
) -> None:
    path = write_npz(tmp_path / "m.npz", {**saved_arrays(saved), **extra})
    with pytest.raises(
        ModelFileError, match=f"unexpected .*{re.escape(next(iter(extra)))}"
    ):
        load_model(path)


def test_extra_member_that_is_not_npy(tmp_path: Path, saved: Path) -> None:
    path = write_npz(tmp_path / "m.npz", saved_arrays(saved), raw={"notes.txt": b"hi"})
    with pytest.raises(ModelFileError, match=r"unexpected arrays.*notes\.txt"):
        load_model(path)


def test_optimizer_state_with_wrong_shape(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    arrays["optimizer.1.momentum_buffer"] = np.zeros(3, np.float32)
    path = write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(
        ModelFileError, match=r"optimizer state optimizer\.1\.momentum_buffer"
    ):
        load_model(path)


@pytest.mark.parametrize(
    "name", ["layers.2.W", "optimizer.0.momentum_buffer", HEADER, "extra"]
)
def test_object_array_is_refused(tmp_path: Path, saved: Path, name: str) -> None:
    arrays = saved_arrays(saved)
    arrays[name] = np.array([1, "two", None], dtype=object)
    path = write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(ModelFileError):
        load_model(path)


class _TouchOnUnpickle:
    """Unpickling this calls ``Path(marker).touch()``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (pathlib.Path(self.marker).touch, ())


@pytest.mark.parametrize("name", ["layers.2.W", HEADER, "payload"])
def test_pickle_payload_never_runs(tmp_path: Path, saved: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _TouchOnUnpickle(marker)
    arrays = saved_arrays(saved)
    arrays[name] = payload
    path = write_npz(tmp_path / "evil.npz", arrays)

    # the payload is live: loading it with pickle allowed does run it
    with np.load(path, allow_pickle=True) as archive:
        archive[name]
    assert marker.exists()
    marker.unlink()

    with pytest.raises(ModelFileError):
        load_model(path)
    if name == HEADER:
        with pytest.raises(ModelFileError):
            read_header(path)
    else:
        read_header(path)  # the header alone is fine; nothing else is read
    assert not marker.exists()


@pytest.mark.parametrize("name", ["layers.2.W", HEADER])
def test_member_declaring_a_huge_shape(tmp_path: Path, saved: Path, name: str) -> None:
    """A few bytes claiming a 128 TiB array must be refused, not allocated."""
    arrays = saved_arrays(saved)
    del arrays[name]
    descr = "<U1" if name == HEADER else "<f4"
    raw = {f"{name}.npy": npy_header((2**45,), descr)}
    path = write_npz(tmp_path / "m.npz", arrays, raw=raw)
    with pytest.raises(ModelFileError, match=name.replace(".", r"\.")):
        load_model(path)


def test_metadata_must_be_a_dict(tmp_path: Path, rng: np.random.Generator) -> None:
    model = trained_model(rng)
    with pytest.raises(TypeError, match="metadata must be a dict, got list"):
        save_model(model, tmp_path / "m.npz", metadata=[1, 2])  # type: ignore[arg-type]
    assert not (tmp_path / "m.npz").exists()


def test_non_finite_weights_are_refused(tmp_path: Path, saved: Path) -> None:
    arrays = saved_arrays(saved)
    arrays["layers.2.W"] = arrays["layers.2.W"].copy()
    arrays["layers.2.W"][0, 0] = np.nan
    path = write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(ModelFileError, match=r"layers\.2\.W contains NaN"):
        load_model(path)


def test_a_huge_architecture_is_refused_before_allocating(
    tmp_path: Path, saved: Path
) -> None:
    arrays = saved_arrays(saved)
    header = header_of(arrays)
    header["layers"][2]["config"]["units"] = 10**12
    path = write_npz(tmp_path / "m.npz", with_header(arrays, header))
    with pytest.raises(
        ModelFileError, match=r"should be float32 of shape \(12, 1000000000000\)"
    ):
        load_model(path)

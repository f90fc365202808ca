"""Hostile model files: oversized members, pickles, wrong JSON types, wrong dtypes.

``test_model_file.py`` covers truncated archives, unknown layer types, newer
versions, shapes and a pickle payload; this module adds what a crafted file
can do beyond that. Each case must end in a ``ModelFileError`` that says what
is wrong, without running code or allocating what the file claims.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import re
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.errors import ModelFileError
from chainrule.io import load_model, read_header, save_model
from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPool2D,
    Rescaling,
    Reshape,
)
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import RMSprop

HEADER = "__chainrule__"
#: what a 64 MiB member of zeros compresses to is about 64 KiB: a small zip bomb
BOMB_BYTES = 64 << 20


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with parameters, buffers and three kinds of optimizer state."""
    model = Sequential(
        [
            Rescaling(1 / 255),
            Reshape((1, 6, 6)),
            Conv2D(2, 3, padding="same"),
            BatchNorm(),
            LeakyReLU(0.2),
            MaxPool2D(2),
            AvgPool2D(1, stride=1),
            Flatten(),
            Dropout(0.1, seed=0),
            Dense(3, max_norm=3.0),
        ],
        input_shape=(6, 6),
        seed=0,
    )
    model.compile(CrossEntropy(), RMSprop(0.01, momentum=0.9, centered=True))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 6, 6), dtype=np.uint8)
    model.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    path = tmp_path_factory.mktemp("safety") / "good.npz"
    save_model(model, path)
    return path


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write(
    path: Path,
    arrays: dict[str, Any],
    raw: dict[str, bytes] | None = None,
    compressed: bool = False,
) -> Path:
    """An archive written by hand: ``arrays`` as .npy members, ``raw`` as-is."""
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=True)
        for name, data in (raw or {}).items():
            archive.writestr(name, data)
    return path


def header_of(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return json.loads(str(arrays[HEADER]))


def with_header(path: Path, saved: Path, header: dict[str, Any]) -> Path:
    return write(path, {**arrays_of(saved), HEADER: np.array(json.dumps(header))})


def npy_bytes(shape: tuple[int, ...], descr: str, data: bytes) -> bytes:
    """A .npy member: a header declaring ``shape`` and ``descr``, then ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + data


def failed_load(path: Path) -> tuple[str, int]:
    """The error ``load_model(path)`` raises, and the peak bytes it allocated."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return str(info.value), peak


# ------------------------------------------------------- oversized members
@pytest.mark.parametrize(
    ("name", "descr", "items", "message"),
    [
        ("layers.2.W", "<f4", BOMB_BYTES // 4, r"parameter layers\.2\.W should be"),
        ("layers.3.running_var", "<f4", BOMB_BYTES // 4, r"buffer layers\.3\."),
        (
            "optimizer.0.square_avg",
            "<f4",
            BOMB_BYTES // 4,
            r"optimizer state optimizer\.0\.square_avg",
        ),
        (HEADER, f"<U{BOMB_BYTES // 4}", 1, "more than the 16777216 allowed"),
        ("extra", "<f4", BOMB_BYTES // 4, r"unexpected arrays.*'extra'"),
    ],
    ids=["parameter", "buffer", "optimizer_state", "header", "extra_member"],
)
def test_zip_bomb_member_is_refused_unread(
    tmp_path: Path, saved: Path, name: str, descr: str, items: int, message: str
) -> None:
    """A deflated member that would inflate to 64 MiB costs nothing to refuse."""
    arrays = arrays_of(saved)
    arrays.pop(name, None)
    shape = () if descr.startswith("<U") else (items,)
    member = npy_bytes(shape, descr, bytes(BOMB_BYTES))
    path = write(tmp_path / "bomb.npz", arrays, {f"{name}.npy": member}, True)
    assert path.stat().st_size < BOMB_BYTES // 100
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(f"{name}.npy").file_size > BOMB_BYTES

    error, peak = failed_load(path)
    assert peak < BOMB_BYTES // 16, f"loading allocated {peak} bytes"
    assert re.search(message, error), error


# ---------------------------------------------------------------- pickles
def test_raw_pickle_member_is_never_read(tmp_path: Path, saved: Path) -> None:
    """A bare pickle (not .npy) beside the arrays is an unexpected member."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Touch(marker))
    path = write(tmp_path / "m.npz", arrays_of(saved), {"layers.2.W.pkl": payload})
    with pytest.raises(ModelFileError, match=r"unexpected arrays.*layers\.2\.W\.pkl"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name", ["layers.3.running_mean", "optimizer.1.grad_avg", "layers.2.b"]
)
def test_pickled_object_array_member(tmp_path: Path, saved: Path, name: str) -> None:
    """An object array in place of a buffer, optimizer state or bias is refused
    from its header, naming the member, before any pickle byte is read."""
    marker = tmp_path / "pwned"
    payload = np.empty(2, dtype=object)
    payload[:] = [_Touch(marker), _Touch(marker)]
    arrays = arrays_of(saved)
    arrays[name] = payload
    path = write(tmp_path / "m.npz", arrays)
    with pytest.raises(
        ModelFileError,
        match=rf"{name.replace('.', '[.]')} holds Python objects \(a pickle\)",
    ):
        load_model(path)
    assert not marker.exists()


class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (Path(self.marker).touch, ())


# --------------------------------------------------------------- dtypes
@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("layers.3.running_mean", np.float64),
        ("layers.3.running_var", np.int64),
        ("optimizer.2.square_avg", np.float16),
        ("optimizer.0.momentum_buffer", np.float64),
        ("layers.9.b", ">f4"),
        ("layers.9.W", np.bool_),
    ],
)
def test_member_with_wrong_dtype(
    tmp_path: Path, saved: Path, name: str, dtype: Any
) -> None:
    arrays = arrays_of(saved)
    arrays[name] = arrays[name].astype(dtype)
    path = write(tmp_path / "m.npz", arrays)
    found = np.dtype(dtype)
    with pytest.raises(
        ModelFileError,
        match=rf"{name.replace('.', '[.]')} should be float32 .*found {found}",
    ):
        load_model(path)


# ------------------------------------------------- JSON with wrong types
def _set(keys: str | tuple[str | int, ...], value: Any) -> Any:
    """A change to the header: ``keys`` is a field or a path to one."""
    path = (keys,) if isinstance(keys, str) else keys

    def mutate(header: dict[str, Any]) -> None:
        target: Any = header
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


WRONG_TYPES: dict[str, tuple[Any, str]] = {
    # the top-level fields
    "format_number": (_set("format", 1), "not a chainrule-model file"),
    "format_version_number": (_set("format_version", 1.1), "bad format_version 1.1"),
    "format_version_negative": (
        _set("format_version", "-1.0"),
        "bad format_version '-1.0'",
    ),
    "format_version_no_minor": (_set("format_version", "1"), "bad format_version"),
    "format_version_missing": (_set("format_version", None), "bad format_version"),
    "library_version_list": (
        _set("library_version", [0, 2]),
        "library_version must be a str",
    ),
    "dtype_list": (_set("dtype", ["float32"]), "dtype must be a str"),
    "input_shape_dict": (_set("input_shape", {"h": 6}), "input_shape must be a list"),
    "input_shape_floats": (
        _set("input_shape", [6.0, 6.0]),
        "input_shape must be a tuple of positive integers",
    ),
    "input_shape_bools": (
        _set("input_shape", [True, 6]),
        "input_shape must be a tuple of positive integers",
    ),
    "input_shape_strings": (
        _set("input_shape", ["6", "6"]),
        "input_shape must be a tuple of positive integers",
    ),
    "layers_string": (_set("layers", "Dense"), "layers must be a list"),
    "layer_type_number": (_set(("layers", 2, "type"), 5), "unknown layer type 5"),
    "loss_list": (_set("loss", ["CrossEntropy"]), "loss description must be a dict"),
    "loss_config_string": (
        _set(("loss", "config"), "mean"),
        "config of loss CrossEntropy must be a dict",
    ),
    "label_smoothing_string": (
        _set(("loss", "config", "label_smoothing"), "0.1"),
        "label_smoothing",
    ),
    "optimizer_list": (_set("optimizer", ["SGD"]), "optimizer must be an object"),
    "optimizer_config_list": (
        _set(("optimizer", "config"), [0.01]),
        "config of optimizer RMSprop must be a dict",
    ),
    "lr_string": (_set(("optimizer", "config", "lr"), "0.01"), "learning rate"),
    "centered_string": (
        _set(("optimizer", "config", "centered"), "yes"),
        "centered",
    ),
    "iterations_float": (
        _set(("optimizer", "iterations"), 2.0),
        "iterations must be >= 0",
    ),
    "metadata_string": (_set("metadata", "mnist"), "metadata must be an object"),
    "training_list": (_set("training", [1]), "bad training state"),
    # a value of the wrong type in every kind of layer config
    "rescaling_scale_string": (
        _set(("layers", 0, "config", "scale"), "1/255"),
        "Rescaling: .*scale",
    ),
    "reshape_target_string": (
        _set(("layers", 1, "config", "target_shape"), "1,6,6"),
        "Reshape: target_shape must be",
    ),
    "reshape_target_floats": (
        _set(("layers", 1, "config", "target_shape"), [1.0, 6.0, 6.0]),
        "Reshape: target_shape must be",
    ),
    "conv_filters_float": (
        _set(("layers", 2, "config", "filters"), 2.5),
        "Conv2D: filters must be",
    ),
    "conv_kernel_dict": (
        _set(("layers", 2, "config", "kernel_size"), {"h": 3}),
        "Conv2D: kernel_size",
    ),
    "conv_padding_unknown": (
        _set(("layers", 2, "config", "padding"), "full"),
        "Conv2D: padding must be",
    ),
    "conv_use_bias_string": (
        _set(("layers", 2, "config", "use_bias"), "true"),
        "Conv2D: use_bias",
    ),
    "batchnorm_momentum_string": (
        _set(("layers", 3, "config", "momentum"), "0.1"),
        "BatchNorm: .*momentum",
    ),
    "leaky_alpha_list": (
        _set(("layers", 4, "config", "alpha"), [0.2]),
        "LeakyReLU: .*alpha",
    ),
    "pool_size_string": (
        _set(("layers", 5, "config", "pool_size"), "2"),
        "MaxPool2D: pool_size",
    ),
    "pool_stride_bool": (
        _set(("layers", 6, "config", "stride"), True),
        "AvgPool2D: stride",
    ),
    "dropout_rate_string": (
        _set(("layers", 8, "config", "rate"), "0.1"),
        "Dropout: .*rate",
    ),
    "dropout_seed_float": (
        _set(("layers", 8, "config", "seed"), 0.5),
        "Dropout: .*seed",
    ),
    "dense_max_norm_string": (
        _set(("layers", 9, "config", "max_norm"), "3"),
        "Dense: .*max_norm",
    ),
    "flatten_config_argument": (
        _set(("layers", 7, "config", "axis"), 1),
        "bad config for layer Flatten",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_header_field_of_the_wrong_type(tmp_path: Path, saved: Path, case: str):
    mutate, message = WRONG_TYPES[case]
    header = copy.deepcopy(header_of(arrays_of(saved)))
    mutate(header)
    path = with_header(tmp_path / "m.npz", saved, header)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_deeply_nested_json_is_a_clear_error(tmp_path: Path, saved: Path) -> None:
    depth = 100_000
    text = '{"format": "chainrule-model", "x": ' + "[" * depth + "]" * depth + "}"
    path = write(tmp_path / "m.npz", {**arrays_of(saved), HEADER: np.array(text)})
    with pytest.raises(ModelFileError, match="nested too deeply"):
        load_model(path)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        read_header(path)


def test_private_base_classes_cannot_be_named(tmp_path: Path, saved: Path) -> None:
    """``_Pool2D`` is a helper base of the pools, not a layer a file may ask for."""
    header = header_of(arrays_of(saved))
    header["layers"][5]["type"] = "_Pool2D"
    path = with_header(tmp_path / "m.npz", saved, header)
    with pytest.raises(ModelFileError, match="unknown layer type '_Pool2D'") as info:
        load_model(path)
    assert "_Pool2D" not in str(info.value).split("known types: ")[1]

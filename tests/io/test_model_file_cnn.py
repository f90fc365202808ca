"""Model files with convolutions, pooling and batch norm: buffers included."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.callbacks import EarlyStopping
from chainrule.errors import ModelFileError
from chainrule.io import load_model, read_header, save_checkpoint, save_model
from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
)
from chainrule.losses import CrossEntropy
from chainrule.model import Callback, Sequential
from chainrule.optim import Adam

HEADER = "__chainrule__"


def cnn(dtype: str = "float32", seed: int = 0) -> Sequential:
    """Every new layer type once, batch norm over channels and over features."""
    model = Sequential(
        [
            Rescaling(1 / 255),
            Reshape((1, 12, 12)),
            Conv2D(4, 3, padding="same", use_bias=False, init="he"),
            BatchNorm(),
            ReLU(),
            MaxPool2D(2),
            Conv2D(6, (2, 3), stride=(1, 2), padding=1),
            AvgPool2D(2, stride=1),
            Conv2D(5, 1),
            GlobalAvgPool2D(),
            BatchNorm(momentum=0.3),
            Flatten(),
            Dense(3),
        ],
        input_shape=(12, 12),
        seed=seed,
        dtype=dtype,
    )
    return model.compile(CrossEntropy(), Adam(0.01))


def trained(dtype: str = "float32") -> tuple[Sequential, Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 12, 12), dtype=np.uint8)
    y = rng.integers(0, 3, 40)
    model = cnn(dtype)
    model.fit(x, y, epochs=2, batch_size=8, seed=0, verbose=0)
    return model, x, y


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write(path: Path, arrays: dict[str, Any]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(value))
    return path


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_keeps_weights_buffers_and_predictions(
    tmp_path: Path, dtype: str
) -> None:
    model, x, y = trained(dtype)
    buffers = dict(model.named_buffers())
    assert set(buffers) == {
        "layers.3.running_mean",
        "layers.3.running_var",
        "layers.10.running_mean",
        "layers.10.running_var",
    }
    # training moved the running statistics away from their initial values
    assert not np.allclose(buffers["layers.3.running_mean"], 0)
    assert not np.allclose(buffers["layers.3.running_var"], 1)

    path = tmp_path / "cnn.npz"
    save_model(model, path)
    loaded = load_model(path)
    for (name, a), (name_b, b) in zip(
        model.named_buffers(), loaded.named_buffers(), strict=True
    ):
        assert name == name_b
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    for (_, p), (_, q) in zip(
        model.named_parameters(), loaded.named_parameters(), strict=True
    ):
        np.testing.assert_array_equal(p.data, q.data)
    # inference uses the running statistics, so equal buffers give equal outputs
    np.testing.assert_array_equal(loaded.predict_logits(x), model.predict_logits(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    assert [type(a).__name__ for a in loaded.layers] == [
        type(a).__name__ for a in model.layers
    ]
    assert [a.get_config() for a in loaded.layers] == [
        a.get_config() for a in model.layers
    ]
    assert read_header(path)["format_version"] == "1.1"


def test_buffers_are_not_trained() -> None:
    model, _, _ = trained()
    assert model.optimizer is not None
    # one optimizer state per parameter: the buffers are not among them
    assert len(model.optimizer.state) == len(model.parameters()) == 11
    params = {id(p.data) for p in model.parameters()}
    assert all(id(b) not in params for _, b in model.named_buffers())


def test_training_continues_identically_after_reload(tmp_path: Path) -> None:
    model, x, y = trained()
    path = tmp_path / "cnn.npz"
    save_model(model, path)
    loaded = load_model(path)
    model.fit(x, y, epochs=1, batch_size=8, seed=5, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=8, seed=5, verbose=0)
    for (_, a), (_, b) in zip(
        model.named_buffers(), loaded.named_buffers(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for p, q in zip(model.parameters(), loaded.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "good.npz"
    save_model(trained()[0], path)
    return path


def test_missing_buffer(tmp_path: Path, saved: Path) -> None:
    arrays = arrays_of(saved)
    del arrays["layers.3.running_var"]
    path = write(tmp_path / "m.npz", arrays)
    with pytest.raises(
        ModelFileError, match=r"buffer layers\.3\.running_var is missing"
    ):
        load_model(path)


def test_buffer_with_wrong_shape(tmp_path: Path, saved: Path) -> None:
    arrays = arrays_of(saved)
    arrays["layers.3.running_mean"] = np.zeros(5, np.float32)
    path = write(tmp_path / "m.npz", arrays)
    with pytest.raises(ModelFileError, match=r"layers\.3\.running_mean"):
        load_model(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_buffer(tmp_path: Path, saved: Path, bad: float) -> None:
    arrays = arrays_of(saved)
    arrays["layers.10.running_mean"][1] = bad
    path = write(tmp_path / "m.npz", arrays)
    with pytest.raises(
        ModelFileError, match=r"buffer layers\.10\.running_mean contains NaN"
    ):
        load_model(path)


def test_negative_running_variance(tmp_path: Path, saved: Path) -> None:
    arrays = arrays_of(saved)
    arrays["layers.3.running_var"][0] = -1.0
    path = write(tmp_path / "m.npz", arrays)
    with pytest.raises(ModelFileError, match=r"layers\.3: running_var has negative"):
        load_model(path)


def test_conv_kernel_larger_than_input_is_a_bad_architecture(
    tmp_path: Path, saved: Path
) -> None:
    arrays = arrays_of(saved)
    header = json.loads(str(arrays[HEADER]))
    header["layers"][8]["config"]["kernel_size"] = 30  # Conv2D(5, 1), no padding
    arrays[HEADER] = np.array(json.dumps(header))
    path = write(tmp_path / "m.npz", arrays)
    with pytest.raises(ModelFileError, match=r"layer 8: .*kernel 30x30 is larger"):
        load_model(path)


def test_early_stopping_restores_buffers_with_weights() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (24, 12, 12), dtype=np.uint8)
    y = rng.integers(0, 3, 24)
    model = cnn()
    snapshots: list[list[np.ndarray]] = []

    class Snapshot(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            assert self.model is not None
            snapshots.append([b.copy() for _, b in self.model.named_buffers()])

    stopper = EarlyStopping(
        monitor="loss", patience=0, restore_best_weights=True, verbose=False
    )
    # an absurd learning rate makes the loss rise after the first epoch
    model.optimizer.lr = 50.0  # type: ignore[union-attr]
    model.fit(
        x, y, epochs=6, batch_size=8, seed=0, verbose=0, callbacks=[Snapshot(), stopper]
    )
    assert stopper.stopped_epoch > 0
    best = snapshots[stopper.best_epoch - 1]  # epochs count from 1
    for a, (_, b) in zip(best, model.named_buffers(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_resume_is_bit_identical(tmp_path: Path) -> None:
    """3 epochs straight equal 1 epoch, a checkpoint (buffers in it), and 2 more."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (48, 12, 12), dtype=np.uint8)
    y = rng.integers(0, 3, 48)

    class StopAfterFirst(Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            assert self.model is not None
            self.model.stop_training = True

    straight = cnn()
    straight.fit(x, y, epochs=3, batch_size=8, seed=4, verbose=0)

    first = cnn()
    first.fit(
        x, y, epochs=3, batch_size=8, seed=4, verbose=0, callbacks=[StopAfterFirst()]
    )
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(first, path)
    resumed = load_model(path)
    resumed.fit(x, y, epochs=3, batch_size=8, verbose=0, resume=True)

    for (name, a), (_, b) in zip(
        straight.named_buffers(), resumed.named_buffers(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for (name, p), (_, q) in zip(
        straight.named_parameters(), resumed.named_parameters(), strict=True
    ):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)

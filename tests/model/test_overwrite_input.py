"""Inference writes layer outputs over inputs nobody else holds, and only those."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chainrule import backend
from chainrule.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
)
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD


def pixels_first() -> Sequential:
    layers = [Rescaling(1 / 255), Flatten(), Dense(16), ReLU(), Dense(10)]
    return Sequential(layers, input_shape=(6, 6), seed=0)


def view_first() -> Sequential:
    # Flatten and Dropout hand the caller's array on as a view: ReLU must not
    # write over it, even though it is not the first layer
    layers = [Flatten(), Dropout(0.5), ReLU(), Rescaling(2.0), Dense(10)]
    return Sequential(layers, input_shape=(6, 6), seed=0)


def cnn() -> Sequential:
    layers = [
        Rescaling(1 / 255, offset=-0.5),
        Reshape((1, 6, 6)),
        Conv2D(4, 3, padding="same"),
        BatchNorm(),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(10),
    ]
    return Sequential(layers, input_shape=(6, 6), seed=0)


MODELS = [pixels_first, view_first, cnn]


def trained(make: Callable[[], Sequential], rng: np.random.Generator) -> Sequential:
    """A model whose batch-norm statistics and weights moved from their start."""
    model = make().compile(CrossEntropy(), SGD(0.01))
    x = rng.integers(0, 256, size=(32, 6, 6)).astype(np.float32)
    y = rng.integers(0, 10, size=32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0)
    return model


def reference_logits(model: Sequential, x: np.ndarray) -> np.ndarray:
    """Each layer on a private copy of its input, nothing written over."""
    out = x.astype(model.dtype)
    for layer in model.layers:
        out, _ = layer.forward(out.copy(), False)
    return out


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_predict_matches_layers_on_private_copies(
    make: Callable[[], Sequential], dtype: type, rng: np.random.Generator
) -> None:
    model = trained(make, rng)
    x = rng.integers(0, 256, size=(20, 6, 6)).astype(dtype)
    expected = reference_logits(model, x)
    np.testing.assert_array_equal(model.predict_logits(x, batch_size=7), expected)


@pytest.mark.parametrize("make", MODELS)
def test_the_callers_float_input_is_never_written(
    make: Callable[[], Sequential], rng: np.random.Generator
) -> None:
    model = trained(make, rng)
    x = rng.integers(0, 256, size=(20, 6, 6)).astype(np.float32)
    before = x.copy()
    model.predict(x)
    model.evaluate(x, rng.integers(0, 10, size=20))
    model(x, training=False)
    model.forward(x, training=False)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("make", MODELS)
def test_forward_owning_the_input_gives_the_same_logits(
    make: Callable[[], Sequential], rng: np.random.Generator
) -> None:
    model = trained(make, rng)
    x = rng.integers(0, 256, size=(9, 6, 6)).astype(np.float32)
    expected = reference_logits(model, x)
    logits, _ = model.forward(x.copy(), training=False, owns_input=True)
    np.testing.assert_array_equal(logits, expected)


def test_training_never_writes_over_inputs(rng: np.random.Generator) -> None:
    """A training step keeps inputs for its backward: none may be reused."""
    seen: list[bool] = []

    class Spy(Layer):
        def forward(self, x, training):  # type: ignore[no-untyped-def]
            seen.append(self.overwrite_input)
            return x, lambda dy: dy

    model = Sequential([Rescaling(0.5), Spy(), Dense(3), Spy()], input_shape=(4,))
    model.compile(CrossEntropy(), SGD(0.1))
    x = rng.standard_normal((6, 4)).astype(np.float32)
    model.train_step(x, rng.integers(0, 3, size=6))
    assert seen == [False, False]
    model.predict(x)  # Rescaling's output and Dense's output are the model's
    assert seen[2:] == [True, True]


def test_the_flag_is_off_again_after_each_call(rng: np.random.Generator) -> None:
    model = trained(cnn, rng)
    model.predict(rng.integers(0, 256, size=(3, 6, 6)).astype(np.uint8))
    assert not any(layer.overwrite_input for layer in model.layers)


@pytest.mark.parametrize(
    "layer",
    [ReLU(), Rescaling(0.5, offset=1.0), BatchNorm()],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_write_in_place_only_when_allowed(
    layer: Layer, rng: np.random.Generator
) -> None:
    layer.build((3, 4))
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    kept = x.copy()
    y, _ = layer.forward(x, False)
    np.testing.assert_array_equal(x, kept)  # not allowed: untouched
    assert not np.shares_memory(y, x)
    layer.overwrite_input = True
    try:
        y_inplace, _ = layer.forward(x, False)
    finally:
        layer.overwrite_input = False
    assert np.shares_memory(y_inplace, x)  # allowed: no new array
    np.testing.assert_array_equal(y_inplace, y)


def test_the_permission_belongs_to_one_thread() -> None:
    layer = ReLU()
    layer.overwrite_input = True
    try:
        seen: list[bool] = []
        thread = threading.Thread(target=lambda: seen.append(layer.overwrite_input))
        thread.start()
        thread.join()
        assert layer.overwrite_input and seen == [False]
    finally:
        layer.overwrite_input = False


def test_threads_sharing_a_model_never_write_the_callers_array(
    rng: np.random.Generator,
) -> None:
    """Thread B (the caller's floats) starts; thread A (uint8, its own copy) gets
    its permission while B waits inside the same layer: B must not use it."""

    class Slow(Rescaling):
        def forward(self, x, training):  # type: ignore[no-untyped-def]
            time.sleep(0.05)
            return super().forward(x, training)

    model = Sequential([Slow(2.0), Dense(3)], input_shape=(4,), seed=0)
    floats = np.ones((2, 4), dtype=np.float32)
    pixels = np.ones((2, 4), dtype=np.uint8)
    b = threading.Thread(target=model.predict_logits, args=(floats,))
    a = threading.Thread(target=model.predict_logits, args=(pixels,))
    b.start()
    time.sleep(0.01)
    a.start()
    a.join()
    b.join()
    np.testing.assert_array_equal(floats, 1.0)


def test_batch_norm_in_place_keeps_the_dtype_of_the_product(
    rng: np.random.Generator,
) -> None:
    layer = BatchNorm()
    layer.build((3,))
    layer.running_var = layer.running_var.astype(np.float64)  # type: ignore[union-attr]
    x = rng.standard_normal((4, 3)).astype(np.float32)
    expected, _ = layer.forward(x.copy(), False)
    layer.overwrite_input = True
    try:
        y, _ = layer.forward(x, False)
    finally:
        layer.overwrite_input = False
    assert y.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(y, expected)


def test_a_view_of_a_memory_map_shares_its_memory(tmp_path: Any) -> None:
    mapped = np.memmap(tmp_path / "x.bin", dtype=np.float32, mode="w+", shape=(4, 3))
    assert backend.may_share_memory(np.asarray(mapped)[1:], mapped)
    assert not backend.may_share_memory(np.zeros(3), mapped)

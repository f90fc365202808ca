"""Every registered layer type and every optimizer survives a save and a load.

The model below is checked against ``Layer.registry`` and the optimizers against
``Optimizer.registry``: a new layer type or optimizer that is not added here
fails ``test_every_type_is_covered``, so the round trip can never silently skip
one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from chainrule.io import load_model, save_model
from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD, Adam, AdamW, RMSprop
from chainrule.optim.base import Optimizer

#: each optimizer configured so that it keeps every one of its state arrays
OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "SGD": lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adam": lambda: Adam(0.01, weight_decay=1e-3),
    "AdamW": lambda: AdamW(0.01),
    "RMSprop": lambda: RMSprop(0.01, momentum=0.5, centered=True),
}


def every_layer() -> list[Layer]:
    """One or more of each layer type, on (N, 10, 10) pixel images."""
    return [
        Rescaling(1 / 255, offset=-0.5),
        Reshape((1, 10, 10)),
        Conv2D(3, 3, padding="same", use_bias=False),
        BatchNorm(momentum=0.2),
        LeakyReLU(0.1),
        MaxPool2D(2, stride=1),
        Conv2D(4, (2, 3), stride=(2, 1), padding=(1, 0)),
        Tanh(),
        AvgPool2D(2),
        Identity(),
        Conv2D(4, 1),
        GlobalAvgPool2D(),
        Dropout(0.3),
        Dense(6, max_norm=2.0),
        BatchNorm(),
        ReLU(),
        Reshape((2, 3)),
        Softmax(),
        Flatten(),
        Dense(5, init="he"),
        Sigmoid(),
        Dense(3),
    ]


def chainrule_types(registry: dict[str, type]) -> set[str]:
    """The registered classes chainrule itself defines (tests may add their own)."""
    return {
        name
        for name, cls in registry.items()
        if cls.__module__.startswith("chainrule.")
    }


def trained(optimizer: str) -> tuple[Sequential, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (24, 10, 10), dtype=np.uint8)
    y = rng.integers(0, 3, 24)
    model = Sequential(every_layer(), input_shape=(10, 10), seed=2)
    model.compile(CrossEntropy(label_smoothing=0.1), OPTIMIZERS[optimizer]())
    model.fit(x, y, epochs=2, batch_size=8, seed=0, verbose=0)
    return model, x, y


def test_every_type_is_covered() -> None:
    used = {type(layer).__name__ for layer in every_layer()}
    assert used == chainrule_types(Layer.registry)
    assert set(OPTIMIZERS) == chainrule_types(Optimizer.registry)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_round_trip_is_exact(tmp_path: Path, optimizer: str) -> None:
    model, x, y = trained(optimizer)
    path = tmp_path / "model.npz"
    save_model(model, path)
    loaded = load_model(path)

    assert [repr(layer) for layer in loaded.layers] == [
        repr(layer) for layer in model.layers
    ]
    for (name, p), (name_b, q) in zip(
        model.named_parameters(), loaded.named_parameters(), strict=True
    ):
        assert name == name_b
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    for (name, a), (_, b) in zip(
        model.named_buffers(), loaded.named_buffers(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert model.optimizer is not None and loaded.optimizer is not None
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    keys = type(model.optimizer).state_keys
    for saved, restored in zip(
        model.optimizer.state, loaded.optimizer.state, strict=True
    ):
        assert sorted(saved) == sorted(restored) == sorted(keys)
        for key in keys:
            np.testing.assert_array_equal(saved[key], restored[key], err_msg=key)
    np.testing.assert_array_equal(loaded.predict_logits(x), model.predict_logits(x))

    # the next epoch (dropout masks drawn from the same generator state, the
    # optimizer continuing from its state) is the same in both
    loaded.set_rng_states(model.get_rng_states())
    model.fit(x, y, epochs=1, batch_size=8, seed=9, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=8, seed=9, verbose=0)
    for (name, p), (_, q) in zip(
        model.named_parameters(), loaded.named_parameters(), strict=True
    ):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)

"""A training step skips ``dL/dx`` of the first layer with parameters."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
)
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD


def mlp() -> Sequential:
    layers = [Rescaling(1 / 255), Flatten(), Dense(16), ReLU(), Dense(10)]
    return Sequential(layers, input_shape=(6, 6), seed=0)


def cnn() -> Sequential:
    layers = [
        Rescaling(1 / 255),
        Reshape((1, 6, 6)),
        Conv2D(4, 3, padding="same"),
        BatchNorm(),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(10),
    ]
    return Sequential(layers, input_shape=(6, 6), seed=0)


def first_dense() -> Sequential:
    return Sequential([Dense(8), ReLU(), Dense(10)], input_shape=(36,), seed=0)


def batch(model: Sequential, rng: np.random.Generator) -> np.ndarray:
    shape = model.input_shape or ()
    return rng.integers(0, 256, size=(5, *shape)).astype(np.float32)


@pytest.mark.parametrize("make", [mlp, cnn, first_dense])
def test_same_parameter_gradients_without_the_input_gradient(
    make: object, rng: np.random.Generator
) -> None:
    model = make()  # type: ignore[operator]
    x = batch(model, rng)
    dy = rng.standard_normal((5, 10)).astype(np.float32)
    grads = []
    for input_grad in (True, False):
        model.zero_grad()
        _, backward = model.forward(x, True, input_grad=input_grad)
        dx = backward(dy)
        if input_grad:
            assert dx is not None and dx.shape == x.shape
        else:
            assert dx is None
        grads.append([p.grad.copy() for p in model.parameters()])
    for with_dx, without in zip(*grads, strict=True):
        np.testing.assert_array_equal(with_dx, without)


@pytest.mark.parametrize("make", [mlp, cnn])
def test_layers_compute_dx_again_after_a_training_step(
    make: object, rng: np.random.Generator
) -> None:
    model = make()  # type: ignore[operator]
    model.compile(CrossEntropy(), SGD(0.1))
    x = batch(model, rng)
    model.train_step(x, np.arange(5))
    assert all(layer.input_grad for layer in model.layers)
    # a layer called on its own afterwards still returns its input gradient
    first = next(layer for layer in model.layers if layer.named_parameters())
    h = x
    for layer in model.layers[: model.layers.index(first)]:
        h, _ = layer.forward(h, False)
    out, backward = first.forward(h, True)
    dx = backward(np.ones_like(out))
    assert dx is not None and dx.shape == h.shape


def test_a_training_step_equals_the_full_backward(rng: np.random.Generator) -> None:
    """train_step (no dx) moves the weights exactly as forward + full backward."""
    a, b = cnn(), cnn()
    for m in (a, b):
        m.compile(CrossEntropy(), SGD(0.1, momentum=0.9))
    x, y = batch(a, rng), rng.integers(0, 10, size=5)
    for _ in range(3):
        a.train_step(x, y)
        for p in b.parameters():
            p.zero_grad()
        logits, backward = b.forward(x, True)
        _, dlogits = b.loss(logits, y)  # type: ignore[misc]
        backward(dlogits)
        b.optimizer.step(b.parameters())  # type: ignore[union-attr]
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_first_trainable_index_follows_build_and_the_layers() -> None:
    model = Sequential([Rescaling(1 / 255), Flatten(), Dense(4), ReLU(), Dense(3)])
    assert model.first_trainable_index == 5  # not built: no parameters yet
    model.build((2, 2))
    assert model.first_trainable_index == 2
    assert (cnn().first_trainable_index, first_dense().first_trainable_index) == (2, 0)
    model.layers[2] = ReLU()  # the cached answer is for other layers
    assert model.first_trainable_index == 4
    dense = Dense(4)
    model.layers.insert(0, dense)  # not built yet, so no parameters
    assert model.first_trainable_index == 5
    dense.build((3,))
    assert model.first_trainable_index == 0
    del model.layers[0]
    assert model.first_trainable_index == 4

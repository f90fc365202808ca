"""Dropout: inverted-dropout masks, their backward, seeding and generator state.

Inference is the identity; in training each unit is zeroed with probability
``rate`` and the kept ones are scaled by ``1 / (1 − rate)``, and the backward
multiplies by the very mask its forward drew.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule import gradcheck
from chainrule.layers import Dense, Dropout, ReLU, Tanh
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]


def positive(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float64):
    """Values in [1, 2): no zeros, so every zero of the output is a dropped unit."""
    return rng.uniform(1.0, 2.0, size=shape).astype(dtype)


def small_model(seed: int, rate: float = 0.5, dtype=np.float64) -> Sequential:
    return Sequential(
        [Dense(8), Tanh(), Dropout(rate), Dense(3)],
        input_shape=(5,),
        seed=seed,
        dtype=dtype,
    )


# --------------------------------------------------------------------- inference
@pytest.mark.parametrize("dtype", DTYPES)
def test_inference_returns_the_input_itself(
    rng: np.random.Generator, dtype: type
) -> None:
    layer = Dropout(0.5, seed=0)
    x = rng.standard_normal((4, 6)).astype(dtype)
    y, backward = layer(x, training=False)
    assert y is x
    with pytest.raises(RuntimeError, match="training=False"):
        backward(x)


def test_predict_is_deterministic_with_dropout(rng: np.random.Generator) -> None:
    model = small_model(seed=1, rate=0.9)
    x = rng.standard_normal((10, 5))
    without = Sequential(
        [layer for layer in model.layers if not isinstance(layer, Dropout)],
        input_shape=(5,),
        dtype=model.dtype,
    )
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    np.testing.assert_array_equal(model.predict(x), without.predict(x))


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_fraction_dropped_and_scale(rng: np.random.Generator, rate: float) -> None:
    x = positive(rng, (200, 500))
    y, _ = Dropout(rate, seed=3)(x, training=True)
    dropped = y == 0
    n = x.size
    # a binomial fraction: 6 standard deviations is never hit by chance
    assert abs(dropped.mean() - rate) < 6 * math.sqrt(rate * (1 - rate) / n)
    scale = 1 / (1 - rate)
    np.testing.assert_array_equal(y[~dropped], x[~dropped] * scale)
    # E[y] = E[x]: the spread of the mean of y - x is sqrt(E[x²]·p/(1−p)/n)
    spread = math.sqrt(float((x * x).mean()) * rate / (1 - rate) / n)
    assert abs(y.mean() - x.mean()) < 6 * spread


@pytest.mark.parametrize("dtype", DTYPES)
def test_kept_values_scaled_exactly_in_dtype(
    rng: np.random.Generator, dtype: type
) -> None:
    rate = 0.3
    x = positive(rng, (50, 40), dtype)
    y, backward = Dropout(rate, seed=5)(x, training=True)
    kept = y != 0
    scale = np.dtype(dtype).type(1 / (1 - rate))
    np.testing.assert_array_equal(y[kept], x[kept] * scale)
    assert y.dtype == dtype
    dx = backward(np.ones_like(x))
    assert dx.dtype == dtype


def test_rate_zero_is_identity(rng: np.random.Generator) -> None:
    layer = Dropout(0.0, seed=0)
    x = rng.standard_normal((6, 7))
    dy = rng.standard_normal((6, 7))
    y, backward = layer(x, training=True)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(backward(dy), dy)


def test_backward_uses_the_forward_mask(rng: np.random.Generator) -> None:
    rate = 0.4
    layer = Dropout(rate, seed=11)
    x = positive(rng, (30, 20))
    dy = rng.standard_normal((30, 20))
    y1, backward1 = layer(x, training=True)
    y2, backward2 = layer(x, training=True)
    assert not np.array_equal(y1 == 0, y2 == 0), "two calls drew the same mask"
    for y, backward in ((y1, backward1), (y2, backward2)):
        kept = y != 0
        mask = kept * (1 / (1 - rate))
        dx = backward(dy)
        np.testing.assert_array_equal(dx, dy * mask)
        assert np.all(dx[~kept] == 0)


# ----------------------------------------------------------------------- seeding
def test_same_seed_same_masks(rng: np.random.Generator) -> None:
    x = positive(rng, (16, 32))
    a, b, c = Dropout(0.5, seed=7), Dropout(0.5, seed=7), Dropout(0.5, seed=8)
    for _ in range(3):
        ya, yb, yc = a(x)[0], b(x)[0], c(x)[0]
        np.testing.assert_array_equal(ya, yb)
        assert not np.array_equal(ya, yc)


def test_model_seed_makes_masks_and_training_reproducible(
    rng: np.random.Generator,
) -> None:
    x = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    outputs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        model = small_model(seed)
        outputs[name] = model.forward(x, training=True)[0]
    np.testing.assert_array_equal(outputs["a"], outputs["b"])
    assert not np.array_equal(outputs["a"], outputs["c"])

    weights = []
    for _ in range(2):
        model = small_model(seed=3).compile(CrossEntropy(), SGD(0.1))
        model.fit(x, y, epochs=2, batch_size=8, seed=0, verbose=0)
        weights.append([p.data.copy() for p in model.parameters()])
    for first, second in zip(*weights, strict=True):
        np.testing.assert_array_equal(first, second)


def test_model_seed_is_not_shared_between_dropout_layers(
    rng: np.random.Generator,
) -> None:
    model = Sequential([Dropout(0.5), Dropout(0.5)], input_shape=(400,), seed=0)
    x = positive(rng, (1, 400))
    first, second = (layer(x)[0] for layer in model.layers)
    assert not np.array_equal(first == 0, second == 0)


def test_rng_state_round_trip(rng: np.random.Generator) -> None:
    x = positive(rng, (8, 50))
    layer = Dropout(0.5, seed=0)
    layer(x)
    state = layer.get_rng_state()
    assert state is not None
    # checkpoints keep it as JSON
    state = json.loads(json.dumps(state))
    expected = layer(x)[0]
    layer.set_rng_state(state)
    np.testing.assert_array_equal(layer(x)[0], expected)
    other = Dropout(0.5, seed=99)
    other.set_rng_state(state)
    np.testing.assert_array_equal(other(x)[0], expected)


def test_model_rng_states_round_trip(rng: np.random.Generator) -> None:
    model = small_model(seed=2)
    x = rng.standard_normal((6, 5))
    states = model.get_rng_states()
    assert list(states) == ["layers.2"]
    expected = model.forward(x, training=True)[0]
    model.set_rng_states(json.loads(json.dumps(states)))
    np.testing.assert_array_equal(model.forward(x, training=True)[0], expected)
    with pytest.raises(ValueError, match=r"layers\.7"):
        model.set_rng_states({"layers.7": states["layers.2"]})


# ------------------------------------------------------------------- gradients
def test_gradcheck_of_a_model_with_dropout(rng: np.random.Generator) -> None:
    model = Sequential(
        [Dense(6), Tanh(), Dropout(0.4), Dense(4), ReLU(), Dropout(0.2), Dense(3)],
        input_shape=(5,),
        seed=4,
        dtype=np.float64,
    ).compile(CrossEntropy())
    x = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7)
    report = gradcheck(model, x, y)
    assert report.passed, report.format()


def test_gradcheck_of_dropout_alone(rng: np.random.Generator) -> None:
    report = gradcheck(Dropout(0.5, seed=1), rng.standard_normal((6, 9)))
    assert report.passed, report.format()
    assert report["input"].checked == 54


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_torch_autograd_with_the_same_mask(
    rng: np.random.Generator, dtype: type
) -> None:
    rate = 0.35
    x = positive(rng, (9, 13), dtype)
    x[::2] *= -1
    dy = rng.standard_normal((9, 13)).astype(dtype)
    y, backward = Dropout(rate, seed=21)(x, training=True)
    dx = backward(dy)
    # F.dropout draws its own mask: reuse chainrule's, read off the output
    mask = ((y != 0) * np.dtype(dtype).type(1 / (1 - rate))).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = xt * torch.tensor(mask)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())


def test_same_scaling_convention_as_torch() -> None:
    rate = 0.25
    yt = F.dropout(torch.ones(64, 64, dtype=torch.float64), p=rate, training=True)
    y, _ = Dropout(rate, seed=0)(np.ones((64, 64)), training=True)
    np.testing.assert_allclose(np.unique(y), np.unique(yt.numpy()), rtol=1e-15)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("rate", "error"),
    [
        (-0.1, ValueError),
        (1.0, ValueError),
        (1.5, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("a", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_bad_rate_is_a_clear_error(rate: object, error: type) -> None:
    with pytest.raises(error, match=r"Dropout.*rate"):
        Dropout(rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_a_clear_error(seed: object) -> None:
    with pytest.raises(ValueError, match=r"Dropout.*seed"):
        Dropout(0.5, seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved_in_a_model(rng: np.random.Generator, dtype: type) -> None:
    model = small_model(seed=0, dtype=dtype)
    x = rng.standard_normal((4, 5)).astype(dtype)
    y, backward = model.forward(x, training=True)
    assert y.dtype == dtype
    assert backward(np.ones_like(y)).dtype == dtype
    assert model.predict(x).dtype == dtype

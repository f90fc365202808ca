"""Every layer against PyTorch autograd: forward output, dx, dW and db.

The upstream gradient ``dy`` is random (not ones), so a backward that only
sums or only passes ``dy`` through would be caught. Shapes are drawn by
hypothesis (derandomized, so every run checks the same cases).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule import backend
from chainrule.layers import (
    Dense,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
TOL: dict[Any, dict[str, float]] = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-13},
}
SETTINGS = settings(deadline=None, max_examples=12, derandomize=True)

seeds = st.integers(0, 2**32 - 1)
# (N, d1, ..., dk) with 1 <= k <= 3: elementwise layers take any trailing shape.
batch_shapes = st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple)


def away_from_zero(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resample entries with ``|x| < 1e-3`` so no input sits on the ReLU kink."""
    mask = np.abs(x) < 1e-3
    while mask.any():
        x[mask] = rng.standard_normal(int(mask.sum()))
        mask = np.abs(x) < 1e-3
    return x


def run_both(
    layer: Layer,
    torch_fn: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Forward and backward through ``layer`` and ``torch_fn``; compare all."""
    tol = TOL[x.dtype.type]
    y, backward = layer(x, training=True)
    dy = rng.standard_normal(y.shape).astype(x.dtype)
    dx = backward(dy)

    tx = torch.tensor(x, requires_grad=True)
    ty = torch_fn(tx)
    ty.backward(torch.tensor(dy))

    assert y.dtype == x.dtype and dx.dtype == x.dtype
    assert dx.shape == x.shape
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    assert tx.grad is not None
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)


# ----------------------------------------------------------------------- Dense
@SETTINGS
@given(
    n=st.integers(1, 16),
    features=st.integers(1, 32),
    units=st.integers(1, 16),
    use_bias=st.booleans(),
    seed=seeds,
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_matches_torch_linear(
    dtype: Any, n: int, features: int, units: int, use_bias: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    # A non-zero bias, so the forward's "+ b" is checked too.
    layer = Dense(units, use_bias=use_bias, bias_init="normal")
    layer.build((features,), rng)
    layer.astype(dtype)
    tol = TOL[dtype]
    x = rng.standard_normal((n, features)).astype(dtype)

    y, backward = layer(x, training=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = backward(dy)

    params = dict(layer.named_parameters())
    assert set(params) == ({"W", "b"} if use_bias else {"W"})
    tx = torch.tensor(x, requires_grad=True)
    # chainrule keeps W as (in, out); torch's linear wants weight (out, in).
    tW = torch.tensor(params["W"].data, requires_grad=True)
    tb = torch.tensor(params["b"].data, requires_grad=True) if use_bias else None
    ty = F.linear(tx, tW.T, tb)
    ty.backward(torch.tensor(dy))

    assert y.dtype == dtype and dx.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    assert tx.grad is not None and tW.grad is not None
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(params["W"].grad, tW.grad.numpy(), **tol)
    assert params["W"].grad.dtype == dtype
    if tb is not None:
        assert tb.grad is not None
        np.testing.assert_allclose(params["b"].grad, tb.grad.numpy(), **tol)
        assert params["b"].grad.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_grads_accumulate_like_torch(dtype: Any) -> None:
    """Two backward passes add into ``.grad``, as torch's ``.grad`` does."""
    rng = np.random.default_rng(7)
    with backend.precision(dtype):
        layer = Dense(5, bias_init="normal")
        layer.build((4,), rng)
    W, b = layer.W, layer.b
    assert W is not None and b is not None
    tW = torch.tensor(W.data, requires_grad=True)
    tb = torch.tensor(b.data, requires_grad=True)
    for _ in range(2):
        x = rng.standard_normal((3, 4)).astype(dtype)
        dy = rng.standard_normal((3, 5)).astype(dtype)
        _, backward = layer(x, training=True)
        backward(dy)
        F.linear(torch.tensor(x), tW.T, tb).backward(torch.tensor(dy))
    assert tW.grad is not None and tb.grad is not None
    np.testing.assert_allclose(W.grad, tW.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), **TOL[dtype])


# ------------------------------------------------------ parameter-free layers
def leaky(alpha: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: F.leaky_relu(t, negative_slope=alpha)


ELEMENTWISE: list[tuple[str, Callable[[], Layer], Any, float, bool]] = [
    # (id, layer factory, torch function, input scale, keep away from 0)
    ("sigmoid", Sigmoid, torch.sigmoid, 4.0, False),
    ("tanh", Tanh, torch.tanh, 2.0, False),
    ("relu", ReLU, F.relu, 1.0, True),
    ("leaky_relu_default", LeakyReLU, leaky(0.01), 1.0, True),
    ("leaky_relu_0.2", lambda: LeakyReLU(0.2), leaky(0.2), 1.0, True),
    ("leaky_relu_0", lambda: LeakyReLU(0.0), leaky(0.0), 1.0, True),
    ("leaky_relu_1.5", lambda: LeakyReLU(1.5), leaky(1.5), 1.0, True),
    ("softmax", Softmax, lambda t: F.softmax(t, dim=-1), 3.0, False),
    ("identity", Identity, lambda t: t * 1, 1.0, False),
    ("flatten", Flatten, lambda t: torch.flatten(t, 1), 1.0, False),
    ("reshape_flat", lambda: Reshape((-1,)), lambda t: torch.flatten(t, 1), 1.0, False),
    (
        "rescaling_1/255",
        lambda: Rescaling(1 / 255),
        lambda t: t * (1 / 255),
        255.0,
        False,
    ),
    (
        "rescaling_affine",
        lambda: Rescaling(-2.5, offset=0.75),
        lambda t: t * -2.5 + 0.75,
        1.0,
        False,
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("make", "torch_fn", "scale", "avoid_zero"),
    [case[1:] for case in ELEMENTWISE],
    ids=[case[0] for case in ELEMENTWISE],
)
@SETTINGS
@given(shape=batch_shapes, seed=seeds)
def test_layer_matches_torch(
    make: Callable[[], Layer],
    torch_fn: Callable[[torch.Tensor], torch.Tensor],
    scale: float,
    avoid_zero: bool,
    dtype: Any,
    shape: tuple[int, ...],
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape)
    if avoid_zero:
        x = away_from_zero(x, rng)
    layer = make()
    layer.build(shape[1:], rng)
    run_both(layer, torch_fn, x.astype(dtype), rng)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(
    shape=batch_shapes,
    scale=st.floats(-100, 100, allow_nan=False),
    offset=st.floats(-100, 100, allow_nan=False),
    seed=seeds,
)
def test_rescaling_matches_torch_for_any_scale(
    dtype: Any, shape: tuple[int, ...], scale: float, offset: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    layer = Rescaling(scale, offset)
    x = rng.standard_normal(shape).astype(dtype)
    # torch computes in x's dtype, as chainrule does: round the constants alike.
    s, o = float(dtype(scale)), float(dtype(offset))
    run_both(layer, lambda t: t * s + o, x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(
    shape=batch_shapes,
    alpha=st.floats(0, 3, allow_nan=False),
    seed=seeds,
)
def test_leaky_relu_matches_torch_for_any_alpha(
    dtype: Any, shape: tuple[int, ...], alpha: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng.standard_normal(shape), rng).astype(dtype)
    a = float(dtype(alpha))
    run_both(LeakyReLU(a), leaky(a), x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_matches_torch_on_large_logits(dtype: Any) -> None:
    """Shifting by the max keeps exp in range where a naive softmax overflows."""
    rng = np.random.default_rng(3)
    x = rng.choice([-1e4, -50.0, 0.0, 80.0, 1e4], size=(6, 5)) + rng.standard_normal(
        (6, 5)
    )
    run_both(Softmax(), lambda t: F.softmax(t, dim=-1), x.astype(dtype), rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_torch_on_large_inputs(dtype: Any) -> None:
    rng = np.random.default_rng(4)
    x = rng.choice([-1e4, -100.0, -30.0, 30.0, 100.0, 1e4], size=(4, 6))
    run_both(Sigmoid(), torch.sigmoid, x.astype(dtype), rng)

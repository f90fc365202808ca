"""Regularisers beyond dropout: Dense's max-norm constraint and label smoothing.

Max-norm (Srivastava et al. 2014) rescales each unit's incoming weights after
every update so their L2 norm is at most ``c``, leaving the others untouched.
Label smoothing is checked against PyTorch's ``cross_entropy(label_smoothing=ε)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule import gradcheck
from chainrule.io import load_model, save_model
from chainrule.layers import Dense, Tanh
from chainrule.losses import MSE, CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
TOL = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-14},
}


def column_norms(W: np.ndarray) -> np.ndarray:
    return np.sqrt((W.astype(np.float64) ** 2).sum(axis=0))


def one_layer(max_norm: float | None, dtype: type) -> Sequential:
    """Dense(4) on 6 features whose weights start well inside any limit used."""
    model = Sequential(
        [Dense(4, max_norm=max_norm)], input_shape=(6,), seed=0, dtype=dtype
    )
    model.layers[0].W.data[...] *= 0.01
    return model.compile(MSE(), SGD(0.5))


# --------------------------------------------------------------------- max_norm
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_norm_rescales_only_the_columns_over_the_limit(
    rng: np.random.Generator, dtype: type
) -> None:
    x = rng.standard_normal((16, 6)).astype(dtype)
    y = (3 * rng.standard_normal((16, 4))).astype(dtype)
    free = one_layer(None, dtype)
    free.train_step(x, y)
    W_free = free.layers[0].W.data.copy()
    norms = np.sort(column_norms(W_free))
    # a limit between the 2nd and 3rd column norms: two columns over, two under
    c = float((norms[1] + norms[2]) / 2)
    # every column starts under the limit: the step is what pushes two over it
    assert (column_norms(one_layer(None, dtype).layers[0].W.data) < c).all()

    constrained = one_layer(c, dtype)
    constrained.train_step(x, y)
    W = constrained.layers[0].W.data
    assert W.dtype == dtype
    over = column_norms(W_free) > c
    assert over.sum() == 2
    assert (column_norms(W) <= c + 1e-6).all()
    np.testing.assert_allclose(column_norms(W)[over], c, rtol=1e-6)
    # columns under the limit are exactly the unconstrained update
    np.testing.assert_array_equal(W[:, ~over], W_free[:, ~over])
    # over it: the same direction, shortened
    scale = c / column_norms(W_free)[over]
    np.testing.assert_allclose(W[:, over], W_free[:, over] * scale, **TOL[dtype])
    # the bias is not constrained
    np.testing.assert_array_equal(constrained.layers[0].b.data, free.layers[0].b.data)


def test_max_norm_holds_through_fit(rng: np.random.Generator) -> None:
    model = Sequential(
        [Dense(16, max_norm=0.5), Tanh(), Dense(3, max_norm=1.0)],
        input_shape=(5,),
        seed=1,
    ).compile(CrossEntropy(), SGD(1.0, momentum=0.9))
    x = rng.standard_normal((64, 5))
    y = rng.integers(0, 3, 64)
    model.fit(x, y, epochs=3, batch_size=8, seed=0, verbose=0)
    assert (column_norms(model.layers[0].W.data) <= 0.5 + 1e-6).all()
    assert (column_norms(model.layers[2].W.data) <= 1.0 + 1e-6).all()


def test_max_norm_survives_save_and_load(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    model = one_layer(0.75, np.float64)
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    layer = loaded.layers[0]
    assert isinstance(layer, Dense)
    assert layer.max_norm == 0.75
    assert layer.get_config()["max_norm"] == 0.75
    assert "max_norm=0.75" in repr(layer)
    x = rng.standard_normal((8, 6))
    loaded.train_step(x, 10 * rng.standard_normal((8, 4)))
    assert (column_norms(layer.W.data) <= 0.75 + 1e-6).all()
    assert Dense(3).get_config()["max_norm"] is None


@pytest.mark.parametrize(
    ("max_norm", "error"),
    [
        (0, ValueError),
        (0.0, ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_bad_max_norm_is_a_clear_error(max_norm: object, error: type) -> None:
    with pytest.raises(error, match=r"Dense.*max_norm"):
        Dense(4, max_norm=max_norm)  # type: ignore[arg-type]


# ------------------------------------------------------------- label smoothing
def random_case(rng: np.random.Generator, kind: str, dtype: type, n=7, c=5):
    logits = (3 * rng.standard_normal((n, c))).astype(dtype)
    if kind == "labels":
        return logits, rng.integers(0, c, n)
    probs = rng.random((n, c)) ** 3
    return logits, (probs / probs.sum(axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("eps", [0.05, 0.1, 0.4])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_label_smoothing_matches_torch(
    rng: np.random.Generator, dtype: type, kind: str, eps: float, reduction: str
) -> None:
    logits, y = random_case(rng, kind, dtype)
    value, grad = CrossEntropy(reduction=reduction, label_smoothing=eps)(
        logits.copy(), y
    )
    zt = torch.tensor(logits, requires_grad=True)
    yt = torch.tensor(y)
    expected = F.cross_entropy(zt, yt, reduction=reduction, label_smoothing=eps)
    expected.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(value, expected.item(), **TOL[dtype])
    np.testing.assert_allclose(grad, zt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_zero_smoothing_is_plain_cross_entropy(
    rng: np.random.Generator, kind: str
) -> None:
    logits, y = random_case(rng, kind, np.float64)
    smooth = CrossEntropy(label_smoothing=0.0)(logits.copy(), y)
    plain = CrossEntropy()(logits.copy(), y)
    assert smooth[0] == plain[0]
    np.testing.assert_array_equal(smooth[1], plain[1])


@pytest.mark.parametrize(
    ("eps", "error"),
    [
        (-0.1, ValueError),
        (1.0, ValueError),
        (2, ValueError),
        (float("nan"), ValueError),
        ("0.1", TypeError),
    ],
)
def test_bad_label_smoothing_is_a_clear_error(eps: object, error: type) -> None:
    with pytest.raises(error, match=r"CrossEntropy.*label_smoothing"):
        CrossEntropy(label_smoothing=eps)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_gradcheck_with_label_smoothing(rng: np.random.Generator, kind: str) -> None:
    logits, y = random_case(rng, kind, np.float64)
    report = gradcheck(CrossEntropy(label_smoothing=0.2), logits, y)
    assert report.passed, report.format()

    model = Sequential(
        [Dense(6), Tanh(), Dense(5)], input_shape=(4,), seed=2, dtype=np.float64
    ).compile(CrossEntropy(label_smoothing=0.15))
    report = gradcheck(model, rng.standard_normal((7, 4)), y)
    assert report.passed, report.format()


def test_label_smoothing_survives_save_and_load(tmp_path: Path) -> None:
    model = Sequential([Dense(3)], input_shape=(2,), seed=0)
    model.compile(CrossEntropy(label_smoothing=0.1), SGD(0.1))
    save_model(model, tmp_path / "m.npz")
    loss = load_model(tmp_path / "m.npz").loss
    assert isinstance(loss, CrossEntropy)
    assert loss.label_smoothing == 0.1
    assert repr(loss) == "CrossEntropy(label_smoothing=0.1)"

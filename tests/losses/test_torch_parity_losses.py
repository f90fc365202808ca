"""Every loss against PyTorch: the value and its gradient w.r.t. the logits.

chainrule returns ``dL/dlogits`` with the reduction already applied, so it must
equal ``logits.grad`` after ``torch_loss.backward()``. ``batchmean`` (sum over
a sample's elements, mean over the batch) has no torch equivalent for these
losses and is compared with ``sum / N``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy, Loss

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
TOL: dict[Any, dict[str, float]] = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-14},
}
SEEDS = [0, 1, 2]
SHAPES = [(1, 2), (5, 3), (16, 10)]
TorchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def compare(
    loss: Loss,
    logits: np.ndarray,
    y: np.ndarray,
    torch_loss: TorchLoss,
    torch_target: torch.Tensor,
    divide_by: int = 1,
) -> None:
    """Check ``loss(logits, y)`` against ``torch_loss(logits, target) / divide_by``."""
    tol = TOL[logits.dtype.type]
    before = logits.copy(), y.copy()
    value, dlogits = loss(logits, y)
    np.testing.assert_array_equal(logits, before[0])  # inputs left untouched
    np.testing.assert_array_equal(y, before[1])

    tz = torch.tensor(logits, requires_grad=True)
    tvalue = torch_loss(tz, torch_target) / divide_by
    tvalue.backward()

    assert isinstance(value, float) and np.isfinite(value)
    assert dlogits.shape == logits.shape and dlogits.dtype == logits.dtype
    assert np.isfinite(dlogits).all()
    np.testing.assert_allclose(value, tvalue.item(), **tol)
    assert tz.grad is not None
    np.testing.assert_allclose(dlogits, tz.grad.numpy(), **tol)


def random_logits(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: Any
) -> np.ndarray:
    return (3 * rng.standard_normal(shape)).astype(dtype)


def extreme_logits(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, big: float
) -> np.ndarray:
    """Logits of magnitude ``big`` mixed with ordinary ones, both signs."""
    values = rng.choice([-big, big, -1.0, 0.0, 1.0], size=shape)
    return values.astype(dtype)


EXTREMES = [
    (np.float64, 1e4),
    (np.float64, 700.0),
    (np.float32, 80.0),
    (np.float32, 1e4),
]


# --------------------------------------------------------------- CrossEntropy
def torch_ce(reduction: str) -> TorchLoss:
    return lambda z, t: F.cross_entropy(z, t, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_int_labels(
    dtype: Any, shape: tuple[int, int], seed: int, reduction: str
) -> None:
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, shape, dtype)
    labels = rng.integers(0, shape[1], size=shape[0])
    compare(
        CrossEntropy(reduction),
        logits,
        labels,
        torch_ce(reduction),
        torch.tensor(labels),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_probability_targets(
    dtype: Any, shape: tuple[int, int], seed: int, reduction: str
) -> None:
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, shape, dtype)
    probs = rng.dirichlet(np.ones(shape[1]), size=shape[0]).astype(dtype)
    compare(
        CrossEntropy(reduction),
        logits,
        probs,
        torch_ce(reduction),
        torch.tensor(probs),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_batchmean_is_sum_over_n(dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, (7, 4), dtype)
    labels = rng.integers(0, 4, size=7)
    compare(
        CrossEntropy("batchmean"),
        logits,
        labels,
        torch_ce("sum"),
        torch.tensor(labels),
        divide_by=7,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_one_hot_targets_equal_int_labels(dtype: Any) -> None:
    rng = np.random.default_rng(5)
    logits = random_logits(rng, (6, 4), dtype)
    labels = rng.integers(0, 4, size=6)
    one_hot = np.eye(4, dtype=dtype)[labels]
    value_int, grad_int = CrossEntropy()(logits, labels)
    value_hot, grad_hot = CrossEntropy()(logits, one_hot)
    np.testing.assert_allclose(value_hot, value_int, **TOL[dtype])
    np.testing.assert_allclose(grad_hot, grad_int, **TOL[dtype])


@pytest.mark.parametrize(("dtype", "big"), EXTREMES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_cross_entropy_extreme_logits(
    dtype: Any, big: float, reduction: str, targets: str
) -> None:
    rng = np.random.default_rng(11)
    logits = extreme_logits(rng, (8, 5), dtype, big)
    # Put the true class on a hugely negative logit in some rows: a loss of ~2·big.
    logits[0, :] = [big, -big, 0, 1, -1]
    labels = rng.integers(0, 5, size=8)
    labels[0] = 1
    if targets == "labels":
        y, ty = labels, torch.tensor(labels)
    else:
        y = rng.dirichlet(np.ones(5), size=8).astype(dtype)
        ty = torch.tensor(y)
    compare(CrossEntropy(reduction), logits, y, torch_ce(reduction), ty)


# --------------------------------------------------------- BinaryCrossEntropy
def torch_bce(reduction: str) -> TorchLoss:
    return lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction=reduction)


# chainrule reduction -> (torch reduction, divide by N?)
BCE_REDUCTIONS = [
    ("mean", "mean", False),
    ("sum", "sum", False),
    ("batchmean", "sum", True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (16, 10)])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("reduction", "torch_reduction", "per_n"), BCE_REDUCTIONS)
def test_bce_probability_targets(
    dtype: Any,
    shape: tuple[int, int],
    seed: int,
    reduction: str,
    torch_reduction: str,
    per_n: bool,
) -> None:
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, shape, dtype)
    target = rng.uniform(0, 1, size=shape).astype(dtype)
    target[0, 0] = 0.0  # the ends of [0, 1] are valid targets
    target[-1, -1] = 1.0
    compare(
        BinaryCrossEntropy(reduction),
        logits,
        target,
        torch_bce(torch_reduction),
        torch.tensor(target),
        divide_by=shape[0] if per_n else 1,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("reduction", "torch_reduction", "per_n"), BCE_REDUCTIONS)
def test_bce_int_labels_are_one_hot_encoded(
    dtype: Any, seed: int, reduction: str, torch_reduction: str, per_n: bool
) -> None:
    rng = np.random.default_rng(seed)
    n, c = 9, 4
    logits = random_logits(rng, (n, c), dtype)
    labels = rng.integers(0, c, size=n)
    one_hot = np.eye(c, dtype=dtype)[labels]
    compare(
        BinaryCrossEntropy(reduction),
        logits,
        labels,
        torch_bce(torch_reduction),
        torch.tensor(one_hot),
        divide_by=n if per_n else 1,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("reduction", "torch_reduction", "per_n"), BCE_REDUCTIONS)
def test_bce_single_output_with_01_labels(
    dtype: Any, seed: int, reduction: str, torch_reduction: str, per_n: bool
) -> None:
    """Logits ``(N, 1)`` with ``(N,)`` 0/1 labels: the labels are the targets."""
    rng = np.random.default_rng(seed)
    n = 10
    logits = random_logits(rng, (n, 1), dtype)
    labels = rng.integers(0, 2, size=n)
    labels[:2] = [0, 1]
    compare(
        BinaryCrossEntropy(reduction),
        logits,
        labels,
        torch_bce(torch_reduction),
        torch.tensor(labels.reshape(n, 1).astype(dtype)),
        divide_by=n if per_n else 1,
    )


@pytest.mark.parametrize(("dtype", "big"), EXTREMES)
@pytest.mark.parametrize(("reduction", "torch_reduction", "per_n"), BCE_REDUCTIONS)
def test_bce_extreme_logits(
    dtype: Any, big: float, reduction: str, torch_reduction: str, per_n: bool
) -> None:
    rng = np.random.default_rng(12)
    n, c = 8, 5
    logits = extreme_logits(rng, (n, c), dtype, big)
    target = rng.choice([0.0, 1.0, 0.25], size=(n, c)).astype(dtype)
    # Confidently wrong in both directions: losses of about ``big``.
    logits[0, :2] = [big, -big]
    target[0, :2] = [0.0, 1.0]
    compare(
        BinaryCrossEntropy(reduction),
        logits,
        target,
        torch_bce(torch_reduction),
        torch.tensor(target),
        divide_by=n if per_n else 1,
    )


@pytest.mark.parametrize(("dtype", "big"), EXTREMES)
def test_bce_extreme_logits_single_output_labels(dtype: Any, big: float) -> None:
    logits = np.array([[big], [-big], [big], [-big]], dtype=dtype)
    labels = np.array([0, 1, 1, 0])
    compare(
        BinaryCrossEntropy(),
        logits,
        labels,
        torch_bce("mean"),
        torch.tensor(labels.reshape(-1, 1).astype(dtype)),
    )


# ------------------------------------------------------------------------ MSE
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (16, 10), (4, 3, 2)])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("reduction", "torch_reduction", "per_n"), BCE_REDUCTIONS)
def test_mse_matches_torch(
    dtype: Any,
    shape: tuple[int, ...],
    seed: int,
    reduction: str,
    torch_reduction: str,
    per_n: bool,
) -> None:
    rng = np.random.default_rng(seed)
    logits = random_logits(rng, shape, dtype)
    target = rng.standard_normal(shape).astype(dtype)
    compare(
        MSE(reduction),
        logits,
        target,
        lambda z, t: F.mse_loss(z, t, reduction=torch_reduction),
        torch.tensor(target),
        divide_by=shape[0] if per_n else 1,
    )


@pytest.mark.parametrize(("dtype", "big"), EXTREMES)
def test_mse_extreme_logits(dtype: Any, big: float) -> None:
    rng = np.random.default_rng(13)
    logits = extreme_logits(rng, (6, 3), dtype, big)
    target = rng.standard_normal((6, 3)).astype(dtype)
    compare(
        MSE(),
        logits,
        target,
        lambda z, t: F.mse_loss(z, t),
        torch.tensor(target),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_tied_large_logits_split_evenly(dtype: Any) -> None:
    """Two tied logits of 1e4: p = (0.5, 0.5), loss log 2, rows of dL/dz sum to 0.

    The shift by the max must be exact here: ``(z - m) - log Σ e^(z - m)``;
    rounding ``m + log Σ`` to float32 first loses ``log 2`` against ``1e4``.
    """
    logits = np.array([[1e4, 1e4, -1e4]], dtype=dtype)
    value, dlogits = CrossEntropy()(logits, np.array([0]))
    np.testing.assert_allclose(value, np.log(2), **TOL[dtype])
    np.testing.assert_allclose(dlogits, [[-0.5, 0.5, 0.0]], **TOL[dtype])

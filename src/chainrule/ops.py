"""Pure, stateless, numerically stable math used by layers and losses."""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule.types import Array


def sigmoid(x: Array) -> Array:
    """Logistic function ``1 / (1 + exp(-x))`` without overflow for any input.

    Computed as ``exp(min(x, 0)) / (1 + exp(-|x|))``: ``exp`` only ever sees
    numbers ``<= 0``, so both terms lie in ``[0, 1]``. For ``x >= 0`` that is
    ``1 / (1 + e^(-x))``; for ``x < 0`` it is ``e^x / (1 + e^x)``, the same
    function, which keeps full relative precision far into the lower tail.
    Two ``exp`` calls cost less than choosing between the two forms per
    element (``where``), and everything after the first two arrays is in place.
    """
    xp = backend.xp()
    numerator = xp.minimum(x, 0)
    xp.exp(numerator, out=numerator)
    denominator = xp.abs(x)
    xp.negative(denominator, out=denominator)
    xp.exp(denominator, out=denominator)
    denominator += 1
    numerator /= denominator
    return numerator


def log_sigmoid(x: Array) -> Array:
    """``log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|))``."""
    xp = backend.xp()
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def shifted(z: Array, axis: int = -1) -> Array:
    """``z - max(z)`` along ``axis``: every entry ``<= 0``, so ``exp`` is ``<= 1``.

    For huge logits of opposite sign the difference overflows to ``-inf``, whose
    ``exp`` is the correct 0, so that overflow is not reported.
    """
    with np.errstate(over="ignore"):
        return z - z.max(axis=axis, keepdims=True)


def logsumexp(z: Array, axis: int = -1) -> Array:
    """``log(sum(exp(z)))`` along ``axis`` (kept), shifted by the max so exp <= 1."""
    xp = backend.xp()
    m = z.max(axis=axis, keepdims=True)
    return m + xp.log(xp.exp(shifted(z, axis)).sum(axis=axis, keepdims=True))


def log_softmax(z: Array, axis: int = -1) -> Array:
    """``(z - max z) - log(sum(exp(z - max z)))`` along ``axis``.

    Subtracting the max first (rather than ``z - logsumexp(z)``) keeps the small
    terms: with logits near 1e4, float32 cannot hold ``max + log(...)`` exactly.
    """
    xp = backend.xp()
    s = shifted(z, axis)
    return s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))


def softmax(z: Array, axis: int = -1) -> Array:
    """``exp(z) / sum(exp(z))`` along ``axis``, computed as ``exp(z - max z)``."""
    xp = backend.xp()
    e = xp.exp(shifted(z, axis))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def one_hot(labels: Array, num_classes: int, dtype: object) -> Array:
    """``(N,)`` integer labels to an ``(N, num_classes)`` one-hot matrix."""
    xp = backend.xp()
    out = xp.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


__all__ = [
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "one_hot",
    "shifted",
    "sigmoid",
    "softmax",
]

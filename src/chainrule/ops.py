"""Pure, stateless, numerically stable math used by layers and losses."""

from __future__ import annotations

from chainrule import backend
from chainrule.types import Array


def sigmoid(x: Array) -> Array:
    """Logistic function ``1 / (1 + exp(-x))`` without overflow for any input.

    ``exp`` only ever sees ``-|x| <= 0``, so it lies in ``(0, 1]``:
    for ``x >= 0`` the result is ``1 / (1 + e)``, otherwise ``e / (1 + e)``,
    with ``e = exp(-|x|)``.
    """
    xp = backend.xp()
    e = xp.exp(-xp.abs(x))
    r = 1.0 / (1.0 + e)
    return xp.where(x >= 0, r, e * r)


def log_sigmoid(x: Array) -> Array:
    """``log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|))``."""
    xp = backend.xp()
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def logsumexp(z: Array, axis: int = -1) -> Array:
    """``log(sum(exp(z)))`` along ``axis`` (kept), shifted by the max so exp <= 1."""
    xp = backend.xp()
    m = z.max(axis=axis, keepdims=True)
    return m + xp.log(xp.exp(z - m).sum(axis=axis, keepdims=True))


def log_softmax(z: Array, axis: int = -1) -> Array:
    """``z - logsumexp(z)`` along ``axis``."""
    return z - logsumexp(z, axis=axis)


def softmax(z: Array, axis: int = -1) -> Array:
    """``exp(z) / sum(exp(z))`` along ``axis``, computed as ``exp(z - max z)``."""
    xp = backend.xp()
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def one_hot(labels: Array, num_classes: int, dtype: object) -> Array:
    """``(N,)`` integer labels to an ``(N, num_classes)`` one-hot matrix."""
    xp = backend.xp()
    out = xp.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


__all__ = ["log_sigmoid", "log_softmax", "logsumexp", "one_hot", "sigmoid", "softmax"]

"""Binary cross-entropy on logits: gradient ``σ(z) − y``, stable for any ``z``."""

from __future__ import annotations

from typing import Any

from chainrule import backend, ops
from chainrule.losses.base import Loss, check_batch, float_targets, integer_labels
from chainrule.types import Array


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of ``σ(logits)`` against targets in ``[0, 1]``.

    Shape:
        - logits: ``(N, C)`` (``C`` independent sigmoid outputs; ``C = 1`` for a
          single yes/no output)
        - y: same shape as logits with values in ``[0, 1]``; or ``(N,)`` integer
          class labels, one-hot encoded to ``(N, C)`` (with ``C = 1`` they are
          the 0/1 targets themselves)

    Per element ``L = −[y log σ(z) + (1 − y) log(1 − σ(z))]``, computed as
    ``max(z, 0) − z·y + log(1 + e^(−|z|))``, which never overflows.

    Backward: ``dL/dz = σ(z) − y`` per element, divided by the reduction's
    denominator. With ``reduction="batchmean"`` (sum over classes, mean over the
    batch) this is the tutorial's output error ``(a3 − y) / N``.
    """

    def __call__(self, logits: Array, y: Array) -> tuple[float, Array]:
        check_batch("BinaryCrossEntropy", logits, y)
        target = self._targets(tuple(logits.shape), logits.dtype, y)
        xp = backend.xp()
        z = logits
        per_element = xp.maximum(z, 0) - z * target + xp.log1p(xp.exp(-xp.abs(z)))
        denom = self._denominator(tuple(logits.shape))
        grad = ops.sigmoid(logits) - target
        if denom != 1:
            grad /= denom
        return float(per_element.sum()) / denom, grad

    def describe(self, z: str, a: str) -> tuple[list[str], str]:
        over = self._over()
        return [
            f"{a} = σ({z})",
            f"C = −Σ [y log {a} + (1 − y) log(1 − {a})]{over}",
        ], f"({a} − y){over}"

    def _targets(self, shape: tuple[int, ...], dtype: Any, y: Array) -> Array:
        if tuple(y.shape) == shape:
            return float_targets("BinaryCrossEntropy", y, dtype, low=0.0, high=1.0)
        if y.ndim == 1 and len(shape) == 2:
            c = shape[1]
            labels = integer_labels("BinaryCrossEntropy", y, max(c, 2))
            if c == 1:
                return labels.astype(dtype).reshape(-1, 1)
            return ops.one_hot(labels, c, dtype)
        raise ValueError(
            f"BinaryCrossEntropy expected targets of shape {shape} "
            f"or ({shape[0]},) labels, got {tuple(y.shape)}"
        )

    def check_targets(self, y: Array, output_shape: tuple[int, ...]) -> None:
        self._targets((y.shape[0], *output_shape), "float32", y)

    def activation(self, logits: Array) -> Array:
        """Elementwise sigmoid: independent probabilities per output."""
        return ops.sigmoid(logits)


__all__ = ["BinaryCrossEntropy"]

"""Softmax cross-entropy, fused: the gradient is exactly ``(softmax(z) − y) / N``."""

from __future__ import annotations

from chainrule import backend, ops
from chainrule.losses.base import Loss, check_batch, float_targets, integer_labels
from chainrule.types import Array


class CrossEntropy(Loss):
    """Cross-entropy of ``softmax(logits)`` against class labels or distributions.

    Shape:
        - logits: ``(N, C)``, raw scores (no softmax layer before it)
        - y: ``(N,)`` integer labels in ``[0, C)``, or ``(N, C)`` one-hot /
          probability rows

    Per sample ``L = logsumexp(z) − Σ_c y_c z_c`` (equal to ``−Σ_c y_c log p_c``
    with ``p = softmax(z)`` and ``Σ_c y_c = 1``), computed with the max subtracted
    so ``exp`` never overflows.

    Backward: ``dL/dz = p − y`` per sample; divided by ``N`` for ``mean``.
    """

    def __call__(self, logits: Array, y: Array) -> tuple[float, Array]:
        check_batch("CrossEntropy", logits, y)
        n, c = logits.shape[0], logits.shape[-1]
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropy expected logits (N, C), got {logits.shape}")
        xp = backend.xp()
        log_p = ops.log_softmax(logits, axis=1)
        p = xp.exp(log_p)
        if y.ndim == 1:
            labels = integer_labels("CrossEntropy", y, c)
            rows = xp.arange(n)
            total = -float(log_p[rows, labels].sum())
            grad = p
            grad[rows, labels] -= 1
        elif y.shape == logits.shape:
            target = float_targets("CrossEntropy", y, logits.dtype, low=0.0)
            total = -float((target * log_p).sum())
            grad = p - target
        else:
            raise ValueError(
                f"CrossEntropy expected targets of shape ({n},) or ({n}, {c}), "
                f"got {tuple(y.shape)}"
            )
        denom = 1 if self.reduction == "sum" else n
        if denom != 1:
            grad /= denom
        return total / denom, grad

    def check_targets(self, y: Array, output_shape: tuple[int, ...]) -> None:
        if len(output_shape) != 1:
            raise ValueError(
                f"CrossEntropy needs model outputs of shape (N, C), got (N, "
                f"{', '.join(map(str, output_shape))})"
            )
        c = output_shape[0]
        if y.ndim == 1:
            integer_labels("CrossEntropy", y, c)
        elif y.ndim != 2 or y.shape[1] != c:
            raise ValueError(
                f"CrossEntropy expected targets of shape (N,) or (N, {c}), "
                f"got {tuple(y.shape)}"
            )
        else:
            float_targets("CrossEntropy", y, "float32", low=0.0)

    def activation(self, logits: Array) -> Array:
        """Softmax over classes: the predicted probabilities."""
        return ops.softmax(logits, axis=-1)


__all__ = ["CrossEntropy"]

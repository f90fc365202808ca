"""Softmax cross-entropy, fused: the gradient is exactly ``(softmax(z) − y) / N``."""

from __future__ import annotations

from typing import Any

from chainrule import backend, ops, validate
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

    ``label_smoothing = ε`` trains against ``(1 − ε)·y + ε/C`` instead of ``y``
    (Szegedy et al. 2016; the same as PyTorch's ``label_smoothing``).
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.label_smoothing = validate.real(
            "CrossEntropy", "label_smoothing", label_smoothing, low=0.0
        )
        if self.label_smoothing >= 1:
            raise ValueError(
                f"CrossEntropy: invalid label_smoothing {self.label_smoothing!r} "
                "(must be < 1)"
            )

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
            eps = self.label_smoothing
            total = -(1 - eps) * float(log_p[rows, labels].sum())
            grad = p
            grad[rows, labels] -= 1 - eps
            if eps:
                total -= eps / c * float(log_p.sum())
                grad -= logits.dtype.type(eps / c)
        elif y.shape == logits.shape:
            target = float_targets("CrossEntropy", y, logits.dtype, low=0.0)
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + self.label_smoothing / c
                target = target.astype(logits.dtype, copy=False)
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

    def describe(self, z: str, a: str) -> tuple[list[str], str]:
        over = "" if self.reduction == "sum" else " / N"
        target = "y"
        if self.label_smoothing:  # the smoothed targets replace y
            target = "y′"
        lines = [f"{a} = softmax({z})", f"C = −Σ {target} log {a}{over}"]
        if self.label_smoothing:
            lines.append(
                f"y′ = {1 - self.label_smoothing:g}·y + {self.label_smoothing:g}/K"
                "  (K classes)"
            )
        return lines, f"({a} − {target}){over}"

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction, "label_smoothing": self.label_smoothing}

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

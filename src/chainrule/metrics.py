"""Classification metrics on NumPy arrays: accuracy, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.types import Array


def predicted_classes(outputs: Array) -> np.ndarray[Any, Any]:
    """Class indices from raw outputs (logits) or probabilities.

    ``(N, C)`` with ``C > 1``: the argmax. ``(N, 1)``: a single yes/no output,
    class 1 where the logit is positive (probability above 0.5 for ``σ``).
    """
    if outputs.ndim != 2:
        raise ValueError(f"expected outputs of shape (N, C), got {outputs.shape}")
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0).astype(np.int64)
    return np.asarray(outputs.argmax(axis=1))


def true_classes(y: Array) -> np.ndarray[Any, Any]:
    """Class indices from ``(N,)`` labels, or from ``(N, C)`` one-hot/probabilities."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(np.int64, copy=False)
    if y.ndim == 2 and y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.int64)
    if y.ndim == 2:
        return np.asarray(y.argmax(axis=1))
    raise ValueError(f"expected targets of shape (N,) or (N, C), got {y.shape}")


def confusion_matrix(
    y_true: Array, y_pred: Array, num_classes: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """``M[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(
            f"expected two (N,) label arrays of equal length, got {t.shape}, {p.shape}"
        )
    for name, a in (("true", t), ("predicted", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(
                f"{name} labels must lie in [0, {num_classes - 1}], "
                f"got {a.min()}..{a.max()}"
            )
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def per_class_accuracy(matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Recall of each class from a confusion matrix (NaN for an absent class)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


__all__ = [
    "confusion_matrix",
    "per_class_accuracy",
    "predicted_classes",
    "true_classes",
]

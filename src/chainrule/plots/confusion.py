"""The confusion matrix as an image: counts in the cells, colour by row."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.metrics import confusion_matrix, predicted_classes, true_classes
from chainrule.plots._figure import check_path, new_figure, require_matplotlib, save

#: ``(width, height)`` in pixels of :func:`plot_confusion`'s image
CONFUSION_SIZE = (850, 750)
#: above this many classes the cells are too small for their counts
MAX_ANNOTATED_CLASSES = 20


def plot_confusion(
    y_true: object,
    y_pred: object,
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Plot ``M[i, j]``, the number of class-``i`` samples predicted as ``j``.

    ``y_true`` holds labels ``(N,)`` or one-hot rows ``(N, C)``; ``y_pred``
    labels ``(N,)`` or a model's outputs ``(N, C)`` (logits or probabilities,
    their argmax is taken). Each cell shows its count; its colour is the
    fraction of the true class (the row) it holds, on a square-root scale so
    that a 1% confusion is visibly tinted next to a 98% diagonal. The number of
    classes is ``len(class_names)`` if given, else the larger of the outputs'
    width and the largest label + 1. Returns the path written.
    """
    target = check_path(path, "plot_confusion")
    t, p, num_classes = _labels(y_true, y_pred, class_names)
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    matrix = confusion_matrix(t, p, num_classes)
    totals = matrix.sum(axis=1, keepdims=True)
    fractions = matrix / np.maximum(totals, 1)

    colors = require_matplotlib().colors
    fig = new_figure(*CONFUSION_SIZE)
    ax = fig.subplots()
    image = ax.imshow(
        fractions, cmap="Blues", norm=colors.PowerNorm(0.5, vmin=0.0, vmax=1.0)
    )
    colorbar = fig.colorbar(image, ax=ax, shrink=0.85)
    colorbar.set_label("fraction of the true class (row)")
    if num_classes <= MAX_ANNOTATED_CLASSES:
        _annotate(ax, matrix, fractions, fontsize=min(16, max(7, 100 // num_classes)))
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(matrix) / max(len(t), 1)
    ax.set_title(
        title
        or f"confusion matrix: {100 * accuracy:.2f}% of {len(t):,} images correct",
        fontsize=13,
    )
    return save(fig, target)


def _labels(
    y_true: object, y_pred: object, class_names: Sequence[str] | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], int]:
    """True and predicted class indices, and the number of classes."""
    true_arr, pred_arr = np.asarray(y_true), np.asarray(y_pred)
    if pred_arr.ndim not in (1, 2):
        raise ValueError(
            "plot_confusion: y_pred must be labels (N,) or outputs (N, C), "
            f"got shape {pred_arr.shape}"
        )
    t = true_classes(true_arr)
    p = predicted_classes(pred_arr) if pred_arr.ndim == 2 else pred_arr.astype(int)
    if len(t) != len(p):
        raise ValueError(
            f"plot_confusion: y_true has {len(t)} samples, y_pred {len(p)}; "
            "they must match"
        )
    if len(t) == 0:
        raise ValueError("plot_confusion: no samples (y_true is empty)")
    widths = [a.shape[1] for a in (true_arr, pred_arr) if a.ndim == 2]
    num_classes = max([int(t.max()) + 1, int(p.max()) + 1, *widths])
    if class_names is not None:
        if len(class_names) < num_classes:
            raise ValueError(
                f"plot_confusion: {len(class_names)} class names for labels up to "
                f"{num_classes - 1}; expected at least {num_classes}"
            )
        num_classes = len(class_names)
    return t, p, num_classes


def _annotate(
    ax: Any, matrix: np.ndarray[Any, Any], fractions: Any, fontsize: int
) -> None:
    """Write each count in its cell, white on dark cells, grey for zeros."""
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if fractions[i, j] > 0.35 else "black"
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=fontsize,
            color=color if count else "0.7",
        )


__all__ = ["CONFUSION_SIZE", "plot_confusion"]

"""A grid of the images a model got wrong, its most confident mistakes first."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.metrics import predicted_classes, true_classes
from chainrule.plots._figure import check_path, new_figure, save

NDArray = np.ndarray[Any, Any]

#: images per row of the grid
COLUMNS = 6
#: pixels of one grid cell (image and its caption), and of the title band
CELL_PX, TITLE_PX = 200, 75


def misclassified_size(max_images: int = 36) -> tuple[int, int]:
    """``(width, height)`` in pixels of :func:`plot_misclassified`'s image.

    The grid has room for ``max_images`` however many mistakes there are, so
    the size depends on ``max_images`` alone: ``(1200, 1275)`` for 36.
    """
    rows = math.ceil(max_images / COLUMNS)
    return COLUMNS * CELL_PX, TITLE_PX + rows * CELL_PX


def plot_misclassified(
    x: object,
    y_true: object,
    y_prob: object,
    path: str | os.PathLike[str],
    max_images: int = 36,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Show up to ``max_images`` misclassified images, captioned with the labels.

    ``x`` holds the images: ``(N, H, W)``, ``(N, 1, H, W)`` or flat ``(N, H·H)``
    rows of square images. ``y_true`` holds labels ``(N,)`` or one-hot rows;
    ``y_prob`` the model's outputs ``(N, C)``, ideally
    :meth:`Sequential.predict`'s probabilities. Each caption reads
    ``true 7 → pred 1 (93%)``: the confidence is the probability given to the
    predicted class, rounded down (left out when ``y_prob`` is not in [0, 1],
    e.g. logits). The order is :func:`rank_mistakes`'s, most confident first.
    With no mistake the image says so instead. Returns the path written.
    """
    target = check_path(path, "plot_misclassified")
    if isinstance(max_images, bool) or not isinstance(max_images, int):
        raise TypeError(
            f"plot_misclassified: max_images must be an int, got {max_images!r}"
        )
    if max_images < 1:
        raise ValueError(
            f"plot_misclassified: max_images must be >= 1, got {max_images}"
        )
    images = as_images(x, "plot_misclassified")
    wrong, truth, pred, confidence = rank_mistakes(y_true, y_prob)
    if len(images) != len(truth):
        raise ValueError(
            f"plot_misclassified: x has {len(images)} images, y_true {len(truth)} "
            "labels; they must match"
        )
    classes = max(np.asarray(y_prob).shape[1], int(truth.max(initial=0)) + 1, 2)
    if class_names is not None and len(class_names) < classes:
        raise ValueError(
            f"plot_misclassified: {len(class_names)} class names for "
            f"{classes} classes; expected at least {classes}"
        )
    shown = wrong[:max_images]
    prob = np.asarray(y_prob)
    is_probability = bool(np.all((prob >= 0) & (prob <= 1)))

    fig = new_figure(*misclassified_size(max_images))
    if len(shown) == 0:
        fig.text(
            0.5,
            0.5,
            f"no misclassified images: all {len(truth):,} correct",
            ha="center",
            va="center",
            fontsize=16,
        )
        return save(fig, target)

    def name(c: int) -> str:
        return class_names[c] if class_names is not None else str(c)

    rows = math.ceil(max_images / COLUMNS)
    axes = fig.subplots(rows, COLUMNS, squeeze=False).ravel()
    low, high = float(images[shown].min()), float(images[shown].max())
    for ax, i in zip(axes, shown, strict=False):
        if images.ndim == 4:  # colour: as photographed, scaled to [0, 1]
            span = high - low if high > low else 1.0
            ax.imshow(np.clip((images[i] - low) / span, 0.0, 1.0))
        else:
            ax.imshow(images[i], cmap="gray_r", vmin=low, vmax=high)
        caption = f"true {name(truth[i])} → pred {name(pred[i])}"
        if is_probability:
            # rounded down: "100%" only when the model is exactly sure
            caption += f" ({math.floor(100 * confidence[i])}%)"
        ax.set_title(caption, fontsize=11)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(
        f"{len(shown)} of {len(wrong):,} misclassified images "
        f"({len(truth):,} in all), most confident first",
        fontsize=14,
    )
    return save(fig, target)


def rank_mistakes(
    y_true: object, y_prob: object
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """The misclassified samples, most confident mistake first.

    Returns ``(wrong, truth, pred, confidence)``: the indices of the samples
    whose predicted class (argmax of ``y_prob`` ``(N, C)``; for a single
    sigmoid output ``(N, 1)``, class 1 above 0.5) differs from the true one,
    ordered by the score of the predicted class, highest first (ties in index
    order); and for every sample its true class, predicted class and that
    score. The confident mistakes are the instructive ones: often badly
    written or mislabelled digits.
    """
    truth = true_classes(np.asarray(y_true))
    prob = np.asarray(y_prob, dtype=np.float64)
    if prob.ndim != 2 or len(prob) != len(truth):
        raise ValueError(
            "plot_misclassified: expected y_true (N,) and y_prob (N, C) for the "
            f"same N, got shapes {np.asarray(y_true).shape} and {prob.shape}"
        )
    if prob.shape[1] == 1:  # one sigmoid output: P(class 1)
        prob = np.concatenate([1 - prob, prob], axis=1)
    pred = predicted_classes(prob)
    confidence = prob[np.arange(len(prob)), pred]
    wrong = np.flatnonzero(pred != truth)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    return wrong, truth, pred, confidence


def as_images(x: object, what: str) -> np.ndarray[Any, Any]:
    """``x`` as ``(N, H, W)`` grey images, from ``(N, H, W)``, ``(N, 1, H, W)``
    or square flat rows ``(N, H·H)``; or as ``(N, H, W, 3)`` colour images,
    from ``(N, 3, H, W)``."""
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        return arr[:, 0]  # (N, 1, H, W) -> (N, H, W)
    if arr.ndim == 4 and arr.shape[1] == 3:
        return np.moveaxis(arr, 1, -1)  # (N, 3, H, W) -> (N, H, W, 3)
    if arr.ndim == 2 and math.isqrt(arr.shape[1]) ** 2 == arr.shape[1]:
        side = math.isqrt(arr.shape[1])
        return arr.reshape(len(arr), side, side)  # (N, H·H) -> (N, H, H)
    if arr.ndim == 3:
        return arr
    raise ValueError(
        f"{what}: expected grey images (N, H, W), (N, 1, H, W) or square flat "
        f"rows (N, H·H), or colour images (N, 3, H, W), got shape {arr.shape}"
    )


__all__ = ["as_images", "misclassified_size", "plot_misclassified", "rank_mistakes"]

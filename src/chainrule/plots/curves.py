"""Training curves: loss and accuracy per epoch, training beside validation."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chainrule.model.history import History
from chainrule.plots._figure import check_path, new_figure, require_matplotlib, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: ``(width, height)`` in pixels of :func:`plot_history`'s image
CURVES_SIZE = (1200, 500)


def plot_history(
    history: History | Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Plot loss (left) and accuracy (right) per epoch; returns the path written.

    ``history`` is what :meth:`Sequential.fit` returns, or its ``.history``
    dict (as a checkpoint's training state stores it). Training values are solid
    lines, validation values (``val_loss``, ``val_accuracy``) dashed; the best
    validation epoch is marked. Without any accuracy (an ``MSE`` model) the
    right panel says so. Training loss and accuracy are averages over each
    epoch's batches while the weights changed, so early epochs can sit below
    validation.
    """
    target = check_path(path, "plot_history")
    values = history.history if isinstance(history, History) else dict(history)
    loss = list(values.get("loss", []))
    if not loss:
        keys = ", ".join(sorted(values)) or "none"
        raise ValueError(
            f"plot_history: the history has no 'loss' values to plot (keys: {keys}); "
            "train for at least one epoch"
        )
    epochs = (
        list(history.epoch)
        if isinstance(history, History) and len(history.epoch) == len(loss)
        else list(range(1, len(loss) + 1))
    )
    fig = new_figure(*CURVES_SIZE)
    loss_ax, acc_ax = fig.subplots(1, 2)
    _panel(loss_ax, epochs, values, "loss", "loss", best=min, scale=1.0)
    if values.get("accuracy") or values.get("val_accuracy"):
        _panel(acc_ax, epochs, values, "accuracy", "accuracy (%)", best=max, scale=100)
    else:
        acc_ax.set_axis_off()
        acc_ax.text(0.5, 0.5, "no accuracy recorded", ha="center", va="center")
    fig.suptitle(title or f"training curves ({len(loss)} epochs)", fontsize=14)
    return save(fig, target)


def _panel(
    ax: Axes,
    epochs: list[int],
    values: Mapping[str, Sequence[float]],
    key: str,
    label: str,
    best: Callable[[list[float]], float],
    scale: float,
) -> None:
    """One metric: training solid, validation dashed, best validation marked."""
    for name, style, colour in ((key, "-", "C0"), (f"val_{key}", "--", "C1")):
        series = [scale * v for v in values.get(name, [])]
        if not series:
            continue
        shown = "validation" if name.startswith("val_") else "training"
        ax.plot(
            epochs[: len(series)],
            series,
            style,
            color=colour,
            marker="o",
            markersize=4,
            label=f"{shown} (last {series[-1]:.4g})",
        )
        if name.startswith("val_") and all(math.isfinite(v) for v in series):
            value = best(series)
            epoch = epochs[series.index(value)]
            ax.plot(
                [epoch],
                [value],
                "*",
                color=colour,
                markersize=14,
                label=f"best validation {value:.4g} (epoch {epoch})",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.set_title(label)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(require_matplotlib().ticker.MaxNLocator(integer=True))
    ax.legend()


__all__ = ["CURVES_SIZE", "plot_history"]

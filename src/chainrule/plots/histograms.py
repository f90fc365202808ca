"""Per-layer histograms of weights, activations and gradients for one batch.

The usual first look at a network's health: weights that stay at their
initial spread, activations piled at a sigmoid's 0 and 1 or a ReLU's 0, and
gradients that shrink from the last layer to the first (vanishing) or grow
(exploding) all show at a glance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.diagnostics import LayerProbe, probe
from chainrule.layers import Layer, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from chainrule.model.sequential import Sequential
from chainrule.plots._figure import check_path, new_figure, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: pixels: the image's width, one row's height, and the title band's height
WIDTH_PX, ROW_PX, TITLE_PX = 1200, 200, 75
BINS = 60
ACTIVATIONS = (ReLU, LeakyReLU, Sigmoid, Tanh, Softmax)
#: a colour per column: weights, activations, gradients
COLOURS = ("C0", "C2", "C3")


def histogram_rows(model: Sequential) -> int:
    """How many rows :func:`plot_histograms` draws: one per layer with
    parameters and per activation layer."""
    return sum(1 for layer in model.layers if _shown(layer))


def histogram_size(rows: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of :func:`plot_histograms`'s image for
    ``rows`` rows (:func:`histogram_rows`): ``(1200, 75 + 200 · rows)``."""
    return WIDTH_PX, TITLE_PX + ROW_PX * rows


def plot_histograms(
    model: Sequential,
    x: object,
    y: object | None,
    path: str | os.PathLike[str],
) -> Path:
    """Histogram each layer's weights, activations and gradients on batch ``x``.

    One row per layer that has parameters (``Dense``, ``Conv2D``, ``BatchNorm``)
    and per activation layer (``ReLU``, ``Sigmoid``, ...), in model order:

    - weights: the layer's ``W`` (``BatchNorm``: ``gamma``); empty for an
      activation layer;
    - activations: the layer's output on ``x`` (for a weight layer that is the
      pre-activation ``z``);
    - gradients: ``dC/dW`` for a weight layer, ``dC/d output`` for an
      activation layer, from this batch with targets ``y``.

    The batch runs as a training step does (dropout on, batch statistics),
    through :func:`chainrule.diagnostics.probe`, which leaves the model
    unchanged. Without targets (``y=None``) it runs in inference mode and the
    gradient column stays empty. A few hundred images are plenty. Returns the
    path written.
    """
    target = check_path(path, "plot_histograms")
    if not isinstance(model, Sequential):
        raise TypeError(
            f"plot_histograms: expected a Sequential model, got {type(model).__name__}"
        )
    result = probe(model, x, y, training=y is not None)
    shown = [lp for lp in result if _shown(lp.layer)]
    if not shown:
        names = ", ".join(type(layer).__name__ for layer in model.layers)
        raise ValueError(
            "plot_histograms: expected a layer with parameters or an activation, "
            f"the model has {names or 'no layers'}"
        )
    fig = new_figure(*histogram_size(len(shown)))
    loss = "no targets" if result.loss is None else f"loss {result.loss:.4g}"
    fig.suptitle(
        "weights, activations and gradients, layer by layer "
        f"({len(result.logits)} samples, {loss})",
        fontsize=14,
    )
    rows = fig.subfigures(len(shown), 1, squeeze=False)[:, 0]
    for row, lp in zip(rows, shown, strict=True):
        row.suptitle(lp.name, x=0.01, ha="left", fontsize=11, fontweight="bold")
        axes = row.subplots(1, 3)
        for ax, (label, values), colour in zip(axes, _cells(lp), COLOURS, strict=True):
            _histogram(ax, label, values, colour)
    return save(fig, target)


def _shown(layer: Layer) -> bool:
    return isinstance(layer, ACTIVATIONS) or bool(layer.named_parameters())


def _cells(lp: LayerProbe) -> list[tuple[str, np.ndarray[Any, Any] | None]]:
    """``(title, values)`` of the weights, activations and gradients cells."""
    output = (f"output {_shape(lp.output)}", lp.output)
    if not lp.params:
        return [
            ("no parameters", None),
            output,
            ("dC/d output", lp.grad_output),
        ]
    name = "W" if "W" in lp.params else next(iter(lp.params))
    return [
        (f"{name} {_shape(lp.params[name])}", lp.params[name]),
        output,
        (f"dC/d{name}", lp.grads.get(name)),
    ]


def _shape(a: np.ndarray[Any, Any]) -> str:
    return "×".join(map(str, a.shape))


def _histogram(
    ax: Axes, label: str, values: np.ndarray[Any, Any] | None, colour: str
) -> None:
    """One cell: the histogram, with its statistics in the title (never over bars)."""
    ax.tick_params(labelsize=8)
    if values is None:
        ax.set_axis_off()
        ax.set_title(label, fontsize=9)
        if not label.startswith("no "):
            ax.text(0.5, 0.5, "no targets: no gradients", ha="center", va="center")
        return
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    ax.set_yticks([])
    if finite.size == 0:
        ax.set_title(label, fontsize=9)
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center")
        return
    ax.hist(finite, bins=BINS, color=colour)
    stats = [f"mean {finite.mean():.3g}", f"std {finite.std():.3g}"]
    zeros = np.count_nonzero(finite == 0) / finite.size
    if zeros >= 0.01:
        stats.append(f"zeros {100 * zeros:.0f}%")
    if finite.size < flat.size:
        stats.append(f"{flat.size - finite.size} non-finite")
    ax.set_title(f"{label}:  {', '.join(stats)}", fontsize=9)


__all__ = ["histogram_rows", "histogram_size", "plot_histograms"]

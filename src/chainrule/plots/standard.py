"""The standard set of plots of a trained model, written into one directory.

``chainrule train --plots DIR`` and ``chainrule evaluate FILE --plots DIR``
call these. The file names are fixed (:data:`PLOT_FILES`, with the chosen
suffix), so a directory of plots from one run compares with another's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from chainrule import backend
from chainrule.metrics import predicted_classes
from chainrule.model.history import History
from chainrule.model.sequential import Sequential
from chainrule.plots._figure import FORMATS
from chainrule.plots.confusion import plot_confusion
from chainrule.plots.curves import plot_history
from chainrule.plots.histograms import plot_histograms
from chainrule.plots.misclassified import plot_misclassified
from chainrule.plots.weights import first_layer_images, plot_first_layer

#: the file names (without suffix) in the directory, in the order written
PLOT_FILES = ("curves", "confusion", "misclassified", "first_layer", "histograms")
#: images of ``x`` the histograms are computed on (the first ones)
HISTOGRAM_SAMPLES = 256


def write_evaluation_plots(
    model: Sequential,
    x: object,
    y: object,
    directory: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    image_format: str = "png",
) -> list[Path]:
    """Write the plots of a model on a labelled set ``(x, y)``; returns the paths.

    ``confusion``, ``misclassified``, ``first_layer`` (left out when the
    model's first weight layer is neither a ``Dense`` on the pixels nor a
    ``Conv2D``: see :func:`first_layer_images`) and ``histograms`` (on the
    first :data:`HISTOGRAM_SAMPLES` images), as ``DIR/NAME.png`` or ``.svg``.
    The directory is created if missing.
    """
    out = _directory(directory, image_format)
    written = []
    x_arr, y_arr = np.asarray(x), np.asarray(y)
    logits = model.predict_logits(x_arr)
    probabilities = (
        logits
        if model.loss is None
        else backend.to_numpy(model.loss.activation(backend.xp().asarray(logits)))
    )
    written.append(
        plot_confusion(
            y_arr,
            predicted_classes(logits),
            out / f"confusion.{image_format}",
            class_names=class_names,
        )
    )
    written.append(
        plot_misclassified(
            x_arr,
            y_arr,
            probabilities,
            out / f"misclassified.{image_format}",
            class_names=class_names,
        )
    )
    try:
        first_layer_images(model)
    except ValueError:
        pass  # no image-shaped first layer: nothing to draw
    else:
        written.append(plot_first_layer(model, out / f"first_layer.{image_format}"))
    written.append(
        plot_histograms(
            model,
            x_arr[:HISTOGRAM_SAMPLES],
            y_arr[:HISTOGRAM_SAMPLES] if model.loss is not None else None,
            out / f"histograms.{image_format}",
        )
    )
    return written


def write_training_plots(
    model: Sequential,
    history: History | Mapping[str, Sequence[float]],
    x: object,
    y: object,
    directory: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    image_format: str = "png",
) -> list[Path]:
    """``curves`` from ``history``, then :func:`write_evaluation_plots`."""
    out = _directory(directory, image_format)
    curves = plot_history(history, out / f"curves.{image_format}")
    return [
        curves,
        *write_evaluation_plots(model, x, y, out, class_names, image_format),
    ]


def _directory(directory: str | os.PathLike[str], image_format: str) -> Path:
    if f".{image_format}" not in FORMATS:
        raise ValueError(f"image_format must be 'png' or 'svg', got {image_format!r}")
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ValueError(f"plots directory {directory} is a file; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


__all__ = [
    "HISTOGRAM_SAMPLES",
    "PLOT_FILES",
    "write_evaluation_plots",
    "write_training_plots",
]

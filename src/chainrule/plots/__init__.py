"""Plots of training and of trained models (the ``chainrule[plot]`` extra).

Importing this package needs only NumPy; matplotlib is imported when a plot is
drawn, and its absence raises :class:`MissingMatplotlibError` saying how to
install it. Every function writes a PNG or SVG (chosen by the file name's
suffix) atomically and returns its path. See ``docs/plots.md``.
"""

from chainrule.plots._figure import (
    DPI,
    MissingMatplotlibError,
    require_matplotlib,
)
from chainrule.plots.confusion import CONFUSION_SIZE, plot_confusion
from chainrule.plots.curves import CURVES_SIZE, plot_history
from chainrule.plots.histograms import histogram_rows, histogram_size, plot_histograms
from chainrule.plots.misclassified import (
    misclassified_size,
    plot_misclassified,
    rank_mistakes,
)
from chainrule.plots.standard import (
    HISTOGRAM_SAMPLES,
    PLOT_FILES,
    write_evaluation_plots,
    write_training_plots,
)
from chainrule.plots.weights import WEIGHTS_SIZE, first_layer_images, plot_first_layer

__all__ = [
    "CONFUSION_SIZE",
    "CURVES_SIZE",
    "DPI",
    "HISTOGRAM_SAMPLES",
    "PLOT_FILES",
    "WEIGHTS_SIZE",
    "MissingMatplotlibError",
    "first_layer_images",
    "histogram_rows",
    "histogram_size",
    "misclassified_size",
    "plot_confusion",
    "plot_first_layer",
    "plot_histograms",
    "plot_history",
    "plot_misclassified",
    "rank_mistakes",
    "require_matplotlib",
    "write_evaluation_plots",
    "write_training_plots",
]

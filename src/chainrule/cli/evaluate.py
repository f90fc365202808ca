"""``chainrule evaluate``: loss, accuracy, per-class accuracy and confusion matrix."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.cli.common import (
    add_data_dir,
    add_plots,
    positive_int,
    prepare_plots_dir,
    print_plots,
)
from chainrule.cli.datasets import load_evaluation_data
from chainrule.cli.predict import class_names
from chainrule.cli.train import HEALTH_SAMPLES
from chainrule.diagnostics import check_health
from chainrule.io import load_model, read_header
from chainrule.metrics import confusion_matrix, per_class_accuracy, predicted_classes
from chainrule.model import Sequential


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="evaluate a saved model on its dataset's test set",
        description="Load a model file and report loss, accuracy, per-class accuracy "
        "and the confusion matrix on the test images of the dataset it was "
        "trained on (MNIST, Fashion-MNIST, or a folder's test/ images), with "
        "its class names.",
    )
    parser.add_argument("model", metavar="FILE", help="a model file saved by chainrule")
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help="mnist, fashion-mnist or folder:PATH (default: the one the model "
        "file names; a folder model needs its PATH)",
    )
    add_data_dir(parser)
    parser.add_argument("--batch-size", type=positive_int, default=1000)
    add_plots(
        parser,
        "the confusion matrix, misclassified images, first-layer weights, "
        "per-layer histograms and, for a checkpoint, its training curves",
    )
    parser.add_argument(
        "--health",
        action="store_true",
        help=f"also print the training-health table on {HEALTH_SAMPLES} test images "
        "(weight and gradient norms, dead ReLUs, saturated units, NaN/Inf)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    header = read_header(args.model)
    if model.loss is None:
        raise ValueError(
            f"{args.model} has no loss recorded, so it cannot be evaluated"
        )
    metadata = header.get("metadata") or {}
    names = class_names(model, header)
    plots_dir = prepare_plots_dir(args.plots) if args.plots else None
    x_test, y_test, what = load_evaluation_data(args.dataset, metadata, args.data_dir)
    if int(np.max(y_test)) >= len(names):
        raise ValueError(
            f"the labels reach {int(np.max(y_test))} but the model has "
            f"{len(names)} classes: is --dataset the one it was trained on?"
        )
    scores = model.evaluate(x_test, y_test, batch_size=args.batch_size)
    logits = model.predict_logits(x_test, batch_size=args.batch_size)
    matrix = confusion_matrix(y_test, predicted_classes(logits), len(names))
    print(f"model: {args.model} ({model.count_params():,} parameters)")
    print(f"evaluated on: {what} ({len(x_test)})")
    print(f"loss: {scores['loss']:.4f}")
    print(f"accuracy: {100 * scores['accuracy']:.2f}%")
    print("per-class accuracy:")
    label = max(5, *(len(n) for n in names))
    for name, acc, total in zip(
        names, per_class_accuracy(matrix), matrix.sum(axis=1), strict=True
    ):
        print(f"  {name:>{label}}: {100 * acc:6.2f}%  ({total} images)")
    # named classes label the rows "3 Dress" and the columns by number
    numbered = any(not n.isdigit() for n in names)
    heads = [str(i) for i in range(len(names))] if numbered else names
    tags = [f"{n} {i}" for i, n in enumerate(names)] if numbered else names
    label = max(5, *(len(t) for t in tags))
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(5, len(str(int(matrix.max()))) + 1)
    print(" " * (label + 2) + "".join(f"{n:>{width}}" for n in heads))
    for tag, row in zip(tags, matrix, strict=True):
        cells = "".join(f"{int(v):>{width}}" for v in np.asarray(row))
        print(f"  {tag:>{label}}" + cells)
    if args.health:
        print(f"training health on the first {HEALTH_SAMPLES} of those images:")
        report = check_health(model, x_test[:HEALTH_SAMPLES], y_test[:HEALTH_SAMPLES])
        print(report.format())
    if plots_dir is not None:
        _write_plots(model, x_test, y_test, plots_dir, names)
    return 0


def _write_plots(
    model: Sequential, x: Any, y: Any, directory: Path, names: list[str]
) -> None:
    """The evaluation plots, and the training curves if the file is a checkpoint."""
    from chainrule.plots import write_evaluation_plots, write_training_plots

    # only checkpoints keep the history (model files from train do not)
    state = model.training_state
    if state is not None and state.history.get("loss"):
        paths = write_training_plots(model, state.history, x, y, directory, names)
    else:
        paths = write_evaluation_plots(model, x, y, directory, names)
    print_plots(directory, paths)

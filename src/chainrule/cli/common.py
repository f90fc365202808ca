"""Argument types and options shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from chainrule.data import load_mnist
from chainrule.data.mnist import ENV_VAR
from chainrule.model import Sequential
from chainrule.presets import PRESETS


def _number(text: str, convert: type, low: float, strict: bool, what: str) -> Any:
    try:
        value = convert(text)
    except ValueError:
        value = None
    if (
        value is None
        or not math.isfinite(value)
        or value < low
        or (strict and value == low)
    ):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return int(_number(text, int, 0, True, "a positive integer"))


def non_negative_int(text: str) -> int:
    return int(_number(text, int, 0, False, "an integer >= 0"))


def positive_float(text: str) -> float:
    return float(_number(text, float, 0, True, "a positive number"))


def non_negative_float(text: str) -> float:
    return float(_number(text, float, 0, False, "a number >= 0"))


def check_output_path(path: str) -> str:
    """Fail before any work if ``path`` cannot be written as a file."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"--out {path} is a directory; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--out {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {path}: directory {parent} is not writable")
    return path


def prepare_plots_dir(path: str) -> Path:
    """Fail before any work if plots cannot be drawn or written into ``path``.

    Imports :mod:`chainrule.plots` only now, so the command line runs without
    matplotlib unless ``--plots`` is given; creates the directory.
    """
    from chainrule.plots import require_matplotlib

    require_matplotlib()
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"--plots {path} is a file; give a directory")
    target.mkdir(parents=True, exist_ok=True)
    if not os.access(target, os.W_OK):
        raise ValueError(f"--plots {path}: directory is not writable")
    return target


def add_plots(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--plots",
        metavar="DIR",
        help=f"write {what} as PNG images into DIR (created if missing; needs "
        "matplotlib: pip install 'chainrule[plot]'); see docs/plots.md",
    )


def print_plots(directory: Path, paths: list[Path]) -> None:
    names = ", ".join(p.name for p in paths)
    print(f"wrote {len(paths)} plots to {directory}: {names}")


def add_preset(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=default,
        help=f"model and recipe (default: {default})"
        if default
        else "model and recipe",
        required=default is None,
    )


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory holding the MNIST or Fashion-MNIST files (or a mnist/ "
        "or fashion-mnist/ folder with them); default: $CHAINRULE_DATA, then "
        "/usr/share/datasets/fashion-mnist for Fashion-MNIST, then "
        "~/.cache/chainrule, then download (not used by --dataset folder:PATH)",
    )


def add_check_options(
    parser: argparse.ArgumentParser, batch_size: int, seed_help: str | None = None
) -> None:
    """``--batch-size``, ``--seed`` and ``--tolerance``, for commands that check
    the gradients of one batch (``trace``, ``gradcheck``)."""
    parser.add_argument("--batch-size", type=positive_int, default=batch_size)
    parser.add_argument("--seed", type=non_negative_int, default=0, help=seed_help)
    parser.add_argument(
        "--tolerance",
        type=positive_float,
        default=1e-6,
        help="largest relative error that passes (default 1e-6)",
    )


class CheckBatch(NamedTuple):
    """The one batch ``trace`` and ``gradcheck`` run: images, labels, and whence."""

    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    #: MNIST test images (``False``: random ones)
    mnist: bool


def pick_batch(
    data_dir: str | None,
    batch_size: int,
    model: Sequential,
    rng: np.random.Generator,
    *,
    shuffle: bool,
) -> CheckBatch:
    """The batch ``trace`` and ``gradcheck`` run: MNIST test images or random ones.

    MNIST when ``--data-dir`` (``data_dir``) or ``$CHAINRULE_DATA`` is given,
    found by :func:`load_mnist`'s usual lookup (the directory first, then the
    variable): ``batch_size`` test images, picked at random with ``rng`` if
    ``shuffle``, else the first ones. Otherwise random uint8 images of the
    model's input shape, with random labels of its classes.
    """
    if data_dir or os.environ.get(ENV_VAR):
        _, (x_test, y_test) = load_mnist(data_dir)
        if shuffle:
            pick = rng.choice(len(x_test), size=batch_size, replace=False)
            return CheckBatch(x_test[pick], y_test[pick], mnist=True)
        return CheckBatch(x_test[:batch_size], y_test[:batch_size], mnist=True)
    input_shape = model.input_shape or ()
    x = rng.integers(0, 256, size=(batch_size, *input_shape), dtype=np.uint8)
    classes = (model.output_shape or (10,))[-1]
    y = rng.integers(0, max(classes, 2), size=batch_size)
    return CheckBatch(x, y, mnist=False)


__all__ = [
    "CheckBatch",
    "add_check_options",
    "add_data_dir",
    "add_plots",
    "add_preset",
    "check_output_path",
    "non_negative_int",
    "pick_batch",
    "positive_float",
    "positive_int",
    "prepare_plots_dir",
    "print_plots",
]

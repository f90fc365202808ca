"""Argument types and options shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

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


__all__ = [
    "add_data_dir",
    "add_plots",
    "add_preset",
    "check_output_path",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "prepare_plots_dir",
    "print_plots",
]

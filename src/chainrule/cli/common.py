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
        help="directory holding the MNIST files (or a mnist/ folder with them); "
        "default: $CHAINRULE_DATA, then ~/.cache/chainrule, then download",
    )


__all__ = [
    "add_data_dir",
    "add_preset",
    "non_negative_int",
    "positive_float",
    "positive_int",
]

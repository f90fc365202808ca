"""Argument types and options shared by the subcommands."""

from __future__ import annotations

import argparse
import math

from chainrule.presets import PRESETS


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number, got {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


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

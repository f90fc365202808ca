"""``chainrule gradcheck``: every analytic gradient against central differences."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from chainrule.cli.common import (
    add_data_dir,
    add_preset,
    non_negative_int,
    positive_float,
    positive_int,
)
from chainrule.data import load_mnist
from chainrule.gradcheck import gradcheck
from chainrule.presets import get_preset, make_model


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "gradcheck",
        help="check a preset's backpropagation numerically",
        description="Compare each parameter's and the input's analytic gradient with "
        "float64 central differences; exits 1 if any relative error exceeds the "
        "tolerance. Uses random images, or MNIST test images with --data-dir.",
    )
    add_preset(parser, "tutorial")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument(
        "--tolerance",
        type=positive_float,
        default=1e-6,
        help="largest relative error that passes (default 1e-6)",
    )
    add_data_dir(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    model = make_model(preset.name, seed=args.seed)
    if args.data_dir:
        _, (x_test, y_test) = load_mnist(args.data_dir)
        x, y = x_test[: args.batch_size], y_test[: args.batch_size]
        source = "MNIST test images"
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.integers(
            0, 256, size=(args.batch_size, *preset.input_shape), dtype=np.uint8
        )
        y = rng.integers(0, 10, size=args.batch_size)
        source = "random images"
    print(
        f"gradient check of preset {preset.name} on {args.batch_size} {source} "
        f"(seed {args.seed})"
    )
    report = gradcheck(model, x, y, tolerance=args.tolerance, seed=args.seed)
    print(report.format())
    return 0 if report.passed else 1

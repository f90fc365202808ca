"""``chainrule trace``: backpropagation step by step, in the tutorial's notation."""

from __future__ import annotations

import argparse
import os
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
from chainrule.data.mnist import ENV_VAR
from chainrule.diagnostics.trace import trace
from chainrule.io import load_model
from chainrule.presets import get_preset, make_model


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "trace",
        help="print one batch's forward and backward pass, step by step",
        description="Run one small batch through a model and print every forward "
        "step and every step of the backward pass in the tutorial's notation "
        "(z1 = x · W1, a1 = σ(z1), δ3 = (a3 − y) / N, dC/dW3 = a2ᵀ · δ3, ...), "
        "with each tensor's shape and size, then compare each parameter gradient "
        "with central differences (float64). Uses MNIST test images with "
        f"--data-dir or ${ENV_VAR}, random images otherwise. Exits 1 if a "
        "gradient disagrees.",
    )
    add_preset(parser, "tutorial")
    parser.add_argument(
        "--model", metavar="FILE", help="trace a saved model instead of a new preset"
    )
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seeds the preset's weights, the images picked and the check",
    )
    parser.add_argument(
        "--tolerance",
        type=positive_float,
        default=1e-6,
        help="largest relative error that passes (default 1e-6)",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the numerical gradient check"
    )
    add_data_dir(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.model:
        model = load_model(args.model)
        what = args.model
        input_shape = model.input_shape or ()
    else:
        preset = get_preset(args.preset)
        model = make_model(preset.name, seed=args.seed)
        what = f"preset {preset.name}"
        input_shape = preset.input_shape
    rng = np.random.default_rng(args.seed)
    images = "image" if args.batch_size == 1 else "images"
    if args.data_dir or os.environ.get(ENV_VAR):
        _, (x_test, y_test) = load_mnist(args.data_dir)
        pick = rng.choice(len(x_test), size=args.batch_size, replace=False)
        x, y = x_test[pick], y_test[pick]
        source = f"MNIST test {images} (labels {', '.join(map(str, y))})"
    else:
        x = rng.integers(0, 256, size=(args.batch_size, *input_shape), dtype=np.uint8)
        outputs = (model.output_shape or (10,))[-1]
        y = rng.integers(0, max(outputs, 2), size=args.batch_size)
        source = f"random {images} (give --data-dir for MNIST)"
    result = trace(
        model, x, y, check=not args.no_check, tolerance=args.tolerance, seed=args.seed
    )
    print(f"backprop trace of {what} on {args.batch_size} {source}, float64\n")
    print(result.format())
    return 0 if result.passed else 1

"""``chainrule trace``: backpropagation step by step, in the tutorial's notation."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from chainrule.cli.common import add_check_options, add_data_dir, add_preset, pick_batch
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
    add_check_options(
        parser, 4, "seeds the preset's weights, the images picked and the check"
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
    else:
        preset = get_preset(args.preset)
        model = make_model(preset.name, seed=args.seed)
        what = f"preset {preset.name}"
    rng = np.random.default_rng(args.seed)
    images = "image" if args.batch_size == 1 else "images"
    x, y, mnist = pick_batch(args.data_dir, args.batch_size, model, rng, shuffle=True)
    if mnist:
        source = f"MNIST test {images} (labels {', '.join(map(str, y))})"
    else:
        source = f"random {images} (give --data-dir for MNIST)"
    result = trace(
        model, x, y, check=not args.no_check, tolerance=args.tolerance, seed=args.seed
    )
    print(f"backprop trace of {what} on {args.batch_size} {source}, float64\n")
    print(result.format())
    return 0 if result.passed else 1

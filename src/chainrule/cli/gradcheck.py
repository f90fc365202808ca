"""``chainrule gradcheck``: every analytic gradient against central differences."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from chainrule.cli.common import add_check_options, add_data_dir, add_preset, pick_batch
from chainrule.data.mnist import ENV_VAR
from chainrule.gradcheck import gradcheck
from chainrule.presets import get_preset, make_model


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "gradcheck",
        help="check a preset's backpropagation numerically",
        description="Compare each parameter's and the input's analytic gradient with "
        "float64 central differences; exits 1 if any relative error exceeds the "
        "tolerance. Uses MNIST test images with --data-dir or "
        f"${ENV_VAR}, random images otherwise.",
    )
    add_preset(parser, "tutorial")
    add_check_options(parser, 8)
    add_data_dir(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    model = make_model(preset.name, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    x, y, mnist = pick_batch(args.data_dir, args.batch_size, model, rng, shuffle=False)
    source = "MNIST test images" if mnist else "random images"
    print(
        f"gradient check of preset {preset.name} on {args.batch_size} {source} "
        f"(seed {args.seed})"
    )
    report = gradcheck(model, x, y, tolerance=args.tolerance, seed=args.seed)
    print(report.format())
    return 0 if report.passed else 1

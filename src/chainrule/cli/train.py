"""``chainrule train``: train a preset on MNIST, report, save the model."""

from __future__ import annotations

import argparse
import time
from typing import Any

from chainrule.cli.common import (
    add_data_dir,
    add_preset,
    check_output_path,
    non_negative_int,
    positive_float,
    positive_int,
)
from chainrule.data import load_mnist
from chainrule.io import save_model
from chainrule.presets import DEFAULT_PRESET, get_preset, make_model

#: images held out of the 60,000 training images to choose hyperparameters on
VALIDATION_SIZE = 5000


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model on MNIST and save it",
        description="Train a preset on MNIST: prints the model, one progress bar "
        "(or line) per epoch, validation and test accuracy, and saves the model.",
    )
    add_preset(parser, DEFAULT_PRESET)
    parser.add_argument("--epochs", type=positive_int, help="default: the preset's")
    parser.add_argument("--batch-size", type=positive_int, help="default: the preset's")
    parser.add_argument(
        "--lr", type=positive_float, help="learning rate (default: the preset's)"
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seeds initialisation, shuffling and the validation split (default 0)",
    )
    parser.add_argument(
        "--validation-size",
        type=non_negative_int,
        default=VALIDATION_SIZE,
        help=f"training images held out for validation (default {VALIDATION_SIZE})",
    )
    add_data_dir(parser)
    parser.add_argument(
        "--out", metavar="FILE", help="model file (default: PRESET.npz)"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    epochs = args.epochs or preset.epochs
    batch_size = args.batch_size or preset.batch_size
    lr = args.lr or preset.lr
    out = check_output_path(args.out or f"{preset.name}.npz")

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data_dir)
    if args.validation_size >= len(x_train):
        raise ValueError(
            f"--validation-size {args.validation_size} leaves no training images "
            f"(there are {len(x_train)})"
        )
    split = args.validation_size / len(x_train)
    print(f"preset {preset.name}: {preset.description}")
    print(
        f"data: MNIST, {len(x_train) - args.validation_size} training / "
        f"{args.validation_size} validation / {len(x_test)} test images"
    )
    model = make_model(preset.name, seed=args.seed, lr=lr)
    model.summary()
    print(
        f"training: {epochs} epochs, batch size {batch_size}, lr {lr:g}, "
        f"seed {args.seed}"
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_split=split,
        seed=args.seed,
        verbose=0 if args.quiet else "auto",
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, y_test)
    last = history.last()
    if "val_accuracy" in last:
        print(f"validation accuracy: {100 * last['val_accuracy']:.2f}%")
    print(
        f"test accuracy: {100 * test['accuracy']:.2f}%  (loss {test['loss']:.4f}; "
        f"{epochs} epochs in {seconds:.1f} s)"
    )
    metadata = {
        "preset": preset.name,
        "dataset": "mnist",
        "class_names": [str(i) for i in range(10)],
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": args.seed,
            "validation_size": args.validation_size,
            "seconds": round(seconds, 2),
        },
        "metrics": {
            "test_accuracy": test["accuracy"],
            "test_loss": test["loss"],
            **(
                {"val_accuracy": last["val_accuracy"]} if "val_accuracy" in last else {}
            ),
        },
    }
    save_model(model, out, metadata=metadata)
    print(f"saved model to {out}")
    return 0

"""``chainrule train``: train a preset on MNIST, report, save; checkpoint and resume."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from chainrule.callbacks import EarlyStopping, ModelCheckpoint, TerminateOnNaN
from chainrule.cli.common import (
    add_data_dir,
    add_plots,
    add_preset,
    check_output_path,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    prepare_plots_dir,
    print_plots,
)
from chainrule.data import load_mnist
from chainrule.diagnostics import HealthMonitor, check_health
from chainrule.io import load_model, read_header, save_model
from chainrule.model import Callback, Sequential
from chainrule.optim.schedules import SCHEDULES
from chainrule.presets import (
    DEFAULT_PRESET,
    OPTIMIZERS,
    Recipe,
    get_preset,
    make_callbacks,
    make_model,
)

#: images held out of the 60,000 training images to choose hyperparameters on
VALIDATION_SIZE = 5000
#: training images the health checks probe, before training and after each epoch
HEALTH_SAMPLES = 256
#: recipe fields the command line can set, with their flags
RECIPE_FLAGS = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "momentum",
    "weight_decay",
    "schedule",
    "dropout",
    "label_smoothing",
)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model on MNIST and save it",
        description="Train a preset on MNIST: prints the model, one progress bar "
        "(or line) per epoch, validation and test accuracy, and saves the model. "
        "Recipe flags override the preset's recipe.",
    )
    add_preset(parser, DEFAULT_PRESET)
    recipe = parser.add_argument_group("recipe (default: the preset's)")
    recipe.add_argument("--epochs", type=positive_int)
    recipe.add_argument("--batch-size", type=positive_int)
    recipe.add_argument("--lr", type=positive_float, help="(peak) learning rate")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS)
    recipe.add_argument("--momentum", type=non_negative_float)
    recipe.add_argument("--schedule", choices=SCHEDULES)
    recipe.add_argument("--weight-decay", type=non_negative_float)
    recipe.add_argument("--dropout", type=non_negative_float, help="rate in [0, 1)")
    recipe.add_argument("--label-smoothing", type=non_negative_float)
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seeds initialisation, shuffling, dropout and the validation split",
    )
    parser.add_argument(
        "--validation-size",
        type=non_negative_int,
        default=VALIDATION_SIZE,
        help=f"training images held out for validation (default {VALIDATION_SIZE})",
    )
    parser.add_argument(
        "--patience",
        type=positive_int,
        help="stop when validation loss fails to improve for more than N epochs "
        "in a row (and keep the best weights)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="write DIR/last.npz after every epoch and DIR/best.npz at the best "
        "validation accuracy; resume with --resume DIR/last.npz",
    )
    parser.add_argument(
        "--resume",
        metavar="FILE",
        help="continue the run saved in a checkpoint (same data, recipe, seed, "
        "early stopping and checkpoints); a larger --epochs extends it, and then "
        "the schedule is stretched over the new length",
    )
    parser.add_argument(
        "--stop-after",
        type=positive_int,
        metavar="N",
        help="stop after epoch N as if interrupted (the schedule still spans --epochs)",
    )
    add_data_dir(parser)
    parser.add_argument(
        "--out", metavar="FILE", help="model file (default: PRESET.npz)"
    )
    add_plots(
        parser,
        "training curves and, on the test set, the confusion matrix, misclassified "
        "images, first-layer weights and per-layer histograms",
    )
    health = parser.add_mutually_exclusive_group()
    health.add_argument(
        "--health",
        action="store_true",
        help="print the full training-health table (weight and gradient norms, "
        "dead ReLUs, saturated units) before and after training",
    )
    health.add_argument(
        "--no-health",
        action="store_true",
        help=f"skip the health checks (by default {HEALTH_SAMPLES} training images "
        "are checked before training and after every epoch, and each problem "
        "found is printed once with a fix)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output")
    parser.set_defaults(run=run)


class StopAfter(Callback):
    """End training after a given epoch, as an interruption would."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch >= self.epoch and self.model is not None:
            self.model.stop_training = True


def _start(args: argparse.Namespace) -> tuple[str, Recipe, Sequential, int, int]:
    """Preset name, recipe, model, seed and validation size of this run."""
    overrides = {f: getattr(args, f) for f in RECIPE_FLAGS}
    if args.resume is None:
        preset = get_preset(args.preset)
        recipe = preset.recipe.replace(**overrides)
        model = make_model(preset.name, seed=args.seed, recipe=recipe)
        return preset.name, recipe, model, args.seed, args.validation_size
    changed = [f for f, v in overrides.items() if v is not None and f != "epochs"]
    if changed:
        flags = ", ".join("--" + f.replace("_", "-") for f in changed)
        raise ValueError(f"{flags} cannot change when resuming: the run continues")
    metadata = read_header(args.resume).get("metadata", {})
    run_info = metadata.get("run") if isinstance(metadata, dict) else None
    if not isinstance(run_info, dict):
        raise ValueError(
            f"{args.resume} was not written by chainrule train --checkpoint "
            "(it has no run description to resume)"
        )
    recipe = Recipe(**run_info["recipe"]).replace(epochs=args.epochs)
    model = load_model(args.resume)
    if model.training_state is None:
        raise ValueError(f"{args.resume} holds no training state to resume from")
    if recipe.epochs < model.training_state.epoch:
        raise ValueError(
            f"--epochs {recipe.epochs}: {args.resume} has already done "
            f"{model.training_state.epoch} epochs (--epochs counts the whole run)"
        )
    # the callbacks must be the ones the run had, in the same order
    for flag in ("patience", "checkpoint"):
        given, saved = getattr(args, flag), run_info.get(flag)
        if given is not None and given != saved:
            raise ValueError(
                f"--{flag} {given} differs from the run's ({saved}); a resumed "
                "run keeps its early stopping and checkpoints"
            )
        setattr(args, flag, saved)
    return (
        run_info["preset"],
        recipe,
        model,
        model.training_state.seed or 0,
        run_info["validation_size"],
    )


def run(args: argparse.Namespace) -> int:
    preset_name, recipe, model, seed, validation_size = _start(args)
    out = check_output_path(args.out or f"{preset_name}.npz")
    if args.checkpoint:
        if Path(args.checkpoint).exists() and not Path(args.checkpoint).is_dir():
            raise ValueError(
                f"--checkpoint {args.checkpoint} is a file; give a directory"
            )
        Path(args.checkpoint).mkdir(parents=True, exist_ok=True)
    if args.patience and validation_size == 0:
        raise ValueError(
            "--patience watches the validation loss: it needs --validation-size > 0"
        )
    # before training: a missing matplotlib must not cost a training run
    plots_dir = prepare_plots_dir(args.plots) if args.plots else None

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data_dir)
    if validation_size >= len(x_train):
        raise ValueError(
            f"--validation-size {validation_size} leaves no training images "
            f"(there are {len(x_train)})"
        )
    print(f"preset {preset_name}: {get_preset(preset_name).description}")
    print(
        f"data: MNIST, {len(x_train) - validation_size} training / "
        f"{validation_size} validation / {len(x_test)} test images"
    )
    model.summary()
    print("recipe: " + ", ".join(f"{k} {v}" for k, v in recipe.to_json().items()))
    print(f"seed: {seed}")
    if args.resume:
        assert model.training_state is not None
        print(f"resuming {args.resume} after epoch {model.training_state.epoch}")

    run_info = {
        "preset": preset_name,
        "recipe": recipe.to_json(),
        "validation_size": validation_size,
        "patience": args.patience,
        "checkpoint": args.checkpoint,
    }
    steps = math.ceil((len(x_train) - validation_size) / recipe.batch_size)
    nan_guard = TerminateOnNaN()
    callbacks: list[Callback] = [nan_guard, *make_callbacks(recipe, steps)]
    if args.patience:
        callbacks.append(
            EarlyStopping(patience=args.patience, restore_best_weights=True)
        )
    if args.checkpoint:
        meta = {"run": run_info}
        callbacks += [
            ModelCheckpoint(Path(args.checkpoint) / "last.npz", metadata=meta),
            ModelCheckpoint(
                Path(args.checkpoint) / "best.npz",
                monitor="val_accuracy",
                save_best_only=True,
                metadata=meta,
            ),
        ]
    if args.stop_after:
        callbacks.append(StopAfter(args.stop_after))
    monitor = None
    if not args.no_health:
        x_probe, y_probe = x_train[:HEALTH_SAMPLES], y_train[:HEALTH_SAMPLES]
        monitor = HealthMonitor(x_probe, y_probe)
        callbacks.append(monitor)
        if args.health and not args.resume:
            print("training health before training:")
            # the monitor prints the warnings, once
            print(check_health(model, x_probe, y_probe).format(warnings=False))

    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        validation_split=validation_size / len(x_train),
        seed=seed,
        verbose=0 if args.quiet else "auto",
        callbacks=callbacks,
        resume=bool(args.resume),
    )
    seconds = time.perf_counter() - start
    if args.health and monitor is not None and monitor.report is not None:
        print(f"training health after epoch {len(history.epoch)}:")
        print(monitor.report.format(warnings=False))
    if nan_guard.message:
        last_good = Path(args.checkpoint or ".") / "last.npz"
        kept = (
            f"; the last good checkpoint is {last_good}"
            if args.checkpoint and last_good.exists()
            else ""
        )
        raise FloatingPointError(f"{nan_guard.message}{kept}; no model saved")
    test = model.evaluate(x_test, y_test)
    last = history.last()
    done = len(history.epoch)
    if "val_accuracy" in last:
        print(f"validation accuracy: {100 * last['val_accuracy']:.2f}%")
    print(
        f"test accuracy: {100 * test['accuracy']:.2f}%  (loss {test['loss']:.4f}; "
        f"{done} epochs, this run {seconds:.1f} s)"
    )
    class_names = [str(i) for i in range(10)]
    metadata = {
        "preset": preset_name,
        "dataset": "mnist",
        "class_names": class_names,
        "run": run_info,
        "training": {"epochs": done, "seed": seed, "seconds": round(seconds, 2)},
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
    if plots_dir is not None:
        from chainrule.plots import write_training_plots

        paths = write_training_plots(
            model, history, x_test, y_test, plots_dir, class_names
        )
        print_plots(plots_dir, paths)
    return 0

"""``chainrule train``: train a preset, report, save; checkpoint and resume."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.augment import DEFAULT_AUGMENTATION, Augment, get_augmentation
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
from chainrule.cli.datasets import (
    DEFAULT_IMAGE_SIZE,
    TrainingData,
    add_dataset,
    check_folder_flags,
    load_training_data,
    parse_dataset,
)
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
#: the fraction of a folder's images held out when it has no val/ folder
VALIDATION_SPLIT = 0.2
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
        help="train a model on MNIST (or Fashion-MNIST, or a folder) and save it",
        description="Train a preset on MNIST, Fashion-MNIST or a folder of "
        "images: prints the model, one progress bar (or line) per epoch, "
        "validation and test accuracy, and saves the model with its class "
        "names. Recipe flags override the preset's recipe.",
    )
    add_preset(parser, DEFAULT_PRESET)
    add_dataset(parser)
    parser.add_argument(
        "--augment",
        nargs="?",
        const="auto",
        metavar="NAME",
        help="change every training batch at random (never validation or test "
        "images): digits (shifts, turns, zooms), elastic (Simard et al.'s "
        "elastic distortion), fashion (shifts, mirror), natural (mirror, "
        "shifts, turns, zooms, colour), none; --augment alone picks the "
        "dataset's (digits for mnist, fashion for fashion-mnist, natural for "
        "a folder)",
    )
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
        help=f"mnist / fashion-mnist training images held out for validation "
        f"(default {VALIDATION_SIZE})",
    )
    parser.add_argument(
        "--validation-split",
        type=fraction,
        metavar="FRACTION",
        help=f"the fraction of a folder's images held out for validation when it "
        f"has no val/ folder (default {VALIDATION_SPLIT})",
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


def fraction(text: str) -> float:
    """A number in [0, 1) (``--validation-split``)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


class StopAfter(Callback):
    """End training after a given epoch, as an interruption would."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch >= self.epoch and self.model is not None:
            self.model.stop_training = True


def _start(args: argparse.Namespace) -> tuple[dict[str, Any], Sequential | None]:
    """The run's settings (as saved in checkpoints) and, when resuming, its model."""
    overrides = {f: getattr(args, f) for f in RECIPE_FLAGS}
    if args.resume is None:
        preset = get_preset(args.preset)
        name, path = parse_dataset(args.dataset)
        check_folder_flags(name, args)
        if name != "folder" and args.validation_split is not None:
            raise ValueError(
                f"--validation-split is for folders; {name} holds out "
                "--validation-size images (default 5000)"
            )
        # absolute, so evaluate and --resume find the folder from anywhere
        dataset = name if path is None else f"folder:{Path(path).resolve()}"
        augment = args.augment
        if augment == "auto":
            augment = DEFAULT_AUGMENTATION[name]
        if augment is not None:
            get_augmentation(augment)  # an unknown name fails before loading data
        settings = {
            "preset": preset.name,
            "recipe": preset.recipe.replace(**overrides).to_json(),
            "seed": args.seed,
            "dataset": dataset,
            "validation_size": args.validation_size,
            "validation_split": (
                VALIDATION_SPLIT
                if args.validation_split is None
                else args.validation_split
            ),
            "image_size": list(args.image_size) if args.image_size else None,
            "channels": args.channels,
            "augment": None if augment == "none" else augment,
            "patience": args.patience,
            "checkpoint": args.checkpoint,
        }
        return settings, None
    changed = [f for f, v in overrides.items() if v is not None and f != "epochs"]
    changed += [
        f
        for f in (
            "dataset",
            "validation_size",
            "validation_split",
            "image_size",
            "channels",
            "augment",
        )
        if getattr(args, f) is not None
    ]
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
    model = load_model(args.resume)
    state = model.training_state
    if state is None:
        raise ValueError(f"{args.resume} holds no training state to resume from")
    recipe = Recipe(**run_info["recipe"]).replace(epochs=args.epochs)
    if recipe.epochs < state.epoch:
        raise ValueError(
            f"--epochs {recipe.epochs}: {args.resume} has already done "
            f"{state.epoch} epochs (--epochs counts the whole run)"
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
    # runs saved before datasets and augmentation were choices: MNIST, none
    settings = {
        "dataset": "mnist",
        "validation_split": VALIDATION_SPLIT,
        "image_size": None,
        "channels": None,
        "augment": None,
        **run_info,
        "recipe": recipe.to_json(),
        "seed": state.seed or 0,
    }
    return settings, model


def _data(settings: dict[str, Any], args: argparse.Namespace) -> TrainingData:
    image_size = settings["image_size"]
    return load_training_data(
        settings["dataset"],
        data_dir=args.data_dir,
        validation_size=settings["validation_size"],
        validation_split=settings["validation_split"],
        seed=settings["seed"],
        image_size=tuple(image_size) if image_size else None,
        channels=settings["channels"],
    )


def _check_shape(preset: str, recipe: Recipe, settings: dict[str, Any]) -> None:
    """Refuse, before any data is read, images the preset cannot take."""
    shape: tuple[int, ...] = (28, 28)
    if settings["dataset"].startswith("folder:"):
        size = settings["image_size"] or [DEFAULT_IMAGE_SIZE] * 2
        shape = (settings["channels"] or 3, *size)
    try:
        make_model(preset, recipe=recipe, input_shape=shape, classes=2)
    except ValueError as exc:
        size = "x".join(map(str, shape[-2:]))
        raise ValueError(
            f"preset {preset} cannot take {size} images ({exc}); choose a larger "
            "--image-size or another preset"
        ) from None


def run(args: argparse.Namespace) -> int:
    settings, model = _start(args)
    preset_name, seed = settings["preset"], settings["seed"]
    recipe = Recipe(**settings["recipe"])
    if model is None:
        _check_shape(preset_name, recipe, settings)
    out = check_output_path(args.out or f"{preset_name}.npz")
    if args.checkpoint:
        if Path(args.checkpoint).exists() and not Path(args.checkpoint).is_dir():
            raise ValueError(
                f"--checkpoint {args.checkpoint} is a file; give a directory"
            )
        Path(args.checkpoint).mkdir(parents=True, exist_ok=True)
    # before training: a missing matplotlib must not cost a training run
    plots_dir = prepare_plots_dir(args.plots) if args.plots else None

    data = _data(settings, args)
    settings["validation_size"] = data.validation_size if data.x_val is None else None
    has_validation = data.x_val is not None or data.validation_size > 0
    if args.patience and not has_validation:
        raise ValueError(
            "--patience watches the validation loss: it needs validation images "
            "(--validation-size > 0, --validation-split > 0 or a val/ folder)"
        )
    if plots_dir is not None and data.x_test is None and data.x_val is None:
        raise ValueError(
            "--plots draws the model's mistakes on test or validation images, and "
            "this run has neither (give --validation-split > 0 or a test/ folder)"
        )
    if model is None:
        model = make_model(
            preset_name,
            seed=seed,
            recipe=recipe,
            input_shape=data.sample_shape,
            classes=len(data.class_names),
        )
    augment: Augment | None = (
        get_augmentation(settings["augment"]) if settings["augment"] else None
    )
    print(f"preset {preset_name}: {get_preset(preset_name).description}")
    if data.summary:
        print(data.summary)
    print(f"data: {data.title}, {data.counts()}")
    if augment is not None:
        print(f"augmentation: {settings['augment']} {augment!r}")
    model.summary()
    print("recipe: " + ", ".join(f"{k} {v}" for k, v in recipe.to_json().items()))
    print(f"seed: {seed}")
    if args.resume:
        assert model.training_state is not None
        print(f"resuming {args.resume} after epoch {model.training_state.epoch}")

    run_info = {k: v for k, v in settings.items() if k != "seed"}
    n_train = len(data.x_train) - data.validation_size
    steps = math.ceil(n_train / recipe.batch_size)
    nan_guard = TerminateOnNaN()
    callbacks: list[Callback] = [nan_guard, *make_callbacks(recipe, steps)]
    if args.patience:
        callbacks.append(
            EarlyStopping(patience=args.patience, restore_best_weights=True)
        )
    described = {
        "preset": preset_name,
        "dataset": data.name,
        "class_names": data.class_names,
        "input": data.input,
    }
    if args.checkpoint:
        # a checkpoint predicts and evaluates like a finished model file
        meta = {**described, "run": run_info}
        callbacks.append(
            ModelCheckpoint(Path(args.checkpoint) / "last.npz", metadata=meta)
        )
        if has_validation:
            callbacks.append(
                ModelCheckpoint(
                    Path(args.checkpoint) / "best.npz",
                    monitor="val_accuracy",
                    save_best_only=True,
                    metadata=meta,
                )
            )
        else:
            print("no validation images: --checkpoint writes last.npz only")
    if args.stop_after:
        callbacks.append(StopAfter(args.stop_after))
    monitor = None
    if not args.no_health:
        x_probe = np.asarray(data.x_train[:HEALTH_SAMPLES])
        y_probe = np.asarray(data.y_train[:HEALTH_SAMPLES])
        monitor = HealthMonitor(x_probe, y_probe)
        callbacks.append(monitor)
        if args.health and not args.resume:
            print("training health before training:")
            # the monitor prints the warnings, once
            print(check_health(model, x_probe, y_probe).format(warnings=False))

    start = time.perf_counter()
    validation: dict[str, Any] = (
        {"validation_data": (data.x_val, data.y_val)}
        if data.x_val is not None
        else {"validation_split": data.validation_size / len(data.x_train)}
    )
    history = model.fit(
        data.x_train,
        data.y_train,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        seed=seed,
        verbose=0 if args.quiet else "auto",
        callbacks=callbacks,
        resume=bool(args.resume),
        augment=augment,
        **validation,
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
    last = history.last()
    done = len(history.epoch)
    if "val_accuracy" in last:
        print(f"validation accuracy: {100 * last['val_accuracy']:.2f}%")
    metrics: dict[str, float] = {}
    if "val_accuracy" in last:
        metrics["val_accuracy"] = last["val_accuracy"]
    if data.x_test is not None:
        test = model.evaluate(data.x_test, data.y_test)
        metrics.update(test_accuracy=test["accuracy"], test_loss=test["loss"])
        print(
            f"test accuracy: {100 * test['accuracy']:.2f}%  (loss "
            f"{test['loss']:.4f}; {done} epochs, this run {seconds:.1f} s)"
        )
    else:
        print(
            f"no test images (add a test/ folder to get a test score); {done} "
            f"epochs, this run {seconds:.1f} s"
        )
    metadata = {
        **described,
        "run": run_info,
        "training": {"epochs": done, "seed": seed, "seconds": round(seconds, 2)},
        "metrics": metrics,
    }
    save_model(model, out, metadata=metadata)
    print(f"saved model to {out}")
    if plots_dir is not None:
        from chainrule.plots import write_training_plots

        x_eval, y_eval = (
            (data.x_test, data.y_test)
            if data.x_test is not None
            else (data.x_val, data.y_val)
        )
        paths = write_training_plots(
            model, history, x_eval, y_eval, plots_dir, data.class_names
        )
        print_plots(plots_dir, paths)
    return 0

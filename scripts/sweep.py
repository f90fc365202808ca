"""Choose a preset's recipe on a validation split; report test accuracy.

Every choice is made on validation accuracy (5,000 images held out of the
60,000 training images, the same split ``chainrule train`` uses); the test set
is only read to report a recipe, as mean ± std over seeds. Each grid value is a
recipe field of ``chainrule.presets.Recipe``; every combination is run.

    python scripts/sweep.py --preset mlp --grid lr=0.02,0.05,0.1 --seeds 0 1
    python scripts/sweep.py --preset mlp --grid hidden=1024x1024 dropout=0.3 \\
        schedule=cosine optimizer=nesterov epochs=20 --seeds 0 1 2 3 4 --report-test
    python scripts/sweep.py --preset cnn --dataset fashion-mnist --augment fashion \\
        --seeds 0 1 2 3 4

``--dataset`` is ``mnist`` or ``fashion-mnist``; ``--augment NAME`` trains with a
named augmentation (``chainrule.augment.AUGMENTATIONS``) on every training batch.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from typing import Any

from chainrule.augment import Augment, get_augmentation
from chainrule.data import DATASETS, load_idx_dataset
from chainrule.presets import Recipe, get_preset, make_callbacks, make_model

VALIDATION_SPLIT = 5000 / 60000


def parse_value(field: str, text: str) -> Any:
    if field == "hidden":
        return tuple(int(w) for w in text.split("x"))
    if field in ("optimizer", "schedule"):
        return text
    if field in ("epochs", "batch_size"):
        return int(text)
    return float(text)


def run(
    preset: str,
    recipe: Recipe,
    seed: int,
    data: Any,
    augment: Augment | None = None,
) -> dict[str, float]:
    (x, y), (xt, yt) = data
    model = make_model(preset, seed=seed, recipe=recipe)
    steps = math.ceil(len(x) * (1 - VALIDATION_SPLIT) / recipe.batch_size)
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        validation_split=VALIDATION_SPLIT,
        seed=seed,
        verbose=0,
        callbacks=make_callbacks(recipe, steps),
        augment=augment,
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(xt, yt)
    return {"val": history["val_accuracy"][-1], "test": test["accuracy"], "s": seconds}


def stat(rows: list[dict[str, float]], key: str) -> str:
    """``mean ± std`` of ``key`` over runs, in percent."""
    vals = [100 * r[key] for r in rows]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.2f} ± {sd:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", required=True)
    parser.add_argument(
        "--grid", nargs="*", default=[], metavar="FIELD=V1,V2", help="recipe values"
    )
    parser.add_argument("--lr", type=float, nargs="+", help="shorthand for lr=...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--data-dir")
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="mnist")
    parser.add_argument("--augment", metavar="NAME", help="a named augmentation")
    parser.add_argument(
        "--report-test",
        action="store_true",
        help="also print test accuracy (only for recipes already chosen)",
    )
    args = parser.parse_args()
    grid: dict[str, list[Any]] = {}
    for item in args.grid:
        field, _, values = item.partition("=")
        grid[field] = [parse_value(field, v) for v in values.split(",")]
    if args.lr:
        grid["lr"] = args.lr
    if args.epochs:
        grid["epochs"] = [args.epochs]
    base = get_preset(args.preset).recipe
    data = load_idx_dataset(DATASETS[args.dataset], args.data_dir)
    augment = get_augmentation(args.augment) if args.augment else None
    for combo in itertools.product(*grid.values()):
        changes = dict(zip(grid, combo, strict=True))
        recipe = base.replace(**changes)
        shown = " ".join(f"{k}={v}" for k, v in changes.items()) or "(preset recipe)"
        rows = []
        for seed in args.seeds:
            rows.append(run(args.preset, recipe, seed, data, augment))
            r = rows[-1]
            test = f"test {100 * r['test']:.2f}%  " if args.report_test else ""
            print(
                f"  {args.preset} {shown} seed={seed}: val {100 * r['val']:.2f}%  "
                f"{test}({r['s']:.1f} s)",
                flush=True,
            )
        test = f"test {stat(rows, 'test')}%  " if args.report_test else ""
        print(
            f"{args.preset} {shown} seeds={args.seeds}: val {stat(rows, 'val')}%  "
            f"{test}({statistics.mean(r['s'] for r in rows):.1f} s/run)",
            flush=True,
        )


if __name__ == "__main__":
    main()

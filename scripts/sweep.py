"""Choose a preset's learning rate on a validation split; report test accuracy.

Every choice is made on validation accuracy (5,000 images held out of the
60,000 training images, the same split ``chainrule train`` uses); the test set
is only read to report the chosen recipe, as mean ± std over seeds.

    python scripts/sweep.py --preset mlp --lr 0.02 0.05 0.1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

from chainrule.data import load_mnist
from chainrule.presets import get_preset, make_model

VALIDATION_SPLIT = 5000 / 60000


def run(preset: str, lr: float, seed: int, epochs: int, data_dir: str | None) -> dict:
    (x, y), (xt, yt) = load_mnist(data_dir)
    p = get_preset(preset)
    model = make_model(preset, seed=seed, lr=lr)
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=p.batch_size,
        validation_split=VALIDATION_SPLIT,
        seed=seed,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(xt, yt)
    return {"val": history["val_accuracy"][-1], "test": test["accuracy"], "s": seconds}


def stat(rows: list[dict], key: str) -> str:
    """``mean ± std`` of ``key`` over runs, in percent."""
    vals = [100 * r[key] for r in rows]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.2f} ± {sd:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--lr", type=float, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    epochs = args.epochs or get_preset(args.preset).epochs
    for lr in args.lr:
        rows = [run(args.preset, lr, s, epochs, args.data_dir) for s in args.seeds]

        print(
            f"{args.preset} lr={lr:g} epochs={epochs} seeds={args.seeds}: "
            f"val {stat(rows, 'val')}%  test {stat(rows, 'test')}%  "
            f"({statistics.mean(r['s'] for r in rows):.1f} s/run)",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Time to a test accuracy: train a preset on MNIST until it reaches a target.

Measured end to end: the clock starts before the MNIST files are read and
stops when a test-set evaluation first reaches ``--target``. The test set is
evaluated every ``--eval-every`` steps (and at the end of each epoch); the time
those evaluations take is reported apart, as is the training time alone.

    python benchmarks/time_to_accuracy.py --preset cnn --epochs 3 --target 0.99

This measures speed, not model choice: it trains on all 60,000 training images
with the preset's recipe (chosen on validation elsewhere, see docs/results.md).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from typing import Any

import numpy as np

from chainrule.data import load_mnist
from chainrule.model import Callback
from chainrule.presets import get_preset, make_callbacks, make_model


class StopAtAccuracy(Callback):
    """Evaluate on the test set every few steps; stop once the target is reached."""

    def __init__(self, x: Any, y: Any, target: float, every: int, start: float) -> None:
        super().__init__()
        self.x, self.y, self.target, self.every = x, y, target, every
        self.start = start
        self.eval_seconds = 0.0
        self.steps = 0
        self.reached: dict[str, float] | None = None
        self.trace: list[tuple[int, float, float]] = []

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self._check()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.steps % self.every and self.reached is None:
            self._check()

    def _check(self) -> None:
        assert self.model is not None
        t = time.perf_counter()
        accuracy = self.model.evaluate(self.x, self.y)["accuracy"]
        self.eval_seconds += time.perf_counter() - t
        elapsed = time.perf_counter() - self.start
        self.trace.append((self.steps, elapsed, accuracy))
        print(
            f"step {self.steps:5d}  {elapsed:7.1f} s  test accuracy {accuracy:.4f}",
            flush=True,
        )
        if accuracy >= self.target and self.reached is None:
            self.reached = {
                "steps": self.steps,
                "wall_seconds": elapsed,
                "eval_seconds": self.eval_seconds,
                "accuracy": accuracy,
            }
            self.model.stop_training = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cnn")
    parser.add_argument("--epochs", type=int, help="recipe length (schedule spans it)")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--eval-every", type=int, default=100, metavar="STEPS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    start = time.perf_counter()
    (x, y), (x_test, y_test) = load_mnist(args.data_dir)
    recipe = get_preset(args.preset).recipe.replace(epochs=args.epochs)
    model = make_model(args.preset, seed=args.seed, recipe=recipe)
    steps = math.ceil(len(x) / recipe.batch_size)
    stopper = StopAtAccuracy(x_test, y_test, args.target, args.eval_every, start)
    model.fit(
        x,
        y,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        seed=args.seed,
        verbose=0,
        callbacks=[*make_callbacks(recipe, steps), stopper],
    )
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"{args.preset} ({recipe.epochs}-epoch recipe, seed {args.seed}) on "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}, "
        f"OPENBLAS_NUM_THREADS={threads}, numpy {np.__version__})"
    )
    if stopper.reached is None:
        best = max(a for _, _, a in stopper.trace)
        print(f"did not reach {args.target:.2%} (best {best:.4f})")
        raise SystemExit(1)
    r = stopper.reached
    print(
        f"reached {r['accuracy']:.2%} >= {args.target:.2%} "
        f"after {r['steps']:.0f} steps: "
        f"{r['wall_seconds']:.1f} s end to end, of which "
        f"{r['wall_seconds'] - r['eval_seconds']:.1f} s loading and training and "
        f"{r['eval_seconds']:.1f} s test evaluations"
    )


if __name__ == "__main__":
    main()

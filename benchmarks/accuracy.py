"""Time to a test accuracy on real MNIST, chainrule or PyTorch, same recipe.

End to end, as ``time_to_accuracy.py`` measures it: the clock starts before
the MNIST files are read (both frameworks read them with chainrule's loader)
and stops at the first test-set evaluation at or above the target. The test
set is scored every ``--eval-every`` steps and at the end of each epoch, and
that time counts (it is also reported apart). Both frameworks train the same
network from the same initial weights on the same batches (``fit``'s
shuffling with the same seed) with the same learning rate at every step, so
they take near-identical paths and the times compare speed alone.

    python benchmarks/accuracy.py --framework chainrule --task cnn

Prints one progress line per evaluation, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Task:
    """A network, a target and the recipe that trains it (Adam, one-cycle)."""

    name: str
    arch: str  # a key of models.ARCHITECTURES
    target: float
    epochs: int  # the schedule spans this many epochs
    lr: float  # the one-cycle schedule's peak
    batch_size: int = 128
    schedule: str = "onecycle"


TASKS = {
    t.name: t
    for t in (
        Task("mlp", "mlp800", target=0.98, epochs=2, lr=3e-3),
        Task("cnn", "cnn", target=0.99, epochs=2, lr=3e-3),
    )
}


def _record(
    trace: list[tuple[int, float, float]], step: int, start: float, accuracy: float
) -> None:
    elapsed = time.perf_counter() - start
    trace.append((step, elapsed, accuracy))
    print(f"step {step:5d}  {elapsed:7.1f} s  test accuracy {accuracy:.4f}", flush=True)


def run_chainrule(task: Task, data_dir: str | None, every: int, seed: int) -> Any:
    from models import compiled
    from time_to_accuracy import StopAtAccuracy

    from chainrule.callbacks import LearningRateScheduler
    from chainrule.data import load_mnist
    from chainrule.optim import Adam
    from chainrule.optim.schedules import make_schedule

    start = time.perf_counter()
    (x, y), (x_test, y_test) = load_mnist(data_dir, download=False)
    model = compiled(task.arch, Adam(task.lr), seed)
    steps = math.ceil(len(x) / task.batch_size) * task.epochs
    schedule = make_schedule(task.schedule, task.lr, steps)
    stopper = StopAtAccuracy(x_test, y_test, task.target, every, start)
    model.fit(
        x,
        y,
        epochs=task.epochs,
        batch_size=task.batch_size,
        seed=seed,
        verbose=0,
        callbacks=[LearningRateScheduler(schedule, per="step"), stopper],
    )
    return stopper.reached, stopper.trace, stopper.eval_seconds


def run_torch(task: Task, data_dir: str | None, every: int, seed: int) -> Any:
    """The same run in PyTorch: ``fit``'s batches, the schedule set every step."""
    import torch
    from models import compiled
    from torch_models import to_torch, torch_loss, torch_optimizer

    from chainrule.data import load_mnist
    from chainrule.optim import Adam
    from chainrule.optim.schedules import make_schedule

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    start = time.perf_counter()
    (x, y), (x_test, y_test) = load_mnist(data_dir, download=False)
    model = compiled(task.arch, Adam(task.lr), seed)  # the initial weights
    net = to_torch(model)
    loss_fn, optimizer = torch_loss(model), torch_optimizer(model, net)
    schedule = make_schedule(
        task.schedule, task.lr, math.ceil(len(x) / task.batch_size) * task.epochs
    )
    trace: list[tuple[int, float, float]] = []
    eval_seconds = 0.0

    def evaluate(step: int) -> bool:
        nonlocal eval_seconds
        t = time.perf_counter()
        net.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(x_test), 1000):
                logits = net(torch.from_numpy(x_test[s : s + 1000]).float())
                correct += int((logits.argmax(1).numpy() == y_test[s : s + 1000]).sum())
        net.train()
        eval_seconds += time.perf_counter() - t
        _record(trace, step, start, correct / len(x_test))
        return correct / len(x_test) >= task.target

    rng = np.random.default_rng(seed)  # fit's generator: one permutation an epoch
    step = 0
    for _ in range(task.epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), task.batch_size):
            idx = order[s : s + task.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = schedule(step)
            xb = torch.from_numpy(x[idx]).float()
            yb = torch.from_numpy(y[idx]).long()
            optimizer.zero_grad()
            loss_fn(net(xb), yb).backward()
            optimizer.step()
            step += 1
            if step % every == 0 and evaluate(step):
                return _reached(trace, eval_seconds), trace, eval_seconds
        if step % every and evaluate(step):
            return _reached(trace, eval_seconds), trace, eval_seconds
    return None, trace, eval_seconds


def _reached(trace: list[tuple[int, float, float]], eval_seconds: float) -> Any:
    steps, elapsed, accuracy = trace[-1]
    return {
        "steps": steps,
        "wall_seconds": elapsed,
        "eval_seconds": eval_seconds,
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("chainrule", "pytorch"), required=True)
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--epochs", type=int, help="recipe length (schedule spans it)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--eval-every", type=int, default=100, metavar="STEPS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    task = TASKS[args.task]
    overrides = {"epochs": args.epochs, "lr": args.lr}
    task = Task(**{**asdict(task), **{k: v for k, v in overrides.items() if v}})
    run = run_chainrule if args.framework == "chainrule" else run_torch
    reached, trace, eval_seconds = run(task, args.data_dir, args.eval_every, args.seed)
    print(
        json.dumps(
            {
                "framework": args.framework,
                "task": asdict(task),
                "reached": reached,
                "best": max(a for _, _, a in trace),
                "seconds": trace[-1][1],
                "eval_seconds": eval_seconds,
                "threads": os.environ.get("OMP_NUM_THREADS"),
            }
        ),
        flush=True,
    )
    sys.exit(0 if reached else 1)


if __name__ == "__main__":
    main()

"""Where a chainrule training step spends its time, layer by layer.

Times the real ``model.train_step`` of a benchmark model: each layer's
``forward`` is wrapped (on the instance, nothing in the library changes) to
time it and the backward closure it returns; the loss and the optimizer's
``step`` are timed the same way. What is left of the step (zeroing gradients,
constraints, Python between the layers) is "other".

    python benchmarks/layer_profile.py --model cnn-adam --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from blas_threads import default_threads, pin_threads

#: (module, function) pairs timed inside the layers that call them
HELPERS = (("chainrule.layers.conv", "im2col"), ("chainrule.layers.conv", "col2im"))


class Timers:
    """Seconds accumulated per label, in the order labels first appear."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds

    def timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self.add(label, time.perf_counter() - start)
            return out

        return wrapper


def instrument(model: Any, timers: Timers) -> None:
    """Time every layer's forward and backward, the loss and the optimizer."""
    for i, layer in enumerate(model.layers):
        name = f"{i:2d} {layer!r}"
        forward = layer.forward

        def timed_forward(
            *args: Any, _forward: Any = forward, _name: str = name, **kwargs: Any
        ) -> Any:
            start = time.perf_counter()
            y, backward = _forward(*args, **kwargs)
            timers.add(f"{_name} forward", time.perf_counter() - start)
            return y, timers.timed(f"{_name} backward", backward)

        layer.forward = timed_forward
    model.loss = TimedLoss(model.loss, timers)
    model.optimizer.step = timers.timed("optimizer step", model.optimizer.step)


def instrument_helpers(timers: Timers) -> list[str]:
    """Time the column helpers the convolution calls, where it calls them.

    They run inside the Conv2D rows; the labels say so. Helpers the library
    no longer has are skipped.
    """
    import importlib

    labels = []
    for module_name, function in HELPERS:
        module = importlib.import_module(module_name)
        if callable(getattr(module, function, None)):
            label = f"  (within Conv2D) {function}"
            setattr(module, function, timers.timed(label, getattr(module, function)))
            labels.append(label)
    return labels


class TimedLoss:
    """A loss that times its calls; everything else goes to the real one."""

    def __init__(self, loss: Any, timers: Timers) -> None:
        self._loss, self._timers = loss, timers

    def __call__(self, logits: Any, y: Any) -> Any:
        return self._timers.timed("loss", self._loss)(logits, y)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loss, name)


def profile(bench_name: str, steps: int, data_dir: str | None) -> list[str]:
    import numpy as np
    from models import BENCHES

    from chainrule import backend

    bench = BENCHES[bench_name]
    model = bench.build(0)
    try:
        from chainrule.data import load_mnist

        (x, y), _ = load_mnist(data_dir, download=False)
        source = "MNIST"
    except Exception:  # no local copy: pixels do not change the timings much
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (8192, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, 8192).astype(np.uint8)
        source = "random images"
    rng = np.random.default_rng(0)
    batches = [
        rng.choice(len(x), bench.batch_size, replace=False) for _ in range(steps + 3)
    ]
    for idx in batches[:3]:  # warm-up
        model.train_step(backend.asarray(x[idx], model.dtype), y[idx])
    timers = Timers()
    instrument(model, timers)
    inner = instrument_helpers(timers)
    start = time.perf_counter()
    for idx in batches[3:]:
        model.train_step(backend.asarray(x[idx], model.dtype), y[idx])
    total = (time.perf_counter() - start) / steps
    per_step = {k: v / steps for k, v in timers.seconds.items()}
    per_step["other (zero_grad, batch conversion, Python)"] = total - sum(
        v for k, v in per_step.items() if k not in inner
    )
    lines = [
        f"`{bench.name}` ({bench.description}), batch {bench.batch_size}: "
        f"{total * 1e3:.1f} ms a step, mean of {steps} steps on {source}",
        "",
        "Rows marked (within Conv2D) are included in the Conv2D rows.",
        "",
        "| part | ms / step | share |",
        "| --- | --- | --- |",
    ]
    ranked = sorted(per_step.items(), key=lambda kv: -kv[1])
    lines += [f"| {k} | {v * 1e3:.2f} | {v / total:.1%} |" for k, v in ranked]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cnn-adam")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    pin_threads(args.threads)
    print("\n".join(profile(args.model, args.steps, args.data_dir)))


if __name__ == "__main__":
    main()

"""Training and inference throughput of one model, chainrule against PyTorch.

Both frameworks get the same network with the same initial weights
(``torch_models.to_torch``) and, in each repeat, the same list of batches.
A batch is drawn as ``Sequential.fit`` draws it: the uint8 images at a random
index array (``x[idx]``), converted to float32 pixels 0..255, labels as they
are (torch: ``int64``, which its losses need); both models scale by 1/255 in
their first layer. chainrule runs ``model.train_step``; torch runs
``zero_grad``, forward, loss, ``backward``, ``step``.

The frameworks alternate (A B, B A, A B, ...) so that drift of the machine
hits both, and a short pause before each timing lets the other library's
worker threads go back to sleep (OpenBLAS spins for a while after a call).
The ratio is taken within each repeat, chainrule over PyTorch: above 1,
chainrule is faster.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from models import Bench, forward_flops
from torch_models import to_torch, torch_loss, torch_optimizer

from chainrule import Sequential, backend

FRAMEWORKS = ("chainrule", "pytorch")
#: seconds of idle before each timing: longer than OpenBLAS's workers spin
#: (2^28 cycles, about 0.1 s) and the OpenMP pool's, so they sleep when it starts
PAUSE = 0.3
#: samples per inference batch, as ``predict_logits``'s default
INFERENCE_BATCH = 1000

Step = Callable[[np.ndarray], None]


def summary(values: list[float]) -> dict[str, Any]:
    """Median, min and max of repeated measurements (and the values)."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def batch_stream(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Index arrays of ``batch_size``, epoch after epoch of fresh permutations."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def chainrule_step(model: Sequential, x: np.ndarray, y: np.ndarray) -> Step:
    dtype = model.dtype

    def step(idx: np.ndarray) -> None:
        model.train_step(backend.asarray(x[idx], dtype), y[idx])

    return step


def torch_step(model: Sequential, net: Any, x: np.ndarray, y: np.ndarray) -> Step:
    loss_fn = torch_loss(model)
    optimizer = torch_optimizer(model, net)

    def step(idx: np.ndarray) -> None:
        xb = torch.from_numpy(x[idx]).float()
        yb = torch.from_numpy(y[idx]).long()
        optimizer.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        optimizer.step()

    return step


def chainrule_infer(model: Sequential) -> Callable[[np.ndarray], Any]:
    return lambda x: model.predict_logits(x, batch_size=INFERENCE_BATCH)


def torch_infer(net: Any) -> Callable[[np.ndarray], Any]:
    """``predict_logits``'s twin: batches of 1000, float32 in, NumPy logits out."""

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            outputs = [
                net(torch.from_numpy(x[s : s + INFERENCE_BATCH]).float()).numpy()
                for s in range(0, len(x), INFERENCE_BATCH)
            ]
        return np.concatenate(outputs)

    return infer


def _interleaved(
    run: Callable[[str, int], Any], repeats: int, pause: float
) -> dict[str, list[float]]:
    """Seconds of ``run(name, r)`` for each framework and repeat ``r``.

    The order alternates between repeats; each timing follows ``pause`` seconds
    of idle.
    """
    seconds: dict[str, list[float]] = {name: [] for name in FRAMEWORKS}
    for r in range(repeats):
        for name in FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]:
            time.sleep(pause)
            start = time.perf_counter()
            run(name, r)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def _rates(
    seconds: dict[str, list[float]], samples: int, flops_per_sample: int
) -> dict[str, Any]:
    rates = {name: [samples / s for s in seconds[name]] for name in FRAMEWORKS}
    result: dict[str, Any] = {name: summary(values) for name, values in rates.items()}
    for name in FRAMEWORKS:
        result[name]["gflops"] = result[name]["median"] * flops_per_sample / 1e9
    result["ratio"] = summary(
        [c / p for c, p in zip(rates["chainrule"], rates["pytorch"], strict=True)]
    )
    return result


def measure(
    bench: Bench,
    x: np.ndarray,
    y: np.ndarray,
    x_infer: np.ndarray,
    *,
    repeats: int,
    steps: int | None,
    seconds: float,
    warmup: int = 3,
    seed: int = 0,
    inference: bool = True,
    pause: float = PAUSE,
) -> dict[str, Any]:
    """Training (and inference) samples/s of ``bench`` in both frameworks.

    ``steps`` training steps per timing, or (``None``) as many as make the
    slower framework take about ``seconds``; inference likewise repeats passes
    over ``x_infer`` to last about ``seconds``.
    """
    model = bench.build(seed)
    net = to_torch(model)
    steps_of = {
        "chainrule": chainrule_step(model, x, y),
        "pytorch": torch_step(model, net, x, y),
    }
    stream = batch_stream(len(x), bench.batch_size, seed)
    warm = [next(stream) for _ in range(warmup)]
    for name in FRAMEWORKS:
        for idx in warm:
            steps_of[name](idx)
    if steps is None:
        probe = [next(stream) for _ in range(10)]
        per_step = _interleaved(
            lambda name, r: [steps_of[name](i) for i in probe], 2, pause
        )
        slowest = max(min(t) for t in per_step.values()) / len(probe)
        steps = min(max(math.ceil(seconds / slowest), 5), 20000)
    schedule = [[next(stream) for _ in range(steps)] for _ in range(repeats)]

    def train(name: str, r: int) -> None:
        step = steps_of[name]
        for idx in schedule[r]:
            step(idx)

    per_repeat = _interleaved(train, repeats, pause)
    flops = forward_flops(model)
    result: dict[str, Any] = {
        "bench": bench.name,
        "description": bench.description,
        "arch": bench.arch,
        "batch_size": bench.batch_size,
        "forward_flops": flops,
        "steps": steps,
        "repeats": repeats,
        "train": _rates(per_repeat, steps * bench.batch_size, 3 * flops),
    }
    if inference:
        result["infer"] = measure_inference(
            model, net, x_infer, repeats=repeats, seconds=seconds, pause=pause
        )
    return result


def measure_inference(
    model: Sequential,
    net: Any,
    x: np.ndarray,
    *,
    repeats: int,
    seconds: float,
    pause: float = PAUSE,
) -> dict[str, Any]:
    """Samples/s of ``predict_logits`` and its torch twin over ``x``."""
    net.eval()
    infer = {"chainrule": chainrule_infer(model), "pytorch": torch_infer(net)}
    for name in FRAMEWORKS:
        infer[name](x)
    slowest = max(
        min(t) for t in _interleaved(lambda name, r: infer[name](x), 2, pause).values()
    )
    passes = min(max(math.ceil(seconds / slowest), 1), 1000)

    def run(name: str, r: int) -> None:
        for _ in range(passes):
            infer[name](x)

    timings = _interleaved(run, repeats, pause)
    net.train()
    result = _rates(timings, passes * len(x), forward_flops(model))
    result["passes"] = passes
    result["samples"] = len(x)
    return result

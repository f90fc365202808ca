"""The machine's measured float32 GEMM peak, the yardstick of "% of peak".

One square ``n × n`` float32 matrix product, ``2·n³`` FLOPs, timed with NumPy
(chainrule's BLAS) and with ``torch.mm`` (PyTorch's), alternating; each
library's median over the repeats; the peak is the faster of the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _seconds(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure_peak(size: int = 2048, repeats: int = 7, seed: int = 0) -> dict[str, Any]:
    """GFLOP/s of NumPy's and torch's ``size``-square float32 products."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tout = torch.empty_like(ta)
    runs = {
        "numpy": lambda: np.matmul(a, b, out=out),
        "torch": lambda: torch.mm(ta, tb, out=tout),
    }
    for run in runs.values():  # warm-up: thread pools started, pages touched
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name in sorted(runs, reverse=r % 2 == 1):
            times[name].append(_seconds(runs[name]))
    flops = 2.0 * size**3
    result: dict[str, Any] = {"size": size, "repeats": repeats}
    for name, seconds in times.items():
        result[name] = flops / statistics.median(seconds) / 1e9
    result["peak"] = max(result["numpy"], result["torch"])
    return result

"""Helpers several test modules import (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chainrule.optim.base import Optimizer
from chainrule.parameter import Parameter

#: tolerances for comparing an optimizer with torch's, by dtype
OPTIMIZER_TOL: dict[Any, dict[str, float]] = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-13},
}
OPTIMIZER_SHAPES = [(4, 3), (3,), (2, 2, 2), (50,)]
OPTIMIZER_STEPS = 20


def step_with_torch(
    make: Callable[[], Optimizer],
    make_torch: Callable[[list[torch.nn.Parameter], Optimizer], Any],
    dtype: Any,
    seed: int,
    lr_changes: dict[int, float] | None = None,
    tol: dict[str, float] | None = None,
) -> float:
    """Step a chainrule optimizer and torch's on the same gradients, in lock step.

    Both start from the same weights and get the same random gradient at each
    of ``OPTIMIZER_STEPS`` steps (and the same learning-rate changes); after
    every step the weights must agree. Returns the largest difference seen.
    """
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s).astype(dtype) for s in OPTIMIZER_SHAPES]
    params = [Parameter(w.copy(), f"p{i}") for i, w in enumerate(initial)]
    tparams = [torch.nn.Parameter(torch.tensor(w)) for w in initial]
    opt = make()
    topt = make_torch(tparams, opt)
    worst = 0.0
    for i in range(OPTIMIZER_STEPS):
        if lr_changes and i in lr_changes:
            opt.lr = lr_changes[i]
            topt.param_groups[0]["lr"] = lr_changes[i]
        for p, tp in zip(params, tparams, strict=True):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step(params)
        topt.step()
        for p, tp in zip(params, tparams, strict=True):
            expected = tp.detach().numpy()
            assert p.data.dtype == dtype
            np.testing.assert_allclose(
                p.data, expected, **(tol or OPTIMIZER_TOL[dtype])
            )
            worst = max(worst, float(np.max(np.abs(p.data - expected))))
    assert opt.iterations == OPTIMIZER_STEPS
    return worst


def second_step_peak_bytes(opt: Optimizer, params: list[Parameter]) -> int:
    """Peak bytes Python allocates during an optimizer's second step.

    The first step creates the state and the work arrays; from then on an
    in-place optimizer should allocate nothing the size of a parameter.
    """
    for p in params:
        p.grad[...] = 0.5
    opt.step(params)
    tracemalloc.start()
    try:
        opt.step(params)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak)


def cli_env(home: Path, data: Path | None = None) -> dict[str, str]:
    """The environment of a CLI run: no CHAINRULE_DATA unless given, an empty HOME.

    OpenBLAS is held to one thread: on a machine that is busy with other work
    its spinning worker threads make small matrix products tens of times
    slower, and these tests time-box real training runs.
    """
    env = dict(os.environ)
    env.pop("CHAINRULE_DATA", None)
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if data is not None:
        env["CHAINRULE_DATA"] = str(data)
    return env


def chainrule_cli(
    *args: str | Path,
    cwd: Path,
    data: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -m chainrule ARGS`` in ``cwd`` as a user runs it (no terminal)."""
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *map(str, args)],
        cwd=cwd,
        env=cli_env(home, data),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory without logging each request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # a short poll interval makes shutdown() quick
    serve = functools.partial(httpd.serve_forever, poll_interval=0.05)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def isolate_downloads(tmp_path: Path, monkeypatch: Any) -> Path:
    """No proxies (only 127.0.0.1 may be contacted), an empty HOME and cache, no
    ``CHAINRULE_DATA``; returns the chainrule cache folder."""
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    return home / ".cache" / "chainrule"


class FakeControl:
    """Stands in for OpenBLAS's thread control (``blas._control``), records changes."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def get(self) -> int:
        return self.threads

    def set(self, n: int) -> None:
        with self.lock:
            self.calls.append(n)
            self.threads = n


__all__: Sequence[str] = [
    "OPTIMIZER_SHAPES",
    "OPTIMIZER_STEPS",
    "OPTIMIZER_TOL",
    "FakeControl",
    "QuietHandler",
    "chainrule_cli",
    "cli_env",
    "isolate_downloads",
    "second_step_peak_bytes",
    "serve_directory",
    "step_with_torch",
]

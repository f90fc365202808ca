"""What the benchmark ran on: CPU, cores, BLAS libraries, versions, commit."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import chainrule

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas() -> str:
    """NumPy's BLAS: name, version and build configuration (and live threads)."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        text = f"{blas['name']} {blas['version']}"
        if "openblas configuration" in blas:
            text += f" ({blas['openblas configuration']})"
    except (TypeError, KeyError):  # NumPy < 1.26 has no mode="dicts"
        text = "unknown"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return text
    pools = [
        f"{p['internal_api']} {p['version']} {p['num_threads']} threads"
        for p in threadpool_info()
    ]
    return f"{text}; live pools: {', '.join(pools)}"


def torch_blas() -> str:
    """PyTorch's BLAS and convolution libraries, from its build configuration."""
    import torch

    lines = torch.__config__.show().splitlines()
    libraries = [
        line.strip(" -")
        for line in lines
        if "Math Kernel Library" in line or "MKL-DNN" in line or "OpenBLAS" in line
    ]
    capability = [line.strip(" -") for line in lines if "CPU capability" in line]
    return "; ".join(libraries + capability) or "unknown"


def _git(*args: str) -> str:
    """The output of ``git ARGS`` in the repository, stripped."""
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def git_commit() -> str:
    """``HEAD``'s short hash, with ``+changes`` when the tree differs from it."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def describe(threads: int) -> dict[str, Any]:
    """Everything a reader needs to place the numbers."""
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 1
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "threads": threads,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas(),
        "torch": torch.__version__,
        "torch_blas": torch_blas(),
        "torch_threads": torch.get_num_threads(),
        "chainrule": chainrule.__version__,
        "commit": git_commit(),
        "chainrule_source": str(Path(chainrule.__file__).resolve().parent),
    }


def format_machine(info: dict[str, Any]) -> list[str]:
    """The description as the lines printed above the tables."""
    load = ", ".join(f"{v:g}" for v in info["load_average"])
    source = info["chainrule_source"]
    where = f"at {info['commit']}"
    if Path(source) != ROOT / "src" / "chainrule":  # e.g. an older tree's src/
        where = f"imported from {source}"
    return [
        f"date: {info['date']}; chainrule {info['chainrule']} {where}",
        f"CPU: {info['cpu']}, {info['logical_cores']} logical cores "
        f"({info['usable_cores']} usable); load average at start {load}",
        f"threads: {info['threads']} (BLAS/OpenMP variables and "
        f"torch.set_num_threads = {info['torch_threads']})",
        f"Python {info['python']}; NumPy {info['numpy']} with {info['numpy_blas']}",
        f"PyTorch {info['torch']} with {info['torch_blas']}",
    ]

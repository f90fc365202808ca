"""Pin every BLAS and OpenMP pool to one thread count before NumPy loads.

OpenBLAS, MKL and OpenMP read their thread counts from the environment once,
when the library is loaded; so a script that wants ``--threads N`` sets the
variables and starts itself again, before anything imports NumPy or torch.
This module imports neither.
"""

from __future__ import annotations

import os
import sys

VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pin_threads(threads: int) -> None:
    """Make ``VARIABLES`` equal ``threads``, re-executing the script if they differ.

    Call it before importing NumPy: after the re-exec the variables match and
    the call returns at once.
    """
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    if all(os.environ.get(name) == str(threads) for name in VARIABLES):
        return
    if "numpy" in sys.modules:
        raise RuntimeError("pin_threads must run before NumPy is imported")
    env = dict(os.environ)
    env.update(dict.fromkeys(VARIABLES, str(threads)))
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

"""Independent chunks of work spread over the cores, each product on one thread.

NumPy runs everything but its matrix products on one core, and OpenBLAS splits
each product across all its threads. For a layer that works through a batch in
chunks (``Conv2D`` in inference: ``im2col``, a product, a copy, per chunk) that
leaves the other cores idle through the copies, and on a 2-core virtual machine
OpenBLAS's second thread made the same inference pass take 150 µs a sample in
some runs and 250-330 µs in others. :func:`map_chunks` instead gives whole
chunks to a pool of as many Python threads as OpenBLAS has, with OpenBLAS held
to one thread meanwhile (:func:`chainrule.blas.one_thread`): NumPy releases the
interpreter lock in its copies, ufuncs and products, so the chunks run side by
side, and each chunk's result is the same as on its own.

With one BLAS thread, a BLAS whose threads chainrule cannot hold (MKL,
Accelerate), the CuPy backend, or a single chunk, it is a plain loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from chainrule import backend, blas

T = TypeVar("T")
R = TypeVar("R")

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
#: ``inside`` is true in the pools' own threads
_worker = threading.local()


def _forget_pools() -> None:
    """In a forked child: the parent's pool threads do not exist there."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_pools)


def workers() -> int:
    """How many chunks :func:`map_chunks` runs at once here."""
    if (
        backend.backend_name() != "numpy"
        or getattr(_worker, "inside", False)  # a chunk's own work: no nesting
        or not blas.single_thread_available()
    ):
        return 1
    return blas.threads()


def _pool(size: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = ThreadPoolExecutor(
                size, thread_name_prefix="chainrule", initializer=_mark_worker
            )
            _pools[size] = pool
        return pool


def _mark_worker() -> None:
    _worker.inside = True


def map_chunks(fn: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
    """``[fn(c) for c in chunks]``, run side by side when that can help.

    ``fn`` must touch only what its own chunk owns (its slice of an output,
    say). The results come back in the order of ``chunks``. Every chunk has
    ended when this returns or raises; if chunks raised, the exception of the
    earliest of them (in the order of ``chunks``) is raised here. Called from
    inside a chunk, or once the interpreter is shutting down, it is a plain
    loop.
    """
    size = min(workers(), len(chunks))
    if size <= 1:
        return [fn(chunk) for chunk in chunks]
    with blas.one_thread():
        try:
            futures = [_pool(size).submit(fn, chunk) for chunk in chunks]
        except RuntimeError:  # no new threads at interpreter shutdown
            return [fn(chunk) for chunk in chunks]
        wait(futures)  # all of them, even after one has failed
    return [future.result() for future in futures]


__all__ = ["map_chunks", "workers"]

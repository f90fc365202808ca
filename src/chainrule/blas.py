"""Matrix products, with the small ones kept on one BLAS thread.

OpenBLAS splits every product above about 2.6·10⁵ multiply-adds (``M·N·K``)
across all its threads. For a small network that costs more than it saves:
handing a second thread its half of the tutorial's ``32×784 @ 784×64`` and
waiting for it takes longer than the work. Measured on a 2-core machine with
OpenBLAS on 2 threads, the tutorial's training step (batch 32) took 190 µs in
some runs and 320-430 µs in others; kept on one thread it took 190 µs every time
(batch 128: 380-740 µs against 450 µs). The big products of a wide MLP or a
CNN gain from the second core and keep it.

So :func:`matmul` runs a product of fewer than :data:`SMALL_PRODUCT`
multiply-adds with OpenBLAS held to one thread, through OpenBLAS's own
``openblas_set_num_threads`` in the library NumPy loaded (beside NumPy in
its wheels, else among the libraries the process has mapped), and gives the
thread count back afterwards. With
another BLAS (MKL, Accelerate) or CuPy arrays it is plain ``a @ b``.

Concurrent calls from several Python threads are safe: the count is lowered
while any small product is running and restored when the last one ends; a
large product started meanwhile by another thread runs on one thread, slower,
never wrong.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from chainrule.types import Array

#: products of fewer multiply-adds (``M·N·K``) than this run on one thread
SMALL_PRODUCT = 10_000_000

_SYMBOL_PREFIXES = ("scipy_", "")
_SYMBOL_SUFFIXES = ("64_", "")


class _ThreadControl:
    """``get``/``set`` of OpenBLAS's thread count, or ``None`` where absent."""

    def __init__(self) -> None:
        self.get: Any = None
        self.set: Any = None
        for path in _openblas_paths():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in _SYMBOL_PREFIXES:
                for suffix in _SYMBOL_SUFFIXES:
                    if self._bind(lib, prefix, suffix):
                        return

    def _bind(self, lib: ctypes.CDLL, prefix: str, suffix: str) -> bool:
        get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
        put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
        if get is None or put is None:
            return False
        get.restype, get.argtypes = ctypes.c_int, []
        put.restype, put.argtypes = None, [ctypes.c_int]
        self.get, self.set = get, put
        return True


def _openblas_paths() -> list[str]:
    """Files of OpenBLAS libraries, NumPy's own first.

    NumPy's wheels keep theirs beside the package; a NumPy built against a
    system OpenBLAS is found among the libraries this process has mapped
    (Linux). Another package's OpenBLAS comes later, and would only make
    ``matmul`` hold the wrong library's threads: no gain, no harm.
    """
    paths: list[str] = []
    numpy_dir = os.path.dirname(np.__file__)
    for folder in ("../numpy.libs", ".libs", ".dylibs"):
        paths += sorted(glob.glob(os.path.join(numpy_dir, folder, "*openblas*")))
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if "openblas" in os.path.basename(path).lower():
                    paths.append(path)
    except OSError:  # not Linux
        pass
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))


_control: _ThreadControl | None = None
_lock = threading.Lock()
_running = 0  # small products in flight
_saved = 1  # the thread count to give back when the last one ends


def _after_fork_in_child() -> None:
    """A fork inside another thread's :func:`one_thread` block leaves the child
    with OpenBLAS held to one thread and, perhaps, the lock held: give both back."""
    global _lock, _running
    _lock = threading.Lock()
    if _running:
        _running = 0
        if _control is not None and _control.set is not None and _saved > 1:
            _control.set(_saved)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _thread_control() -> _ThreadControl:
    global _control
    if _control is None:
        _control = _ThreadControl()
    return _control


def single_thread_available() -> bool:
    """Whether :func:`matmul` can hold the BLAS to one thread here."""
    return _thread_control().set is not None


def threads() -> int:
    """OpenBLAS's thread count outside :func:`one_thread` (1 where unknown)."""
    control = _thread_control()
    if control.get is None:
        return 1
    with _lock:
        return max(1, _saved if _running else int(control.get()))


@contextmanager
def one_thread() -> Iterator[None]:
    """Hold OpenBLAS to one thread for the block (nothing where it is absent).

    Blocks may overlap, in one Python thread or several: the count is lowered
    when the first begins and given back when the last one ends.
    """
    control = _thread_control()
    if control.set is None:
        yield
        return
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = control.get()
            if _saved > 1:
                control.set(1)
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _saved > 1:
                control.set(_saved)


def matmul(a: Array, b: Array) -> Array:
    """``a @ b`` for 2-D arrays; one BLAS thread when it is a small product."""
    if (
        not isinstance(a, np.ndarray)
        or a.ndim != 2
        or b.ndim != 2
        or a.shape[0] * a.shape[1] * b.shape[1] >= SMALL_PRODUCT
    ):
        return a @ b
    with one_thread():
        return a @ b


__all__ = [
    "SMALL_PRODUCT",
    "matmul",
    "one_thread",
    "single_thread_available",
    "threads",
]

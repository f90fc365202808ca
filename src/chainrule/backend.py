"""The one place that owns the array module and the floating-point policy.

Every layer asks :func:`xp` for its array module instead of importing NumPy for
array math, so a GPU array module with NumPy's interface (CuPy) can be plugged in
with :func:`set_backend` and the same layer code runs there.

Training runs in float32 (:func:`default_dtype`); gradient checks switch to
float64 with :func:`set_default_dtype` or the :func:`precision` context manager.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from chainrule.types import Array, DTypeLike

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_xp: ModuleType = np
_dtype: np.dtype[Any] = np.dtype(np.float32)


def xp() -> ModuleType:
    """Return the active array module (``numpy`` unless another was chosen)."""
    return _xp


def set_backend(name: str) -> None:
    """Choose the array module by name: ``"numpy"`` or ``"cupy"``."""
    global _xp
    if name not in ("numpy", "cupy"):
        raise ValueError(f"backend must be 'numpy' or 'cupy', got {name!r}")
    if name == "numpy":
        _xp = np
        return
    try:
        _xp = importlib.import_module("cupy")
    except ImportError as exc:
        raise ImportError(
            "backend 'cupy' needs CuPy: pip install cupy-cuda12x (with an NVIDIA GPU)"
        ) from exc


def backend_name() -> str:
    """Name of the active array module."""
    return str(_xp.__name__)


def as_float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """Validate ``dtype`` as float32 or float64 and return it as a ``np.dtype``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt.name}")
    return dt


def default_dtype() -> np.dtype[Any]:
    """The floating-point dtype new parameters and inputs are created in."""
    return _dtype


def set_default_dtype(dtype: DTypeLike) -> None:
    """Set the default floating-point dtype (float32 or float64)."""
    global _dtype
    _dtype = as_float_dtype(dtype)


@contextlib.contextmanager
def precision(dtype: DTypeLike) -> Iterator[None]:
    """Temporarily change the default dtype: ``with precision("float64"): ...``."""
    global _dtype
    previous = _dtype
    _dtype = as_float_dtype(dtype)
    try:
        yield
    finally:
        _dtype = previous


def to_numpy(x: Any) -> np.ndarray[Any, Any]:
    """Return ``x`` as a NumPy array (copying from the GPU when needed)."""
    if isinstance(x, np.ndarray):
        return x
    get = getattr(x, "get", None)
    if callable(get):
        return np.asarray(get())
    return np.asarray(x)


def asarray(x: Any, dtype: DTypeLike | None = None) -> Array:
    """Move ``x`` to the active array module, cast to ``dtype`` (default dtype)."""
    return _xp.asarray(x, dtype=_dtype if dtype is None else dtype)


def may_share_memory(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` might be views of one buffer (``False`` proves not).

    A bounds check, not an exact test; an array of the active module never
    shares memory with one of another (a host array and its GPU copy).
    """
    if not (isinstance(a, _xp.ndarray) and isinstance(b, _xp.ndarray)):
        return False
    return bool(_xp.may_share_memory(a, b))


__all__ = [
    "as_float_dtype",
    "asarray",
    "backend_name",
    "default_dtype",
    "may_share_memory",
    "precision",
    "set_backend",
    "set_default_dtype",
    "to_numpy",
    "xp",
]

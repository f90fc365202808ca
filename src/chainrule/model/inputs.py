"""Checks on what users pass to ``fit``/``evaluate``/``predict``, and batching."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.types import Shape


def as_input_array(x: object, name: str = "x") -> np.ndarray[Any, Any]:
    """``x`` as a NumPy array of numbers (uint8 images or floats), batch first."""
    try:
        x = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of numbers, got {type(x).__name__}"
        ) from exc
    if x.dtype.kind not in "uif":
        raise TypeError(
            f"{name} must hold integers or floats (e.g. uint8 images), "
            f"got dtype {x.dtype}"
        )
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch (N, ...), got shape {x.shape}"
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def as_target_array(y: object, n: int, name: str = "y") -> np.ndarray[Any, Any]:
    """Targets as a NumPy array with ``n`` rows."""
    y = as_input_array(y, name)
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} rows but x has {n}; they must match")
    return y


def check_input_shape(x: np.ndarray[Any, Any], expected: Shape, owner: str) -> None:
    if tuple(x.shape[1:]) != tuple(expected):
        want = ", ".join(["N", *map(str, expected)])
        raise ValueError(f"{owner} expected input of shape ({want}), got {x.shape}")


def batches(
    n: int, batch_size: int, order: np.ndarray[Any, Any] | None
) -> Iterator[Any]:
    """Index batches: slices in order, or chunks of the permutation ``order``."""
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield slice(start, stop) if order is None else order[start:stop]


__all__ = [
    "as_input_array",
    "as_target_array",
    "batches",
    "check_input_shape",
]

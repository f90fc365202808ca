"""A trainable tensor: its value and the gradient accumulated into it."""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.types import Array, DTypeLike


class Parameter:
    """A pair ``(data, grad)``; backward passes add into ``grad`` with ``+=``.

    Optimizers see only parameters, never layers: they read ``grad`` and update
    ``data`` in place, so every reference to the array stays valid.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data: Array, name: str = "") -> None:
        self.data = data
        self.grad = backend.xp().zeros_like(data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    def zero_grad(self) -> None:
        """Set the accumulated gradient to zero (in place)."""
        self.grad[...] = 0

    def astype(self, dtype: DTypeLike) -> None:
        """Convert value and gradient to ``dtype`` in place of this object."""
        self.data = self.data.astype(dtype)
        self.grad = self.grad.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter({self.name or '?'}, shape={self.shape}, dtype={self.dtype})"


__all__ = ["Parameter"]

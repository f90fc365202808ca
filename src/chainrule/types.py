"""Type aliases used across chainrule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

#: An array of the active backend (a NumPy ``ndarray``, or a CuPy array on a GPU).
Array = npt.NDArray[Any]
#: A shape without the batch axis, e.g. ``(784,)`` or ``(1, 28, 28)``.
Shape = tuple[int, ...]
#: ``dx = backward(dy)``: the closure a layer's forward pass returns. It returns
#: ``None`` only when its forward ran with ``Layer.input_grad`` off (nothing
#: needed ``dx``: the layer's input is the data).
Backward = Callable[[Array], "Array | None"]
#: Anything NumPy accepts as a dtype.
DTypeLike = npt.DTypeLike

__all__ = ["Array", "Backward", "DTypeLike", "Shape", "np"]

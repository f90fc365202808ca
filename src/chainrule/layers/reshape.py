"""Layers that only rearrange or rescale: Flatten and Rescaling."""

from __future__ import annotations

import math
from typing import Any

from chainrule import validate
from chainrule.layers.base import Layer, no_backward
from chainrule.types import Array, Backward, Shape


class Flatten(Layer):
    """Flatten everything but the batch axis.

    Shape: input ``(N, d1, d2, ...)``, output ``(N, d1·d2·...)``.

    Backward: reshape ``dy`` back to the input's shape (a view, no copy).
    """

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        shape = x.shape
        y = x.reshape(shape[0], math.prod(shape[1:]))  # (N, d1, ...) -> (N, d1*...)
        if not training:
            return y, no_backward

        def backward(dy: Array) -> Array:
            return dy.reshape(shape)  # (N, d1*d2*...) -> (N, d1, d2, ...)

        return y, backward


class Rescaling(Layer):
    """``y = x·scale + offset``: e.g. ``Rescaling(1/255)`` maps uint8 pixels to [0, 1].

    Keeping the input normalisation inside the model means a saved model takes
    raw images, exactly as its training data were.

    Shape: input ``(N, *)``, output the same.

    Backward: ``dx = scale·dy``.
    """

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = validate.real("Rescaling", "scale", scale)
        self.offset = validate.real("Rescaling", "offset", offset)

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        y = x * x.dtype.type(self.scale)
        if self.offset:
            y += x.dtype.type(self.offset)
        if not training:
            return y, no_backward
        scale = x.dtype.type(self.scale)

        def backward(dy: Array) -> Array:
            return dy * scale

        return y, backward

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset}


__all__ = ["Flatten", "Rescaling"]

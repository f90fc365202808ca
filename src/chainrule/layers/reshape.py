"""Layers that only rearrange or rescale: Flatten, Reshape and Rescaling."""

from __future__ import annotations

import math
import numbers
from typing import Any

from chainrule import backend, validate
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.notation import Step, Symbols
from chainrule.types import Array, Backward, Shape


class Flatten(Layer):
    """Flatten everything but the batch axis.

    Shape: input ``(N, d1, d2, ...)``, output ``(N, d1·d2·...)``.

    Backward: reshape ``dy`` back to the input's shape (a view, no copy).
    """

    trace_letter = "f"

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

    def describe(self, s: Symbols) -> Step:
        return Step(f"{s.y} = flatten({s.x})", f"reshape({s.dy}) to the shape of {s.x}")


class Reshape(Layer):
    """Give each sample a new shape with the same number of values.

    ``Reshape((1, 28, 28))`` turns a batch of grey ``(N, 28, 28)`` images into
    the ``(N, C, H, W)`` layout that :class:`~chainrule.layers.Conv2D` takes.
    One entry may be ``-1``: it is worked out from the others.

    Shape: input ``(N, *in)``, output ``(N, *target_shape)``.

    Backward: reshape ``dy`` back to the input's shape.
    """

    trace_letter = "r"

    def __init__(self, target_shape: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        if (
            not isinstance(target_shape, (tuple, list))
            or not target_shape
            or not all(
                isinstance(d, numbers.Integral)
                and not isinstance(d, bool)
                and (d > 0 or d == -1)
                for d in target_shape
            )
            or list(target_shape).count(-1) > 1
        ):
            raise ValueError(
                "Reshape: target_shape must be a non-empty tuple of positive "
                f"integers with at most one -1, got {target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(
                    f"{self!r} cannot reshape {input_shape} ({size} values per "
                    f"sample): {size} is not a multiple of {known}"
                )
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(
                f"{self!r} cannot reshape {input_shape} ({size} values per sample) "
                f"to {self.target_shape} ({known} values)"
            )
        return self.target_shape

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        shape = x.shape
        y = x.reshape(shape[0], *(self.output_shape or ()))
        if not training:
            return y, no_backward

        def backward(dy: Array) -> Array:
            return dy.reshape(shape)

        return y, backward

    def describe(self, s: Symbols) -> Step:
        shape = ", ".join(map(str, self.output_shape or self.target_shape))
        return Step(
            f"{s.y} = reshape({s.x}) to (N, {shape})",
            f"reshape({s.dy}) to the shape of {s.x}",
        )

    def get_config(self) -> dict[str, Any]:
        return {"target_shape": list(self.target_shape)}


class Rescaling(Layer):
    """``y = x·scale + offset``: e.g. ``Rescaling(1/255)`` maps uint8 pixels to [0, 1].

    Keeping the input normalisation inside the model means a saved model takes
    raw images, exactly as its training data were.

    Shape: input ``(N, *)``, output the same.

    Backward: ``dx = scale·dy``.
    """

    trace_letter = "s"

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = validate.real("Rescaling", "scale", scale)
        self.offset = validate.real("Rescaling", "offset", offset)

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        out = x if not training and self.overwrite_input else None
        y = backend.xp().multiply(x, x.dtype.type(self.scale), out=out)
        if self.offset:
            y += x.dtype.type(self.offset)
        if not training:
            return y, no_backward
        scale = x.dtype.type(self.scale)

        def backward(dy: Array) -> Array:
            return dy * scale

        return y, backward

    def describe(self, s: Symbols) -> Step:
        inverse = 1 / self.scale if self.scale else 0.0
        if self.scale and inverse == round(inverse):  # 1/255: "x / 255"
            forward, backward = f"{s.x} / {inverse:g}", f"{s.dy} / {inverse:g}"
        else:
            forward, backward = f"{self.scale:g} · {s.x}", f"{self.scale:g} · {s.dy}"
        if self.offset:
            forward += f" + {self.offset:g}"
        return Step(f"{s.y} = {forward}", backward)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset}


__all__ = ["Flatten", "Rescaling", "Reshape"]

"""Elementwise activations and softmax; each backward is one line of calculus."""

from __future__ import annotations

from typing import Any

from chainrule import backend, ops, validate
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.notation import Step, Symbols
from chainrule.types import Array, Backward


class Identity(Layer):
    """``y = x``; backward ``dx = dy``.

    Shape: input ``(N, *)``, output the same.
    """

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        def backward(dy: Array) -> Array:
            return dy

        return x, backward if training else no_backward

    def describe(self, s: Symbols) -> Step:
        return Step(f"{s.y} = {s.x}", s.dy)


class Sigmoid(Layer):
    """``a = σ(z) = 1 / (1 + e^(−z))``, stable for every input (no overflow).

    Shape: input ``(N, *)``, output the same.

    Backward: ``σ'(z) = σ(z)(1 − σ(z)) = a(1 − a)``, so ``dz = da ⊙ a(1 − a)``
    (the tutorial's ``δ2 = (δ3·W3ᵀ) ⊙ a2(1 − a2)``).
    """

    trace_letter = "a"

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        a = ops.sigmoid(x)
        if not training:
            return a, no_backward

        def backward(da: Array) -> Array:
            slope = 1 - a  # σ' = a(1 − a), built in one array
            slope *= a
            slope *= da
            return slope

        return a, backward

    def describe(self, s: Symbols) -> Step:
        return Step(f"{s.y} = σ({s.x})", f"{s.dy} ⊙ {s.y}(1 − {s.y})")


class Tanh(Layer):
    """``y = tanh(x)``.

    Shape: input ``(N, *)``, output the same.

    Backward: ``tanh'(x) = 1 − tanh²(x)``, so ``dx = dy ⊙ (1 − y²)``.
    """

    trace_letter = "a"

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        y = backend.xp().tanh(x)
        if not training:
            return y, no_backward

        def backward(dy: Array) -> Array:
            return dy * (1 - y * y)

        return y, backward

    def describe(self, s: Symbols) -> Step:
        return Step(f"{s.y} = tanh({s.x})", f"{s.dy} ⊙ (1 − {s.y}²)")


class ReLU(Layer):
    """``y = max(x, 0)``.

    Shape: input ``(N, *)``, output the same.

    Backward: the derivative is 1 where ``x > 0`` and 0 elsewhere (0 at the kink
    ``x = 0`` by convention, as in PyTorch), so ``dx = dy ⊙ [x > 0]``.
    """

    trace_letter = "a"

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        xp = backend.xp()
        if not training:
            return xp.maximum(
                x, 0, out=x if self.overwrite_input else None
            ), no_backward
        y = xp.maximum(x, 0)
        mask = x > 0

        def backward(dy: Array) -> Array:
            return dy * mask

        return y, backward

    def describe(self, s: Symbols) -> Step:
        return Step(f"{s.y} = max({s.x}, 0)", f"{s.dy} ⊙ [{s.x} > 0]")


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, ``alpha·x`` otherwise.

    Shape: input ``(N, *)``, output the same.

    Backward: ``dx = dy`` where ``x > 0``, ``alpha·dy`` elsewhere.
    """

    trace_letter = "a"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = validate.real("LeakyReLU", "alpha", alpha, low=0.0)

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        xp = backend.xp()
        slope = xp.where(x > 0, 1, self.alpha).astype(x.dtype)
        y = x * slope
        if not training:
            return y, no_backward

        def backward(dy: Array) -> Array:
            return dy * slope

        return y, backward

    def describe(self, s: Symbols) -> Step:
        return Step(
            f"{s.y} = max({s.x}, {self.alpha:g}·{s.x})",
            f"{s.dy} ⊙ ([{s.x} > 0] + {self.alpha:g}·[{s.x} ≤ 0])",
        )

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Softmax(Layer):
    """``y_i = e^(x_i) / Σ_j e^(x_j)`` over the last axis, computed stably.

    Shape: input ``(N, *, C)``, output the same.

    Backward: the Jacobian is ``∂y_i/∂x_j = y_i(δ_ij − y_j)``, so
    ``dx = y ⊙ (dy − Σ_j dy_j y_j)``. For training a classifier prefer
    :class:`~chainrule.losses.CrossEntropy` on logits, which fuses the two.
    """

    trace_letter = "a"

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        y = ops.softmax(x, axis=-1)
        if not training:
            return y, no_backward

        def backward(dy: Array) -> Array:
            return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

        return y, backward

    def describe(self, s: Symbols) -> Step:
        return Step(f"{s.y} = softmax({s.x})", f"{s.y} ⊙ ({s.dy} − Σⱼ {s.dy} ⊙ {s.y})")


__all__ = ["Identity", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh"]

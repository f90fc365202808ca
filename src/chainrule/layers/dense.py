"""Fully connected layer: ``y = x·W + b``."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.blas import matmul
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.init import check_initializer, weight_and_bias
from chainrule.layers.notation import Step, Symbols
from chainrule.parameter import Parameter
from chainrule.types import Array, Backward, Shape


class Dense(Layer):
    """Fully connected layer ``y = x·W + b``.

    Shape:
        - input: ``(N, in_features)``
        - output: ``(N, units)``
        - ``W``: ``(in_features, units)``, ``b``: ``(units,)``

    Backward, with ``δ = dL/dy`` of shape ``(N, units)``:
        - ``dL/dW = xᵀ·δ``  (the tutorial's ``dC/dW3 = a2ᵀ·(a3 − y)``)
        - ``dL/db = Σ_n δ``
        - ``dL/dx = δ·Wᵀ``  (the error sent back to the previous layer)
    """

    trace_letter = "z"
    starts_level = True

    def __init__(
        self,
        units: int,
        use_bias: bool = True,
        init: str = "glorot",
        bias_init: str = "zeros",
        max_norm: float | None = None,
    ) -> None:
        super().__init__()
        self.units = validate.integer("Dense", "units", units)
        self.use_bias = validate.boolean("Dense", "use_bias", use_bias)
        self.init = check_initializer(init, f"Dense(units={units})")
        self.bias_init = check_initializer(
            bias_init, f"Dense(units={units})", "bias_init"
        )
        self.max_norm = (
            None
            if max_norm is None
            else validate.real("Dense", "max_norm", max_norm, low=0.0, strict=True)
        )
        self.W: Parameter | None = None
        self.b: Parameter | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            shape = ", ".join(["N", *map(str, input_shape)])
            raise ValueError(
                f"{self!r} expected input of shape (N, features), got ({shape}); "
                "add Flatten() before it"
            )
        return (self.units,)

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"W": (input_shape[0], self.units)}
        if self.use_bias:
            shapes["b"] = (self.units,)
        return shapes

    def _create_parameters(self, input_shape: Shape, rng: np.random.Generator) -> None:
        self.W, self.b = weight_and_bias(
            self.init,
            self.bias_init,
            self.parameter_shapes(input_shape),
            fan_in=input_shape[0],
            fan_out=self.units,
            rng=rng,
        )

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        W, b = self.W, self.b
        if W is None:
            raise RuntimeError(f"{self!r} is not built: call build(input_shape) first")
        y = matmul(x, W.data)  # x @ W (on one BLAS thread when small)
        if b is not None:
            y += b.data
        if not training:
            return y, no_backward
        need_dx = self.input_grad

        def backward(dy: Array) -> Array | None:
            W.grad += matmul(x.T, dy)  # (F, N) @ (N, U) -> (F, U)
            if b is not None:
                b.grad += dy.sum(axis=0)
            if not need_dx:  # the input is the data: no one needs dL/dx
                return None
            return matmul(dy, W.data.T)  # (N, U) @ (U, F) -> (N, F)

        return y, backward

    def apply_constraints(self) -> None:
        """Max-norm: rescale each unit's incoming weights to norm <= ``max_norm``.

        The constraint of Srivastava et al. (2014), applied after every update:
        column ``j`` of ``W`` (the weights into unit ``j``) becomes
        ``W[:, j] · min(1, c / ‖W[:, j]‖)``.
        """
        if self.max_norm is None or self.W is None:
            return
        xp = backend.xp()
        W = self.W.data
        norms = xp.sqrt((W * W).sum(axis=0))  # (F, U) -> (U,)
        W *= xp.minimum(1, self.max_norm / xp.maximum(norms, 1e-12)).astype(W.dtype)

    def describe(self, s: Symbols) -> Step:
        W = s.param("W")
        params = {"W": (W, f"{s.x}ᵀ · {s.dy}")}
        forward = f"{s.y} = {s.x} · {W}"
        if self.use_bias:
            params["b"] = (s.param("b"), f"Σₙ {s.dy}")
            forward += f" + {s.param('b')}"
        return Step(forward, f"{s.dy} · {W}ᵀ", params)

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        params = [("W", self.W), ("b", self.b)]
        return [(n, p) for n, p in params if p is not None]

    def get_config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "use_bias": self.use_bias,
            "init": self.init,
            "bias_init": self.bias_init,
            "max_norm": self.max_norm,
        }


__all__ = ["Dense"]

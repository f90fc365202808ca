"""Batch normalisation (Ioffe & Szegedy 2015), over features or channels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.notation import Step, Symbols
from chainrule.parameter import Parameter
from chainrule.types import Array, Backward, Shape


class BatchNorm(Layer):
    """Normalise axis 1 with batch statistics, then scale and shift it.

    Axis 1 is the features of an ``(N, F)`` input (after Dense) or the channels
    of an ``(N, C, H, W)`` image batch (after Conv2D, statistics over ``N, H,
    W``) or of ``(N, C, L)``; PyTorch's ``BatchNorm1d``/``BatchNorm2d``.

    Training: with ``μ`` and ``σ²`` the mean and (biased) variance of each
    feature over the batch (and pixels),
    ``x̂ = (x − μ)/√(σ² + ε)`` and ``y = γ·x̂ + β``; the running statistics move
    toward the batch's: ``running_mean ← (1 − m)·running_mean + m·μ`` and
    ``running_var ← (1 − m)·running_var + m·σ²·M/(M − 1)`` (the unbiased
    variance, ``M`` values per feature), with ``m = momentum``.
    Inference: the same with ``running_mean`` and ``running_var`` in place of
    ``μ`` and ``σ²``.

    ``γ`` (``gamma``, ones) and ``β`` (``beta``, zeros) are parameters;
    ``running_mean`` (zeros) and ``running_var`` (ones) are buffers: saved in
    model files, never seen by the optimizer.

    Backward (training), with ``δ = dL/dy`` and means over the ``M`` values of
    each feature:
        - ``dL/dγ = Σ δ·x̂``, ``dL/dβ = Σ δ``
        - ``dL/dx̂ = δ·γ``
        - ``dL/dx = (dL/dx̂ − mean(dL/dx̂) − x̂·mean(dL/dx̂·x̂)) / √(σ² + ε)``:
          the two subtracted terms are the paths through ``μ`` and ``σ²``, which
          depend on every sample of the batch.
    In inference ``μ`` and ``σ²`` are constants, so ``dL/dx = δ·γ/√(var + ε)``.
    """

    trace_letter = "n"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = validate.real("BatchNorm", "momentum", momentum, low=0.0)
        if self.momentum > 1:
            raise ValueError(
                f"BatchNorm: invalid momentum {self.momentum!r} (must be in [0, 1])"
            )
        self.eps = validate.real("BatchNorm", "eps", eps, low=0.0, strict=True)
        self.gamma: Parameter | None = None
        self.beta: Parameter | None = None
        self.running_mean: Array | None = None
        self.running_var: Array | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) not in (1, 2, 3):
            got = ", ".join(["N", *map(str, input_shape)])
            raise ValueError(
                f"{self!r} expected (N, features), (N, channels, length) or "
                f"(N, channels, height, width), got ({got})"
            )
        return input_shape

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"gamma": (input_shape[0],), "beta": (input_shape[0],)}

    def buffer_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return {"running_mean": (input_shape[0],), "running_var": (input_shape[0],)}

    def _create_parameters(self, input_shape: Shape, rng: np.random.Generator) -> None:
        features = input_shape[0]
        self.gamma = Parameter(backend.asarray(np.ones(features)), "gamma")
        self.beta = Parameter(backend.asarray(np.zeros(features)), "beta")
        self.running_mean = backend.asarray(np.zeros(features))
        self.running_var = backend.asarray(np.ones(features))

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        gamma, beta = self.gamma, self.beta
        rm, rv = self.running_mean, self.running_var
        if gamma is None or beta is None or rm is None or rv is None:
            raise RuntimeError(f"{self!r} is not built: call build(input_shape) first")
        xp = backend.xp()
        shape = x.shape
        n, features = shape[0], shape[1]
        per_sample = math.prod(shape[2:])  # values per sample and feature
        x3 = x.reshape(n, features, per_sample)
        eps = x.dtype.type(self.eps)
        if not training:
            inv = 1 / xp.sqrt(rv + eps)
            scale = gamma.data * inv
            # in place only where that keeps the dtype the product would have
            same = xp.result_type(x3, scale) == x3.dtype
            out = x3 if self.overwrite_input and same else None
            y = xp.multiply(x3, scale[:, None], out=out)
            y += (beta.data - rm * scale)[:, None]
            return y.reshape(shape), no_backward
        count = n * per_sample  # M: values per feature in the batch
        if count < 2:
            raise ValueError(
                f"{self!r} needs more than one value per feature to compute batch "
                f"statistics in training, got input of shape {tuple(shape)}"
            )
        mean = xp.einsum("nfp->f", x3) / count
        centred = x3 - mean[:, None]  # x − μ
        var = xp.einsum("nfp,nfp->f", centred, centred) / count  # σ²
        inv = 1 / xp.sqrt(var + eps)  # 1/√(σ² + ε)
        scale = gamma.data * inv
        y = centred * scale[:, None]  # γ·x̂
        y += beta.data[:, None]
        m = x.dtype.type(self.momentum)
        rm *= 1 - m
        rm += m * mean
        rv *= 1 - m
        rv += (m * count / (count - 1)) * var

        def backward(dy: Array) -> Array:
            dy3 = dy.reshape(centred.shape)
            sum_dy = xp.einsum("nfp->f", dy3)  # Σδ
            sum_dy_centred = xp.einsum("nfp,nfp->f", dy3, centred)  # Σδ·(x − μ)
            gamma.grad += sum_dy_centred * inv  # Σδ·x̂
            beta.grad += sum_dy
            # dx = γ/√(σ²+ε) · (δ − mean(δ) − x̂·mean(δ·x̂)), with x̂ = (x − μ)·inv
            dx = dy3 * scale[:, None]
            dx += centred * (-scale * inv * inv * sum_dy_centred / count)[:, None]
            dx += (-scale * sum_dy / count)[:, None]
            return dx.reshape(shape)

        return y.reshape(shape), backward

    def describe(self, s: Symbols) -> Step:
        g, b = s.param("γ"), s.param("β")
        return Step(
            f"{s.y} = {g} ⊙ x̂ + {b},  x̂ = ({s.x} − μ) / √(σ² + ε)  (batch μ, σ²)",
            f"(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε),  g = {g} ⊙ {s.dy}",
            {"gamma": (g, f"Σ {s.dy} ⊙ x̂"), "beta": (b, f"Σ {s.dy}")},
        )

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        params = [("gamma", self.gamma), ("beta", self.beta)]
        return [(n, p) for n, p in params if p is not None]

    def named_buffers(self) -> list[tuple[str, Array]]:
        buffers = [
            ("running_mean", self.running_mean),
            ("running_var", self.running_var),
        ]
        return [(n, b) for n, b in buffers if b is not None]

    def check_buffers(self) -> None:
        if self.running_var is not None and bool((self.running_var < 0).any()):
            raise ValueError("running_var has negative values")

    def get_config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "eps": self.eps}


__all__ = ["BatchNorm"]

"""Batch normalisation (Ioffe & Szegedy 2015), over features or channels."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.layers.base import Layer, no_backward
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
        axes = (0, *range(2, x.ndim))  # every axis but the features'
        shape = (1, -1) + (1,) * (x.ndim - 2)  # broadcasts a (F,) vector
        if not training:
            inv = 1 / backend.xp().sqrt(rv + x.dtype.type(self.eps))
            scale = (gamma.data * inv).reshape(shape)
            return x * scale + (beta.data - rm * gamma.data * inv).reshape(shape), (
                no_backward
            )
        count = x.size // x.shape[1]
        if count < 2:
            raise ValueError(
                f"{self!r} needs more than one value per feature to compute batch "
                f"statistics in training, got input of shape {tuple(x.shape)}"
            )
        mean = x.mean(axis=axes)
        centred = x - mean.reshape(shape)
        var = (centred * centred).mean(axis=axes)
        inv = 1 / backend.xp().sqrt(var + x.dtype.type(self.eps))
        xhat = centred
        xhat *= inv.reshape(shape)
        y = xhat * gamma.data.reshape(shape) + beta.data.reshape(shape)
        m = x.dtype.type(self.momentum)
        rm *= 1 - m
        rm += m * mean
        rv *= 1 - m
        rv += (m * count / (count - 1)) * var

        def backward(dy: Array) -> Array:
            gamma.grad += (dy * xhat).sum(axis=axes)
            beta.grad += dy.sum(axis=axes)
            dxhat = dy * gamma.data.reshape(shape)
            mean_dxhat = dxhat.mean(axis=axes).reshape(shape)
            mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes).reshape(shape)
            dx = dxhat - mean_dxhat
            dx -= xhat * mean_dxhat_xhat
            dx *= inv.reshape(shape)
            return dx

        return y, backward

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

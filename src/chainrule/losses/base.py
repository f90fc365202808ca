"""The loss contract: ``value, dlogits = loss(logits, y)``.

The gradient already holds the batch reduction (e.g. the ``1/N`` of a mean), so
``dlogits`` is exactly what the last layer's backward receives.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from chainrule import backend
from chainrule.config import format_call, from_config
from chainrule.types import Array

REDUCTIONS = ("mean", "batchmean", "sum")


class Loss:
    """Base class of losses.

    ``reduction`` says how per-element losses become one number:
    ``"mean"`` over every element, ``"batchmean"`` summed over each sample's
    elements then averaged over the batch, ``"sum"`` over everything. For a
    per-sample loss such as cross-entropy, ``mean`` and ``batchmean`` agree.

    :meth:`activation` maps the model's raw outputs (logits) to the predictions
    :meth:`Sequential.predict` returns (softmax probabilities, sigmoid, identity).
    """

    registry: ClassVar[dict[str, type[Loss]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Loss.registry[cls.__name__] = cls

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of "
                f"{', '.join(REDUCTIONS)}, got {reduction!r}"
            )
        self.reduction = reduction

    def __call__(self, logits: Array, y: Array) -> tuple[float, Array]:
        """Return the reduced loss and ``dL/dlogits``."""
        raise NotImplementedError

    def check_targets(self, y: Array, output_shape: tuple[int, ...]) -> None:
        """Raise a clear error if targets ``y`` cannot be used with outputs
        of shape ``(N, *output_shape)``."""

    def activation(self, logits: Array) -> Array:
        """Map raw model outputs to predictions (identity by default)."""
        return logits

    def describe(self, z: str, a: str) -> tuple[list[str], str]:
        """The loss in the backprop trace's notation, for logits named ``z``.

        Returns the forward equations (the output activation ``a`` if the loss
        applies one, then ``C = ...``) and the right-hand side of ``dC/dz``.
        """
        name = type(self).__name__
        return [f"C = {name}({z}, y)"], f"{name} gradient at {z}"

    def _over(self) -> str:
        """The reduction as text: ``" / N"``, ``" / (N·K)"`` (``K`` outputs a
        sample) or nothing."""
        return {"sum": "", "batchmean": " / N"}.get(self.reduction, " / (N·K)")

    def _denominator(self, shape: tuple[int, ...]) -> int:
        if self.reduction == "sum":
            return 1
        if self.reduction == "batchmean":
            return int(shape[0])
        return int(np.prod(shape))

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction}

    def __repr__(self) -> str:
        return format_call(type(self).__name__, type(self).__init__, self.get_config())


def loss_from_config(description: object) -> Loss:
    """Rebuild a loss from ``{"type": name, "config": {...}}``."""
    return from_config(Loss.registry, "loss", description)


def check_batch(name: str, logits: Array, y: Array) -> None:
    """Common checks: ``logits`` is a float batch and ``y`` has as many rows."""
    if getattr(logits, "ndim", 0) < 2 or logits.dtype.kind != "f":
        raise ValueError(
            f"{name} expected float logits of shape (N, C), got "
            f"{getattr(logits, 'shape', type(logits).__name__)}"
        )
    if logits.shape[0] == 0:
        raise ValueError(f"{name} got an empty batch (0 samples)")
    if not hasattr(y, "shape") or y.ndim < 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(
            f"{name} expected {logits.shape[0]} targets to match logits of shape "
            f"{tuple(logits.shape)}, got {getattr(y, 'shape', type(y).__name__)}"
        )


def float_targets(
    name: str, y: Array, dtype: Any, low: float | None = None, high: float | None = None
) -> Array:
    """``y`` as finite floats of ``dtype``, within ``[low, high]`` where given."""
    xp = backend.xp()
    if y.dtype.kind not in "iuf":
        raise TypeError(f"{name} expected numeric targets, got dtype {y.dtype}")
    target = xp.asarray(y, dtype=dtype)
    if not bool(xp.isfinite(target).all()):
        raise ValueError(f"{name} got NaN or infinite targets")
    if target.size and (
        (low is not None and float(target.min()) < low)
        or (high is not None and float(target.max()) > high)
    ):
        raise ValueError(
            f"{name} expected targets in [{'-inf' if low is None else f'{low:g}'}, "
            f"{'inf' if high is None else f'{high:g}'}], got values from "
            f"{float(target.min())} to {float(target.max())}"
        )
    return target


def integer_labels(name: str, y: Array, num_classes: int) -> Array:
    """Validate ``(N,)`` integer class labels in ``[0, num_classes)``."""
    xp = backend.xp()
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} expected integer class labels, got dtype {y.dtype}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"{name} expected class labels in [0, {num_classes - 1}], got values "
            f"from {int(y.min())} to {int(y.max())}"
        )
    return xp.asarray(y)


__all__ = [
    "REDUCTIONS",
    "Loss",
    "check_batch",
    "float_targets",
    "integer_labels",
    "loss_from_config",
]

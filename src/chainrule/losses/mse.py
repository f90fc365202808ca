"""Mean squared error."""

from __future__ import annotations

from chainrule.losses.base import Loss, check_batch, float_targets
from chainrule.types import Array


class MSE(Loss):
    """Squared error ``(z − y)²`` reduced over the batch.

    Shape: logits ``(N, *)`` and targets ``y`` of the same shape.

    Backward: ``dL/dz = 2(z − y)``, divided by the reduction's denominator
    (``N·C`` for ``mean``, as in PyTorch's ``MSELoss``).
    """

    def __call__(self, logits: Array, y: Array) -> tuple[float, Array]:
        check_batch("MSE", logits, y)
        if tuple(y.shape) != tuple(logits.shape):
            raise ValueError(
                f"MSE expected targets of shape {tuple(logits.shape)}, "
                f"got {tuple(y.shape)}"
            )
        diff = logits - float_targets("MSE", y, logits.dtype)
        denom = self._denominator(tuple(logits.shape))
        value = float((diff * diff).sum()) / denom
        diff *= 2.0 / denom
        return value, diff

    def describe(self, z: str, a: str) -> tuple[list[str], str]:
        over = self._over()
        return [f"C = Σ ({z} − y)²{over}"], f"2({z} − y){over}"

    def check_targets(self, y: Array, output_shape: tuple[int, ...]) -> None:
        if tuple(y.shape[1:]) != tuple(output_shape):
            raise ValueError(
                "MSE expected targets of shape "
                f"(N, {', '.join(map(str, output_shape))}), got {tuple(y.shape)}"
            )
        float_targets("MSE", y, "float64")


__all__ = ["MSE"]

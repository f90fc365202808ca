"""Inverted dropout: zero a random fraction of units while training."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.notation import Step, Symbols
from chainrule.types import Array, Backward, Shape


class Dropout(Layer):
    """Zero each unit with probability ``rate`` in training; identity in inference.

    Inverted dropout (Srivastava et al. 2014, as in Keras and PyTorch): kept
    units are scaled by ``1 / (1 − rate)`` during training, so the expected
    activation is unchanged and inference needs no rescaling.

    Shape: input ``(N, *)``, output the same.

    Backward: with the mask ``m`` (0 or ``1/(1 − rate)``) drawn in the forward
    pass, ``y = x ⊙ m`` so ``dx = dy ⊙ m``.

    The mask comes from the layer's own generator, seeded from the model's seed
    (or ``seed``), whose state is saved in checkpoints so a resumed run draws the
    same masks.
    """

    trace_letter = "h"

    def __init__(self, rate: float, seed: int | None = None) -> None:
        super().__init__()
        self.rate = validate.real("Dropout", "rate", rate, low=0.0)
        if self.rate >= 1:
            raise ValueError(f"Dropout: invalid rate {self.rate!r} (must be < 1)")
        self.seed = validate.seed("Dropout", seed)
        self.rng = np.random.default_rng(self.seed)

    def _create_parameters(self, input_shape: Shape, rng: np.random.Generator) -> None:
        if self.seed is None:
            self.rng = np.random.default_rng(int(rng.integers(2**63)))

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        if not training:
            return x, no_backward
        if self.rate == 0:
            return x, lambda dy: dy
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        mask = backend.xp().asarray(keep, dtype=x.dtype)
        mask *= x.dtype.type(1 / (1 - self.rate))
        y = x * mask

        def backward(dy: Array) -> Array:
            return dy * mask

        return y, backward

    def get_rng_state(self) -> dict[str, Any] | None:
        return dict(self.rng.bit_generator.state)

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def describe(self, s: Symbols) -> Step:
        keep = f"m / {1 - self.rate:g}"
        return Step(
            f"{s.y} = {s.x} ⊙ {keep}  (m: kept units, each with probability "
            f"{1 - self.rate:g})",
            f"{s.dy} ⊙ {keep}",
        )

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed}


__all__ = ["Dropout"]

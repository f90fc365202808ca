"""Where a training run stands: what a checkpoint needs to resume exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainingState:
    """The position of a ``fit`` run after ``epoch`` complete epochs.

    With the weights and the optimizer state (kept in the model), this is all a
    run needs to continue bit for bit: the shuffling generator's state, every
    layer's generator (dropout masks), the seed that chose the validation split,
    the history so far and each callback's counters.
    """

    epoch: int
    seed: int | None
    rng: dict[str, Any]
    layer_rngs: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> TrainingState:
        """Rebuild from :meth:`to_json`'s output; ``ValueError`` if malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"training state must be an object, got {data!r}")
        epoch, seed = data.get("epoch"), data.get("seed")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"training state: epoch must be >= 0, got {epoch!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"training state: seed must be an integer, got {seed!r}")
        parts = {}
        for key in ("rng", "layer_rngs", "history", "callbacks"):
            value = data.get(key, {})
            if not isinstance(value, dict):
                raise ValueError(f"training state: {key} must be an object")
            parts[key] = value
        try:  # the state a generator accepts, checked now rather than on resume
            np.random.default_rng().bit_generator.state = parts["rng"]
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"training state: bad shuffling generator state ({exc})"
            ) from exc
        return cls(epoch=epoch, seed=seed, **parts)


__all__ = ["TrainingState"]

"""Watching one logged metric for improvement (shared by several callbacks)."""

from __future__ import annotations

import math
from typing import Any

from chainrule import validate


class Monitor:
    """Tracks the best value of ``logs[name]``.

    ``mode="auto"`` minimises losses and maximises anything with ``acc`` in its
    name. A value improves on the best by more than ``min_delta``.
    """

    def __init__(self, owner: str, name: str, mode: str, min_delta: float) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{owner}: monitor must be a metric name, got {name!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}"
            )
        self.owner, self.name = owner, name
        self.mode = mode if mode != "auto" else ("max" if "acc" in name else "min")
        self.min_delta = validate.real(owner, "min_delta", min_delta, low=0.0)
        self.best: float | None = None

    def value(self, logs: dict[str, Any]) -> float:
        if self.name not in logs:
            raise ValueError(
                f"{self.owner}: metric {self.name!r} is not logged (available: "
                f"{', '.join(sorted(logs))}); pass validation data for val_* metrics"
            )
        return float(logs[self.name])

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far (and if so, remember it)."""
        if math.isnan(value):
            return False
        better = (
            self.best is None
            or (self.mode == "min" and value < self.best - self.min_delta)
            or (self.mode == "max" and value > self.best + self.min_delta)
        )
        if better:
            self.best = value
        return better


__all__ = ["Monitor"]

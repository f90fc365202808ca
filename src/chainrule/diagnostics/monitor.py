"""A callback that checks training health on a fixed batch, epoch by epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import validate
from chainrule.diagnostics.health import (
    HealthReport,
    HealthThresholds,
    HealthWarning,
    check_health,
)
from chainrule.model.callback import Callback


class HealthMonitor(Callback):
    """Check health on the batch ``(x, y)`` before training and every ``every`` epochs.

    Each check is kept in :attr:`records` (JSON-compatible, one dict with its
    ``epoch``, 0 for the check before training) and :attr:`report` holds the
    latest :class:`HealthReport`. Each warning is printed once per run, the
    first time its kind appears at its layer, with its fix; ``print_fn=None``
    prints nothing. Records and printed warnings go into checkpoints, so a
    resumed run neither loses the history nor repeats a warning.

    ``(x, y)`` is the probe batch: a few hundred training samples are plenty.
    """

    def __init__(
        self,
        x: object,
        y: object | None = None,
        every: int = 1,
        print_fn: Callable[[str], None] | None = print,
        thresholds: HealthThresholds | None = None,
    ) -> None:
        super().__init__()
        self.x = _batch("x", x)
        self.y = None if y is None else _batch("y", y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(
                f"HealthMonitor: y has {len(self.y)} rows but x has {len(self.x)}; "
                "pass the targets of the same samples"
            )
        self.every = validate.integer("HealthMonitor", "every", every)
        if print_fn is not None and not callable(print_fn):
            raise TypeError(
                f"HealthMonitor: print_fn must be callable or None, got {print_fn!r}"
            )
        if thresholds is not None and not isinstance(thresholds, HealthThresholds):
            raise TypeError(
                "HealthMonitor: thresholds must be a HealthThresholds, "
                f"got {type(thresholds).__name__}"
            )
        self.print_fn = print_fn
        self.thresholds = thresholds
        self.records: list[dict[str, Any]] = []
        self.report: HealthReport | None = None
        #: ``(layer, kind)`` of every warning printed so far
        self.printed: set[tuple[int | None, str]] = set()

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if logs.get("initial_epoch"):
            return  # resumed: the check before training is in the restored records
        self.records, self.printed = [], set()
        self.check(0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch % self.every == 0:
            self.check(epoch)

    def check(self, epoch: int) -> HealthReport:
        """Check now, record it under ``epoch`` and print any new warning."""
        if self.model is None:
            raise RuntimeError(
                "HealthMonitor has no model: pass it to fit(callbacks=[...])"
            )
        self.report = check_health(self.model, self.x, self.y, self.thresholds)
        self.records.append({"epoch": epoch, **self.report.to_json()})
        for warning in self.report.warnings:
            key = (warning.layer, warning.kind)
            if key not in self.printed:
                self.printed.add(key)
                if self.print_fn is not None:
                    self.print_fn(_announce(epoch, warning))
        return self.report

    def get_state(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "printed": [[layer, kind] for layer, kind in sorted(self.printed, key=str)],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.records = [dict(r) for r in state.get("records", [])]
        self.printed = {(layer, kind) for layer, kind in state.get("printed", [])}


def _batch(name: str, value: object) -> np.ndarray[Any, Any]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "uif":
        raise TypeError(
            f"HealthMonitor: {name} must hold numbers, got dtype {arr.dtype}"
        )
    if arr.ndim < 1 or len(arr) == 0:
        raise ValueError(
            f"HealthMonitor: {name} must be a non-empty batch (N, ...), "
            f"got shape {arr.shape}"
        )
    return arr


def _announce(epoch: int, warning: HealthWarning) -> str:
    when = "before training" if epoch == 0 else f"after epoch {epoch}"
    return f"health warning {when}: {warning.format()}"


__all__ = ["HealthMonitor"]

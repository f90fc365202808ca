"""What ``fit`` returns: the per-epoch record of a training run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch metrics of a :meth:`Sequential.fit` run.

    ``history["loss"]`` and ``history["accuracy"]`` are averaged over the
    epoch's batches *while the weights were changing*, so they differ from what
    ``evaluate`` reports on the same data afterwards; ``val_loss`` and
    ``val_accuracy`` are measured after the epoch with the weights fixed.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def record(self, epoch: int, seconds: float, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        self.seconds.append(seconds)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def last(self) -> dict[str, float]:
        """The metrics of the final epoch."""
        return {key: values[-1] for key, values in self.history.items() if values}


__all__ = ["History"]

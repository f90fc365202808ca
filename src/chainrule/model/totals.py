"""Running loss and accuracy over batches, reduced the way the loss is."""

from __future__ import annotations

from chainrule import backend
from chainrule.metrics import predicted_classes, true_classes
from chainrule.types import Array, Shape


class Totals:
    """Accumulates batch results into whole-set metrics.

    The loss over the set is the mean of per-sample losses (weighted by batch
    size, so a short last batch counts for what it holds), or the total for
    ``reduction="sum"``. Accuracy is kept only for classifier-shaped outputs
    ``(N, C)``.
    """

    def __init__(self, reduction: str, output_shape: Shape) -> None:
        self.summed = reduction == "sum"
        self.classify = len(output_shape) == 1
        self.samples, self.loss, self.correct = 0, 0.0, 0

    def add(self, value: float, logits: Array, y: Array) -> None:
        n = len(y)
        self.samples += n
        self.loss += value if self.summed else value * n
        if self.classify:
            predicted = predicted_classes(backend.to_numpy(logits))
            self.correct += int((predicted == true_classes(backend.to_numpy(y))).sum())

    def logs(self) -> dict[str, float]:
        logs = {"loss": self.loss if self.summed else self.loss / self.samples}
        if self.classify:
            logs["accuracy"] = self.correct / self.samples
        return logs


__all__ = ["Totals"]

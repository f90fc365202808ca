"""Stop cleanly when the loss becomes NaN or infinite."""

from __future__ import annotations

import math
import sys
from typing import Any

from chainrule.model.callback import Callback


class TerminateOnNaN(Callback):
    """End training at the first non-finite batch loss, with a clear message.

    Training stops before the epoch ends, so no checkpoint of the broken
    weights is written and the last good one stays as it was.
    """

    def __init__(self) -> None:
        super().__init__()
        self.message: str | None = None

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        loss = float(logs.get("loss", 0.0))
        if math.isfinite(loss) or self.model is None:
            return
        self.message = (
            f"training stopped: the loss is {loss} at epoch {logs.get('epoch')}, "
            f"step {step}; lower the learning rate or check the data"
        )
        print(self.message, file=sys.stderr, flush=True)
        self.model.stop_training = True


__all__ = ["TerminateOnNaN"]

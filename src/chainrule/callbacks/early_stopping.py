"""Stop training when a metric stops improving."""

from __future__ import annotations

import sys
from typing import Any

from chainrule import validate
from chainrule.callbacks.monitor import Monitor
from chainrule.model.callback import Callback


class EarlyStopping(Callback):
    """Stop when ``monitor`` fails to improve for more than ``patience`` epochs.

    ``patience`` epochs without improvement are tolerated; the next one stops
    training (PyTorch's counting, as in ``ReduceLROnPlateau``).

    With ``restore_best_weights`` the model ends with the weights of its best
    epoch (kept in memory; a checkpoint keeps the counters, not that copy).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.monitor = Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience = validate.integer("EarlyStopping", "patience", patience, low=0)
        self.restore_best_weights = validate.boolean(
            "EarlyStopping", "restore_best_weights", restore_best_weights
        )
        self.verbose = validate.boolean("EarlyStopping", "verbose", verbose)
        self.wait = 0
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.best_weights: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.model is not None
        if self.monitor.improved(self.monitor.value(logs)):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self.best_weights = [a.copy() for a in self._state_arrays()]
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _state_arrays(self) -> list[Any]:
        """The weights and the buffers (batch-norm statistics) that go with them."""
        assert self.model is not None
        return [p.data for p in self.model.parameters()] + [
            b for _, b in self.model.named_buffers()
        ]

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if not self.stopped_epoch or self.model is None:
            return
        restored = ""
        if self.restore_best_weights and self.best_weights is not None:
            for array, best in zip(
                self._state_arrays(), self.best_weights, strict=True
            ):
                array[...] = best
            restored = f"; restored the weights of epoch {self.best_epoch}"
        if self.verbose:
            best = "none" if self.monitor.best is None else f"{self.monitor.best:.4f}"
            print(
                f"early stopping at epoch {self.stopped_epoch}: {self.monitor.name} "
                f"did not improve for {self.wait} epochs (best {best} at epoch "
                f"{self.best_epoch}){restored}",
                file=sys.stdout,
                flush=True,
            )

    def get_state(self) -> dict[str, Any]:
        return {
            "best": self.monitor.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.monitor.best = state.get("best")
        self.wait = int(state.get("wait", 0))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.best_weights = None


__all__ = ["EarlyStopping"]

"""Change the learning rate during training: by schedule, or on a plateau."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from chainrule import validate
from chainrule.callbacks.monitor import Monitor
from chainrule.model.callback import Callback


class LearningRateScheduler(Callback):
    """Set ``optimizer.lr = schedule(t)`` before each step or each epoch.

    ``per="step"``: ``t`` is the optimizer's step count (0 for the first
    update); ``per="epoch"``: ``t`` is the epoch index, from 0. Schedules are
    pure functions of ``t``, so a resumed run picks up the same values.
    """

    def __init__(self, schedule: Callable[[int], float], per: str = "step") -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler: schedule must be callable, got {schedule!r}"
            )
        if per not in ("step", "epoch"):
            raise ValueError(
                f"LearningRateScheduler: per must be 'step' or 'epoch', got {per!r}"
            )
        self.schedule, self.per = schedule, per

    def _set(self, t: int) -> None:
        assert self.model is not None and self.model.optimizer is not None
        lr = float(self.schedule(t))
        validate.real("LearningRateScheduler", f"schedule({t})", lr, low=0.0)
        self.model.optimizer.lr = lr

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.per == "epoch":
            self._set(epoch - 1)

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        if self.per == "step":
            assert self.model is not None and self.model.optimizer is not None
            self._set(self.model.optimizer.iterations)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls.

    When more than ``patience`` epochs in a row fail to improve, the rate
    becomes ``max(lr · factor, min_lr)``; then ``cooldown`` epochs pass before
    counting again (the same steps as PyTorch's scheduler of that name).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.monitor = Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.factor = validate.real(
            "ReduceLROnPlateau", "factor", factor, low=0.0, strict=True
        )
        if self.factor >= 1:
            raise ValueError(
                f"ReduceLROnPlateau: invalid factor {self.factor} (must be < 1)"
            )
        self.patience = validate.integer(
            "ReduceLROnPlateau", "patience", patience, low=0
        )
        self.cooldown = validate.integer(
            "ReduceLROnPlateau", "cooldown", cooldown, low=0
        )
        self.min_lr = validate.real("ReduceLROnPlateau", "min_lr", min_lr, low=0.0)
        self.verbose = validate.boolean("ReduceLROnPlateau", "verbose", verbose)
        self.wait = 0
        self.cooldown_left = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.model is not None and self.model.optimizer is not None
        optimizer = self.model.optimizer
        # the order of torch.optim.lr_scheduler.ReduceLROnPlateau.step
        if self.monitor.improved(self.monitor.value(logs)):
            self.wait = 0
        else:
            self.wait += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.wait > self.patience:
            new = max(optimizer.lr * self.factor, self.min_lr)
            if new < optimizer.lr:
                if self.verbose:
                    print(
                        f"epoch {epoch}: {self.monitor.name} stalled, learning rate "
                        f"{optimizer.lr:.3g} -> {new:.3g}",
                        file=sys.stdout,
                        flush=True,
                    )
                optimizer.lr = new
            self.wait = 0
            self.cooldown_left = self.cooldown

    def get_state(self) -> dict[str, Any]:
        return {
            "best": self.monitor.best,
            "wait": self.wait,
            "cooldown": self.cooldown_left,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.monitor.best = state.get("best")
        self.wait = int(state.get("wait", 0))
        self.cooldown_left = int(state.get("cooldown", 0))


__all__ = ["LearningRateScheduler", "ReduceLROnPlateau"]

"""Save checkpoints during training: every epoch, or the best one."""

from __future__ import annotations

import os
import sys
from typing import Any

from chainrule import validate
from chainrule.callbacks.monitor import Monitor
from chainrule.io.model_file import save_checkpoint
from chainrule.model.callback import Callback


class ModelCheckpoint(Callback):
    """Write a checkpoint (weights, optimizer and training state) after epochs.

    ``path`` may hold ``{epoch}`` (e.g. ``"ckpt/epoch-{epoch:03d}.npz"``) to
    keep one file per epoch; otherwise each save replaces the last. With
    ``save_best_only`` a file is written only when ``monitor`` improves. Writes
    are atomic: a crash mid-write leaves the previous checkpoint whole.
    A checkpoint resumes with ``fit(resume=True)`` after ``load_model``.
    """

    runs_last = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        verbose: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.path = os.fspath(path)
        if not self.path:
            raise ValueError("ModelCheckpoint: path must not be empty")
        try:
            self.path.format(epoch=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"ModelCheckpoint: path may only use {{epoch}}, got {self.path!r}"
            ) from exc
        self.save_best_only = validate.boolean(
            "ModelCheckpoint", "save_best_only", save_best_only
        )
        self.monitor = Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.verbose = validate.boolean("ModelCheckpoint", "verbose", verbose)
        self.metadata = metadata
        self.saved: list[str] = []
        self.save_now = False
        self.decided_epoch = 0

    def before_save(self, epoch: int, logs: dict[str, Any]) -> None:
        self.decided_epoch = epoch
        self.save_now = not self.save_best_only or self.monitor.improved(
            self.monitor.value(logs)
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.model is not None
        if self.decided_epoch != epoch:  # called on its own, outside fit
            self.before_save(epoch, logs)
        if not self.save_now:
            return
        path = self.path.format(epoch=epoch)
        save_checkpoint(self.model, path, metadata=self.metadata)
        self.saved.append(path)
        if self.verbose:
            print(f"saved checkpoint {path}", file=sys.stdout, flush=True)

    def get_state(self) -> dict[str, Any]:
        return {"best": self.monitor.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.monitor.best = state.get("best")


__all__ = ["ModelCheckpoint"]

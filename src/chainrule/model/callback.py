"""The callback contract: hooks that ``fit`` calls as training goes on.

A callback can read and change the model (``self.model``), set
``model.stop_training = True`` to end training after the current step, and
keep state that checkpoints save (:meth:`get_state` / :meth:`set_state`) so a
resumed run behaves as the uninterrupted one would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainrule.model.sequential import Sequential


class Callback:
    """Base class: every hook does nothing.

    ``epoch`` counts from 1; ``step`` is the batch number within the epoch,
    from 1. ``logs`` holds the metrics so far: at batch end the batch's
    ``loss``; at epoch end ``loss``, ``accuracy``, ``val_*`` and ``lr``.
    """

    #: callbacks that save the model run after the others, which may change it
    runs_last = False

    def __init__(self) -> None:
        self.model: Sequential | None = None
        #: where ``fit`` files this callback's state in a checkpoint (its
        #: position and class), so resume with the callbacks in the same order
        self.state_key = type(self).__name__

    def set_model(self, model: Sequential) -> None:
        self.model = model

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Before the first epoch; ``logs["initial_epoch"]`` is the number of
        epochs already done (non-zero when resuming)."""

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """After the last epoch, or when training stopped."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Before the epoch's first batch."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After the epoch and its validation."""

    def before_save(self, epoch: int, logs: dict[str, Any]) -> None:
        """For ``runs_last`` callbacks: update counters before anything is saved.

        ``fit`` calls this on every saver, then records the training state,
        then calls their ``on_epoch_end``; so each checkpoint holds every
        saver's state as of this epoch.
        """

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        """Before a training step."""

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        """After a training step; ``logs["loss"]`` is that batch's loss."""

    def get_state(self) -> dict[str, Any]:
        """JSON-compatible state a checkpoint keeps (counters, best values)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""


__all__ = ["Callback"]

"""The training loop behind ``Sequential.fit``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule import backend
from chainrule.model.callback import Callback
from chainrule.model.history import History
from chainrule.model.inputs import batches
from chainrule.model.progress import Progress
from chainrule.model.totals import Totals
from chainrule.model.training_state import TrainingState

if TYPE_CHECKING:
    from chainrule.model.sequential import Sequential


def run_epochs(
    model: Sequential,
    train: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
    val: tuple[Any, Any] | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    rng: np.random.Generator,
    verbose: int | str,
    callbacks: Sequence[Callback],
    resume: TrainingState | None,
    augment: Callable[[Any, np.random.Generator], Any] | None = None,
) -> History:
    """Train ``model`` up to epoch ``epochs`` (counting those already done)."""
    loss, optimizer = model.loss, model.optimizer
    assert loss is not None and optimizer is not None  # checked by fit
    x, y = train
    output_shape = model.output_shape or ()
    n = len(x)
    history = History()
    first = 1
    for index, callback in enumerate(callbacks):
        callback.set_model(model)
        # position and class: two checkpoints in one run keep separate states
        callback.state_key = f"{index}.{type(callback).__name__}"
    if resume is not None:
        rng.bit_generator.state = resume.rng
        model.set_rng_states(resume.layer_rngs)
        history.history = {k: list(v) for k, v in resume.history.items()}
        history.epoch = list(range(1, resume.epoch + 1))
        history.seconds = [0.0] * resume.epoch
        for callback in callbacks:
            callback.set_state(resume.callbacks.get(callback.state_key, {}))
        first = resume.epoch + 1
    # savers see the state the others leave behind
    callbacks = sorted(callbacks, key=lambda c: c.runs_last)
    model.stop_training = False
    progress = Progress(verbose, epochs, math.ceil(n / batch_size))
    xp = backend.xp()
    for callback in callbacks:
        callback.on_train_begin({"initial_epoch": first - 1})
    try:
        for epoch in range(first, epochs + 1):
            start = time.perf_counter()
            progress.epoch_begin(epoch)
            for callback in callbacks:
                callback.on_epoch_begin(epoch, {})
            order = rng.permutation(n) if shuffle else None
            # drawn from the shuffling generator, whose state a checkpoint keeps
            aug_rng = (
                np.random.default_rng(rng.integers(2**63))
                if augment is not None
                else None
            )
            totals = Totals(loss.reduction, output_shape)
            for step, idx in enumerate(batches(n, batch_size, order), 1):
                for callback in callbacks:
                    callback.on_batch_begin(step, {})
                yb = xp.asarray(y[idx])
                xb = x[idx]
                if augment is not None:
                    assert aug_rng is not None
                    xb = _augmented(augment, xb, aug_rng)
                value, logits = model.train_step(backend.asarray(xb, model.dtype), yb)
                for callback in callbacks:
                    callback.on_batch_end(step, {"loss": value, "epoch": epoch})
                if not math.isfinite(value):
                    if model.stop_training:  # a TerminateOnNaN said so
                        return history
                    raise FloatingPointError(
                        f"training diverged: the loss is {value} at epoch {epoch}, "
                        f"step {step}; lower the learning rate or check the data"
                    )
                totals.add(value, logits, yb)
                progress.batch_end(totals.logs())
                if model.stop_training:
                    return history
            logs: dict[str, float] = totals.logs()
            if val is not None:
                scores = model.evaluate(
                    val[0], val[1], batch_size=max(batch_size, 1000)
                )
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs["lr"] = optimizer.lr
            seconds = time.perf_counter() - start
            history.record(epoch, seconds, logs)
            progress.epoch_end(epoch, seconds, logs)
            savers = [c for c in callbacks if c.runs_last]
            for callback in callbacks:
                if not callback.runs_last:
                    callback.on_epoch_end(epoch, logs)
            for callback in savers:
                callback.before_save(epoch, logs)
            model.training_state = _state(model, epoch, seed, rng, history, callbacks)
            for callback in savers:
                callback.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    finally:
        progress.close()
        for callback in callbacks:
            callback.on_train_end({})
    return history


def _augmented(
    augment: Callable[[Any, np.random.Generator], Any],
    xb: np.ndarray[Any, Any],
    rng: np.random.Generator,
) -> np.ndarray[Any, Any]:
    out = np.asarray(augment(xb, rng))
    if out.shape != xb.shape:
        raise ValueError(
            f"fit: augment changed the batch's shape from {xb.shape} to {out.shape}; "
            "it must return images of the shape it was given"
        )
    return out


def _state(
    model: Sequential,
    epoch: int,
    seed: int | None,
    rng: np.random.Generator,
    history: History,
    callbacks: Sequence[Callback],
) -> TrainingState:
    return TrainingState(
        epoch=epoch,
        seed=seed,
        rng=dict(rng.bit_generator.state),
        layer_rngs=model.get_rng_states(),
        history={k: list(v) for k, v in history.history.items()},
        callbacks={c.state_key: c.get_state() for c in callbacks},
    )


__all__ = ["run_epochs"]

"""Callbacks: early stopping, checkpoints, NaN guard, loggers and learning rates.

Most are driven directly with crafted logs (``set_model`` then
``on_epoch_end(epoch, logs)``), so each rule is checked on a known sequence of
metric values; a short real ``fit`` then shows each one wired into training.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

import chainrule.io.model_file as model_file
from chainrule.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from chainrule.cli.train import StopAfter
from chainrule.io import load_model
from chainrule.layers import Dense, Tanh
from chainrule.losses import MSE, CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD

torch.set_num_threads(1)


def tiny_model(seed: int = 0, lr: float = 0.1) -> Sequential:
    model = Sequential([Dense(8), Tanh(), Dense(3)], input_shape=(4,), seed=seed)
    return model.compile(CrossEntropy(), SGD(lr))


def tiny_data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, y


def weights(model: Sequential) -> list[np.ndarray]:
    return [p.data.copy() for p in model.parameters()]


def assert_same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for first, second in zip(a, b, strict=True):
        np.testing.assert_array_equal(first, second)


def drive(
    callback: Callback, model: Sequential, values: list[float], key: str = "val_loss"
) -> list[bool]:
    """Feed ``{key: value}`` epoch by epoch; return ``stop_training`` after each."""
    callback.set_model(model)
    model.stop_training = False
    stopped = []
    for epoch, value in enumerate(values, 1):
        callback.on_epoch_end(epoch, {"loss": 1.0, key: value})
        stopped.append(model.stop_training)
    return stopped


class Recorder(Callback):
    """Keeps what every step saw: (epoch, step, loss, lr, optimizer iterations)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, int, float, float, int]] = []

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        assert self.model is not None and self.model.optimizer is not None
        opt = self.model.optimizer
        self.steps.append((logs["epoch"], step, logs["loss"], opt.lr, opt.iterations))


# ---------------------------------------------------------------- EarlyStopping
def test_early_stopping_patience_counts_epochs_without_improvement() -> None:
    model = tiny_model()
    stop = EarlyStopping(patience=2, verbose=False)
    stop.set_model(model)
    seen = []
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.93, 0.92], 1):
        stop.on_epoch_end(epoch, {"val_loss": value})
        seen.append((stop.wait, stop.best_epoch, model.stop_training))
    assert seen == [
        (0, 1, False),
        (0, 2, False),
        (1, 2, False),
        (2, 2, False),
        (3, 2, True),
    ]
    assert stop.stopped_epoch == 5
    assert stop.monitor.best == 0.9


@pytest.mark.parametrize("patience", [0, 1, 3])
def test_early_stopping_tolerates_patience_bad_epochs(patience: int) -> None:
    stopped = drive(
        EarlyStopping(patience=patience, verbose=False),
        tiny_model(),
        [1.0] + [2.0] * 6,
    )
    assert stopped.index(True) + 1 == patience + 2


def test_early_stopping_improvement_resets_the_wait() -> None:
    model = tiny_model()
    stop = EarlyStopping(patience=1, verbose=False)
    stopped = drive(stop, model, [1.0, 1.1, 0.8, 0.9, 0.85])
    assert stopped == [False, False, False, False, True]
    assert stop.best_epoch == 3


@pytest.mark.parametrize(
    ("monitor", "mode", "values", "best"),
    [
        ("val_loss", "auto", [0.5, 0.4, 0.45], 0.4),
        ("val_accuracy", "auto", [0.5, 0.6, 0.55], 0.6),
        ("accuracy", "auto", [0.5, 0.6, 0.55], 0.6),
        ("val_loss", "max", [0.5, 0.6, 0.55], 0.6),
        ("val_accuracy", "min", [0.5, 0.4, 0.45], 0.4),
    ],
)
def test_early_stopping_mode(
    monitor: str, mode: str, values: list[float], best: float
) -> None:
    stop = EarlyStopping(monitor=monitor, mode=mode, verbose=False)
    assert drive(stop, tiny_model(), values, key=monitor) == [False, False, True]
    assert stop.monitor.best == best
    assert stop.best_epoch == 2


@pytest.mark.parametrize(
    ("monitor", "values", "stops"),
    [
        ("val_loss", [1.0, 0.95], True),  # 0.05 is not more than min_delta
        ("val_loss", [1.0, 0.85], False),
        ("val_accuracy", [0.5, 0.55], True),
        ("val_accuracy", [0.5, 0.65], False),
    ],
)
def test_early_stopping_min_delta(
    monitor: str, values: list[float], stops: bool
) -> None:
    stop = EarlyStopping(monitor=monitor, min_delta=0.1, verbose=False)
    assert drive(stop, tiny_model(), values, key=monitor)[-1] is stops


def test_early_stopping_missing_metric_names_the_available_ones() -> None:
    stop = EarlyStopping(verbose=False)
    stop.set_model(tiny_model())
    with pytest.raises(ValueError, match="'val_loss'") as info:
        stop.on_epoch_end(1, {"loss": 1.0, "accuracy": 0.5, "lr": 0.1})
    assert "accuracy, loss, lr" in str(info.value)


def test_early_stopping_restores_the_best_weights_exactly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tiny_model()
    stop = EarlyStopping(patience=1, restore_best_weights=True)
    stop.set_model(model)
    snapshots = []
    for epoch, value in enumerate([1.0, 0.5, 0.7, 0.8], 1):
        for p in model.parameters():
            p.data += np.float32(0.125 * epoch)
        snapshots.append(weights(model))
        stop.on_epoch_end(epoch, {"val_loss": value})
    assert model.stop_training and stop.stopped_epoch == 4
    stop.on_train_end({})
    assert_same_weights(weights(model), snapshots[1])
    out = capsys.readouterr().out
    assert "early stopping at epoch 4" in out
    assert "restored the weights of epoch 2" in out


def test_early_stopping_without_restore_keeps_the_last_weights() -> None:
    model = tiny_model()
    stop = EarlyStopping(patience=0, verbose=False)
    stop.set_model(model)
    stop.on_epoch_end(1, {"val_loss": 1.0})
    for p in model.parameters():
        p.data += 1
    last = weights(model)
    stop.on_epoch_end(2, {"val_loss": 2.0})
    stop.on_train_end({})
    assert_same_weights(weights(model), last)


def test_early_stopping_ends_a_real_fit() -> None:
    x, y = tiny_data()
    model = tiny_model()

    class AfterEpoch1(Callback):
        snapshot: ClassVar[list[np.ndarray]] = []

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            if epoch == 1:
                assert self.model is not None
                AfterEpoch1.snapshot = weights(self.model)

    # nothing can improve on the first epoch by 1e9: stop at the second
    stop = EarlyStopping(
        monitor="val_loss", min_delta=1e9, restore_best_weights=True, verbose=False
    )
    history = model.fit(
        x,
        y,
        epochs=10,
        batch_size=8,
        validation_split=0.25,
        seed=0,
        verbose=0,
        callbacks=[stop, AfterEpoch1()],
    )
    assert history.epoch == [1, 2]
    assert len(history["val_loss"]) == 2
    assert stop.best_epoch == 1 and stop.stopped_epoch == 2
    assert_same_weights(weights(model), AfterEpoch1.snapshot)


def test_early_stopping_on_a_metric_that_is_never_a_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A NaN metric never improves; the report at the end must still print."""
    model = tiny_model()
    stop = EarlyStopping(patience=1)
    assert drive(stop, model, [float("nan")] * 2) == [False, True]
    stop.on_train_end({})
    assert "early stopping at epoch 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"patience": -1}, ValueError),
        ({"patience": 1.5}, ValueError),
        ({"min_delta": -0.1}, ValueError),
        ({"mode": "sideways"}, ValueError),
        ({"monitor": ""}, TypeError),
        ({"restore_best_weights": 1}, TypeError),
    ],
)
def test_early_stopping_bad_arguments(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match="EarlyStopping"):
        EarlyStopping(**kwargs)


# -------------------------------------------------------------- ModelCheckpoint
def test_checkpoint_per_epoch_files(tmp_path: Path) -> None:
    x, y = tiny_data()
    model = tiny_model()
    checkpoint = ModelCheckpoint(tmp_path / "ckpt" / "e{epoch:02d}.npz", monitor="loss")
    model.fit(x, y, epochs=3, batch_size=16, seed=0, verbose=0, callbacks=[checkpoint])
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["e01.npz", "e02.npz", "e03.npz"]
    assert checkpoint.saved == [str(tmp_path / "ckpt" / n) for n in names]
    for epoch, name in enumerate(names, 1):
        loaded = load_model(tmp_path / "ckpt" / name)
        assert loaded.training_state is not None
        assert loaded.training_state.epoch == epoch
        assert loaded.training_state.seed == 0
        assert loaded.optimizer is not None
        assert loaded.optimizer.iterations == 3 * epoch
        assert len(loaded.training_state.history["loss"]) == epoch
    assert_same_weights(
        weights(load_model(tmp_path / "ckpt" / "e03.npz")), weights(model)
    )


def test_checkpoint_without_epoch_replaces_the_file(tmp_path: Path) -> None:
    x, y = tiny_data()
    model = tiny_model()
    checkpoint = ModelCheckpoint(tmp_path / "last.npz")
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        seed=1,
        verbose=0,
        callbacks=[checkpoint],
    )
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]
    assert len(checkpoint.saved) == 3
    loaded = load_model(tmp_path / "last.npz")
    assert loaded.training_state is not None
    assert loaded.training_state.epoch == 3
    assert_same_weights(weights(loaded), weights(model))


@pytest.mark.parametrize(
    ("monitor", "values", "saved"),
    [
        ("val_loss", [1.0, 0.8, 0.9, 0.7, 0.7], [1, 2, 4]),
        ("val_accuracy", [0.5, 0.4, 0.6, 0.6, 0.9], [1, 3, 5]),
    ],
)
def test_checkpoint_save_best_only(
    tmp_path: Path, monitor: str, values: list[float], saved: list[int]
) -> None:
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=1, batch_size=16, seed=0, verbose=0)  # a training state
    checkpoint = ModelCheckpoint(
        tmp_path / "best-{epoch}.npz", monitor=monitor, save_best_only=True
    )
    drive(checkpoint, model, values, key=monitor)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"best-{e}.npz" for e in saved
    ]
    assert checkpoint.saved == [str(tmp_path / f"best-{e}.npz") for e in saved]


class InjectValLoss(Callback):
    """Replaces the logged ``val_loss`` with a fixed sequence, one value an epoch.

    ``fit`` hands every callback the same logs, and the savers run last, so
    they see these values.
    """

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        logs["val_loss"] = self.values[epoch - 1]


def test_save_best_only_resumes_with_the_same_best(tmp_path: Path) -> None:
    """Interrupted after epoch 2 and resumed, the run saves what an uninterrupted
    run saves: epoch 3 (2.0) beats epoch 1 (3.0) but not epoch 2 (1.0)."""
    x, y = tiny_data()
    values = [3.0, 1.0, 2.0, 0.5]
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"

    def callbacks(directory: Path) -> list[Callback]:
        return [
            InjectValLoss(values),
            ModelCheckpoint(directory / "best-{epoch}.npz", save_best_only=True),
        ]

    tiny_model().fit(
        x,
        y,
        epochs=4,
        batch_size=16,
        seed=0,
        verbose=0,
        callbacks=callbacks(straight_dir),
    )
    first = tiny_model()
    first.fit(
        x,
        y,
        epochs=4,
        batch_size=16,
        seed=0,
        verbose=0,
        callbacks=[*callbacks(resumed_dir), StopAfter(2)],
    )
    resumed = load_model(resumed_dir / "best-2.npz")
    assert resumed.training_state is not None
    saved_state = resumed.training_state.callbacks["1.ModelCheckpoint"]
    resumed.fit(
        x,
        y,
        epochs=4,
        batch_size=16,
        verbose=0,
        resume=True,
        callbacks=callbacks(resumed_dir),
    )
    assert sorted(p.name for p in straight_dir.iterdir()) == [
        "best-1.npz",
        "best-2.npz",
        "best-4.npz",
    ]
    assert sorted(p.name for p in resumed_dir.iterdir()) == sorted(
        p.name for p in straight_dir.iterdir()
    )
    # the file was written because epoch 2 is the best: its state should say so
    assert saved_state == {"best": 1.0}


def test_interrupted_checkpoint_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = tiny_data()
    model = tiny_model()
    real_savez = np.savez
    calls = []

    def failing_savez(file: Any, *args: Any, **kwds: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            file.write(b"PK\x03\x04 half an archive")
            raise OSError("No space left on device")
        real_savez(file, *args, **kwds)

    monkeypatch.setattr(model_file.np, "savez", failing_savez)
    with pytest.raises(OSError, match="No space left"):
        model.fit(
            x,
            y,
            epochs=3,
            batch_size=16,
            seed=0,
            verbose=0,
            callbacks=[ModelCheckpoint(tmp_path / "last.npz")],
        )
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]
    loaded = load_model(tmp_path / "last.npz")
    assert loaded.training_state is not None
    assert loaded.training_state.epoch == 1


@pytest.mark.parametrize("path", ["{foo}.npz", "{0}.npz", "{epoch:q}.npz", "{"])
def test_checkpoint_bad_path_pattern(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match=r"ModelCheckpoint.*\{epoch\}"):
        ModelCheckpoint(str(tmp_path / path))


def test_checkpoint_empty_path() -> None:
    with pytest.raises(ValueError, match="ModelCheckpoint"):
        ModelCheckpoint("")


# ----------------------------------------------------------------- TerminateOnNaN
def exploding_run(tmp_path: Path, callbacks: list[Callback]) -> Any:
    """MSE on a linear model; epoch 1 trains gently, epoch 2 with lr 1e12."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 3))
    y = rng.standard_normal((40, 4))
    model = Sequential([Dense(4)], input_shape=(3,), seed=0).compile(MSE(), SGD(0.01))
    schedule = LearningRateScheduler(lambda t: 0.01 if t == 0 else 1e12, per="epoch")
    with np.errstate(over="ignore", invalid="ignore"):
        return model.fit(
            x,
            y,
            epochs=3,
            batch_size=8,
            seed=0,
            verbose=0,
            callbacks=[
                schedule,
                *callbacks,
            ],
        )


def test_terminate_on_nan_stops_at_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder, guard = Recorder(), TerminateOnNaN()
    checkpoint = ModelCheckpoint(tmp_path / "last.npz", monitor="loss")
    history = exploding_run(tmp_path, [recorder, guard, checkpoint])
    epoch, step, loss, _, _ = recorder.steps[-1]
    assert not math.isfinite(loss)
    assert all(math.isfinite(s[2]) for s in recorder.steps[:-1])
    assert epoch == 2 and step > 1
    assert history.epoch == [1]
    assert guard.message is not None
    assert f"at epoch 2, step {step}" in guard.message
    assert f"at epoch 2, step {step}" in capsys.readouterr().err
    # the checkpoint of epoch 1 is the last good one
    loaded = load_model(tmp_path / "last.npz")
    assert loaded.training_state is not None
    assert loaded.training_state.epoch == 1
    assert all(np.isfinite(w).all() for w in weights(loaded))
    assert checkpoint.saved == [str(tmp_path / "last.npz")]


def test_without_terminate_on_nan_fit_raises(tmp_path: Path) -> None:
    with pytest.raises(FloatingPointError, match=r"diverged.*epoch 2, step \d+"):
        exploding_run(tmp_path, [])


def test_nan_stop_writes_no_checkpoint_of_the_broken_epoch(tmp_path: Path) -> None:
    exploding_run(
        tmp_path, [TerminateOnNaN(), ModelCheckpoint(tmp_path / "e{epoch}.npz")]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["e1.npz"]


# ------------------------------------------------------------------------ loggers
def fit_logged(model: Sequential, epochs: int, callbacks: list[Callback], **kw: Any):
    x, y = tiny_data()
    return model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        validation_split=0.25,
        seed=3,
        verbose=0,
        callbacks=callbacks,
        **kw,
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def assert_csv_matches(path: Path, history: Any) -> None:
    header, rows = read_csv(path)
    assert header == ["epoch", *history.history]
    assert [int(r["epoch"]) for r in rows] == history.epoch
    for i, row in enumerate(rows):
        for key, values in history.history.items():
            assert float(row[key]) == values[i], key


def assert_json_matches(path: Path, history: Any) -> None:
    data = json.loads(path.read_text())
    assert data == {"epoch": history.epoch, **history.history}


def test_csv_and_json_loggers(tmp_path: Path) -> None:
    history = fit_logged(
        tiny_model(),
        3,
        [CSVLogger(tmp_path / "log.csv"), JSONLogger(tmp_path / "h.json")],
    )
    assert set(history.history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
    }
    assert_csv_matches(tmp_path / "log.csv", history)
    assert_json_matches(tmp_path / "h.json", history)
    # written atomically: no temporary files left beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.json", "log.csv"]


def test_loggers_after_resume_hold_every_epoch_once(tmp_path: Path) -> None:
    def loggers() -> list[Callback]:
        return [CSVLogger(tmp_path / "log.csv"), JSONLogger(tmp_path / "h.json")]

    first = fit_logged(
        tiny_model(),
        4,
        [*loggers(), ModelCheckpoint(tmp_path / "ck.npz"), StopAfter(2)],
    )
    assert first.epoch == [1, 2]
    assert len(read_csv(tmp_path / "log.csv")[1]) == 2
    model = load_model(tmp_path / "ck.npz")
    history = fit_logged(model, 4, loggers(), resume=True)
    assert history.epoch == [1, 2, 3, 4]
    assert_csv_matches(tmp_path / "log.csv", history)
    assert_json_matches(tmp_path / "h.json", history)
    straight = fit_logged(tiny_model(), 4, [])
    assert straight.history == history.history


def test_a_fresh_fit_starts_the_logs_again(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path / "log.csv")
    model = tiny_model()
    fit_logged(model, 2, [logger])
    history = fit_logged(model, 1, [logger])
    assert_csv_matches(tmp_path / "log.csv", history)


# -------------------------------------------------------------- learning rates
def test_scheduler_per_step_sets_lr_before_each_step() -> None:
    x, y = tiny_data(48)

    def schedule(t: int) -> float:
        return 0.2 / (1 + t)

    recorder = Recorder()
    model = tiny_model()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=[recorder, LearningRateScheduler(schedule, per="step")],
    )
    assert [s[4] for s in recorder.steps] == [1, 2, 3, 4, 5, 6]
    assert [s[3] for s in recorder.steps] == [schedule(t) for t in range(6)]

    # the same updates by hand: the rate really is the one each step used
    manual = tiny_model()
    assert manual.optimizer is not None
    xf = x.astype(np.float32)
    for t in range(6):
        manual.optimizer.lr = schedule(t)
        rows = slice(16 * (t % 3), 16 * (t % 3 + 1))
        manual.train_step(xf[rows], y[rows])
    assert_same_weights(weights(model), weights(manual))


def test_scheduler_per_epoch_uses_the_epoch_index() -> None:
    x, y = tiny_data(48)
    recorder = Recorder()
    rates = [0.3, 0.2, 0.1]
    history = tiny_model().fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        seed=0,
        verbose=0,
        callbacks=[recorder, LearningRateScheduler(lambda e: rates[e], per="epoch")],
    )
    assert [(s[0], s[3]) for s in recorder.steps] == [
        (e, rates[e - 1]) for e in (1, 2, 3) for _ in range(3)
    ]
    assert history["lr"] == rates


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0.1,), TypeError, "callable"),
        ((lambda t: 0.1, "batch"), ValueError, "per"),
    ],
)
def test_scheduler_bad_arguments(
    args: tuple[Any, ...], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        LearningRateScheduler(*args)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_scheduler_bad_rate_from_schedule(bad: float) -> None:
    x, y = tiny_data(16)
    with pytest.raises(ValueError, match="LearningRateScheduler"):
        tiny_model().fit(
            x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda t: bad)]
        )


def plateau_rates(values: list[float], **kwargs: Any) -> list[float]:
    model = tiny_model(lr=1.0)
    plateau = ReduceLROnPlateau(verbose=False, **kwargs)
    plateau.set_model(model)
    assert model.optimizer is not None
    rates = []
    for epoch, value in enumerate(values, 1):
        plateau.on_epoch_end(epoch, {"val_loss": value})
        rates.append(model.optimizer.lr)
    return rates


def torch_plateau_rates(values: list[float], **kwargs: Any) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=kwargs.get("factor", 0.1),
        patience=kwargs.get("patience", 10),
        threshold=kwargs.get("min_delta", 1e-4),
        threshold_mode="abs",
        cooldown=kwargs.get("cooldown", 0),
        min_lr=kwargs.get("min_lr", 0.0),
    )
    rates = []
    for value in values:
        scheduler.step(value)
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_plateau_reduces_after_patience() -> None:
    rates = plateau_rates([1.0, 1.0, 1.0, 1.0, 1.0], factor=0.5, patience=2)
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5]


def test_plateau_improvement_resets_the_wait() -> None:
    rates = plateau_rates([1.0, 1.0, 0.5, 0.5, 0.5], factor=0.5, patience=1)
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5]


def test_plateau_cooldown_epochs_pass_before_waiting_again() -> None:
    # reduce at epoch 2; epochs 3 and 4 cool down; epoch 5 stalls again: reduce
    rates = plateau_rates([1.0] * 8, factor=0.5, patience=0, cooldown=2)
    assert rates == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_plateau_min_lr_is_a_floor() -> None:
    rates = plateau_rates([1.0] * 6, factor=0.5, patience=0, min_lr=0.2)
    assert rates == [1.0, 0.5, 0.25, 0.2, 0.2, 0.2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 0.5, "patience": 0},
        {"factor": 0.5, "patience": 2},
        {"factor": 0.1, "patience": 1, "min_delta": 0.05},
        {"factor": 0.5, "patience": 0, "min_lr": 0.1},
        {"factor": 0.5, "patience": 0, "cooldown": 1},
        {"factor": 0.5, "patience": 1, "cooldown": 2},
    ],
)
def test_plateau_matches_torch(kwargs: dict[str, Any]) -> None:
    # short enough that torch's eps (no change below 1e-8) never matters
    values = [1.0, 0.99, 0.98, 0.9, 0.95, 0.95, 0.7, 0.8, 0.9, 1.0, 0.69, 0.7, 0.7, 0.7]
    assert plateau_rates(values, **kwargs) == torch_plateau_rates(values, **kwargs)


def test_plateau_state_round_trip() -> None:
    model = tiny_model(lr=1.0)
    plateau = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, verbose=False)
    drive(plateau, model, [1.0, 1.0, 1.0])
    state = json.loads(json.dumps(plateau.get_state()))
    copy = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, verbose=False)
    copy.set_state(state)
    assert (copy.monitor.best, copy.wait, copy.cooldown_left) == (
        plateau.monitor.best,
        plateau.wait,
        plateau.cooldown_left,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 1.0},
        {"factor": 0.0},
        {"factor": -0.5},
        {"patience": -1},
        {"cooldown": -1},
        {"min_lr": -1.0},
        {"mode": "up"},
    ],
)
def test_plateau_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        ReduceLROnPlateau(**kwargs)


def test_plateau_missing_metric() -> None:
    plateau = ReduceLROnPlateau()
    plateau.set_model(tiny_model())
    with pytest.raises(ValueError, match=r"'val_loss'.*available: loss"):
        plateau.on_epoch_end(1, {"loss": 1.0})


def test_two_callbacks_of_one_class_keep_their_own_state(tmp_path: Path) -> None:
    """Each callback gets back its own counters on resume, even with a twin."""
    by_loss = EarlyStopping(monitor="loss", patience=5, verbose=False)
    by_val = EarlyStopping(monitor="val_loss", patience=5, verbose=False)
    fit_logged(tiny_model(), 2, [by_loss, by_val, ModelCheckpoint(tmp_path / "c.npz")])
    assert by_loss.monitor.best != by_val.monitor.best
    again_loss = EarlyStopping(monitor="loss", patience=5, verbose=False)
    again_val = EarlyStopping(monitor="val_loss", patience=5, verbose=False)
    # resuming a finished run restores the callbacks and trains no further
    fit_logged(load_model(tmp_path / "c.npz"), 2, [again_loss, again_val], resume=True)
    assert again_loss.monitor.best == by_loss.monitor.best
    assert again_val.monitor.best == by_val.monitor.best


# ----------------------------------------------------------------------- order
def test_runs_last_callbacks_see_the_others_changes() -> None:
    x, y = tiny_data(32)
    calls: list[tuple[str, int]] = []

    class Saver(Callback):
        runs_last = True
        seen: ClassVar[list[tuple[float, int]]] = []

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            assert self.model is not None and self.model.optimizer is not None
            assert self.model.training_state is not None
            calls.append(("saver", epoch))
            self.seen.append((self.model.optimizer.lr, self.model.training_state.epoch))

    class Changer(Callback):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            assert self.model is not None and self.model.optimizer is not None
            calls.append((self.name, epoch))
            self.model.optimizer.lr = 0.125 * epoch

    saver = Saver()
    tiny_model().fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        seed=0,
        verbose=0,
        callbacks=[saver, Changer("a"), Changer("b")],
    )
    assert calls == [
        ("a", 1),
        ("b", 1),
        ("saver", 1),
        ("a", 2),
        ("b", 2),
        ("saver", 2),
    ]
    assert saver.seen == [(0.125, 1), (0.25, 2)]


@pytest.mark.parametrize("bad", [object(), print, EarlyStopping])
def test_fit_rejects_objects_that_are_not_callbacks(bad: object) -> None:
    x, y = tiny_data(16)
    with pytest.raises(TypeError, match=r"callbacks\[1\] is not a Callback"):
        tiny_model().fit(x, y, verbose=0, callbacks=[TerminateOnNaN(), bad])  # type: ignore[list-item]


def test_every_checkpoint_records_every_savers_state_of_that_epoch(
    tmp_path: Path,
) -> None:
    """``last.npz`` written after epoch 2 knows the best checkpoint's best is
    epoch 2's value, though the best saver runs after the last saver."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        seed=0,
        verbose=0,
        callbacks=[
            InjectValLoss([3.0, 1.0]),
            ModelCheckpoint(tmp_path / "last.npz"),
            ModelCheckpoint(tmp_path / "best.npz", save_best_only=True),
        ],
    )
    for name in ("last.npz", "best.npz"):
        state = load_model(tmp_path / name).training_state
        assert state is not None
        assert state.callbacks["2.ModelCheckpoint"] == {"best": 1.0}, name


def test_fit_without_a_seed_records_the_one_it_drew() -> None:
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0)
    assert model.training_state is not None
    assert isinstance(model.training_state.seed, int)

"""HealthMonitor: one record per check, each warning printed once per run, and
both kept across a checkpoint resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule.callbacks
from chainrule.callbacks import Callback, ModelCheckpoint
from chainrule.cli.train import StopAfter
from chainrule.diagnostics import HealthMonitor, HealthThresholds
from chainrule.io import load_model
from chainrule.layers import Dense, Dropout, Sigmoid, Tanh
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD


def data(n: int = 32, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)) * scale
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)


def healthy() -> Sequential:
    model = Sequential([Dense(8), Tanh(), Dense(3)], input_shape=(4,), seed=0)
    return model.compile(CrossEntropy(), SGD(0.1))


def saturated() -> Sequential:
    """N(0, 1) weights on inputs scaled by 30: nearly every sigmoid is flat."""
    layers = [Dense(8, init="normal"), Sigmoid(), Dense(3)]
    model = Sequential(layers, input_shape=(4,), seed=0)
    return model.compile(CrossEntropy(), SGD(1e-4))


def fit(model: Sequential, epochs: int, callbacks: list[Callback], **kw: Any) -> None:
    """Train on data scaled as the model's probe batch (30x for saturated())."""
    x, y = data(64, scale=1.0 if model.layers[1].__class__ is Tanh else 30.0)
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks, **kw)


def test_one_record_before_training_and_one_per_epoch() -> None:
    monitor = HealthMonitor(*data(), print_fn=None)
    fit(healthy(), 3, [monitor])
    assert [r["epoch"] for r in monitor.records] == [0, 1, 2, 3]
    record = monitor.records[-1]
    assert record["batch_size"] == 32 and record["warnings"] == []
    assert [row["layer"] for row in record["layers"]] == [
        "Dense(units=8)",
        "Tanh()",
        "Dense(units=3)",
    ]
    assert set(record["layers"][0]["params"]["W"]) == {"norm", "grad_norm", "ratio"}
    assert monitor.report is not None and monitor.report.ok
    json.dumps(monitor.get_state(), allow_nan=False)  # fits a checkpoint header


def test_every_n_epochs() -> None:
    monitor = HealthMonitor(*data(), every=2, print_fn=None)
    fit(healthy(), 5, [monitor])
    assert [r["epoch"] for r in monitor.records] == [0, 2, 4]


def test_a_warning_is_printed_once_with_its_fix() -> None:
    printed: list[str] = []
    monitor = HealthMonitor(*data(scale=30.0), print_fn=printed.append)
    fit(saturated(), 3, [monitor])
    assert all(r["warnings"] for r in monitor.records)  # found at every check
    assert len(printed) == 1  # but said once
    assert printed[0].startswith(
        "health warning before training: layer 1 Sigmoid() after layer 0 "
        "Dense(units=8, init='normal'): "
    )
    assert "\n  fix: use init='glorot' in layer 0" in printed[0]
    assert monitor.printed == {(1, "saturated")}


def test_a_new_fit_starts_a_new_run() -> None:
    printed: list[str] = []
    monitor = HealthMonitor(*data(scale=30.0), print_fn=printed.append)
    model = saturated()
    fit(model, 1, [monitor])
    fit(model, 1, [monitor])
    assert len(printed) == 2
    assert [r["epoch"] for r in monitor.records] == [0, 1]


def test_state_round_trips_through_json() -> None:
    printed: list[str] = []
    monitor = HealthMonitor(*data(scale=30.0), print_fn=printed.append)
    model = saturated()
    fit(model, 2, [monitor])
    state = json.loads(json.dumps(monitor.get_state(), allow_nan=False))
    again = HealthMonitor(*data(scale=30.0), print_fn=printed.append)
    again.set_state(state)
    assert again.records == monitor.records
    assert again.printed == monitor.printed
    again.set_model(model)
    again.check(3)
    assert len(printed) == 1  # already said before the state was saved
    assert [r["epoch"] for r in again.records] == [0, 1, 2, 3]


def test_a_resumed_run_keeps_its_records_and_says_nothing_twice(
    tmp_path: Path,
) -> None:
    printed: list[str] = []

    def monitor() -> HealthMonitor:
        return HealthMonitor(*data(scale=30.0), print_fn=printed.append)

    first = monitor()
    fit(saturated(), 4, [first, ModelCheckpoint(tmp_path / "ck.npz"), StopAfter(2)])
    assert [r["epoch"] for r in first.records] == [0, 1, 2]
    resumed = monitor()
    fit(load_model(tmp_path / "ck.npz"), 4, [resumed], resume=True)
    assert [r["epoch"] for r in resumed.records] == [0, 1, 2, 3, 4]
    assert resumed.records[:3] == first.records
    assert len(printed) == 1


def test_monitoring_does_not_change_training() -> None:
    """Probing restores dropout generators and gradients: same weights, bit for bit."""

    def train(callbacks: list[Callback]) -> list[np.ndarray]:
        layers = [Dense(8), Dropout(0.5), Tanh(), Dense(3)]
        model = Sequential(layers, input_shape=(4,), seed=0)
        model.compile(CrossEntropy(), SGD(0.1, momentum=0.9))
        model.fit(*data(64), epochs=3, batch_size=16, seed=1, verbose=0,
                  callbacks=callbacks)  # fmt: skip
        return [p.data.copy() for p in model.parameters()]

    watched = train([HealthMonitor(*data(), print_fn=None)])
    for plain, seen in zip(train([]), watched, strict=True):
        np.testing.assert_array_equal(plain, seen)


def test_custom_thresholds_are_used() -> None:
    never = HealthThresholds(saturated=1.0, saturated_slope=1e-9)
    monitor = HealthMonitor(*data(scale=30.0), print_fn=None, thresholds=never)
    fit(saturated(), 1, [monitor])
    assert all(r["warnings"] == [] for r in monitor.records)


def test_it_is_also_a_callback_of_chainrule_callbacks() -> None:
    assert chainrule.callbacks.HealthMonitor is HealthMonitor


# --------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, "HealthMonitor: every must be a positive integer"),
        ({"every": 1.5}, ValueError, "every must be a positive integer, got 1.5"),
        ({"y": np.zeros(31)}, ValueError, "y has 31 rows but x has 32"),
        ({"x": np.zeros((0, 4))}, ValueError, r"x must be a non-empty batch"),
        ({"x": ["a", "b"]}, TypeError, "x must hold numbers, got dtype <U1"),
        ({"print_fn": "stdout"}, TypeError, "print_fn must be callable or None"),
        ({"thresholds": {"dead": 0.1}}, TypeError, "must be a HealthThresholds"),
    ],
)
def test_bad_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    x, y = data()
    arguments: dict[str, Any] = {"x": x, "y": y, **kwargs}
    with pytest.raises(error, match=match):
        HealthMonitor(**arguments)


def test_checking_needs_a_model() -> None:
    with pytest.raises(RuntimeError, match="pass it to fit"):
        HealthMonitor(*data()).check(0)

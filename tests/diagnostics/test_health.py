"""Training-health checks: each measurement against a hand computation, each
warning on a model built to have the problem, and no warning on healthy ones.

The tutorial preset on real MNIST is the known sick model: its N(0, 1) weights
saturate most first-layer sigmoids. Everything else runs on tiny batches.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from chainrule.diagnostics import (
    HealthReport,
    HealthThresholds,
    check_health,
    probe,
)
from chainrule.diagnostics.health import dead_fraction, saturated_fractions
from chainrule.layers import (
    Conv2D,
    Dense,
    Flatten,
    Layer,
    ReLU,
    Rescaling,
    Sigmoid,
    Tanh,
)
from chainrule.losses import BinaryCrossEntropy, CrossEntropy
from chainrule.model import Sequential
from chainrule.ops import sigmoid
from chainrule.optim import SGD
from chainrule.presets import make_model

# where the slope falls to 4% of its peak: 4a(1 - a) = 0.04 and 1 - y² = 0.04
SIGMOID_EDGE = float(np.log((1 + np.sqrt(0.96)) / (1 - np.sqrt(0.96))))  # 4.5849
TANH_EDGE = float(np.arctanh(np.sqrt(0.96)))  # 2.2924


def compiled(layers: list[Layer], input_shape: tuple[int, ...]) -> Sequential:
    model = Sequential(layers, input_shape=input_shape, seed=0)
    return model.compile(CrossEntropy(), SGD(0.1))


def tiny_batch(n: int = 16, features: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, features)), rng.integers(0, 3, n)


def kinds(report: HealthReport) -> list[tuple[int | None, str]]:
    return [(w.layer, w.kind) for w in report.warnings]


def mnist_batch(mnist: Any, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    (x, y), _ = mnist
    return x[:n], y[:n]


# ------------------------------------------------------------------ real MNIST
def test_the_tutorial_init_saturates_its_first_sigmoids(mnist: Any) -> None:
    report = check_health(make_model("tutorial", seed=0), *mnist_batch(mnist))
    first = report.layers[3]
    assert first.layer == "Sigmoid()"
    assert first.saturated is not None and first.saturated > 0.5
    saturated = [w for w in report.warnings if w.kind == "saturated"]
    assert [w.layer for w in saturated] == [3]
    warning = saturated[0]
    assert warning.message.startswith(
        "layer 3 Sigmoid() after layer 2 Dense(units=64, use_bias=False, "
        f"init='normal'): {first.saturated:.0%} of units saturated"
    )
    assert "init='glorot' in layer 2" in warning.fix
    assert "fix: use init='glorot'" in report.format()


def tutorial_with_glorot() -> Sequential:
    layers: list[Layer] = [Rescaling(1 / 255), Flatten()]
    for _ in range(2):
        layers += [Dense(64, use_bias=False, init="glorot"), Sigmoid()]
    model = Sequential(
        [*layers, Dense(10, use_bias=False)], input_shape=(28, 28), seed=0
    )
    return model.compile(BinaryCrossEntropy(reduction="batchmean"), SGD(2.0))


def he_relu_mlp() -> Sequential:
    layers: list[Layer] = [Rescaling(1 / 255), Flatten()]
    for _ in range(2):
        layers += [Dense(128, init="he"), ReLU()]
    return compiled([*layers, Dense(10)], (28, 28))


@pytest.mark.parametrize("build", [tutorial_with_glorot, he_relu_mlp])
def test_healthy_models_get_no_warning(mnist: Any, build: Any) -> None:
    report = check_health(build(), *mnist_batch(mnist))
    assert report.ok, report.format()
    assert report.warnings == []
    activations = [r for r in report.layers if r.dead is not None or r.saturated]
    for row in activations:
        assert (row.dead or 0.0) < 0.05 and (row.saturated or 0.0) < 0.05
    assert report.format().endswith("no warnings")


# --------------------------------------------------------------- hand numbers
def test_norms_are_those_of_the_probed_parameters_and_gradients() -> None:
    model = compiled([Dense(4), Tanh(), Dense(3)], (5,))
    x, y = tiny_batch()
    report = check_health(model, x, y)
    probed = probe(model, x, y)
    for index in (0, 2):
        row = report.layers[index]
        assert [p.name for p in row.params] == ["W", "b"]
        for p in row.params:
            weight = probed[index].params[p.name].astype(np.float64)
            grad = probed[index].grads[p.name].astype(np.float64)
            assert p.norm == pytest.approx(np.sqrt((weight**2).sum()))
            assert p.grad_norm == pytest.approx(np.sqrt((grad**2).sum()))
    w0, w2 = report.layers[0].params[0], report.layers[2].params[0]
    assert w0.ratio == pytest.approx(w0.grad_norm / w0.norm)
    assert report.gradient_spread == pytest.approx(w0.ratio / w2.ratio)
    bias = report.layers[0].params[1]  # zero-initialised: no ratio to take
    assert bias.norm == 0 and bias.ratio is None
    assert report.loss == pytest.approx(probed.loss)


def test_saturation_counted_by_hand() -> None:
    # columns: saturated on 2 of 3 samples, on none, on 1 of 3, on 2 of 3
    z = np.array(
        [[-10.0, 0.0, 4.0, 5.0], [10.0, 1.0, -4.0, 6.0], [0.0, 0.0, -6.0, 0.0]]
    )
    sig = check_health(Sequential([Sigmoid()], input_shape=(4,)), z).layers[0]
    assert (sig.saturated, sig.saturated_values) == (2 / 4, 5 / 12)
    # tanh saturates at half the |z|: the same table with z halved
    tanh = check_health(Sequential([Tanh()], input_shape=(4,)), z / 2).layers[0]
    assert (tanh.saturated, tanh.saturated_values) == (2 / 4, 5 / 12)


def test_saturation_per_channel_of_images() -> None:
    y = np.full((2, 3, 2, 2), 0.5)
    y[:, 0] = 0.999  # every value of channel 0
    y[0, 1] = 0.001  # half the values of channel 1: not most of them
    assert saturated_fractions(y, "sigmoid") == (1 / 3, (8 + 4) / 24)


def test_dead_relu_units_of_a_dense_layer() -> None:
    model = compiled([Dense(8), ReLU(), Dense(3)], (5,))
    layer = model.layers[0]
    assert isinstance(layer, Dense) and layer.b is not None
    layer.b.data[:4] = -100.0  # far below anything x·W reaches
    report = check_health(model, *tiny_batch())
    assert report.layers[1].dead == 0.5
    assert kinds(report) == [(1, "dead_relu")]
    message = report.warnings[0].message
    assert message.startswith("layer 1 ReLU() after layer 0 Dense(units=8): 50%")
    assert "LeakyReLU" in report.warnings[0].fix


def test_a_few_dead_units_are_measured_but_not_flagged() -> None:
    model = compiled([Dense(8), ReLU(), Dense(3)], (5,))
    layer = model.layers[0]
    assert isinstance(layer, Dense) and layer.b is not None
    layer.b.data[0] = -100.0
    report = check_health(model, *tiny_batch())
    assert report.layers[1].dead == 1 / 8
    assert report.ok


def test_dead_relu_counts_channels_of_a_conv() -> None:
    model = compiled([Conv2D(4, 3), ReLU(), Flatten(), Dense(3)], (1, 6, 6))
    conv = model.layers[0]
    assert isinstance(conv, Conv2D) and conv.b is not None
    conv.b.data[1] = -100.0
    rng = np.random.default_rng(1)
    report = check_health(model, rng.random((4, 1, 6, 6)), rng.integers(0, 3, 4))
    assert report.layers[1].dead == 0.25
    assert kinds(report) == [(1, "dead_relu")]


def test_dead_fraction_by_hand() -> None:
    z = np.array([[-1.0, 0.0, 2.0], [-3.0, 0.0, -1.0]])  # unit 2 fires once
    assert dead_fraction(z) == 2 / 3


# ------------------------------------------------------------------- NaN / Inf
def test_a_nan_weight_is_located_where_it_is() -> None:
    model = compiled([Dense(4), Tanh(), Dense(4), Tanh(), Dense(3)], (5,))
    layer = model.layers[2]
    assert isinstance(layer, Dense) and layer.W is not None
    layer.W.data[1, 2] = np.nan
    report = check_health(model, *tiny_batch())
    assert report.loss is not None and np.isnan(report.loss)
    assert kinds(report) == [(2, "nonfinite")]
    warning = report.warnings[0]
    assert warning.message == (
        "layer 2 Dense(units=4): NaN/Inf first appear here (W has 1 NaN; y has 16 NaN)"
    )
    assert "clip_norm" in warning.fix and "learning rate" in warning.fix
    assert report.layers[2].nonfinite == ["y", "W", "dy", "dx", "dW", "db"]
    assert report.layers[0].nonfinite == ["dy", "dx", "dW", "db"]
    # strict JSON (checkpoint headers refuse NaN): bad numbers become null
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["loss"] is None
    assert data["layers"][2]["params"]["W"]["norm"] is None
    assert "NaN/Inf" in report.format()
    assert np.isnan(layer.W.data[1, 2])  # the model is left as it was


def test_an_inf_input_is_reported_without_running_the_model() -> None:
    x, y = tiny_batch()
    x[3, 1] = np.inf
    x[0, 0] = np.nan
    report = check_health(compiled([Dense(3)], (5,)), x, y)
    assert kinds(report) == [(None, "nonfinite")]
    assert report.warnings[0].message == "the input batch x has 1 NaN and 1 Inf"
    assert report.layers == [] and report.batch_size == 16


def test_an_overflow_inside_the_model_is_located() -> None:
    # float32 overflows past 3.4e38: finite in, infinite out of layer 0
    model = compiled([Rescaling(1e30), Dense(3)], (5,))
    x, y = tiny_batch()
    report = check_health(model, x * 1e10, y)
    assert kinds(report)[0] == (0, "nonfinite")
    assert "y has" in report.warnings[0].message
    assert "Inf" in report.warnings[0].message


# -------------------------------------------------------------------- vanishing
def test_vanishing_gradients_in_a_deep_sigmoid_stack() -> None:
    layers: list[Layer] = []
    for _ in range(8):
        layers += [Dense(16), Sigmoid()]
    report = check_health(compiled([*layers, Dense(3)], (5,)), *tiny_batch())
    assert report.gradient_spread is not None and report.gradient_spread < 1e-3
    assert kinds(report) == [(0, "vanishing_gradient")]
    assert "layer 16 Dense(units=3)" in report.warnings[0].message
    assert "init='he'" in report.warnings[0].fix


def test_thresholds_decide_what_is_flagged() -> None:
    model = compiled([Dense(8), ReLU(), Dense(3)], (5,))
    layer = model.layers[0]
    assert isinstance(layer, Dense) and layer.b is not None
    layer.b.data[0] = -100.0
    strict = HealthThresholds(dead=0.1)
    assert kinds(check_health(model, *tiny_batch(), strict)) == [(1, "dead_relu")]


# ----------------------------------------------------------------- no targets
def test_without_targets_only_the_forward_pass_is_checked() -> None:
    model = compiled([Dense(4), Sigmoid(), Dense(3)], (5,))
    report = check_health(model, tiny_batch()[0])
    assert report.loss is None and report.gradient_spread is None
    assert all(p.grad_norm is None and p.ratio is None for p in report.layers[0].params)
    assert report.layers[1].saturated == 0.0
    assert "loss" not in report.format().splitlines()[0]


# ------------------------------------------------------------------- format
def test_format_is_a_table_of_the_layers_with_measurements() -> None:
    model = compiled([Flatten(), Dense(4), Tanh(), Dense(3)], (5,))
    lines = check_health(model, *tiny_batch()).format().splitlines()
    assert lines[0].startswith("health check on 16 samples, loss ")
    assert lines[1].split() == [
        "#", "layer", "param", "norm", "grad", "norm", "grad/norm", "dead", "saturated"
    ]  # fmt: skip
    assert set(lines[2]) == {"-"}
    assert lines[3].split()[:3] == ["1", "Dense(units=4)", "W"]
    assert lines[4].split()[0] == "b"  # the same layer's next parameter
    assert lines[5].split() == ["2", "Tanh()", "0%"]
    assert not any(line.startswith("0 ") for line in lines)  # Flatten: nothing
    assert lines[-1] == "no warnings"


# --------------------------------------------------------------- bad arguments
def test_mismatched_targets_are_refused() -> None:
    x, y = tiny_batch()
    with pytest.raises(ValueError, match="y has 15 rows but x has 16"):
        check_health(compiled([Dense(3)], (5,)), x, y[:-1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dead": 0}, r"dead must be a fraction in \(0, 1\], got 0.0"),
        ({"saturated": 1.5}, r"saturated must be a fraction in \(0, 1\], got 1.5"),
        ({"vanishing": -1e-3}, "vanishing must be a fraction"),
    ],
)
def test_bad_thresholds_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HealthThresholds(**kwargs)


def test_thresholds_must_be_numbers() -> None:
    with pytest.raises(TypeError, match="saturated_slope must be a number"):
        HealthThresholds(saturated_slope="4%")


def test_saturation_needs_a_known_activation() -> None:
    with pytest.raises(ValueError, match="'sigmoid' or 'tanh', got 'relu'"):
        saturated_fractions(np.zeros((2, 2)), "relu")


# ----------------------------------------------------------------- properties
away_from_edges = st.floats(-20, 20).filter(
    lambda z: abs(abs(z) - SIGMOID_EDGE) > 1e-3 and abs(abs(z) - 2 * TANH_EDGE) > 1e-3
)


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 5)),
        elements=away_from_edges,
    )
)
def test_a_saturated_sigmoid_is_one_past_the_edge(z: np.ndarray) -> None:
    units, values = saturated_fractions(sigmoid(z), "sigmoid")
    past = np.abs(z) > SIGMOID_EDGE
    assert values == pytest.approx(past.mean())
    assert units == pytest.approx((past.mean(axis=0) > 0.5).mean())
    # tanh(z/2) = 2σ(z) − 1: the same units saturate, at half the |z|
    assert saturated_fractions(np.tanh(z / 2), "tanh") == pytest.approx((units, values))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_fractions_are_in_zero_one_and_the_model_is_unchanged(
    n: int, units: int, seed: int
) -> None:
    model = compiled([Dense(units, init="normal"), ReLU(), Dense(3)], (5,))
    before = [p.data.copy() for p in model.parameters()]
    rng = np.random.default_rng(seed)
    report = check_health(model, rng.standard_normal((n, 5)) * 3, rng.integers(0, 3, n))
    dead = report.layers[1].dead
    assert dead is not None and 0 <= dead <= 1
    assert dead * units == pytest.approx(round(dead * units))
    for old, new in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(old, new.data)

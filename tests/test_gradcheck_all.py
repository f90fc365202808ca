"""Every layer and loss passes a float64 central-difference gradient check."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.layers
from chainrule import backend
from chainrule.gradcheck import gradcheck
from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.layers.base import no_backward
from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy
from chainrule.model import Sequential
from chainrule.presets import PRESETS, make_model

TOLERANCE = 1e-6


def away_from_kinks(x: np.ndarray, margin: float = 1e-2) -> np.ndarray:
    """Push values out of (-margin, margin) so ReLU-like kinks are not straddled."""
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin * 2, x)


# (factory, input shape without batch) for every layer
LAYERS = {
    "Dense": (lambda: Dense(7), (5,)),
    "Dense-no-bias": (lambda: Dense(3, use_bias=False, init="normal"), (6,)),
    "Dense-he": (lambda: Dense(4, init="he"), (9,)),
    "Dense-max-norm": (lambda: Dense(4, max_norm=2.0), (9,)),
    "Dropout": (lambda: Dropout(0.4, seed=3), (6,)),
    "Sigmoid": (Sigmoid, (6,)),
    "Tanh": (Tanh, (6,)),
    "ReLU": (ReLU, (6,)),
    "LeakyReLU": (lambda: LeakyReLU(0.1), (6,)),
    "Softmax": (Softmax, (5,)),
    "Identity": (Identity, (4,)),
    "Flatten": (Flatten, (2, 3, 4)),
    "Rescaling": (lambda: Rescaling(0.5, 0.25), (3, 2)),
    "Reshape": (lambda: Reshape((3, -1)), (2, 6)),
    "Conv2D": (lambda: Conv2D(3, 3, padding=1, bias_init="normal"), (2, 5, 5)),
    "Conv2D-strided-same": (
        lambda: Conv2D(2, (2, 3), stride=2, padding="same", use_bias=False),
        (2, 7, 9),
    ),
    # random normals: no two values of a window within the difference step
    "MaxPool2D": (lambda: MaxPool2D(2), (2, 5, 6)),
    "MaxPool2D-overlapping": (lambda: MaxPool2D(3, stride=2), (2, 7, 7)),
    "AvgPool2D": (lambda: AvgPool2D(2), (2, 5, 6)),
    "AvgPool2D-overlapping": (lambda: AvgPool2D((2, 3), stride=1), (2, 4, 5)),
    "GlobalAvgPool2D": (GlobalAvgPool2D, (3, 4, 5)),
    # image-shaped, so a batch of 1 still has 20 (or 6) values per channel
    "BatchNorm": (BatchNorm, (3, 4, 5)),
    "BatchNorm-channels-length": (lambda: BatchNorm(momentum=0.3), (2, 6)),
}


def test_every_public_layer_is_checked() -> None:
    public = {
        name
        for name in chainrule.layers.__all__
        if isinstance(getattr(chainrule.layers, name), type)
        and issubclass(getattr(chainrule.layers, name), Layer)
        and name != "Layer"
    }
    assert {type(factory()).__name__ for factory, _ in LAYERS.values()} == public


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("batch", [1, 4])
def test_layer_gradients(name: str, batch: int) -> None:
    factory, shape = LAYERS[name]
    rng = np.random.default_rng(7)
    layer = factory()
    with backend.precision("float64"):
        layer.build(shape, rng)
    x = away_from_kinks(rng.standard_normal((batch, *shape)))
    report = gradcheck(layer, x, tolerance=TOLERANCE, max_elements=10_000)
    assert report.passed, report.format()
    names = {r.name for r in report.results}
    assert "input" in names
    assert names - {"input"} == {n for n, _ in layer.named_parameters()}


def test_big_tensors_use_directions_and_still_pass() -> None:
    rng = np.random.default_rng(3)
    layer = Dense(40)
    with backend.precision("float64"):
        layer.build((60,), rng)
    report = gradcheck(layer, rng.standard_normal((5, 60)), max_elements=100)
    assert report["W"].method == "directions+sample"
    assert report.passed, report.format()


LOSSES = {
    "CrossEntropy-labels": (CrossEntropy(), "labels"),
    "CrossEntropy-probs": (CrossEntropy(), "probs"),
    "CrossEntropy-sum": (CrossEntropy(reduction="sum"), "labels"),
    "BCE-mean": (BinaryCrossEntropy(), "binary"),
    "BCE-batchmean-labels": (BinaryCrossEntropy(reduction="batchmean"), "labels"),
    "MSE": (MSE(), "real"),
    "MSE-sum": (MSE(reduction="sum"), "real"),
}


def _targets(kind: str, rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    if kind == "labels":
        return rng.integers(0, c, n)
    if kind == "probs":
        p = rng.random((n, c))
        return p / p.sum(axis=1, keepdims=True)
    if kind == "binary":
        return rng.random((n, c))
    return rng.standard_normal((n, c))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients(name: str) -> None:
    loss, kind = LOSSES[name]
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((6, 5)) * 3
    report = gradcheck(loss, logits, _targets(kind, rng, 6, 5), tolerance=TOLERANCE)
    assert report.passed, report.format()
    assert report["input"].checked == logits.size


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_pass(preset: str) -> None:
    rng = np.random.default_rng(0)
    model = make_model(preset, seed=0)
    x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    report = gradcheck(model, x, rng.integers(0, 10, 4), max_elements=1000)
    assert report.passed, report.format()
    assert {r.name for r in report.results} == {
        *(n for n, _ in model.named_parameters()),
        "input",
    }


def test_model_without_targets_uses_random_projection() -> None:
    model = Sequential([Dense(4), Tanh(), Dense(3)], input_shape=(5,), seed=1)
    report = gradcheck(model, np.random.default_rng(2).standard_normal((3, 5)))
    assert report.passed, report.format()


def test_gradcheck_leaves_the_model_untouched() -> None:
    model = make_model("tutorial", seed=0)
    before = [p.data.copy() for p in model.parameters()]
    gradcheck(model, np.zeros((2, 28, 28), np.uint8), np.array([1, 2]))
    assert model.dtype == np.float32
    for b, p in zip(before, model.parameters(), strict=True):
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(b, p.data)


class BrokenDense(Dense):
    """Dense whose backward forgets the factor x in dL/dW: must be caught."""

    def forward(self, x, training):  # type: ignore[no-untyped-def]
        y, _ = super().forward(x, training)
        W = self.W
        assert W is not None

        def backward(dy):  # type: ignore[no-untyped-def]
            W.grad += np.ones_like(x).T @ dy
            return dy @ W.data.T

        return y, backward if training else no_backward


def test_a_wrong_backward_is_caught() -> None:
    rng = np.random.default_rng(5)
    layer = BrokenDense(3, use_bias=False)
    with backend.precision("float64"):
        layer.build((4,), rng)
    report = gradcheck(layer, rng.standard_normal((2, 4)))
    assert not report.passed
    assert not report["W"].passed(report.tolerance)
    assert report["input"].passed(report.tolerance)
    assert "FAIL" in report.format()


def test_a_wrong_big_gradient_is_caught_by_directions() -> None:
    rng = np.random.default_rng(6)
    layer = BrokenDense(30, use_bias=False)
    with backend.precision("float64"):
        layer.build((50,), rng)
    report = gradcheck(layer, rng.standard_normal((3, 50)), max_elements=10)
    assert report["W"].method == "directions+sample"
    assert not report.passed


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="Layer, Sequential or Loss"):
        gradcheck("model", np.zeros((1, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs targets"):
        gradcheck(CrossEntropy(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="needs a loss"):
        gradcheck(Dense(2), np.zeros((2, 3)), np.array([0, 1]))


def test_directions_alone_catch_a_wrong_gradient() -> None:
    rng = np.random.default_rng(8)
    layer = BrokenDense(30, use_bias=False)
    with backend.precision("float64"):
        layer.build((50,), rng)
    x = rng.standard_normal((3, 50))
    report = gradcheck(layer, x, max_elements=10, samples=0, directions=4)
    assert report["W"].checked == 4
    assert not report["W"].passed(report.tolerance)


def test_a_kink_inside_the_step_is_skipped_not_failed() -> None:
    # the first unit's pre-activation sits 1e-7 from ReLU's kink, well inside
    # the difference step: its bias coordinate must be skipped, not failed
    model = Sequential([Dense(2), ReLU(), Dense(1)], input_shape=(1,), seed=0)
    model.astype(np.float64)
    dense = model.layers[0]
    assert isinstance(dense, Dense) and dense.W is not None and dense.b is not None
    dense.W.data[...] = [[1.0, 0.5]]
    dense.b.data[...] = [-1.0 + 1e-7, 0.3]
    report = gradcheck(model, np.array([[1.0]]), check_input=False)
    assert report["layers.0.b"].skipped >= 1
    assert report.passed, report.format()
    assert "at kinks skipped" in report.format()


def test_non_contiguous_input_is_checked_correctly() -> None:
    x = np.asfortranarray(np.random.default_rng(9).standard_normal((4, 6)))
    before = x.copy()
    report = gradcheck(Tanh(), x)
    assert report.passed, report.format()
    np.testing.assert_array_equal(x, before)

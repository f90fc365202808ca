"""Export: every layer type, run in onnxruntime on real MNIST images.

The models (conftest.py: an MLP preset and three CNNs that between them hold
every layer type) are trained for an epoch on 512 MNIST images first (so
batch-norm statistics and weights are not their initial values), exported, and run by
onnxruntime on 500 MNIST test images: its logits must be within 1e-5 of
chainrule's ``predict_logits`` and its probabilities of ``predict``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import chainrule
from chainrule.layers import Dense, Flatten, Layer, Rescaling
from chainrule.losses import BinaryCrossEntropy, CrossEntropy
from chainrule.model import Sequential
from chainrule.onnx import OnnxError, export_onnx, to_onnx
from chainrule.onnx._ops import EXPORTED_AS
from chainrule.onnx.export import WRITERS

TOLERANCE = 1e-5


def test_every_layer_type_has_an_onnx_form(
    model_builders: dict[str, Callable[[], Sequential]],
) -> None:
    chainrule_layers = {
        name
        for name, cls in Layer.registry.items()
        if cls.__module__.startswith("chainrule.")
    }
    assert {cls.__name__ for cls in WRITERS} == chainrule_layers == set(EXPORTED_AS)
    used = {
        type(layer).__name__
        for make in model_builders.values()
        for layer in make().layers
    }
    assert used == chainrule_layers  # conftest's models cover every layer type


@pytest.mark.parametrize("name", ["mlp", "conv_net", "odd_net", "regression_net"])
def test_onnxruntime_matches_chainrule_on_mnist(
    name: str, trained_models: dict[str, Sequential], test_images: Any, run_onnx: Any
) -> None:
    model = trained_models[name]
    x, _ = test_images
    proto = to_onnx(model)
    outputs = run_onnx(proto, x.astype(np.float32))

    logits = model.predict_logits(x)
    assert outputs[0].shape == logits.shape and outputs[0].dtype == np.float32
    assert np.abs(outputs[0] - logits).max() <= TOLERANCE
    if isinstance(model.loss, (CrossEntropy, BinaryCrossEntropy)):
        assert len(outputs) == 2
        assert np.abs(outputs[1] - model.predict(x)).max() <= TOLERANCE
    else:
        assert len(outputs) == 1
    # the exported graph is the layers, operator for operator
    ops = [n.op_type for n in proto.graph.node]
    expected = [op for layer in model.layers for op in _ops_of(layer)]
    assert ops[: len(expected)] == expected


def _ops_of(layer: Layer) -> tuple[str, ...]:
    ops = EXPORTED_AS[type(layer).__name__]
    if isinstance(layer, Rescaling) and not layer.offset:
        return ops[:1]  # no Add for a zero offset
    return ops


def test_batch_norm_statistics_are_the_trained_ones(
    trained_models: dict[str, Sequential],
) -> None:
    model = trained_models["conv_net"]
    proto = to_onnx(model)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for name, value in model.named_buffers():
        assert not np.allclose(value, 0) and not np.allclose(value, 1)
        np.testing.assert_array_equal(inits[name], value)
    (bn,) = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in bn.attribute}
    assert attrs["epsilon"] == pytest.approx(1e-5)
    assert attrs["momentum"] == pytest.approx(0.9)  # ONNX's: 1 - chainrule's


def test_padding_strides_and_windows(trained_models: dict[str, Sequential]) -> None:
    proto = to_onnx(trained_models["conv_net"])
    convs = [n for n in proto.graph.node if n.op_type in ("Conv", "MaxPool")]
    attrs = [{a.name: list(a.ints) for a in n.attribute if a.ints} for n in convs]
    # 'same' for a 4x4 kernel on 28x28: 3 rows of padding, 1 before and 2 after
    assert attrs[0]["pads"] == [1, 1, 2, 2]
    assert attrs[1] == {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0] * 4}
    assert attrs[2]["strides"] == [2, 2]


@pytest.mark.parametrize("opset", [17, 18, 21, onnx.defs.onnx_opset_version()])
def test_opsets(
    opset: int, trained_models: dict[str, Sequential], test_images: Any, run_onnx: Any
) -> None:
    model = trained_models["odd_net"]
    x, _ = test_images
    proto = to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(
        list(proto.opset_import)
    )
    logits = run_onnx(proto, x[:50].astype(np.float32))[0]
    assert np.abs(logits - model.predict_logits(x[:50])).max() <= TOLERANCE


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_the_batch_axis_is_dynamic(
    batch: int, trained_models: dict[str, Sequential], test_images: Any, run_onnx: Any
) -> None:
    model = trained_models["conv_net"]
    x = test_images[0][:batch]
    logits = run_onnx(to_onnx(model), x.astype(np.float32))[0]
    assert logits.shape == (batch, 10)
    assert np.abs(logits - model.predict_logits(x)).max() <= TOLERANCE


def test_file_metadata_and_signature(
    tmp_path: Path, trained_models: dict[str, Sequential]
):
    model = trained_models["mlp"]
    metadata = {"class_names": list("0123456789"), "metrics": {"accuracy": 0.9}}
    path = tmp_path / "mlp.onnx"
    export_onnx(model, path, metadata=metadata)
    assert os.listdir(tmp_path) == ["mlp.onnx"]  # no temporary file left
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["chainrule.version"] == chainrule.__version__
    assert json.loads(props["chainrule.metadata"]) == metadata
    assert json.loads(props["class_names"]) == metadata["class_names"]
    assert json.loads(props["chainrule.loss"]) == {
        "type": "CrossEntropy",
        "config": {"reduction": "mean", "label_smoothing": 0.1},
    }
    assert "Rescaling is part of the graph" in props["chainrule.input"]
    assert proto.producer_name == "chainrule"

    def signature(values: Any) -> list[tuple[str, list[Any]]]:
        return [
            (
                v.name,
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        ]

    assert signature(proto.graph.input) == [("input", ["N", 28, 28])]
    assert signature(proto.graph.output) == [
        ("logits", ["N", 10]),
        ("probabilities", ["N", 10]),
    ]
    names = {t.name for t in proto.graph.initializer}
    assert {name for name, _ in model.named_parameters()} <= names


class Cube(Layer):
    """A layer chainrule does not know how to export."""

    def forward(self, x: Any, training: bool) -> Any:
        return x**3, None


class SteepDense(Dense):
    """A subclass that may change the math must not be exported as a Dense."""


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: to_onnx(m, opset=16),
            ValueError,
            "opset must be an integer from 17",
        ),
        (lambda m: to_onnx(m, opset=True), ValueError, "opset must be an integer"),
        (lambda m: to_onnx(m, opset=999), ValueError, "the newest this onnx"),
        (lambda m: to_onnx(m.layers[0]), TypeError, "expects a Sequential"),
        (
            lambda m: to_onnx(m, metadata={"x": float("nan")}),
            ValueError,
            "metadata must be plain JSON",
        ),
        (lambda m: to_onnx(m, metadata=[1]), TypeError, "metadata must be a dict"),
        (
            lambda m: to_onnx(Sequential([Dense(3)])),
            ValueError,
            "not built",
        ),
        (
            lambda m: to_onnx(Sequential([Flatten(), Cube()], input_shape=(2, 2))),
            OnnxError,
            r"layer 1 Cube\(\) has no ONNX form",
        ),
        (
            lambda m: to_onnx(Sequential([SteepDense(2)], input_shape=(3,))),
            OnnxError,
            r"layer 0 SteepDense\(units=2\) has no ONNX form",
        ),
    ],
    ids=[
        "opset_16",
        "opset_bool",
        "opset_too_new",
        "not_sequential",
        "metadata_nan",
        "metadata_list",
        "unbuilt",
        "unknown_layer",
        "subclass",
    ],
)
def test_export_errors(
    tmp_path: Path, call: Any, error: type[Exception], message: str
) -> None:
    model = Sequential([Flatten(), Dense(3)], input_shape=(2, 2))
    with pytest.raises(error, match=message):
        call(model)


def test_failed_export_keeps_the_old_file(tmp_path: Path) -> None:
    model = Sequential([Flatten(), Dense(3)], input_shape=(2, 2))
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        export_onnx(model, path, opset=3)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.onnx"]

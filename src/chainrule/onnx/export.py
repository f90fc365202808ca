"""Export a chainrule model as an ONNX graph: ``export_onnx(model, "model.onnx")``.

The graph computes what :meth:`Sequential.predict_logits` computes, layer by
layer, in float32:

- input ``input``: ``(N, *input_shape)`` float32, the raw values the chainrule
  model takes (MNIST pixels 0–255 as floats: the ``Rescaling`` is in the graph);
- output ``logits``: ``(N, *output_shape)``, the last layer's output;
- output ``probabilities`` (for ``CrossEntropy`` and ``BinaryCrossEntropy``
  models): ``Softmax`` or ``Sigmoid`` of the logits, what ``predict`` returns.

Each layer becomes the operators in :data:`chainrule.onnx._ops.EXPORTED_AS`;
parameters and batch-norm statistics become initializers under the model
file's names (``layers.2.W``). The batch axis is dynamic (``N``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import backend
from chainrule._version import __version__
from chainrule.atomic import atomic_write_bytes
from chainrule.config import describe
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
from chainrule.model import Sequential
from chainrule.onnx._lazy import require_onnx
from chainrule.onnx._ops import (
    CLASS_NAMES_KEY,
    DEFAULT_OPSET,
    FLOAT,
    INPUT,
    INPUT_KEY,
    LOGITS,
    LOSS_KEY,
    METADATA_KEY,
    MIN_EXPORT_OPSET,
    PROBABILITIES,
    PROBABILITY_OPS,
    VERSION_KEY,
)
from chainrule.onnx.errors import OnnxError


class _Graph:
    """The nodes and initializers of the graph being written."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs)
        )
        return output

    def constant(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        array = np.asarray(backend.to_numpy(value), dtype=dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name


#: ``write(graph, layer, prefix, x, y)`` adds the nodes computing ``y`` from ``x``
Writer = Callable[[_Graph, Any, str, str, str], None]


def _rescaling(g: _Graph, layer: Rescaling, prefix: str, x: str, y: str) -> None:
    # chainrule computes x·float32(scale) + float32(offset): the same two roundings
    scale = g.constant(f"{prefix}.scale", layer.scale)
    if not layer.offset:
        g.node("Mul", [x, scale], y)
        return
    scaled = g.node("Mul", [x, scale], f"{prefix}.scaled")
    g.node("Add", [scaled, g.constant(f"{prefix}.offset", layer.offset)], y)


def _flatten(g: _Graph, layer: Layer, prefix: str, x: str, y: str) -> None:
    g.node("Flatten", [x], y, axis=1)


def _reshape(g: _Graph, layer: Reshape, prefix: str, x: str, y: str) -> None:
    # 0 copies the batch size; the rest is the worked-out shape (no -1 left)
    shape = [0, *(layer.output_shape or ())]
    g.node("Reshape", [x, g.constant(f"{prefix}.shape", shape, np.int64)], y)


def _dense(g: _Graph, layer: Dense, prefix: str, x: str, y: str) -> None:
    assert layer.W is not None
    # chainrule's W is (in, out), so y = x·W is Gemm without transposing B
    inputs = [x, g.constant(f"{prefix}.W", layer.W.data)]
    if layer.b is not None:
        inputs.append(g.constant(f"{prefix}.b", layer.b.data))
    g.node("Gemm", inputs, y)


def _conv2d(g: _Graph, layer: Conv2D, prefix: str, x: str, y: str) -> None:
    assert layer.W is not None
    inputs = [x, g.constant(f"{prefix}.W", layer.W.data)]  # (F, C, kh, kw) as ONNX
    if layer.b is not None:
        inputs.append(g.constant(f"{prefix}.b", layer.b.data))
    top, bottom, left, right = layer.pads
    g.node(
        "Conv",
        inputs,
        y,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=[top, left, bottom, right],  # ONNX: all begins, then all ends
        dilations=[1, 1],
        group=1,
    )


def _pool(op: str) -> Writer:
    def write(
        g: _Graph, layer: MaxPool2D | AvgPool2D, prefix: str, x: str, y: str
    ) -> None:
        g.node(
            op,
            [x],
            y,
            kernel_shape=list(layer.pool_size),
            strides=list(layer.stride),
            pads=[0, 0, 0, 0],
            ceil_mode=0,  # rows and columns no window reaches are dropped
        )

    return write


def _global_avg_pool(g: _Graph, layer: Layer, prefix: str, x: str, y: str) -> None:
    pooled = g.node("GlobalAveragePool", [x], f"{prefix}.pooled")  # (N, C, 1, 1)
    g.node("Flatten", [pooled], y, axis=1)  # (N, C, 1, 1) -> (N, C)


def _batchnorm(g: _Graph, layer: BatchNorm, prefix: str, x: str, y: str) -> None:
    assert layer.gamma is not None and layer.beta is not None
    g.node(
        "BatchNormalization",
        [
            x,
            g.constant(f"{prefix}.gamma", layer.gamma.data),
            g.constant(f"{prefix}.beta", layer.beta.data),
            g.constant(f"{prefix}.running_mean", layer.running_mean),
            g.constant(f"{prefix}.running_var", layer.running_var),
        ],
        y,
        epsilon=layer.eps,
        # ONNX weighs the old running value by momentum, chainrule the new batch
        momentum=1 - layer.momentum,
    )


def _identity(g: _Graph, layer: Layer, prefix: str, x: str, y: str) -> None:
    g.node("Identity", [x], y)


def _unary(op: str) -> Writer:
    def write(g: _Graph, layer: Layer, prefix: str, x: str, y: str) -> None:
        g.node(op, [x], y)

    return write


def _leaky_relu(g: _Graph, layer: LeakyReLU, prefix: str, x: str, y: str) -> None:
    g.node("LeakyRelu", [x], y, alpha=layer.alpha)


def _softmax(g: _Graph, layer: Layer, prefix: str, x: str, y: str) -> None:
    g.node("Softmax", [x], y, axis=-1)


#: how each layer type is written; keyed by the exact class, so a subclass that
#: changes the math is refused rather than exported as its parent
WRITERS: dict[type[Layer], Writer] = {
    Rescaling: _rescaling,
    Flatten: _flatten,
    Reshape: _reshape,
    Dense: _dense,
    Conv2D: _conv2d,
    MaxPool2D: _pool("MaxPool"),
    AvgPool2D: _pool("AveragePool"),
    GlobalAvgPool2D: _global_avg_pool,
    BatchNorm: _batchnorm,
    Dropout: _identity,  # inference: dropout keeps every unit
    Identity: _identity,
    ReLU: _unary("Relu"),
    LeakyReLU: _leaky_relu,
    Sigmoid: _unary("Sigmoid"),
    Tanh: _unary("Tanh"),
    Softmax: _softmax,
}


def to_onnx(
    model: Sequential,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """The ONNX ``ModelProto`` of ``model`` (checked by ``onnx.checker``).

    ``metadata`` (JSON data, e.g. a model file's: class names, dataset,
    metrics) is stored in the graph's ``metadata_props``, with the chainrule
    version and the loss.
    """
    onnx = require_onnx()
    if not isinstance(model, Sequential):
        raise TypeError(f"to_onnx expects a Sequential, got {type(model).__name__}")
    if not model.built or model.input_shape is None:
        raise ValueError("to_onnx: the model is not built yet (no input shape)")
    newest = int(onnx.defs.onnx_opset_version())
    if (
        isinstance(opset, bool)
        or not isinstance(opset, int)
        or not MIN_EXPORT_OPSET <= opset <= newest
    ):
        raise ValueError(
            f"to_onnx: opset must be an integer from {MIN_EXPORT_OPSET} to {newest} "
            f"(the newest this onnx package knows), got {opset!r}"
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"to_onnx: metadata must be a dict, got {metadata!r}")

    g = _Graph(onnx)
    x = INPUT
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        write = WRITERS.get(type(layer))
        if write is None:
            supported = ", ".join(sorted(cls.__name__ for cls in WRITERS))
            raise OnnxError(
                f"to_onnx: layer {i} {layer!r} has no ONNX form "
                f"(exported layer types: {supported})"
            )
        y = LOGITS if i == last else f"layers.{i}"
        write(g, layer, f"layers.{i}", x, y)
        x = y

    output_shape = ["N", *(model.output_shape or ())]
    outputs = [onnx.helper.make_tensor_value_info(LOGITS, FLOAT, output_shape)]
    loss_type = type(model.loss).__name__ if model.loss is not None else None
    if loss_type in PROBABILITY_OPS:
        g.node(PROBABILITY_OPS[loss_type], [LOGITS], PROBABILITIES)
        outputs.append(
            onnx.helper.make_tensor_value_info(PROBABILITIES, FLOAT, output_shape)
        )
    graph = onnx.helper.make_graph(
        g.nodes,
        "chainrule",
        [onnx.helper.make_tensor_value_info(INPUT, FLOAT, ["N", *model.input_shape])],
        outputs,
        g.initializers,
        doc_string=" -> ".join(repr(layer) for layer in model.layers),
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="chainrule",
        producer_version=__version__,
        # the oldest IR version that can hold this opset: older runtimes load it
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
    )
    onnx.helper.set_model_props(proto, _properties(model, metadata))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:  # a bug here, not the user's
        raise OnnxError(f"to_onnx: the graph written is not valid ONNX: {exc}") from exc
    return proto


def export_onnx(
    model: Sequential,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Write ``model`` to ``path`` as ONNX (atomically); see :func:`to_onnx`.

    Returns the ``ModelProto`` written.
    """
    proto = to_onnx(model, opset, metadata)
    atomic_write_bytes(path, proto.SerializeToString())
    return proto


def _properties(model: Sequential, metadata: dict[str, Any] | None) -> dict[str, str]:
    shape = ", ".join(["N", *map(str, model.input_shape or ())])
    props = {
        VERSION_KEY: __version__,
        INPUT_KEY: f"float32 ({shape}): the values the chainrule model takes, "
        "unscaled (its Rescaling is part of the graph)",
    }
    if model.loss is not None:
        props[LOSS_KEY] = json.dumps(describe(model.loss))
    if metadata:
        try:
            props[METADATA_KEY] = json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"to_onnx: metadata must be plain JSON data with finite numbers ({exc})"
            ) from exc
        if isinstance(metadata.get("class_names"), list):
            props[CLASS_NAMES_KEY] = json.dumps(metadata["class_names"])
    return props


__all__ = ["WRITERS", "export_onnx", "to_onnx"]

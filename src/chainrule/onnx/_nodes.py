"""One ONNX node at a time: the chainrule layer (and weights) each operator becomes.

A handler reads a node's attributes and constant inputs, checks that chainrule
computes the same thing (a padding it can express, a softmax over the last
axis, a reshape that keeps the batch axis, ...), and appends the layer to the
:class:`Chain`. Anything it cannot express is an :class:`OnnxError` naming the
node and the attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
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
from chainrule.onnx._ops import float32_value
from chainrule.onnx.errors import OnnxError
from chainrule.types import Shape


@dataclass
class Node:
    """An ONNX node, its attributes, and the graph's constants it may read."""

    op: str
    name: str
    inputs: list[str]
    attrs: dict[str, Any]
    consts: dict[str, np.ndarray[Any, Any]]
    opset: int

    @property
    def label(self) -> str:
        return f"node {self.name!r} ({self.op})"

    def const(self, index: int, what: str, required: bool = True) -> Any:
        """Input ``index`` as an array: it must be a constant (an initializer)."""
        name = self.inputs[index] if index < len(self.inputs) else ""
        if not name:
            if required:
                raise OnnxError(f"{self.label} has no {what} (input {index})")
            return None
        if name not in self.consts:
            raise OnnxError(f"{self.label}: its {what} {name!r} must be a constant")
        return self.consts[name]

    def ints(self, name: str, default: list[int]) -> tuple[int, ...]:
        return tuple(int(v) for v in self.attrs.get(name, default))


@dataclass
class Piece:
    """A layer made from one or more nodes, with its weights and shapes."""

    layer: Layer
    arrays: dict[str, np.ndarray[Any, Any]]
    source: str
    input_shape: Shape
    output_shape: Shape


@dataclass
class Chain:
    """The layers so far and the shape of one sample at the chain's end."""

    shape: Shape
    #: the batch size the graph's input declares, when it declares one
    batch: int | None
    pieces: list[Piece] = field(default_factory=list)

    def add(
        self,
        node: Node,
        layer: Layer,
        arrays: dict[str, np.ndarray[Any, Any]] | None = None,
    ) -> None:
        """Append ``layer``, checking that it takes this shape and its weights fit."""
        arrays = arrays or {}
        try:
            output_shape = layer.compute_output_shape(self.shape)
        except ValueError as exc:
            raise OnnxError(f"{node.label}: {exc}") from exc
        expected = {
            **layer.parameter_shapes(self.shape),
            **layer.buffer_shapes(self.shape),
        }
        for name, value in arrays.items():
            if value.shape != expected[name]:
                raise OnnxError(
                    f"{node.label}: {name} has shape {value.shape}, but {layer!r} "
                    f"on input {_batch(self.shape)} needs {expected[name]}"
                )
        self.pieces.append(Piece(layer, arrays, node.label, self.shape, output_shape))
        self.shape = output_shape

    def require(self, node: Node, ranks: tuple[int, ...], what: str) -> None:
        if len(self.shape) + 1 not in ranks:
            raise OnnxError(
                f"{node.label} expects {what}, got input of shape {_batch(self.shape)}"
            )


def _batch(shape: Shape) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


Handler = Callable[[Chain, Node], None]


# ------------------------------------------------------------------ dense
def _gemm(chain: Chain, node: Node) -> None:
    if node.attrs.get("transA", 0):
        raise OnnxError(f"{node.label}: transA=1 (a transposed input) is not supported")
    chain.require(node, (2,), "(N, features)")
    B = node.const(1, "weight matrix B")
    if B.ndim != 2:
        raise OnnxError(f"{node.label}: B must be a matrix, got shape {B.shape}")
    W = B.T if node.attrs.get("transB", 0) else B  # chainrule's W is (in, out)
    alpha, beta = node.attrs.get("alpha", 1.0), node.attrs.get("beta", 1.0)
    arrays = {"W": W * np.float32(alpha) if alpha != 1 else W}
    C = node.const(2, "bias C", required=False)
    if C is not None:
        bias = _bias(node, C, W.shape[1])
        arrays["b"] = bias * np.float32(beta) if beta != 1 else bias
    chain.add(node, Dense(W.shape[1], use_bias=C is not None), arrays)


def _matmul(chain: Chain, node: Node) -> None:
    chain.require(node, (2,), "(N, features)")
    W = node.const(1, "weight matrix")
    if W.ndim != 2:
        raise OnnxError(f"{node.label}: the weights must be a matrix, got {W.shape}")
    chain.add(node, Dense(W.shape[1], use_bias=False), {"W": W})


def _bias(node: Node, value: np.ndarray[Any, Any], units: int) -> Any:
    """A ``(units,)`` bias from a constant that broadcasts to ``(1, units)``."""
    if value.size not in (1, units) or (value.ndim == 2 and value.shape[0] != 1):
        raise OnnxError(
            f"{node.label}: a bias of shape {value.shape} does not broadcast to "
            f"one value per output unit ({units})"
        )
    return np.broadcast_to(value.reshape(-1), (units,)).copy()


# ------------------------------------------------------------- arithmetic
def _arithmetic(chain: Chain, node: Node) -> None:
    """``x ∘ c`` with a constant ``c``: a Dense bias, or a Rescaling."""
    data = 0 if node.inputs[0] not in node.consts else 1
    if data == 1 and node.op in ("Sub", "Div"):
        raise OnnxError(f"{node.label}: only x {node.op} constant is supported")
    c = node.const(1 - data, "constant")
    last = chain.pieces[-1] if chain.pieces else None
    if (
        node.op in ("Add", "Sub")
        and last is not None
        and isinstance(last.layer, Dense)
        and c.size in (1, last.layer.units)
    ):
        # MatMul then Add: one Dense with a bias
        sign = -1 if node.op == "Sub" else 1
        bias = sign * _bias(node, c, last.layer.units)
        if "b" in last.arrays:
            bias = last.arrays["b"] + bias
        last.layer = Dense(last.layer.units)
        last.arrays["b"] = bias
        last.source += f" + {node.label}"
        return
    if c.size != 1:
        raise OnnxError(
            f"{node.label}: {node.op} by a constant of shape {c.shape} is supported "
            "only as the bias of a MatMul or Gemm just before it; otherwise the "
            "constant must be a single number (a Rescaling)"
        )
    v = float(c.reshape(()))
    if node.op == "Div" and v == 0:
        raise OnnxError(f"{node.label}: division by zero")
    scale, offset = {
        "Mul": (v, 0.0),
        "Div": (1 / v if v else 0.0, 0.0),
        "Add": (1.0, v),
        "Sub": (1.0, -v),
    }[node.op]
    chain.add(node, Rescaling(scale, offset))


# ----------------------------------------------------------- convolution
def _conv(chain: Chain, node: Node) -> None:
    W = node.const(1, "weights W")
    if W.ndim != 4:
        raise OnnxError(
            f"{node.label}: only 2-D convolutions are supported (4-D weights), "
            f"got weights of shape {W.shape}"
        )
    if node.attrs.get("group", 1) != 1:
        raise OnnxError(
            f"{node.label}: grouped convolution (group={node.attrs['group']}) "
            "is not supported"
        )
    _no_dilation(node)
    chain.require(node, (4,), "images (N, C, H, W)")
    filters, _, kh, kw = W.shape
    if node.ints("kernel_shape", [kh, kw]) != (kh, kw):
        raise OnnxError(
            f"{node.label}: kernel_shape {list(node.attrs['kernel_shape'])} does not "
            f"match the weights {W.shape}"
        )
    sh, sw = _pair(node, "strides")
    padding = _conv_padding(node, chain.shape, (kh, kw), (sh, sw))
    B = node.const(2, "bias B", required=False)
    arrays = {"W": W} if B is None else {"W": W, "b": B}
    layer = Conv2D(filters, (kh, kw), (sh, sw), padding, use_bias=B is not None)
    chain.add(node, layer, arrays)


def _pair(node: Node, name: str) -> tuple[int, int]:
    """A 2-D attribute (``strides``, ``kernel_shape``); ONNX's default is 1."""
    values = node.ints(name, [1, 1])
    if len(values) != 2:
        raise OnnxError(f"{node.label}: {name} must have 2 values, got {list(values)}")
    return values[0], values[1]


def _conv_padding(
    node: Node, shape: Shape, kernel: tuple[int, int], stride: tuple[int, int]
) -> str | tuple[int, int]:
    """Conv2D's ``padding`` for the node's ``pads`` or ``auto_pad``."""
    h, w = shape[1], shape[2]
    # chainrule's 'same' is ONNX's SAME_UPPER: any odd pixel goes to the end
    same = Conv2D(1, kernel, stride, "same").padding_for(h, w)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0, 0)
    if auto == "SAME_UPPER":
        pads = same
    elif auto == "SAME_LOWER":
        top, bottom, left, right = same
        pads = (bottom, top, right, left)
    elif auto == "NOTSET":
        begin_h, begin_w, end_h, end_w = node.ints("pads", [0, 0, 0, 0])
        pads = (begin_h, end_h, begin_w, end_w)
    else:
        raise OnnxError(f"{node.label}: unknown auto_pad {auto!r}")
    top, bottom, left, right = pads
    if top == bottom and left == right:
        return (top, left)
    if pads == same:
        return "same"
    raise OnnxError(
        f"{node.label}: padding (top, bottom, left, right) = {pads} is neither "
        f"symmetric nor 'same' ({same} for a {h}x{w} input), which Conv2D cannot "
        "express"
    )


def _no_dilation(node: Node) -> None:
    if any(d != 1 for d in node.ints("dilations", [1, 1])):
        raise OnnxError(
            f"{node.label}: dilations {list(node.attrs['dilations'])} are not "
            "supported (only 1)"
        )


# ---------------------------------------------------------------- pooling
def _pool(chain: Chain, node: Node) -> None:
    chain.require(node, (4,), "images (N, C, H, W)")
    if "kernel_shape" not in node.attrs:
        raise OnnxError(f"{node.label} has no kernel_shape")
    kernel = _pair(node, "kernel_shape")
    stride = _pair(node, "strides")  # ONNX's default is 1, not the window
    if any(node.ints("pads", [0, 0, 0, 0])) or node.attrs.get(
        "auto_pad", "NOTSET"
    ) not in ("NOTSET", "VALID"):
        raise OnnxError(f"{node.label}: pooling with padding is not supported")
    _no_dilation(node)
    if node.attrs.get("ceil_mode", 0):
        _, h, w = chain.shape
        for size, k, s in zip((h, w), kernel, stride, strict=True):
            if size >= k and (size - k) % s:
                raise OnnxError(
                    f"{node.label}: ceil_mode=1 keeps a partial window here; "
                    "chainrule pools in floor mode"
                )
    cls = MaxPool2D if node.op == "MaxPool" else AvgPool2D
    chain.add(node, cls(kernel, stride=stride))


def _global_average_pool(chain: Chain, node: Node) -> None:
    chain.require(node, (4,), "images (N, C, H, W)")
    chain.add(node, GlobalAvgPool2D())  # (N, C, H, W) -> (N, C)
    chain.add(node, Reshape((chain.shape[0], 1, 1)))  # ONNX keeps (N, C, 1, 1)


def _reduce_mean(chain: Chain, node: Node) -> None:
    """The mean over H and W of images: global average pooling."""
    if node.opset >= 18:
        axes = node.const(1, "axes", required=False)
    else:
        axes = node.attrs.get("axes")
    rank = len(chain.shape) + 1
    found = [] if axes is None else sorted(int(a) % rank for a in np.reshape(axes, -1))
    if rank != 4 or found != [2, 3]:
        raise OnnxError(
            f"{node.label}: only the mean over the height and width of images "
            f"(axes [2, 3]) is supported, got axes {found or 'all'} of a rank-{rank} "
            "tensor"
        )
    chain.add(node, GlobalAvgPool2D())
    if node.attrs.get("keepdims", 1):
        chain.add(node, Reshape((chain.shape[0], 1, 1)))


# -------------------------------------------------------------- batch norm
def _batch_normalization(chain: Chain, node: Node) -> None:
    if node.attrs.get("training_mode", 0):
        raise OnnxError(f"{node.label}: training_mode=1 is not an inference graph")
    if node.attrs.get("spatial", 1) != 1:
        raise OnnxError(f"{node.label}: spatial=0 (per-activation statistics)")
    eps = float32_value(node.attrs.get("epsilon", 1e-5))
    # ONNX weighs the old running value by momentum, chainrule the batch's
    momentum = round(1 - float32_value(node.attrs.get("momentum", 0.9)), 12)
    arrays = {
        "gamma": node.const(1, "scale"),
        "beta": node.const(2, "bias B"),
        "running_mean": node.const(3, "input_mean"),
        "running_var": node.const(4, "input_var"),
    }
    chain.add(node, BatchNorm(momentum=momentum, eps=eps), arrays)


# ------------------------------------------------------------ activations
def _activation(layer: Callable[[], Layer]) -> Handler:
    def handle(chain: Chain, node: Node) -> None:
        chain.add(node, layer())

    return handle


def _leaky_relu(chain: Chain, node: Node) -> None:
    chain.add(node, LeakyReLU(float32_value(node.attrs.get("alpha", 0.01))))


def _softmax(chain: Chain, node: Node) -> None:
    rank = len(chain.shape) + 1
    # before opset 13 Softmax flattened to 2-D from ``axis`` (default 1) on
    if node.opset < 13 and rank != 2:
        raise OnnxError(
            f"{node.label}: opset {node.opset} Softmax of a rank-{rank} tensor "
            "(it flattens to 2-D) is not supported"
        )
    axis = int(node.attrs.get("axis", 1 if node.opset < 13 else -1))
    if axis % rank != rank - 1:
        raise OnnxError(
            f"{node.label}: Softmax over axis {axis} of a rank-{rank} tensor; "
            "chainrule's Softmax is over the last axis"
        )
    chain.add(node, Softmax())


# ---------------------------------------------------------------- reshape
def _flatten(chain: Chain, node: Node) -> None:
    rank = len(chain.shape) + 1
    axis = int(node.attrs.get("axis", 1))
    if axis % rank != 1 and not (axis == rank == 1):
        raise OnnxError(
            f"{node.label}: Flatten at axis {axis} would mix the batch axis "
            "into the features; only axis 1 is supported"
        )
    chain.add(node, Flatten())


def _reshape(chain: Chain, node: Node) -> None:
    target = [int(d) for d in np.reshape(node.const(1, "shape"), -1)]
    if not node.attrs.get("allowzero", 0):
        # 0 copies the input's dimension at that position (None: the batch)
        dims: list[int | None] = [None, *chain.shape]
        resolved = [
            dims[i] if d == 0 and i < len(dims) else d for i, d in enumerate(target)
        ]
    else:
        resolved = list(target)
    if not resolved:
        raise OnnxError(f"{node.label}: reshape to a scalar is not supported")
    first, rest = resolved[0], resolved[1:]
    rest_known = -1 not in rest
    keeps_batch = (
        first is None
        or (first == -1 and rest_known)
        or (chain.batch is not None and first == chain.batch)
    )
    if not keeps_batch or not rest or any(d is None or d < -1 or d == 0 for d in rest):
        raise OnnxError(
            f"{node.label}: shape {target} on input {_batch(chain.shape)}; chainrule "
            "reshapes each sample, so the first entry must keep the batch (0, or -1 "
            "with the rest given) and the rest be positive (one may be -1)"
        )
    per_sample = [int(d) for d in rest if d is not None]
    chain.add(node, Reshape(tuple(per_sample)))


def _pass(chain: Chain, node: Node) -> None:
    """Identity, and Dropout (inference keeps every unit): no layer at all."""
    if node.op == "Dropout":
        mode = node.const(2, "training_mode", required=False)
        if mode is not None and bool(np.any(mode)):
            raise OnnxError(f"{node.label}: training_mode is true")


#: the operators import reads, and how; ``Constant`` nodes are read as constants
HANDLERS: dict[str, Handler] = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _arithmetic,
    "Sub": _arithmetic,
    "Mul": _arithmetic,
    "Div": _arithmetic,
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_average_pool,
    "ReduceMean": _reduce_mean,
    "BatchNormalization": _batch_normalization,
    "Relu": _activation(ReLU),
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _activation(Sigmoid),
    "Tanh": _activation(Tanh),
    "Softmax": _softmax,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Identity": _pass,
    "Dropout": _pass,
}


__all__ = ["HANDLERS", "Chain", "Handler", "Node", "Piece"]

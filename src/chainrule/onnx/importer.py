"""Import an ONNX graph as a chainrule model: ``import_onnx("model.onnx")``.

The graph must be a chain: one input of a fixed sample shape (the batch axis
may be anything), each node computing from the previous node's output and
constants (initializers or ``Constant`` nodes), one output at the end. Each
operator becomes the layer in :data:`chainrule.onnx._nodes.HANDLERS`; then
neighbours that are one layer in chainrule are merged (``MatMul`` + ``Add`` is
one ``Dense``; a run of reshapes is one ``Reshape``/``Flatten``, or nothing).

The loss, so that the model can be fine-tuned with ``fit``:

1. a graph written by :func:`~chainrule.onnx.export_onnx` has the outputs
   ``logits`` and ``probabilities`` (``Softmax`` or ``Sigmoid`` of the logits):
   the model ends at the logits, with ``CrossEntropy`` or ``BinaryCrossEntropy``;
2. otherwise a graph that ends in a ``Softmax`` over features loses that node
   and gets ``CrossEntropy``, which applies the softmax itself;
3. the loss's configuration (label smoothing, ...) comes from the chainrule
   metadata when it names the same loss; a graph without either has no loss.

The model is compiled without an optimizer: ``model.compile(model.loss,
Adam(1e-4))`` before ``fit``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.layers import Flatten, Identity, Rescaling, Reshape, Softmax
from chainrule.losses.base import Loss, loss_from_config
from chainrule.model import Sequential
from chainrule.onnx._lazy import require_onnx
from chainrule.onnx._load import check_proto, opset_of, read_proto
from chainrule.onnx._nodes import HANDLERS, Chain, Node, Piece
from chainrule.onnx._ops import (
    FLOAT_TYPES,
    LOSS_KEY,
    MIN_IMPORT_OPSET,
    PROBABILITY_OPS,
)
from chainrule.onnx._tensors import attributes, to_array
from chainrule.onnx.errors import OnnxError

#: the loss each kind of ``probabilities`` output stands for
LOSS_OF_OUTPUT = {op: loss for loss, op in PROBABILITY_OPS.items()}


def import_onnx(path: str | os.PathLike[str]) -> Sequential:
    """The chainrule model computing what the ONNX file at ``path`` computes."""
    proto = read_proto(path)
    try:
        return _convert(require_onnx(), proto)
    except OnnxError as exc:
        raise OnnxError(f"{path}: {exc}") from exc


def from_onnx(proto: Any) -> Sequential:
    """The chainrule model of an ONNX ``ModelProto`` (checked first)."""
    onnx = require_onnx()
    check_proto(onnx, proto)
    return _convert(onnx, proto)


def _convert(onnx: Any, proto: Any) -> Sequential:
    opset = opset_of(proto)
    newest = int(onnx.defs.onnx_opset_version())
    if not MIN_IMPORT_OPSET <= opset <= newest:
        raise OnnxError(
            f"opset {opset}: chainrule imports opsets {MIN_IMPORT_OPSET} to {newest}"
        )
    graph = proto.graph
    consts = {t.name: to_array(onnx, t, "initializer") for t in graph.initializer}
    nodes = list(graph.node)
    _check_operators(nodes)
    name, shape, batch, dtype = _input(onnx, graph, consts)
    output, probabilities = _output(graph, nodes)
    chain = Chain(shape, batch)
    value = _walk(onnx, graph, nodes, consts, chain, name, opset)
    if value != output:
        raise OnnxError(
            f"the chain ends at {value!r}, but the graph's output is {output!r}"
        )
    if probabilities is not None and probabilities.op_type == "Softmax":
        rank = len(chain.shape) + 1
        axis = int(
            attributes(onnx, probabilities).get("axis", -1 if opset >= 13 else 1)
        )
        if axis % rank != rank - 1 or (opset < 13 and rank != 2):
            raise OnnxError(
                f"the output {probabilities.output[0]!r} is not a softmax over the "
                "last axis of the logits"
            )
    pieces = _merge(chain.pieces)
    loss = _loss(proto, pieces, probabilities)
    model = _build(pieces, shape, dtype)
    if loss is not None:
        model.compile(loss)
    return model


def _walk(
    onnx: Any,
    graph: Any,
    nodes: list[Any],
    consts: dict[str, Any],
    chain: Chain,
    value: str,
    opset: int,
) -> str:
    """Append each node's layer to ``chain``; returns the chain's last value.

    A node computing from constants only adds a constant; every other node must
    read the chain's value (used by it alone) and constants.
    """
    uses = Counter(i for node in nodes for i in node.input if i)
    uses.update(o.name for o in graph.output)
    for index, proto_node in enumerate(nodes):
        node = Node(
            proto_node.op_type,
            proto_node.name or f"#{index}",
            list(proto_node.input),
            attributes(onnx, proto_node),
            consts,
            opset,
        )
        if not proto_node.output or not proto_node.output[0]:
            raise OnnxError(f"{node.label} has no output")
        data = [i for i in node.inputs if i and i not in consts]
        if not data:
            consts[proto_node.output[0]] = _constant(node)
            continue
        if data != [value]:
            raise OnnxError(
                f"{node.label} reads {data}, but the chain's value is {value!r}: "
                "chainrule imports graphs in which each node computes from the "
                "one before it (and constants)"
            )
        if uses[value] != 1:
            raise OnnxError(
                f"the value {value!r} is used {uses[value]} times (the graph "
                "branches, or returns an inner value); chainrule imports a chain"
            )
        for extra in proto_node.output[1:]:
            if extra and uses[extra]:
                raise OnnxError(
                    f"{node.label}: its output {extra!r} is used; only the first "
                    "output of a node is supported"
                )
        try:
            HANDLERS[node.op](chain, node)
        except OnnxError:
            raise
        except (ValueError, TypeError) as exc:  # a layer refusing its arguments
            raise OnnxError(f"{node.label}: {exc}") from exc
        value = proto_node.output[0]
    return value


def _check_operators(nodes: list[Any]) -> None:
    """Refuse every unsupported operator at once, each with its nodes."""
    unsupported: dict[str, list[str]] = {}
    for index, node in enumerate(nodes):
        op = node.op_type if node.domain in ("", "ai.onnx") else None
        if op != "Constant" and op not in HANDLERS:
            qualified = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
            unsupported.setdefault(qualified, []).append(node.name or f"#{index}")
    if unsupported:
        found = "; ".join(
            f"{op} (node{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))})"
            for op, names in sorted(unsupported.items())
        )
        raise OnnxError(
            f"unsupported ONNX operators: {found}. chainrule imports: "
            f"{', '.join(sorted([*HANDLERS, 'Constant']))}"
        )


def _input(
    onnx: Any, graph: Any, consts: dict[str, Any]
) -> tuple[str, tuple[int, ...], int | None, Any]:
    """Name, sample shape, declared batch size and dtype of the one real input."""
    # before IR version 4 initializers were listed among the inputs too
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise OnnxError(
            f"the graph has {len(inputs)} inputs {[i.name for i in inputs]}; "
            "chainrule imports graphs with one"
        )
    info = inputs[0]
    tensor = info.type.tensor_type
    dtype = FLOAT_TYPES.get(tensor.elem_type)
    if not info.type.HasField("tensor_type") or dtype is None:
        kind = onnx.helper.tensor_dtype_to_string(tensor.elem_type)
        raise OnnxError(
            f"input {info.name!r} is {kind}; chainrule models take float32 or float64"
        )
    dims = list(tensor.shape.dim) if tensor.HasField("shape") else []
    fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(fixed) < 2 or any(d is None or d <= 0 for d in fixed[1:]):
        shown = [d if d is not None else "?" for d in fixed]
        raise OnnxError(
            f"input {info.name!r} has shape {shown}: chainrule needs (batch, ...) "
            "with every dimension after the batch fixed"
        )
    return info.name, tuple(int(d or 0) for d in fixed[1:]), fixed[0], dtype


def _output(graph: Any, nodes: list[Any]) -> tuple[str, Any]:
    """The chain's last value; a ``probabilities`` node is taken out of ``nodes``."""
    names = [o.name for o in graph.output]
    if len(names) == 1:
        return names[0], None
    if len(names) == 2:
        producer = next((n for n in nodes if names[1] in n.output), None)
        if (
            producer is not None
            and producer.op_type in LOSS_OF_OUTPUT
            and list(producer.input) == [names[0]]
        ):
            nodes.remove(producer)
            return names[0], producer
    raise OnnxError(
        f"the graph has {len(names)} outputs {names}; chainrule imports graphs "
        "with one (or logits and their softmax or sigmoid, as export writes)"
    )


def _constant(node: Node) -> Any:
    """The value of a node that computes from constants only."""
    if node.op == "Constant":
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in node.attrs:
                return np.asarray(node.attrs[key])
        raise OnnxError(f"{node.label} holds no numeric value")
    if node.op == "Identity":
        return node.consts[node.inputs[0]]
    raise OnnxError(
        f"{node.label} computes from constants only; chainrule does not evaluate "
        f"{node.op} on constants (fold them when exporting)"
    )


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Neighbouring pieces that are one chainrule layer, merged."""
    merged: list[Piece] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last is not None and _reshapes(last) and _reshapes(piece):
            # a run of reshapes is one reshape from the first input shape
            last.output_shape = piece.output_shape
            last.source += f" + {piece.source}"
        elif (
            last is not None
            and isinstance(last.layer, Rescaling)
            and isinstance(piece.layer, Rescaling)
            and last.layer.offset == 0
            and piece.layer.scale == 1
        ):
            # x·s then + o: one Rescaling(s, o), computed the same way
            last.layer = Rescaling(last.layer.scale, piece.layer.offset)
            last.source += f" + {piece.source}"
        else:
            merged.append(piece)
    for piece in merged:
        if _reshapes(piece):  # (N, C, H, W) -> (N, C·H·W) is a Flatten
            shape = piece.output_shape
            piece.layer = Flatten() if len(shape) == 1 else Reshape(shape)
    # a reshape to the shape it was given does nothing
    return [p for p in merged if not (_reshapes(p) and p.input_shape == p.output_shape)]


def _reshapes(piece: Piece) -> bool:
    return isinstance(piece.layer, (Reshape, Flatten))


def _loss(proto: Any, pieces: list[Piece], probabilities: Any) -> Loss | None:
    """The loss the graph's ending implies (see the module's docstring)."""
    kind = None
    if probabilities is not None:
        kind = LOSS_OF_OUTPUT[probabilities.op_type]
    elif (
        len(pieces) > 1
        and isinstance(pieces[-1].layer, Softmax)
        and len(pieces[-1].output_shape) == 1
    ):
        pieces.pop()  # CrossEntropy applies the softmax itself
        kind = "CrossEntropy"
    props = {p.key: p.value for p in proto.metadata_props}
    stored = None
    if LOSS_KEY in props:
        try:
            stored = loss_from_config(json.loads(props[LOSS_KEY]))
        except (ValueError, TypeError, RecursionError) as exc:
            raise OnnxError(f"bad {LOSS_KEY} metadata: {exc}") from exc
    if stored is not None and kind in (None, type(stored).__name__):
        return stored
    return loss_from_config({"type": kind}) if kind else None


def _build(pieces: list[Piece], input_shape: tuple[int, ...], dtype: Any) -> Sequential:
    """The model, with every imported weight and statistic in place."""
    # a graph of Identity and Dropout nodes only returns its input
    layers = [p.layer for p in pieces] or [Identity()]
    model = Sequential(layers, input_shape=input_shape, seed=0, dtype=dtype)
    xp = backend.xp()
    for piece in pieces:
        params = dict(piece.layer.named_parameters())
        for name, value in piece.arrays.items():
            if not np.isfinite(value).all():
                raise OnnxError(f"{piece.source}: {name} has NaN or infinite values")
            target = params[name].data if name in params else getattr(piece.layer, name)
            target[...] = xp.asarray(value.astype(model.dtype))
        try:
            piece.layer.check_buffers()
        except ValueError as exc:
            raise OnnxError(f"{piece.source}: {exc}") from exc
    return model


__all__ = ["from_onnx", "import_onnx"]

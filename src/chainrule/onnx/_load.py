"""Reading an ``.onnx`` file safely, and the metadata chainrule stored in it.

The file is parsed as a protobuf message (which runs no code), then refused if
it points at external data files, holds model-local functions or sparse
tensors, or fails ``onnx.checker``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chainrule.onnx._lazy import require_onnx
from chainrule.onnx._ops import METADATA_KEY
from chainrule.onnx._tensors import external_message, is_external
from chainrule.onnx.errors import OnnxError

#: protobuf cannot hold a message larger than 2 GiB
MAX_BYTES = 2**31 - 1


def read_proto(path: str | os.PathLike[str]) -> Any:
    """The checked ``ModelProto`` in the file at ``path``."""
    onnx = require_onnx()
    from google.protobuf.message import DecodeError

    file = Path(path)
    if not file.exists():
        raise OnnxError(f"{path}: no such file")
    if not file.is_file():
        raise OnnxError(f"{path}: not an ONNX file (not a file)")
    if file.stat().st_size > MAX_BYTES:
        raise OnnxError(f"{path}: larger than the 2 GiB an ONNX file can hold")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(file.read_bytes())
    except DecodeError as exc:
        raise OnnxError(
            f"{path}: not an ONNX model (it does not parse: {exc})"
        ) from exc
    try:
        check_proto(onnx, proto)
    except OnnxError as exc:
        raise OnnxError(f"{path}: {exc}") from exc
    return proto


def check_proto(onnx: Any, proto: Any) -> None:
    """Refuse what chainrule never reads, then run ``onnx.checker``."""
    if not proto.HasField("graph") or not proto.graph.node:
        raise OnnxError("not an ONNX model (no graph with nodes)")
    graph = proto.graph
    if len(proto.functions):
        raise OnnxError("model-local functions are not supported")
    if len(graph.sparse_initializer):
        raise OnnxError("sparse initializers are not supported")
    for tensor in graph.initializer:
        if is_external(tensor):
            raise OnnxError(external_message(f"initializer {tensor.name!r}"))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise OnnxError(f"not a valid ONNX model: {first}") from exc


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an ONNX file says about itself.

    Returns ``{"producer": "pytorch 2.13.0", "opset": 17, "metadata": {...}}``:
    ``metadata`` is what :func:`~chainrule.onnx.export_onnx` stored (the model
    file's class names, dataset, metrics), ``{}`` for a graph from elsewhere.
    """
    proto = read_proto(path)
    props = {p.key: p.value for p in proto.metadata_props}
    metadata: Any = {}
    if METADATA_KEY in props:
        try:
            metadata = json.loads(props[METADATA_KEY])
        except (json.JSONDecodeError, RecursionError) as exc:
            raise OnnxError(f"{path}: {METADATA_KEY} is not valid JSON") from exc
        if not isinstance(metadata, dict):
            raise OnnxError(f"{path}: {METADATA_KEY} must be a JSON object")
    producer = f"{proto.producer_name} {proto.producer_version}".strip()
    return {"producer": producer, "opset": opset_of(proto), "metadata": metadata}


def opset_of(proto: Any) -> int:
    """The version of the default (``ai.onnx``) operator set the graph uses."""
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise OnnxError("the graph imports no version of the default operator set")


__all__ = ["check_proto", "opset_of", "read_onnx_metadata", "read_proto"]

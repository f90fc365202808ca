"""Reading tensors and attributes out of an ONNX file that a stranger wrote.

Parsing protobuf runs no code, but a tensor may point at an external file, claim
a type chainrule does not use, or hold fewer values than its dimensions say:
each is refused here, naming the tensor, before any array is built.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.onnx._ops import TENSOR_DTYPES
from chainrule.onnx.errors import OnnxError

#: ``TensorProto.DataLocation.EXTERNAL``
EXTERNAL = 1
#: the typed field each element type keeps its values in, when not ``raw_data``
FIELDS = {1: "float_data", 11: "double_data", 6: "int32_data", 7: "int64_data"}


def to_array(onnx: Any, tensor: Any, what: str) -> np.ndarray[Any, Any]:
    """``tensor`` as a NumPy array, after checking where and what its data is."""
    name = f"{what} {tensor.name!r}" if tensor.name else what
    if is_external(tensor):
        raise OnnxError(external_message(name))
    if tensor.HasField("segment"):
        raise OnnxError(f"{name} is a segment of a tensor; not supported")
    dtype = TENSOR_DTYPES.get(tensor.data_type)
    if dtype is None:
        raise OnnxError(
            f"{name} has element type "
            f"{onnx.helper.tensor_dtype_to_string(tensor.data_type)}; chainrule "
            "reads float32 and float64 weights and int32/int64 shapes only"
        )
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxError(f"{name} has negative dimensions {dims}")
    count = math.prod(dims)
    if tensor.HasField("raw_data"):
        found = len(tensor.raw_data) // np.dtype(dtype).itemsize
        exact = len(tensor.raw_data) % np.dtype(dtype).itemsize == 0
    else:
        found, exact = len(getattr(tensor, FIELDS[tensor.data_type])), True
    if found != count or not exact:
        raise OnnxError(
            f"{name} has shape {dims} ({count} values) but holds {found} values"
        )
    return np.array(onnx.numpy_helper.to_array(tensor), dtype=dtype)


def is_external(tensor: Any) -> bool:
    """Whether ``tensor``'s data lives in another file (``external_data``)."""
    return bool(tensor.data_location == EXTERNAL or len(tensor.external_data))


def external_message(name: str) -> str:
    return (
        f"{name} is stored in an external file (external_data); chainrule "
        "imports only self-contained .onnx files (save with "
        "torch.onnx.export(..., external_data=False) or "
        "onnx.save(model, path, save_as_external_data=False))"
    )


def attributes(onnx: Any, node: Any) -> dict[str, Any]:
    """``node``'s attributes by name; tensors as arrays, graphs refused."""
    values: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.ref_attr_name:
            raise OnnxError(
                f"attribute {attr.name!r} refers to a function's attribute; "
                "chainrule imports plain graphs only"
            )
        value = onnx.helper.get_attribute_value(attr)
        if attr.type == onnx.AttributeProto.TENSOR:
            value = to_array(onnx, value, f"attribute {attr.name!r}")
        elif attr.type not in (
            onnx.AttributeProto.FLOAT,
            onnx.AttributeProto.INT,
            onnx.AttributeProto.STRING,
            onnx.AttributeProto.FLOATS,
            onnx.AttributeProto.INTS,
        ):
            raise OnnxError(
                f"attribute {attr.name!r} holds a "
                f"{onnx.AttributeProto.AttributeType.Name(attr.type)}; "
                "chainrule reads numbers, lists of numbers, strings and tensors"
            )
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        values[attr.name] = value
    return values


__all__ = ["attributes", "external_message", "is_external", "to_array"]

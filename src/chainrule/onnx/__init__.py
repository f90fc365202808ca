"""ONNX export and import (the optional ``chainrule[onnx]`` extra).

``onnx`` is imported only when a function here runs, so ``import chainrule``
never needs it. See docs/onnx.md.
"""

from chainrule.onnx._lazy import require_onnx
from chainrule.onnx._load import read_onnx_metadata
from chainrule.onnx.errors import MissingOnnxError, OnnxError
from chainrule.onnx.export import export_onnx, to_onnx
from chainrule.onnx.importer import from_onnx, import_onnx

__all__ = [
    "MissingOnnxError",
    "OnnxError",
    "export_onnx",
    "from_onnx",
    "import_onnx",
    "read_onnx_metadata",
    "require_onnx",
    "to_onnx",
]

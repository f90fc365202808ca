"""The errors of ONNX export and import, each with a message meant for a person."""

from __future__ import annotations

from chainrule.errors import ChainruleError

INSTALL_HINT = "ONNX export and import need onnx: pip install 'chainrule[onnx]'"


class OnnxError(ChainruleError, ValueError):
    """A model cannot be exported, or an ONNX file cannot be imported; the message
    names the layer, node or operator and what was expected."""


class MissingOnnxError(ChainruleError, ImportError):
    """The ``onnx`` package is not installed; the message says how to install it."""


__all__ = ["INSTALL_HINT", "MissingOnnxError", "OnnxError"]

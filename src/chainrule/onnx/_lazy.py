"""The one place that imports ``onnx``: lazily, so chainrule runs without it."""

from __future__ import annotations

from typing import Any

from chainrule.onnx.errors import INSTALL_HINT, MissingOnnxError


def require_onnx() -> Any:
    """The ``onnx`` package (with ``checker``, ``helper``, ``numpy_helper``), or
    :class:`MissingOnnxError`."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        raise MissingOnnxError(f"{INSTALL_HINT} ({exc})") from exc
    return onnx


__all__ = ["require_onnx"]

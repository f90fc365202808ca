"""What ``chainrule serve`` needs beyond NumPy, and the error saying how to get it."""

from __future__ import annotations

from chainrule.errors import ChainruleError

INSTALL_HINT = (
    "the web app needs starlette, uvicorn and pillow: pip install 'chainrule[serve]'"
)


class MissingServeDependencyError(ChainruleError, ImportError):
    """starlette, uvicorn or pillow is missing; the message says how to install it."""


__all__ = ["INSTALL_HINT", "MissingServeDependencyError"]

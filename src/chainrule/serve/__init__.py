"""``chainrule serve``: draw a digit in the browser, see what the network sees.

The ``serve`` extra (``pip install 'chainrule[serve]'``: starlette, uvicorn,
pillow) is needed to import this package; without it the import raises
:class:`MissingServeDependencyError` saying so. See ``docs/serve.md``.
"""

from chainrule.serve._deps import INSTALL_HINT, MissingServeDependencyError
from chainrule.serve.app import MAX_BODY_BYTES, SECURITY_HEADERS, create_app
from chainrule.serve.inference import InputError, Predictor, parse_pixels
from chainrule.serve.server import is_loopback, make_server, open_socket, url_of

__all__ = [
    "INSTALL_HINT",
    "MAX_BODY_BYTES",
    "SECURITY_HEADERS",
    "InputError",
    "MissingServeDependencyError",
    "Predictor",
    "create_app",
    "is_loopback",
    "make_server",
    "open_socket",
    "parse_pixels",
    "url_of",
]

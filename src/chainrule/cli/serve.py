"""``chainrule serve``: a web page to draw digits on, classified by a saved model."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from chainrule.cli.common import non_negative_int


def port_number(text: str) -> int:
    port = non_negative_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return port


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="a web page to draw digits on, classified live by a saved model",
        description="Serve a page with a canvas to draw a digit on: the model's "
        "probabilities update while you draw, next to the 28x28 image it sees. "
        "JSON API: POST /api/predict, GET /api/model, GET /health (docs/serve.md). "
        "Needs pip install 'chainrule[serve]'.",
    )
    parser.add_argument("model", metavar="FILE", help="a model file saved by chainrule")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; "
        "0.0.0.0 makes the page reachable from other machines)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=8000,
        help="port to listen on (default: 8000; 0 picks a free one)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the rest of the command line works without the serve extra
    from chainrule.serve import (
        create_app,
        is_loopback,
        make_server,
        open_socket,
        url_of,
    )

    app = create_app(args.model)
    sock = open_socket(args.host, args.port)
    if not is_loopback(args.host):
        print(
            f"chainrule serve: warning: listening on {args.host}, so the page is "
            "reachable from other machines on the network",
            file=sys.stderr,
        )
    print(f"serving {args.model} at {url_of(sock)} (Ctrl+C to stop)", flush=True)
    # uvicorn shuts down cleanly on Ctrl+C, then raises it again: not an error
    with sock, contextlib.suppress(KeyboardInterrupt):
        make_server(app).run(sockets=[sock])
    print("stopped")
    return 0

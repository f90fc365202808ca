"""``chainrule`` command: argument parsing, dispatch, and errors without tracebacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chainrule._version import __version__
from chainrule.cli import (
    evaluate,
    export,
    gradcheck,
    import_,
    predict,
    serve,
    trace,
    train,
)
from chainrule.errors import ChainruleError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Neural networks from scratch in NumPy: train, evaluate, "
        "gradient-check and trace models on MNIST; predict your own images, serve "
        "a draw-a-digit page, export and import ONNX.",
    )
    parser.add_argument(
        "--version", action="version", version=f"chainrule {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (train, evaluate, gradcheck, trace, predict, serve, export, import_):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    except (
        ChainruleError,
        ValueError,
        TypeError,
        OSError,
        RuntimeError,
        ArithmeticError,
    ) as exc:
        print(f"chainrule {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

"""``chainrule export``: a model file as an ONNX graph (``chainrule[onnx]``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainrule.cli.common import positive_int
from chainrule.io import load_model, read_header
from chainrule.onnx._ops import DEFAULT_OPSET, MIN_EXPORT_OPSET


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export a model file as ONNX",
        description="Write a chainrule model file as an ONNX graph (opset 17 or "
        "newer) that onnxruntime and other runtimes run: input 'input' (the raw "
        "values the model takes, as float32), outputs 'logits' and, for "
        "classifiers, 'probabilities'. Needs onnx: pip install 'chainrule[onnx]'. "
        "See docs/onnx.md.",
    )
    parser.add_argument(
        "model", metavar="MODEL", help="a model file saved by chainrule"
    )
    parser.add_argument("out", metavar="OUT", help="the ONNX file to write (.onnx)")
    parser.add_argument(
        "--opset",
        type=positive_int,
        default=DEFAULT_OPSET,
        help=f"ONNX operator set version, {MIN_EXPORT_OPSET} or newer "
        f"(default {DEFAULT_OPSET})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.onnx import export_onnx, require_onnx

    require_onnx()  # before any work: a missing package is a one-line error
    if Path(args.out).is_dir():
        raise ValueError(f"{args.out} is a directory; give a file name")
    model = load_model(args.model)
    metadata = {**read_header(args.model).get("metadata", {})}
    metadata["source"] = Path(args.model).name
    proto = export_onnx(model, args.out, args.opset, metadata)
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out} (ONNX opset {args.opset}, {size / 1e6:.2f} MB): "
        f"{len(model.layers)} layers as {len(proto.graph.node)} nodes"
    )
    for kind, values in (("input", proto.graph.input), ("output", proto.graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            shape = ", ".join(d.dim_param or str(d.dim_value) for d in dims)
            print(f"  {kind:<6} {value.name!r:<16} float32 ({shape})")
    if model.dtype.name != "float32":
        print(f"  ({model.dtype.name} weights are written as float32)")
    return 0

"""``chainrule import``: an ONNX graph as a model file (``chainrule[onnx]``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainrule.io import save_model


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "import",
        help="import an ONNX graph as a model file",
        description="Convert an ONNX graph that is a chain of supported operators "
        "(Gemm/MatMul, Conv, pooling, BatchNormalization, activations, Flatten, "
        "Reshape, ...; e.g. an MLP or LeNet from torch.onnx.export) into a "
        "chainrule model file that runs and can be fine-tuned. A final Softmax "
        "becomes the CrossEntropy loss. Needs onnx: pip install "
        "'chainrule[onnx]'. See docs/onnx.md.",
    )
    parser.add_argument("model", metavar="MODEL", help="the ONNX file to read (.onnx)")
    parser.add_argument("out", metavar="OUT", help="the model file to write (.npz)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.onnx import import_onnx, read_onnx_metadata, require_onnx

    require_onnx()
    if Path(args.out).is_dir():
        raise ValueError(f"{args.out} is a directory; give a file name")
    info = read_onnx_metadata(args.model)
    model = import_onnx(args.model)
    metadata = {
        **info["metadata"],
        "imported_from": {
            "file": Path(args.model).name,
            "producer": info["producer"],
            "opset": info["opset"],
        },
    }
    save_model(model, args.out, metadata=metadata)
    producer = f", made by {info['producer']}" if info["producer"] else ""
    print(f"read {args.model} (ONNX opset {info['opset']}{producer})")
    model.summary()
    if model.loss is None:
        print("no loss: compile the model with one before evaluating or fine-tuning")
    print(f"wrote {args.out}")
    return 0

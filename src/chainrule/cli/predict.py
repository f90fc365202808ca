"""``chainrule predict``: classify pictures with a saved model.

Each image is prepared the way the model's training images were (the model
file's ``metadata.input``): as MNIST's digits (``chainrule.imaging``, the
default), as Fashion-MNIST's clothes, or decoded and cropped as the images of
the training folder were. The model runs once over all of them, and each file
gets its top classes, by name, with their probabilities. A file that cannot be
used (unreadable, not an image, blank) gets one line saying why, and the others
are still predicted; the exit status is 1 if any file failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.cli.common import positive_int
from chainrule.errors import DataError
from chainrule.imaging import (
    ImageError,
    input_kind,
    preprocess,
    preprocess_fashion,
    require_pillow,
    save_png,
)
from chainrule.io import load_model, read_header
from chainrule.model import Sequential
from chainrule.ops import softmax

DIGIT_PIXELS = 28 * 28


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "predict",
        help="classify pictures (your own digits, clothes, photos) with a saved model",
        description="Prepare each image the way the model's training images "
        "were and print the model's top classes, by name, with their "
        "probabilities. Digits are prepared as MNIST's (grey, ink bright on "
        "black, cropped, 20 pixels in its longer side, centred by mass in "
        "28x28; see docs/images.md), clothes as Fashion-MNIST's (longer side "
        "28 pixels, centred), pictures for a folder-trained model as the "
        "folder's were (scaled, centre-cropped). Reads PNG, JPEG, BMP and GIF "
        "(and TIFF, WebP, PPM for folder models; needs Pillow: pip install "
        "'chainrule[image]'). A file that cannot be "
        "read, is not an image or holds no ink gets one error line and the "
        "others are still predicted. Exit status: 0 if every file was "
        "predicted, 1 if any failed (or the model cannot be loaded).",
    )
    parser.add_argument(
        "model", metavar="MODEL", help="a model file saved by chainrule"
    )
    parser.add_argument(
        "images", metavar="IMAGE", nargs="+", help="PNG, JPEG, BMP or GIF files"
    )
    parser.add_argument(
        "--top",
        type=positive_int,
        default=3,
        metavar="K",
        help="how many classes to print per image (default 3)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON list: {file, top: [{class, probability}], error} "
        "per image",
    )
    parser.add_argument(
        "--save-preprocessed",
        metavar="DIR",
        help="write the image the network saw as DIR/<name>_mnist.png "
        "(_fashion.png, _input.png for Fashion-MNIST and folder models)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_pillow()  # one error for a missing Pillow, not one per file
    model = load_model(args.model)
    names = class_names(model, read_header(args.model))
    save_dir = _prepare_dir(args.save_preprocessed)
    digits: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    info = (read_header(args.model).get("metadata") or {}).get("input")
    prepare = preparer(info)
    check_input(model, info)
    for i, path in enumerate(args.images):
        try:
            digits[i] = prepare(path)
        except ImageError as exc:
            errors[i] = str(exc)
    scores = probabilities(model, list(digits.values()))
    rows = dict(zip(digits, scores, strict=True))
    results = []
    for i, path in enumerate(args.images):
        top = top_classes(rows[i], names, args.top) if i in rows else []
        results.append({"file": path, "top": top, "error": errors.get(i)})
    if save_dir is not None:
        _save(digits, args.images, save_dir, SUFFIXES.get(input_kind(info), "_input"))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            _print(result)
    return 1 if errors else 0


#: the name ``--save-preprocessed`` gives each kind of prepared image
SUFFIXES = {"digits": "_mnist", "fashion": "_fashion", "folder": "_input"}


def preparer(info: object) -> Callable[[str], np.ndarray]:
    """How the model file's ``input`` says a new image is prepared.

    ``digits`` (and files saved before the field existed): MNIST's preparation;
    ``fashion``: Fashion-MNIST's (the article's longer side 28 px, centred);
    ``folder``: decoded, scaled and centre-cropped as the training folder was.
    """
    kind = input_kind(info)
    if kind == "fashion":
        return preprocess_fashion
    if kind == "folder":
        assert isinstance(info, dict)
        from chainrule.data.folder import read_folder_image

        size = (int(info["image_size"][0]), int(info["image_size"][1]))
        channels = int(info["channels"])

        def read(path: str) -> np.ndarray:
            try:
                return read_folder_image(path, image_size=size, channels=channels)
            except DataError as exc:
                raise ImageError(str(exc)) from None

        return read
    return preprocess


def check_input(model: Sequential, info: object) -> None:
    """Refuse a model whose input is not what ``info``'s images are."""
    shape = model.input_shape or ()
    kind = input_kind(info)
    if kind == "folder":
        assert isinstance(info, dict)
        expected = int(info["channels"]) * int(np.prod(info["image_size"]))
        what = "images of its training folder"
    else:
        expected, what = DIGIT_PIXELS, "28x28 images (784 pixels)"
    if int(np.prod(shape)) != expected:
        raise ValueError(
            f"the model takes inputs of shape {shape}; predict gives it {what}"
        )


def class_names(model: Sequential, header: dict[str, Any]) -> list[str]:
    """The model file's ``class_names`` if they fit its outputs, else "0", "1", …"""
    outputs = int(np.prod(model.output_shape or (0,)))
    names = (header.get("metadata") or {}).get("class_names")
    if isinstance(names, list) and len(names) == outputs:
        return [str(n) for n in names]
    return [str(i) for i in range(outputs)]


def probabilities(model: Sequential, digits: list[np.ndarray]) -> np.ndarray:
    """Class probabilities ``(N, classes)`` for prepared uint8 images.

    ``model.predict`` applies the loss's activation (softmax for cross-entropy,
    each class's sigmoid for binary cross-entropy); a model saved without a loss
    gets a softmax of its outputs.
    """
    shape = model.input_shape or ()
    if not digits:
        return np.zeros((0, int(np.prod(model.output_shape or (0,)))))
    x = np.stack(digits).reshape(len(digits), *shape)  # (N, 28, 28) -> (N, *shape)
    if model.loss is None:
        return np.asarray(softmax(model.predict_logits(x)))
    return model.predict(x).reshape(len(digits), -1)


def top_classes(scores: np.ndarray, names: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes, most probable first (ties: lower index)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"class": names[i], "probability": float(scores[i])} for i in order]


def _print(result: dict[str, Any]) -> None:
    if result["error"] is not None:
        print(f"chainrule predict: error: {result['error']}", file=sys.stderr)
        return
    guesses = ", ".join(
        f"{t['class']} ({percent(t['probability'])})" for t in result["top"]
    )
    print(f"{result['file']}: {guesses}")


def percent(p: float) -> str:
    """``p`` as a percentage to 0.1, never rounded to a certain 0% or 100%."""
    if p < 0.0005:
        return "<0.1%"
    if p > 0.9995:
        return ">99.9%"
    return f"{100 * p:.1f}%"


def _prepare_dir(path: str | None) -> Path | None:
    if path is None:
        return None
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"--save-preprocessed {path} is a file; give a directory")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _save(
    images: dict[int, np.ndarray], paths: list[str], directory: Path, suffix: str
) -> None:
    """Write each prepared image as ``<name><suffix>.png``; repeats get ``-2``, …

    ``(C, H, W)`` images of a folder model are written as grey (one channel)
    or RGB (three).
    """
    used: set[str] = set()
    for i, image in images.items():
        stem = Path(paths[i]).stem
        name, n = f"{stem}{suffix}.png", 1
        while name in used:
            n += 1
            name = f"{stem}{suffix}-{n}.png"
        used.add(name)
        if image.ndim == 3:  # (C, H, W) -> (H, W) or (H, W, 3)
            image = image[0] if len(image) == 1 else np.moveaxis(image, 0, -1)
        save_png(np.ascontiguousarray(image), directory / name)

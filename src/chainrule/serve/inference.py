"""The model behind the web app: loaded once, classifies one 28×28 image at a time.

Nothing here knows about HTTP. :class:`Predictor` turns a PNG (through
:func:`chainrule.imaging.preprocess`, the same path as ``chainrule predict``)
or a JSON array of pixels into the JSON-ready answer the page draws, and
describes the model for ``GET /api/model``.

Inference keeps no state: a layer's forward pass with ``training=False`` reads
its weights and returns a new array, so requests on several threads share one
model without a lock.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import backend, ops
from chainrule.imaging import (
    BlankImageError,
    input_kind,
    preprocess,
    preprocess_fashion,
)
from chainrule.io import load_model, read_header
from chainrule.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Tanh,
)
from chainrule.losses import BinaryCrossEntropy, CrossEntropy

NDArray = np.ndarray[Any, Any]

#: the image size every served model takes (MNIST's)
SIDE = 28
PIXELS = SIDE * SIDE
#: layers that keep the first hidden layer's shape, so its activations run on to them
_ELEMENTWISE = (BatchNorm, ReLU, LeakyReLU, Sigmoid, Tanh, Identity, Dropout)


class InputError(ValueError):
    """A request's pixels are not a 28×28 image of numbers in [0, 255]."""


def parse_pixels(payload: object) -> NDArray:
    """``{"pixels": 28 rows of 28 numbers, or 784 numbers}`` as a (28, 28) array.

    Numbers must be finite and in [0, 255] (MNIST's convention: ink bright on
    black); anything else raises :class:`InputError` saying what was wrong.
    """
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise InputError(
            'expected a JSON object {"pixels": [...]} with 28 rows of 28 numbers '
            "or 784 numbers"
        )
    pixels = payload["pixels"]
    if not isinstance(pixels, list):
        raise InputError(f"pixels must be a list, got {type(pixels).__name__}")
    if pixels and all(isinstance(row, list) for row in pixels):
        lengths = sorted({len(row) for row in pixels})
        if len(pixels) != SIDE or lengths != [SIDE]:
            raise InputError(
                f"pixels must be {SIDE} rows of {SIDE} numbers, got {len(pixels)} "
                f"rows of length {', '.join(map(str, lengths))}"
            )
        flat = [value for row in pixels for value in row]
    elif len(pixels) != PIXELS:
        raise InputError(
            f"pixels must be {SIDE} rows of {SIDE} numbers or {PIXELS} numbers, "
            f"got a list of {len(pixels)}"
        )
    else:
        flat = pixels
    for value in flat:
        # bool is an int in Python, and a string would convert: refuse both
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(
                f"pixels must be numbers, got {type(value).__name__} {value!r:.40}"
            )
    try:
        image = np.array(flat, dtype=np.float64)
    except OverflowError as exc:
        raise InputError(f"pixels must be in [0, 255]: {exc}") from exc
    if not np.isfinite(image).all():
        raise InputError("pixels must be finite numbers, got NaN or infinity")
    if image.min() < 0 or image.max() > 255:
        raise InputError(
            f"pixels must be in [0, 255], got values from {image.min():g} "
            f"to {image.max():g}"
        )
    return image.reshape(SIDE, SIDE)


def first_hidden_layer(layers: list[Layer]) -> tuple[int, str] | None:
    """Index and description of the first hidden layer's output, if there is one.

    That is the first ``Dense`` or ``Conv2D`` together with the element-wise
    layers after it (batch norm, the activation): ``Conv2D(…) → ReLU()``.
    ``None`` when the first such layer is the output layer.
    """
    for start, layer in enumerate(layers):
        if isinstance(layer, (Dense, Conv2D)):
            end = start
            while end + 1 < len(layers) and isinstance(layers[end + 1], _ELEMENTWISE):
                end += 1
            if end == len(layers) - 1:
                return None
            shown = [
                repr(x) for x in layers[start : end + 1] if not isinstance(x, Dropout)
            ]
            return end, " → ".join(shown)
    return None


def _metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    metadata = read_header(path).get("metadata", {})
    return metadata if isinstance(metadata, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Predictor:
    """A model file loaded once, answering for one 28×28 image at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.model = load_model(path)
        self.name = Path(path).name
        self.metadata = _metadata(path)
        input_shape = tuple(self.model.input_shape or ())
        output_shape = tuple(self.model.output_shape or ())
        kind = input_kind(self.metadata.get("input"))
        if kind not in ("digits", "fashion"):
            raise ValueError(
                f"{self.name} was trained on {kind} images; the web app draws "
                f"{SIDE}x{SIDE} grey images (MNIST or Fashion-MNIST models); use "
                "chainrule predict for it"
            )
        # a drawing is prepared as the model's training images were
        self.prepare = preprocess_fashion if kind == "fashion" else preprocess
        if math.prod(input_shape) != PIXELS:
            raise ValueError(
                f"{self.name} takes input of shape {input_shape}; the web app needs "
                f"a model of {SIDE}x{SIDE} images"
            )
        if len(output_shape) != 1 or output_shape[0] < 2:
            raise ValueError(
                f"{self.name} gives output of shape {output_shape}; the web app "
                "needs a classifier with one score per class"
            )
        classes = self.metadata.get("class_names")
        if not (
            isinstance(classes, list)
            and len(classes) == output_shape[0]
            and all(isinstance(c, str) for c in classes)
        ):
            classes = [str(i) for i in range(output_shape[0])]
        self.classes: list[str] = classes
        self.hidden = first_hidden_layer(self.model.layers)
        # what the outputs are, as chainrule predict reads them: the loss's
        # activation, or a softmax for a model saved without a loss
        loss = self.model.loss
        if isinstance(loss, BinaryCrossEntropy):
            self.output = "sigmoid"
        elif loss is None or isinstance(loss, CrossEntropy):
            self.output = "softmax"
        else:
            self.output = "raw"

    # ---------------------------------------------------------------- answers
    def classify_png(self, data: bytes, activations: bool = False) -> dict[str, Any]:
        """Preprocess an image file's bytes as ``chainrule predict`` does, classify it.

        Raises :class:`chainrule.imaging.ImageError` for bytes that are not a
        readable image; a blank image is answered with ``"blank": true``.
        """
        try:
            image = self.prepare(data)
        except BlankImageError as exc:
            return {
                "blank": True,
                "message": str(exc),
                "prediction": None,
                "label": None,
                "probabilities": None,
                "classes": self.classes,
                "image": [0] * PIXELS,
            }
        return self.classify(image, activations)

    def classify_pixels(
        self, payload: object, activations: bool = False
    ) -> dict[str, Any]:
        """Classify ``{"pixels": ...}`` (see :func:`parse_pixels`) as given."""
        return self.classify(parse_pixels(payload), activations)

    def classify(self, image: NDArray, activations: bool = False) -> dict[str, Any]:
        """Probabilities and prediction for one (28, 28) image of 0–255 values."""
        model = self.model
        # (28, 28) -> (1, *input_shape): a batch of one
        h = backend.asarray(image.reshape(1, *(model.input_shape or ())), model.dtype)
        kept = None
        for i, layer in enumerate(model.layers):
            h, _ = layer.forward(h, False)
            if self.hidden is not None and i == self.hidden[0]:
                kept = backend.to_numpy(h)[0]
        loss = model.loss
        probabilities = ops.softmax(h) if loss is None else loss.activation(h)
        probs = backend.to_numpy(probabilities)[0].astype(np.float64)
        k = int(np.argmax(probs))
        answer: dict[str, Any] = {
            "blank": False,
            "prediction": k,
            "label": self.classes[k],
            "probabilities": [round(float(p), 6) for p in probs],
            "classes": self.classes,
            "image": np.clip(np.rint(image), 0, 255).astype(int).ravel().tolist(),
        }
        if activations and kept is not None and self.hidden is not None:
            answer["activations"] = _encode(kept, self.hidden[1])
        return answer

    def info(self) -> dict[str, Any]:
        """What ``GET /api/model`` reports: architecture, data set, accuracy."""
        model = self.model
        metrics = self.metadata.get("metrics")
        metrics = {
            k: v
            for k, v in (metrics.items() if isinstance(metrics, dict) else ())
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
        }
        layers = [
            {
                "layer": repr(layer),
                "output_shape": list(layer.output_shape or ()),
                "parameters": sum(int(p.size) for p in layer.parameters()),
            }
            for layer in model.layers
        ]
        hidden = None
        if self.hidden is not None:
            index, description = self.hidden
            shape = model.layers[index].output_shape or ()
            hidden = {"layer": description, "shape": list(shape)}
        return {
            "file": self.name,
            "preset": _text(self.metadata.get("preset")),
            "dataset": _text(self.metadata.get("dataset")),
            "classes": self.classes,
            "input_shape": list(model.input_shape or ()),
            "output": self.output,
            "parameters": model.count_params(),
            "layers": layers,
            "loss": repr(model.loss) if model.loss is not None else None,
            "metrics": metrics,
            "test_accuracy": metrics.get("test_accuracy"),
            "activations": hidden,
        }


def _encode(values: NDArray, description: str) -> dict[str, Any]:
    """Activations as 0–255 ints scaled by their largest value (negatives as 0)."""
    top = float(np.max(values)) if values.size else 0.0
    scale = 255 / top if top > 0 else 0.0
    quantised = np.rint(np.clip(values, 0, None) * scale).astype(int)
    return {
        "layer": description,
        "shape": list(values.shape),
        "max": round(top, 6),
        "values": quantised.ravel().tolist(),
    }


__all__ = [
    "PIXELS",
    "SIDE",
    "InputError",
    "Predictor",
    "first_hidden_layer",
    "parse_pixels",
]

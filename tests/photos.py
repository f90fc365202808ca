"""Helpers the image tests share: "user photos" of MNIST digits and a small model.

A photo is made the way a person would make one: an MNIST test digit scaled up
smoothly (bicubic) and placed off-centre on a larger sheet, dark ink on light
paper, saved as PNG, JPEG, ...; :func:`chainrule.imaging.preprocess` must turn it
back into (nearly) the original digit.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import chainrule as cr

#: the photo variants, as keyword arguments of :func:`photo`
VARIANTS: dict[str, dict[str, Any]] = {
    "png dark on white": {},
    "rgb on tinted paper": {"colour": True},
    "transparent png": {"transparent": True},
    "jpeg": {"fmt": "JPEG"},
    "grey paper, grey ink": {"paper": 190, "ink": 60},
    "bmp 5x on 300x400": {"fmt": "BMP", "scale": 5, "size": (300, 400)},
    "gif": {"fmt": "GIF"},
}


def photo(
    digit: np.ndarray,
    *,
    scale: int = 3,
    size: tuple[int, int] = (200, 150),
    at: tuple[int, int] = (37, 41),
    paper: int = 255,
    ink: int = 0,
    colour: bool = False,
    transparent: bool = False,
    fmt: str = "PNG",
) -> bytes:
    """The file bytes of ``digit`` (uint8 28×28, bright on black) as a photo.

    Scaled ``scale``× with bicubic interpolation, pasted at ``at`` (x, y) on a
    sheet of ``size`` (width, height), drawn in grey level ``ink`` on ``paper``;
    ``colour`` makes it RGB on bluish paper, ``transparent`` black strokes on a
    transparent background (as a web canvas gives).
    """
    side = 28 * scale
    big = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
    sheet = Image.new("L", size, 0)
    sheet.paste(big, at)
    amount = np.asarray(sheet, dtype=np.float64) / 255  # (H, W) ink in [0, 1]
    if transparent:
        rgba = np.zeros((*amount.shape, 4), dtype=np.uint8)
        rgba[..., 3] = np.rint(255 * amount)
        image = Image.fromarray(rgba, "RGBA")
    else:
        grey = np.rint(paper + (ink - paper) * amount).astype(np.uint8)
        image = Image.fromarray(grey)
        if colour:
            tint = [
                np.minimum(grey.astype(int) + d, 255).astype(np.uint8)
                for d in (0, 10, 40)
            ]
            image = Image.fromarray(np.stack(tint, axis=-1), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    """``array`` saved as an image file of format ``fmt``, as bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=fmt)
    return buffer.getvalue()


def small_cnn() -> cr.Sequential:
    """The image tests' small CNN for MNIST digits, compiled, not trained yet.

    Two convolutions and a dense layer; ``scripts/preprocessing_pictures.py``
    trains the same one for the pictures of ``docs/images.md``.
    """
    model = cr.Sequential(
        [
            cr.Rescaling(1 / 255),
            cr.Reshape((1, 28, 28)),
            cr.Conv2D(8, 5, init="he"),
            cr.ReLU(),
            cr.MaxPool2D(2),
            cr.Conv2D(16, 3, init="he"),
            cr.ReLU(),
            cr.MaxPool2D(2),
            cr.Flatten(),
            cr.Dense(10),
        ],
        input_shape=(28, 28),
        seed=0,
    )
    model.compile(cr.CrossEntropy(), cr.Adam(2e-3))
    return model


@functools.lru_cache(maxsize=1)
def digit_model(data_dir: Path) -> cr.Sequential:
    """:func:`small_cnn` trained for one epoch on 20,000 MNIST digits (about 97%, 3 s).

    Cached, so every test module that needs a model shares one training run.
    """
    (x, y), _ = cr.load_mnist(data_dir, download=False)
    model = small_cnn()
    model.fit(x[:20000], y[:20000], epochs=1, batch_size=64, seed=0, verbose=0)
    return model


__all__ = ["VARIANTS", "digit_model", "encode", "photo", "small_cnn"]

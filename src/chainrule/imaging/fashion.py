"""Fashion-MNIST's preparation, applied to any picture of a piece of clothing.

Xiao, Rasul & Vollgraf (2017) made each Fashion-MNIST image from a product
photo on a light background: trimmed to the article, resized so the longer
side is 28 pixels, centred in 28x28, negated (the article bright on black) and
stored as 8-bit grey. :func:`to_fashion_mnist` repeats that: grey levels, the
article made bright on black (:func:`~chainrule.imaging.mnist.ink_on_black`:
a light background is inverted), cropped to the article, its longer side
resized to 28 pixels by area averaging, centred by its bounding box.
"""

from __future__ import annotations

import numpy as np

from chainrule.imaging.files import Source
from chainrule.imaging.mnist import (
    FIELD,
    NOISE,
    as_grey,
    crop_to_ink,
    fit_to_box,
    ink_on_black,
    prepare,
)
from chainrule.types import Array


def centre_box(image: Array, field: int = FIELD) -> Array:
    """Paste ``image`` ``(h, w)`` into a black ``field × field`` square, centred.

    Shape:
        ``(h, w) -> (field, field)``, ``h, w ≤ field``
    """
    h, w = image.shape
    if h > field or w > field:
        raise ValueError(f"centre_box: a {h}x{w} image does not fit {field}")
    top, left = (field - h) // 2, (field - w) // 2
    out = np.zeros((field, field), dtype=np.float32)
    out[top : top + h, left : left + w] = image
    return out


def to_fashion_mnist(gray: Array) -> Array:
    """Any 2-D grey picture of an article, prepared as Fashion-MNIST's were.

    Returns uint8 ``(28, 28)``, the article bright on black. Raises
    :class:`BlankImageError` when nothing stands out from the background.

    Shape:
        ``(H, W) -> (28, 28)``
    """
    article = crop_to_ink(ink_on_black(as_grey(gray)), extent=NOISE)
    centred = centre_box(fit_to_box(article, box=FIELD))
    return np.rint(np.clip(centred, 0, 1) * 255).astype(np.uint8)


def preprocess_fashion(source: Source | Array, *, name: str | None = None) -> Array:
    """An image file, its bytes, or a grey array, prepared as Fashion-MNIST's.

    Errors name the file (or ``name``): :class:`ImageError` when it cannot be
    read, :class:`BlankImageError` when nothing stands out from the background.
    """
    return prepare(source, to_fashion_mnist, name=name)


def input_kind(info: object) -> str:
    """How a model file's ``metadata.input`` says new pictures are prepared:
    ``"digits"`` (MNIST's way; also for files without it), ``"fashion"`` or
    ``"folder"``."""
    return str(info.get("kind", "digits")) if isinstance(info, dict) else "digits"


__all__ = ["centre_box", "input_kind", "preprocess_fashion", "to_fashion_mnist"]

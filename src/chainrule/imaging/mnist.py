"""MNIST's own preparation, applied to any picture of a digit.

MNIST's digits were not photographed at 28×28. NIST's scans of handwriting were
cropped to the digit, resized so that the longer side is 20 pixels (keeping the
aspect ratio, with anti-aliasing that turned the edges grey) and placed in a
28×28 field with their centre of mass at the centre. A network trained on them
expects exactly that: bright ink on black, 20 pixels tall or wide, centred by
mass. A photo of a digit (dark ink on white paper, off-centre, 300 pixels tall)
is nothing like it, and that, not the network, is why "it doesn't recognise my
handwriting". :func:`to_mnist` repeats the preparation step by step:

1. :func:`as_grey`: grey levels in [0, 1] (uint8 images are divided by 255);
2. :func:`ink_on_black`: the background is the median of the border pixels;
   ink darker than it (pen on paper) is inverted, so ink is bright on black;
   the background level is subtracted and the strongest ink scaled to 1;
   pixels weaker than :data:`NOISE` of it are dropped (paper texture, shadows,
   JPEG ripples).
   An image whose ink differs from the background by less than
   :data:`MIN_CONTRAST` is blank: :class:`BlankImageError`, never a guess;
3. :func:`crop_to_ink`: cut to the bounding box of the ink at least
   :data:`EXTENT` strong (so stray grain does not count);
4. :func:`fit_to_box`: resize so the longer side is :data:`BOX` (20) pixels,
   keeping the aspect ratio, by area averaging (``resample.py``);
5. :func:`centre_by_mass`: paste into the :data:`FIELD` (28×28) field, shifted
   by whole pixels so the centre of mass lands at (14, 14) (as in MNIST, whose
   centres of mass lie within half a pixel of it), unless that would push ink
   out of the frame;
6. scale to uint8 0–255: the dtype and scale of ``load_mnist``'s images, which
   chainrule's models take raw (their first layer is ``Rescaling(1/255)``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from chainrule.imaging.errors import BlankImageError
from chainrule.imaging.files import Source, describe_source, load_image
from chainrule.imaging.resample import resize
from chainrule.types import Array

#: side of the square the digit is resized into, in pixels
BOX = 20
#: side of the square field the digit is centred in, in pixels
FIELD = 28
#: the least difference between ink and background (a fraction of black to
#: white, here 51 of 255 grey levels) for an image not to be blank
MIN_CONTRAST = 0.2
#: ink weaker than this fraction of the strongest ink is background noise
NOISE = 0.1
#: the digit's extent: the rows and columns holding ink at least this fraction
#: of the strongest (stray grain and faint fringes do not stretch the crop)
EXTENT = 0.3


def as_grey(image: object) -> Array:
    """A 2-D grey image as float32 in [0, 1]: floats as they are, integers / 255.

    Raises ``ValueError`` naming the problem for a shape that is not 2-D, an
    empty image, NaN, or values outside [0, 1] (floats) or 0–255 (integers).
    """
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(
            f"to_mnist expected a 2-D grey image (height, width), got shape "
            f"{arr.shape}; read colour files with load_image"
        )
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError(
                f"to_mnist expected integer grey levels 0-255, got values "
                f"{arr.min()} to {arr.max()}"
            )
        return arr.astype(np.float32) / (1 if arr.dtype == np.bool_ else 255)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"to_mnist expected a numeric image, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("to_mnist: the image holds NaN or infinite values")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(
            f"to_mnist expected float grey levels in [0, 1], got values "
            f"{arr.min():.4g} to {arr.max():.4g} (divide 0-255 images by 255)"
        )
    return arr.astype(np.float32)


def border_median(grey: Array) -> float:
    """The median of the outermost rows and columns: the background's level."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(border))


def ink_on_black(grey: Array) -> Array:
    """Ink bright on black, its strongest pixel 1, noise below :data:`NOISE` 0.

    The ink is whichever side of the background reaches further from it:
    darker (pen on paper: the image is inverted) or lighter (chalk on a board,
    white strokes on a black canvas). Subtracts the background level and scales
    the strongest ink to 1. Raises :class:`BlankImageError` when the strongest ink
    differs from the background by less than :data:`MIN_CONTRAST`.
    """
    background = border_median(grey)
    if background - grey.min() > grey.max() - background:
        # the ink reaches further below the background than above: dark ink
        grey, background = 1 - grey, 1 - background
    ink = np.clip(grey - background, 0, None)
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        raise BlankImageError(
            "blank image: no ink found, nothing to predict (no pixel differs "
            f"from the background by more than {round(255 * contrast)} of 255 "
            f"grey levels; at least {round(255 * MIN_CONTRAST)} needed)"
        )
    ink /= contrast
    ink[ink < NOISE] = 0
    return ink.astype(np.float32)


def crop_to_ink(ink: Array, extent: float = EXTENT) -> Array:
    """The smallest rectangle holding every pixel of ``ink`` of at least ``extent``.

    A threshold well above :data:`NOISE` keeps the crop to the strokes: a
    photo's grain leaves scattered pixels just above the noise level all over
    the sheet, and one of them would otherwise shrink the digit to fit it in.
    Weaker ink inside the rectangle is kept (it is the strokes' grey fringe).

    Shape:
        ``(H, W) -> (h, w)``, ``h ≤ H``, ``w ≤ W``
    """
    strong = ink >= extent
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    if len(rows) == 0:
        raise BlankImageError("blank image: no ink found, nothing to predict")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_to_box(ink: Array, box: int = BOX) -> Array:
    """Resize so the longer side is ``box`` pixels, keeping the aspect ratio.

    The strongest pixel is scaled back to 1 afterwards: averaging dims thin
    strokes, and nearly every MNIST digit reaches full white.

    Shape:
        ``(h, w) -> (box, max(1, ⌊box·w/h + ½⌋))`` when ``h ≥ w``, and the
        transpose otherwise
    """
    h, w = ink.shape
    scale = box / max(h, w)
    # halves round up (Python's round() would send 2.5 to 2)
    height, width = (max(1, int(side * scale + 0.5)) for side in (h, w))
    fitted = np.clip(resize(ink, height, width), 0, None)
    return (fitted / fitted.max()).astype(np.float32)


def centre_by_mass(ink: Array, field: int = FIELD) -> Array:
    """Paste ``ink`` into a ``field × field`` black square, centred by mass.

    The shift is whole pixels, chosen so the centre of mass (in pixel-index
    coordinates) lands within half a pixel of ``(field/2, field/2)``, as in
    MNIST; where that would push ink out of the frame, the ink stops at the edge.

    Shape:
        ``(h, w) -> (field, field)``, ``h, w ≤ field``
    """
    h, w = ink.shape
    if h > field or w > field:
        raise ValueError(f"centre_by_mass: a {h}x{w} image does not fit {field}")
    mass = float(ink.sum())
    cy = float(ink.sum(axis=1) @ np.arange(h)) / mass
    cx = float(ink.sum(axis=0) @ np.arange(w)) / mass
    top = int(np.clip(np.floor(field / 2 - cy + 0.5), 0, field - h))
    left = int(np.clip(np.floor(field / 2 - cx + 0.5), 0, field - w))
    out = np.zeros((field, field), dtype=np.float32)
    out[top : top + h, left : left + w] = ink
    return out


def to_mnist(gray: Array) -> Array:
    """Any 2-D grey image of a digit, prepared as MNIST's digits were.

    ``gray`` is float in [0, 1] or integer 0–255, ink dark or light. Returns
    uint8 ``(28, 28)``, ink bright on black, 0–255: what ``load_mnist`` gives
    and chainrule's models take. Raises :class:`BlankImageError` for an image
    without ink (see :data:`MIN_CONTRAST`).

    Shape:
        ``(H, W) -> (28, 28)``
    """
    ink = ink_on_black(as_grey(gray))
    centred = centre_by_mass(fit_to_box(crop_to_ink(ink)))
    return np.rint(np.clip(centred, 0, 1) * 255).astype(np.uint8)


def preprocess(source: Source | Array, *, name: str | None = None) -> Array:
    """An image file, its bytes, or a grey array, prepared as an MNIST digit.

    Files are read by :func:`load_image`; arrays go to :func:`to_mnist` as they
    are. Errors name the file (or ``name``): :class:`ImageError` when it cannot
    be read, :class:`BlankImageError` when it holds no ink.

    Shape:
        ``(H, W) -> (28, 28)`` uint8
    """
    return prepare(source, to_mnist, name=name)


def prepare(
    source: Source | Array, step: Callable[[Array], Array], *, name: str | None = None
) -> Array:
    """``step`` applied to an array, or to the grey image read from a file.

    A :class:`BlankImageError` from ``step`` gets the file's name (or ``name``).
    """
    if isinstance(source, np.ndarray):
        return step(source)
    grey = load_image(source, name=name)
    try:
        return step(grey)
    except BlankImageError as exc:
        raise BlankImageError(f"{describe_source(source, name)}: {exc}") from None


__all__ = [
    "BOX",
    "EXTENT",
    "FIELD",
    "MIN_CONTRAST",
    "NOISE",
    "as_grey",
    "border_median",
    "centre_by_mass",
    "crop_to_ink",
    "fit_to_box",
    "ink_on_black",
    "prepare",
    "preprocess",
    "to_mnist",
]

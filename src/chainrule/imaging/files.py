"""Reading image files with Pillow (the ``chainrule[image]`` extra), imported lazily.

:func:`load_image` turns a PNG, JPEG, BMP or GIF (its first frame) into a 2-D
float32 array in [0, 1], 0 black and 1 white. Transparent pixels count as the
white paper under them, so a drawing from a web canvas with a transparent
background reads as ink on white. A phone photo's EXIF orientation is applied.

Images come from users, so the file is treated as untrusted: only the four
formats are tried, the pixel count is checked from the header before anything is
decoded (:data:`MAX_PIXELS`), and whatever a decoder raises on a corrupt file
becomes an :class:`ImageError` that names the file.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np

from chainrule.atomic import atomic_write_bytes
from chainrule.imaging.errors import ImageError, MissingPillowError
from chainrule.types import Array

#: the formats :func:`load_image` reads (Pillow's names)
FORMATS = ("PNG", "JPEG", "BMP", "GIF")
#: the largest image read: 4096×4096 pixels (a 12-megapixel photo fits)
MAX_PIXELS = 4096 * 4096
INSTALL_HINT = "reading images needs Pillow: pip install 'chainrule[image]'"

#: Pillow's weights for grey from RGB (ITU-R 601), as in ``Image.convert("L")``
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: the first bytes of each format's files
_SIGNATURES = {
    "PNG": b"\x89PNG\r\n\x1a\n",
    "JPEG": b"\xff\xd8\xff",
    "GIF": b"GIF8",
    "BMP": b"BM",
}
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")

Source = str | os.PathLike[str] | bytes


def require_pillow() -> Any:
    """The ``PIL`` package with ``Image`` and ``ImageOps``, or MissingPillowError."""
    try:
        import PIL
        import PIL.Image
        import PIL.ImageOps
    except ImportError as exc:
        raise MissingPillowError(f"{INSTALL_HINT} ({exc})") from exc
    return PIL


def describe_source(source: object, name: str | None = None) -> str:
    """How error messages name an image: ``name``, the path, or "image data"."""
    if name is not None:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "image data"
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    return type(source).__name__


def load_image(source: Source, *, name: str | None = None) -> Array:
    """A PNG, JPEG, BMP or GIF as a 2-D float32 grey array in [0, 1].

    ``source`` is a path or the file's bytes; ``name`` is how error messages
    call it (default: the path, or "image data"). Raises :class:`ImageError`
    when the file is missing, unreadable, not an image in one of
    :data:`FORMATS`, or has more than :data:`MAX_PIXELS` pixels.

    Shape:
        an ``H × W`` image -> ``(H, W)``
    """
    pil = require_pillow()
    label = describe_source(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        stream = os.fspath(source)
    else:
        raise TypeError(
            "load_image expected a path or the file's bytes, "
            f"got {type(source).__name__}"
        )
    try:
        # the warning Pillow gives between its own limit and twice that is an
        # error here too: the image is refused either way, and never half-read
        # (the filter is process-wide while it lasts; another thread reading an
        # image at the same time can at worst leave it in place, which is this
        # module's policy anyway)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pil.Image.DecompressionBombWarning)
            with pil.Image.open(stream, formats=FORMATS) as image:
                _check_size(image.size, label)
                image.load()
                return _grey(pil.ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except (pil.Image.DecompressionBombError, pil.Image.DecompressionBombWarning):
        raise ImageError(
            f"{label}: the image is too large: more than {MAX_PIXELS:,} pixels "
            "(4096×4096)"
        ) from None
    except pil.UnidentifiedImageError:
        found = _signature(source)
        if found is not None:
            raise ImageError(
                f"{label}: cannot read the image: a damaged or truncated {found} file"
            ) from None
        raise ImageError(
            f"{label}: not an image (expected PNG, JPEG, BMP or GIF)"
        ) from None
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(f"{label}: permission denied") from None
    except Exception as exc:
        # Pillow's decoders signal a corrupt file in many ways (OSError for a
        # truncated one, SyntaxError, ValueError, struct.error, ...)
        raise ImageError(f"{label}: cannot read the image: {exc}") from None


def _signature(source: Source) -> str | None:
    """The format whose signature the file starts with, if one of :data:`FORMATS`."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:8])
    else:
        try:
            with open(source, "rb") as file:
                head = file.read(8)
        except OSError:
            return None
    for name, magic in _SIGNATURES.items():
        if head.startswith(magic):
            return name
    return None


def _check_size(size: tuple[int, int], label: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{label}: the image is too large: {width}×{height} pixels, "
            f"more than {MAX_PIXELS:,} (4096×4096); shrink it first"
        )


def _grey(image: Any) -> Array:
    """Grey levels in [0, 1] of a decoded Pillow image, transparency on white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float32) / 65535
        return np.clip(values, 0, 1).astype(np.float32)
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not transparent:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255  # (H, W, 4)
    grey = rgba[..., :3] @ _LUMA  # (H, W, 3) -> (H, W)
    alpha = rgba[..., 3]
    # composite onto white paper: transparent is background, opaque is the colour
    return np.clip(grey * alpha + (1 - alpha), 0, 1).astype(np.float32)


def save_png(image: Array, path: str | os.PathLike[str]) -> None:
    """Write a uint8 grey ``(H, W)`` (such as :func:`to_mnist`'s) or RGB
    ``(H, W, 3)`` image as a PNG."""
    pil = require_pillow()
    colour = image.ndim == 3 and image.shape[-1] == 3
    if not (image.ndim == 2 or colour) or image.dtype != np.uint8:
        raise ValueError(
            "save_png expected a uint8 image (H, W) or (H, W, 3), got "
            f"{image.dtype} {image.shape}"
        )
    buffer = io.BytesIO()
    pil.Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "MAX_PIXELS",
    "Source",
    "describe_source",
    "load_image",
    "require_pillow",
    "save_png",
]

"""Decoding one image with Pillow: modes, transparency, EXIF, scaling, cropping.

A file that cannot be used raises :class:`_Skipped` with the reason.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data.folder.constants import (
    _ALPHA_MODES,
    _DEEP_MODES,
    _QUARTER_TURNS,
    FORMATS,
    INSTALL_HINT,
    MAX_PIXELS,
)
from chainrule.errors import ChainruleError


class PillowRequiredError(ChainruleError, ImportError):
    """Pillow is not installed; the message says how to install it."""


class _Skipped(Exception):
    """A file that is not used; the message is the reason."""


def _require_pillow() -> Any:
    """The ``PIL`` package with ``Image`` and ``ImageOps``, or an install hint."""
    try:
        import PIL
        import PIL.Image
        import PIL.ImageOps
    except ImportError as exc:
        raise PillowRequiredError(f"{INSTALL_HINT} ({exc})") from exc
    return PIL


def _formats(pil: Any) -> list[str]:
    """Those of :data:`FORMATS` this Pillow can open (WEBP may be left out)."""
    pil.Image.init()
    return [name for name in FORMATS if name in pil.Image.OPEN]


def _decode(
    pil: Any, formats: list[str], path: Path, size: tuple[int, int], channels: int
) -> np.ndarray:
    """The image file at ``path`` as uint8 ``(channels, H, W)``, or :class:`_Skipped`.

    The pixel count is checked from the header before anything is decoded.
    Pillow's warnings (odd EXIF, palette transparency) are silenced; its
    decompression-bomb warning is an error, so a huge image is refused.
    """
    try:
        stream = open(path, "rb")  # closed by the with below
    except OSError as exc:
        raise _Skipped(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        with stream, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", pil.Image.DecompressionBombWarning)
            with pil.Image.open(stream, formats=formats) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _Skipped(_too_large(f"{width}×{height} pixels"))
                if width < 1 or height < 1:
                    raise _Skipped(f"empty image ({width}×{height} pixels)")
                turn = _orientation(image)
                _draft(image, size, quarter_turn=turn in _QUARTER_TURNS)
                image.load()
                return _pixels(pil, image, turn, size, channels)
    except _Skipped:
        raise
    except pil.UnidentifiedImageError:
        raise _Skipped("not an image (cannot identify image file)") from None
    except (pil.Image.DecompressionBombError, pil.Image.DecompressionBombWarning):
        raise _Skipped(_too_large("a decompression bomb")) from None
    except MemoryError:
        raise _Skipped("too large to decode (out of memory)") from None
    except Exception as exc:
        # Pillow signals a damaged file in many ways: OSError for a truncated
        # one, SyntaxError, ValueError, struct.error, EOFError, ...
        raise _Skipped(f"corrupt or truncated image ({_one_line(exc)})") from None


def _too_large(what: str) -> str:
    side = math.isqrt(MAX_PIXELS)
    return f"too large: {what}, more than {MAX_PIXELS:,} pixels ({side}×{side})"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _orientation(image: Any) -> int:
    """The EXIF orientation tag (1 to 8), 1 when absent or unreadable."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block: the pixels are still good
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _draft(image: Any, size: tuple[int, int], *, quarter_turn: bool) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale while it still covers the target.

    A no-op for other formats. The target is turned when the EXIF orientation
    will turn the image, since the draft applies before the orientation.
    """
    height, width = size
    if quarter_turn:
        height, width = width, height
    w, h = image.size
    scale = max(width / w, height / h)
    if scale < 0.5:
        image.draft(None, (math.ceil(w * scale), math.ceil(h * scale)))


def _pixels(
    pil: Any, image: Any, turn: int, size: tuple[int, int], channels: int
) -> np.ndarray:
    """A loaded Pillow image as uint8 ``(channels, H, W)``: oriented, flat, fitted."""
    if turn != 1:
        try:
            image = pil.ImageOps.exif_transpose(image)
        except Exception:  # an unusable EXIF block: keep the stored orientation
            pass
    mode = image.mode
    if mode in _DEEP_MODES:
        return _deep_pixels(pil, image, size, channels)
    try:
        if mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            paper = pil.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            paper.alpha_composite(rgba)  # transparent pixels show white paper
            image = paper.convert("RGB")
        elif mode not in ("1", "L", "RGB"):
            image = image.convert("RGB")  # P, CMYK, YCbCr, ...
        image = image.convert("L" if channels == 1 else "RGB")
    except ValueError as exc:
        raise _Skipped(f"unsupported image mode {mode!r} ({_one_line(exc)})") from None
    pixels = np.asarray(_fit(pil, image, size), dtype=np.uint8)
    if channels == 1:
        return pixels[np.newaxis]  # (H, W) -> (1, H, W)
    return pixels.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def _deep_pixels(
    pil: Any, image: Any, size: tuple[int, int], channels: int
) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grey image scaled to 0-255.

    ``I;16*``: divided by 257 (65535 -> 255). ``I`` and ``F``: values already
    within 0-255 are kept, ``F`` within 0-1 is multiplied by 255, ``I`` within
    0-65535 is divided by 257; any other range is stretched from its minimum
    to its maximum (per image). NaN becomes 0, infinities the ends of the range.
    """
    values: np.ndarray = np.asarray(image, dtype=np.float32)
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    if image.mode.startswith("I;16"):
        values = values / 257
    elif image.mode == "F" and low >= 0 and high <= 1:
        values = values * 255
    elif low >= 0 and high <= 255:
        pass
    elif image.mode == "I" and low >= 0 and high <= 65535:
        values = values / 257
    elif high > low:
        values = (values - low) * (255 / (high - low))
    else:
        values = np.zeros_like(values)  # a flat image: all black
    values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
    grey = pil.Image.fromarray(np.clip(values, 0, 255).astype(np.float32))
    fitted = np.asarray(_fit(pil, grey, size), dtype=np.float32)
    pixels = np.clip(np.rint(fitted), 0, 255).astype(np.uint8)
    return np.repeat(pixels[np.newaxis], channels, axis=0)


def _fit(pil: Any, image: Any, size: tuple[int, int]) -> Any:
    """Scale to cover ``size`` (H, W), keeping the aspect ratio; crop the centre.

    The crop is the box, in source pixels, of the target's aspect ratio centred
    in the image; Pillow resamples that box (with sub-pixel edges) to ``W × H``.
    """
    height, width = size
    w, h = image.size
    if (w, h) == (width, height):
        return image
    scale = max(width / w, height / h)
    box_w, box_h = width / scale, height / scale
    left, top = (w - box_w) / 2, (h - box_h) / 2
    lanczos = getattr(pil.Image, "Resampling", pil.Image).LANCZOS
    return image.resize(
        (width, height),
        lanczos,
        box=(left, top, left + box_w, top + box_h),
        reducing_gap=3.0,
    )

"""The errors of reading and preparing an image, each naming what was wrong."""

from __future__ import annotations

from chainrule.errors import ChainruleError


class ImageError(ChainruleError, ValueError):
    """An image cannot be used: unreadable, not an image, or too large."""


class BlankImageError(ImageError):
    """An image holds no ink: nothing to predict, so nothing is guessed."""


class MissingPillowError(ChainruleError, ImportError):
    """Pillow is not installed; the message says how to install it."""


__all__ = ["BlankImageError", "ImageError", "MissingPillowError"]

"""Colour jitter: random brightness, contrast and saturation per image.

For images ``x`` ``(N, C, H, W)`` with pixel values in ``[lo, hi]``:

- brightness ``b ~ U(1 - s, 1 + s)``: ``x · b``;
- contrast ``k ~ U(1 - s, 1 + s)``: ``m + (x - m) · k``, ``m`` the image's mean grey;
- saturation ``u ~ U(1 - s, 1 + s)`` (3 channels only): ``g + (x - g) · u``, ``g``
  the pixel's grey level (ITU-R 601 luma weights, as PIL and torchvision use).

They are applied in that order and the result clipped to ``[lo, hi]``.
"""

from __future__ import annotations

import numpy as np

from chainrule.types import Array

#: ITU-R 601 luma weights of red, green and blue
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grey(x: Array) -> Array:
    """Grey level ``(N, 1, H, W)`` of ``(N, C, H, W)`` (RGB by luma, else the mean)."""
    if x.shape[1] == 3:
        return np.einsum("nchw,c->nhw", x, LUMA)[:, None]
    return x.mean(axis=1, keepdims=True)


def jitter(
    x: Array,
    rng: np.random.Generator,
    brightness: float,
    contrast: float,
    saturation: float,
    value_range: tuple[float, float],
) -> Array:
    """``x`` (float32 ``(N, C, H, W)``) with random colour changes, clipped."""
    n = len(x)
    lo, hi = value_range
    out = x
    if brightness:
        b = rng.uniform(1 - brightness, 1 + brightness, n).astype(np.float32)
        out = out * b[:, None, None, None]
    if contrast:
        k = rng.uniform(1 - contrast, 1 + contrast, n).astype(np.float32)
        mean = grey(out).mean(axis=(1, 2, 3), keepdims=True)
        out = mean + (out - mean) * k[:, None, None, None]
    if saturation and x.shape[1] == 3:
        u = rng.uniform(1 - saturation, 1 + saturation, n).astype(np.float32)
        g = grey(out)
        out = g + (out - g) * u[:, None, None, None]
    return np.clip(out, lo, hi)


__all__ = ["LUMA", "grey", "jitter"]

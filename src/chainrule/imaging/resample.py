"""Resizing a grey image with two matrix products, as MNIST's digits were resized.

A resize is separable: each output row mixes input rows with fixed weights, and
each output column mixes input columns, so ``out = R @ image @ Cᵀ`` with ``R``
of shape ``(height, H)`` and ``C`` of shape ``(width, W)``.

- **Shrinking** averages areas: an output pixel covers ``n / m`` input pixels
  and is the mean of what it covers, partial pixels counted by their overlap.
  This is the anti-aliasing of MNIST's digits (grey edges, no ringing), and it
  never spreads ink beyond the box it is resized into.
- **Growing** interpolates linearly between the two nearest input pixels
  (pixel centres aligned as in Pillow's ``BILINEAR``), so a small drawing
  becomes smooth rather than blocky.
"""

from __future__ import annotations

import numpy as np

from chainrule.types import Array


def resize(image: Array, height: int, width: int) -> Array:
    """``image`` (2-D) resized to ``(height, width)``; float32.

    Shape:
        ``(H, W) -> (height, width)``
    """
    if image.ndim != 2:
        raise ValueError(f"resize expected a 2-D image, got shape {image.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"resize: size must be at least 1x1, got {height}x{width}")
    rows = resample_weights(image.shape[0], height)  # (height, H)
    cols = resample_weights(image.shape[1], width)  # (width, W)
    # (height, H) @ (H, W) @ (W, width) -> (height, width)
    return (rows @ image.astype(np.float32) @ cols.T).astype(np.float32)


def resample_weights(n: int, m: int) -> Array:
    """The ``(m, n)`` matrix taking ``n`` samples to ``m``; each row sums to 1."""
    if m <= n:
        return _area_weights(n, m)
    return _linear_weights(n, m)


def _area_weights(n: int, m: int) -> Array:
    # output pixel i covers [i·n/m, (i+1)·n/m) of the input; input pixel j covers
    # [j, j+1); the weight is their overlap, divided by the output pixel's width
    edges = np.arange(m + 1) * (n / m)
    left = np.maximum(edges[:-1, None], np.arange(n)[None, :])  # (m, n)
    right = np.minimum(edges[1:, None], np.arange(1, n + 1)[None, :])  # (m, n)
    return (np.clip(right - left, 0, None) * (m / n)).astype(np.float32)


def _linear_weights(n: int, m: int) -> Array:
    # the centre of output pixel i, in input pixel coordinates (centres at j)
    centre = np.clip((np.arange(m) + 0.5) * (n / m) - 0.5, 0, n - 1)
    below = np.minimum(np.floor(centre).astype(np.int64), max(n - 2, 0))
    frac = centre - below
    weights = np.zeros((m, n), dtype=np.float32)
    rows = np.arange(m)
    weights[rows, below] = 1 - frac
    if n > 1:
        weights[rows, below + 1] += frac
    return weights


__all__ = ["resample_weights", "resize"]

"""Geometric augmentation: one resampling of each image through a random warp.

Every geometric change (translation, rotation, scaling, elastic distortion,
horizontal flip) is a map from each *output* pixel to the *source* point it is
read from. The maps are composed into one pair of coordinate arrays
``(sy, sx)`` of shape ``(N, H, W)`` and the batch is resampled once, with
bilinear interpolation, so several transforms blur the image no more than one.

For an output pixel ``p = (x, y)`` (column, row: ``y`` points down, as on
screen), with ``c`` the image centre, the source point is

    s = R(-θ) · (p - c - t) / k + c + d(p)

so a positive ``θ`` turns the picture clockwise on screen (``np.rot90(x, -1)``
at 90°, the opposite of PIL's and torchvision's convention), ``k > 1``
enlarges it, and ``t`` moves it right and down. ``t`` is the translation, ``θ``
the rotation, ``k`` the scale factor and
``d`` the elastic displacement field (Simard, Steinkraus & Platt 2003: uniform
noise in [-1, 1] per pixel, smoothed by a Gaussian of standard deviation σ,
times α). Points outside the image read ``fill`` (0: the black background of
MNIST-style images) or, with ``mode="edge"``, the nearest edge pixel.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule.types import Array


def identity_grid(n: int, h: int, w: int) -> tuple[Array, Array]:
    """Source coordinates that read every pixel from itself: ``(sy, sx)``."""
    sy = np.broadcast_to(np.arange(h, dtype=np.float64)[:, None], (n, h, w))
    sx = np.broadcast_to(np.arange(w, dtype=np.float64)[None, :], (n, h, w))
    return sy.copy(), sx.copy()


def affine_grid(
    h: int,
    w: int,
    angle: Array,
    scale: Array,
    shift_y: Array,
    shift_x: Array,
    flip: Array | None = None,
) -> tuple[Array, Array]:
    """Source coordinates of a rotation (radians), scale and shift per image.

    Each argument is an array of length ``N``; ``flip`` (booleans) mirrors the
    output left to right. Returns ``(sy, sx)``, each ``(N, h, w)`` float64.
    """
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    py = np.arange(h, dtype=np.float64)[None, :, None] - cy
    px = np.arange(w, dtype=np.float64)[None, None, :] - cx
    if flip is not None:
        px = np.where(np.asarray(flip)[:, None, None], -px, px)
    cos = (np.cos(angle) / scale)[:, None, None]
    sin = (np.sin(angle) / scale)[:, None, None]
    qy = py - np.asarray(shift_y, dtype=np.float64)[:, None, None]
    qx = px - np.asarray(shift_x, dtype=np.float64)[:, None, None]
    # R(-θ) applied to (qx, qy) (x right, y down), divided by the scale; in
    # (row, column) order that reads as below
    sy = cos * qy - sin * qx + cy
    sx = sin * qy + cos * qx + cx
    return sy, sx


def gaussian_matrix(size: int, sigma: float) -> Array:
    """``G`` with ``G @ v`` the Gaussian smoothing of ``v`` (zeros beyond the ends).

    Row ``i`` holds ``exp(-(i - j)² / 2σ²)`` for ``|i - j| <= ceil(4σ)``,
    normalised over the full (untruncated-by-the-image) kernel, so a constant
    field is preserved away from the border, as ``scipy.ndimage`` does with
    ``mode="constant"``.
    """
    radius = max(1, math.ceil(4 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    d = np.arange(size)[:, None] - np.arange(size)[None, :]
    g = np.zeros((size, size))
    inside = np.abs(d) <= radius
    g[inside] = kernel[d[inside] + radius]
    return g


def elastic_field(
    n: int, h: int, w: int, alpha: float, sigma: float, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Simard et al.'s displacement field ``(dy, dx)``, each ``(N, h, w)``.

    Uniform noise in [-1, 1] per pixel and direction, smoothed by a Gaussian of
    standard deviation ``sigma`` pixels (``Gh · u · Gwᵀ``: two small matrix
    products, the separable convolution), scaled by ``alpha`` pixels.
    """
    gh, gw = gaussian_matrix(h, sigma), gaussian_matrix(w, sigma)
    noise = rng.uniform(-1.0, 1.0, size=(2, n, h, w))
    smooth = gh @ noise @ gw.T
    return alpha * smooth[0], alpha * smooth[1]


def resample(
    x: Array, sy: Array, sx: Array, mode: str = "constant", fill: float = 0.0
) -> Array:
    """Bilinear samples of ``x`` ``(N, C, H, W)`` at ``(sy, sx)`` ``(N, H, W)``.

    Returns float32 ``(N, C, H, W)``. Each output is the weighted mean of the
    four pixels around its source point; a neighbour outside the image counts
    as ``fill`` (``mode="constant"``) or as the nearest edge pixel
    (``mode="edge"``).
    """
    n, c, h, w = x.shape
    sy, sx = np.clip(sy, -1.0, h), np.clip(sx, -1.0, w)
    y0 = np.floor(sy)
    x0 = np.floor(sx)
    wy = (sy - y0).astype(np.float32)[:, None]
    wx = (sx - x0).astype(np.float32)[:, None]
    y0i = y0.astype(np.intp)
    x0i = x0.astype(np.intp)
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(n, c, h * w)
    out = np.zeros((n, c, h, w), dtype=np.float32)
    for dy, dx, weight in (
        (0, 0, (1 - wy) * (1 - wx)),
        (0, 1, (1 - wy) * wx),
        (1, 0, wy * (1 - wx)),
        (1, 1, wy * wx),
    ):
        yy, xx = y0i + dy, x0i + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        index = np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)
        values = np.take_along_axis(flat, index.reshape(n, 1, h * w), axis=2)
        values = values.reshape(n, c, h, w)
        if mode == "constant":
            values = np.where(inside[:, None], values, np.float32(fill))
        out += weight * values
    return out


__all__ = [
    "affine_grid",
    "elastic_field",
    "gaussian_matrix",
    "identity_grid",
    "resample",
]

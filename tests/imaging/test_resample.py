"""``resize``: area averaging when shrinking, linear when growing, as Pillow does."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chainrule.imaging import resize
from chainrule.imaging.resample import resample_weights


def reference(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The same resize, axis by axis, by other means.

    Shrinking: each pixel repeated ``m`` times, then blocks of ``n`` averaged
    (exact area averaging). Growing: Pillow's ``BILINEAR`` on the float image.
    """
    out = image.astype(np.float64)
    for axis, m in ((0, height), (1, width)):
        n = out.shape[axis]
        if m <= n:
            fine = np.repeat(out, m, axis=axis)  # n -> n·m samples
            shape = (m, n, -1) if axis == 0 else (-1, m, n)
            out = (
                fine.reshape(shape)
                .mean(axis=axis + 1)
                .reshape((m, -1) if axis == 0 else (-1, m))
            )
        else:
            size = (out.shape[1], m) if axis == 0 else (m, out.shape[0])
            grown = Image.fromarray(out.astype(np.float32), "F").resize(
                size, Image.BILINEAR
            )
            out = np.asarray(grown, dtype=np.float64)
    return out


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((60, 45), (20, 15)),
        ((33, 80), (8, 20)),
        ((7, 5), (20, 14)),
        ((1, 9), (3, 20)),
        ((50, 3), (20, 1)),
        ((12, 40), (20, 6)),
        ((20, 13), (20, 13)),
    ],
)
def test_matches_a_reference(rng, shape, size) -> None:
    image = rng.random(shape).astype(np.float32)
    out = resize(image, *size)
    assert out.shape == size and out.dtype == np.float32
    np.testing.assert_allclose(out, reference(image, *size), atol=1e-5)


@pytest.mark.parametrize(
    ("n", "m"), [(1, 1), (1, 7), (2, 20), (60, 20), (61, 20), (5, 3)]
)
def test_weights_sum_to_one(n: int, m: int) -> None:
    weights = resample_weights(n, m)
    assert weights.shape == (m, n) and (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1, rtol=1e-6)


def test_shrinking_by_a_whole_factor_averages_blocks(rng) -> None:
    image = rng.random((6, 9)).astype(np.float32)
    blocks = image.reshape(2, 3, 3, 3).mean(axis=(1, 3))  # (6, 9) -> (2, 3)
    np.testing.assert_allclose(resize(image, 2, 3), blocks, rtol=1e-6)


def test_area_averaging_keeps_the_total_ink(rng) -> None:
    image = rng.random((57, 31)).astype(np.float32)
    out = resize(image, 20, 11)
    scale = (57 * 31) / (20 * 11)
    np.testing.assert_allclose(out.sum() * scale, image.sum(), rtol=1e-5)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="2-D"):
        resize(np.zeros((2, 2, 2)), 2, 2)
    with pytest.raises(ValueError, match="at least 1x1"):
        resize(np.zeros((2, 2)), 0, 2)

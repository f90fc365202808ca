"""``to_mnist`` step by step: grey, ink on black, crop, 20 pixels, centred by mass."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.imaging import (
    BOX,
    FIELD,
    MIN_CONTRAST,
    BlankImageError,
    centre_by_mass,
    crop_to_ink,
    fit_to_box,
    ink_on_black,
    preprocess,
    to_mnist,
)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(np.float64)
    rows, cols = np.indices(image.shape)
    return float((rows * weights).sum() / weights.sum()), float(
        (cols * weights).sum() / weights.sum()
    )


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """First row, last row, first column, last column holding ink."""
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def a_sheet(ink: float = 0.0, paper: float = 1.0) -> np.ndarray:
    """A 90×60 sheet with a 40×10 bar and a 10×30 bar (an off-centre "7")."""
    sheet = np.full((90, 60), paper, dtype=np.float32)
    sheet[20:30, 15:45] = ink
    sheet[20:60, 35:45] = ink
    return sheet


def test_output_is_an_mnist_digit() -> None:
    out = to_mnist(a_sheet())
    assert out.shape == (FIELD, FIELD) and out.dtype == np.uint8
    assert out.max() == 255
    top, bottom, left, right = ink_box(out)
    assert bottom - top + 1 == BOX  # 40 tall -> 20 tall
    assert right - left + 1 == 15  # 30 wide -> 15 wide
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_dark_on_light_and_light_on_dark_agree() -> None:
    np.testing.assert_array_equal(to_mnist(a_sheet()), to_mnist(1 - a_sheet()))


def test_light_ink_on_grey_is_not_inverted() -> None:
    """Chalk on a board: the ink is lighter than a light-ish background."""
    np.testing.assert_array_equal(to_mnist(a_sheet(1.0, 0.6)), to_mnist(a_sheet()))


def test_uint8_and_float_agree() -> None:
    sheet = np.rint(a_sheet(ink=0.2, paper=0.9) * 255).astype(np.uint8)
    np.testing.assert_array_equal(to_mnist(sheet), to_mnist(sheet / 255))


def test_low_contrast_is_stretched() -> None:
    """Pencil on grey paper gives the same digit as ink on white."""
    np.testing.assert_array_equal(to_mnist(a_sheet(0.5, 0.8)), to_mnist(a_sheet()))


def test_faint_noise_does_not_move_the_crop(rng) -> None:
    noisy = np.clip(a_sheet() - 0.05 * rng.random((90, 60)), 0, 1)  # paper grain
    assert np.abs(to_mnist(noisy).astype(int) - to_mnist(a_sheet())).max() <= 16


def test_aspect_ratio_is_kept() -> None:
    bar = np.zeros((100, 100), dtype=np.float32)
    bar[10:90, 45:55] = 1  # 80 tall, 10 wide
    top, bottom, left, right = ink_box(to_mnist(bar))
    assert (bottom - top + 1, right - left + 1) == (20, 3)  # 10·20/80 = 2.5 -> 3
    wide = crop_to_ink(bar.T)
    assert fit_to_box(wide).shape == (3, 20)


def test_a_small_drawing_is_enlarged_to_20_pixels() -> None:
    tiny = np.zeros((12, 12), dtype=np.float32)
    tiny[3:9, 5:8] = 1  # 6 tall, 3 wide
    top, bottom, left, right = ink_box(to_mnist(tiny))
    assert (bottom - top + 1, right - left + 1) == (20, 10)


def test_ink_heavy_at_one_end_stays_in_the_frame() -> None:
    """Centring by mass would push the box out; it stops at the frame's edge."""
    box = np.zeros((20, 20), dtype=np.float32)
    box[:3, :] = 1  # a heavy bar on top...
    box[19, 0] = 0.2  # ...and a faint dot at the bottom left
    out = centre_by_mass(box)
    assert out.shape == (FIELD, FIELD)
    top, bottom, _, _ = ink_box(out)
    assert (top, bottom) == (8, 27)  # moved down by 8, no more
    assert out.sum() == pytest.approx(box.sum())


@pytest.mark.parametrize("fraction", np.linspace(0, 1, 11))
def test_centre_by_mass_rounds_as_mnist(fraction: float) -> None:
    """The integer shift puts the centre of mass within half a pixel of (14, 14)."""
    box = np.zeros((20, 10), dtype=np.float32)
    box[:, 4], box[:, 5] = 1 - fraction, fraction  # centre of mass at (9.5, 4 + f)
    cy, cx = centre_of_mass(centre_by_mass(box))
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((28, 28)),
        np.ones((50, 40)),
        np.full((10, 10), 0.5),
        np.full((10, 10), 255, dtype=np.uint8),
        np.zeros((1, 1)),
    ],
    ids=["black", "white", "grey", "white uint8", "one pixel"],
)
def test_blank_images_are_refused(image: np.ndarray) -> None:
    with pytest.raises(BlankImageError, match=r"^blank image: no ink found, nothing"):
        to_mnist(image)


def test_ink_below_the_contrast_threshold_is_blank(rng) -> None:
    faint = np.full((40, 40), 0.9)
    faint[5:35, 5:35] -= 0.99 * MIN_CONTRAST * rng.random((30, 30))
    with pytest.raises(BlankImageError, match="at least 51 needed"):
        to_mnist(faint)
    faint[20, 20] = 0.9 - 1.01 * MIN_CONTRAST
    assert to_mnist(faint).max() == 255


def test_ink_on_black_scales_the_strongest_ink_to_one() -> None:
    ink = ink_on_black(a_sheet(0.3, 0.9))
    assert ink.max() == pytest.approx(1) and ink.min() == 0
    assert ink[0, 0] == 0 and ink[25, 40] == pytest.approx(1)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((4, 4, 3)), ValueError, r"2-D grey image .* shape \(4, 4, 3\)"),
        (np.zeros((0, 4)), ValueError, "2-D grey image"),
        (np.full((4, 4), 1.5), ValueError, r"\[0, 1\].*divide 0-255 images by 255"),
        (np.full((4, 4), np.nan), ValueError, "NaN"),
        (np.full((4, 4), 300), ValueError, "0-255"),
        (np.full((4, 4), "a"), TypeError, "numeric"),
    ],
    ids=["rgb", "empty", "float over 1", "nan", "int over 255", "strings"],
)
def test_bad_arrays(image: np.ndarray, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        to_mnist(image)


def test_preprocess_takes_arrays_as_they_are() -> None:
    np.testing.assert_array_equal(preprocess(a_sheet()), to_mnist(a_sheet()))

"""Property tests: whatever the image, the output is shaped like an MNIST digit.

Exact on the float pipeline: the digit is resized to exactly 20 pixels in its
longer side and pasted unchanged; its centre of mass is within half a pixel of
(14, 14) on each axis unless the shift was stopped at the frame's edge. On the
uint8 output, rounding moves the centre of mass a little more (faint pixels
round to 0): for drawings of strokes it stays within 1 pixel.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from chainrule.imaging import (
    BOX,
    FIELD,
    BlankImageError,
    as_grey,
    centre_by_mass,
    crop_to_ink,
    fit_to_box,
    ink_on_black,
    to_mnist,
)
from chainrule.imaging.mnist import MIN_CONTRAST, border_median

SETTINGS = settings(deadline=None, max_examples=150, derandomize=True)


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    weights = image.astype(np.float64)
    rows, cols = np.indices(image.shape)
    return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()


def contrast(grey: np.ndarray) -> float:
    """How far the ink reaches from the background, on its stronger side."""
    background = border_median(grey)
    return max(background - float(grey.min()), float(grey.max()) - background)


any_image = arrays(
    np.float64,
    st.tuples(st.integers(1, 70), st.integers(1, 70)),
    elements=st.floats(0, 1, width=32),
)


@SETTINGS
@given(any_image)
def test_any_image_becomes_a_centred_20_pixel_digit(image: np.ndarray) -> None:
    grey = as_grey(image)
    if contrast(grey) < MIN_CONTRAST:
        try:
            to_mnist(image)
        except BlankImageError:
            return
        raise AssertionError("an image without ink was not refused")
    box = fit_to_box(crop_to_ink(ink_on_black(grey)))
    assert max(box.shape) == BOX and min(box.shape) >= 1
    assert box.max() == 1 and box.min() >= 0
    placed = centre_by_mass(box)
    rows = np.flatnonzero(placed.any(axis=1))
    cols = np.flatnonzero(placed.any(axis=0))
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == box.shape
    starts, ends = (rows[0], cols[0]), (rows[-1], cols[-1])
    for axis, com in enumerate(centre_of_mass(placed)):
        at_edge = starts[axis] == 0 or ends[axis] == FIELD - 1
        assert abs(com - FIELD / 2) <= 0.5 + 1e-4 or at_edge
    out = to_mnist(image)
    assert out.shape == (FIELD, FIELD) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.rint(placed * 255).astype(np.uint8))


@st.composite
def drawings(draw: st.DrawFn) -> np.ndarray:
    """Strokes (rectangles) of one grey on paper of another, inside a margin."""
    height, width = draw(st.integers(12, 150)), draw(st.integers(12, 150))
    paper = draw(st.floats(0, 1))
    ink = draw(st.floats(0, 1).filter(lambda v: abs(v - paper) >= 0.3))
    sheet = np.full((height, width), paper)
    for _ in range(draw(st.integers(1, 4))):
        top = draw(st.integers(1, height - 2))
        left = draw(st.integers(1, width - 2))
        bottom = draw(st.integers(top + 1, height - 1))
        right = draw(st.integers(left + 1, width - 1))
        sheet[top:bottom, left:right] = ink
    return sheet


@SETTINGS
@given(drawings())
def test_a_drawing_is_centred_within_a_pixel(sheet: np.ndarray) -> None:
    out = to_mnist(sheet)
    assert out.shape == (FIELD, FIELD) and out.dtype == np.uint8 and out.max() == 255
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    assert rows[-1] - rows[0] < BOX + 1 and cols[-1] - cols[0] < BOX + 1
    starts, ends = (rows[0], cols[0]), (rows[-1], cols[-1])
    for axis, com in enumerate(centre_of_mass(out)):
        at_edge = starts[axis] <= 1 or ends[axis] >= FIELD - 2
        assert abs(com - FIELD / 2) <= 1 or at_edge

"""MNIST test digits made into "user photos" come back as the digits they were.

Each photo is the digit scaled up 3× (bicubic), placed off-centre on a 200×150
sheet, dark on light paper, in some file format (see ``photos.VARIANTS``).
``preprocess`` repeats MNIST's own preparation, so it should restore the digit
up to the blur of the bicubic scaling. Measured over 200 digits, per variant:
mean absolute pixel error 5.3–6.4 grey levels of 255 (median 4.2–5.1, 95th
percentile 11.6–13.8, worst digit 18.8–23.0: a digit whose centre of mass lies
half-way between two pixels may come back shifted by one). For scale: shifting
these digits by one pixel costs 16.6 levels on average, 24.9 at most. A small
CNN gives the same class to 197–198 of the 200 restored digits as to the
originals; fed the sheet merely shrunk to 28×28 and inverted, it agrees on
11–23% of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from photos import VARIANTS, digit_model, photo

from chainrule.imaging import load_image, preprocess, resize, to_mnist

DIGITS = 200
#: bounds on the restoration error, in grey levels of 255 (measured: see above)
MEAN_ERROR, MEDIAN_ERROR, MAX_ERROR = 7.5, 6.0, 30.0
AGREEMENT = 0.97


@pytest.fixture(scope="module")
def digits(mnist) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    _, (x_test, y_test) = mnist
    return x_test[:DIGITS], y_test[:DIGITS]


@pytest.fixture(scope="module")
def model(data_dir: Path):  # type: ignore[no-untyped-def]
    return digit_model(data_dir)


def errors(restored: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Mean absolute pixel error of each digit, in grey levels of 255."""
    diff = restored.astype(np.float64) - original.astype(np.float64)
    return np.abs(diff).mean(axis=(1, 2))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_photo_is_restored_and_classified_the_same(variant, digits, model) -> None:
    x, _ = digits
    restored = np.stack([preprocess(photo(d, **VARIANTS[variant])) for d in x])
    assert restored.dtype == np.uint8 and restored.shape == x.shape
    err = errors(restored, x)
    assert err.mean() < MEAN_ERROR, f"mean error {err.mean():.2f}"
    assert np.median(err) < MEDIAN_ERROR, f"median error {np.median(err):.2f}"
    assert err.max() < MAX_ERROR, f"digit {err.argmax()}: error {err.max():.2f}"
    before = model.predict(x).argmax(axis=1)
    after = model.predict(restored).argmax(axis=1)
    assert np.mean(before == after) >= AGREEMENT


def test_without_preprocessing_the_model_is_lost(digits, model) -> None:
    """The control: the whole sheet shrunk to 28×28 and inverted, nothing else."""
    x, _ = digits
    naive = np.stack(
        [
            np.rint(255 * (1 - resize(load_image(photo(d)), 28, 28))).astype(np.uint8)
            for d in x
        ]
    )
    before = model.predict(x).argmax(axis=1)
    assert np.mean(before == model.predict(naive).argmax(axis=1)) < 0.5


def test_an_mnist_digit_is_left_almost_as_it_is(digits) -> None:
    """MNIST's digits are already prepared: only faint fringe pixels change."""
    x, _ = digits
    err = errors(np.stack([to_mnist(d) for d in x]), x)
    assert err.mean() < 1.0
    assert np.median(err) < 0.5


def test_a_shifted_enlarged_digit_as_an_array(digits) -> None:
    """``to_mnist`` on an array (light ink on black, float) as a canvas gives it."""
    x, _ = digits
    sheet = np.zeros((150, 200), dtype=np.float32)
    big = np.kron(x[0], np.ones((4, 4), dtype=np.uint8)) / 255  # nearest, 4×
    sheet[10 : 10 + 112, 70 : 70 + 112] = big
    err = errors(to_mnist(sheet)[None], x[:1])
    assert err[0] < 2.0

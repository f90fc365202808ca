"""Small real models trained on real MNIST, and checks of written images."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.model import History, Sequential
from chainrule.plots import DPI

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def small_mnist(mnist: Any) -> dict[str, np.ndarray[Any, Any]]:
    """600 training and 300 test images: enough to train a few steps."""
    (x, y), (x_test, y_test) = mnist
    return {"x": x[:600], "y": y[:600], "x_test": x_test[:300], "y_test": y_test[:300]}


def _train(
    model: Sequential, data: dict[str, Any], epochs: int
) -> tuple[Sequential, History]:
    history = model.fit(
        data["x"],
        data["y"],
        epochs=epochs,
        batch_size=32,
        validation_split=0.2,
        seed=0,
        verbose=0,
    )
    return model, history


@pytest.fixture(scope="session")
def trained_mlp(small_mnist: dict[str, Any]) -> tuple[Sequential, History]:
    """784-16-10 ReLU MLP, 3 epochs on 480 images (about 80% test accuracy)."""
    model = cr.Sequential(
        [
            cr.Rescaling(1 / 255),
            cr.Flatten(),
            cr.Dense(16, init="he"),
            cr.ReLU(),
            cr.Dense(10),
        ],
        input_shape=(28, 28),
        seed=0,
    ).compile(cr.CrossEntropy(), cr.SGD(0.1, momentum=0.9))
    return _train(model, small_mnist, epochs=3)


@pytest.fixture(scope="session")
def trained_cnn(small_mnist: dict[str, Any]) -> tuple[Sequential, History]:
    """Conv 4@3x3, batch norm, ReLU, max pool, dense 10; 2 epochs on 480 images."""
    model = cr.Sequential(
        [
            cr.Rescaling(1 / 255),
            cr.Reshape((1, 28, 28)),
            cr.Conv2D(4, 3, padding="same", init="he"),
            cr.BatchNorm(),
            cr.ReLU(),
            cr.MaxPool2D(2),
            cr.Flatten(),
            cr.Dense(10),
        ],
        input_shape=(28, 28),
        seed=0,
    ).compile(cr.CrossEntropy(), cr.Adam(0.003))
    return _train(model, small_mnist, epochs=2)


def png_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def check_png() -> Callable[[Path, tuple[int, int]], None]:
    """Assert ``path`` is a PNG of ``size`` pixels with something drawn on it."""

    def check(path: Path, size: tuple[int, int]) -> None:
        import matplotlib.image

        assert path.is_file() and path.stat().st_size > 1000
        assert png_size(path) == size
        pixels = matplotlib.image.imread(path)  # (H, W, 4) floats in [0, 1]
        assert pixels.shape == (size[1], size[0], 4)
        # more than a blank page: many distinct colours (RGBA packed in one int)
        rgba = (255 * pixels).astype(np.uint8).view(np.uint32)
        assert len(np.unique(rgba)) > 20

    return check


@pytest.fixture
def check_svg() -> Callable[[Path, tuple[int, int]], None]:
    """Assert ``path`` is well-formed SVG of ``size`` pixels (as points) with paths."""

    def check(path: Path, size: tuple[int, int]) -> None:
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        points = [f"{72 * px / DPI:g}pt" for px in size]
        assert [root.get("width"), root.get("height")] == points
        assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10

    return check

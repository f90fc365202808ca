"""Shared fixtures: seeded generators and the location of the real MNIST files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def mnist_root() -> Path | None:
    """Directory holding ``mnist/``: $CHAINRULE_DATA, else ``../shared/data``."""
    candidates = [os.environ.get("CHAINRULE_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "mnist" / "t10k-labels-idx1-ubyte.gz").exists():
            return Path(c)
    return None


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = mnist_root()
    if root is None:
        pytest.skip(
            "MNIST files not found: set CHAINRULE_DATA or put them in ../shared/data"
        )
    return root


@pytest.fixture(scope="session")
def mnist(data_dir: Path):  # type: ignore[no-untyped-def]
    from chainrule.data import load_mnist

    return load_mnist(data_dir)

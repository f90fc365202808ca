"""Shared fixtures: seeded generators and the real MNIST files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import DataError, load_mnist

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """A directory the MNIST loader reads: ``$CHAINRULE_DATA`` or ``../shared/data``.

    When ``CHAINRULE_DATA`` is set (as ``.ci/run`` does) the files must load:
    a broken copy fails the tests instead of skipping them. Without it, the
    MNIST tests are skipped if ``../shared/data`` has no copy.
    """
    explicit = os.environ.get("CHAINRULE_DATA")
    root = Path(explicit) if explicit else SHARED_DATA
    try:
        load_mnist(root, download=False)
    except DataError as exc:
        if explicit:
            raise
        pytest.skip(f"no MNIST files ({exc}); set CHAINRULE_DATA to a copy")
    return root


@pytest.fixture(scope="session")
def mnist(data_dir: Path):  # type: ignore[no-untyped-def]
    return load_mnist(data_dir, download=False)

"""Exact resume: 4 epochs straight equal 2 epochs, a checkpoint, and 2 more.

The run uses everything that carries state across epochs: dropout masks, the
shuffling generator, the validation split, momentum (or Adam's moments), weight
decay, a per-step cosine schedule, a max-norm constraint and early-stopping
counters. Resuming must reproduce the uninterrupted run bit for bit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.callbacks import Callback, EarlyStopping, ModelCheckpoint
from chainrule.cli.train import StopAfter
from chainrule.errors import ModelFileError
from chainrule.io import load_model
from chainrule.layers import Dense, Dropout, Flatten, ReLU, Rescaling, Tanh
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import SGD
from chainrule.optim.base import Optimizer
from chainrule.presets import Recipe, make_callbacks

try:
    from chainrule.optim import Adam
except ImportError:  # being written alongside these tests
    Adam = None

EPOCHS, BATCH, SPLIT, SEED = 4, 100, 0.1, 11
N_TRAIN = 2000


def optimizer(name: str) -> Optimizer:
    if name == "sgd":
        return SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    if Adam is None:
        pytest.skip("chainrule.optim.Adam is not available")
    return Adam(2e-3, weight_decay=1e-4)


def mnist_model(name: str) -> Sequential:
    layers = [
        Rescaling(1 / 255),
        Flatten(),
        Dropout(0.1),
        Dense(32, init="he", max_norm=3.0),
        ReLU(),
        Dropout(0.3),
        Dense(10),
    ]
    model = Sequential(layers, input_shape=(28, 28), seed=5)
    return model.compile(CrossEntropy(label_smoothing=0.1), optimizer(name))


def callbacks() -> list[Callback]:
    recipe = Recipe(
        epochs=EPOCHS, batch_size=BATCH, lr=0.05, hidden=(32,), schedule="cosine"
    )
    steps = math.ceil(N_TRAIN * (1 - SPLIT) / BATCH)
    return [*make_callbacks(recipe, steps), EarlyStopping(patience=10, verbose=False)]


def fit(model: Sequential, data: Any, extra: list[Callback], **kw: Any) -> Any:
    x, y = data
    kw.setdefault("seed", SEED)
    return model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_split=SPLIT,
        verbose=0,
        callbacks=[*callbacks(), *extra],
        **kw,
    )


@pytest.fixture(scope="module")
def subset(mnist: Any) -> tuple[np.ndarray, np.ndarray]:
    (x_train, y_train), _ = mnist
    return x_train[:N_TRAIN], y_train[:N_TRAIN]


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_resume_is_bit_identical(
    subset: tuple[np.ndarray, np.ndarray], tmp_path: Path, name: str
) -> None:
    straight = mnist_model(name)
    expected = fit(straight, subset, [])
    assert expected.epoch == [1, 2, 3, 4]

    interrupted = mnist_model(name)
    first = fit(
        interrupted, subset, [ModelCheckpoint(tmp_path / "ck.npz"), StopAfter(2)]
    )
    assert first.epoch == [1, 2]

    resumed = load_model(tmp_path / "ck.npz")
    assert resumed.training_state is not None
    assert resumed.training_state.epoch == 2
    history = fit(resumed, subset, [], seed=None, resume=True)

    assert history.epoch == expected.epoch
    assert history.history == expected.history
    assert [n for n, _ in resumed.named_parameters()] == [
        n for n, _ in straight.named_parameters()
    ]
    for (key, p), (_, q) in zip(
        resumed.named_parameters(), straight.named_parameters(), strict=True
    ):
        assert np.array_equal(p.data, q.data), key
    assert resumed.optimizer is not None and straight.optimizer is not None
    assert resumed.optimizer.iterations == straight.optimizer.iterations
    assert resumed.optimizer.lr == straight.optimizer.lr
    for mine, theirs in zip(
        resumed.optimizer.state, straight.optimizer.state, strict=True
    ):
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert np.array_equal(mine[key], theirs[key]), key
    assert resumed.get_rng_states() == straight.get_rng_states()

    # the check has teeth: carrying on from the checkpoint without resume=True
    # (a fresh shuffle, schedule and dropout stream) ends elsewhere
    naive = load_model(tmp_path / "ck.npz")
    fit(naive, subset, [])
    assert not all(
        np.array_equal(p.data, q.data)
        for p, q in zip(naive.parameters(), straight.parameters(), strict=True)
    )


# ---------------------------------------------------------------- bad resumes
def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 4)), rng.integers(0, 3, 40)


def tiny_model() -> Sequential:
    model = Sequential([Dense(8), Tanh(), Dropout(0.2), Dense(3)], input_shape=(4,))
    return model.compile(CrossEntropy(), SGD(0.1))


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A checkpoint after 2 epochs of a run seeded with 7."""
    x, y = tiny_data()
    path = tmp_path / "ck.npz"
    tiny_model().fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        validation_split=0.25,
        seed=7,
        verbose=0,
        callbacks=[ModelCheckpoint(path)],
    )
    return path


def test_resume_with_another_seed_is_refused(checkpoint: Path) -> None:
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"seed=8 differs.*seed=7"):
        load_model(checkpoint).fit(x, y, epochs=3, seed=8, verbose=0, resume=True)


def test_resume_with_the_same_seed_is_accepted(checkpoint: Path) -> None:
    x, y = tiny_data()
    model = load_model(checkpoint)
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        validation_split=0.25,
        seed=7,
        verbose=0,
        resume=True,
    )
    assert history.epoch == [1, 2, 3]


def test_resume_without_a_training_state_is_refused() -> None:
    x, y = tiny_data()
    with pytest.raises(RuntimeError, match="training state"):
        tiny_model().fit(x, y, epochs=2, verbose=0, resume=True)


def test_resume_to_fewer_epochs_than_done_is_refused(checkpoint: Path) -> None:
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"epochs=1 is fewer than the 2"):
        load_model(checkpoint).fit(x, y, epochs=1, verbose=0, resume=True)


def rewrite_training_state(source: Path, target: Path, change: Any) -> None:
    """Copy a model file with ``change(training_state_json)`` applied."""
    with np.load(source) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(str(arrays["__chainrule__"]))
    change(header["training"])
    arrays["__chainrule__"] = np.array(json.dumps(header))
    np.savez(target, **arrays)


CORRUPTIONS = {
    "shuffling rng state": lambda t: t["rng"].__setitem__("state", "garbage"),
    "shuffling rng generator": lambda t: t["rng"].__setitem__(
        "bit_generator", "MT19937"
    ),
    "shuffling rng emptied": lambda t: t.__setitem__("rng", {}),
    "shuffling rng not an object": lambda t: t.__setitem__("rng", [1, 2]),
    "dropout rng state": lambda t: t["layer_rngs"]["layers.2"].__setitem__(
        "state", "garbage"
    ),
    "dropout rng generator": lambda t: t["layer_rngs"]["layers.2"].__setitem__(
        "bit_generator", "Bogus"
    ),
    "dropout rng for a missing layer": lambda t: t["layer_rngs"].__setitem__(
        "layers.9", t["layer_rngs"]["layers.2"]
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_rng_entry_is_a_model_file_error(
    checkpoint: Path, corruption: str
) -> None:
    bad = checkpoint.with_name("bad.npz")
    rewrite_training_state(checkpoint, bad, CORRUPTIONS[corruption])
    with pytest.raises(ModelFileError, match="training state"):
        load_model(bad)

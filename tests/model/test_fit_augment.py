"""``Sequential.fit(augment=...)``: seeded, training batches only, labels kept,
exact resume, clear errors, and a model that learns from distorted digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule import backend
from chainrule.augment import AUGMENTATIONS, Augment
from chainrule.callbacks import Callback, ModelCheckpoint
from chainrule.cli.train import StopAfter
from chainrule.io import load_model
from chainrule.layers import Dense, Dropout, Flatten, ReLU, Rescaling
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.model.inputs import batches
from chainrule.optim import SGD, Adam

SIDE = 10  # images are SIDE x SIDE


def toy_data(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose class is where a bright square sits, plus noise."""
    r = np.random.default_rng(seed)
    y = r.integers(0, 4, n)
    x = r.integers(0, 60, (n, SIDE, SIDE))
    for i, label in enumerate(y):
        row, col = divmod(int(label), 2)
        x[i, 1 + 4 * row : 5 + 4 * row, 1 + 4 * col : 5 + 4 * col] += 180
    return x.astype(np.uint8), y


def numbered(n: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image i is the constant ``start + i`` (uint8): its pixels name it."""
    ids = np.arange(start, start + n)
    x = np.broadcast_to(ids[:, None, None], (n, SIDE, SIDE)).astype(np.uint8)
    return x, (ids * 7) % 4


def ids_of(xb: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(xb)[:, 0, 0]]


def toy_model(seed: int = 0, dropout: float = 0.0) -> Sequential:
    layers = [Rescaling(1 / 255), Flatten(), Dense(16, init="he"), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(4))
    model = Sequential(layers, input_shape=(SIDE, SIDE), seed=seed)
    return model.compile(CrossEntropy(), SGD(0.05, momentum=0.9))


def weights(model: Sequential) -> list[np.ndarray]:
    return [p.data.copy() for p in model.parameters()]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    if len(a) != len(b):
        return False
    return all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


class Recorder:
    """An augment that changes nothing and remembers what it was given."""

    def __init__(self) -> None:
        self.ids: list[list[int]] = []
        self.dtypes: list[np.dtype[Any]] = []
        self.rngs: list[np.random.Generator] = []
        self.states: list[Any] = []

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.ids.append(ids_of(xb))
        self.dtypes.append(xb.dtype)
        self.rngs.append(rng)
        self.states.append(rng.bit_generator.state)
        rng.random()  # uses its generator, as a real augment does
        return xb


FIT = {"epochs": 3, "batch_size": 32, "verbose": 0}
AUG = Augment(translate=0.2, rotate=15.0, elastic_alpha=6.0, elastic_sigma=2.0)


# -------------------------------------------------------------- determinism
def test_augmented_training_is_reproducible_from_the_seed() -> None:
    x, y = toy_data()
    runs = []
    for _ in range(2):
        model = toy_model(dropout=0.2)
        history = model.fit(x, y, seed=5, augment=AUG, **FIT)
        runs.append((weights(model), history.history))
    assert same(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = toy_model(dropout=0.2)
    other.fit(x, y, seed=6, augment=AUG, **FIT)
    assert not same(weights(other), runs[0][0])


def test_augmented_training_differs_from_plain_training() -> None:
    x, y = toy_data()
    plain, augmented = toy_model(), toy_model()
    plain.fit(x, y, seed=5, **FIT)
    augmented.fit(x, y, seed=5, augment=AUG, **FIT)
    assert not same(weights(plain), weights(augmented))


def test_augment_none_is_the_plain_training_loop() -> None:
    """``augment=None`` draws nothing: the same steps, bit for bit, as the loop
    before augmentation existed (shuffle, batch, cast, step)."""
    x, y = toy_data()
    omitted, none = toy_model(dropout=0.2), toy_model(dropout=0.2)
    omitted.fit(x, y, seed=5, **FIT)
    none.fit(x, y, seed=5, augment=None, **FIT)
    assert same(weights(omitted), weights(none))

    by_hand = toy_model(dropout=0.2)
    rng = np.random.default_rng(5)
    for _ in range(FIT["epochs"]):
        order = rng.permutation(len(x))
        for idx in batches(len(x), FIT["batch_size"], order):
            by_hand.train_step(backend.asarray(x[idx], by_hand.dtype), y[idx])
    assert same(weights(by_hand), weights(none))


def test_each_epoch_gets_a_fresh_generator_used_by_all_its_batches() -> None:
    x, y = numbered(100)
    first, second = Recorder(), Recorder()
    toy_model().fit(x, y, seed=1, augment=first, **FIT)
    toy_model().fit(x, y, seed=1, augment=second, **FIT)
    steps = 4  # ceil(100 / 32)
    assert len(first.rngs) == FIT["epochs"] * steps
    for epoch in range(FIT["epochs"]):
        gens = first.rngs[epoch * steps : (epoch + 1) * steps]
        assert all(g is gens[0] for g in gens)  # one stream per epoch, continued
    starts = [first.states[e * steps] for e in range(FIT["epochs"])]
    assert len({str(s) for s in starts}) == FIT["epochs"]  # a new one each epoch
    assert [str(s) for s in first.states] == [str(s) for s in second.states]
    assert first.ids == second.ids


# -------------------------------------------------- what the augment sees
def test_the_augment_sees_every_training_image_once_per_epoch_and_no_validation() -> (
    None
):
    x, y = numbered(100)
    xv, yv = numbered(30, start=150)
    recorder = Recorder()
    model = toy_model()
    history = model.fit(x, y, validation_data=(xv, yv), seed=2, augment=recorder, **FIT)
    steps = 4
    for epoch in range(FIT["epochs"]):
        seen = [i for b in recorder.ids[epoch * steps : (epoch + 1) * steps] for i in b]
        assert sorted(seen) == list(range(100))
    assert all(i < 100 for batch in recorder.ids for i in batch)
    assert set(recorder.dtypes) == {np.dtype(np.uint8)}  # raw batches, not cast
    # the validation scores are those of the untouched validation set
    scores = model.evaluate(xv, yv)
    assert history.history["val_loss"][-1] == scores["loss"]
    assert history.history["val_accuracy"][-1] == scores["accuracy"]
    calls = len(recorder.ids)
    model.evaluate(x, y)
    model.predict(x)
    assert len(recorder.ids) == calls


def test_a_validation_split_is_held_out_from_the_augment() -> None:
    x, y = numbered(120)
    recorder = Recorder()
    model = toy_model()
    history = model.fit(
        x,
        y,
        validation_split=0.25,
        seed=4,
        augment=recorder,
        epochs=2,
        batch_size=30,
        verbose=0,
    )
    seen = {i for batch in recorder.ids for i in batch}
    assert len(seen) == 90
    held_out = np.array(sorted(set(range(120)) - seen))
    assert len(held_out) == 30
    assert sum(len(b) for b in recorder.ids) == 2 * 90
    scores = model.evaluate(x[held_out], y[held_out])
    assert history.history["val_loss"][-1] == scores["loss"]
    assert history.history["val_accuracy"][-1] == scores["accuracy"]


@pytest.mark.parametrize(
    "augment",
    [Recorder(), Augment(flip=1.0), Augment(rotate=30.0, mode="edge")],
    ids=["recorder", "flip", "rotate-edge"],
)
def test_labels_stay_with_their_images(
    augment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # constant images survive a mirror (and an edge-extended turn) unchanged,
    # so each step's images still name the samples whose labels must come along
    x, y = numbered(90)
    model = toy_model()
    steps: list[tuple[np.ndarray, np.ndarray]] = []
    train_step = model.train_step

    def spy(xb: Any, yb: Any) -> Any:
        steps.append((np.asarray(xb).copy(), np.asarray(yb).copy()))
        return train_step(xb, yb)

    monkeypatch.setattr(model, "train_step", spy)
    model.fit(x, y, seed=3, augment=augment, **FIT)
    assert len(steps) == 3 * 3
    for xb, yb in steps:
        ids = np.array(ids_of(xb))
        np.testing.assert_array_equal(yb, y[ids])
        np.testing.assert_array_equal(xb, x[ids])  # the augment kept them constant
    all_ids = sorted(i for xb, _ in steps for i in ids_of(xb))
    assert all_ids == sorted(list(range(90)) * 3)


def test_a_plain_function_works_and_its_output_is_what_is_trained_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y = numbered(64)
    model = toy_model()
    seen: list[np.ndarray] = []
    train_step = model.train_step

    def spy(xb: Any, yb: Any) -> Any:
        seen.append(np.asarray(xb).copy())
        return train_step(xb, yb)

    monkeypatch.setattr(model, "train_step", spy)

    def invert(xb: np.ndarray, rng: np.random.Generator) -> list[Any]:
        assert isinstance(rng, np.random.Generator)
        return (255.0 - xb.astype(np.float64)).tolist()  # a list, float64

    model.fit(x, y, seed=0, augment=invert, epochs=1, batch_size=16, verbose=0)
    assert all(xb.dtype == model.dtype for xb in seen)
    ids = sorted(int(255 - v) for xb in seen for v in xb[:, 0, 0])
    assert ids == list(range(64))


# -------------------------------------------------------------- exact resume
def resume_fit(model: Sequential, data: Any, extra: list[Callback], **kw: Any) -> Any:
    x, y = data
    kw.setdefault("seed", 11)
    return model.fit(
        x,
        y,
        epochs=4,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        callbacks=extra,
        augment=AUGMENTATIONS["elastic"],
        **kw,
    )


def test_resume_with_augment_is_bit_identical(tmp_path: Path) -> None:
    data = toy_data(200)
    straight = toy_model(dropout=0.3)
    expected = resume_fit(straight, data, [])

    interrupted = toy_model(dropout=0.3)
    first = resume_fit(
        interrupted, data, [ModelCheckpoint(tmp_path / "ck.npz"), StopAfter(2)]
    )
    assert first.epoch == [1, 2]
    resumed = load_model(tmp_path / "ck.npz")
    assert resumed.training_state is not None and resumed.training_state.epoch == 2
    history = resume_fit(resumed, data, [], seed=None, resume=True)

    assert history.epoch == expected.epoch == [1, 2, 3, 4]
    assert history.history == expected.history
    assert same(weights(resumed), weights(straight))
    assert resumed.get_rng_states() == straight.get_rng_states()

    # the check has teeth: the same resume without the augment ends elsewhere
    bare = load_model(tmp_path / "ck.npz")
    x, y = data
    bare.fit(
        x, y, epochs=4, batch_size=32, validation_split=0.2, verbose=0, resume=True
    )
    assert not same(weights(bare), weights(straight))


# ---------------------------------------------------------------- bad augments
@pytest.mark.parametrize(
    ("change", "after"),
    [
        (lambda xb: xb[:, :-1], "(32, 9, 10)"),
        (lambda xb: xb[:-1], "(31, 10, 10)"),
        (lambda xb: xb[:, None], "(32, 1, 10, 10)"),
        (lambda xb: xb.reshape(len(xb), -1), "(32, 100)"),
        (lambda xb: None, "()"),
    ],
    ids=["crop", "drop", "channel", "flatten", "none"],
)
def test_an_augment_that_changes_the_shape_is_refused(change: Any, after: str) -> None:
    x, y = toy_data(64)
    model = toy_model()
    before = weights(model)
    with pytest.raises(
        ValueError,
        match=r"^fit: augment changed the batch's shape from \(32, 10, 10\) to "
        + after.replace("(", r"\(").replace(")", r"\)")
        + "; it must return images of the shape it was given$",
    ):
        model.fit(x, y, augment=lambda xb, rng: change(xb), **FIT)
    assert same(weights(model), before)  # refused before the first step


@pytest.mark.parametrize(
    "augment",
    ["digits", 3, AUGMENTATIONS, [Augment()], True],
    ids=["name", "int", "dict", "list", "bool"],
)
def test_a_non_callable_augment_is_a_type_error(augment: Any) -> None:
    x, y = toy_data(64)
    model = toy_model()
    before = weights(model)
    with pytest.raises(
        TypeError,
        match=r"^fit: augment must be an Augment or a function \(x_batch, rng\) -> "
        r"x_batch, got ",
    ):
        model.fit(x, y, augment=augment, **FIT)
    assert same(weights(model), before)
    assert model.training_state is None


def test_an_augment_that_raises_stops_fit() -> None:
    x, y = toy_data(64)

    def broken(xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise RuntimeError("broken augment")

    with pytest.raises(RuntimeError, match="broken augment"):
        toy_model().fit(x, y, augment=broken, **FIT)


def test_an_augment_object_that_is_falsy_is_still_applied() -> None:
    # a callable whose truth value is False (a __len__ of 0, or __bool__) must
    # still get a generator and be applied: the test is ``is not None``
    class Empty(Recorder):
        def __len__(self) -> int:
            return 0

    x, y = numbered(40)
    recorder = Empty()
    toy_model().fit(x, y, seed=0, augment=recorder, epochs=1, batch_size=20, verbose=0)
    assert len(recorder.ids) == 2


# ------------------------------------------------ learning from distortions
def test_training_on_elastic_digits_reads_elastic_digits_better(mnist: Any) -> None:
    """Simard et al.'s distortion in training makes distorted test digits read
    far better (a 3-epoch MLP: ~65% -> ~75%), at little cost on clean ones."""
    (x_train, y_train), (x_test, y_test) = mnist
    x, y = x_train[:10000], y_train[:10000]
    elastic = Augment(elastic_alpha=34.0, elastic_sigma=4.0)
    distorted = elastic(x_test[:2000], np.random.default_rng(123))
    scores = {}
    for name, augment in (("plain", None), ("elastic", elastic)):
        model = Sequential(
            [Rescaling(1 / 255), Flatten(), Dense(128, init="he"), ReLU(), Dense(10)],
            input_shape=(28, 28),
            seed=0,
        ).compile(CrossEntropy(), Adam(1e-3))
        model.fit(x, y, epochs=3, batch_size=64, seed=0, verbose=0, augment=augment)
        scores[name] = (
            model.evaluate(x_test[:2000], y_test[:2000])["accuracy"],
            model.evaluate(distorted, y_test[:2000])["accuracy"],
        )
    assert scores["elastic"][1] >= scores["plain"][1] + 0.05
    assert scores["elastic"][0] >= 0.88
    assert scores["elastic"][0] >= scores["plain"][0] - 0.03

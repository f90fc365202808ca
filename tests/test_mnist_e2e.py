"""End to end on the real MNIST files: the presets train to fixed accuracies."""

from __future__ import annotations

import math

import pytest

from chainrule.presets import get_preset, make_callbacks, make_model

VALIDATION_SPLIT = 5000 / 60000


def train(mnist, preset: str, epochs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    (x, y), (x_test, y_test) = mnist
    recipe = get_preset(preset).recipe.replace(epochs=epochs)
    model = make_model(preset, seed=0, recipe=recipe)
    steps = math.ceil(len(x) * (1 - VALIDATION_SPLIT) / recipe.batch_size)
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=recipe.batch_size,
        validation_split=VALIDATION_SPLIT,
        seed=0,
        verbose=0,
        callbacks=make_callbacks(recipe, steps),
    )
    return history["val_accuracy"][-1], model.evaluate(x_test, y_test)["accuracy"]


def test_mlp_two_epochs(mnist) -> None:  # type: ignore[no-untyped-def]
    val, test = train(mnist, "mlp", epochs=2)
    assert val >= 0.96
    assert test >= 0.965


def test_tutorial_network_learns(mnist) -> None:  # type: ignore[no-untyped-def]
    val, test = train(mnist, "tutorial", epochs=2)
    assert val >= 0.89
    assert test >= 0.90


@pytest.mark.slow
def test_mlp_full_recipe_reaches_98_percent(mnist) -> None:  # type: ignore[no-untyped-def]
    _, test = train(mnist, "mlp", epochs=10)
    assert test >= 0.98


@pytest.mark.parametrize(
    ("preset", "epochs", "expected"),
    [("cnn", 2, 0.945), ("lenet5", 3, 0.945), ("vgg", 1, 0.92)],
)
def test_cnn_presets_learn_from_a_subset(  # type: ignore[no-untyped-def]
    mnist, preset: str, epochs: int, expected: float
) -> None:
    """10,000 training images, a few epochs: the convolutions must be learning."""
    (x, y), (x_test, y_test) = mnist
    recipe = get_preset(preset).recipe.replace(epochs=epochs)
    model = make_model(preset, seed=0, recipe=recipe)
    steps = math.ceil(10_000 / recipe.batch_size)
    model.fit(
        x[:10_000],
        y[:10_000],
        epochs=epochs,
        batch_size=recipe.batch_size,
        seed=0,
        verbose=0,
        callbacks=make_callbacks(recipe, steps),
    )
    assert model.evaluate(x_test[:5000], y_test[:5000])["accuracy"] >= expected

"""Presets and recipes: every preset builds, and recipe overrides behave."""

from __future__ import annotations

import pytest

from chainrule.optim import SGD, Adam, RMSprop
from chainrule.presets import PRESETS, get_preset, make_model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_compiles(name: str) -> None:
    model = make_model(name, seed=0)
    assert model.built and model.loss is not None and model.optimizer is not None
    assert model.output_shape == (10,)


def test_changing_the_optimizer_drops_the_presets_momentum() -> None:
    assert get_preset("mlp").recipe.momentum == 0.9
    opt = make_model("mlp", optimizer="adam", lr=1e-3).optimizer
    assert isinstance(opt, Adam)
    rms = make_model("mlp", optimizer="rmsprop").optimizer
    assert isinstance(rms, RMSprop) and rms.momentum == 0.0
    sgd = make_model("tutorial", optimizer="nesterov").optimizer
    assert isinstance(sgd, SGD) and sgd.nesterov and sgd.momentum == 0.9


def test_momentum_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ValueError, match="momentum applies to sgd"):
        make_model("mlp", optimizer="adam", momentum=0.5)
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        make_model("mlp", optimizer="nesterov", momentum=0.0)


def test_bad_recipe_values() -> None:
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_model("mlp", optimizer="lbfgs")
    with pytest.raises(ValueError, match="schedule must be one of"):
        make_model("mlp", schedule="warmup")
    with pytest.raises(ValueError, match="unknown recipe fields: colour"):
        make_model("mlp", colour="red")
    with pytest.raises(ValueError, match="label smoothing applies to softmax"):
        make_model("tutorial", label_smoothing=0.1)
    with pytest.raises(ValueError, match="unknown preset 'vgg'"):
        get_preset("vgg")

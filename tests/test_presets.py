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
    with pytest.raises(ValueError, match="unknown preset 'resnet'"):
        get_preset("resnet")


def _kinds(name: str, **kwargs: object) -> list[str]:
    return [type(layer).__name__ for layer in make_model(name, seed=0, **kwargs).layers]


CONV = ["Conv2D", "BatchNorm", "ReLU"]
HEAD = ["Flatten", "Dropout", "Dense", "ReLU", "Dropout", "Dense"]


def test_vgg_stacks_two_3x3_convolutions_before_each_pooling() -> None:
    model = make_model("vgg", seed=0)
    block = [*CONV, *CONV, "MaxPool2D"]
    assert _kinds("vgg") == ["Rescaling", "Reshape", *block, *block, *HEAD]
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size) for c in convs] == [
        (32, (3, 3)),
        (32, (3, 3)),
        (64, (3, 3)),
        (64, (3, 3)),
    ]
    assert all(c.padding == "same" and not c.use_bias for c in convs)
    assert model.layers[-4].units == 128  # the head's hidden layer sees 64x7x7
    assert model.layers[-4].input_shape == (64 * 7 * 7,)


@pytest.mark.parametrize(("name", "per_block"), [("cnn", 4), ("vgg", 7)])
def test_conv_presets_pool_once_more_per_doubling_past_32_pixels(
    name: str, per_block: int
) -> None:
    small = _kinds(name, input_shape=(3, 32, 32))
    assert _kinds(name, input_shape=(3, 64, 64)) == [
        *small[: -len(HEAD)],
        *small[-len(HEAD) - per_block : -len(HEAD)],
        *HEAD,
    ]
    big = make_model(name, seed=0, input_shape=(3, 128, 96), classes=2)
    assert big.output_shape == (2,)
    assert big.layers[-4].input_shape == (64 * 8 * 6,)

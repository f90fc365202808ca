"""Named, ready-to-train models: one registry used by the CLI and by Python.

A preset is an architecture plus a :class:`Recipe` (optimizer, learning rate,
schedule, regularisation, epochs, batch size), each chosen on a validation split
(``docs/results.md`` says how, and what each reaches). ``make_model("mlp")``
returns the compiled model; ``make_callbacks`` the learning-rate schedule that
goes with it. Every recipe field can be overridden (the CLI's flags do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chainrule.callbacks import LearningRateScheduler
from chainrule.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
)
from chainrule.layers.base import Layer
from chainrule.losses import BinaryCrossEntropy, CrossEntropy
from chainrule.losses.base import Loss
from chainrule.model import Callback, Sequential
from chainrule.optim import SGD, Adam, AdamW, RMSprop
from chainrule.optim.base import Optimizer
from chainrule.optim.schedules import SCHEDULES, make_schedule
from chainrule.types import Shape

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop")

#: what a preset's model takes when the data does not say: MNIST's 28x28 images
MNIST_SHAPE: Shape = (28, 28)


@dataclass(frozen=True)
class Recipe:
    """How a preset is trained.

    ``hidden`` are the widths of the dense hidden layers: all of an MLP's, or
    the dense head after a CNN's convolutions.
    """

    epochs: int
    batch_size: int
    lr: float
    hidden: tuple[int, ...] = ()
    optimizer: str = "sgd"
    momentum: float | None = None
    weight_decay: float = 0.0
    schedule: str = "constant"
    dropout: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not self.hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0
            for h in self.hidden
        ):
            raise ValueError(
                f"hidden must be a non-empty tuple of layer widths, got {self.hidden!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                f"got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )

    def replace(self, **overrides: Any) -> Recipe:
        """A copy with the given fields changed (``None`` values are ignored)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown recipe fields: {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "hidden" in changes:
            changes["hidden"] = tuple(changes["hidden"])
        if "optimizer" in changes and "momentum" not in changes:
            # a preset's momentum belongs to its optimizer, not to the new one
            changes["momentum"] = None
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Preset:
    """A model architecture and the recipe it is trained with."""

    name: str
    description: str
    #: ``layers(recipe, sample_shape, classes)``: the model for that data
    layers: Callable[[Recipe, Shape, int], list[Layer]]
    loss: Callable[[Recipe], Loss]
    recipe: Recipe
    input_shape: tuple[int, ...] = MNIST_SHAPE


def _flat_input() -> list[Layer]:
    # raw uint8 pixels in, [0, 1] floats out: the model owns its normalisation
    return [Rescaling(1 / 255), Flatten()]


def _relu_mlp(
    recipe: Recipe, shape: Shape = MNIST_SHAPE, classes: int = 10
) -> list[Layer]:
    """``784-hidden...-10`` with ReLU, He init, and dropout if the recipe asks."""
    stack = _flat_input()
    if recipe.dropout:
        stack.append(Dropout(min(recipe.dropout, 0.2)))  # lighter on pixels
    for units in recipe.hidden:
        stack += [Dense(units, init="he"), ReLU()]
        if recipe.dropout:
            stack.append(Dropout(recipe.dropout))
    return [*stack, Dense(classes, init="glorot")]


def _dense_head(recipe: Recipe, classes: int = 10) -> list[Layer]:
    """A CNN's classifier: ``Flatten``, the recipe's dense layers, 10 logits."""
    stack: list[Layer] = [Flatten()]
    if recipe.dropout:
        stack.append(Dropout(recipe.dropout))
    for units in recipe.hidden:
        stack += [Dense(units, init="he"), ReLU()]
        if recipe.dropout:
            stack.append(Dropout(recipe.dropout))
    return [*stack, Dense(classes, init="glorot")]


def _lenet5(
    recipe: Recipe, shape: Shape = MNIST_SHAPE, classes: int = 10
) -> list[Layer]:
    """LeNet-5's layer sizes, with ReLU and max pooling.

    C1: 6 maps 5x5 (28x28 padded by 2, as the paper's 32x32 input), S2: 2x2
    pooling, C3: 16 maps 5x5 (connected to all 6 maps, not the paper's table),
    S4: 2x2 pooling, C5: 120 maps 5x5 (1x1 outputs), F6: 84 units, 10 outputs
    (softmax, not the paper's RBF units). Other image sizes keep the layers;
    C5 then has more than 1x1 outputs.
    """
    return [
        *_image_input(shape),
        Conv2D(6, 5, padding=2, init="he"),
        ReLU(),
        MaxPool2D(2),
        Conv2D(16, 5, init="he"),
        ReLU(),
        MaxPool2D(2),
        Conv2D(120, 5, init="he"),
        ReLU(),
        *_dense_head(recipe, classes),
    ]


def _conv_bn_relu(filters: int, kernel: int) -> list[Layer]:
    """Conv (no bias: batch norm's shift replaces it), BatchNorm, ReLU."""
    return [
        Conv2D(filters, kernel, padding="same", use_bias=False, init="he"),
        BatchNorm(),
        ReLU(),
    ]


def _conv_block(filters: int, kernel: int) -> list[Layer]:
    """Conv-BatchNorm-ReLU, then 2x2 max pooling."""
    return [*_conv_bn_relu(filters, kernel), MaxPool2D(2)]


def _vgg_block(filters: int) -> list[Layer]:
    """Two 3x3 conv-BatchNorm-ReLU layers, then 2x2 max pooling."""
    return [*_conv_bn_relu(filters, 3), *_conv_block(filters, 3)]


def _more_blocks(shape: Shape, block: Callable[[], list[Layer]]) -> list[Layer]:
    """One more pooling ``block`` per doubling of the image side past 32 pixels."""
    stack: list[Layer] = []
    side = max(shape[-2:])
    while side > 32:
        stack += block()
        side //= 2
    return stack


def _cnn(recipe: Recipe, shape: Shape = MNIST_SHAPE, classes: int = 10) -> list[Layer]:
    """Two conv-BN-ReLU-pool blocks (32 maps 5x5, 64 maps 3x3), a dense head.

    Images larger than 32 pixels a side (photographs from a folder) get one
    more 2x2 pooling block of 64 maps per doubling, so the dense head sees at
    most 8x8 maps.
    """
    blocks = [*_conv_block(32, 5), *_conv_block(64, 3)]
    blocks += _more_blocks(shape, lambda: _conv_block(64, 3))
    return [*_image_input(shape), *blocks, *_dense_head(recipe, classes)]


def _vgg(recipe: Recipe, shape: Shape = MNIST_SHAPE, classes: int = 10) -> list[Layer]:
    """Two VGG blocks (two 3x3 convs of 32 maps, pool; two of 64, pool), a dense head.

    Stacked 3x3 convolutions (Simonyan and Zisserman 2015) see as far as one
    5x5 with fewer weights and one more ReLU. Images larger than 32 pixels a
    side get one more block of 64 maps per doubling, as in ``_cnn``.
    """
    blocks = [*_vgg_block(32), *_vgg_block(64)]
    blocks += _more_blocks(shape, lambda: _vgg_block(64))
    return [*_image_input(shape), *blocks, *_dense_head(recipe, classes)]


def _image_input(shape: Shape) -> list[Layer]:
    """Raw uint8 pixels in, [0, 1] floats out, with the channel axis convs need.

    ``(H, W)`` grey images (MNIST) get a ``Reshape((1, H, W))``; ``(C, H, W)``
    images (from an image folder) already have it.
    """
    if len(shape) == 2:
        return [Rescaling(1 / 255), Reshape((1, *shape))]
    if len(shape) == 3:
        return [Rescaling(1 / 255)]
    raise ValueError(
        f"convolutional presets take (H, W) or (C, H, W) images, got {shape}"
    )


def _tutorial_layers(
    recipe: Recipe, shape: Shape = MNIST_SHAPE, classes: int = 10
) -> list[Layer]:
    stack = _flat_input()
    for units in recipe.hidden:
        stack += [Dense(units, use_bias=False, init="normal"), Sigmoid()]
        if recipe.dropout:
            stack.append(Dropout(recipe.dropout))
    # a3 = σ(z3): the output sigmoid is applied by the loss (fused, stable)
    return [*stack, Dense(classes, use_bias=False, init="normal")]


def _tutorial_loss(recipe: Recipe) -> Loss:
    if recipe.label_smoothing:
        raise ValueError(
            "label smoothing applies to softmax cross-entropy; the tutorial preset "
            "trains sigmoid outputs with binary cross-entropy"
        )
    return BinaryCrossEntropy(reduction="batchmean")


def _cross_entropy(recipe: Recipe) -> Loss:
    return CrossEntropy(label_smoothing=recipe.label_smoothing)


#: the recipe of the convolutional presets ``cnn`` and ``vgg``
_CNN_RECIPE = Recipe(
    epochs=10,
    batch_size=128,
    lr=0.003,
    hidden=(128,),
    optimizer="adam",
    schedule="onecycle",
    dropout=0.3,
)

PRESETS: dict[str, Preset] = {
    "tutorial": Preset(
        name="tutorial",
        description=(
            "the tutorial's 784-64-64-10 network: sigmoid units, no biases, N(0,1) "
            "weights, sigmoid outputs with binary cross-entropy summed over classes "
            "(output error a3 - y), plain SGD"
        ),
        layers=_tutorial_layers,
        loss=_tutorial_loss,
        recipe=Recipe(epochs=10, batch_size=32, lr=2.0, hidden=(64, 64)),
    ),
    "mlp": Preset(
        name="mlp",
        description=(
            "the best MLP recipe found: 784-1024-1024-10, ReLU, He init, dropout "
            "0.2, softmax cross-entropy with label smoothing 0.1, Nesterov SGD "
            "with a cosine schedule"
        ),
        layers=_relu_mlp,
        loss=_cross_entropy,
        recipe=Recipe(
            epochs=30,
            batch_size=128,
            lr=0.05,
            hidden=(1024, 1024),
            optimizer="nesterov",
            momentum=0.9,
            schedule="cosine",
            dropout=0.2,
            label_smoothing=0.1,
        ),
    ),
    "simard-800": Preset(
        name="simard-800",
        description=(
            "Simard et al. (2003)'s 784-800-10 network with cross-entropy "
            "(ReLU hidden units, dropout 0.3), Nesterov SGD with a cosine schedule"
        ),
        layers=_relu_mlp,
        loss=_cross_entropy,
        recipe=Recipe(
            epochs=30,
            batch_size=128,
            lr=0.1,
            hidden=(800,),
            optimizer="nesterov",
            momentum=0.9,
            schedule="cosine",
            dropout=0.3,
        ),
    ),
    "hinton-500-300": Preset(
        name="hinton-500-300",
        description=(
            "Hinton's 784-500-300-10 network: softmax cross-entropy with weight "
            "decay (ReLU hidden units, dropout 0.3), Nesterov SGD with a cosine "
            "schedule"
        ),
        layers=_relu_mlp,
        loss=_cross_entropy,
        recipe=Recipe(
            epochs=30,
            batch_size=128,
            lr=0.1,
            hidden=(500, 300),
            optimizer="nesterov",
            momentum=0.9,
            weight_decay=1e-4,
            schedule="cosine",
            dropout=0.3,
        ),
    ),
    "lenet5": Preset(
        name="lenet5",
        description=(
            "LeCun et al. (1998)'s LeNet-5 layer sizes (conv 6@5x5, pool, conv "
            "16@5x5, pool, conv 120@5x5, dense 84, 10) with ReLU and max pooling, "
            "dropout 0.2 on the dense layers, Adam with a one-cycle schedule"
        ),
        layers=_lenet5,
        loss=_cross_entropy,
        recipe=Recipe(
            epochs=20,
            batch_size=128,
            lr=0.003,
            hidden=(84,),
            optimizer="adam",
            schedule="onecycle",
            dropout=0.2,
        ),
    ),
    "cnn": Preset(
        name="cnn",
        description=(
            "a small modern CNN: two conv-BatchNorm-ReLU-maxpool blocks (32 maps "
            "5x5, 64 maps 3x3), dropout, dense 128, 10; Adam with a one-cycle "
            "schedule"
        ),
        layers=_cnn,
        loss=_cross_entropy,
        recipe=_CNN_RECIPE,
    ),
    "vgg": Preset(
        name="vgg",
        description=(
            "a VGG-style CNN: two blocks of two 3x3 conv-BatchNorm-ReLU layers "
            "(32, then 64 maps) each ending in 2x2 max pooling, dropout, dense "
            "128, 10; the cnn preset's recipe (Adam with a one-cycle schedule)"
        ),
        layers=_vgg,
        loss=_cross_entropy,
        recipe=_CNN_RECIPE,
    ),
}

DEFAULT_PRESET = "mlp"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def make_optimizer(recipe: Recipe) -> Optimizer:
    """The optimizer a recipe names, with its learning rate and weight decay."""
    lr, wd = recipe.lr, recipe.weight_decay
    if recipe.optimizer in ("sgd", "nesterov"):
        default = 0.9 if recipe.optimizer == "nesterov" else 0.0
        momentum = default if recipe.momentum is None else recipe.momentum
        return SGD(
            lr,
            momentum=momentum,
            nesterov=recipe.optimizer == "nesterov",
            weight_decay=wd,
        )
    if recipe.optimizer == "rmsprop":
        return RMSprop(lr, momentum=recipe.momentum or 0.0, weight_decay=wd)
    if recipe.momentum is not None:
        raise ValueError(
            f"momentum applies to sgd, nesterov and rmsprop, not {recipe.optimizer}"
        )
    if recipe.optimizer == "adam":
        return Adam(lr, weight_decay=wd)
    return AdamW(lr, weight_decay=wd)


def make_model(
    name: str,
    seed: int | None = None,
    recipe: Recipe | None = None,
    *,
    input_shape: Shape | None = None,
    classes: int = 10,
    **overrides: Any,
) -> Sequential:
    """Build and compile the preset's model (weights seeded by ``seed``).

    ``recipe`` replaces the preset's recipe; keyword ``overrides`` change single
    fields of it (``make_model("mlp", lr=0.1)``). ``input_shape`` (one sample:
    ``(28, 28)`` for MNIST, ``(C, H, W)`` for an image folder) and ``classes``
    fit the model to other data.
    """
    preset = get_preset(name)
    recipe = (recipe or preset.recipe).replace(**overrides)
    shape = tuple(input_shape or preset.input_shape)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
    model = Sequential(
        preset.layers(recipe, shape, classes), input_shape=shape, seed=seed
    )
    model.compile(preset.loss(recipe), make_optimizer(recipe))
    return model


def make_callbacks(recipe: Recipe, steps_per_epoch: int) -> list[Callback]:
    """The learning-rate schedule of a recipe, as a per-step callback."""
    if recipe.schedule == "constant":
        return []
    schedule = make_schedule(
        recipe.schedule, recipe.lr, recipe.epochs * steps_per_epoch
    )
    return [LearningRateScheduler(schedule, per="step")]


__all__ = [
    "DEFAULT_PRESET",
    "MNIST_SHAPE",
    "OPTIMIZERS",
    "PRESETS",
    "Preset",
    "Recipe",
    "get_preset",
    "make_callbacks",
    "make_model",
    "make_optimizer",
]

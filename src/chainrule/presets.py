"""Named, ready-to-train models: one registry used by the CLI and by Python.

``make_model("tutorial")`` returns a compiled :class:`Sequential`; the preset
also carries its training recipe (epochs, batch size, learning rate), chosen on
a validation split (see ``docs/results.md`` for how, and what each reaches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chainrule.layers import Dense, Flatten, ReLU, Rescaling, Sigmoid
from chainrule.layers.base import Layer
from chainrule.losses import BinaryCrossEntropy, CrossEntropy
from chainrule.losses.base import Loss
from chainrule.model import Sequential
from chainrule.optim import SGD
from chainrule.optim.base import Optimizer


@dataclass(frozen=True)
class Preset:
    """A model architecture plus the recipe it is trained with."""

    name: str
    description: str
    layers: Callable[[], list[Layer]]
    loss: Callable[[], Loss]
    optimizer: Callable[[float], Optimizer]
    input_shape: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float


def _mnist_input() -> list[Layer]:
    # raw uint8 pixels in, [0, 1] floats out: the model owns its normalisation
    return [Rescaling(1 / 255), Flatten()]


def _tutorial_layers() -> list[Layer]:
    return [
        *_mnist_input(),
        Dense(64, use_bias=False, init="normal"),
        Sigmoid(),
        Dense(64, use_bias=False, init="normal"),
        Sigmoid(),
        # a3 = σ(z3): the sigmoid is applied by the loss (fused, stable)
        Dense(10, use_bias=False, init="normal"),
    ]


def _mlp_layers() -> list[Layer]:
    return [
        *_mnist_input(),
        Dense(512, init="he"),
        ReLU(),
        Dense(256, init="he"),
        ReLU(),
        Dense(10, init="glorot"),
    ]


PRESETS: dict[str, Preset] = {
    "tutorial": Preset(
        name="tutorial",
        description=(
            "the tutorial's 784-64-64-10 network: sigmoid units, no biases, N(0,1) "
            "weights, sigmoid outputs with binary cross-entropy summed over classes "
            "(output error a3 - y), plain SGD"
        ),
        layers=_tutorial_layers,
        loss=lambda: BinaryCrossEntropy(reduction="batchmean"),
        optimizer=lambda lr: SGD(lr),
        input_shape=(28, 28),
        epochs=10,
        batch_size=32,
        lr=2.0,
    ),
    "mlp": Preset(
        name="mlp",
        description=(
            "a modern MLP 784-512-256-10: ReLU, He init, softmax cross-entropy, "
            "SGD with momentum 0.9"
        ),
        layers=_mlp_layers,
        loss=CrossEntropy,
        optimizer=lambda lr: SGD(lr, momentum=0.9),
        input_shape=(28, 28),
        epochs=10,
        batch_size=128,
        lr=0.05,
    ),
}

DEFAULT_PRESET = "mlp"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def make_model(
    name: str, seed: int | None = None, lr: float | None = None
) -> Sequential:
    """Build and compile the preset's model (weights seeded by ``seed``)."""
    preset = get_preset(name)
    model = Sequential(preset.layers(), input_shape=preset.input_shape, seed=seed)
    model.compile(preset.loss(), preset.optimizer(preset.lr if lr is None else lr))
    return model


__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset", "get_preset", "make_model"]

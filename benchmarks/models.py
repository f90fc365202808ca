"""The benchmark's models, as chainrule builds them, and their FLOP counts.

Each benchmark is a compiled chainrule model plus a batch size. PyTorch gets
the very same network (layers, initial weights, loss, optimizer) from
``torch_models.to_torch``, so the two frameworks start from identical weights
and take identical steps. This module does not import torch, so a chainrule
process measured for memory carries none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chainrule import Sequential
from chainrule.layers import (
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
)
from chainrule.layers.base import Layer
from chainrule.losses import CrossEntropy
from chainrule.optim import SGD, Adam
from chainrule.optim.base import Optimizer
from chainrule.presets import get_preset, make_optimizer

#: MNIST images as every model takes them: raw uint8 pixels, 28x28
INPUT_SHAPE = (28, 28)


@dataclass(frozen=True)
class Bench:
    """One row of the benchmark: a model, its optimizer and a batch size."""

    name: str
    description: str
    arch: str  # models with the same arch share inference timings
    batch_size: int
    build: Callable[[int], Sequential]  # seed -> compiled model


def _preset(name: str, seed: int) -> Sequential:
    """A preset's network, loss and optimizer, exactly as ``make_model`` has them."""
    preset = get_preset(name)
    model = Sequential(preset.layers(preset.recipe), INPUT_SHAPE, seed=seed)
    return model.compile(preset.loss(preset.recipe), make_optimizer(preset.recipe))


def _mlp800_layers() -> list[Layer]:
    return [
        Rescaling(1 / 255),
        Flatten(),
        Dense(800, init="he"),
        ReLU(),
        Dense(800, init="he"),
        ReLU(),
        Dense(10),
    ]


def _cnn_layers() -> list[Layer]:
    """LeNet-style: 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4; 64·4·4 = 1024."""
    return [
        Rescaling(1 / 255),
        Reshape((1, 28, 28)),
        Conv2D(32, 5, init="he"),
        ReLU(),
        MaxPool2D(2),
        Conv2D(64, 5, init="he"),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(128, init="he"),
        ReLU(),
        Dense(10),
    ]


ARCHITECTURES: dict[str, Callable[[], list[Layer]]] = {
    "mlp800": _mlp800_layers,
    "cnn": _cnn_layers,
}


def compiled(arch: str, optimizer: Optimizer, seed: int) -> Sequential:
    """``arch``'s network with softmax cross-entropy and ``optimizer``."""
    model = Sequential(ARCHITECTURES[arch](), INPUT_SHAPE, seed=seed)
    return model.compile(CrossEntropy(), optimizer)


BENCHES: dict[str, Bench] = {
    b.name: b
    for b in (
        Bench(
            "tutorial-32",
            "tutorial MLP 784-64-64-10, sigmoid, BCE, SGD lr 2",
            "tutorial",
            32,
            lambda seed: _preset("tutorial", seed),
        ),
        Bench(
            "tutorial-128",
            "tutorial MLP 784-64-64-10, sigmoid, BCE, SGD lr 2",
            "tutorial",
            128,
            lambda seed: _preset("tutorial", seed),
        ),
        Bench(
            "mlp800-sgd",
            "MLP 784-800-800-10, ReLU, CE, SGD lr 0.05 momentum 0.9",
            "mlp800",
            128,
            lambda seed: compiled("mlp800", SGD(0.05, momentum=0.9), seed),
        ),
        Bench(
            "mlp800-adam",
            "MLP 784-800-800-10, ReLU, CE, Adam lr 1e-3",
            "mlp800",
            128,
            lambda seed: compiled("mlp800", Adam(1e-3), seed),
        ),
        Bench(
            "cnn-adam",
            "CNN conv32@5-pool-conv64@5-pool-dense128-10, ReLU, CE, Adam lr 1e-3",
            "cnn",
            128,
            lambda seed: compiled("cnn", Adam(1e-3), seed),
        ),
    )
}


def forward_flops(model: Sequential) -> int:
    """Floating-point operations of one sample's forward pass: 2 per multiply-add.

    Only the matrix products count (Dense and Conv2D); activations, pooling,
    the loss and the optimizer are left out, as is customary. Training is
    counted as 3x this: the forward product and, in backward, one product for
    the weight gradient and one for the input gradient.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, Dense) and layer.W is not None:
            fan_in, units = layer.W.shape
            total += 2 * fan_in * units
        elif isinstance(layer, Conv2D) and layer.W is not None:
            assert layer.output_shape is not None
            _, ho, wo = layer.output_shape
            total += 2 * layer.W.data.size * ho * wo
    return total

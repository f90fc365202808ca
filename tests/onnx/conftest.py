"""Fixtures of the ONNX tests: MNIST images, models covering every layer type
(trained a little), and a graph run in onnxruntime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import Adam
from chainrule.presets import make_model

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def mlp() -> Sequential:
    return make_model("mlp", seed=0)


def conv_net() -> Sequential:
    """'same' padding with an even kernel (asymmetric pads), stride 2, both pools
    with a stride other than the window, batch norm over channels, LeakyReLU,
    global average pooling."""
    layers = [
        Rescaling(1 / 255),
        Reshape((1, 28, 28)),
        Conv2D(6, 4, padding="same", use_bias=False, init="he"),  # pads (1, 2, 1, 2)
        BatchNorm(),
        LeakyReLU(0.1),
        MaxPool2D(3, stride=2),
        Conv2D(8, (3, 2), stride=2, padding="same"),
        ReLU(),
        AvgPool2D(2, stride=1),
        Conv2D(10, 1, padding=(1, 0)),
        GlobalAvgPool2D(),
    ]
    return Sequential(layers, input_shape=(28, 28), seed=1).compile(
        CrossEntropy(label_smoothing=0.1), Adam(0.01)
    )


def odd_net() -> Sequential:
    """Tanh, Sigmoid, a Softmax layer, Dropout, Identity, Reshape to 2-D and back,
    Rescaling with an offset, batch norm over features, Dense without bias."""
    layers = [
        Rescaling(2 / 255, offset=-1.0),
        Reshape((1, 28, 28)),
        Conv2D(4, 5, stride=(2, 3), padding=1),
        Tanh(),
        MaxPool2D((2, 1)),
        Flatten(),
        Dropout(0.2),
        Dense(24, use_bias=False),
        BatchNorm(momentum=0.3),
        Sigmoid(),
        Reshape((4, 6)),
        Softmax(),
        Identity(),
        Flatten(),
        Dense(10),
    ]
    return Sequential(layers, input_shape=(28, 28), seed=2).compile(
        BinaryCrossEntropy(), Adam(0.01)
    )


def regression_net() -> Sequential:
    """MSE: no probabilities output; float64 weights exported as float32."""
    layers = [Rescaling(1 / 255), Flatten(), Dense(16), ReLU(), Dense(10)]
    model = Sequential(layers, input_shape=(28, 28), seed=3, dtype="float64")
    return model.compile(MSE(), Adam(0.01))


MODELS: dict[str, Callable[[], Sequential]] = {
    "mlp": mlp,
    "conv_net": conv_net,
    "odd_net": odd_net,
    "regression_net": regression_net,
}


def targets(model: Sequential, y: np.ndarray) -> np.ndarray:
    if isinstance(model.loss, CrossEntropy):
        return y
    return np.eye(10)[y]  # one-hot for BinaryCrossEntropy and MSE


@pytest.fixture(scope="session")
def model_builders() -> dict[str, Callable[[], Sequential]]:
    """Functions making the models above, which cover every layer type."""
    return dict(MODELS)


@pytest.fixture(scope="session")
def trained_models(train_images: Any) -> dict[str, Sequential]:
    """Each model after an epoch on 512 MNIST images: batch-norm statistics and
    weights are no longer their initial values."""
    x, y = train_images
    models = {}
    for name, make in MODELS.items():
        model = make()
        model.fit(x, targets(model, y), epochs=1, batch_size=64, seed=0, verbose=0)
        models[name] = model
    return models


@pytest.fixture(scope="session")
def test_images(mnist: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first 500 MNIST test images (uint8, (N, 28, 28)) and their labels."""
    _, (x, y) = mnist
    return x[:500], y[:500]


@pytest.fixture(scope="session")
def train_images(mnist: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first 512 MNIST training images and labels: a few steps of training."""
    (x, y), _ = mnist
    return x[:512], y[:512]


@pytest.fixture(scope="session")
def run_onnx() -> Callable[..., list[np.ndarray]]:
    """``run_onnx(proto_or_bytes_or_path, x)``: every output of the graph for ``x``
    (fed to its one input), computed by onnxruntime on the CPU."""

    def run(model: Any, x: np.ndarray) -> list[np.ndarray]:
        source = model if isinstance(model, (bytes, str)) else model.SerializeToString()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            source, options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        return list(session.run(None, {name: x}))

    return run

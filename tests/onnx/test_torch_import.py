"""PyTorch → ONNX → chainrule: a model trained elsewhere runs and fine-tunes here.

A torch MLP and a torch LeNet (with batch norm in eval mode, its running
statistics moved by a few training batches) are exported by both of
``torch.onnx.export``'s exporters: the TorchScript one (``dynamo=False``) and
the ``torch.export`` one (``dynamo=True``, which needs onnxscript). The imported
model must compute torch's outputs on MNIST test images within 1e-5, and one
epoch of ``fit`` on a few hundred MNIST images must lower its loss.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from chainrule.layers import BatchNorm, Conv2D, Dense, MaxPool2D
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.onnx import import_onnx
from chainrule.optim import Adam

TOLERANCE = 1e-5
EXPORTERS = {
    "torchscript": False,
    "dynamo": True,
}


def torch_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 64),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(64, 32),
        nn.BatchNorm1d(32),
        nn.Tanh(),
        nn.Linear(32, 10),
        nn.Softmax(dim=1),
    )


class LeNet(nn.Module):
    """Conv, ReLU, BatchNorm2d, max pooling, flatten and linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 84)
        self.fc2 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # batch norm after the ReLU, so no exporter folds it into the conv
        x = nn.functional.max_pool2d(self.bn(torch.relu(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": torch_mlp, "lenet": LeNet}


def images(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) as the float32 (N, 1, 28, 28) in [0, 1] torch takes."""
    return (x.astype(np.float32) / 255)[:, None]


def torch_model(name: str, x: np.ndarray) -> nn.Module:
    """The model in eval mode, after a few training batches moved its
    batch-norm statistics away from (0, 1)."""
    torch.manual_seed(0)
    model = MODELS[name]()
    model.train()
    with torch.no_grad():
        for start in range(0, 256, 64):
            model(torch.from_numpy(x[start : start + 64]))
    return model.eval()


def export(model: nn.Module, path: Path, dynamo: bool) -> None:
    sample = (torch.zeros(2, 1, 28, 28),)
    # both exporters warn (deprecation, version conversion) and the new one
    # prints its progress: neither is this test's business
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(
                model,
                sample,
                path,
                dynamo=True,
                external_data=False,
                input_names=["x"],
                dynamic_shapes=({0: torch.export.Dim("N")},),
            )
        else:
            torch.onnx.export(
                model,
                sample,
                path,
                dynamo=False,
                opset_version=17,
                input_names=["x"],
                dynamic_axes={"x": {0: "N"}},
            )


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory, train_images: Any
) -> dict[tuple[str, str], tuple[nn.Module, Sequential]]:
    x = images(train_images[0])
    models = {}
    for name in MODELS:
        for exporter, dynamo in EXPORTERS.items():
            if dynamo and not _has_onnxscript():
                continue
            model = torch_model(name, x)
            path = tmp_path_factory.mktemp("torch") / f"{name}.onnx"
            export(model, path, dynamo)
            models[name, exporter] = (model, import_onnx(path))
    return models


def _has_onnxscript() -> bool:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


CASES = [(name, exporter) for name in MODELS for exporter in EXPORTERS]


def _get(imported: dict[Any, Any], name: str, exporter: str) -> Any:
    if (name, exporter) not in imported:
        pytest.skip("the dynamo exporter needs onnxscript")
    return imported[name, exporter]


@pytest.mark.parametrize(("name", "exporter"), CASES)
def test_imported_model_computes_what_torch_computes(
    name: str, exporter: str, imported: dict[Any, Any], test_images: Any
) -> None:
    torch_net, model = _get(imported, name, exporter)
    x = images(test_images[0])
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(x)).numpy()
    # the MLP ends in a softmax, which became the loss: predict() applies it
    got = model.predict(x) if name == "mlp" else model.predict_logits(x)
    assert got.shape == expected.shape == (500, 10)
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.parametrize(("name", "exporter"), CASES)
def test_layers_and_loss(name: str, exporter: str, imported: dict[Any, Any]) -> None:
    _, model = _get(imported, name, exporter)
    kinds = [type(layer) for layer in model.layers]
    assert model.input_shape == (1, 28, 28)
    if name == "mlp":
        # Softmax became the loss; the exporter may fold BatchNorm1d into the Linear
        assert isinstance(model.loss, CrossEntropy)
        assert kinds.count(Dense) == 3
    else:
        assert model.loss is None  # no softmax at the end: nothing to infer
        assert kinds.count(Conv2D) == 2 and kinds.count(MaxPool2D) == 2
        assert kinds.count(BatchNorm) == 1 and kinds.count(Dense) == 2
        (bn,) = [layer for layer in model.layers if isinstance(layer, BatchNorm)]
        assert bn.momentum == 0.1 and bn.eps == 1e-5


@pytest.mark.parametrize("name", list(MODELS))
def test_fine_tuning_lowers_the_loss(
    name: str, imported: dict[Any, Any], train_images: Any
) -> None:
    _, model = _get(imported, name, "torchscript")
    x, y = images(train_images[0][:384]), train_images[1][:384]
    model.compile(model.loss or CrossEntropy(), Adam(1e-3))
    before = model.evaluate(x, y)["loss"]
    history = model.fit(x, y, epochs=1, batch_size=32, seed=0, verbose=0)
    after = model.evaluate(x, y)["loss"]
    assert np.isfinite(history.history["loss"]).all()
    assert after < before

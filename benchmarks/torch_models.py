"""The PyTorch twin of a chainrule model: same layers, weights, loss, optimizer.

``to_torch(model)`` walks the chainrule layers and builds the matching
``torch.nn`` modules with the weights copied over, so both frameworks start from
the same point; ``torch_loss`` and ``torch_optimizer`` translate the compiled
loss and optimizer with their hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chainrule import Sequential
from chainrule.layers import (
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
from chainrule.losses import BinaryCrossEntropy, CrossEntropy
from chainrule.optim import SGD, Adam

TorchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Scale(nn.Module):
    """``x·scale + offset``: chainrule's ``Rescaling``."""

    def __init__(self, scale: float, offset: float) -> None:
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale
        return y + self.offset if self.offset else y


class View(nn.Module):
    """``x`` reshaped to ``(N, *shape)``: chainrule's ``Reshape``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _param(array: Any) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(array.copy()))


def _module(layer: Any) -> nn.Module:
    if isinstance(layer, Rescaling):
        return Scale(layer.scale, layer.offset)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Reshape):
        return View(layer.target_shape)
    if isinstance(layer, Dense):
        fan_in, units = layer.W.shape
        linear = nn.Linear(fan_in, units, bias=layer.b is not None)
        linear.weight = _param(layer.W.data.T)  # chainrule (in, out), torch (out, in)
        if layer.b is not None:
            linear.bias = _param(layer.b.data)
        return linear
    if isinstance(layer, Conv2D):
        top, bottom, left, right = layer.pads
        if top != bottom or left != right:
            raise NotImplementedError(f"{layer!r}: asymmetric padding")
        f, c, kh, kw = layer.W.shape
        conv = nn.Conv2d(
            c,
            f,
            (kh, kw),
            stride=layer.stride,
            padding=(top, left),
            bias=layer.b is not None,
        )
        conv.weight = _param(layer.W.data)  # (F, C, kh, kw) in both
        if layer.b is not None:
            conv.bias = _param(layer.b.data)
        return conv
    if isinstance(layer, ReLU):
        return nn.ReLU()
    if isinstance(layer, Sigmoid):
        return nn.Sigmoid()
    if isinstance(layer, MaxPool2D):
        return nn.MaxPool2d(layer.pool_size, layer.stride)
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate)
    raise NotImplementedError(f"no PyTorch twin for {layer!r}")


def to_torch(model: Sequential) -> nn.Sequential:
    """``model``'s layers as ``torch.nn`` modules holding copies of its weights."""
    return nn.Sequential(*[_module(layer) for layer in model.layers])


def torch_loss(model: Sequential) -> TorchLoss:
    """``(logits, labels) -> loss`` computing what ``model.loss`` computes."""
    loss = model.loss
    if isinstance(loss, CrossEntropy):
        smoothing = loss.label_smoothing
        return lambda z, y: F.cross_entropy(z, y, label_smoothing=smoothing)
    if isinstance(loss, BinaryCrossEntropy) and loss.reduction == "batchmean":
        # sigmoid outputs against one-hot targets, summed over classes, / N
        def bce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = F.one_hot(y, z.shape[1]).to(z.dtype)
            total = F.binary_cross_entropy_with_logits(z, target, reduction="sum")
            return total / z.shape[0]

        return bce
    raise NotImplementedError(f"no PyTorch twin for {loss!r}")


def torch_optimizer(model: Sequential, net: nn.Module) -> torch.optim.Optimizer:
    """``model.optimizer`` as a ``torch.optim`` optimizer of ``net``'s parameters."""
    opt = model.optimizer
    params = net.parameters()
    if isinstance(opt, SGD):
        return torch.optim.SGD(
            params,
            lr=opt.lr,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
        )
    if type(opt) is Adam:
        return torch.optim.Adam(
            params,
            lr=opt.lr,
            betas=(opt.beta1, opt.beta2),
            eps=opt.eps,
            weight_decay=opt.weight_decay,
        )
    raise NotImplementedError(f"no PyTorch twin for {opt!r}")

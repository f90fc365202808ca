"""Layers: each returns ``(y, backward)`` from its forward pass."""

from chainrule.layers.activations import (
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.layers.base import Layer, layer_from_config
from chainrule.layers.batchnorm import BatchNorm
from chainrule.layers.conv import Conv2D
from chainrule.layers.dense import Dense
from chainrule.layers.dropout import Dropout
from chainrule.layers.init import INITIALIZERS
from chainrule.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from chainrule.layers.reshape import Flatten, Rescaling, Reshape

__all__ = [
    "INITIALIZERS",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Rescaling",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "layer_from_config",
]

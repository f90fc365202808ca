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
from chainrule.layers.dense import Dense
from chainrule.layers.dropout import Dropout
from chainrule.layers.init import INITIALIZERS
from chainrule.layers.reshape import Flatten, Rescaling

__all__ = [
    "INITIALIZERS",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "ReLU",
    "Rescaling",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "layer_from_config",
]

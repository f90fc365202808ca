"""Losses: ``value, dlogits = loss(logits, y)``."""

from chainrule.losses.base import REDUCTIONS, Loss, loss_from_config
from chainrule.losses.binary_cross_entropy import BinaryCrossEntropy
from chainrule.losses.cross_entropy import CrossEntropy
from chainrule.losses.mse import MSE

__all__ = [
    "MSE",
    "REDUCTIONS",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Loss",
    "loss_from_config",
]

"""Optimizers: ``optimizer.step(parameters)``."""

from chainrule.optim.base import Optimizer, optimizer_from_config
from chainrule.optim.sgd import SGD

__all__ = ["SGD", "Optimizer", "optimizer_from_config"]

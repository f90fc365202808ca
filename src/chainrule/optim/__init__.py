"""Optimizers: ``optimizer.step(parameters)``."""

from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.base import Optimizer, clip_grad_norm, optimizer_from_config
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.schedules import (
    SCHEDULES,
    Constant,
    CosineDecay,
    ExponentialDecay,
    MultiStepDecay,
    OneCycle,
    Schedule,
    StepDecay,
    make_schedule,
    schedule_from_config,
)
from chainrule.optim.sgd import SGD

__all__ = [
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "MultiStepDecay",
    "OneCycle",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepDecay",
    "clip_grad_norm",
    "make_schedule",
    "optimizer_from_config",
    "schedule_from_config",
]

"""Callbacks for ``fit``: early stopping, checkpoints, logs, learning rates, health."""

from chainrule.callbacks.checkpoint import ModelCheckpoint
from chainrule.callbacks.early_stopping import EarlyStopping
from chainrule.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from chainrule.callbacks.loggers import CSVLogger, JSONLogger
from chainrule.callbacks.nan import TerminateOnNaN
from chainrule.diagnostics.monitor import HealthMonitor
from chainrule.model.callback import Callback

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "HealthMonitor",
    "JSONLogger",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]

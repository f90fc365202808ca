"""The model: ``Sequential`` with ``fit``, ``evaluate``, ``predict``."""

from chainrule.model.callback import Callback
from chainrule.model.history import History
from chainrule.model.sequential import Sequential
from chainrule.model.training_state import TrainingState

__all__ = ["Callback", "History", "Sequential", "TrainingState"]

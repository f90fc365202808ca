"""The model: ``Sequential`` with ``fit``, ``evaluate``, ``predict``."""

from chainrule.model.history import History
from chainrule.model.sequential import Sequential

__all__ = ["History", "Sequential"]

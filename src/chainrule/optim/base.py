"""The optimizer contract: ``optimizer.step(parameters)`` updates ``data`` in place.

Optimizers see parameters only, never layers. Per-parameter state (momentum
buffers, ...) lives in the optimizer, in a list aligned with the parameter list
it is stepped with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from chainrule import validate
from chainrule.config import format_call, from_config
from chainrule.parameter import Parameter


class Optimizer:
    """Base class: validates ``lr`` and keeps per-parameter state."""

    registry: ClassVar[dict[str, type[Optimizer]]] = {}
    #: the names of the per-parameter state arrays this optimizer keeps
    state_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Optimizer.registry[cls.__name__] = cls

    def __init__(self, lr: float) -> None:
        self.lr = validate.real(type(self).__name__, "learning rate", lr, low=0.0)
        self.state: list[dict[str, Any]] = []
        self.iterations = 0

    def step(self, parameters: Sequence[Parameter]) -> None:
        """Apply one update to every parameter from its ``.grad``."""
        if not self.state:
            self.state = [{} for _ in parameters]
        elif len(self.state) != len(parameters):
            raise ValueError(
                f"{type(self).__name__} was stepped with {len(self.state)} parameters "
                f"before, now with {len(parameters)}; use one optimizer per model"
            )
        for p, state in zip(parameters, self.state, strict=True):
            self.update(p, state)
        self.iterations += 1

    def update(self, p: Parameter, state: dict[str, Any]) -> None:
        """Update one parameter in place."""
        raise NotImplementedError

    @staticmethod
    def zero_grad(parameters: Sequence[Parameter]) -> None:
        for p in parameters:
            p.zero_grad()

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def __repr__(self) -> str:
        return format_call(type(self).__name__, type(self).__init__, self.get_config())


def optimizer_from_config(description: object) -> Optimizer:
    """Rebuild an optimizer from ``{"type": name, "config": {...}}``."""
    return from_config(Optimizer.registry, "optimizer", description)


__all__ = ["Optimizer", "optimizer_from_config"]

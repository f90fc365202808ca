"""Stochastic gradient descent with momentum, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

from chainrule import validate
from chainrule.optim.base import Optimizer
from chainrule.parameter import Parameter


class SGD(Optimizer):
    """``θ ← θ − lr·g``: the tutorial's update, with the usual extras.

    With ``g = ∇θ + weight_decay·θ`` (L2 penalty folded into the gradient):

    - plain: ``θ ← θ − lr·g``
    - momentum ``μ``: ``v ← μ·v + g`` (``v = g`` on the first step), ``θ ← θ − lr·v``
    - Nesterov: ``θ ← θ − lr·(g + μ·v)``

    This is exactly PyTorch's ``torch.optim.SGD`` with ``dampening=0``. With
    ``clip_norm`` the gradients are first clipped to that global L2 norm.
    """

    state_keys = ("momentum_buffer",)

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        self.momentum = validate.real("SGD", "momentum", momentum, low=0.0)
        self.weight_decay = validate.real("SGD", "weight_decay", weight_decay, low=0.0)
        validate.boolean("SGD", "nesterov", nesterov)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = nesterov

    def update(self, p: Parameter, state: dict[str, Any]) -> None:
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            v = state.get("momentum_buffer")
            if v is None:
                v = state["momentum_buffer"] = g.copy()
            else:
                v *= self.momentum
                v += g
            if self.nesterov:
                g = g + self.momentum * v
            else:
                g = v
        p.data -= self.lr * g

    def get_config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
        }


__all__ = ["SGD"]

"""RMSprop: steps divided by a running root mean square of the gradient."""

from __future__ import annotations

from typing import Any

from chainrule import backend, validate
from chainrule.optim.adam import lerp
from chainrule.optim.base import Optimizer, fraction
from chainrule.parameter import Parameter


class RMSprop(Optimizer):
    """Divide each coordinate's step by the root of its mean squared gradient.

    With ``g = ∇θ + weight_decay·θ`` (L2 penalty folded into the gradient) and
    ``s``, ``ḡ``, ``b`` starting at 0:

    - ``s ← α·s + (1 − α)·g²``
    - centered: ``ḡ ← α·ḡ + (1 − α)·g`` and ``d = √(s − ḡ²) + eps``;
      otherwise ``d = √s + eps``
    - plain: ``θ ← θ − lr·g/d``
    - momentum ``μ``: ``b ← μ·b + g/d``, ``θ ← θ − lr·b``

    This matches PyTorch's ``torch.optim.RMSprop``; only the state used is kept
    (``grad_avg`` when centered, ``momentum_buffer`` with momentum).
    """

    state_keys = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        self.alpha = fraction("RMSprop", "alpha", alpha)
        self.eps = validate.real("RMSprop", "eps", eps, low=0.0, strict=True)
        self.momentum = validate.real("RMSprop", "momentum", momentum, low=0.0)
        self.centered = validate.boolean("RMSprop", "centered", centered)
        self.weight_decay = validate.real(
            "RMSprop", "weight_decay", weight_decay, low=0.0
        )

    def update(self, p: Parameter, state: dict[str, Any]) -> None:
        xp = backend.xp()
        g = p.grad
        work, out = self.work_array(g, 0), self.work_array(g, 1)
        if self.weight_decay:
            g = xp.multiply(p.data, self.weight_decay, out=work)
            g += p.grad
        (s,) = self.state_arrays(state, p.data, ("square_avg",))

        s *= self.alpha
        xp.multiply(g, 1 - self.alpha, out=out)  # (1 − α)·g·g, as torch's addcmul
        out *= g
        s += out
        if self.centered:
            (avg,) = self.state_arrays(state, p.data, ("grad_avg",))
            lerp(avg, g, 1 - self.alpha, out)
            denom = xp.multiply(avg, avg, out=out)
            xp.subtract(s, denom, out=denom)
            xp.sqrt(denom, out=denom)
        else:
            denom = xp.sqrt(s, out=out)
        denom += self.eps

        if self.momentum:
            (b,) = self.state_arrays(state, p.data, ("momentum_buffer",))
            b *= self.momentum
            denom = xp.divide(g, denom, out=denom)
            b += denom
            step = xp.multiply(b, -self.lr, out=denom)
        else:
            # ``work`` is free or holds g, which is read once more, here
            step = xp.multiply(g, -self.lr, out=work)
            step /= denom
        p.data += step

    def get_config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
        }


__all__ = ["RMSprop"]

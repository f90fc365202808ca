"""Adam and AdamW: moment estimates of the gradient and its square."""

from __future__ import annotations

from typing import Any

from chainrule import backend, validate
from chainrule.optim.base import Optimizer, fraction
from chainrule.parameter import Parameter
from chainrule.types import Array


class Adam(Optimizer):
    """Adaptive moments: a step per coordinate scaled by its gradient's history.

    With ``g = ∇θ + weight_decay·θ`` (L2 penalty folded into the gradient) and
    ``t`` the step number (1 on the first step), moments starting at 0:

    - ``m ← β1·m + (1 − β1)·g``, ``v ← β2·v + (1 − β2)·g²``
    - ``θ ← θ − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)``

    which is ``θ − lr·m̂/(√v̂ + eps)`` with the bias-corrected ``m̂ = m/(1 − β1ᵗ)``,
    ``v̂ = v/(1 − β2ᵗ)``; the corrections are folded into scalars, in the order
    of PyTorch's ``torch.optim.Adam`` (``amsgrad=False``), which this matches.
    """

    state_keys = ("exp_avg", "exp_avg_sq")
    #: ``True`` for AdamW: weight decay shrinks θ instead of adding to ``g``
    decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        name = type(self).__name__
        self.beta1 = fraction(name, "beta1", beta1)
        self.beta2 = fraction(name, "beta2", beta2)
        self.eps = validate.real(name, "eps", eps, low=0.0, strict=True)
        self.weight_decay = validate.real(name, "weight_decay", weight_decay, low=0.0)

    def update(self, p: Parameter, state: dict[str, Any]) -> None:
        xp = backend.xp()
        t = self.iterations + 1
        g = p.grad
        work, out = self.work_array(g, 0), self.work_array(g, 1)
        if self.weight_decay:
            if self.decoupled:
                p.data *= 1 - self.lr * self.weight_decay
            else:
                g = xp.multiply(p.data, self.weight_decay, out=work)
                g += p.grad
        m, v = self.state_arrays(state, p.data, self.state_keys)

        lerp(m, g, 1 - self.beta1, out)
        v *= self.beta2
        xp.multiply(g, 1 - self.beta2, out=out)  # (1 − β2)·g·g, as torch's addcmul
        out *= g
        v += out

        # ``work`` may have held g: both moments are updated, it is free now
        denom = xp.sqrt(v, out=work)
        denom /= (1 - self.beta2**t) ** 0.5  # torch's ** 0.5, not math.sqrt
        denom += self.eps
        step = xp.multiply(m, -self.lr / (1 - self.beta1**t), out=out)
        step /= denom
        p.data += step

    def get_config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "clip_norm": self.clip_norm,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay: ``θ ← θ − lr·weight_decay·θ`` first.

    The decay shrinks θ before the Adam step on the raw gradient (``g = ∇θ``),
    instead of entering ``g`` where the moments would rescale it. This matches
    PyTorch's ``torch.optim.AdamW``; the default ``weight_decay`` is 0.01.
    """

    decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm=clip_norm)


def lerp(start: Array, end: Array, weight: float, work: Array) -> None:
    """``start ← start + weight·(end − start)`` in place, as ``torch.lerp``.

    Like torch, a weight of 0.5 or more is applied from the other end
    (``end − (1 − weight)·(end − start)``), which rounds better there.
    """
    xp = backend.xp()
    diff = xp.subtract(end, start, out=work)
    if weight < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= weight - 1
        xp.add(end, diff, out=start)


__all__ = ["Adam", "AdamW", "lerp"]

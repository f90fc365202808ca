"""Learning-rate schedules: pure functions ``schedule(step) -> lr``.

A schedule keeps no state: the same step always gives the same learning rate,
so a run resumed from a checkpoint gets its learning rate back from the step
count alone, and nothing about a schedule has to be saved beyond its config.
``step`` counts from 0 (the first update uses ``schedule(0)``).

Each schedule equals one of ``torch.optim.lr_scheduler``'s, read after ``step``
calls of ``scheduler.step()``: ``StepDecay`` is ``StepLR``, ``MultiStepDecay``
``MultiStepLR``, ``ExponentialDecay`` ``ExponentialLR``, ``CosineDecay`` without
warm-up ``CosineAnnealingLR`` and ``OneCycle`` ``OneCycleLR``. Past its last
step a schedule holds its final value where torch would extrapolate or raise.

Per-epoch schedules are the same objects: a callback that calls
``schedule(epoch)`` once an epoch, instead of ``schedule(step)`` once a batch,
gives torch's usual per-epoch use of these schedulers (``total_steps`` and
``step_size`` then count epochs).

Schedules are described like layers and optimizers
(``{"type": "CosineDecay", "config": {...}}``) and rebuilt with
:func:`schedule_from_config`.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from chainrule import validate
from chainrule.config import format_call, from_config


class Schedule:
    """Base class: ``schedule(step)`` checks ``step`` and returns ``lr_at(step)``."""

    registry: ClassVar[dict[str, type[Schedule]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Schedule.registry[cls.__name__] = cls

    def __call__(self, step: int) -> float:
        return self.lr_at(validate.integer(type(self).__name__, "step", step, low=0))

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step`` (an int ``>= 0``, already checked)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return format_call(type(self).__name__, type(self).__init__, self.get_config())


def _lr(owner: str, value: object, name: str = "learning rate") -> float:
    return validate.real(owner, name, value, low=0.0, strict=True)


def _gamma(owner: str, gamma: object) -> float:
    # gamma > 1 would grow the rate until it overflows at some step count
    value = validate.real(owner, "gamma", gamma, low=0.0, strict=True)
    if value > 1:
        raise ValueError(f"{owner}: invalid gamma {value!r} (must be in (0, 1])")
    return value


def _floor(owner: str, name: str, value: object, lr: float) -> float:
    """A rate in ``[0, lr]``: where a warm-up starts or a decay ends."""
    number = validate.real(owner, name, value, low=0.0)
    if number > lr:
        raise ValueError(f"{owner}: invalid {name} {number!r} (must be <= lr {lr!r})")
    return number


class Constant(Schedule):
    """``lr`` at every step."""

    def __init__(self, lr: float) -> None:
        self.lr = _lr("Constant", lr)

    def lr_at(self, step: int) -> float:
        return self.lr

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr}


class StepDecay(Schedule):
    """``lr·gamma^(step // step_size)``: multiply by ``gamma`` every ``step_size``.

    torch's ``StepLR``.
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _lr("StepDecay", lr)
        self.step_size = validate.integer("StepDecay", "step_size", step_size)
        self.gamma = _gamma("StepDecay", gamma)

    def lr_at(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr, "step_size": self.step_size, "gamma": self.gamma}


class MultiStepDecay(Schedule):
    """``lr·gamma^k`` with ``k`` the number of milestones ``<= step``.

    torch's ``MultiStepLR`` (which also accepts repeated milestones; here they
    must increase strictly).
    """

    def __init__(
        self, lr: float, milestones: Sequence[int], gamma: float = 0.1
    ) -> None:
        self.lr = _lr("MultiStepDecay", lr)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise TypeError(
                f"MultiStepDecay: milestones must be a list of step numbers, "
                f"got {milestones!r}"
            )
        steps = [validate.integer("MultiStepDecay", "milestone", m) for m in milestones]
        if not steps or any(a >= b for a, b in itertools.pairwise(steps)):
            raise ValueError(
                "MultiStepDecay: milestones must be a non-empty, strictly "
                f"increasing list of positive integers, got {list(milestones)!r}"
            )
        self.milestones = tuple(steps)
        self.gamma = _gamma("MultiStepDecay", gamma)

    def lr_at(self, step: int) -> float:
        return self.lr * self.gamma ** bisect.bisect_right(self.milestones, step)

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr, "milestones": list(self.milestones), "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """``lr·gamma^step``: torch's ``ExponentialLR``."""

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr = _lr("ExponentialDecay", lr)
        self.gamma = _gamma("ExponentialDecay", gamma)

    def lr_at(self, step: int) -> float:
        return self.lr * self.gamma**step

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr, "gamma": self.gamma}


class CosineDecay(Schedule):
    """Linear warm-up, then a half cosine from ``lr`` down to ``min_lr``.

    With ``W = warmup_steps`` and ``T = total_steps``:

    - ``step < W``: ``warmup_start_lr + (lr − warmup_start_lr)·step/W``
    - ``W <= step <= T``: ``min_lr + (lr − min_lr)·(1 + cos(π·(step − W)/(T − W)))/2``
    - ``step > T``: ``min_lr``

    Without warm-up this is torch's ``CosineAnnealingLR(T_max=T, eta_min=min_lr)``
    for steps ``0..T`` (torch goes back up after ``T``; this stays at ``min_lr``).
    """

    def __init__(
        self,
        lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        min_lr: float = 0.0,
        warmup_start_lr: float = 0.0,
    ) -> None:
        self.lr = _lr("CosineDecay", lr)
        self.total_steps = validate.integer("CosineDecay", "total_steps", total_steps)
        self.warmup_steps = validate.integer(
            "CosineDecay", "warmup_steps", warmup_steps, low=0
        )
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"CosineDecay: warmup_steps ({self.warmup_steps}) must be less than "
                f"total_steps ({self.total_steps})"
            )
        self.min_lr = _floor("CosineDecay", "min_lr", min_lr, self.lr)
        self.warmup_start_lr = _floor(
            "CosineDecay", "warmup_start_lr", warmup_start_lr, self.lr
        )

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            rise = (self.lr - self.warmup_start_lr) * step / self.warmup_steps
            return self.warmup_start_lr + rise
        if step >= self.total_steps:
            return self.min_lr
        # the same order of operations as torch, so the values match to the bit
        angle = (
            math.pi
            * (step - self.warmup_steps)
            / (self.total_steps - self.warmup_steps)
        )
        cos_out = 1 + math.cos(angle)
        return self.min_lr + (self.lr - self.min_lr) * cos_out / 2

    def get_config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "min_lr": self.min_lr,
            "warmup_start_lr": self.warmup_start_lr,
        }


ANNEALS = ("cos", "linear")


class OneCycle(Schedule):
    """The 1cycle policy: warm up to ``max_lr``, then anneal far below the start.

    torch's ``OneCycleLR`` (learning rate only, no momentum cycling). With
    ``T = total_steps``, ``p = pct_start``, ``initial = max_lr/div_factor`` and
    ``min = initial/final_div_factor``, the rate is annealed between phase ends,
    placed where torch places them (they need not be whole steps):

    - two phases: ``initial → max_lr`` until ``p·T − 1``, then ``max_lr → min``
      until ``T − 1``;
    - ``three_phase``: ``initial → max_lr`` until ``p·T − 1``, ``max_lr → initial``
      until ``2·p·T − 2``, then ``initial → min`` until ``T − 1``

    with ``anneal="cos"``: ``end + (start − end)/2·(1 + cos(π·pct))`` or
    ``"linear"``: ``start + (end − start)·pct``, where ``pct`` is the fraction of
    the phase done. From step ``T − 1`` on the rate is ``min``.
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal: str = "cos",
        three_phase: bool = False,
    ) -> None:
        self.max_lr = _lr("OneCycle", max_lr, "max_lr")
        self.total_steps = validate.integer("OneCycle", "total_steps", total_steps)
        self.pct_start = validate.real("OneCycle", "pct_start", pct_start)
        if not 0 < self.pct_start < 1:
            raise ValueError(
                f"OneCycle: invalid pct_start {self.pct_start!r} (must be in (0, 1))"
            )
        self.div_factor = validate.real("OneCycle", "div_factor", div_factor, low=1.0)
        self.final_div_factor = validate.real(
            "OneCycle", "final_div_factor", final_div_factor, low=1.0
        )
        if anneal not in ANNEALS:
            raise ValueError(
                f"OneCycle: anneal must be one of {ANNEALS}, got {anneal!r}"
            )
        self.anneal = anneal
        self.three_phase = validate.boolean("OneCycle", "three_phase", three_phase)
        if self.three_phase and self.pct_start > 0.5:
            # the second phase would end within a step of the end, or after it
            raise ValueError(
                f"OneCycle: three_phase=True needs pct_start <= 0.5, "
                f"got {self.pct_start!r}"
            )
        initial = self.max_lr / self.div_factor
        self.min_lr = initial / self.final_div_factor
        warmup_end = float(self.pct_start * self.total_steps) - 1
        end = float(self.total_steps - 1)
        # (end step, start lr, end lr) of each phase; the first starts at step 0
        self.phases: tuple[tuple[float, float, float], ...]
        if self.three_phase:
            self.phases = (
                (warmup_end, initial, self.max_lr),
                (
                    float(2 * self.pct_start * self.total_steps) - 2,
                    self.max_lr,
                    initial,
                ),
                (end, initial, self.min_lr),
            )
        else:
            self.phases = (
                (warmup_end, initial, self.max_lr),
                (end, self.max_lr, self.min_lr),
            )

    def lr_at(self, step: int) -> float:
        if step >= self.total_steps - 1:
            return self.min_lr
        # the first phase that ends at or after step: there is one, the last
        # ends at total_steps - 1
        i = next(i for i, phase in enumerate(self.phases) if step <= phase[0])
        start_step = self.phases[i - 1][0] if i else 0.0
        end_step, start_lr, end_lr = self.phases[i]
        if end_step == start_step:
            # an empty first phase (pct_start·total_steps == 1) has reached its end
            # at step 0; torch divides by zero here
            return end_lr
        pct = (step - start_step) / (end_step - start_step)
        if self.anneal == "cos":
            return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end_lr - start_lr) * pct + start_lr

    def get_config(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal": self.anneal,
            "three_phase": self.three_phase,
        }


def schedule_from_config(description: object) -> Schedule:
    """Rebuild a schedule from ``{"type": name, "config": {...}}``."""
    return from_config(Schedule.registry, "schedule", description)


SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle")


def make_schedule(name: str, lr: float, total_steps: int) -> Schedule:
    """The CLI's schedules: one name and the run's length pick all the rest.

    - ``"constant"``: :class:`Constant` ``lr``.
    - ``"step"``: :class:`StepDecay` by 10x every ``total_steps // 3`` steps (at
      least 1; ``gamma = 0.1``): the classic ImageNet recipe shrunk to the run,
      two decays, or three when ``total_steps`` is not a multiple of 3.
    - ``"exponential"``: :class:`ExponentialDecay` with
      ``gamma = 0.01^(1/total_steps)``, so the rate falls 100x over the run.
    - ``"cosine"``: :class:`CosineDecay` to 0 over the run after a short linear
      warm-up from 0 over ``round(0.02·total_steps)`` steps (2% of the run,
      none for runs under 25 steps).
    - ``"onecycle"``: :class:`OneCycle` peaking at ``max_lr = lr`` with torch's
      defaults (30% warm-up from ``lr/25``, cosine annealing to ``lr/25/1e4``).
    """
    total_steps = validate.integer("make_schedule", "total_steps", total_steps)
    if name == "constant":
        return Constant(lr)
    if name == "step":
        return StepDecay(lr, step_size=max(1, total_steps // 3), gamma=0.1)
    if name == "exponential":
        return ExponentialDecay(lr, gamma=0.01 ** (1 / total_steps))
    if name == "cosine":
        return CosineDecay(lr, total_steps, warmup_steps=round(0.02 * total_steps))
    if name == "onecycle":
        return OneCycle(max_lr=lr, total_steps=total_steps)
    raise ValueError(
        f"unknown schedule {name!r}; known schedules: {', '.join(SCHEDULES)}"
    )


__all__ = [
    "SCHEDULES",
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "MultiStepDecay",
    "OneCycle",
    "Schedule",
    "StepDecay",
    "make_schedule",
    "schedule_from_config",
]

"""Learning-rate schedules against ``torch.optim.lr_scheduler``, and their checks."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.config import describe
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

RTOL = 1e-12
TorchScheduler = torch.optim.lr_scheduler.LRScheduler


def torch_lrs(
    make: Callable[[torch.optim.Optimizer], TorchScheduler],
    steps: int,
    lr: float = 1.0,
    closed_form: bool = False,
) -> list[float]:
    """The learning rate torch uses at steps ``0..steps-1``."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr, momentum=0.9)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        if closed_form:
            lrs.append(scheduler._get_closed_form_lr()[0])  # type: ignore[attr-defined]
        else:
            lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()  # no gradient: only keeps torch's step-order check quiet
        scheduler.step()
    return lrs


def ours(schedule: Schedule, steps: int) -> list[float]:
    return [schedule(step) for step in range(steps)]


@pytest.mark.parametrize(
    ("lr", "step_size", "gamma"), [(0.1, 1, 0.9), (1.0, 7, 0.1), (3e-4, 30, 0.5)]
)
def test_step_decay_matches_step_lr(lr: float, step_size: int, gamma: float) -> None:
    steps = 10 * step_size + 5
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), steps, lr
    )
    np.testing.assert_allclose(
        ours(StepDecay(lr, step_size, gamma), steps), expected, rtol=RTOL
    )


@pytest.mark.parametrize(
    ("lr", "milestones", "gamma"),
    [(0.1, [1], 0.1), (1.0, [3, 10, 11, 40], 0.5), (2e-3, [25, 50, 75], 0.2)],
)
def test_multi_step_decay_matches_multi_step_lr(
    lr: float, milestones: list[int], gamma: float
) -> None:
    steps = milestones[-1] + 10
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma), steps, lr
    )
    np.testing.assert_allclose(
        ours(MultiStepDecay(lr, milestones, gamma), steps), expected, rtol=RTOL
    )


@pytest.mark.parametrize(("lr", "gamma"), [(0.1, 0.5), (1.0, 0.99), (3e-4, 0.999)])
def test_exponential_decay_matches_exponential_lr(lr: float, gamma: float) -> None:
    steps = 1000
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma), steps, lr
    )
    np.testing.assert_allclose(
        ours(ExponentialDecay(lr, gamma), steps), expected, rtol=RTOL
    )


COSINE = [(0.1, 1, 0.0), (1.0, 10, 0.0), (0.05, 100, 1e-4), (3e-4, 1000, 0.0)]


@pytest.mark.parametrize(("lr", "total", "min_lr"), COSINE)
def test_cosine_decay_matches_cosine_annealing_closed_form(
    lr: float, total: int, min_lr: float
) -> None:
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total, min_lr),
        total + 1,
        lr,
        closed_form=True,
    )
    schedule = CosineDecay(lr, total, min_lr=min_lr)
    assert ours(schedule, total + 1) == expected  # same operations, same bits


@pytest.mark.parametrize(("lr", "total", "min_lr"), COSINE)
def test_cosine_decay_matches_cosine_annealing_lr(
    lr: float, total: int, min_lr: float
) -> None:
    # torch's scheduler updates the rate recursively; it drifts from the closed
    # form by under 2e-14 (relative) over 10,000 steps
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total, min_lr),
        total + 1,
        lr,
    )
    schedule = CosineDecay(lr, total, min_lr=min_lr)
    np.testing.assert_allclose(ours(schedule, total + 1), expected, rtol=RTOL)


def test_cosine_decay_warm_up_then_torch_cosine() -> None:
    lr, total, warmup = 0.5, 40, 8
    schedule = CosineDecay(
        lr, total, warmup_steps=warmup, min_lr=1e-3, warmup_start_lr=0.1
    )
    np.testing.assert_allclose(
        ours(schedule, warmup + 1), np.linspace(0.1, lr, warmup + 1), rtol=RTOL
    )
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total - warmup, 1e-3),
        total - warmup + 1,
        lr,
        closed_form=True,
    )
    after = [schedule(step) for step in range(warmup, total + 1)]
    np.testing.assert_allclose(after, expected, rtol=RTOL)


def test_cosine_decay_warm_up_defaults_from_zero() -> None:
    schedule = CosineDecay(1.0, 10, warmup_steps=4)
    assert ours(schedule, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine_decay_holds_min_lr_after_total_steps(warmup: int) -> None:
    schedule = CosineDecay(0.1, 10, warmup_steps=warmup, min_lr=1e-3)
    assert schedule(10) == pytest.approx(1e-3, rel=RTOL)
    assert all(schedule(step) == 1e-3 for step in range(11, 40))
    assert schedule(10**9) == 1e-3


ONE_CYCLE_TOTALS = [1, 2, 3, 7, 10, 100, 1000]
ONE_CYCLE_PCTS = [0.05, 0.25, 0.3, 0.5, 0.9]
ONE_CYCLE = [
    (total, pct, anneal, three_phase)
    for total in ONE_CYCLE_TOTALS
    for pct in ONE_CYCLE_PCTS
    for anneal in ("cos", "linear")
    for three_phase in (False, True)
    # torch divides by zero when the warm-up ends exactly at step 0
    if pct * total != 1 and not (three_phase and pct > 0.5)
]


@pytest.mark.parametrize(("total", "pct", "anneal", "three_phase"), ONE_CYCLE)
@pytest.mark.parametrize(
    ("max_lr", "div", "final_div"), [(0.1, 25.0, 1e4), (2.0, 10.0, 100.0)]
)
def test_one_cycle_matches_one_cycle_lr(
    total: int,
    pct: float,
    anneal: str,
    three_phase: bool,
    max_lr: float,
    div: float,
    final_div: float,
) -> None:
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr,
            total_steps=total,
            pct_start=pct,
            anneal_strategy=anneal,  # type: ignore[arg-type]
            div_factor=div,
            final_div_factor=final_div,
            three_phase=three_phase,
        ),
        total,
    )
    schedule = OneCycle(max_lr, total, pct, div, final_div, anneal, three_phase)
    # torch's linear end point (min − initial)·1 + initial cancels the low
    # digits of min_lr (4e-07 comes out 3.99999999998e-07); ours is min_lr
    np.testing.assert_allclose(
        ours(schedule, total), expected, rtol=RTOL, atol=1e-15 * max_lr
    )


def test_one_cycle_peaks_at_max_lr_and_ends_at_min_lr() -> None:
    schedule = OneCycle(0.1, 100, pct_start=0.5)
    assert schedule(0) == pytest.approx(0.1 / 25, rel=RTOL)
    assert schedule(49) == 0.1  # the warm-up ends at 0.5·100 − 1
    assert max(ours(schedule, 100)) == 0.1
    # torch extrapolates one step past the end, then raises; this holds min_lr
    assert all(schedule(step) == 0.1 / 25 / 1e4 for step in range(99, 300))


def test_one_cycle_with_a_single_warm_up_step() -> None:
    # pct_start·total_steps == 1: torch raises ZeroDivisionError at step 0
    schedule = OneCycle(0.1, 10, pct_start=0.1)
    assert schedule(0) == 0.1
    assert 0.1 / 25 / 1e4 < schedule(1) < 0.1


EXAMPLES: list[Schedule] = [
    Constant(0.1),
    StepDecay(0.1, step_size=5),
    StepDecay(1.0, 3, gamma=0.5),
    MultiStepDecay(0.1, [3, 7, 20], gamma=0.3),
    ExponentialDecay(0.01, 0.95),
    CosineDecay(0.1, 30),
    CosineDecay(0.1, 30, warmup_steps=5, min_lr=1e-4, warmup_start_lr=1e-3),
    OneCycle(0.5, 30),
    OneCycle(0.5, 30, pct_start=0.25, anneal="linear", three_phase=True),
]


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_schedule_is_a_pure_function_of_the_step(schedule: Schedule) -> None:
    steps = list(range(70))
    in_order = [schedule(step) for step in steps]
    random.Random(0).shuffle(steps)
    shuffled = {step: schedule(step) for step in steps}
    assert [shuffled[step] for step in range(70)] == in_order
    assert [schedule(step) for step in range(70)] == in_order
    assert [schedule(np.int64(step)) for step in range(70)] == in_order
    assert all(type(lr) is float for lr in in_order)


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_config_round_trip(schedule: Schedule) -> None:
    description = json.loads(json.dumps(describe(schedule)))
    rebuilt = schedule_from_config(description)
    assert type(rebuilt) is type(schedule)
    assert describe(rebuilt) == describe(schedule)
    assert repr(rebuilt) == repr(schedule)
    assert ours(rebuilt, 70) == ours(schedule, 70)


def test_repr_lists_arguments_that_differ_from_defaults() -> None:
    assert repr(CosineDecay(0.1, 100)) == "CosineDecay(lr=0.1, total_steps=100)"
    assert repr(MultiStepDecay(0.1, [3, 7], gamma=0.5)) == (
        "MultiStepDecay(lr=0.1, milestones=[3, 7], gamma=0.5)"
    )
    assert repr(OneCycle(1.0, 10, anneal="linear")) == (
        "OneCycle(max_lr=1, total_steps=10, anneal='linear')"
    )


def test_schedule_from_config_rejects_unknown_types() -> None:
    with pytest.raises(ValueError, match="unknown schedule type 'Cyclic'"):
        schedule_from_config({"type": "Cyclic", "config": {}})
    with pytest.raises(ValueError, match="bad config for schedule Constant"):
        schedule_from_config({"type": "Constant", "config": {"learning_rate": 1}})


@pytest.mark.parametrize("step", [-1, 1.5, True, "3", None])
def test_bad_step_is_rejected(step: Any) -> None:
    with pytest.raises(ValueError, match="Constant: step must be an integer >= 0"):
        Constant(0.1)(step)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("total", [1, 2, 3, 50, 300])
def test_make_schedule_every_name(name: str, total: int) -> None:
    schedule = make_schedule(name, 0.1, total)
    lrs = ours(schedule, 2 * total + 1)
    assert all(math.isfinite(lr) and lr >= 0 for lr in lrs)
    assert max(lrs) <= 0.1 * (1 + RTOL)
    if total >= 50:  # short one-cycle runs end before reaching their peak
        assert max(lrs) == pytest.approx(0.1, rel=RTOL)


def test_make_schedule_choices() -> None:
    assert ours(make_schedule("constant", 0.1, 300), 300) == [0.1] * 300
    step = make_schedule("step", 0.1, 300)
    assert (step(99), step(100), step(299)) == pytest.approx((0.1, 0.01, 0.001))
    exponential = make_schedule("exponential", 0.1, 300)
    assert exponential(300) == pytest.approx(0.001, rel=1e-12)
    cosine = make_schedule("cosine", 0.1, 300)
    assert describe(cosine) == describe(CosineDecay(0.1, 300, warmup_steps=6))
    assert (cosine(0), cosine(6), cosine(300)) == (0.0, 0.1, 0.0)
    onecycle = make_schedule("onecycle", 0.1, 300)
    assert describe(onecycle) == describe(OneCycle(0.1, 300))


def test_make_schedule_rejects_unknown_names_and_bad_lengths() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'linear'; known sched"):
        make_schedule("linear", 0.1, 100)
    with pytest.raises(ValueError, match="make_schedule: total_steps must be a pos"):
        make_schedule("cosine", 0.1, 0)
    with pytest.raises(ValueError, match=r"Constant: invalid learning rate -0\.1"):
        make_schedule("constant", -0.1, 10)


BAD: list[tuple[Callable[[], Schedule], type[Exception], str]] = [
    (lambda: Constant(0.0), ValueError, r"Constant: invalid learning rate 0.0 \(must"),
    (lambda: Constant(math.inf), ValueError, "Constant: invalid learning rate inf"),
    (lambda: Constant(math.nan), ValueError, "Constant: invalid learning rate nan"),
    (
        lambda: Constant(cast(Any, "0.1")),
        TypeError,
        "Constant: learning rate must be a number",
    ),
    (lambda: StepDecay(0.1, 0), ValueError, "StepDecay: step_size must be a positive"),
    (
        lambda: StepDecay(0.1, cast(Any, 2.0)),
        ValueError,
        "StepDecay: step_size must be a pos",
    ),
    (lambda: StepDecay(0.1, 5, 0.0), ValueError, r"StepDecay: invalid gamma 0.0"),
    (lambda: StepDecay(0.1, 5, 1.5), ValueError, r"invalid gamma 1.5 \(must be in"),
    (lambda: ExponentialDecay(0.1, -0.5), ValueError, "ExponentialDecay: invalid gam"),
    (lambda: MultiStepDecay(0.1, []), ValueError, "milestones must be a non-empty"),
    (lambda: MultiStepDecay(0.1, [5, 5]), ValueError, "strictly increasing list"),
    (lambda: MultiStepDecay(0.1, [5, 3]), ValueError, r"got \[5, 3\]"),
    (lambda: MultiStepDecay(0.1, [0, 3]), ValueError, "milestone must be a positive"),
    (lambda: MultiStepDecay(0.1, cast(Any, 5)), TypeError, "milestones must be a list"),
    (lambda: CosineDecay(0.1, 0), ValueError, "CosineDecay: total_steps must be a pos"),
    (lambda: CosineDecay(0.1, 10, -1), ValueError, "warmup_steps must be an integer"),
    (
        lambda: CosineDecay(0.1, 10, warmup_steps=10),
        ValueError,
        r"warmup_steps \(10\) must be less than total_steps \(10\)",
    ),
    (lambda: CosineDecay(0.1, 10, min_lr=-1e-3), ValueError, "invalid min_lr -0.001"),
    (lambda: CosineDecay(0.1, 10, min_lr=0.2), ValueError, "must be <= lr 0.1"),
    (
        lambda: CosineDecay(0.1, 10, 2, warmup_start_lr=0.5),
        ValueError,
        "CosineDecay: invalid warmup_start_lr 0.5",
    ),
    (lambda: OneCycle(0.0, 10), ValueError, "OneCycle: invalid max_lr 0.0"),
    (lambda: OneCycle(0.1, 0), ValueError, "OneCycle: total_steps must be a positive"),
    (lambda: OneCycle(0.1, 10, 0.0), ValueError, r"invalid pct_start 0.0 \(must be in"),
    (lambda: OneCycle(0.1, 10, 1.0), ValueError, "OneCycle: invalid pct_start 1.0"),
    (lambda: OneCycle(0.1, 10, div_factor=0.5), ValueError, "invalid div_factor 0.5"),
    (
        lambda: OneCycle(0.1, 10, final_div_factor=0.0),
        ValueError,
        "OneCycle: invalid final_div_factor 0.0",
    ),
    (lambda: OneCycle(0.1, 10, anneal="exp"), ValueError, "anneal must be one of"),
    (
        lambda: OneCycle(0.1, 10, three_phase=cast(Any, 1)),
        TypeError,
        "three_phase must be True",
    ),
    (
        lambda: OneCycle(0.1, 10, pct_start=0.6, three_phase=True),
        ValueError,
        "three_phase=True needs pct_start <= 0.5, got 0.6",
    ),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD, ids=[b[2] for b in BAD])
def test_bad_hyperparameters_are_rejected(
    make: Callable[[], Schedule], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make()


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Schedule, int]:
    """A schedule with valid hyperparameters, and a length for it."""
    lr = draw(st.floats(1e-6, 10.0))
    total = draw(st.integers(1, 500))
    # decays bounded so that lr·gamma^k cannot underflow to 0 by step 2·total
    kind = draw(st.sampled_from(sorted(Schedule.registry)))
    schedule: Schedule
    if kind == "Constant":
        schedule = Constant(lr)
    elif kind == "StepDecay":
        step_size = draw(st.integers(max(1, total // 20), max(1, total)))
        schedule = StepDecay(lr, step_size, draw(st.floats(1e-3, 1.0)))
    elif kind == "MultiStepDecay":
        milestones = draw(st.lists(st.integers(1, 2 * total), min_size=1, max_size=20))
        gamma = draw(st.floats(1e-3, 1.0))
        schedule = MultiStepDecay(lr, sorted(set(milestones)), gamma)
    elif kind == "ExponentialDecay":
        schedule = ExponentialDecay(lr, draw(st.floats(0.5, 1.0)) ** (1 / total))
    elif kind == "CosineDecay":
        schedule = CosineDecay(
            lr,
            total,
            warmup_steps=draw(st.integers(0, total - 1)),
            min_lr=lr * draw(st.floats(1e-6, 1.0)),
            warmup_start_lr=lr * draw(st.floats(1e-6, 1.0)),
        )
    else:
        three_phase = draw(st.booleans())
        pct_max = 0.5 if three_phase else 0.99
        schedule = OneCycle(
            lr,
            total,
            pct_start=draw(st.floats(0.01, pct_max)),
            div_factor=draw(st.floats(1.0, 1e3)),
            final_div_factor=draw(st.floats(1.0, 1e4)),
            anneal=draw(st.sampled_from(["cos", "linear"])),
            three_phase=three_phase,
        )
    return schedule, total


@settings(deadline=None, max_examples=200, derandomize=True)
@given(schedules())
def test_every_schedule_gives_finite_positive_rates(
    case: tuple[Schedule, int],
) -> None:
    schedule, total = case
    for step in range(2 * total + 1):
        lr = schedule(step)
        assert type(lr) is float
        assert math.isfinite(lr)
        assert lr > 0, f"{schedule!r} gave {lr} at step {step}"

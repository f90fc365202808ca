"""Numerical gradient check: is every hand-written backward right?

Everything runs on a float64 copy of the model, layer or loss. For each
parameter and for the input, the analytic gradient from ``backward`` is
compared with central differences ``(f(θ + ε) − f(θ − ε)) / 2ε`` of a scalar
objective ``f``: the compiled (or given) loss when targets are given, otherwise
``Σ r ⊙ output`` with a fixed random ``r`` (so every output is exercised).

Small tensors are checked element by element. Big ones get a random-direction
check, as Chainer's ``check_backward`` does: for random unit directions ``v`` the
directional derivative ``(f(θ + εv) − f(θ − εv)) / 2ε`` must equal ``⟨∇f, v⟩``;
plus central differences on the coordinates with the largest gradients and on a
random sample of the others.

The step is ``eps`` times the tensor's root-mean-square value (at least
``eps``), so inputs on a 0-255 scale are perturbed as much, relatively, as
weights near 1. Each difference is taken with steps ``ε`` and ``ε/2``; where they
disagree a kink (ReLU at 0) lies inside the step, and that value is skipped and
counted instead of being reported as a wrong gradient. The reported error is
``‖a − n‖ / max(‖a‖, ‖n‖, floor)`` over the
checked values (``a`` analytic, ``n`` numerical).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.layers.base import Layer
from chainrule.losses.base import Loss
from chainrule.model.sequential import Sequential
from chainrule.parameter import Parameter
from chainrule.types import Array

#: gradients whose norm is below this are compared in absolute terms
FLOOR = 1e-10


@dataclass
class GradCheckResult:
    """The check of one tensor (a parameter, or ``input``)."""

    name: str
    shape: tuple[int, ...]
    method: str
    checked: int
    error: float
    gradient_norm: float
    skipped: int = 0

    def passed(self, tolerance: float) -> bool:
        return bool(self.error <= tolerance)


@dataclass
class GradCheckReport:
    """Per-tensor relative errors; ``passed`` when all are within ``tolerance``."""

    results: list[GradCheckResult] = field(default_factory=list)
    tolerance: float = 1e-6

    @property
    def passed(self) -> bool:
        return all(r.passed(self.tolerance) for r in self.results)

    @property
    def max_error(self) -> float:
        return max((r.error for r in self.results), default=0.0)

    def __getitem__(self, name: str) -> GradCheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def format(self) -> str:
        """A table: one row per tensor, then the verdict."""
        rows = [("tensor", "shape", "check", "|grad|", "rel. error", "")]
        for r in self.results:
            rows.append(
                (
                    r.name,
                    "x".join(map(str, r.shape)),
                    f"{r.method} ({r.checked}"
                    + (f", {r.skipped} at kinks skipped)" if r.skipped else ")"),
                    f"{r.gradient_norm:.3e}",
                    f"{r.error:.2e}",
                    "ok" if r.passed(self.tolerance) else "FAIL",
                )
            )
        widths = [max(len(row[c]) for row in rows) for c in range(6)]
        lines = [
            "  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        verdict = "passed" if self.passed else "FAILED"
        lines.append(
            f"gradient check {verdict}: max relative error {self.max_error:.2e} "
            f"(tolerance {self.tolerance:.0e}, float64 central differences)"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


Target = Layer | Sequential | Loss


def gradcheck(
    target: Target,
    x: object,
    y: object = None,
    *,
    loss: Loss | None = None,
    eps: float = 1e-5,
    tolerance: float = 1e-6,
    max_elements: int = 2000,
    directions: int = 8,
    samples: int = 64,
    seed: int = 0,
    check_input: bool = True,
) -> GradCheckReport:
    """Check the analytic gradients of ``target`` at input ``x``.

    Args:
        target: a layer, a :class:`Sequential` model, or a loss (then ``x`` are
            the logits and ``y`` the targets).
        x: a batch of inputs (any numeric dtype; converted to float64).
        y: targets; with them the objective is the loss (``loss``, or the
            model's compiled loss); without them, a random projection.
        eps: the central-difference step.
        tolerance: the largest relative error that passes.
        max_elements: tensors up to this size are checked element by element.
        directions, samples: for bigger tensors, how many random directions and
            how many sampled coordinates are checked.
        seed: seeds the projection and the random directions.
        check_input: also check ``dL/dx``.
    """
    if not isinstance(target, (Layer, Sequential, Loss)):
        raise TypeError(
            "gradcheck expects a Layer, Sequential or Loss, "
            f"got {type(target).__name__}"
        )
    rng = np.random.default_rng(seed)
    target = copy.deepcopy(target)
    with backend.precision("float64"):
        x64 = _prepare_input(target, x)
        objective, named = _objective(target, x64, y, loss, rng)
        report = GradCheckReport(tolerance=tolerance)
        analytic, dx = _analytic(objective, named)
        check = functools.partial(
            _check_tensor,
            objective=objective,
            eps=eps,
            max_elements=max_elements,
            directions=directions,
            samples=samples,
            rng=rng,
            tolerance=tolerance,
        )
        for (name, p), grad in zip(named, analytic, strict=True):
            report.results.append(check(name, p.data, grad))
        if check_input and dx is not None:
            report.results.append(check("input", x64, dx))
    return report


def _prepare_input(target: Target, x: object) -> Array:
    if isinstance(target, Sequential):
        target.astype(np.float64)
        return backend.xp().array(target._prepare(x), dtype=np.float64, order="C")
    arr = np.asarray(x)
    if arr.dtype.kind not in "uif":
        raise TypeError(f"gradcheck: x must be numeric, got dtype {arr.dtype}")
    # a private C-ordered copy: the check perturbs it in place
    x64 = backend.xp().array(arr, dtype=np.float64, order="C")
    if isinstance(target, Layer):
        if target.built:
            target.astype(np.float64)
        target.check_input(x64)
    return x64


Objective = Callable[[], tuple[float, Callable[[], Array | None]]]


def _objective(
    target: Target, x: Array, y: object, loss: Loss | None, rng: np.random.Generator
) -> tuple[Objective, list[tuple[str, Parameter]]]:
    """``objective() -> (value, backward)`` reading ``x`` and parameters live."""
    if isinstance(target, Loss):
        if y is None:
            raise ValueError("gradcheck of a loss needs targets y")
        targets = np.asarray(y)

        def loss_objective() -> tuple[float, Callable[[], Array | None]]:
            value, grad = target(x, targets)
            return value, lambda: grad

        return loss_objective, []

    loss = loss if loss is not None else getattr(target, "loss", None)
    y_arr = None if y is None else np.asarray(y)
    if y_arr is not None and loss is None:
        raise ValueError("gradcheck with targets y needs a loss (loss=... or compile)")
    # every evaluation must draw the same dropout masks: replay the generators
    replay: Callable[[], None]
    if isinstance(target, Sequential):
        rng_states = target.get_rng_states()
        replay = functools.partial(target.set_rng_states, rng_states)
    else:
        layer_state = target.get_rng_state()
        replay = (
            functools.partial(target.set_rng_state, layer_state)
            if layer_state is not None
            else lambda: None
        )
    out, _ = target.forward(x, True)
    projection = rng.standard_normal(out.shape) if y_arr is None else None

    def objective() -> tuple[float, Callable[[], Array | None]]:
        replay()
        out, backward = target.forward(x, True)
        if projection is not None:
            value, dout = float((out * projection).sum()), projection
        else:
            assert loss is not None and y_arr is not None
            value, dout = loss(out, y_arr)
        return value, lambda: backward(dout)

    return objective, target.named_parameters()


def _analytic(
    objective: Objective, named: list[tuple[str, Parameter]]
) -> tuple[list[Array], Array | None]:
    for _, p in named:
        p.zero_grad()
    _, backward = objective()
    dx = backward()
    return [p.grad.copy() for _, p in named], dx


def _check_tensor(
    name: str,
    values: Array,
    grad: Array,
    objective: Objective,
    eps: float,
    max_elements: int,
    directions: int,
    samples: int,
    rng: np.random.Generator,
    tolerance: float,
) -> GradCheckResult:
    """Compare ``grad`` with central differences of ``objective`` in ``values``."""
    flat_values = values.reshape(-1)
    if not np.shares_memory(flat_values, values):
        raise RuntimeError(f"gradcheck: {name} is not contiguous, cannot perturb it")
    flat_grad = grad.reshape(-1)
    # the step follows the tensor's magnitude (raw 0-255 pixels need a bigger one
    # than weights near 1 for the difference to rise above rounding noise)
    eps = eps * max(1.0, float(np.sqrt(np.mean(flat_values * flat_values))))
    scale = float(np.linalg.norm(flat_grad)) / np.sqrt(flat_grad.size)
    original = flat_values.copy()

    def f() -> float:
        return objective()[0]

    def derivative(set_offset: Callable[[float], None]) -> float:
        """Central difference, or NaN where a kink lies within the step.

        For a smooth function the differences with steps ``ε`` and ``ε/2`` agree
        to ``O(ε²)``; a kink (ReLU at 0, a max-pool tie) inside the window
        changes them by a similar amount, which is then reported as skipped
        rather than as a wrong gradient.
        """
        estimates = []
        for step in (eps, eps / 2):
            set_offset(step)
            plus = f()
            set_offset(-step)
            minus = f()
            estimates.append((plus - minus) / (2 * step))
        set_offset(0.0)
        wide, narrow = estimates
        if abs(wide - narrow) > 0.1 * tolerance * max(abs(wide), scale, FLOOR):
            return float("nan")
        return wide

    def coordinate(i: int) -> float:
        def set_offset(t: float) -> None:
            flat_values[i] = original[i] + t

        return derivative(set_offset)

    if flat_values.size <= max_elements:
        method, idx = "every element", np.arange(flat_values.size)
    else:
        method = "directions+sample"
        largest = np.argsort(-np.abs(flat_grad))[: samples // 2]
        others = rng.choice(
            flat_values.size, size=samples - largest.size, replace=False
        )
        idx = np.unique(np.concatenate([largest, others]))
    numeric = np.array([coordinate(int(i)) for i in idx])
    analytic = flat_grad[idx]

    if method == "directions+sample":
        along, measured = [], []
        for _ in range(directions):
            v = rng.standard_normal(flat_values.size)
            v /= np.linalg.norm(v)

            def set_offset(t: float, v: Any = v) -> None:
                flat_values[...] = original + t * v

            along.append(float(flat_grad @ v))
            measured.append(derivative(set_offset))
        analytic = np.concatenate([analytic, along])
        numeric = np.concatenate([numeric, measured])

    smooth = ~np.isnan(numeric)
    skipped = int((~smooth).sum())
    error = (
        _relative_error(analytic[smooth], numeric[smooth])
        if smooth.any()
        else float("inf")
    )
    return GradCheckResult(
        name,
        tuple(values.shape),
        method,
        int(smooth.sum()),
        error,
        float(np.linalg.norm(flat_grad)),
        skipped,
    )


def _relative_error(analytic: Any, numeric: Any) -> float:
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(n)), FLOOR)
    return float(np.linalg.norm(a - n) / scale)


__all__ = ["GradCheckReport", "GradCheckResult", "gradcheck"]

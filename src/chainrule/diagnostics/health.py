"""Training-health checks on one batch: norms, dead ReLUs, saturation, NaN/Inf.

:func:`check_health` probes a batch (:func:`~chainrule.diagnostics.probe`) and
measures, layer by layer:

- every parameter's norm ``‖θ‖``, its gradient's norm ``‖dθ‖`` on the batch and
  the ratio ``‖dθ‖/‖θ‖`` (how fast SGD moves it, relative to its size);
- for ``ReLU``: the fraction of **dead** units. A unit (a feature of ``(N, F)``,
  a channel of ``(N, C, H, W)``) is dead when its input is ``≤ 0`` for every
  value of the batch: it outputs 0 and passes no gradient back;
- for ``Sigmoid``/``Tanh``: the fraction of **saturated** units. A value is
  saturated when the activation's slope there is under ``saturated_slope``
  (4%) of its peak: ``4a(1 − a) < 0.04`` for a sigmoid (``a < 0.0101`` or
  ``a > 0.9899``, ``|z| > 4.59``), ``1 − y² < 0.04`` for tanh (``|y| > 0.98``,
  ``|z| > 2.29``). A unit is saturated when more than half of its values are;
- where NaN or Inf first appear: in a parameter, an output, a gradient, the loss.

Each problem past a threshold becomes a :class:`HealthWarning` with a fix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from chainrule import validate
from chainrule.diagnostics.probe import LayerProbe, NDArray, probe
from chainrule.layers.activations import ReLU, Sigmoid, Tanh
from chainrule.model.sequential import Sequential

#: a value is saturated where the slope is under this fraction of its peak
SATURATED_SLOPE = 0.04
#: warn when at least this fraction of a layer's units are saturated
SATURATED_WARN = 0.5
#: warn when at least this fraction of a ReLU layer's units are dead
DEAD_WARN = 0.25
#: warn when the first weights' ``‖dW‖/‖W‖`` is under this times the last's
VANISHING_WARN = 1e-3

#: the ``kind`` of each warning
KINDS = ("nonfinite", "saturated", "dead_relu", "vanishing_gradient")


@dataclass(frozen=True)
class HealthThresholds:
    """Where a measurement becomes a warning (the defaults are the module's)."""

    saturated_slope: float = SATURATED_SLOPE
    saturated: float = SATURATED_WARN
    dead: float = DEAD_WARN
    vanishing: float = VANISHING_WARN

    def __post_init__(self) -> None:
        for name in ("saturated_slope", "saturated", "dead", "vanishing"):
            value = validate.real("HealthThresholds", name, getattr(self, name))
            if not 0 < value <= 1:
                raise ValueError(
                    f"HealthThresholds: {name} must be a fraction in (0, 1], "
                    f"got {value!r}"
                )


@dataclass(frozen=True)
class ParamNorms:
    """One parameter's size and its gradient's on the batch (L2, all entries)."""

    name: str
    norm: float
    #: ``None`` when the batch had no targets (no backward pass)
    grad_norm: float | None = None

    @property
    def ratio(self) -> float | None:
        """``‖dθ‖/‖θ‖``; ``None`` without a gradient or for an all-zero ``θ``."""
        if self.grad_norm is None or self.norm == 0:
            return None
        return self.grad_norm / self.norm


@dataclass
class LayerHealth:
    """The measurements of one layer (``None``: does not apply to it)."""

    index: int
    layer: str
    params: list[ParamNorms] = field(default_factory=list)
    #: ReLU: fraction of units dead on the whole batch
    dead: float | None = None
    #: Sigmoid/Tanh: fraction of units saturated on most of the batch
    saturated: float | None = None
    #: Sigmoid/Tanh: fraction of all output values that are saturated
    saturated_values: float | None = None
    #: arrays with NaN or Inf: ``x``, ``y``, a parameter, ``dy``, ``dx``, ``dW``…
    nonfinite: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"layer {self.index} {self.layer}"

    @property
    def empty(self) -> bool:
        """Nothing measured (a Flatten, a Rescaling with finite values)."""
        return (
            not self.params
            and self.dead is None
            and self.saturated is None
            and not self.nonfinite
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "layer": self.layer,
            "params": {
                p.name: {
                    "norm": _json(p.norm),
                    "grad_norm": _json(p.grad_norm),
                    "ratio": _json(p.ratio),
                }
                for p in self.params
            },
            "dead": self.dead,
            "saturated": self.saturated,
            "saturated_values": self.saturated_values,
            "nonfinite": list(self.nonfinite),
        }


@dataclass(frozen=True)
class HealthWarning:
    """A problem found, where (a layer index, ``None``: the whole model) and a fix."""

    layer: int | None
    kind: str
    message: str
    fix: str

    def format(self) -> str:
        return f"{self.message}\n  fix: {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HealthReport:
    """What :func:`check_health` measured, one :class:`LayerHealth` a layer."""

    layers: list[LayerHealth]
    batch_size: int
    loss: float | None = None
    #: ``‖dW‖/‖W‖`` of the first weights over that of the last (``None``: n/a)
    gradient_spread: float | None = None
    warnings: list[HealthWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible (strict: NaN and Inf become ``None``)."""
        return {
            "batch_size": self.batch_size,
            "loss": _json(self.loss),
            "gradient_spread": _json(self.gradient_spread),
            "layers": [row.to_json() for row in self.layers if not row.empty],
            "warnings": [w.to_json() for w in self.warnings],
        }

    def format(self, warnings: bool = True) -> str:
        """A table of the layers with measurements, then (``warnings``) the
        warnings, or ``no warnings``."""
        loss = "" if self.loss is None else f", loss {self.loss:.4g}"
        lines = [f"health check on {self.batch_size} samples{loss}"]
        bad = any(row.nonfinite for row in self.layers)
        header = ["#", "layer", "param", "norm", "grad norm", "grad/norm", "dead"]
        rows = [[*header, "saturated", *["NaN/Inf"] * bad]]
        for row in self.layers:
            if row.empty:
                continue
            for j, p in enumerate(row.params or [None]):
                cells = [str(row.index), row.layer] if j == 0 else ["", ""]
                if p is None:
                    cells += ["", "", "", ""]
                else:
                    cells += [p.name, _number(p.norm), _number(p.grad_norm)]
                    cells.append(_number(p.ratio))
                if j == 0:
                    cells += [_percent(row.dead), _percent(row.saturated)]
                    cells += [", ".join(row.nonfinite)] * bad
                rows.append(cells + [""] * (len(rows[0]) - len(cells)))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        left = [name in ("layer", "param", "NaN/Inf") for name in rows[0]]
        for i, r in enumerate(rows):
            cells = [
                cell.ljust(w) if is_left else cell.rjust(w)
                for cell, w, is_left in zip(r, widths, left, strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
            if i == 0:
                lines.append("-" * len(lines[-1]))
        if self.gradient_spread is not None:
            lines.append(
                "gradient spread (grad/norm of the first W over that of the last): "
                f"{_number(self.gradient_spread)}"
            )
        if warnings:
            if not self.warnings:
                lines.append("no warnings")
            lines += [f"warning: {w.format()}" for w in self.warnings]
        return "\n".join(lines)


def check_health(
    model: Sequential,
    x: object,
    y: object | None = None,
    thresholds: HealthThresholds | None = None,
) -> HealthReport:
    """Probe one batch ``(x, y)`` and measure the model's training health.

    Without targets ``y`` only the forward pass is checked (no gradients). The
    model is left unchanged. A batch with NaN or Inf in ``x`` is not run: the
    report has a single warning saying so.
    """
    limits = thresholds if thresholds is not None else HealthThresholds()
    xs = np.asarray(x)
    if xs.dtype.kind == "f" and xs.size and not np.isfinite(xs).all():
        message = f"the input batch x has {_count_bad(xs)}"
        fix = "check the data and its preprocessing; remove or fill the bad values"
        return HealthReport(
            [], len(xs), warnings=[HealthWarning(None, "nonfinite", message, fix)]
        )
    with np.errstate(all="ignore"):  # NaN/Inf are measured, not warned about
        result = probe(model, xs, y)
        rows = [_measure(lp, limits.saturated_slope) for lp in result]
    report = HealthReport(rows, len(result.logits), loss=result.loss)
    spread = _gradient_spread(rows)
    report.gradient_spread = None if spread is None else spread[0]
    report.warnings = _nonfinite_warnings(report, result.layers)
    report.warnings += _activation_warnings(rows, result.layers, limits)
    if spread is not None and spread[0] < limits.vanishing:
        report.warnings.append(_vanishing_warning(*spread))
    return report


def dead_fraction(z: NDArray) -> float:
    """Fraction of units whose ReLU input ``z`` is ``≤ 0`` on the whole batch."""
    dead = (z <= 0).all(axis=_batch_axes(z))
    return float(np.mean(dead))


def saturated_fractions(
    y: NDArray, activation: str, slope: float = SATURATED_SLOPE
) -> tuple[float, float]:
    """``(units, values)``: the fractions of saturated units and of saturated values.

    ``activation`` is ``"sigmoid"`` or ``"tanh"`` and ``y`` its output. Both
    slopes are measured relative to their peak (``1/4`` at ``z = 0`` for the
    sigmoid, 1 for tanh): ``4a(1 − a)`` and ``1 − y²``, the same function since
    ``tanh(z) = 2σ(2z) − 1``.
    """
    if activation not in ("sigmoid", "tanh"):
        raise ValueError(f"activation must be 'sigmoid' or 'tanh', got {activation!r}")
    relative = 4 * y * (1 - y) if activation == "sigmoid" else 1 - y * y
    saturated = relative < slope
    per_unit = saturated.mean(axis=_batch_axes(y))
    return float(np.mean(per_unit > 0.5)), float(saturated.mean())


def _measure(lp: LayerProbe, slope: float) -> LayerHealth:
    row = LayerHealth(lp.index, repr(lp.layer))
    for name, value in lp.params.items():
        grad = lp.grads.get(name)
        row.params.append(
            ParamNorms(name, _norm(value), None if grad is None else _norm(grad))
        )
    if isinstance(lp.layer, ReLU):
        row.dead = dead_fraction(lp.input)
    elif isinstance(lp.layer, (Sigmoid, Tanh)):
        kind = "sigmoid" if isinstance(lp.layer, Sigmoid) else "tanh"
        row.saturated, row.saturated_values = saturated_fractions(
            lp.output, kind, slope
        )
    row.nonfinite = [name for name, arr in _arrays(lp) if not np.isfinite(arr).all()]
    return row


def _arrays(lp: LayerProbe) -> list[tuple[str, NDArray]]:
    """Everything the layer saw, with the house names: ``x, y, W, dy, dx, dW``."""
    arrays = [("x", lp.input), ("y", lp.output), *lp.params.items()]
    if lp.grad_output is not None:
        arrays.append(("dy", lp.grad_output))
    if lp.grad_input is not None:
        arrays.append(("dx", lp.grad_input))
    return arrays + [(f"d{name}", g) for name, g in lp.grads.items()]


def _gradient_spread(
    rows: list[LayerHealth],
) -> tuple[float, LayerHealth, LayerHealth] | None:
    """``‖dW‖/‖W‖`` of the first weights over the last's, and those two layers."""
    weighted = [
        (p.ratio, row)
        for row in rows
        for p in row.params
        if p.name == "W" and p.ratio is not None and np.isfinite(p.ratio)
    ]
    if len(weighted) < 2 or weighted[-1][0] == 0:
        return None
    (first, first_row), (last, last_row) = weighted[0], weighted[-1]
    return first / last, first_row, last_row


def _activation_warnings(
    rows: list[LayerHealth], probes: list[LayerProbe], limits: HealthThresholds
) -> list[HealthWarning]:
    found = []
    for row in rows:
        source = _source(row.index, probes)
        after = "the input" if source is None else f"layer {source.name}"
        if row.saturated is not None and row.saturated >= limits.saturated:
            message = (
                f"{row.name} after {after}: {_percent(row.saturated)} of units "
                f"saturated ({_percent(row.saturated_values)} of its outputs sit "
                f"where the slope is under {limits.saturated_slope:.0%} of its "
                "peak), so little gradient flows back through them"
            )
            if source is not None and getattr(source.layer, "init", None) == "normal":
                fix = (
                    f"use init='glorot' in layer {source.index} (N(0, 1) weights "
                    "summed over many inputs make |z| large), or ReLU with "
                    "init='he'"
                )
            else:
                init = getattr(source.layer, "init", None) if source else None
                options = [
                    *(["use init='glorot'"] if init not in ("glorot", None) else []),
                    "lower the learning rate (large steps grow the weights)",
                    "add BatchNorm before the activation",
                    "scale the inputs (e.g. Rescaling(1/255))",
                ]
                fix = ", ".join(options[:-1]) + ", or " + options[-1]
            found.append(HealthWarning(row.index, "saturated", message, fix))
        if row.dead is not None and row.dead >= limits.dead:
            message = (
                f"{row.name} after {after}: {_percent(row.dead)} of units are dead "
                "(<= 0 on every sample of the batch), so they pass no gradient back"
            )
            fix = (
                "lower the learning rate, initialise the layer before it with "
                "init='he', or use LeakyReLU()"
            )
            found.append(HealthWarning(row.index, "dead_relu", message, fix))
    return found


def _vanishing_warning(
    spread: float, first: LayerHealth, last: LayerHealth
) -> HealthWarning:
    message = (
        f"gradients vanish: |dW|/|W| of {first.name} is {spread:.1e} times that "
        f"of {last.name}, so the first layers barely learn"
    )
    fix = (
        "use ReLU with init='he' (a sigmoid passes back at most 1/4 of the "
        "gradient per layer), init='glorot' for sigmoid/tanh, BatchNorm, or "
        "fewer layers"
    )
    return HealthWarning(first.index, "vanishing_gradient", message, fix)


def _nonfinite_warnings(
    report: HealthReport, probes: list[LayerProbe]
) -> list[HealthWarning]:
    """One warning where NaN/Inf first appear, not one per layer they reach."""
    fix = (
        "lower the learning rate, clip gradients (e.g. SGD(lr, clip_norm=1.0)), "
        "and check the inputs for bad values and their scale"
    )
    found = []
    for row, lp in zip(report.layers, probes, strict=True):
        bad = set(row.nonfinite)
        params, grads = set(lp.params), {f"d{n}" for n in lp.grads}
        # a forward origin: bad weights, or a bad output from a good input
        origin = bad & (params if "x" in bad else params | {"y"})
        if "dy" not in bad:  # a backward origin: bad gradients from a good dy
            origin |= bad & ({"dx"} | grads)
        if origin:
            arrays = dict(_arrays(lp))
            names = [n for n in row.nonfinite if n in origin]
            names.sort(key=lambda n: n not in params)  # stable: W before y
            what = "; ".join(f"{n} has {_count_bad(arrays[n])}" for n in names)
            message = f"{row.name}: NaN/Inf first appear here ({what})"
            found.append(HealthWarning(row.index, "nonfinite", message, fix))
    loss = report.loss
    if not found and loss is not None and not np.isfinite(loss):
        message = f"the loss is {loss} on finite outputs"
        found.append(HealthWarning(None, "nonfinite", message, fix))
    return found


def _source(index: int, probes: list[LayerProbe]) -> LayerProbe | None:
    """The nearest layer before ``index`` with parameters: what feeds it."""
    for previous in reversed(probes[:index]):
        if previous.params:
            return previous
    return None


def _batch_axes(a: NDArray) -> tuple[int, ...]:
    """Every axis but the unit axis: 1, a feature of ``(N, F)``, a channel of images."""
    return (0, *range(2, a.ndim))


def _norm(a: NDArray) -> float:
    # float64 so that a float32 tensor of large values does not overflow to Inf
    return float(np.linalg.norm(a.astype(np.float64).ravel()))


def _count_bad(a: NDArray) -> str:
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    parts = [f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else ""]
    return " and ".join(p for p in parts if p)


def _json(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


__all__ = [
    "DEAD_WARN",
    "KINDS",
    "SATURATED_SLOPE",
    "SATURATED_WARN",
    "VANISHING_WARN",
    "HealthReport",
    "HealthThresholds",
    "HealthWarning",
    "LayerHealth",
    "ParamNorms",
    "check_health",
    "dead_fraction",
    "saturated_fractions",
]

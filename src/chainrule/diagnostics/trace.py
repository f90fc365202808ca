"""The backprop trace: one batch through a model, in the tutorial's notation.

``trace(model, x, y)`` names every tensor as the tutorial does (``x``,
``z1 = x · W1``, ``a1 = σ(z1)``, ..., ``δ3 = (a3 − y) / N``), asks each layer
for its own forward and backward step (:meth:`Layer.describe`), runs the batch
through a float64 copy of the model (:func:`probe`), and prints every step with
the shape and size of the tensor it makes. Each parameter gradient is then
compared with a numerical one (central differences, :func:`gradcheck`).

Naming. A layer that opens a level (``Dense``, ``Conv2D``) gets ``z`` and the
next level number; the layers after it share that level with their own
letter (``a`` activations, ``n`` batch norm, ``p`` pooling, ``f`` flatten,
``h`` dropout and others), primed when a letter repeats within a level. Layers
before the first level prepare the data: the last of them makes ``x``. The gradient
``dC/dz_l`` is written ``δl``, every other one ``dC/d<name>``. Where a
gradient is built from the one just before it, the trace also writes the two
steps as one (``δ2 = (δ3 · W3ᵀ) ⊙ a2(1 − a2)``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.diagnostics.probe import ProbeResult, probe
from chainrule.gradcheck import GradCheckReport, gradcheck
from chainrule.layers.notation import Symbols
from chainrule.model.sequential import Sequential

NDArray = np.ndarray[Any, Any]
#: the longest two-step formula the trace writes out (``δ2 = (δ3 · W3ᵀ) ⊙ ...``)
COMBINED_WIDTH = 48
#: the numerical check of each parameter gradient: every entry of tensors up to
#: this size, else this many entries (the largest and random ones) ...
CHECKED_ELEMENTS = 16
#: ... and this many random directional derivatives
CHECKED_DIRECTIONS = 4


@dataclass
class TraceLine:
    """One equation of the trace and the tensor it produces."""

    equation: str
    value: NDArray | float | None = None
    #: the same right-hand side with the previous step substituted in
    combined: str | None = None
    #: for parameter gradients: relative error against central differences
    check_error: float | None = None
    #: the symbol the equation defines (``"δ2"``, ``"dC/dW3"``)
    symbol: str = ""

    def shape(self) -> str:
        """``(32, 64)``, or ``""`` for a number or no value."""
        if isinstance(self.value, np.ndarray):
            return str(tuple(self.value.shape))
        return ""

    def summary(self, gradient: bool) -> str:
        """The value's size: ``‖·‖ 1.2e-01  max|·| 3e-02`` for a gradient, else
        mean, spread and range; a number as ``= 2.31``."""
        value = self.value
        if value is None:
            return ""
        if isinstance(value, float):
            return f"= {value:.6g}"
        v = np.asarray(value, dtype=np.float64)
        if v.size == 0:
            return ""
        if not np.isfinite(v).all():
            return "contains NaN/Inf"
        if gradient:
            norm = np.sqrt((v * v).sum())
            return f"‖·‖ {norm:.3e}  max|·| {np.abs(v).max():.3e}"
        return (
            f"mean {v.mean():.3g}  std {v.std():.3g}  "
            f"range [{v.min():.3g}, {v.max():.3g}]"
        )


@dataclass
class BackpropTrace:
    """The forward and backward steps of one batch, and the gradient check."""

    forward: list[TraceLine] = field(default_factory=list)
    backward: list[TraceLine] = field(default_factory=list)
    #: parameter symbol (``"W1"``) -> the model's parameter name (``"layers.2.W"``)
    parameters: dict[str, str] = field(default_factory=dict)
    check: GradCheckReport | None = None
    result: ProbeResult | None = None

    @property
    def passed(self) -> bool:
        """Every parameter gradient agrees with its numerical estimate."""
        return self.check is None or self.check.passed

    def line(self, symbol: str) -> TraceLine:
        """The line that defines ``symbol`` (``"δ2"``, ``"dC/dW1"``, ``"a1"``)."""
        for item in [*self.forward, *self.backward]:
            if item.symbol == symbol:
                return item
        raise KeyError(symbol)

    def format(self) -> str:
        """The trace as text: equation, shape, size (and the check) per line."""
        items = [*self.forward, *self.backward]
        width = min(max(len(item.equation) for item in items), 72)
        shape_width = max(len(item.shape()) for item in items)

        def row(item: TraceLine, gradient: bool) -> str:
            text = (
                f"  {item.equation:<{width}}  {item.shape():<{shape_width}}  "
                f"{item.summary(gradient)}"
            ).rstrip()
            if item.check_error is not None and self.check is not None:
                ok = "ok" if item.check_error <= self.check.tolerance else "FAIL"
                text += f"  numerical: rel. error {item.check_error:.1e} {ok}"
            return text

        out = ["forward"]
        out += [row(item, False) for item in self.forward]
        out += ["", "backward (C is the loss; each line is one step of the chain rule)"]
        for item in self.backward:
            out.append(row(item, True))
            if item.combined:
                out.append(f"  {' ' * len(item.symbol)} = {item.combined}")
        if self.check is not None:
            verdict = "agree with" if self.check.passed else "DISAGREE with"
            out += [
                "",
                f"all {len(self.parameters)} parameter gradients {verdict} central "
                f"differences (max relative error {self.check.max_error:.1e}, "
                f"tolerance {self.check.tolerance:.0e}, float64)",
            ]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def _symbols(model: Sequential) -> tuple[list[Symbols], int, int]:
    """Each layer's :class:`Symbols`; the last level; where backward stops.

    Backward stops at the first layer with parameters (or the first level):
    below it is the data, which needs no gradient.
    """
    layers = model.layers
    first = next((i for i, layer in enumerate(layers) if layer.starts_level), None)
    if first is None:
        raise ValueError(
            "trace: the model has no Dense or Conv2D layer, so there is nothing "
            "to backpropagate to"
        )
    stop = min(first, model.first_trainable_index)
    previous = "x" if first == 0 else "input"
    used: set[str] = {previous}
    used_params: set[str] = set()
    symbols: list[Symbols] = []
    level = 0
    for i, layer in enumerate(layers):
        if layer.starts_level:
            level += 1
        name = (
            "x"
            if i == first - 1
            else layer.trace_letter + (str(level) if level else "")
        )
        while name in used:
            name += "′"
        used.add(name)
        suffix = str(level)
        while True:  # W1 of a second layer in level 1 becomes W1′
            s = Symbols(previous, name, _grad_name(previous), _grad_name(name), suffix)
            params = {psym for psym, _ in layer.describe(s).params.values()}
            if not params & used_params:
                break
            suffix += "′"
        used_params |= params
        symbols.append(s)
        previous = name
    return symbols, level, stop


def _grad_name(symbol: str) -> str:
    """``δ2`` for ``z2``, ``dC/da2`` for anything else."""
    if symbol.startswith("z") and symbol[1:2].isdigit():
        return "δ" + symbol[1:]
    return "dC/d" + symbol


def trace(
    model: Sequential,
    x: object,
    y: object,
    *,
    check: bool = True,
    tolerance: float = 1e-6,
    seed: int = 0,
) -> BackpropTrace:
    """Trace one batch ``(x, y)`` through ``model`` (a compiled ``Sequential``).

    The model itself is not changed: the trace runs on a float64 copy.
    ``check`` compares each parameter gradient with central differences.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"trace expects a Sequential model, got {type(model).__name__}")
    loss = model._require_loss("trace")
    m = copy.deepcopy(model)
    with backend.precision("float64"):
        m.astype(np.float64)
        result = probe(m, x, y)
    symbols, last_level, stop = _symbols(m)
    out = BackpropTrace(result=result)
    batch = symbols[0].x
    out.forward.append(
        TraceLine(f"{batch} = the batch", result.layers[0].input, symbol=batch)
    )
    for record, s in zip(result.layers, symbols, strict=True):
        step = record.layer.describe(s)
        out.forward.append(TraceLine(step.forward, record.output, symbol=s.y))
    # the loss, on the last layer's output
    z = symbols[-1].y
    a = f"a{last_level}"
    while a in {s.y for s in symbols} or a == batch:
        a += "′"
    loss_lines, loss_grad = loss.describe(z, a)
    probs = backend.to_numpy(loss.activation(backend.xp().asarray(result.logits)))
    for text in loss_lines:
        if text.startswith(f"{a} ="):
            out.forward.append(TraceLine(text, probs, symbol=a))
        elif text.startswith("C ="):
            out.forward.append(TraceLine(text, result.loss, symbol="C"))
        else:
            out.forward.append(TraceLine(text))
    dz = _grad_name(z)
    out.backward.append(TraceLine(f"{dz} = {loss_grad}", result.grad_logits, symbol=dz))
    # backward, last layer first, down to the first level's parameters
    expressions: dict[str, str] = {}
    for record, s in zip(reversed(result.layers), reversed(symbols), strict=True):
        step = record.layer.describe(s)
        for pname, (psym, rhs) in step.params.items():
            out.parameters[psym] = f"layers.{record.index}.{pname}"
            gsym = f"dC/d{psym}"
            out.backward.append(
                TraceLine(f"{gsym} = {rhs}", record.grads[pname], symbol=gsym)
            )
        if record.index == stop:
            break  # below the first level is the data: no gradient needed
        combined = None
        if s.dy in expressions and not s.dy.startswith("δ"):
            inner = f"({expressions[s.dy]})"
            combined = step.backward.replace(f"({s.dy})", inner).replace(s.dy, inner)
            if len(combined) > COMBINED_WIDTH:  # too long to help a reader
                combined = None
        expressions[s.dx] = step.backward
        out.backward.append(
            TraceLine(
                f"{s.dx} = {step.backward}",
                record.grad_input,
                combined=combined,
                symbol=s.dx,
            )
        )
    if check:
        # a sample of each gradient, not every entry: the trace is for reading,
        # ``chainrule gradcheck`` is the thorough check
        report = gradcheck(
            m,
            x,
            y,
            tolerance=tolerance,
            seed=seed,
            check_input=False,
            max_elements=CHECKED_ELEMENTS,
            directions=CHECKED_DIRECTIONS,
            samples=CHECKED_ELEMENTS,
        )
        out.check = report
        by_name = {r.name: r for r in report.results}
        for item in out.backward:
            psym = item.symbol.removeprefix("dC/d")
            if psym in out.parameters:
                item.check_error = by_name[out.parameters[psym]].error
    return out


__all__ = ["BackpropTrace", "TraceLine", "trace"]

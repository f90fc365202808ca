"""How a layer writes its step of backpropagation in the tutorial's notation.

The backprop trace (``chainrule trace``) names every tensor the way the
tutorial does (``x``, ``z1 = x·W1``, ``a1 = σ(z1)``, ``δ3 = a3 − y``) and asks
each layer to write its own forward and backward step with those names, so a
new layer traces as soon as it says what it computes. :class:`Symbols` are the
names a layer is given; :class:`Step` is what it answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Symbols:
    """The names of one layer's tensors in a trace.

    ``x`` and ``y`` name the input and output (``a1``, ``z2``), ``dx`` and
    ``dy`` their gradients ``dC/dx`` and ``dC/dy`` (``δ2`` for ``dC/dz2``), and
    ``level`` numbers the layer's parameters: ``W2`` belongs to level 2 (a
    second layer of level 2 with a ``W`` gets level ``"2′"``).
    """

    x: str
    y: str
    dx: str
    dy: str
    level: str

    def param(self, base: str) -> str:
        """A parameter's name at this level: ``param("W")`` is ``"W2"``."""
        return f"{base}{self.level}"


@dataclass(frozen=True)
class Step:
    """One layer's forward equation and backward formulas.

    ``forward`` is the whole equation (``"z2 = a1 · W2"``); ``backward`` the
    right-hand side of ``dC/dx`` in terms of ``dy`` (``"δ2 · W2ᵀ"``); ``params``
    maps each parameter to its symbol and the right-hand side of its gradient
    (``{"W": ("W2", "a1ᵀ · δ2")}``).
    """

    forward: str
    backward: str
    params: dict[str, tuple[str, str]] = field(default_factory=dict)


__all__ = ["Step", "Symbols"]

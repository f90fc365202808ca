"""Weight initialisers, chosen by name so that a model file can record them.

Each takes ``(shape, fan_in, fan_out, rng)`` and returns a float64 NumPy array;
the layer casts it to the training dtype and moves it to the array module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.parameter import Parameter
from chainrule.types import Shape

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Initializer = Callable[[Shape, int, int, np.random.Generator], FloatArray]


def normal(
    shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """N(0, 1): the tutorial's initialisation (it saturates sigmoids; see docs)."""
    return rng.standard_normal(shape)


def glorot_uniform(
    shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """U(-a, a) with ``a = sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def glorot_normal(
    shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """N(0, 2 / (fan_in + fan_out))."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))


def he_normal(
    shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """N(0, 2 / fan_in) (He et al. 2015), for ReLU networks."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def he_uniform(
    shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """U(-a, a) with ``a = sqrt(6 / fan_in)``."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, shape)


def zeros(
    shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """All zeros (the usual choice for biases)."""
    return np.zeros(shape)


#: Names accepted by ``init=``: ``glorot`` is Keras' default, ``he`` is for ReLU.
INITIALIZERS: dict[str, Initializer] = {
    "normal": normal,
    "glorot": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he": he_normal,
    "he_uniform": he_uniform,
    "zeros": zeros,
}


def check_initializer(name: object, owner: str, argument: str = "init") -> str:
    """Return ``name`` if it names an initialiser, else raise naming the argument."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"{owner}: {argument} must be one of {', '.join(INITIALIZERS)}, "
            f"got {name!r}"
        )
    return name


def initialize(
    name: str, shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator
) -> FloatArray:
    """Draw an array of ``shape`` with the named initialiser."""
    return INITIALIZERS[name](shape, fan_in, fan_out, rng)


def weight_and_bias(
    init: str,
    bias_init: str,
    shapes: dict[str, Shape],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
) -> tuple[Parameter, Parameter | None]:
    """``W`` drawn with ``init`` and, if ``shapes`` has a ``b``, ``b`` with
    ``bias_init``, as parameters in the default dtype (``W`` is drawn first)."""
    W = Parameter(
        backend.asarray(initialize(init, shapes["W"], fan_in, fan_out, rng)), "W"
    )
    if "b" not in shapes:
        return W, None
    b = initialize(bias_init, shapes["b"], fan_in, fan_out, rng)
    return W, Parameter(backend.asarray(b), "b")


__all__ = ["INITIALIZERS", "check_initializer", "initialize", "weight_and_bias"]

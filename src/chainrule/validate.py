"""Checks for hyperparameters and arguments, each raising an error that names them.

Python and NumPy numbers are both accepted (``np.int64(64)`` is a fine number of
units) and returned as plain Python values, so configs stay JSON-serialisable.
Booleans are not numbers here: ``Dense(True)`` is a mistake, not one unit.
"""

from __future__ import annotations

import math
import numbers


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(owner: str, name: str, value: object, *, low: int = 1) -> int:
    """``value`` as an int ``>= low`` (``ValueError`` otherwise, naming it)."""
    if not _is_int(value) or int(value) < low:  # type: ignore[call-overload]
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{owner}: {name} must be {kind}, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def pair(owner: str, name: str, value: object, *, low: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each ``>= low``, as ``(height, width)``."""
    given = value
    if _is_int(value):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_is_int(v) and int(v) >= low for v in value)
    ):
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(
            f"{owner}: {name} must be {kind} or a pair of them, got {given!r}"
        )
    return int(value[0]), int(value[1])


def compact_pair(pair: tuple[int, int]) -> int | list[int]:
    """The inverse of :func:`pair` for configs: ``k`` for ``(k, k)``, else a list."""
    return pair[0] if pair[0] == pair[1] else list(pair)


def real(
    owner: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    strict: bool = False,
) -> float:
    """``value`` as a finite float; ``>= low`` (``> low`` when ``strict``)."""
    if not _is_real(value):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{owner}: invalid {name} {number!r} (must be finite)")
    if low is not None and (number < low or (strict and number == low)):
        raise ValueError(
            f"{owner}: invalid {name} {number!r} "
            f"(must be {'>' if strict else '>='} {low:g})"
        )
    return number


def boolean(owner: str, name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def seed(owner: str, value: object) -> int | None:
    """A seed for ``numpy.random.default_rng``: ``None`` or an int ``>= 0``."""
    if value is None:
        return None
    return integer(owner, "seed", value, low=0)


__all__ = ["boolean", "compact_pair", "integer", "pair", "real", "seed"]

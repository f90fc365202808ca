"""The optimizer contract: ``optimizer.step(parameters)`` updates ``data`` in place.

Optimizers see parameters only, never layers. Per-parameter state (momentum
buffers, ...) lives in the optimizer, in a list aligned with the parameter list
it is stepped with; :meth:`Optimizer.state_dict` and
:meth:`Optimizer.load_state_dict` copy it out and back with the config and the
step count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from chainrule import backend, validate
from chainrule.config import format_call, from_config
from chainrule.parameter import Parameter
from chainrule.types import Array

#: added to the gradient norm before dividing by it, as ``clip_grad_norm_``
CLIP_EPS = 1e-6


class Optimizer:
    """Base class: validates ``lr`` and ``clip_norm``, keeps per-parameter state.

    Subclasses implement :meth:`update` and :meth:`get_config`, whose keys must
    be the constructor's arguments *and* the attributes that hold them (so
    :meth:`load_state_dict` can restore them). ``lr`` is read at every step: a
    learning-rate schedule may assign ``optimizer.lr`` between steps.

    With ``clip_norm``, every step first scales all gradients (in place, as
    ``torch.nn.utils.clip_grad_norm_``) so their global L2 norm is at most
    ``clip_norm``: see :func:`clip_grad_norm`.
    """

    registry: ClassVar[dict[str, type[Optimizer]]] = {}
    #: the names of the per-parameter state arrays this optimizer keeps
    state_keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Optimizer.registry[cls.__name__] = cls

    def __init__(self, lr: float, *, clip_norm: float | None = None) -> None:
        name = type(self).__name__
        self.lr = validate.real(name, "learning rate", lr, low=0.0)
        self.clip_norm = (
            None
            if clip_norm is None
            else validate.real(name, "clip_norm", clip_norm, low=0.0, strict=True)
        )
        self.state: list[dict[str, Any]] = []
        self.iterations = 0
        # work arrays shared by all parameters, one flat array per (slot, dtype);
        # never saved, so they stay out of ``state``
        self._work: dict[tuple[int, str], Array] = {}
        # state from load_state_dict not yet checked against the parameters
        self._loaded = False

    def step(self, parameters: Sequence[Parameter]) -> None:
        """Apply one update to every parameter from its ``.grad``."""
        name = type(self).__name__
        if not self.state:
            self.state = [{} for _ in parameters]
        elif len(self.state) != len(parameters):
            before = (
                f"has loaded state for {len(self.state)} parameters"
                if self._loaded
                else f"was stepped with {len(self.state)} parameters before"
            )
            raise ValueError(
                f"{name} {before}, now with {len(parameters)}; "
                "use one optimizer per model"
            )
        if self._loaded:
            self._check_loaded_state(parameters)
        if self.clip_norm is not None:
            clip_grad_norm(parameters, self.clip_norm)
        for p, state in zip(parameters, self.state, strict=True):
            self.update(p, state)
        self.iterations += 1

    def update(self, p: Parameter, state: dict[str, Any]) -> None:
        """Update one parameter in place."""
        raise NotImplementedError

    def work_array(self, like: Array, slot: int = 0) -> Array:
        """A scratch array shaped like ``like``, reused across parameters and steps.

        Different ``slot`` numbers give arrays that do not overlap. The contents
        are garbage until written.
        """
        key = (slot, like.dtype.str)
        flat = self._work.get(key)
        if flat is None or flat.size < like.size:
            flat = self._work[key] = backend.xp().empty(like.size, like.dtype)
        return flat[: like.size].reshape(like.shape)  # (size,) -> like.shape, a view

    @staticmethod
    def state_arrays(
        state: dict[str, Any], like: Array, keys: Sequence[str]
    ) -> list[Array]:
        """The state arrays named ``keys``, created as zeros shaped like ``like``."""
        arrays = []
        for key in keys:
            array = state.get(key)
            if array is None:
                array = state[key] = backend.xp().zeros_like(like)
            arrays.append(array)
        return arrays

    @staticmethod
    def zero_grad(parameters: Sequence[Parameter]) -> None:
        for p in parameters:
            p.zero_grad()

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr, "clip_norm": self.clip_norm}

    # ------------------------------------------------------------ saved state
    def state_dict(self) -> dict[str, Any]:
        """``{"type", "config", "iterations", "state"}`` with copies of the arrays."""
        return {
            "type": type(self).__name__,
            "config": self.get_config(),
            "iterations": self.iterations,
            "state": [
                {key: value.copy() for key, value in state.items()}
                for state in self.state
            ],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore config (``lr`` included), step count and state from ``state_dict``.

        Everything is checked before anything changes. State may be loaded
        before the first step; the step then checks it against the parameters.
        """
        name = type(self).__name__
        owner = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{owner}: expected a dict, got {type(state_dict).__name__}"
            )
        missing = [
            k for k in ("type", "config", "iterations", "state") if k not in state_dict
        ]
        if missing:
            raise ValueError(f"{owner}: missing entries {missing}")
        if state_dict["type"] != name:
            raise ValueError(
                f"{owner}: the state is for {state_dict['type']!r}, not {name!r}"
            )
        config = state_dict["config"]
        if not isinstance(config, Mapping):
            raise ValueError(f"{owner}: config must be a dict, got {config!r}")
        try:
            checked = type(self)(**config)
        except TypeError as exc:
            raise ValueError(f"{owner}: bad config {dict(config)!r} ({exc})") from exc
        iterations = validate.integer(
            owner, "iterations", state_dict["iterations"], low=0
        )
        state = self._checked_state(owner, state_dict["state"])
        for key, value in checked.get_config().items():
            setattr(self, key, value)
        self.iterations = iterations
        self.state = state
        self._loaded = bool(state)

    def _checked_state(self, owner: str, entries: object) -> list[dict[str, Any]]:
        if not isinstance(entries, (list, tuple)):
            raise ValueError(
                f"{owner}: state must be a list with one dict per parameter, "
                f"got {type(entries).__name__}"
            )
        stepped = self.state and not self._loaded
        if stepped and entries and len(entries) != len(self.state):
            raise ValueError(
                f"{owner}: the state is for {len(entries)} parameters, this "
                f"optimizer was stepped with {len(self.state)}"
            )
        xp = backend.xp()
        state: list[dict[str, Any]] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ValueError(
                    f"{owner}: state of parameter {i} must be a dict, got {entry!r}"
                )
            unknown = sorted(str(k) for k in entry if k not in self.state_keys)
            if unknown:
                raise ValueError(
                    f"{owner}: unknown state {unknown} for parameter {i} "
                    f"(expected some of {list(self.state_keys)})"
                )
            arrays = {}
            for key, value in entry.items():
                array = xp.array(value)  # a copy: the caller keeps its arrays
                if array.dtype.kind != "f":
                    raise ValueError(
                        f"{owner}: state {key} of parameter {i} must be a float "
                        f"array, got dtype {array.dtype}"
                    )
                arrays[key] = array
            state.append(arrays)
        return state

    def _check_loaded_state(self, parameters: Sequence[Parameter]) -> None:
        """Shapes of loaded state against the parameters; cast to their dtype."""
        for i, (p, state) in enumerate(zip(parameters, self.state, strict=True)):
            for key, value in state.items():
                if value.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}: loaded state {key} of parameter {i} "
                        f"has shape {value.shape}, the parameter {p.shape}"
                    )
        for p, state in zip(parameters, self.state, strict=True):
            for key, value in state.items():
                state[key] = value.astype(p.dtype, copy=False)
        self._loaded = False

    def __repr__(self) -> str:
        return format_call(type(self).__name__, type(self).__init__, self.get_config())


def clip_grad_norm(parameters: Sequence[Parameter], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    With ``n = sqrt(Σ ‖g‖²)`` over every gradient: if ``c = max_norm / (n + 1e-6)``
    is below 1, every ``g ← c·g``. Returns ``n`` (before clipping), as
    ``torch.nn.utils.clip_grad_norm_``.
    """
    xp = backend.xp()
    norm = math.sqrt(sum(float(xp.vdot(p.grad, p.grad)) for p in parameters))
    coef = max_norm / (norm + CLIP_EPS)
    if coef < 1:
        for p in parameters:
            p.grad *= coef
    return norm


def fraction(owner: str, name: str, value: object) -> float:
    """``value`` as a float in ``[0, 1)`` (a decay rate such as ``beta1``)."""
    number = validate.real(owner, name, value, low=0.0)
    if number >= 1:
        raise ValueError(f"{owner}: invalid {name} {number!r} (must be < 1)")
    return number


def optimizer_from_config(description: object) -> Optimizer:
    """Rebuild an optimizer from ``{"type": name, "config": {...}}``."""
    return from_config(Optimizer.registry, "optimizer", description)


__all__ = ["Optimizer", "clip_grad_norm", "fraction", "optimizer_from_config"]

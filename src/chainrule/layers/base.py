"""The layer contract: ``y, backward = layer(x)``, then ``dx = backward(dy)``.

A layer's forward pass returns its own backward as a closure over exactly what
that forward computed, so there is no cache to go stale: a backward belongs to
the forward that made it. ``backward(dy)`` adds ``dL/dparam`` into each
parameter's ``.grad`` (``+=``) and returns ``dL/dx``.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np

from chainrule import backend
from chainrule.config import format_call, from_config
from chainrule.layers.notation import Step, Symbols
from chainrule.parameter import Parameter
from chainrule.types import Array, Backward, DTypeLike, Shape

#: the one layer whose current forward pass may write over its input, per thread
_permission = threading.local()


def no_backward(dy: Array) -> Array:
    """The backward of a forward run with ``training=False``: there is none."""
    raise RuntimeError(
        "this forward pass ran with training=False, which keeps nothing for "
        "backward; call the layer with training=True to get a usable backward"
    )


class Layer:
    """Base class of all layers.

    Subclasses implement :meth:`forward` and, if the output shape differs from
    the input's, :meth:`compute_output_shape`; layers with parameters create
    them in :meth:`build`. ``get_config`` returns the constructor arguments, so
    a layer can be rebuilt from its JSON description (:func:`layer_from_config`).
    """

    registry: ClassVar[dict[str, type[Layer]]] = {}
    #: the letter the backprop trace names this layer's output with (``a`` for
    #: ``a1 = σ(z1)``); layers that open a new level (Dense, Conv2D) say so
    trace_letter: ClassVar[str] = "h"
    starts_level: ClassVar[bool] = False
    #: whether the backward of the next forward pass must return ``dL/dx``.
    #: ``Sequential`` turns it off, for one forward call, on the first layer with
    #: parameters in a training step: its input is the data, whose gradient
    #: nobody needs, so ``Dense`` and ``Conv2D`` skip that matrix product and
    #: their backward returns ``None``. Every other call computes ``dx``.
    input_grad: bool = True

    @property
    def overwrite_input(self) -> bool:
        """Whether this forward pass, in this thread, may write over its input.

        ``Sequential`` turns it on, for one inference call, when the input is an
        array nobody else holds: the model's own converted copy of a batch or
        an earlier layer's output (inference keeps nothing for a backward).
        Layers whose output has the input's shape and dtype (``ReLU``,
        ``Rescaling``, ``BatchNorm``) then skip allocating it. Off in every
        other call. It is kept per thread, so threads running one model at
        once never see each other's permission. A layer must therefore never
        return an array it keeps (its parameters, a cached result): the next
        layer may write over it.
        """
        return getattr(_permission, "layer", None) is self

    @overwrite_input.setter
    def overwrite_input(self, allowed: bool) -> None:
        if allowed:
            _permission.layer = self
        elif getattr(_permission, "layer", None) is self:
            _permission.layer = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a private helper base (``_Pool2D``) is not a layer a file may name
        if not cls.__name__.startswith("_"):
            Layer.registry[cls.__name__] = cls

    def __init__(self) -> None:
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    # ----------------------------------------------------------------- building
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(
        self, input_shape: Shape, rng: np.random.Generator | None = None
    ) -> Shape:
        """Fix the input shape (without the batch axis), create parameters.

        Returns the output shape. Raises ``ValueError`` naming the layer when the
        input shape does not fit it. Building an already built layer for the same
        shape keeps its weights (so one layer can be shared by two models); for
        another shape it is an error.
        """
        input_shape = tuple(int(d) for d in input_shape)
        if self.built:
            if input_shape != self.input_shape:
                raise ValueError(
                    f"{self!r} is already built for input shape {self.input_shape}, "
                    f"not {input_shape} (is it used in another model?); "
                    "create a new layer"
                )
            return self.output_shape or ()
        output_shape = self.compute_output_shape(input_shape)
        self._create_parameters(
            input_shape, rng if rng is not None else np.random.default_rng()
        )
        self.input_shape, self.output_shape = input_shape, output_shape
        return output_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape for ``input_shape``; raise ``ValueError`` if it does not fit."""
        return input_shape

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """Name and shape of each parameter :meth:`build` would create."""
        return {}

    def buffer_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """Name and shape of each buffer :meth:`build` would create."""
        return {}

    def _create_parameters(self, input_shape: Shape, rng: np.random.Generator) -> None:
        """Create this layer's parameters (none by default)."""

    # ------------------------------------------------------------------ running
    def __call__(self, x: Array, training: bool = True) -> tuple[Array, Backward]:
        """Check ``x`` (building the layer on first use), then run :meth:`forward`."""
        self.check_input(x)
        return self.forward(x, training)

    def check_input(self, x: Array) -> None:
        """Raise a ``ValueError``/``TypeError`` naming this layer if ``x`` is wrong."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"{self!r} expected an array, got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError(f"{self!r} expected a batch (N, ...), got a scalar")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"{self!r} expected a float32 or float64 array, got dtype {x.dtype}"
            )
        if not self.built:
            with backend.precision(x.dtype):
                self.build(tuple(x.shape[1:]))
        params = self.parameters()
        if params and x.dtype != params[0].dtype:
            raise TypeError(
                f"{self!r} has {params[0].dtype} parameters but got {x.dtype} input; "
                "cast the input, or convert the layer with .astype()"
            )
        if tuple(x.shape[1:]) != self.input_shape:
            expected = ", ".join(["N", *map(str, self.input_shape or ())])
            raise ValueError(
                f"{self!r} expected input of shape ({expected}), "
                f"got shape {tuple(x.shape)}"
            )

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        """Compute ``y`` and the closure ``backward(dy) -> dx``."""
        raise NotImplementedError

    # --------------------------------------------------------------- parameters
    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs of this layer, in a fixed order."""
        return []

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> list[tuple[str, Array]]:
        """``(name, array)`` pairs of state that is saved but not trained.

        Batch norm's running statistics are buffers: a forward pass in training
        updates them in place, optimizers never see them, model files keep them.
        """
        return []

    def check_buffers(self) -> None:
        """Raise ``ValueError`` if loaded buffer values are impossible."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def apply_constraints(self) -> None:
        """Project parameters back onto their constraints after an update."""

    def get_rng_state(self) -> dict[str, Any] | None:
        """The state of this layer's random generator (``None``: it has none)."""
        return None

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore the generator state returned by :meth:`get_rng_state`."""
        raise ValueError(f"{self!r} has no random generator to restore")

    def astype(self, dtype: DTypeLike) -> None:
        """Convert every parameter to ``dtype`` (float32 or float64)."""
        dt = backend.as_float_dtype(dtype)
        for p in self.parameters():
            p.astype(dt)
        for name, value in self.named_buffers():
            setattr(self, name, value.astype(dt))

    # ------------------------------------------------------------------ tracing
    def describe(self, s: Symbols) -> Step:
        """This layer's forward and backward step in the trace's notation.

        Layers override it with their math; this generic form names the layer.
        """
        name = type(self).__name__
        return Step(
            forward=f"{s.y} = {name}({s.x})",
            backward=f"{name}.backward({s.dy})",
            params={
                n: (s.param(n), f"{name} gradient of {n}")
                for n, _ in self.named_parameters()
            },
        )

    # ------------------------------------------------------------ serialisation
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-compatible values."""
        return {}

    def __repr__(self) -> str:
        return format_call(type(self).__name__, type(self).__init__, self.get_config())


def layer_from_config(description: object) -> Layer:
    """Rebuild an unbuilt layer from ``{"type": name, "config": {...}}``."""
    return from_config(Layer.registry, "layer", description)


__all__ = ["Layer", "layer_from_config", "no_backward"]

"""``Sequential``: a stack of layers, trained with ``fit`` and used with ``predict``."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.layers.base import Layer
from chainrule.losses.base import Loss
from chainrule.model.callback import Callback
from chainrule.model.history import History
from chainrule.model.inputs import (
    as_input_array,
    as_target_array,
    batches,
    check_input_shape,
)
from chainrule.model.progress import check_verbose
from chainrule.model.totals import Totals
from chainrule.model.training import run_epochs
from chainrule.model.training_state import TrainingState
from chainrule.optim.base import Optimizer
from chainrule.parallel import map_chunks, workers
from chainrule.parameter import Parameter
from chainrule.types import Array, Backward, DTypeLike, Shape

#: numbers a sample in the widest layer output from which inference splits a
#: batch across the cores (see ``Sequential._infer``): 4096, where the MNIST
#: MLPs have at most 1,024 and the CNNs' first feature maps 18,432 or more
SPLIT_ACTIVATION = 4096


class Sequential:
    """Layers applied one after another; backward runs their closures in reverse.

    That reverse loop *is* the chain rule: ``dC/dW1 = dC/da3 · da3/dz3 · … ·
    dz1/dW1``, one factor per layer's backward.

    Args:
        layers: the layers, first to last. The last one outputs logits; the
            loss given to :meth:`compile` turns them into predictions.
        input_shape: shape of one sample, e.g. ``(28, 28)``; if omitted the model
            is built from the first batch it sees.
        seed: seeds the weight initialisation (``None``: fresh randomness).
        dtype: ``float32`` (default) or ``float64``.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        input_shape: Shape | None = None,
        seed: int | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, Sequence):
            raise TypeError(
                f"Sequential expected a list of layers, got {type(layers).__name__}"
            )
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: item {i} is not a Layer, got {type(layer).__name__}"
                )
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        seed = validate.seed("Sequential", seed)
        self.layers = list(layers)
        self.seed = seed
        self.dtype = backend.as_float_dtype(
            backend.default_dtype() if dtype is None else dtype
        )
        self.loss: Loss | None = None
        self.optimizer: Optimizer | None = None
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        #: set by a callback to end ``fit`` after the current step
        self.stop_training = False
        #: where the last ``fit`` stands (after each epoch); saved in checkpoints
        self.training_state: TrainingState | None = None
        #: the layers ``first_trainable_index`` was found for, and the index
        self._first_trainable: tuple[tuple[Layer, ...], int] | None = None
        if input_shape is not None:
            self.build(input_shape)

    # ----------------------------------------------------------------- building
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def build(self, input_shape: Sequence[int]) -> None:
        """Create every layer's parameters for samples of ``input_shape``."""
        if not isinstance(input_shape, Sequence) or not all(
            isinstance(d, (int, np.integer)) and d > 0 for d in input_shape
        ):
            raise ValueError(
                f"input_shape must be a tuple of positive integers, got {input_shape!r}"
            )
        shape: Shape = tuple(int(d) for d in input_shape)
        rng = np.random.default_rng(self.seed)
        with backend.precision(self.dtype):
            for i, layer in enumerate(self.layers):
                try:
                    shape = layer.build(shape, rng)
                except ValueError as exc:
                    raise ValueError(f"layer {i}: {exc}") from exc
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = shape

    def compile(self, loss: Loss, optimizer: Optimizer | None = None) -> Sequential:
        """Choose the loss (and the optimizer, needed by :meth:`fit`)."""
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a chainrule Loss, got {loss!r}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a chainrule Optimizer, got {optimizer!r}"
            )
        last = type(self.layers[-1]).__name__
        fused = {"CrossEntropy": "Softmax", "BinaryCrossEntropy": "Sigmoid"}
        if fused.get(type(loss).__name__) == last:
            raise ValueError(
                f"{type(loss).__name__} applies {last.lower()} to the logits itself; "
                f"remove the final {last}() layer (predict() still returns "
                "probabilities)"
            )
        self.loss, self.optimizer = loss, optimizer
        return self

    # --------------------------------------------------------------- parameters
    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``("layers.3.W", parameter)`` pairs, first layer first."""
        return [
            (f"layers.{i}.{name}", p)
            for i, layer in enumerate(self.layers)
            for name, p in layer.named_parameters()
        ]

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    @property
    def first_trainable_index(self) -> int:
        """Index of the first layer with parameters (``len(layers)`` if none).

        Below it the gradient reaches no parameter: a training step skips that
        layer's ``dL/dx`` (:meth:`forward` with ``input_grad=False``) and the
        backprop trace stops there. Layers have their parameters once built, so
        the index is cached only when every layer is built, together with the
        layers it was found for: a change to :attr:`layers` (a layer replaced,
        added or removed) makes it look again. :meth:`forward` asks once per
        training step; a cached answer costs one tuple comparison.
        """
        layers = tuple(self.layers)
        cached = self._first_trainable
        if cached is not None and cached[0] == layers:
            return cached[1]
        index = next(
            (i for i, layer in enumerate(layers) if layer.named_parameters()),
            len(layers),
        )
        if all(layer.built for layer in layers):
            self._first_trainable = (layers, index)
        return index

    def named_buffers(self) -> list[tuple[str, Array]]:
        """``("layers.2.running_mean", array)`` pairs: saved state, not trained."""
        return [
            (f"layers.{i}.{name}", value)
            for i, layer in enumerate(self.layers)
            for name, value in layer.named_buffers()
        ]

    def count_params(self) -> int:
        return sum(p.size for p in self.parameters())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def astype(self, dtype: DTypeLike) -> Sequential:
        """Convert every parameter (and optimizer state) to ``dtype``; returns self."""
        self.dtype = backend.as_float_dtype(dtype)
        for layer in self.layers:
            layer.astype(self.dtype)
        if self.optimizer is not None:
            for state in self.optimizer.state:
                for key, value in state.items():
                    state[key] = value.astype(self.dtype)
        return self

    # ------------------------------------------------------------------ running
    def forward(
        self,
        x: Array,
        training: bool = True,
        input_grad: bool = True,
        owns_input: bool = False,
    ) -> tuple[Array, Backward]:
        """Run every layer on a float batch; return logits and the model's backward.

        ``x`` must already have the model's dtype and input shape (use
        :meth:`__call__` for checked input). The backward returns ``dL/dx``;
        with ``input_grad=False`` (a training step) it stops at the first layer
        with parameters, which skips its own ``dL/dx`` too, and returns ``None``.

        In inference (``training=False``) a layer may write its output over an
        input nobody else holds (:attr:`Layer.overwrite_input`): any earlier
        layer's output that is not a view of ``x``, and ``x`` itself only with
        ``owns_input=True`` (the caller's own copy, which it gives up).
        """
        # the first layer with parameters: below it the gradient reaches nothing
        stop = 0 if input_grad else self.first_trainable_index
        steps: list[Backward] = []
        source = x
        for i, layer in enumerate(self.layers):
            layer.input_grad = i != stop or input_grad
            if not training:  # nothing is kept for a backward: outputs are free
                layer.overwrite_input = owns_input or not backend.may_share_memory(
                    x, source
                )
            try:
                x, layer_backward = layer.forward(x, training)
            finally:
                layer.input_grad = True
                layer.overwrite_input = False
            steps.append(layer_backward)

        def backward(dy: Array) -> Array | None:
            grad: Array | None = dy
            for layer_backward in reversed(steps[stop:]):
                assert grad is not None  # only the last one called may skip dx
                grad = layer_backward(grad)
            return grad

        return x, backward

    def __call__(self, x: object, training: bool = True) -> tuple[Array, Backward]:
        """Check and convert a batch, then :meth:`forward` it."""
        return self.forward(self._prepare(x), training)

    def _prepare(self, x: object, name: str = "x") -> Array:
        """Checked input as a float array of the model's dtype."""
        arr = as_input_array(x, name)
        self._check_shape(arr)
        return backend.asarray(arr, self.dtype)

    def _check_shape(self, x: np.ndarray[Any, Any]) -> Shape:
        """Build from ``x`` if needed, check its sample shape; return output shape."""
        if not self.built:
            self.build(x.shape[1:])
        check_input_shape(x, self.input_shape or (), "Sequential")
        return self.output_shape or ()

    def _require_loss(self, what: str) -> Loss:
        if self.loss is None:
            raise RuntimeError(
                f"{what} needs a loss: "
                "call model.compile(loss=..., optimizer=...) first"
            )
        return self.loss

    def predict_logits(self, x: object, batch_size: int = 1000) -> np.ndarray[Any, Any]:
        """Raw outputs of the last layer for every sample, as a NumPy array."""
        arr = as_input_array(x)
        batch_size = validate.integer("predict", "batch_size", batch_size)
        self._check_shape(arr)
        outputs = [
            backend.to_numpy(self._infer(arr[idx]))
            for idx in batches(len(arr), batch_size, None)
        ]
        return np.concatenate(outputs)

    def _infer(self, part: np.ndarray[Any, Any]) -> Array:
        """Logits of one checked batch of samples, in inference mode.

        A network with wide activations (feature maps of at least
        ``SPLIT_ACTIVATION`` numbers a sample: a CNN) spends most of a pass in
        elementwise work and copies, which NumPy runs on one core; its batch
        goes in one piece per core, side by side (:func:`map_chunks`; in
        inference a sample's logits do not depend on the others). A narrow one
        (an MLP) spends it in matrix products, which OpenBLAS already spreads.
        """
        count = min(workers(), len(part)) if self._wide() else 1
        if count <= 1:
            return self._infer_piece(part)
        bounds = np.linspace(0, len(part), count + 1).astype(int)
        pieces = [part[a:b] for a, b in itertools.pairwise(bounds)]
        return backend.xp().concatenate(map_chunks(self._infer_piece, pieces))

    def _wide(self) -> bool:
        """Whether some layer's output has ``SPLIT_ACTIVATION`` numbers a sample."""
        shapes = [layer.output_shape or () for layer in self.layers]
        return max(math.prod(shape) for shape in shapes) >= SPLIT_ACTIVATION

    def _infer_piece(self, part: np.ndarray[Any, Any]) -> Array:
        batch = backend.asarray(part, self.dtype)
        # a converted copy (uint8 pixels, another float type, a GPU copy) is
        # ours to write over; the caller's own float array is not
        owned = not backend.may_share_memory(batch, part)
        return self.forward(batch, False, owns_input=owned)[0]

    def predict(self, x: object, batch_size: int = 1000) -> np.ndarray[Any, Any]:
        """Predictions for every sample: probabilities for classification losses.

        The compiled loss decides: softmax for ``CrossEntropy``, sigmoid for
        ``BinaryCrossEntropy``, the raw outputs for ``MSE`` or no loss.
        """
        logits = self.predict_logits(x, batch_size)
        if self.loss is None:
            return logits
        return backend.to_numpy(self.loss.activation(backend.xp().asarray(logits)))

    def evaluate(
        self, x: object, y: object, batch_size: int = 1000
    ) -> dict[str, float]:
        """Loss and accuracy over ``(x, y)``, with the weights fixed.

        Returns ``{"loss": ..., "accuracy": ...}``; the loss is the compiled
        loss over the whole set (not an average of batch averages when the last
        batch is smaller). ``accuracy`` is there for outputs of shape ``(N, C)``.
        """
        loss = self._require_loss("evaluate")
        arr = as_input_array(x)
        target = as_target_array(y, len(arr))
        batch_size = validate.integer("evaluate", "batch_size", batch_size)
        output_shape = self._check_shape(arr)
        loss.check_targets(target, output_shape)
        totals = Totals(loss.reduction, output_shape)
        for idx in batches(len(arr), batch_size, None):
            logits = self._infer(arr[idx])
            yb = backend.xp().asarray(target[idx])
            value, _ = loss(logits, yb)
            totals.add(value, logits, yb)
        return totals.logs()

    # ----------------------------------------------------------------- training
    def train_step(self, x: Array, y: Array) -> tuple[float, Array]:
        """One SGD step on a prepared batch; returns the loss and the logits."""
        loss = self._require_loss("train_step")
        if self.optimizer is None:
            raise RuntimeError(
                "training needs an optimizer: model.compile(loss, optimizer)"
            )
        params = self.parameters()
        for p in params:
            p.zero_grad()
        logits, backward = self.forward(x, training=True, input_grad=False)
        value, dlogits = loss(logits, y)
        backward(dlogits)
        self.optimizer.step(params)
        for layer in self.layers:
            layer.apply_constraints()
        return value, logits

    def fit(
        self,
        x: object,
        y: object,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple[object, object] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        seed: int | None = None,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
        resume: bool = False,
        augment: Callable[[Any, np.random.Generator], Any] | None = None,
    ) -> History:
        """Train until epoch ``epochs`` in mini-batches of ``(x, y)``.

        ``x`` may stay uint8: each batch is converted to the model's dtype when
        it is drawn. ``validation_split`` holds out that fraction of ``(x, y)``,
        drawn at random with ``seed`` (which also seeds the shuffling).
        ``verbose``: ``"auto"`` shows a progress bar on a terminal and one line
        per epoch otherwise; ``0`` is silent; ``1`` bar; ``2`` lines.
        ``callbacks`` are called at each stage (see :class:`Callback`).

        ``resume=True`` continues the run recorded in ``model.training_state``
        (set after every epoch, and restored by ``load_model`` from a
        checkpoint): from the epoch after the last one done, with the same
        shuffling and dropout streams, so training 4 epochs and training 2,
        saving, loading and resuming to 4 give bit-identical weights. Pass the
        same data and ``epochs`` as the total.

        ``augment`` (a :class:`chainrule.augment.Augment`, or any
        ``f(x_batch, rng) -> x_batch`` keeping the shape) changes every training
        batch before the step; validation data is never augmented. Its
        generator is drawn from the shuffling one each epoch, so a seed
        reproduces the run and a resumed run continues it.
        """
        loss = self._require_loss("fit")
        if self.optimizer is None:
            raise RuntimeError("fit needs an optimizer: model.compile(loss, optimizer)")
        check_verbose(verbose)
        epochs = validate.integer("fit", "epochs", epochs)
        batch_size = validate.integer("fit", "batch_size", batch_size)
        validate.boolean("fit", "shuffle", shuffle)
        validate.boolean("fit", "resume", resume)
        if augment is not None and not callable(augment):
            raise TypeError(
                "fit: augment must be an Augment or a function (x_batch, rng) -> "
                f"x_batch, got {augment!r}"
            )
        seed = validate.seed("fit", seed)
        callbacks = list(callbacks or [])
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"fit: callbacks[{i}] is not a Callback, got {callback!r}"
                )
        state = self._resume_state(seed, epochs) if resume else None
        if state is not None:
            seed = state.seed
        elif seed is None:
            # a fresh seed, but a recorded one: a checkpoint can redraw the split
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        x_arr = as_input_array(x)
        y_arr = as_target_array(y, len(x_arr))
        rng = np.random.default_rng(seed)
        x_arr, y_arr, val = _split_validation(
            x_arr, y_arr, validation_data, validation_split, rng
        )
        output_shape = self._check_shape(x_arr)
        loss.check_targets(y_arr, output_shape)
        if val is not None:
            self._check_shape(val[0])
            loss.check_targets(val[1], output_shape)
        return run_epochs(
            self,
            (x_arr, y_arr),
            val,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            rng=rng,
            verbose=verbose,
            callbacks=callbacks,
            resume=state,
            augment=augment,
        )

    def _resume_state(self, seed: int | None, epochs: int) -> TrainingState:
        state = self.training_state
        if state is None:
            raise RuntimeError(
                "fit(resume=True) needs a training state: load a checkpoint "
                "written by ModelCheckpoint, or train first"
            )
        if seed is not None and seed != state.seed:
            raise ValueError(
                f"fit(resume=True): seed={seed} differs from the checkpoint's "
                f"seed={state.seed}, which chose the validation split"
            )
        if epochs < state.epoch:
            raise ValueError(
                f"fit(resume=True): epochs={epochs} is fewer than the "
                f"{state.epoch} already done; epochs counts the whole run"
            )
        return state

    # ------------------------------------------------------------- randomness
    def get_rng_states(self) -> dict[str, dict[str, Any]]:
        """The state of every layer's random generator, by ``layers.<i>``."""
        states = {}
        for i, layer in enumerate(self.layers):
            state = layer.get_rng_state()
            if state is not None:
                states[f"layers.{i}"] = state
        return states

    def set_rng_states(self, states: dict[str, dict[str, Any]]) -> None:
        """Restore what :meth:`get_rng_states` returned."""
        for key, state in states.items():
            prefix, _, index = key.partition(".")
            if (
                prefix != "layers"
                or not index.isdigit()
                or int(index) >= len(self.layers)
            ):
                raise ValueError(f"no layer {key!r} to restore a generator state to")
            try:
                self.layers[int(index)].set_rng_state(state)
            except (TypeError, KeyError) as exc:
                raise ValueError(f"bad generator state for {key}: {exc}") from exc

    # ------------------------------------------------------------------ display
    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print each layer with its output shape and parameter count."""
        if not self.built:
            raise RuntimeError(
                "summary needs the input shape: pass input_shape= to Sequential "
                "or call build(input_shape) first"
            )
        rows = [("#", "layer", "output shape", "params")]
        for i, layer in enumerate(self.layers):
            count = sum(p.size for p in layer.parameters())
            shape = "(N, " + ", ".join(map(str, layer.output_shape or ())) + ")"
            rows.append((str(i), repr(layer), shape, f"{count:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        rule = "-" * (sum(widths) + 6)
        print_fn(
            f"Sequential: input (N, {', '.join(map(str, self.input_shape or ()))}), "
            f"{self.dtype.name}"
        )
        print_fn(rule)
        for j, row in enumerate(rows):
            print_fn(
                f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  "
                f"{row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}"
            )
            if j == 0:
                print_fn(rule)
        print_fn(rule)
        print_fn(f"total parameters: {self.count_params():,}")
        buffered = sum(int(b.size) for _, b in self.named_buffers())
        if buffered:
            print_fn(f"buffers (saved, not trained): {buffered:,} values")
        if self.loss is not None:
            print_fn(f"loss: {self.loss!r}")
        if self.optimizer is not None:
            print_fn(f"optimizer: {self.optimizer!r}")


def _split_validation(
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    validation_data: tuple[object, object] | None,
    validation_split: float,
    rng: np.random.Generator,
) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """Return training arrays and the validation pair (or ``None``)."""
    if isinstance(validation_split, bool) or not isinstance(
        validation_split, (int, float)
    ):
        raise TypeError(f"validation_split must be a number, got {validation_split!r}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must lie in [0, 1), got {validation_split}")
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val)")
        vx = as_input_array(validation_data[0], "validation x")
        vy = as_target_array(validation_data[1], len(vx), "validation y")
        return x, y, (vx, vy)
    if not validation_split:
        return x, y, None
    n_val = round(len(x) * validation_split)
    if n_val < 1 or n_val >= len(x):
        raise ValueError(
            f"validation_split={validation_split} of {len(x)} samples leaves "
            f"{n_val} for validation and {len(x) - n_val} for training; both need >= 1"
        )
    order = rng.permutation(len(x))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return x[train_idx], y[train_idx], (x[val_idx], y[val_idx])


__all__ = ["Sequential"]

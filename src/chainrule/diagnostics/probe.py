"""One batch through a model, layer by layer, with everything kept.

:func:`probe` runs a forward and a backward pass the way a training step does,
but keeps what a training step throws away: every layer's input and output,
the gradient arriving at each output (``dC/d output``) and leaving through each
input, and each parameter's gradient for this batch. Plots (histograms of
activations and gradients), the training-health checks and the backprop trace
all read from it.

Probing never changes the model: parameters are not updated, gradients
accumulated before the call are put back, batch-norm running statistics and
dropout generators are restored afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.layers.base import Layer
from chainrule.model.inputs import as_target_array
from chainrule.model.sequential import Sequential

NDArray = np.ndarray[Any, Any]


@dataclass
class LayerProbe:
    """What one layer saw and passed on, for one batch (NumPy arrays)."""

    index: int
    layer: Layer
    input: NDArray
    output: NDArray
    #: ``dC/d output``: the gradient this layer's backward received
    grad_output: NDArray | None = None
    #: ``dC/d input``: what its backward returned
    grad_input: NDArray | None = None
    params: dict[str, NDArray] = field(default_factory=dict)
    #: ``dC/d param`` from this batch alone
    grads: dict[str, NDArray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``"3 Dense(units=64)"``: position in the model and the layer."""
        return f"{self.index} {self.layer!r}"


@dataclass
class ProbeResult:
    """A probed batch: the loss, the logits, and a :class:`LayerProbe` a layer."""

    layers: list[LayerProbe]
    logits: NDArray
    loss: float | None = None
    #: ``dC/d logits`` (``None`` when no targets were given)
    grad_logits: NDArray | None = None

    def __iter__(self) -> Any:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> LayerProbe:
        return self.layers[index]


def probe(
    model: Sequential,
    x: object,
    y: object | None = None,
    training: bool = True,
) -> ProbeResult:
    """Run ``x`` (and, with targets ``y``, the loss and backward) through ``model``.

    ``training=True`` runs the layers as a training step would (dropout active,
    batch norm on batch statistics); ``False`` as inference. Without ``y`` only
    the forward pass is recorded. The model is left exactly as it was.
    """
    if y is not None and not training:
        raise ValueError(
            "probe: gradients need the training-mode forward pass; "
            "pass training=True with targets, or no targets"
        )
    xb = model._prepare(x)
    loss = model._require_loss("probe with targets") if y is not None else None
    buffers = [(arr, arr.copy()) for _, arr in model.named_buffers()]
    rng_states = model.get_rng_states()
    params = model.named_parameters()
    saved_grads = [p.grad.copy() for _, p in params]
    try:
        records, backwards = [], []
        h = xb
        for i, layer in enumerate(model.layers):
            out, backward = layer.forward(h, training)
            records.append(
                LayerProbe(
                    index=i,
                    layer=layer,
                    input=backend.to_numpy(h).copy(),
                    output=backend.to_numpy(out).copy(),
                    params={
                        n: backend.to_numpy(p.data).copy()
                        for n, p in layer.named_parameters()
                    },
                )
            )
            backwards.append(backward)
            h = out
        result = ProbeResult(records, logits=backend.to_numpy(h).copy())
        if loss is None:
            return result
        target = as_target_array(y, len(xb))
        loss.check_targets(target, model.output_shape or ())
        for _, p in params:
            p.zero_grad()
        value, dy = loss(h, backend.xp().asarray(target))
        result.loss = float(value)
        result.grad_logits = backend.to_numpy(dy).copy()
        for record, backward in zip(
            reversed(records), reversed(backwards), strict=True
        ):
            record.grad_output = backend.to_numpy(dy).copy()
            dx = backward(dy)
            assert dx is not None  # layers called directly keep input_grad on
            dy = dx
            record.grad_input = backend.to_numpy(dy).copy()
            record.grads = {
                n: backend.to_numpy(p.grad).copy()
                for n, p in record.layer.named_parameters()
            }
        return result
    finally:
        for (_, p), grad in zip(params, saved_grads, strict=True):
            p.grad[...] = grad
        for arr, copy in buffers:
            arr[...] = copy
        model.set_rng_states(rng_states)


__all__ = ["LayerProbe", "ProbeResult", "probe"]

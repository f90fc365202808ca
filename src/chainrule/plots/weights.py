"""The first layer's weights as pictures: what each unit or filter looks for."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.layers import Conv2D, Dense
from chainrule.model.sequential import Sequential
from chainrule.plots._figure import check_path, new_figure, save

#: ``(width, height)`` in pixels of :func:`plot_first_layer`'s image
WEIGHTS_SIZE = (1000, 1075)


def first_layer_images(
    model: Sequential, max_units: int = 64
) -> tuple[np.ndarray[Any, Any], str]:
    """The first weight layer's weights as ``(K, h, w)`` images, and a caption.

    The first ``Dense`` or ``Conv2D`` of the model decides:

    - a ``Dense`` on the raw pixels (the model takes ``(H, W)`` or ``(1, H, W)``
      images, or square flat rows, and the layer sees all ``H·W`` of them):
      column ``k`` of ``W`` ``(H·W, units)`` reshaped to ``(H, W)``, the image
      that excites unit ``k`` most;
    - a ``Conv2D``: each filter ``W[f]`` ``(C, kh, kw)``, averaged over the
      input channels when there is more than one.

    At most ``max_units`` images, the first ones. ``ValueError`` if the model
    is not built or its first weight layer is neither of these.
    """
    if not model.built or model.input_shape is None:
        raise ValueError(
            "plot_first_layer: the model is not built; give Sequential an "
            "input_shape or run it on data first"
        )
    for index, layer in enumerate(model.layers):
        if not isinstance(layer, (Conv2D, Dense)) or layer.W is None:
            continue
        W = backend.to_numpy(layer.W.data).astype(np.float64)
        where = f"{type(layer).__name__} layer {index}"
        if isinstance(layer, Conv2D):
            images = W.mean(axis=1)  # (F, C, kh, kw) -> (F, kh, kw)
            kh, kw = layer.kernel_size
            what = f"{kh}×{kw} filters of {where}"
            if W.shape[1] > 1:
                what += f" (mean of {W.shape[1]} input channels)"
        else:
            side = _image_side(model.input_shape, W.shape[0])
            if side is None:
                raise ValueError(
                    f"plot_first_layer: the first weight layer {layer!r} sees "
                    f"{W.shape[0]} features of model input {model.input_shape}; "
                    "expected all the pixels of a grey image (H, W) or (1, H, W)"
                )
            images = W.T.reshape(-1, *side)  # (H·W, K) -> (K, H, W)
            what = f"units of {where} as {side[0]}×{side[1]} images"
        shown = min(len(images), max_units)
        count = (
            f"the {shown}" if shown == len(images) else f"{shown} of the {len(images)}"
        )
        return images[:shown], f"first layer: {count} {what}"
    names = ", ".join(type(layer).__name__ for layer in model.layers)
    raise ValueError(
        f"plot_first_layer: expected a Dense or Conv2D layer, the model has "
        f"{names or 'no layers'}"
    )


def plot_first_layer(
    model: Sequential, path: str | os.PathLike[str], max_units: int = 64
) -> Path:
    """Draw :func:`first_layer_images` in a grid; returns the path written.

    Each image is scaled by its own largest ``|w|`` (red positive, blue
    negative, white zero), so a unit with small weights shows its pattern as
    clearly as one with large weights.
    """
    target = check_path(path, "plot_first_layer")
    if isinstance(max_units, bool) or not isinstance(max_units, int) or max_units < 1:
        raise ValueError(
            f"plot_first_layer: max_units must be a positive int, got {max_units!r}"
        )
    images, caption = first_layer_images(model, max_units)
    peak = np.abs(images).max(axis=(1, 2), keepdims=True)
    scaled = images / np.where(peak > 0, peak, 1.0)

    fig = new_figure(*WEIGHTS_SIZE)
    fig.get_layout_engine().set(wspace=0.03, hspace=0.03)
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    axes = fig.subplots(rows, cols, squeeze=False)
    shown = None
    for k, ax in enumerate(axes.ravel()):
        if k >= len(images):
            ax.set_axis_off()
            continue
        shown = ax.imshow(scaled[k], cmap="RdBu_r", vmin=-1.0, vmax=1.0)
        ax.set_title(str(k), fontsize=8, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():  # a frame keeps neighbours apart
            spine.set_color("0.6")
    bar = fig.colorbar(shown, ax=axes, shrink=0.6, ticks=[-1, 0, 1])
    bar.set_label("weight / largest |weight| of its unit or filter")
    fig.suptitle(caption, fontsize=13)
    return save(fig, target)


def _image_side(input_shape: tuple[int, ...], features: int) -> tuple[int, int] | None:
    """``(H, W)`` if ``features`` are all the pixels of one grey input image."""
    if len(input_shape) == 3 and input_shape[0] == 1:
        input_shape = input_shape[1:]
    if len(input_shape) == 2 and input_shape[0] * input_shape[1] == features:
        return input_shape[0], input_shape[1]
    if input_shape == (features,) and math.isqrt(features) ** 2 == features:
        return math.isqrt(features), math.isqrt(features)
    return None


__all__ = ["WEIGHTS_SIZE", "first_layer_images", "plot_first_layer"]

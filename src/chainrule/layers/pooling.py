"""Pooling: MaxPool2D, AvgPool2D and GlobalAvgPool2D over ``(N, C, H, W)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.conv import check_image_shape
from chainrule.layers.im2col import offset_views, output_size, windows
from chainrule.layers.notation import Step, Symbols
from chainrule.types import Array, Backward, Shape


class _Pool2D(Layer):
    """Shared shape logic of the windowed pools (no padding, floor mode)."""

    trace_letter = "p"

    def __init__(
        self,
        pool_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.pool_size = validate.pair(name, "pool_size", pool_size)
        self.stride = (
            self.pool_size if stride is None else validate.pair(name, "stride", stride)
        )

    @property
    def tiles(self) -> bool:
        """Windows that neither overlap nor leave gaps: the reshape fast path."""
        return self.stride == self.pool_size

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        c, h, w = check_image_shape(self, input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        if ph > h or pw > w:
            raise ValueError(
                f"{self!r}: pool window {ph}x{pw} is larger than the input {h}x{w}"
            )
        return (c, output_size(h, ph, sh), output_size(w, pw, sw))

    def _offset_views(self, x: Array) -> list[Array]:
        """For each offset of the window, the ``(N, C, Ho, Wo)`` strided view of
        the pixels at that offset of every window (:func:`offset_views`)."""
        _, ho, wo = self.output_shape or (0, 0, 0)
        return offset_views(x, self.pool_size, self.stride, (ho, wo))

    def _blocks(self, x: Array) -> Array:
        """Fast path: ``x`` cropped and viewed as ``(N, C, Ho, ph, Wo, pw)``."""
        n, c, _, _ = x.shape
        _, ho, wo = self.output_shape or ()
        ph, pw = self.pool_size
        return x[:, :, : ho * ph, : wo * pw].reshape(n, c, ho, ph, wo, pw)

    def _spread(self, blocks: Array, x_shape: tuple[int, ...]) -> Array:
        """Fast path backward: ``(N, C, Ho, ph, Wo, pw)`` back to ``x_shape``.

        Rows and columns cropped off by the forward pass get zero gradient.
        """
        n, c, ho, ph, wo, pw = blocks.shape
        tiled = blocks.reshape(n, c, ho * ph, wo * pw)
        if tiled.shape == tuple(x_shape):
            return tiled
        dx = backend.xp().zeros(x_shape, dtype=blocks.dtype)
        dx[:, :, : ho * ph, : wo * pw] = tiled
        return dx

    def get_config(self) -> dict[str, Any]:
        compact = validate.compact_pair
        stride = None if self.stride == self.pool_size else compact(self.stride)
        return {"pool_size": compact(self.pool_size), "stride": stride}


class MaxPool2D(_Pool2D):
    """The maximum of each ``ph × pw`` window, moved by ``stride`` (default: the
    window size, so windows tile the image).

    Shape: input ``(N, C, H, W)``, output ``(N, C, Ho, Wo)`` with
    ``Ho = (H − ph) // sh + 1`` (rows that no window reaches are dropped).

    Forward: a running ``maximum`` over the ``ph·pw`` strided views
    ``x[:, :, i::sh, j::sw]`` (one per offset in the window), which is also
    what records the winner of each window: one boolean mask per offset
    (windows that tile the image) or the winner's offset (overlapping windows).

    Backward (argmax routing): ``y = max_k x_k`` has ``∂y/∂x_k = 1`` for the one
    input that won and ``0`` for the others, so each ``dy`` goes to the position
    of its window's maximum and nowhere else. Among equal values the first (in
    row-major order) wins, as in PyTorch; where windows overlap, a pixel that
    wins several windows receives the sum of their gradients.
    """

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        xp = backend.xp()
        views = self._offset_views(x)
        y = views[0].copy()
        for view in views[1:]:
            xp.maximum(y, view, out=y)
        if not training:
            return y, no_backward
        if self.tiles:
            return y, self._tiled_backward(views, y, x.shape)
        # the winner's offset; scanning backwards leaves the first maximum
        last = len(views) - 1
        index = np.min_scalar_type(last)  # uint8 for windows up to 16x16
        winner = xp.full(y.shape, last, dtype=index)
        for k in range(last - 1, -1, -1):
            winner = xp.where(views[k] == y, index.type(k), winner)
        shape = x.shape

        def backward(dy: Array) -> Array:
            zero = dy.dtype.type(0)
            dx = xp.zeros(shape, dtype=dy.dtype)
            for k, part in enumerate(self._offset_views(dx)):
                part += xp.where(winner == k, dy, zero)  # overlapping windows add
            return dx

        return y, backward

    def _tiled_backward(self, views: list[Array], y: Array, shape: Shape) -> Backward:
        """Backward for windows that tile the image, from one mask per offset.

        ``won[k]`` is true where the pixel at offset ``k`` of a window is that
        window's first maximum (row-major, as in PyTorch); backward writes
        ``won[k] ⊙ dy`` into offset ``k`` of every window. Each window's pixels
        are written exactly once, so nothing is zeroed or added.
        """
        xp = backend.xp()
        won, taken = [], None
        for view in views:
            mask = view == y
            if taken is None:
                taken = mask.copy()
            else:  # a later maximum of the same window does not win
                mask &= ~taken
                taken |= mask
            won.append(mask)
        n, c, ho, wo = y.shape
        ph, pw = self.pool_size

        def backward(dy: Array) -> Array:
            tiled = xp.empty((n, c, ho * ph, wo * pw), dtype=dy.dtype)
            parts = offset_views(tiled, self.pool_size, self.stride, (ho, wo))
            for mask, part in zip(won, parts, strict=True):
                xp.multiply(mask, dy, out=part)
            return self._spread(tiled.reshape(n, c, ho, ph, wo, pw), shape)

        return backward

    def describe(self, s: Symbols) -> Step:
        ph, pw = self.pool_size
        return Step(
            f"{s.y} = maxpool{ph}x{pw}({s.x})",
            f"{s.dy} at each window's maximum, 0 elsewhere",
        )


class AvgPool2D(_Pool2D):
    """The mean of each ``ph × pw`` window, moved by ``stride`` (default: the
    window size).

    Shape: as :class:`MaxPool2D`.

    Backward: ``y = (1/(ph·pw)) Σ_k x_k``, so every input of a window receives
    ``dy / (ph·pw)``; overlapping windows add their shares.
    """

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        xp = backend.xp()
        ph, pw = self.pool_size
        _, ho, wo = self.output_shape or ()
        if self.tiles:
            y = self._blocks(x).mean(axis=(3, 5))
        else:
            y = windows(x, self.pool_size, self.stride).mean(axis=(4, 5))
        if not training:
            return y, no_backward
        shape = x.shape
        scale = x.dtype.type(1 / (ph * pw))

        def backward(dy: Array) -> Array:
            share = dy * scale
            if self.tiles:
                n, c = share.shape[:2]
                blocks = xp.broadcast_to(
                    share[:, :, :, None, :, None], (n, c, ho, ph, wo, pw)
                )
                return self._spread(xp.ascontiguousarray(blocks), shape)
            dx = xp.zeros(shape, dtype=dy.dtype)
            for part in self._offset_views(dx):
                part += share  # overlapping windows add their shares
            return dx

        return y, backward

    def describe(self, s: Symbols) -> Step:
        ph, pw = self.pool_size
        return Step(
            f"{s.y} = avgpool{ph}x{pw}({s.x})",
            f"{s.dy} / {ph * pw} spread over each window",
        )


class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image.

    Shape: input ``(N, C, H, W)``, output ``(N, C)``.

    Backward: ``dx[n, c, h, w] = dy[n, c] / (H·W)``.
    """

    trace_letter = "p"

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        c, _, _ = check_image_shape(self, input_shape)
        return (c,)

    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        y = x.mean(axis=(2, 3))
        if not training:
            return y, no_backward
        shape = x.shape
        scale = x.dtype.type(1 / (shape[2] * shape[3]))

        def backward(dy: Array) -> Array:
            share = dy * scale
            return backend.xp().broadcast_to(share[:, :, None, None], shape).copy()

        return y, backward

    def describe(self, s: Symbols) -> Step:
        return Step(
            f"{s.y} = mean of {s.x} over each channel's H×W pixels",
            f"{s.dy} / (H·W) at every pixel of its channel",
        )


__all__ = ["AvgPool2D", "GlobalAvgPool2D", "MaxPool2D"]

"""2-D convolution by im2col and one matrix product."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backend, validate
from chainrule.layers.base import Layer, no_backward
from chainrule.layers.im2col import col2im_batch_last, im2col, output_size
from chainrule.layers.init import check_initializer, weight_and_bias
from chainrule.layers.notation import Step, Symbols
from chainrule.parallel import map_chunks
from chainrule.parameter import Parameter
from chainrule.types import Array, Backward, Shape

Padding = int | tuple[int, int] | str
#: (top, bottom, left, right)
Pads = tuple[int, int, int, int]


def check_image_shape(owner: Layer, input_shape: Shape) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image input, or a ``ValueError`` saying what to add."""
    if len(input_shape) != 3:
        got = ", ".join(["N", *map(str, input_shape)])
        hint = (
            f"; add Reshape((1, {input_shape[0]}, {input_shape[1]})) before it to "
            "give grey images their channel axis"
            if len(input_shape) == 2
            else ""
        )
        raise ValueError(
            f"{owner!r} expected images of shape (N, channels, height, width), "
            f"got ({got}){hint}"
        )
    c, h, w = input_shape
    return c, h, w


def pad_images(x: Array, pads: Pads) -> Array:
    """``x`` ``(N, C, H, W)`` with zero rows/columns added around each image."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, c, h, w = x.shape
    out = backend.xp().zeros((n, c, h + top + bottom, w + left + right), x.dtype)
    out[:, :, top : top + h, left : left + w] = x
    return out


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every framework).

    ``y[n, f, p, q] = b[f] + Σ_{c,i,j} W[f, c, i, j] · x[n, c, p·s + i, q·s + j]``
    over the zero-padded input.

    Args:
        filters: number of output channels ``F``.
        kernel_size: ``k`` or ``(kh, kw)``.
        stride: ``s`` or ``(sh, sw)``.
        padding: ``0``/``"valid"`` (none), an int or ``(ph, pw)`` added on both
            sides, or ``"same"``: output size ``ceil(H / s)`` (for odd kernels and
            stride 1, ``(k − 1)/2`` on each side; any odd extra goes to the bottom
            and right, as in Keras and PyTorch).
        use_bias: add a learnable ``b`` of shape ``(F,)``.
        init: initialiser of ``W`` (``fan_in = C·kh·kw``, ``fan_out = F·kh·kw``).

    Shape: input ``(N, C, H, W)``, output ``(N, F, Ho, Wo)`` with
    ``Ho = (H + pad_top + pad_bottom − kh) // sh + 1``.

    Forward: ``cols = im2col(x_padded)`` of shape ``(C·kh·kw, N·Ho·Wo)``, then
    ``y = W.reshape(F, C·kh·kw) @ cols`` (one GEMM), reshaped to ``(N, F, Ho, Wo)``.

    Backward, with ``δ = dL/dy`` laid out as a matrix ``(F, N·Ho·Wo)``:
        - ``dL/dW = δ · colsᵀ`` (one GEMM), reshaped to ``(F, C, kh, kw)``
        - ``dL/db = Σ_{n,p,q} δ``
        - ``dL/dcols = W.reshape(F, C·kh·kw)ᵀ · δ`` (one GEMM), and
          ``dL/dx = col2im(dL/dcols)``: ``col2im`` is the transpose of ``im2col``,
          adding every column entry back into the pixel it was copied from; the
          padding is then cut off. (This product and ``col2im`` take ``δ`` with
          its columns ordered ``(p, q, n)``, the batch last, which makes the
          adds of ``col2im`` cheaper: ``col2im_batch_last``.)

    Memory: the column buffer of a batch is ``C·kh·kw·N·Ho·Wo`` numbers. Up to
    ``max_column_bytes`` it is built once and kept for backward; beyond that the
    batch is processed in chunks that fit, and backward rebuilds each chunk's
    columns rather than keeping them all. Inference keeps nothing for a
    backward, so on the CPU it goes in chunks of at most
    ``inference_column_bytes`` (one sample where that is more): a buffer that
    stays in the processor's cache between ``im2col`` writing it and the
    product reading it. Those chunks run side by side on the cores,
    each product on one BLAS thread (:func:`chainrule.parallel.map_chunks`).
    """

    trace_letter = "z"
    starts_level = True
    #: the most bytes one column buffer may take (see "Memory" above)
    max_column_bytes: int = 128 << 20
    #: the most bytes one column buffer may take in inference (see "Memory")
    inference_column_bytes: int = 8 << 20

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Padding = 0,
        use_bias: bool = True,
        init: str = "glorot",
        bias_init: str = "zeros",
    ) -> None:
        super().__init__()
        self.filters = validate.integer("Conv2D", "filters", filters)
        self.kernel_size = validate.pair("Conv2D", "kernel_size", kernel_size)
        self.stride = validate.pair("Conv2D", "stride", stride)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    "Conv2D: padding must be 'same', 'valid', an integer >= 0 or a "
                    f"pair of them, got {padding!r}"
                )
            self.padding: str | tuple[int, int] = padding
        else:
            self.padding = validate.pair("Conv2D", "padding", padding, low=0)
        self.use_bias = validate.boolean("Conv2D", "use_bias", use_bias)
        self.init = check_initializer(init, f"Conv2D(filters={filters})")
        self.bias_init = check_initializer(
            bias_init, f"Conv2D(filters={filters})", "bias_init"
        )
        self.W: Parameter | None = None
        self.b: Parameter | None = None
        self.pads: Pads = (0, 0, 0, 0)

    # ----------------------------------------------------------------- building
    def padding_for(self, h: int, w: int) -> Pads:
        """``(top, bottom, left, right)`` zero padding for an ``h × w`` input."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            pads = []
            for size, k, s in zip((h, w), self.kernel_size, self.stride, strict=True):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3])
        assert not isinstance(self.padding, str)
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        _, h, w = check_image_shape(self, input_shape)
        top, bottom, left, right = self.padding_for(h, w)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        hp, wp = h + top + bottom, w + left + right
        if kh > hp or kw > wp:
            raise ValueError(
                f"{self!r}: kernel {kh}x{kw} is larger than the padded input "
                f"{hp}x{wp} (input {h}x{w})"
            )
        return (self.filters, output_size(hp, kh, sh), output_size(wp, kw, sw))

    def parameter_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {
            "W": (self.filters, input_shape[0], *self.kernel_size)
        }
        if self.use_bias:
            shapes["b"] = (self.filters,)
        return shapes

    def _create_parameters(self, input_shape: Shape, rng: np.random.Generator) -> None:
        c, h, w = input_shape
        self.pads = self.padding_for(h, w)
        area = self.kernel_size[0] * self.kernel_size[1]
        self.W, self.b = weight_and_bias(
            self.init,
            self.bias_init,
            self.parameter_shapes(input_shape),
            fan_in=c * area,
            fan_out=self.filters * area,
            rng=rng,
        )

    # ------------------------------------------------------------------ running
    def forward(self, x: Array, training: bool) -> tuple[Array, Backward]:
        W, b = self.W, self.b
        if W is None or self.output_shape is None:
            raise RuntimeError(f"{self!r} is not built: call build(input_shape) first")
        kernel, stride = self.kernel_size, self.stride
        f, ho, wo = self.output_shape
        n = x.shape[0]
        padded = pad_images(x, self.pads)
        chunk = self._chunk(x.dtype.itemsize, training)
        xp = backend.xp()
        y = xp.empty((n, f, ho, wo), dtype=x.dtype)

        def convolve(start: int) -> Array:
            """``y`` of the chunk from ``start``; returns its columns."""
            cols = im2col(padded[start : start + chunk], kernel, stride)
            out = W.data.reshape(f, -1) @ cols  # (F, nb·Ho·Wo)
            images = out.reshape(f, -1, ho, wo).transpose(1, 0, 2, 3)
            if b is None:
                y[start : start + chunk] = images
            else:  # the bias is added on the way into y: one pass, not two
                xp.add(images, b.data[:, None, None], out=y[start : start + chunk])
            return cols  # (C·kh·kw, nb·Ho·Wo)

        starts = range(0, n, chunk)
        if not training:  # chunks side by side, one BLAS thread each
            map_chunks(convolve, starts)
            return y, no_backward
        kept: Array | None = None
        for start in starts:
            cols = convolve(start)
            if chunk >= n:
                kept = cols
        top, _, left, _ = self.pads
        h, w = x.shape[2], x.shape[3]
        need_dx = self.input_grad

        def backward(dy: Array) -> Array | None:
            if b is not None:
                b.grad += dy.sum(axis=(0, 2, 3))
            W2 = W.data.reshape(f, -1)  # (F, C·kh·kw)
            dx = backend.xp().empty(x.shape if need_dx else 0, dy.dtype)
            for start in range(0, n, chunk):
                part = padded[start : start + chunk]
                cols = kept if kept is not None else im2col(part, kernel, stride)
                dy_part = dy[start : start + chunk]
                delta = dy_part.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, nb·Ho·Wo)
                W.grad += (delta @ cols.T).reshape(W.grad.shape)  # δ·colsᵀ
                if not need_dx:  # the input is the data: no one needs dL/dx
                    continue
                # the same δ with the batch last, (F, Ho·Wo·nb): col2im's adds
                # then run over whole rows of all images (col2im_batch_last)
                delta_last = dy_part.transpose(1, 2, 3, 0).reshape(f, -1)
                dcols = W2.T @ delta_last  # (C·kh·kw, Ho·Wo·nb)
                dpart = col2im_batch_last(dcols, part.shape, kernel, stride)
                dx[start : start + chunk] = dpart[
                    :, top : top + h, left : left + w
                ].transpose(3, 0, 1, 2)
            return dx if need_dx else None

        return y, backward

    def _chunk(self, itemsize: int, training: bool = True) -> int:
        """Samples per column buffer, so that it stays under ``max_column_bytes``
        (and ``inference_column_bytes`` in inference)."""
        assert self.input_shape is not None and self.output_shape is not None
        rows = self.input_shape[0] * self.kernel_size[0] * self.kernel_size[1]
        per_sample = rows * self.output_shape[1] * self.output_shape[2] * itemsize
        budget = int(self.max_column_bytes)
        if not training and backend.backend_name() == "numpy":  # a CPU's cache
            budget = min(budget, int(self.inference_column_bytes))
        return max(1, budget // per_sample)

    def describe(self, s: Symbols) -> Step:
        W = s.param("W")
        cols = f"im2col({s.x})"
        params = {"W": (W, f"{s.dy} · {cols}ᵀ")}
        forward = f"{s.y} = {W} ⋆ {s.x}  (= {W} · {cols})"
        if self.b is not None:
            params["b"] = (s.param("b"), f"Σₙ,ₚ,q {s.dy}")
            forward = f"{s.y} = {W} ⋆ {s.x} + {s.param('b')}  (= {W} · {cols})"
        return Step(forward, f"col2im({W}ᵀ · {s.dy})", params)

    # --------------------------------------------------------------- parameters
    def named_parameters(self) -> list[tuple[str, Parameter]]:
        params = [("W", self.W), ("b", self.b)]
        return [(n, p) for n, p in params if p is not None]

    def get_config(self) -> dict[str, Any]:
        compact = validate.compact_pair
        padding = self.padding
        return {
            "filters": self.filters,
            "kernel_size": compact(self.kernel_size),
            "stride": compact(self.stride),
            "padding": padding if isinstance(padding, str) else compact(padding),
            "use_bias": self.use_bias,
            "init": self.init,
            "bias_init": self.bias_init,
        }


__all__ = ["Conv2D", "check_image_shape", "pad_images"]

"""im2col and col2im: a convolution as one matrix product, and its transpose.

For an input ``x`` of shape ``(N, C, H, W)`` (already padded) and a ``kh × kw``
window moved by ``(sh, sw)``, the *columns* are the matrix

    cols[(c, i, j), (n, p, q)] = x[n, c, p·sh + i, q·sw + j]

of shape ``(C·kh·kw, N·Ho·Wo)``: one column per output pixel, holding the
window it sees. A convolution with filters ``W`` of shape ``(F, C, kh, kw)`` is
then ``W.reshape(F, C·kh·kw) @ cols``, one GEMM, whose ``(F, N·Ho·Wo)`` result
is the output with its first two axes swapped.

``col2im`` is the transpose (adjoint) of ``im2col``: every entry of a column
goes back to the input pixel it was copied from, and entries copied from the
same pixel (overlapping windows) are *added*. So if ``cols = im2col(x)`` then
``dL/dx = col2im(dL/dcols)``. It loops over the ``kh·kw`` kernel offsets, each
one a strided add over the whole batch.
"""

from __future__ import annotations

from chainrule import backend
from chainrule.types import Array


def output_size(size: int, kernel: int, stride: int) -> int:
    """Number of window positions along an axis of ``size`` (no padding)."""
    return (size - kernel) // stride + 1


def windows(x: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    """A read-only strided view ``(N, C, Ho, Wo, kh, kw)`` of every window of ``x``.

    No data is copied; never write to the result.
    """
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    s_n, s_c, s_h, s_w = x.strides
    return backend.xp().lib.stride_tricks.as_strided(
        x,
        shape=(n, c, ho, wo, kh, kw),
        strides=(s_n, s_c, s_h * sh, s_w * sw, s_h, s_w),
    )


def im2col(x: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    """The columns of ``x`` ``(N, C, H, W)``: shape ``(C·kh·kw, N·Ho·Wo)``."""
    view = windows(x, kernel, stride)  # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo, kh, kw = view.shape
    # (C, kh, kw, N, Ho, Wo): rows are (c, i, j), columns (n, p, q); one copy
    return view.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)


def offset_views(
    x: Array,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    out_size: tuple[int, int],
) -> list[Array]:
    """For each offset ``(i, j)`` of the window (row-major), the strided view
    ``x[:, :, i::sh, j::sw]`` ``(N, C, Ho, Wo)``: the pixel at that offset of
    every window. Writing to a view writes to ``x``."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_size
    return [
        x[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def col2im(
    cols: Array,
    shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    out: Array | None = None,
) -> Array:
    """The adjoint of :func:`im2col`: sum each column entry back into its pixel.

    ``cols`` has shape ``(C·kh·kw, N·Ho·Wo)``; the result has ``shape``
    ``(N, C, H, W)`` (the padded input's shape), written into ``out`` if given.
    """
    n, c, h, w = shape
    ho, wo = output_size(h, kernel[0], stride[0]), output_size(w, kernel[1], stride[1])
    parts = cols.reshape(c, kernel[0] * kernel[1], n, ho, wo)
    if out is None:
        out = backend.xp().zeros(shape, dtype=cols.dtype)
    else:
        out[...] = 0
    for k, view in enumerate(offset_views(out, kernel, stride, (ho, wo))):
        view += parts[:, k].transpose(
            1, 0, 2, 3
        )  # the pixels offset k of each window saw
    return out


def col2im_batch_last(
    cols: Array,
    shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> Array:
    """:func:`col2im` for columns ordered ``(p, q, n)``, the batch last.

    ``cols[(c, i, j), (p, q, n)]`` has shape ``(C·kh·kw, Ho·Wo·N)``; the sum
    is the same as :func:`col2im`'s, returned batch-last, ``(C, H, W, N)`` for
    ``shape`` ``(N, C, H, W)``. Why a second order: NumPy loops in C over the
    innermost run of a strided add. In the ``(n, p, q)`` order that run is one
    output row of one image (``Wo`` numbers, 8 to 28 here), so the loop
    overhead, not the adding, is the cost; batch-last, a stride-1 offset adds
    runs of ``Wo·N`` numbers (all the images' rows at once), about 3 times
    faster on MNIST-sized maps (``docs/performance.md``).
    """
    n, c, h, w = shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    parts = cols.reshape(c, kh, kw, ho, wo, n)
    out = backend.xp().zeros((c, h, w, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (ho - 1) + 1, sh)
            columns = slice(j, j + sw * (wo - 1) + 1, sw)
            out[:, rows, columns] += parts[:, i, j]
    return out


__all__ = [
    "col2im",
    "col2im_batch_last",
    "im2col",
    "offset_views",
    "output_size",
    "windows",
]

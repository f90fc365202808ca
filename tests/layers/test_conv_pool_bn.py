"""Conv2D, the pools, BatchNorm and Reshape: gradients, PyTorch parity, errors.

Every layer is gradient-checked in float64 (central differences) on several
configurations, then compared with PyTorch autograd (forward, ``dx`` and the
parameter gradients, float32 and float64) on configurations drawn by
hypothesis (derandomized, so every run checks the same cases). The upstream
gradient ``dy`` is always random, never ones. Max-pool gradient checks use
inputs without ties (distinct values spaced far apart relative to the
difference step); the torch comparisons use inputs *with* ties, where the first
maximum in row-major order must win, as in PyTorch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import param

import chainrule.layers.conv as conv_module
from chainrule import backend
from chainrule.config import describe
from chainrule.gradcheck import GradCheckReport, gradcheck
from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    Reshape,
)
from chainrule.layers.base import layer_from_config
from chainrule.layers.im2col import col2im, col2im_batch_last, im2col, output_size

torch.set_num_threads(1)

TOLERANCE = 1e-6
DTYPES = [np.float32, np.float64]
#: relative tolerance of a comparison with torch; the absolute one is this times
#: the largest magnitude of the expected array (sums of many terms in float32)
REL: dict[Any, float] = {np.float32: 2e-5, np.float64: 1e-12}
SETTINGS = settings(deadline=None, max_examples=12, derandomize=True)
seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------- helpers
def built(
    layer: Layer, input_shape: tuple[int, ...], dtype: Any = np.float64, seed: int = 0
) -> Layer:
    """``layer`` built for ``input_shape`` with parameters in ``dtype``."""
    with backend.precision(dtype):
        layer.build(input_shape, np.random.default_rng(seed))
    return layer


def distinct(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Distinct values 0.1 apart, shuffled: no max-pool ties, even within a step."""
    size = math.prod(shape)
    return (rng.permutation(size).reshape(shape) - size / 2) * 0.1


def assert_close(actual: Any, expected: Any, dtype: Any, what: str = "") -> None:
    """``actual`` matches ``expected`` to ``REL[dtype]``, relative to its scale."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    rel = REL[dtype]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(
        actual, expected, rtol=rel, atol=rel * scale, err_msg=what
    )


def check_gradients(layer: Layer, x: np.ndarray) -> GradCheckReport:
    """Gradient-check ``layer`` at ``x``: every element, no kinks, all tensors."""
    report = gradcheck(layer, x, tolerance=TOLERANCE, max_elements=10_000)
    assert report.passed, report.format()
    names = {r.name for r in report.results}
    assert names == {"input", *(n for n, _ in layer.named_parameters())}
    # smooth layers, and max pools without ties, have no kink inside the step
    assert all(r.skipped == 0 for r in report.results), report.format()
    assert all(r.method == "every element" for r in report.results)
    return report


def torch_conv(
    layer: Conv2D, x: np.ndarray, dy: np.ndarray, padding: Any = None
) -> dict[str, np.ndarray]:
    """Output and gradients of ``F.conv2d`` with ``layer``'s weights.

    Without ``padding`` the input is zero-padded by ``layer.pads`` first, as
    chainrule does; with it, torch's own padding argument is used.
    """
    assert layer.W is not None
    tx = torch.tensor(x, requires_grad=True)
    tW = torch.tensor(layer.W.data, requires_grad=True)
    tb = None if layer.b is None else torch.tensor(layer.b.data, requires_grad=True)
    if padding is None:
        top, bottom, left, right = layer.pads
        padded = F.pad(tx, (left, right, top, bottom))
        ty = F.conv2d(padded, tW, tb, stride=layer.stride)
    else:
        ty = F.conv2d(tx, tW, tb, stride=layer.stride, padding=padding)
    ty.backward(torch.tensor(dy))
    assert tx.grad is not None and tW.grad is not None
    out = {"y": ty.detach().numpy(), "dx": tx.grad.numpy(), "W": tW.grad.numpy()}
    if tb is not None:
        assert tb.grad is not None
        out["b"] = tb.grad.numpy()
    return out


def run_layer(layer: Layer, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
    """Output, ``dx`` and every parameter gradient of one forward/backward pass."""
    layer.zero_grad()
    y, backward = layer(x, training=True)
    dx = backward(dy)
    out = {"y": y, "dx": dx}
    out.update({name: p.grad.copy() for name, p in layer.named_parameters()})
    return out


def assert_same_results(
    ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], dtype: Any
) -> None:
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        assert value.dtype == dtype, key
        assert_close(value, theirs[key], dtype, key)


# ------------------------------------------------------------- gradient checks
CONV_CASES = [
    # (id, factory, sample shape (C, H, W), batch)
    param(lambda: Conv2D(3, 3, bias_init="normal"), (2, 5, 6), 2, id="s1-p0"),
    param(lambda: Conv2D(2, 3, stride=2, padding=1), (2, 7, 9), 2, id="s2-p1"),
    param(lambda: Conv2D(2, 3, padding="same"), (2, 7, 9), 2, id="same-odd"),
    param(lambda: Conv2D(2, 2, padding="same"), (2, 5, 6), 2, id="same-even"),
    param(
        lambda: Conv2D(2, 4, stride=2, padding="same"), (1, 7, 9), 2, id="same-even-s2"
    ),
    param(
        lambda: Conv2D(3, (2, 3), padding="valid", bias_init="normal"),
        (2, 7, 9),
        1,
        id="valid-2x3",
    ),
    param(
        lambda: Conv2D(2, (2, 3), stride=(2, 1), padding=(1, 0)),
        (3, 7, 9),
        2,
        id="nonsquare-stride-pad",
    ),
    param(lambda: Conv2D(3, 3, padding=1, use_bias=False), (2, 5, 5), 3, id="no-bias"),
    param(lambda: Conv2D(4, 1), (3, 4, 5), 2, id="1x1"),
    param(lambda: Conv2D(2, 2, stride=3), (2, 7, 9), 2, id="stride>kernel"),
    param(lambda: Conv2D(2, 4, padding=2), (1, 2, 3), 2, id="kernel>input"),
]


@pytest.mark.parametrize(("make", "shape", "batch"), CONV_CASES)
def test_conv2d_gradients(
    make: Callable[[], Conv2D], shape: tuple[int, int, int], batch: int
) -> None:
    rng = np.random.default_rng(1)
    layer = built(make(), shape, seed=2)
    check_gradients(layer, rng.standard_normal((batch, *shape)))


POOL_CASES = [
    # (pool_size, stride, sample shape (C, H, W))
    param(2, None, (2, 6, 8), id="tiled"),
    param(2, None, (2, 7, 9), id="tiled-cropped"),
    param(3, None, (1, 7, 8), id="tiled3-cropped"),
    param(3, 2, (2, 7, 9), id="overlap-3s2"),
    param(2, 1, (1, 5, 6), id="overlap-2s1"),
    param((2, 3), None, (2, 7, 9), id="nonsquare"),
    param((3, 2), (1, 2), (1, 7, 9), id="nonsquare-stride"),
    param(2, 3, (1, 8, 9), id="gaps"),
    param((1, 4), (1, 4), (2, 3, 8), id="row-windows"),
]


@pytest.mark.parametrize(("pool", "stride", "shape"), POOL_CASES)
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pool_gradients(
    cls: type[MaxPool2D | AvgPool2D],
    pool: int | tuple[int, int],
    stride: int | tuple[int, int] | None,
    shape: tuple[int, int, int],
) -> None:
    rng = np.random.default_rng(3)
    layer = cls(pool, stride)
    x = (
        distinct((2, *shape), rng)
        if cls is MaxPool2D
        else rng.standard_normal((2, *shape))
    )
    check_gradients(layer, x)


def test_global_avg_pool_gradients() -> None:
    rng = np.random.default_rng(4)
    check_gradients(GlobalAvgPool2D(), rng.standard_normal((2, 3, 4, 5)))


BN_SHAPES = [
    param((5, 4), id="features"),
    param((3, 2, 5), id="channels-length"),
    param((2, 3, 4, 5), id="images"),
    param((1, 3, 2, 3), id="one-image"),
]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", ["default", "random"])
def test_batchnorm_gradients_in_training(shape: tuple[int, ...], affine: str) -> None:
    rng = np.random.default_rng(5)
    layer = built(BatchNorm(momentum=0.2, eps=1e-3), shape[1:])
    assert isinstance(layer, BatchNorm)
    if affine == "random":
        assert layer.gamma is not None and layer.beta is not None
        layer.gamma.data[...] = rng.uniform(0.5, 2.0, shape[1]) * rng.choice([-1, 1])
        layer.beta.data[...] = rng.standard_normal(shape[1])
    x = 2.0 * rng.standard_normal(shape) + 1.5
    check_gradients(layer, x)


@pytest.mark.parametrize(
    ("target", "shape"),
    [
        param((3, -1), (2, 6), id="-1-last"),
        param((-1, 2, 2), (3, 4), id="-1-first"),
        param((1, 4, 5), (20,), id="add-channel"),
        param((-1,), (2, 3, 2), id="flatten"),
    ],
)
def test_reshape_gradients(target: tuple[int, ...], shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(6)
    check_gradients(Reshape(target), rng.standard_normal((3, *shape)))


# ---------------------------------------------------------------- im2col
IM2COL_CASES = [
    param((2, 3, 5, 6), (3, 3), (1, 1), id="3x3-s1"),
    param((1, 2, 7, 9), (2, 3), (2, 1), id="2x3-s2x1"),
    param((3, 1, 6, 6), (2, 2), (2, 2), id="tiled"),
    param((2, 2, 8, 7), (2, 2), (3, 3), id="gaps"),
    param((1, 1, 4, 4), (4, 4), (1, 1), id="whole-image"),
    param((2, 3, 4, 5), (1, 1), (1, 1), id="1x1"),
]


@pytest.mark.parametrize(("shape", "kernel", "stride"), IM2COL_CASES)
def test_col2im_is_the_adjoint_of_im2col(
    shape: tuple[int, int, int, int], kernel: tuple[int, int], stride: tuple[int, int]
) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, shape, kernel, stride)
    assert back.shape == shape
    # <im2col(x), c> == <x, col2im(c)>
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize(("shape", "kernel", "stride"), IM2COL_CASES)
def test_col2im_batch_last_is_col2im_with_the_batch_moved_last(
    shape: tuple[int, int, int, int], kernel: tuple[int, int], stride: tuple[int, int]
) -> None:
    rng = np.random.default_rng(9)
    n, c, h, w = shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    cols = rng.standard_normal((c * kh * kw, n * ho * wo))  # columns (n, p, q)
    last = cols.reshape(-1, n, ho, wo).transpose(0, 2, 3, 1).reshape(cols.shape)
    back = col2im_batch_last(last, shape, kernel, stride)
    assert back.shape == (c, h, w, n)
    np.testing.assert_allclose(
        back, col2im(cols, shape, kernel, stride).transpose(1, 2, 3, 0), rtol=1e-12
    )


@pytest.mark.parametrize(("shape", "kernel", "stride"), IM2COL_CASES)
def test_im2col_matches_its_definition(
    shape: tuple[int, int, int, int], kernel: tuple[int, int], stride: tuple[int, int]
) -> None:
    """``cols[(c, i, j), (n, p, q)] = x[n, c, p·sh + i, q·sw + j]``."""
    x = np.random.default_rng(8).standard_normal(shape)
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = shape
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    expected = np.empty((c * kh * kw, n * ho * wo))
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for ni in range(n):
                    for p in range(ho):
                        for q in range(wo):
                            expected[(ci * kh + i) * kw + j, (ni * ho + p) * wo + q] = (
                                x[ni, ci, p * sh + i, q * sw + j]
                            )
    np.testing.assert_array_equal(im2col(x, kernel, stride), expected)


# ------------------------------------------------------------ torch parity
class ConvCase(NamedTuple):
    n: int
    channels: int
    filters: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: Any
    use_bias: bool


@st.composite
def conv_cases(draw: Callable[..., Any]) -> ConvCase:
    """A valid Conv2D configuration and input size (the kernel may exceed the
    unpadded input when padding makes up for it)."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad_ints = st.integers(0, 2)
    padding = draw(
        st.one_of(
            st.sampled_from(["same", "valid"]),
            pad_ints,
            st.tuples(pad_ints, pad_ints),
        )
    )
    if isinstance(padding, str):
        pad_pair = (0, 0)
    else:
        pad_pair = (padding, padding) if isinstance(padding, int) else padding
    sizes = []
    for k, p in zip(kernel, pad_pair, strict=True):
        low = 1 if padding == "same" else max(1, k - 2 * p)
        sizes.append(draw(st.integers(low, low + 6)))
    return ConvCase(
        n=draw(st.integers(1, 3)),
        channels=draw(st.integers(1, 3)),
        filters=draw(st.integers(1, 4)),
        h=sizes[0],
        w=sizes[1],
        kernel=kernel,
        stride=stride,
        padding=padding,
        use_bias=draw(st.booleans()),
    )


def make_conv(case: ConvCase, dtype: Any, seed: int) -> Conv2D:
    layer = Conv2D(
        case.filters,
        case.kernel,
        stride=case.stride,
        padding=case.padding,
        use_bias=case.use_bias,
        bias_init="normal",
    )
    built(layer, (case.channels, case.h, case.w), dtype, seed)
    return layer


def expected_conv_shape(case: ConvCase) -> tuple[int, int, int]:
    """Output shape by the textbook formulas, independently of the layer."""
    if case.padding == "same":
        return (
            case.filters,
            -(-case.h // case.stride[0]),
            -(-case.w // case.stride[1]),
        )
    pads = (0, 0) if case.padding == "valid" else case.padding
    ph, pw = (pads, pads) if isinstance(pads, int) else pads
    return (
        case.filters,
        (case.h + 2 * ph - case.kernel[0]) // case.stride[0] + 1,
        (case.w + 2 * pw - case.kernel[1]) // case.stride[1] + 1,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=conv_cases(), seed=seeds)
def test_conv2d_matches_torch(dtype: Any, case: ConvCase, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_conv(case, dtype, seed)
    x = rng.standard_normal((case.n, case.channels, case.h, case.w)).astype(dtype)
    dy = rng.standard_normal((case.n, *expected_conv_shape(case))).astype(dtype)
    ours = run_layer(layer, x, dy)
    assert_same_results(ours, torch_conv(layer, x, dy), dtype)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kernel", [(1, 1), (3, 3), (5, 3), (2, 2), (4, 4), (2, 3), (4, 1)], ids=str
)
def test_same_padding_matches_torch_same(dtype: Any, kernel: tuple[int, int]) -> None:
    """Stride 1: torch's own ``padding='same'`` (odd extra at bottom and right)."""
    rng = np.random.default_rng(9)
    layer = built(
        Conv2D(3, kernel, padding="same", bias_init="normal"), (2, 7, 6), dtype
    )
    assert isinstance(layer, Conv2D)
    x = rng.standard_normal((2, 2, 7, 6)).astype(dtype)
    dy = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    ours = run_layer(layer, x, dy)
    assert ours["y"].shape == (2, 3, 7, 6)
    assert_same_results(ours, torch_conv(layer, x, dy, padding="same"), dtype)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [
        (7, 4, 2, (1, 2)),  # ceil(7/2)=4 outputs: total 3, odd extra at the end
        (8, 4, 2, (1, 1)),
        (7, 3, 2, (1, 1)),
        (8, 3, 2, (0, 1)),
        (5, 1, 3, (0, 0)),
        (2, 5, 1, (2, 2)),
        (9, 2, 3, (0, 0)),
    ],
)
def test_same_padding_with_stride(
    size: int, kernel: int, stride: int, pads: tuple[int, int]
) -> None:
    """Strided 'same' gives ``ceil(H / s)`` outputs (as Keras/TensorFlow)."""
    layer = built(Conv2D(2, kernel, stride=stride, padding="same"), (1, size, size))
    assert isinstance(layer, Conv2D)
    assert layer.pads == (*pads, *pads)
    assert layer.output_shape == (2, -(-size // stride), -(-size // stride))
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 1, size, size))
    dy = rng.standard_normal((2, *layer.output_shape))
    assert_same_results(run_layer(layer, x, dy), torch_conv(layer, x, dy), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_grads_accumulate(dtype: Any) -> None:
    rng = np.random.default_rng(11)
    layer = built(Conv2D(2, 3, padding=1, bias_init="normal"), (2, 4, 5), dtype)
    assert isinstance(layer, Conv2D) and layer.W is not None and layer.b is not None
    total: dict[str, Any] = {"W": 0.0, "b": 0.0}
    for _ in range(2):
        x = rng.standard_normal((2, 2, 4, 5)).astype(dtype)
        dy = rng.standard_normal((2, 2, 4, 5)).astype(dtype)
        _, backward = layer(x)
        backward(dy)
        theirs = torch_conv(layer, x, dy)
        total = {k: v + theirs[k] for k, v in total.items()}
    assert_close(layer.W.grad, total["W"], dtype)
    assert_close(layer.b.grad, total["b"], dtype)


def non_contiguous(x: np.ndarray, how: str) -> np.ndarray:
    if how == "fortran":
        return np.asfortranarray(x)
    if how == "transposed":  # channels-last memory, viewed as (N, C, H, W)
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x[:, :, ::-1, :][:, :, ::-1, :]  # negative strides twice: same values


@pytest.mark.parametrize("how", ["fortran", "transposed", "reversed"])
@pytest.mark.parametrize("padding", [0, 1])
def test_conv2d_on_non_contiguous_input(how: str, padding: int) -> None:
    rng = np.random.default_rng(12)
    layer = built(Conv2D(3, (2, 3), stride=(1, 2), padding=padding), (2, 6, 7))
    assert isinstance(layer, Conv2D)
    x = rng.standard_normal((3, 2, 6, 7))
    dy = rng.standard_normal((3, *(layer.output_shape or ())))
    view = non_contiguous(x, how)
    np.testing.assert_array_equal(view, x)
    assert_same_results(
        run_layer(layer, view, dy), torch_conv(layer, x, dy), np.float64
    )


# -------------------------------------------------------------- pools vs torch
class PoolCase(NamedTuple):
    n: int
    channels: int
    h: int
    w: int
    pool: tuple[int, int]
    stride: tuple[int, int] | None


@st.composite
def pool_cases(draw: Callable[..., Any]) -> PoolCase:
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    return PoolCase(
        n=draw(st.integers(1, 3)),
        channels=draw(st.integers(1, 3)),
        h=pool[0] + draw(st.integers(0, 6)),
        w=pool[1] + draw(st.integers(0, 6)),
        pool=pool,
        stride=stride,
    )


def pool_input(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> Any:
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "relu":  # about half zeros: ties in most windows
        return np.maximum(rng.standard_normal(shape), 0.0)
    if kind == "integers":
        return rng.integers(-1, 2, shape).astype(np.float64)
    return np.zeros(shape)  # "constant": every window is one big tie


def compare_pool_with_torch(
    layer: MaxPool2D | AvgPool2D,
    torch_fn: Callable[..., torch.Tensor],
    case: PoolCase,
    x: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    dtype = x.dtype.type
    y, backward = layer(x, training=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    stride = case.stride if case.stride is not None else case.pool
    ty = torch_fn(tx, case.pool, stride)
    ty.backward(torch.tensor(dy))
    assert tx.grad is not None
    assert y.dtype == dtype and dx.dtype == dtype and dx.shape == x.shape
    assert_close(y, ty.detach().numpy(), dtype, "y")
    assert_close(dx, tx.grad.numpy(), dtype, "dx")
    return dx, tx.grad.numpy()


@pytest.mark.parametrize("kind", ["normal", "relu", "integers", "constant"])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=pool_cases(), seed=seeds)
def test_max_pool_matches_torch(
    dtype: Any, kind: str, case: PoolCase, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = pool_input(kind, (case.n, case.channels, case.h, case.w), rng).astype(dtype)
    layer = MaxPool2D(case.pool, case.stride)
    dx, expected = compare_pool_with_torch(layer, F.max_pool2d, case, x, rng)
    # with ties the gradient must go to the same element torch picks (the
    # first maximum in row-major order): the same positions get gradient
    np.testing.assert_array_equal(dx != 0, expected != 0)
    stride = case.stride or case.pool
    if all(s >= p for s, p in zip(stride, case.pool, strict=True)):
        # windows do not overlap: each pixel gets at most one dy, exactly
        np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=pool_cases(), seed=seeds)
def test_avg_pool_matches_torch(dtype: Any, case: PoolCase, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.n, case.channels, case.h, case.w)).astype(dtype)
    layer = AvgPool2D(case.pool, case.stride)
    compare_pool_with_torch(layer, F.avg_pool2d, case, x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    seed=seeds,
)
def test_global_avg_pool_matches_torch(
    dtype: Any, n: int, c: int, h: int, w: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y, backward = GlobalAvgPool2D()(x)
    dy = rng.standard_normal((n, c)).astype(dtype)
    dx = backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tx.mean(dim=(2, 3))
    ty.backward(torch.tensor(dy))
    assert tx.grad is not None
    assert y.dtype == dtype and dx.dtype == dtype
    assert_close(y, ty.detach().numpy(), dtype)
    assert_close(dx, tx.grad.numpy(), dtype)


def test_max_pool_ties_go_to_the_first_maximum() -> None:
    # 2x2 tiles: [[1, 2], [2, 0]] has its maximum at (0, 1) and (1, 0)
    x = np.array([[[[1.0, 2.0, 5.0, 5.0], [2.0, 0.0, 5.0, 5.0]]]])
    layer = MaxPool2D(2)
    y, backward = layer(x)
    np.testing.assert_array_equal(y, [[[[2.0, 5.0]]]])
    dx = backward(np.array([[[[3.0, 7.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 3, 7, 0], [0, 0, 0, 0]]]])


def test_overlapping_max_pool_on_a_constant_image() -> None:
    """Every window's first pixel wins; a pixel winning several windows adds."""
    layer = MaxPool2D(2, stride=1)
    y, backward = layer(np.zeros((1, 1, 3, 3)))
    dy = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    dx = backward(dy)
    np.testing.assert_array_equal(dx, [[[[1, 2, 0], [4, 8, 0], [0, 0, 0]]]])
    # pool 3 stride 1 on a 4x4 plateau with one high pixel shared by 4 windows
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2, 2] = 1.0
    y, backward = MaxPool2D(3, stride=1)(x)
    np.testing.assert_array_equal(y, np.ones((1, 1, 2, 2)))
    dx = backward(dy)
    assert dx[0, 0, 2, 2] == 15.0 and dx.sum() == 15.0


@pytest.mark.parametrize(
    "make",
    [lambda: MaxPool2D(2), lambda: AvgPool2D(3, 2), lambda: AvgPool2D((2, 3))],
    ids=["max_2", "avg_3s2", "avg_2x3"],
)
@pytest.mark.parametrize("how", ["fortran", "transposed", "reversed"])
def test_pools_on_non_contiguous_input(make: Callable[[], Layer], how: str) -> None:
    rng = np.random.default_rng(13)
    x = distinct((2, 3, 7, 8), rng)
    y, backward = make()(non_contiguous(x, how))
    dy = rng.standard_normal(y.shape)
    dx = backward(dy)
    y_ref, backward_ref = make()(x)
    # a mean may sum in another order for another memory layout
    np.testing.assert_allclose(y, y_ref, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(dx, backward_ref(dy), rtol=1e-14, atol=1e-14)


# ---------------------------------------------------------- BatchNorm vs torch
class BNCase(NamedTuple):
    shape: tuple[int, ...]
    momentum: float
    eps: float
    steps: int
    scale: float
    offset: float


@st.composite
def bn_cases(draw: Callable[..., Any]) -> BNCase:
    rank = draw(st.sampled_from([2, 3, 4]))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(rank - 2))
    n = draw(st.integers(2, 5) if rank == 2 else st.integers(1, 4))
    shape = (n, draw(st.integers(1, 4)), *spatial)
    if math.prod(shape) // shape[1] < 2:  # training needs two values per feature
        shape = (2, *shape[1:])
    return BNCase(
        shape=shape,
        momentum=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]) | st.floats(0, 1)),
        eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
        steps=draw(st.integers(1, 4)),
        scale=draw(st.floats(0.5, 3.0)),
        offset=draw(st.floats(-2.0, 2.0)),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=bn_cases(), seed=seeds)
def test_batchnorm_matches_torch(dtype: Any, case: BNCase, seed: int) -> None:
    """Several training steps (output, dx, dgamma, dbeta, running statistics
    after each), then inference with the running statistics."""
    rng = np.random.default_rng(seed)
    c = case.shape[1]
    layer = built(BatchNorm(case.momentum, case.eps), case.shape[1:], dtype)
    assert isinstance(layer, BatchNorm)
    assert layer.gamma is not None and layer.beta is not None
    layer.gamma.data[...] = rng.uniform(0.5, 2.0, c)
    layer.beta.data[...] = rng.standard_normal(c)
    running_mean = torch.zeros(
        c, dtype=torch.float64 if dtype == np.float64 else torch.float32
    )
    running_var = torch.ones_like(running_mean)
    for _ in range(case.steps):
        x = (case.scale * rng.standard_normal(case.shape) + case.offset).astype(dtype)
        dy = rng.standard_normal(case.shape).astype(dtype)
        ours = run_layer(layer, x, dy)
        tx = torch.tensor(x, requires_grad=True)
        tgamma = torch.tensor(layer.gamma.data, requires_grad=True)
        tbeta = torch.tensor(layer.beta.data, requires_grad=True)
        ty = F.batch_norm(
            tx,
            running_mean,
            running_var,
            tgamma,
            tbeta,
            training=True,
            momentum=case.momentum,
            eps=case.eps,
        )
        ty.backward(torch.tensor(dy))
        assert tx.grad is not None and tgamma.grad is not None
        assert tbeta.grad is not None
        theirs = {
            "y": ty.detach().numpy(),
            "dx": tx.grad.numpy(),
            "gamma": tgamma.grad.numpy(),
            "beta": tbeta.grad.numpy(),
        }
        assert_same_results(ours, theirs, dtype)
        assert layer.running_mean is not None and layer.running_var is not None
        assert layer.running_mean.dtype == dtype and layer.running_var.dtype == dtype
        assert_close(layer.running_mean, running_mean.numpy(), dtype, "running_mean")
        assert_close(layer.running_var, running_var.numpy(), dtype, "running_var")

    x = (case.scale * rng.standard_normal(case.shape) + case.offset).astype(dtype)
    y, _ = layer(x, training=False)
    ty = F.batch_norm(
        torch.tensor(x),
        running_mean,
        running_var,
        torch.tensor(layer.gamma.data),
        torch.tensor(layer.beta.data),
        training=False,
        eps=case.eps,
    )
    assert y.dtype == dtype
    assert_close(y, ty.numpy(), dtype, "inference")


# ------------------------------------------------------ Conv2D's chunked path
def count_im2col(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of im2col made by Conv2D (one per chunk per pass)."""
    calls: list[int] = []
    real = conv_module.im2col

    def counting(x: Any, kernel: Any, stride: Any) -> Any:
        calls.append(int(x.shape[0]))
        return real(x, kernel, stride)

    monkeypatch.setattr(conv_module, "im2col", counting)
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_chunk", [1, 2, 3])
def test_chunked_conv2d_equals_unchunked(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, per_chunk: int
) -> None:
    rng = np.random.default_rng(14)
    n, shape = 7, (2, 6, 7)
    layer = built(
        Conv2D(3, (3, 2), stride=(1, 2), padding=1, bias_init="normal"), shape, dtype
    )
    assert isinstance(layer, Conv2D)
    x = rng.standard_normal((n, *shape)).astype(dtype)
    dy = rng.standard_normal((n, *(layer.output_shape or ()))).astype(dtype)
    calls = count_im2col(monkeypatch)
    whole = run_layer(layer, x, dy)
    assert calls == [n]  # one buffer, kept for backward
    assert layer._chunk(np.dtype(dtype).itemsize) >= n

    # a budget that fits per_chunk samples' columns, and not one more
    c, (kh, kw) = shape[0], layer.kernel_size
    assert layer.output_shape is not None
    _, ho, wo = layer.output_shape
    per_sample = c * kh * kw * ho * wo * np.dtype(dtype).itemsize
    monkeypatch.setattr(Conv2D, "max_column_bytes", per_chunk * per_sample + 1)
    assert layer._chunk(np.dtype(dtype).itemsize) == per_chunk
    calls.clear()
    chunked = run_layer(layer, x, dy)
    sizes = [per_chunk] * (n // per_chunk) + ([n % per_chunk] if n % per_chunk else [])
    # forward builds each chunk's columns; backward builds them again
    assert calls == sizes + sizes
    assert set(chunked) == set(whole) == {"y", "dx", "W", "b"}
    for key, value in chunked.items():
        assert value.dtype == dtype
        assert_close(value, whole[key], dtype, key)
    assert_same_results(chunked, torch_conv(layer, x, dy), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_chunk", [1, 3, 7])
def test_inference_goes_in_chunks_of_its_own_budget(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, per_chunk: int
) -> None:
    """Inference keeps no columns: it uses the small, cache-sized budget."""
    rng = np.random.default_rng(16)
    n, shape = 7, (2, 6, 7)
    layer = built(Conv2D(3, 3, padding=1, bias_init="normal"), shape, dtype)
    assert isinstance(layer, Conv2D)
    x = rng.standard_normal((n, *shape)).astype(dtype)
    calls = count_im2col(monkeypatch)
    expected, _ = layer.forward(x, True)  # one buffer, under max_column_bytes
    assert calls == [n]
    per_sample = 2 * 3 * 3 * 6 * 7 * np.dtype(dtype).itemsize
    monkeypatch.setattr(Conv2D, "inference_column_bytes", per_chunk * per_sample + 1)
    assert layer._chunk(np.dtype(dtype).itemsize, training=False) == per_chunk
    assert layer._chunk(np.dtype(dtype).itemsize, training=True) >= n
    calls.clear()
    y, _ = layer.forward(x, False)
    assert calls == [per_chunk] * (n // per_chunk) + (
        [n % per_chunk] if n % per_chunk else []
    )
    assert y.dtype == dtype
    assert_close(y, expected, dtype)  # products of other sizes: equal to rounding
    # the inference budget never raises the training one
    monkeypatch.setattr(Conv2D, "max_column_bytes", per_sample + 1)
    assert layer._chunk(np.dtype(dtype).itemsize, training=False) == 1


def test_chunk_budget_smaller_than_one_sample_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Conv2D, "max_column_bytes", 1)
    rng = np.random.default_rng(15)
    layer = built(Conv2D(2, 3, padding="same", use_bias=False), (1, 5, 5))
    assert isinstance(layer, Conv2D)
    assert layer._chunk(8) == 1
    x = rng.standard_normal((3, 1, 5, 5))
    dy = rng.standard_normal((3, 2, 5, 5))
    assert_same_results(run_layer(layer, x, dy), torch_conv(layer, x, dy), np.float64)


# --------------------------------------------------- shapes, dtypes, configs
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=conv_cases(), seed=seeds)
def test_conv2d_output_shape_and_dtype(dtype: Any, case: ConvCase, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make_conv(case, dtype, seed)
    sample = (case.channels, case.h, case.w)
    assert layer.compute_output_shape(sample) == expected_conv_shape(case)
    assert layer.output_shape == expected_conv_shape(case)
    x = rng.standard_normal((case.n, *sample)).astype(dtype)
    y, backward = layer(x)
    assert y.shape == (case.n, *expected_conv_shape(case)) and y.dtype == dtype
    dx = backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == dtype
    for _, p in layer.named_parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype
        assert p.grad.shape == p.data.shape
    assert {n: p.shape for n, p in layer.named_parameters()} == (
        layer.parameter_shapes(sample)
    )
    y_eval, _ = layer(x, training=False)
    np.testing.assert_array_equal(y_eval, y)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=pool_cases(), seed=seeds)
def test_pool_output_shape_and_dtype(
    cls: type[MaxPool2D | AvgPool2D], dtype: Any, case: PoolCase, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    layer = cls(case.pool, case.stride)
    sample = (case.channels, case.h, case.w)
    (ph, pw), (sh, sw) = case.pool, case.stride or case.pool
    expected = (case.channels, (case.h - ph) // sh + 1, (case.w - pw) // sw + 1)
    assert layer.compute_output_shape(sample) == expected
    x = rng.standard_normal((case.n, *sample)).astype(dtype)
    y, backward = layer(x)
    assert y.shape == (case.n, *expected) and y.dtype == dtype
    assert layer.output_shape == expected
    dx = backward(rng.standard_normal(y.shape).astype(dtype))
    assert dx.shape == x.shape and dx.dtype == dtype
    y_eval, _ = layer(x, training=False)
    np.testing.assert_array_equal(y_eval, y)


pairs = st.integers(1, 4) | st.tuples(st.integers(1, 4), st.integers(1, 4))


@SETTINGS
@given(
    filters=st.integers(1, 64),
    kernel=pairs,
    stride=pairs,
    padding=st.sampled_from(["same", "valid"])
    | st.integers(0, 3)
    | st.tuples(st.integers(0, 3), st.integers(0, 3)),
    use_bias=st.booleans(),
    init=st.sampled_from(["glorot", "he", "normal"]),
)
def test_conv2d_config_round_trip(
    filters: int, kernel: Any, stride: Any, padding: Any, use_bias: bool, init: str
) -> None:
    layer = Conv2D(filters, kernel, stride, padding, use_bias=use_bias, init=init)
    description = json.loads(json.dumps(describe(layer)))
    again = layer_from_config(description)
    assert type(again) is Conv2D
    assert again.get_config() == layer.get_config()
    assert repr(again) == repr(layer)
    assert again.kernel_size == layer.kernel_size and again.stride == layer.stride
    assert again.padding == layer.padding


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@SETTINGS
@given(pool=pairs, stride=st.none() | pairs)
def test_pool_config_round_trip(
    cls: type[MaxPool2D | AvgPool2D], pool: Any, stride: Any
) -> None:
    layer = cls(pool, stride)
    again = layer_from_config(json.loads(json.dumps(describe(layer))))
    assert type(again) is cls
    assert again.get_config() == layer.get_config()
    assert isinstance(again, cls)
    assert again.pool_size == layer.pool_size and again.stride == layer.stride


@pytest.mark.parametrize(
    "layer",
    [
        GlobalAvgPool2D(),
        BatchNorm(),
        BatchNorm(momentum=0.0, eps=0.5),
        BatchNorm(momentum=1),
        Reshape((1, 28, 28)),
        Reshape([-1, 3]),
    ],
    ids=repr,
)
def test_config_round_trip(layer: Layer) -> None:
    again = layer_from_config(json.loads(json.dumps(describe(layer))))
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()
    assert repr(again) == repr(layer)


# -------------------------------------------- behaviour shared by new layers
NEW_LAYERS = [
    param(lambda: Conv2D(2, 3), (1, 5, 5), id="conv"),
    param(lambda: MaxPool2D(2), (2, 4, 5), id="max_pool"),
    param(lambda: AvgPool2D(2, stride=1), (2, 4, 5), id="avg_pool"),
    param(GlobalAvgPool2D, (2, 3, 3), id="global_avg_pool"),
    param(BatchNorm, (2, 3, 3), id="batchnorm"),
    param(lambda: Reshape((-1,)), (2, 3, 3), id="reshape"),
]


@pytest.mark.parametrize("bad_dtype", [np.float16, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize(("make", "shape"), NEW_LAYERS)
def test_non_float_input_is_a_type_error(
    make: Callable[[], Layer], shape: tuple[int, ...], bad_dtype: Any
) -> None:
    with pytest.raises(TypeError, match="expected a float32 or float64 array") as info:
        make()(np.ones((2, *shape), dtype=bad_dtype))
    assert np.dtype(bad_dtype).name in str(info.value)


@pytest.mark.parametrize(("make", "shape"), NEW_LAYERS)
def test_inference_forward_has_no_backward(
    make: Callable[[], Layer], shape: tuple[int, ...]
) -> None:
    x = np.random.default_rng(16).standard_normal((3, *shape)).astype(np.float32)
    layer = make()
    y, backward = layer(x, training=False)
    assert y.dtype == np.float32
    with pytest.raises(RuntimeError, match="training=False"):
        backward(np.ones_like(y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make", "shape"), NEW_LAYERS)
def test_empty_batch(
    make: Callable[[], Layer], shape: tuple[int, ...], dtype: Any
) -> None:
    """A batch of zero samples gives ``(0, *out)`` (BatchNorm: in inference)."""
    layer = built(make(), shape, dtype)
    x = np.zeros((0, *shape), dtype=dtype)
    training = not isinstance(layer, BatchNorm)
    y, backward = layer(x, training=training)
    assert y.shape == (0, *layer.compute_output_shape(shape)) and y.dtype == dtype
    if training:
        dx = backward(np.zeros(y.shape, dtype=dtype))
        assert dx.shape == x.shape and dx.dtype == dtype


@pytest.mark.parametrize(
    ("make", "shape"),
    [(lambda: Conv2D(2, 3), (1, 5, 5)), (BatchNorm, (3,))],
    ids=["conv", "batchnorm"],
)
@pytest.mark.parametrize(
    ("layer_dtype", "x_dtype"), [(np.float32, np.float64), (np.float64, np.float32)]
)
def test_input_dtype_must_match_parameters(
    make: Callable[[], Layer], shape: tuple[int, ...], layer_dtype: Any, x_dtype: Any
) -> None:
    layer = built(make(), shape, layer_dtype)
    with pytest.raises(TypeError, match=r"\.astype\(\)"):
        layer(np.ones((2, *shape), dtype=x_dtype))


def test_astype_converts_batchnorm_buffers() -> None:
    layer = built(BatchNorm(), (3,), np.float32)
    layer.astype(np.float64)
    assert all(b.dtype == np.float64 for _, b in layer.named_buffers())
    y, _ = layer(np.random.default_rng(17).standard_normal((4, 3)))
    assert y.dtype == np.float64


# ------------------------------------------------------------ bad settings
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        param(
            lambda: Conv2D(0, 3),
            ValueError,
            "Conv2D: filters must be a positive integer, got 0",
            id="filters-0",
        ),
        param(
            lambda: Conv2D(-2, 3),
            ValueError,
            "filters must be a positive integer, got -2",
            id="filters-neg",
        ),
        param(
            lambda: Conv2D(2.0, 3),
            ValueError,
            "filters must be a positive integer, got 2.0",
            id="filters-float",
        ),
        param(
            lambda: Conv2D(4, 0),
            ValueError,
            "Conv2D: kernel_size must be a positive integer or a pair",
            id="kernel-0",
        ),
        param(
            lambda: Conv2D(4, (3, -1)),
            ValueError,
            "kernel_size must be a positive integer",
            id="kernel-neg",
        ),
        param(
            lambda: Conv2D(4, (3, 3, 3)),
            ValueError,
            "kernel_size must be .* pair",
            id="kernel-triple",
        ),
        param(
            lambda: Conv2D(4, 3, stride=0),
            ValueError,
            "Conv2D: stride must be a positive integer",
            id="stride-0",
        ),
        param(
            lambda: Conv2D(4, 3, stride=(1, -2)),
            ValueError,
            "stride must be a positive integer",
            id="stride-neg",
        ),
        param(
            lambda: Conv2D(4, 3, padding="full"),
            ValueError,
            "Conv2D: padding must be 'same', 'valid'.*'full'",
            id="padding-str",
        ),
        param(
            lambda: Conv2D(4, 3, padding="SAME"),
            ValueError,
            "padding must be 'same', 'valid'",
            id="padding-case",
        ),
        param(
            lambda: Conv2D(4, 3, padding=-1),
            ValueError,
            "Conv2D: padding must be an integer >= 0",
            id="padding-neg",
        ),
        param(
            lambda: Conv2D(4, 3, padding=(1, -1)),
            ValueError,
            "padding must be an integer >= 0",
            id="padding-pair-neg",
        ),
        param(
            lambda: Conv2D(4, 3, padding=1.5),
            ValueError,
            "padding must be an integer >= 0",
            id="padding-float",
        ),
        param(
            lambda: Conv2D(4, 3, use_bias=1),
            TypeError,
            "use_bias must be True or False",
            id="use-bias",
        ),
        param(
            lambda: Conv2D(4, 3, init="bogus"),
            ValueError,
            "init must be one of.*'bogus'",
            id="init",
        ),
        param(
            lambda: Conv2D(4, 3, bias_init="bogus"),
            ValueError,
            "bias_init.*'bogus'",
            id="bias-init",
        ),
        param(
            lambda: MaxPool2D(0),
            ValueError,
            "MaxPool2D: pool_size must be a positive integer",
            id="max-pool-0",
        ),
        param(
            lambda: MaxPool2D(2, stride=0),
            ValueError,
            "MaxPool2D: stride must be a positive integer",
            id="max-stride-0",
        ),
        param(
            lambda: AvgPool2D((2, 0)),
            ValueError,
            "AvgPool2D: pool_size must be a positive integer",
            id="avg-pool-0",
        ),
        param(
            lambda: AvgPool2D(2, stride=-1),
            ValueError,
            "AvgPool2D: stride must be a positive integer",
            id="avg-stride-neg",
        ),
        param(
            lambda: BatchNorm(momentum=-0.1),
            ValueError,
            r"BatchNorm: invalid momentum -0\.1",
            id="momentum-neg",
        ),
        param(
            lambda: BatchNorm(momentum=1.5),
            ValueError,
            r"BatchNorm: invalid momentum 1\.5 \(must be in \[0, 1\]\)",
            id="momentum-big",
        ),
        param(
            lambda: BatchNorm(momentum=float("nan")),
            ValueError,
            "momentum nan",
            id="momentum-nan",
        ),
        param(
            lambda: BatchNorm(momentum="0.1"),
            TypeError,
            "BatchNorm: momentum must be a number",
            id="momentum-str",
        ),
        param(
            lambda: BatchNorm(eps=0),
            ValueError,
            r"BatchNorm: invalid eps 0\.0 \(must be > 0\)",
            id="eps-0",
        ),
        param(
            lambda: BatchNorm(eps=-1e-5),
            ValueError,
            "BatchNorm: invalid eps",
            id="eps-neg",
        ),
        param(
            lambda: Reshape((2, -1, -1)),
            ValueError,
            "at most one -1",
            id="reshape-two-minus-ones",
        ),
        param(
            lambda: Reshape((0, 4)),
            ValueError,
            "Reshape: target_shape must be .*positive integers.*0, 4",
            id="reshape-zero",
        ),
        param(
            lambda: Reshape((2, -2)),
            ValueError,
            "target_shape must be",
            id="reshape-neg",
        ),
        param(lambda: Reshape(()), ValueError, "non-empty", id="reshape-empty"),
        param(lambda: Reshape(4), ValueError, "target_shape must be", id="reshape-int"),
        param(
            lambda: Reshape((2.0, 2)),
            ValueError,
            "target_shape must be",
            id="reshape-float",
        ),
        param(
            lambda: Reshape((True, 4)),
            ValueError,
            "target_shape must be",
            id="reshape-bool",
        ),
    ],
)
def test_bad_hyperparameters_name_the_argument(
    make: Callable[[], Layer], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("layer", "shape", "match"),
    [
        param(
            Conv2D(2, 5),
            (1, 3, 3),
            r"kernel 5x5 is larger than the padded input 3x3 \(input 3x3\)",
            id="conv-kernel",
        ),
        param(
            Conv2D(2, (2, 6), padding=1),
            (1, 4, 3),
            r"kernel 2x6 is larger than the padded input 6x5 \(input 4x3\)",
            id="conv-padded",
        ),
        param(
            MaxPool2D(3),
            (2, 2, 5),
            r"MaxPool2D\(pool_size=3\): pool window 3x3 is larger than the input 2x5",
            id="max-pool",
        ),
        param(
            AvgPool2D((2, 4)),
            (1, 4, 3),
            "pool window 2x4 is larger than the input 4x3",
            id="avg-pool",
        ),
        param(
            BatchNorm(),
            (2, 3, 4, 5),
            r"BatchNorm\(\) expected \(N, features\), \(N, channels, length\) or "
            r"\(N, channels, height, width\), got \(N, 2, 3, 4, 5\)",
            id="bn-rank5",
        ),
        param(
            Reshape((5, 5)),
            (4, 6),
            r"Reshape\(target_shape=\[5, 5\]\) cannot reshape \(4, 6\) "
            r"\(24 values per sample\) to \(5, 5\) \(25 values\)",
            id="reshape-size",
        ),
        param(
            Reshape((5, -1)),
            (4, 6),
            "24 is not a multiple of 5",
            id="reshape-minus-one",
        ),
    ],
)
def test_shapes_that_do_not_fit(
    layer: Layer, shape: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        layer.build(shape)
    assert not layer.built
    with pytest.raises(ValueError, match=match):
        layer(np.zeros((2, *shape), np.float32))


@pytest.mark.parametrize(
    "make",
    [lambda: Conv2D(8, 3), lambda: MaxPool2D(2), lambda: AvgPool2D(2), GlobalAvgPool2D],
    ids=["conv", "max_pool", "avg_pool", "global_avg_pool"],
)
def test_grey_images_without_channel_axis_suggest_reshape(
    make: Callable[[], Layer],
) -> None:
    layer = make()
    with pytest.raises(ValueError, match=r"Reshape\(\(1, 28, 28\)\)") as info:
        layer(np.zeros((2, 28, 28), np.float32))
    message = str(info.value)
    assert repr(layer) in message and "(N, 28, 28)" in message
    assert "(N, channels, height, width)" in message
    for bad in [(2, 784), (2, 1, 1, 28, 28)]:
        with pytest.raises(ValueError, match=r"expected images of shape \(N, channels"):
            make()(np.zeros(bad, np.float32))


def test_built_conv_names_expected_and_actual_shapes() -> None:
    layer = built(Conv2D(2, 3), (1, 5, 5), np.float32)
    with pytest.raises(
        ValueError,
        match=r"expected input of shape \(N, 1, 5, 5\), got shape \(4, 1, 6, 6\)",
    ):
        layer(np.zeros((4, 1, 6, 6), np.float32))


@pytest.mark.parametrize("shape", [(1, 3), (1, 2, 1), (1, 4, 1, 1), (0, 3)])
def test_batchnorm_training_needs_two_values_per_feature(
    shape: tuple[int, ...],
) -> None:
    layer = BatchNorm()
    with pytest.raises(
        ValueError, match="needs more than one value per feature"
    ) as info:
        layer(np.ones(shape, np.float32), training=True)
    assert str(shape) in str(info.value)
    y, _ = layer(np.ones(shape, np.float32), training=False)  # inference is fine
    assert y.shape == shape


# -------------------------------------------------------- BatchNorm buffers
def test_batchnorm_running_statistics() -> None:
    rng = np.random.default_rng(18)
    layer = built(BatchNorm(momentum=0.25), (3, 2, 2))
    assert isinstance(layer, BatchNorm)
    assert [n for n, _ in layer.named_buffers()] == ["running_mean", "running_var"]
    assert layer.buffer_shapes((3, 2, 2)) == {"running_mean": (3,), "running_var": (3,)}
    assert layer.running_mean is not None and layer.running_var is not None
    np.testing.assert_array_equal(layer.running_mean, 0)
    np.testing.assert_array_equal(layer.running_var, 1)
    assert [n for n, _ in layer.named_parameters()] == ["gamma", "beta"]

    x = 3 * rng.standard_normal((4, 3, 2, 2)) + 2
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3), ddof=1)  # 16 values per channel, unbiased
    layer(x, training=True)
    np.testing.assert_allclose(layer.running_mean, 0.75 * 0 + 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.75 * 1 + 0.25 * var, rtol=1e-12)

    before = [b.copy() for _, b in layer.named_buffers()]
    x2 = rng.standard_normal((5, 3, 2, 2)) - 1
    y, _ = layer(x2, training=False)
    for b, (_, now) in zip(before, layer.named_buffers(), strict=True):
        np.testing.assert_array_equal(b, now)
    # inference: the running statistics in place of the batch's
    assert layer.gamma is not None and layer.beta is not None
    layer.gamma.data[...] = [0.5, -2.0, 1.5]
    layer.beta.data[...] = [1.0, 0.0, -3.0]
    y, _ = layer(x2, training=False)
    shape = (1, 3, 1, 1)
    expected = (x2 - layer.running_mean.reshape(shape)) / np.sqrt(
        layer.running_var.reshape(shape) + layer.eps
    ) * layer.gamma.data.reshape(shape) + layer.beta.data.reshape(shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # and training mode does not: its output has the batch's statistics
    y_train, _ = layer(x2, training=True)
    normalised = (y_train - layer.beta.data.reshape(shape)) / layer.gamma.data.reshape(
        shape
    )
    np.testing.assert_allclose(normalised.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(normalised.var(axis=(0, 2, 3)), 1, rtol=1e-4)


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_batchnorm_momentum_extremes(momentum: float) -> None:
    rng = np.random.default_rng(19)
    layer = built(BatchNorm(momentum=momentum), (2,))
    assert isinstance(layer, BatchNorm)
    for _ in range(3):
        x = rng.standard_normal((6, 2)) * 2 + 5
        layer(x)
    assert layer.running_mean is not None and layer.running_var is not None
    if momentum == 0:  # never moves
        np.testing.assert_array_equal(layer.running_mean, 0)
        np.testing.assert_array_equal(layer.running_var, 1)
    else:  # the last batch's statistics (unbiased variance)
        np.testing.assert_allclose(layer.running_mean, x.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, x.var(axis=0, ddof=1), rtol=1e-12)


def test_batchnorm_check_buffers_refuses_negative_variance() -> None:
    layer = built(BatchNorm(), (3,))
    assert isinstance(layer, BatchNorm) and layer.running_var is not None
    layer.check_buffers()
    layer.running_var[...] = [1.0, 0.0, 2.0]  # zero variance is possible
    layer.check_buffers()
    layer.running_var[1] = -1e-3
    with pytest.raises(ValueError, match="running_var has negative values"):
        layer.check_buffers()


def test_reshape_forward_and_backward() -> None:
    x = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)
    layer = Reshape((3, -1))
    y, backward = layer(x)
    assert layer.output_shape == (3, 4)
    np.testing.assert_array_equal(y, x.reshape(2, 3, 4))
    dy = np.random.default_rng(20).standard_normal((2, 3, 4)).astype(np.float32)
    dx = backward(dy)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, dy.reshape(2, 12))


# ------------------------------------------------------------- large windows
def test_max_pool_with_a_window_of_more_than_65536_positions() -> None:
    """A window may hold any number of pixels, also more than a uint16 counts.

    MaxPool2D records each window's winning offset as uint16, so a window of
    more than 65,536 positions (e.g. a global max over a 257x257 image) fails.
    """
    width = 65_537
    x = np.zeros((1, 1, 1, width))
    x[0, 0, 0, -1] = 1.0  # the maximum is the last of 65,537 positions
    layer = MaxPool2D((1, width))
    y, backward = layer(x)
    np.testing.assert_array_equal(y, [[[[1.0]]]])
    dx = backward(np.full((1, 1, 1, 1), 2.0))
    assert dx[0, 0, 0, -1] == 2.0 and dx.sum() == 2.0

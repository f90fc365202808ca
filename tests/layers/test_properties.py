"""Property tests: shapes and dtypes for any batch, stable activations, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pytest import param

from chainrule import backend
from chainrule.layers import (
    Dense,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy

DTYPES = [np.float32, np.float64]
SETTINGS = settings(deadline=None, max_examples=25, derandomize=True)

# (id, factory, takes only (N, features) input)
LAYERS: list[tuple[str, Callable[[], Layer], bool]] = [
    ("dense", lambda: Dense(3), True),
    ("dense_no_bias", lambda: Dense(5, use_bias=False), True),
    ("sigmoid", Sigmoid, False),
    ("tanh", Tanh, False),
    ("relu", ReLU, False),
    ("leaky_relu", lambda: LeakyReLU(0.1), False),
    ("softmax", Softmax, False),
    ("identity", Identity, False),
    ("flatten", Flatten, False),
    ("rescaling", lambda: Rescaling(0.5, offset=-1.0), False),
    ("reshape_flat", lambda: Reshape((-1,)), False),
]
LAYER_IDS = [case[0] for case in LAYERS]
LAYER_CASES = [case[1:] for case in LAYERS]


def built(make: Callable[[], Layer], input_shape: tuple[int, ...], dtype: Any) -> Layer:
    """A layer built for ``input_shape`` with parameters in ``dtype``."""
    layer = make()
    with backend.precision(dtype):
        layer.build(input_shape, np.random.default_rng(0))
    return layer


# ----------------------------------------------------------- shapes and dtypes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make", "flat_only"), LAYER_CASES, ids=LAYER_IDS)
@SETTINGS
@given(
    n=st.integers(1, 9),
    features=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
    seed=st.integers(0, 2**32 - 1),
)
def test_output_shape_and_dtype(
    make: Callable[[], Layer],
    flat_only: bool,
    dtype: Any,
    n: int,
    features: tuple[int, ...],
    seed: int,
) -> None:
    if flat_only:
        features = features[:1]
    rng = np.random.default_rng(seed)
    layer = built(make, features, dtype)
    x = rng.standard_normal((n, *features)).astype(dtype)

    y, backward = layer(x, training=True)
    assert y.shape == (n, *layer.compute_output_shape(features))
    assert layer.output_shape == layer.compute_output_shape(features)
    assert y.dtype == dtype

    dx = backward(rng.standard_normal(y.shape).astype(dtype))
    assert dx.shape == x.shape
    assert dx.dtype == dtype
    for _, p in layer.named_parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype
        assert p.grad.shape == p.data.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("make", "flat_only"), LAYER_CASES, ids=LAYER_IDS)
def test_empty_batch(make: Callable[[], Layer], flat_only: bool, dtype: Any) -> None:
    """A batch of zero samples (e.g. the remainder of a split) gives (0, *out)."""
    features = (4,) if flat_only else (2, 3)
    layer = built(make, features, dtype)
    x = np.zeros((0, *features), dtype=dtype)
    y, backward = layer(x, training=True)
    assert y.shape == (0, *layer.compute_output_shape(features))
    assert y.dtype == dtype
    dx = backward(np.zeros(y.shape, dtype=dtype))
    assert dx.shape == x.shape


@pytest.mark.parametrize(("make", "flat_only"), LAYER_CASES, ids=LAYER_IDS)
def test_inference_forward_has_no_backward(
    make: Callable[[], Layer], flat_only: bool
) -> None:
    rng = np.random.default_rng(1)
    features = (4,) if flat_only else (2, 3)
    layer = built(make, features, np.float32)
    x = rng.standard_normal((3, *features)).astype(np.float32)
    y_train, _ = layer(x, training=True)
    y, backward = layer(x, training=False)
    np.testing.assert_array_equal(y, y_train)
    with pytest.raises(RuntimeError, match="training=False"):
        backward(np.ones_like(y))


# ------------------------------------------------------- numerical stability
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_sigmoid_in_unit_interval_for_any_input(
    dtype: Any, data: st.DataObject
) -> None:
    width = np.dtype(dtype).itemsize * 8
    x = data.draw(
        arrays(
            dtype,
            st.tuples(st.integers(1, 4), st.integers(1, 6)),
            elements=st.floats(width=width, allow_nan=False),
        )
    )
    y, backward = Sigmoid()(x, training=True)
    assert y.dtype == dtype
    assert ((y >= 0) & (y <= 1)).all()
    assert (y[x == np.inf] == 1).all() and (y[x == -np.inf] == 0).all()
    dx = backward(np.ones_like(y))
    assert np.isfinite(dx).all() and (dx >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_at_the_ends_of_the_float_range(dtype: Any) -> None:
    big = np.finfo(dtype).max
    x = np.array([[big, -big, np.inf, -np.inf, 1e4, -1e4, 0.0]], dtype=dtype)
    y, _ = Sigmoid()(x)
    np.testing.assert_array_equal(y, [[1, 0, 1, 0, 1, 0, 0.5]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_keeps_relative_precision_in_the_lower_tail(dtype: Any) -> None:
    # σ(x) ≈ e^x for very negative x: a form like 0.5·(1 + tanh(x/2)) would
    # round these to 0; e^x / (1 + e^x) must keep them to the last few bits
    x = np.array([[-20.0, -50.0, -80.0, -5.0, 5.0, 20.0]])
    exact = 1 / (1 + np.exp(-x))  # float64 reference, exact enough here
    y, _ = Sigmoid()(x.astype(dtype))
    assert (y[0, :3] > 0).all()
    np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_softmax_rows_sum_to_one_for_any_finite_input(
    dtype: Any, data: st.DataObject
) -> None:
    width = np.dtype(dtype).itemsize * 8
    big = float(np.finfo(dtype).max)
    x = data.draw(
        arrays(
            dtype,
            st.tuples(st.integers(1, 4), st.integers(1, 6)),
            # Plain draws rarely reach the ends of the range: ask for them too.
            elements=st.floats(width=width, allow_nan=False, allow_infinity=False)
            | st.sampled_from([big, -big, big / 2, -big / 2]),
        )
    )
    y, backward = Softmax()(x, training=True)
    assert y.dtype == dtype
    assert np.isfinite(y).all() and ((y >= 0) & (y <= 1)).all()
    np.testing.assert_allclose(
        y.sum(axis=-1), 1, rtol=1e-5 if dtype == np.float32 else 1e-12
    )
    assert np.isfinite(backward(np.ones_like(y))).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_the_largest_opposite_logits(dtype: Any) -> None:
    """``x - max(x)`` must not overflow when the row spans the whole float range."""
    big = np.finfo(dtype).max
    x = np.array([[big, -big], [-big, big], [big, big]], dtype=dtype)
    y, _ = Softmax()(x)
    np.testing.assert_array_equal(y, [[1, 0], [0, 1], [0.5, 0.5]])


# --------------------------------------------------------------- bad input
def test_dense_wrong_feature_count_names_layer_and_shapes() -> None:
    layer = Dense(10)
    layer.build((784,), np.random.default_rng(0))
    x = np.zeros((32, 100), dtype=np.float32)
    with pytest.raises(ValueError, match=r"Dense\(units=10\)") as info:
        layer(x)
    assert "784" in str(info.value)
    assert "(32, 100)" in str(info.value)


def test_dense_image_input_at_build_suggests_flatten() -> None:
    with pytest.raises(ValueError, match="Flatten") as info:
        Dense(10).build((28, 28), np.random.default_rng(0))
    assert "Dense(units=10)" in str(info.value)
    assert "28, 28" in str(info.value)


def test_unbuilt_dense_called_on_images_suggests_flatten() -> None:
    with pytest.raises(ValueError, match="Flatten"):
        Dense(10)(np.zeros((2, 28, 28), dtype=np.float32))


def test_activation_called_with_other_shape_than_built() -> None:
    layer = ReLU()
    layer(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"ReLU\(\).*\(N, 3\).*\(2, 4\)"):
        layer(np.ones((2, 4), dtype=np.float32))


@pytest.mark.parametrize("int_dtype", [np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize(("make", "flat_only"), LAYER_CASES, ids=LAYER_IDS)
def test_non_float_input_is_a_type_error(
    make: Callable[[], Layer], flat_only: bool, int_dtype: Any
) -> None:
    features = (4,) if flat_only else (2, 3)
    layer = built(make, features, np.float32)
    x = np.ones((2, *features), dtype=int_dtype)
    with pytest.raises(TypeError, match="expected a float32 or float64 array") as info:
        layer(x)
    assert np.dtype(int_dtype).name in str(info.value)


@pytest.mark.parametrize(("make", "flat_only"), LAYER_CASES, ids=LAYER_IDS)
def test_non_array_and_scalar_input(make: Callable[[], Layer], flat_only: bool) -> None:
    layer = make()
    with pytest.raises(TypeError, match="expected an array, got list"):
        layer([[1.0, 2.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scalar"):
        layer(np.float32(1.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layer_dtype", "x_dtype"), [(np.float32, np.float64), (np.float64, np.float32)]
)
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_input_dtype_must_match_parameters(
    layer_dtype: Any, x_dtype: Any, use_bias: bool
) -> None:
    layer = built(lambda: Dense(3, use_bias=use_bias), (4,), layer_dtype)
    with pytest.raises(TypeError, match=r"\.astype\(\)") as info:
        layer(np.ones((2, 4), dtype=x_dtype))
    message = str(info.value)
    assert np.dtype(layer_dtype).name in message and np.dtype(x_dtype).name in message
    assert "Dense(units=3" in message


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        param(
            lambda: Dense(0),
            ValueError,
            "Dense: units must be a positive integer, got 0",
            id="dense_0",
        ),
        param(
            lambda: Dense(-3),
            ValueError,
            "units must be a positive integer, got -3",
            id="dense_neg",
        ),
        param(
            lambda: Dense(2.5),
            ValueError,
            "units must be a positive integer, got 2.5",
            id="dense_float",
        ),
        param(
            lambda: Dense(True),
            ValueError,
            "units must be a positive integer, got True",
            id="dense_bool",
        ),
        param(
            lambda: Dense("8"),
            ValueError,
            "units must be a positive integer, got '8'",
            id="dense_str",
        ),
        param(
            lambda: Dense(4, init="bogus"),
            ValueError,
            "init must be one of.*'bogus'",
            id="dense_init",
        ),
        param(
            lambda: Dense(4, bias_init="bogus"),
            ValueError,
            "bias_init.*'bogus'",
            id="dense_bias_init",
        ),
        param(
            lambda: Dense(4, use_bias="yes"),
            TypeError,
            "use_bias must be True or False",
            id="dense_use_bias",
        ),
        param(
            lambda: LeakyReLU(-1),
            ValueError,
            r"LeakyReLU: invalid alpha -1\.0 \(must be >= 0\)",
            id="leaky_neg",
        ),
        param(
            lambda: LeakyReLU("0.1"),
            (TypeError, ValueError),
            "LeakyReLU: alpha",
            id="leaky_str",
        ),
        param(
            lambda: LeakyReLU(float("nan")),
            ValueError,
            r"LeakyReLU: invalid alpha nan \(must be finite\)",
            id="leaky_nan",
        ),
        param(
            lambda: Rescaling("a"),
            TypeError,
            "Rescaling: scale must be a number",
            id="rescaling_str",
        ),
        param(
            lambda: Rescaling(float("nan")),
            ValueError,
            r"Rescaling: invalid scale (nan|inf) \(must be finite\)",
            id="rescaling_nan",
        ),
        param(
            lambda: Rescaling(float("inf")),
            ValueError,
            r"Rescaling: invalid scale (nan|inf) \(must be finite\)",
            id="rescaling_inf",
        ),
        param(
            lambda: Rescaling(1.0, offset=None),
            TypeError,
            "Rescaling: offset",
            id="offset_none",
        ),
        param(
            lambda: Rescaling(1.0, offset=float("-inf")),
            ValueError,
            r"Rescaling: invalid offset -inf",
            id="offset_inf",
        ),
    ],
)
def test_bad_hyperparameters_name_the_argument(
    make: Callable[[], Layer], error: Any, match: str
) -> None:
    with pytest.raises(error, match=match):
        make()


# ------------------------------------------------------------- bad loss input
LOGITS = np.zeros((4, 3), dtype=np.float32)


@pytest.mark.parametrize(
    ("loss", "y", "error", "match"),
    [
        (CrossEntropy(), np.array([0, 1, 2, 3]), ValueError, r"labels in \[0, 2\]"),
        (CrossEntropy(), np.array([0, -1, 2, 1]), ValueError, "from -1 to 2"),
        (
            CrossEntropy(),
            np.array([0.0, 1.0, 2.0, 1.0]),
            TypeError,
            "CrossEntropy expected integer class labels, got dtype float64",
        ),
        (CrossEntropy(), np.array([0, 1, 2]), ValueError, "expected 4 targets"),
        (
            CrossEntropy(),
            np.zeros((4, 4)),
            ValueError,
            r"targets of shape \(4,\) or \(4, 3\), got \(4, 4\)",
        ),
        (CrossEntropy(), np.zeros((4, 3, 1)), ValueError, "CrossEntropy expected"),
        (BinaryCrossEntropy(), np.array([0, 1, 3, 2]), ValueError, r"\[0, 2\]"),
        (BinaryCrossEntropy(), np.zeros((5, 3)), ValueError, "expected 4 targets"),
        (
            BinaryCrossEntropy(),
            np.zeros((4, 2)),
            ValueError,
            r"targets of shape \(4, 3\) or \(4,\) labels, got \(4, 2\)",
        ),
        (
            BinaryCrossEntropy(),
            np.full((4, 3), 1.5),
            ValueError,
            r"targets in \[0, 1\]",
        ),
        (BinaryCrossEntropy(), np.array([0.0, 1.0, 1.0, 0.0]), TypeError, "integer"),
        (
            MSE(),
            np.zeros((4, 2)),
            ValueError,
            r"MSE expected targets of shape \(4, 3\)",
        ),
        (MSE(), np.zeros((3, 3)), ValueError, "MSE expected 4 targets"),
    ],
    ids=[
        "ce_label_too_big",
        "ce_label_negative",
        "ce_float_labels",
        "ce_rows",
        "ce_target_shape",
        "ce_target_rank",
        "bce_label_too_big",
        "bce_rows",
        "bce_target_shape",
        "bce_target_range",
        "bce_float_labels",
        "mse_target_shape",
        "mse_rows",
    ],
)
def test_bad_targets_give_clear_errors(
    loss: Any, y: np.ndarray, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        loss(LOGITS, y)


def test_bce_single_output_rejects_labels_other_than_0_1() -> None:
    with pytest.raises(ValueError, match=r"labels in \[0, 1\].*to 2"):
        BinaryCrossEntropy()(np.zeros((3, 1), np.float32), np.array([0, 1, 2]))


@pytest.mark.parametrize("cls", [CrossEntropy, BinaryCrossEntropy, MSE])
def test_integer_logits_are_rejected(cls: Any) -> None:
    with pytest.raises(ValueError, match=f"{cls.__name__} expected float logits"):
        cls()(np.zeros((4, 3), dtype=np.int64), np.zeros(4, dtype=np.int64))


@pytest.mark.parametrize("cls", [CrossEntropy, BinaryCrossEntropy, MSE])
@pytest.mark.parametrize("reduction", ["avg", "none", "Mean", None])
def test_invalid_reduction(cls: Any, reduction: Any) -> None:
    with pytest.raises(ValueError, match="reduction must be one of") as info:
        cls(reduction)
    assert cls.__name__ in str(info.value) and repr(reduction) in str(info.value)


def test_a_new_layer_builds_in_the_dtype_of_its_first_input() -> None:
    dense = Dense(3)
    y, _ = dense(np.random.default_rng(0).standard_normal((2, 4)))
    assert y.dtype == np.float64
    assert dense.W is not None and dense.W.data.dtype == np.float64


@pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), Flatten()])
def test_half_precision_is_refused(layer: Layer) -> None:
    with pytest.raises(TypeError, match="float32 or float64 array, got dtype float16"):
        layer(np.zeros((2, 3), np.float16))


@pytest.mark.parametrize("loss", [CrossEntropy(), BinaryCrossEntropy(), MSE()])
def test_losses_refuse_empty_batches_and_nan_targets(loss: Any) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        loss(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
    y = np.full((2, 3), 0.5, np.float32)
    y[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite targets"):
        loss(np.zeros((2, 3), np.float32), y)


def test_cross_entropy_refuses_negative_probabilities() -> None:
    y = np.array([[1.5, -0.5, 0.0]], np.float32)
    with pytest.raises(ValueError, match=r"targets in \[0, inf\]"):
        CrossEntropy()(np.zeros((1, 3), np.float32), y)

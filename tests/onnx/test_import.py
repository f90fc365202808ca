"""Import: each supported operator against onnxruntime, round trips, and refusals.

Small graphs are written with ``onnx.helper``; each converted model must
compute what onnxruntime computes from the same graph (within 1e-5), and each
graph chainrule cannot express must be refused with an error that names the
node and what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from chainrule.config import describe
from chainrule.layers import Dropout, Identity
from chainrule.model import Sequential
from chainrule.onnx import OnnxError, from_onnx, import_onnx, to_onnx

TOLERANCE = 1e-5
RNG = np.random.default_rng(0)


def weights(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)


def graph(
    nodes: list[Any],
    inits: dict[str, Any] | None = None,
    shape: list[Any] | None = None,
    outputs: tuple[str, ...] = ("y",),
    opset: int = 17,
    elem: int = TensorProto.FLOAT,
    extra_inputs: tuple[str, ...] = (),
) -> Any:
    """A model: input ``x`` of ``shape`` (batch ``N``), ``nodes``, outputs."""
    inputs = [helper.make_tensor_value_info("x", elem, shape or ["N", 3, 8, 8])]
    inputs += [
        helper.make_tensor_value_info(
            name, TensorProto.FLOAT, np.shape((inits or {}).get(name, [0.0]))
        )
        for name in extra_inputs
    ]
    proto = helper.make_model(
        helper.make_graph(
            nodes,
            "test",
            inputs,
            [
                helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                for o in outputs
            ],
            [
                numpy_helper.from_array(np.asarray(v), k)
                for k, v in (inits or {}).items()
            ],
        ),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    # onnx.checker wants a shape on every output: inferred where it can be
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except onnx.shape_inference.InferenceError:
        pass  # an operator of another domain: left to the importer to refuse
    for value in proto.graph.output:
        value.type.tensor_type.shape.SetInParent()
    return proto


def node(op: str, inputs: list[str], output: str = "y", **attrs: Any) -> Any:
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def scalar(value: float) -> np.ndarray:
    return np.array(value, np.float32)


# ---------------------------------------------------------- each operator
CASES: dict[str, tuple[Callable[[], Any], list[str]]] = {
    "gemm_transB_alpha_beta": (
        lambda: graph(
            [node("Gemm", ["x", "W", "b"], transB=1, alpha=0.5, beta=2.0)],
            {"W": weights(4, 5), "b": weights(4)},
            ["N", 5],
        ),
        ["Dense(units=4)"],
    ),
    "gemm_without_bias": (
        lambda: graph([node("Gemm", ["x", "W"])], {"W": weights(5, 4)}, ["N", 5]),
        ["Dense(units=4, use_bias=False)"],
    ),
    "matmul_then_add_is_one_dense": (
        lambda: graph(
            [node("MatMul", ["x", "W"], "h"), node("Add", ["b", "h"])],
            {"W": weights(5, 4), "b": weights(1, 4)},
            ["N", 5],
        ),
        ["Dense(units=4)"],
    ),
    "scalar_arithmetic_is_rescaling": (
        lambda: graph(
            [
                node("Mul", ["x", "two"], "a"),
                node("Sub", ["a", "half"], "b"),
                node("Div", ["b", "four"], "c"),
                node("Add", ["one", "c"]),
            ],
            {
                "two": scalar(2),
                "half": scalar(0.5),
                "four": scalar(4),
                "one": np.ones((1,), np.float32),
            },
        ),
        ["Rescaling(scale=2, offset=-0.5)", "Rescaling(scale=0.25, offset=1)"],
    ),
    "conv_auto_pad_same_upper_stride_2": (
        lambda: graph(
            [node("Conv", ["x", "W", "b"], auto_pad="SAME_UPPER", strides=[2, 2])],
            {"W": weights(4, 3, 3, 3), "b": weights(4)},
        ),
        ["Conv2D(filters=4, kernel_size=3, stride=2, padding='same')"],
    ),
    "conv_asymmetric_pads_equal_to_same": (
        lambda: graph(
            [node("Conv", ["x", "W"], pads=[0, 1, 1, 2], kernel_shape=[2, 4])],
            {"W": weights(4, 3, 2, 4)},
        ),
        ["Conv2D(filters=4, kernel_size=[2, 4], padding='same', use_bias=False)"],
    ),
    "conv_symmetric_pads": (
        lambda: graph(
            [node("Conv", ["x", "W", "b"], pads=[1, 2, 1, 2], strides=[1, 2])],
            {"W": weights(2, 3, 3, 3), "b": weights(2)},
        ),
        ["Conv2D(filters=2, kernel_size=3, stride=[1, 2], padding=[1, 2])"],
    ),
    "conv_auto_pad_valid": (
        lambda: graph(
            [node("Conv", ["x", "W"], auto_pad="VALID")], {"W": weights(2, 3, 5, 5)}
        ),
        ["Conv2D(filters=2, kernel_size=5, use_bias=False)"],
    ),
    "max_pool_default_stride_is_1": (
        lambda: graph([node("MaxPool", ["x"], kernel_shape=[2, 3])]),
        ["MaxPool2D(pool_size=[2, 3], stride=1)"],
    ),
    "average_pool_exact_ceil_mode": (
        lambda: graph(
            [
                node(
                    "AveragePool",
                    ["x"],
                    kernel_shape=[2, 2],
                    strides=[2, 2],
                    ceil_mode=1,
                )
            ]
        ),
        ["AvgPool2D(pool_size=2)"],
    ),
    "global_average_pool_then_flatten": (
        lambda: graph([node("GlobalAveragePool", ["x"], "g"), node("Flatten", ["g"])]),
        ["GlobalAvgPool2D()"],
    ),
    "global_average_pool_keeps_dims": (
        lambda: graph([node("GlobalAveragePool", ["x"])]),
        ["GlobalAvgPool2D()", "Reshape(target_shape=[3, 1, 1])"],
    ),
    "reduce_mean_axes_input": (
        lambda: graph(
            [node("ReduceMean", ["x", "axes"], keepdims=0)],
            {"axes": np.array([-1, -2], np.int64)},
            opset=18,
        ),
        ["GlobalAvgPool2D()"],
    ),
    "reduce_mean_axes_attribute": (
        lambda: graph(
            [node("ReduceMean", ["x"], "m", axes=[2, 3]), node("Reshape", ["m", "s"])],
            {"s": np.array([0, -1], np.int64)},
            opset=13,
        ),
        ["GlobalAvgPool2D()"],
    ),
    "batch_normalization_of_features": (
        lambda: graph(
            [node("BatchNormalization", ["x", "g", "b", "m", "v"], epsilon=1e-3)],
            {
                "g": weights(5),
                "b": weights(5),
                "m": weights(5),
                "v": np.abs(weights(5)) + 0.5,
            },
            ["N", 5],
        ),
        ["BatchNorm(eps=0.001)"],
    ),
    "activations_and_softmax_over_the_last_axis": (
        lambda: graph(
            [
                node("Relu", ["x"], "a"),
                node("LeakyRelu", ["a"], "b", alpha=0.2),
                node("Sigmoid", ["b"], "c"),
                node("Tanh", ["c"], "d"),
                node("Softmax", ["d"], axis=3),
            ]
        ),
        ["ReLU()", "LeakyReLU(alpha=0.2)", "Sigmoid()", "Tanh()", "Softmax()"],
    ),
    "reshapes_merge": (
        lambda: graph(
            [
                node("Reshape", ["x", "s1"], "a"),
                node("Reshape", ["a", "s2"], "b"),
                node("Flatten", ["b"]),
            ],
            {"s1": np.array([-1, 3, 64], np.int64), "s2": np.array([0, 0, 8, 8])},
        ),
        ["Flatten()"],
    ),
    "reshape_with_a_fixed_batch": (
        lambda: graph(
            [node("Reshape", ["x", "s"])],
            {"s": np.array([2, 24, -1], np.int64)},
            [2, 3, 8, 8],
        ),
        ["Reshape(target_shape=[24, 8])"],
    ),
    "constant_nodes_identity_and_dropout": (
        lambda: graph(
            [
                helper.make_node(
                    "Constant", [], ["W"], value=numpy_helper.from_array(weights(5, 3))
                ),
                node("Identity", ["W"], "W2"),
                node("Dropout", ["x", "ratio"], "d"),
                node("Identity", ["d"], "i"),
                node("MatMul", ["i", "W2"], "z"),
                helper.make_node("Constant", [], ["c"], value_float=0.25),
                node("Add", ["z", "c"]),
            ],
            {"ratio": scalar(0.5)},
            ["N", 5],
        ),
        ["Dense(units=3)"],
    ),
    "opset_11_softmax_is_the_loss": (
        lambda: graph(
            [node("Gemm", ["x", "W", "b"], "z"), node("Softmax", ["z"])],
            {"W": weights(5, 4), "b": weights(4)},
            ["N", 5],
            opset=11,
        ),
        ["Dense(units=4)"],
    ),
    "initializers_listed_as_inputs": (
        lambda: graph(
            [node("Gemm", ["x", "W"])],
            {"W": weights(5, 4)},
            ["N", 5],
            extra_inputs=("W",),
        ),
        ["Dense(units=4, use_bias=False)"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_matches_onnxruntime(case: str, run_onnx: Any) -> None:
    make, layers = CASES[case]
    proto = make()
    model = from_onnx(proto)
    assert [repr(layer) for layer in model.layers] == layers

    shape = [d.dim_value or 11 for d in proto.graph.input[0].type.tensor_type.shape.dim]
    x = RNG.standard_normal(shape).astype(np.float32)
    expected = run_onnx(proto, x)[0]
    # a final softmax becomes the loss: predict() puts it back
    got = model.predict(x) if model.loss is not None else model.predict_logits(x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE


def test_final_softmax_becomes_cross_entropy() -> None:
    proto = CASES["opset_11_softmax_is_the_loss"][0]()
    model = from_onnx(proto)
    assert type(model.loss).__name__ == "CrossEntropy"
    assert model.optimizer is None


# ------------------------------------------- chainrule -> ONNX -> chainrule
@pytest.mark.parametrize("name", ["mlp", "conv_net", "odd_net", "regression_net"])
def test_round_trip_through_onnx(
    name: str, trained_models: dict[str, Sequential], test_images: Any
) -> None:
    model = trained_models[name]
    x, _ = test_images
    back = from_onnx(to_onnx(model))
    # the same layers, less those that do nothing in inference
    kept = [
        type(layer).__name__
        for layer in model.layers
        if not isinstance(layer, (Dropout, Identity))
    ]
    assert [type(layer).__name__ for layer in back.layers] == kept
    assert back.input_shape == model.input_shape
    assert model.loss is not None and back.loss is not None
    assert describe(back.loss) == describe(model.loss)  # label smoothing and all
    assert back.dtype == np.float32
    np.testing.assert_allclose(
        back.predict_logits(x), model.predict_logits(x), rtol=0, atol=1e-6
    )
    for (_, a), (_, b) in zip(model.named_buffers(), back.named_buffers(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7)
    # batch norm's momentum survives ONNX's 1 − momentum in float32
    moments = [getattr(layer, "momentum", None) for layer in model.layers]
    assert [m for m in moments if m is not None] == [
        getattr(layer, "momentum", None)
        for layer in back.layers
        if getattr(layer, "momentum", None) is not None
    ]


def test_round_trip_through_a_file(
    tmp_path: Path, trained_models: dict[str, Sequential], test_images: Any
) -> None:
    from chainrule.onnx import export_onnx, read_onnx_metadata

    path = tmp_path / "conv.onnx"
    export_onnx(trained_models["conv_net"], path, metadata={"class_names": ["a"]})
    model = import_onnx(path)
    x, _ = test_images
    np.testing.assert_allclose(
        model.predict(x), trained_models["conv_net"].predict(x), rtol=0, atol=1e-6
    )
    info = read_onnx_metadata(path)
    assert info["metadata"] == {"class_names": ["a"]}
    assert info["opset"] == 17 and info["producer"].startswith("chainrule ")


# ---------------------------------------------------------------- refusals
def _with_external_weights() -> Any:
    proto = graph([node("Gemm", ["x", "W"])], {"W": weights(5, 4)}, ["N", 5])
    tensor = proto.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    return proto


def _other_domain() -> Any:
    proto = graph([helper.make_node("Relu", ["x"], ["y"], domain="com.example")])
    proto.opset_import.append(helper.make_opsetid("com.example", 1))
    return proto


def _short_tensor() -> Any:
    proto = graph([node("Gemm", ["x", "W"])], {"W": weights(5, 4)}, ["N", 5])
    tensor = proto.graph.initializer[0]
    tensor.dims[:] = [5, 4000000]  # claims 20 million values, holds 20
    return proto


REFUSED: dict[str, tuple[Callable[[], Any], str]] = {
    "unsupported_operator": (
        lambda: graph([node("Cos", ["x"], "c"), node("Relu", ["c"])]),
        r"unsupported ONNX operators: Cos \(node 'c'\)\. chainrule imports: Add, ",
    ),
    "several_unsupported": (
        lambda: graph(
            [node("Cos", ["x"], "c1"), node("Sin", ["c1"], "s"), node("Cos", ["s"])]
        ),
        r"Cos \(nodes 'c1', 'y'\); Sin \(node 's'\)",
    ),
    "other_domain": (
        _other_domain,
        r"unsupported ONNX operators: com\.example\.Relu",
    ),
    "branch": (
        lambda: graph([node("Relu", ["x"], "r"), node("Add", ["x", "r"])]),
        r"the value 'x' is used 2 times \(the graph branches",
    ),
    "two_consumers": (
        lambda: graph(
            [node("Relu", ["x"], "r"), node("Tanh", ["r"], "t"), node("Sigmoid", ["r"])]
        ),
        r"the value 'r' is used 2 times",
    ),
    "two_inputs": (
        lambda: graph([node("Relu", ["x"])], extra_inputs=("x2",)),
        r"2 inputs \['x', 'x2'\]",
    ),
    "two_outputs": (
        lambda: graph(
            [node("Relu", ["x"], "r"), node("Tanh", ["r"])], outputs=("r", "y")
        ),
        r"2 outputs \['r', 'y'\]",
    ),
    "grouped_conv": (
        lambda: graph([node("Conv", ["x", "W"], group=3)], {"W": weights(3, 1, 3, 3)}),
        r"node 'y' \(Conv\): grouped convolution \(group=3\)",
    ),
    "dilated_conv": (
        lambda: graph(
            [node("Conv", ["x", "W"], dilations=[2, 2])], {"W": weights(2, 3, 3, 3)}
        ),
        r"dilations \[2, 2\] are not supported",
    ),
    "asymmetric_pads": (
        lambda: graph(
            [node("Conv", ["x", "W"], pads=[1, 0, 0, 0])], {"W": weights(2, 3, 3, 3)}
        ),
        r"padding \(top, bottom, left, right\) = \(1, 0, 0, 0\) is neither symmetric",
    ),
    "conv_1d": (
        lambda: graph([node("Conv", ["x", "W"])], {"W": weights(2, 3, 3)}, ["N", 3, 8]),
        r"only 2-D convolutions",
    ),
    "conv_wrong_channels": (
        lambda: graph([node("Conv", ["x", "W"])], {"W": weights(2, 4, 3, 3)}),
        r"W has shape \(2, 4, 3, 3\), but Conv2D\(.*\) on input \(N, 3, 8, 8\) "
        r"needs \(2, 3, 3, 3\)",
    ),
    "padded_pool": (
        lambda: graph([node("MaxPool", ["x"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])]),
        r"pooling with padding is not supported",
    ),
    "ceil_mode_partial_window": (
        lambda: graph(
            [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)]
        ),
        r"ceil_mode=1 keeps a partial window",
    ),
    "gemm_trans_a": (
        lambda: graph(
            [node("Gemm", ["x", "W"], transA=1)], {"W": weights(5, 4)}, ["N", 5]
        ),
        r"transA=1",
    ),
    "dense_on_images": (
        lambda: graph([node("Gemm", ["x", "W"])], {"W": weights(5, 4)}),
        r"node 'y' \(Gemm\) expects \(N, features\), got input of shape "
        r"\(N, 3, 8, 8\)",
    ),
    "weights_computed_from_the_input": (
        lambda: graph([node("MatMul", ["x", "x"])], shape=["N", 5]),
        r"reads \['x', 'x'\]",
    ),
    "softmax_over_channels": (
        lambda: graph([node("Softmax", ["x"], axis=1)]),
        r"Softmax over axis 1 of a rank-4 tensor",
    ),
    "flatten_axis_2": (
        lambda: graph([node("Flatten", ["x"], axis=2)]),
        r"only axis 1 is supported",
    ),
    "reshape_into_the_batch": (
        lambda: graph([node("Reshape", ["x", "s"])], {"s": np.array([3, -1])}),
        r"shape \[3, -1\] on input \(N, 3, 8, 8\); chainrule reshapes each sample",
    ),
    "reshape_allowzero": (
        lambda: graph(
            [node("Reshape", ["x", "s"], allowzero=1)], {"s": np.array([0, 192])}
        ),
        r"shape \[0, 192\]",
    ),
    "batch_norm_training_mode": (
        lambda: graph(
            [node("BatchNormalization", ["x", "g", "b", "m", "v"], training_mode=1)],
            {k: np.ones(3, np.float32) for k in "gbmv"},
        ),
        r"training_mode=1",
    ),
    "negative_variance": (
        lambda: graph(
            [node("BatchNormalization", ["x", "g", "b", "m", "v"])],
            {**{k: np.ones(3, np.float32) for k in "gbm"}, "v": -np.ones(3)},
        ),
        r"running_var has negative values",
    ),
    "per_channel_multiply": (
        lambda: graph([node("Mul", ["x", "c"])], {"c": weights(3, 1, 1)}),
        r"Mul by a constant of shape \(3, 1, 1\) is supported only as the bias",
    ),
    "constant_arithmetic": (
        lambda: graph(
            [node("Add", ["a", "a"], "c"), node("Mul", ["x", "c"])],
            {"a": scalar(1)},
        ),
        r"node 'c' \(Add\) computes from constants only",
    ),
    "non_finite_weights": (
        lambda: graph(
            [node("Gemm", ["x", "W"])],
            {"W": np.full((5, 4), np.nan, np.float32)},
            ["N", 5],
        ),
        r"W has NaN or infinite values",
    ),
    "integer_input": (
        lambda: graph([node("Relu", ["x"])], elem=TensorProto.UINT8),
        r"input 'x' is TensorProto\.UINT8; chainrule models take float32 or float64",
    ),
    "dynamic_image_size": (
        lambda: graph([node("Relu", ["x"])], shape=["N", 3, "H", "W"]),
        r"input 'x' has shape \['\?', 3, '\?', '\?'\]: chainrule needs",
    ),
    "old_opset": (
        lambda: graph([node("Relu", ["x"])], opset=8),
        r"opset 8: chainrule imports opsets 9 to",
    ),
    "external_data": (_with_external_weights, r"initializer 'W' is stored in an"),
    "short_tensor": (_short_tensor, r"W.*too small for the declared shape"),
    "float16_weights": (
        lambda: graph(
            [node("Gemm", ["x", "W"])],
            {"W": weights(5, 4).astype(np.float16)},
            ["N", 5],
        ),
        r"initializer 'W' has element type TensorProto\.FLOAT16",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_a_clear_error(case: str) -> None:
    make, message = REFUSED[case]
    with pytest.raises(OnnxError, match=message):
        from_onnx(make())


def test_short_tensor_is_refused_without_allocating_its_claim() -> None:
    import tracemalloc

    proto = _short_tensor()
    tracemalloc.start()
    try:
        with pytest.raises(OnnxError):
            from_onnx(proto)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


@pytest.mark.parametrize("field", ["raw_data", "float_data"])
def test_tensor_holding_fewer_values_than_its_shape(field: str) -> None:
    """The importer's own check, behind onnx.checker's: no array is built."""
    from chainrule.onnx._tensors import to_array

    tensor = numpy_helper.from_array(weights(5, 4), "W")
    if field == "float_data":
        tensor.ClearField("raw_data")
        tensor.float_data[:] = [0.5] * 20
    tensor.dims[:] = [5, 4_000_000]
    with pytest.raises(OnnxError, match=r"'W' has shape \(5, 4000000\) .* holds 20"):
        to_array(onnx, tensor, "initializer")


# ------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"not an ONNX model \(no graph with nodes\)"),
        (b"\xff\xff\xff\xff garbage", r"not an ONNX model \(it does not parse"),
        (b"PK\x03\x04" + bytes(range(256)) * 8, r"not an ONNX model"),
    ],
    ids=["empty", "garbage", "zip"],
)
def test_not_an_onnx_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    with pytest.raises(OnnxError, match=message):
        import_onnx(path)


def test_truncated_onnx_file(tmp_path: Path) -> None:
    proto = CASES["conv_symmetric_pads"][0]()
    data = proto.SerializeToString()
    for fraction in (0.3, 0.6, 0.95):
        path = tmp_path / f"cut{fraction}.onnx"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(OnnxError, match=str(path)):
            import_onnx(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(OnnxError, match="no such file"):
        import_onnx(tmp_path / "nope.onnx")
    with pytest.raises(OnnxError, match="not a file"):
        import_onnx(tmp_path)


def test_invalid_graph_fails_the_checker(tmp_path: Path) -> None:
    proto = graph([node("Relu", ["undefined"])])
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(OnnxError, match="not a valid ONNX model"):
        import_onnx(path)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cos.onnx"
    onnx.save(REFUSED["unsupported_operator"][0](), path)
    with pytest.raises(OnnxError, match=rf"^{path}: unsupported ONNX operators: Cos"):
        import_onnx(path)

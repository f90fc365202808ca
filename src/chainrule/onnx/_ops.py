"""What export and import share: opsets, names, metadata keys, tensor types."""

from __future__ import annotations

from typing import Any

import numpy as np

#: export writes opset 17 (ONNX 1.12, 2022) or newer; every operator it uses
#: has had its present meaning since opset 13 or earlier
MIN_EXPORT_OPSET = 17
DEFAULT_OPSET = 17
#: import reads the operators' meaning in opsets 9 and later (the oldest with
#: ``Flatten`` on any axis and ``BatchNormalization`` without ``spatial``)
MIN_IMPORT_OPSET = 9

#: names of the exported graph's input and outputs
INPUT = "input"
LOGITS = "logits"
PROBABILITIES = "probabilities"
#: the operator that maps logits to what ``Sequential.predict`` returns, by loss;
#: exported as the ``probabilities`` output, and how import recognises it
PROBABILITY_OPS = {"CrossEntropy": "Softmax", "BinaryCrossEntropy": "Sigmoid"}

#: ``metadata_props`` keys export writes and import reads
VERSION_KEY = "chainrule.version"
LOSS_KEY = "chainrule.loss"
METADATA_KEY = "chainrule.metadata"
CLASS_NAMES_KEY = "class_names"
INPUT_KEY = "chainrule.input"

#: ``TensorProto`` element types (stable protobuf enum values) as NumPy dtypes
FLOAT = 1
INT32 = 6
INT64 = 7
DOUBLE = 11
TENSOR_DTYPES: dict[int, Any] = {
    FLOAT: np.float32,
    DOUBLE: np.float64,
    INT32: np.int32,
    INT64: np.int64,
}
FLOAT_TYPES = {FLOAT: np.float32, DOUBLE: np.float64}

#: the ONNX operators each chainrule layer is exported as (docs/onnx.md)
EXPORTED_AS: dict[str, tuple[str, ...]] = {
    "Rescaling": ("Mul", "Add"),
    "Flatten": ("Flatten",),
    "Reshape": ("Reshape",),
    "Dense": ("Gemm",),
    "Conv2D": ("Conv",),
    "MaxPool2D": ("MaxPool",),
    "AvgPool2D": ("AveragePool",),
    "GlobalAvgPool2D": ("GlobalAveragePool", "Flatten"),
    "BatchNorm": ("BatchNormalization",),
    "Dropout": ("Identity",),
    "Identity": ("Identity",),
    "ReLU": ("Relu",),
    "LeakyReLU": ("LeakyRelu",),
    "Sigmoid": ("Sigmoid",),
    "Tanh": ("Tanh",),
    "Softmax": ("Softmax",),
}


def float32_value(value: float) -> float:
    """A float32 attribute as the shortest decimal that is the same float32.

    ONNX keeps float attributes in float32: PyTorch's ``eps = 1e-5`` arrives
    as 9.99999974e-06, its momentum 0.1 as ``1 − 0.899999976``; this gives
    back ``1e-05`` and ``0.1``, which chainrule rounds to the same float32.
    """
    return float(str(np.float32(value)))


__all__ = [
    "CLASS_NAMES_KEY",
    "DEFAULT_OPSET",
    "DOUBLE",
    "EXPORTED_AS",
    "FLOAT",
    "FLOAT_TYPES",
    "INPUT",
    "INPUT_KEY",
    "INT32",
    "INT64",
    "LOGITS",
    "LOSS_KEY",
    "METADATA_KEY",
    "MIN_EXPORT_OPSET",
    "MIN_IMPORT_OPSET",
    "PROBABILITIES",
    "PROBABILITY_OPS",
    "TENSOR_DTYPES",
    "VERSION_KEY",
    "float32_value",
]

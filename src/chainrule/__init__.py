"""chainrule: neural networks from scratch in NumPy, every gradient by hand.

The public API, re-exported here: layers, losses, optimizers, ``Sequential``,
``gradcheck``, presets, MNIST and Fashion-MNIST loading, augmentation and model
files.
"""

from chainrule._version import __version__
from chainrule.augment import Augment
from chainrule.backend import precision, set_backend, set_default_dtype
from chainrule.callbacks import (
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from chainrule.data import load_fashion_mnist, load_mnist
from chainrule.errors import ChainruleError, DataError, ModelFileError
from chainrule.gradcheck import GradCheckReport, gradcheck
from chainrule.io import load_model, save_checkpoint, save_model
from chainrule.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy, Loss
from chainrule.model import Callback, History, Sequential
from chainrule.optim import (
    SGD,
    Adam,
    AdamW,
    CosineDecay,
    OneCycle,
    Optimizer,
    RMSprop,
)
from chainrule.parameter import Parameter
from chainrule.presets import PRESETS, make_model

__all__ = [
    "MSE",
    "PRESETS",
    "SGD",
    "Adam",
    "AdamW",
    "Augment",
    "AvgPool2D",
    "BatchNorm",
    "BinaryCrossEntropy",
    "CSVLogger",
    "Callback",
    "ChainruleError",
    "Conv2D",
    "CosineDecay",
    "CrossEntropy",
    "DataError",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "GlobalAvgPool2D",
    "GradCheckReport",
    "History",
    "Identity",
    "JSONLogger",
    "Layer",
    "LeakyReLU",
    "LearningRateScheduler",
    "Loss",
    "MaxPool2D",
    "ModelCheckpoint",
    "ModelFileError",
    "OneCycle",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "ReLU",
    "ReduceLROnPlateau",
    "Rescaling",
    "Reshape",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TerminateOnNaN",
    "__version__",
    "gradcheck",
    "load_fashion_mnist",
    "load_mnist",
    "load_model",
    "make_model",
    "precision",
    "save_checkpoint",
    "save_model",
    "set_backend",
    "set_default_dtype",
]

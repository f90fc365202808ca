"""Datasets: verified IDX parsing, mirror downloads and the MNIST loader.

``download`` and ``sha256_file`` live in :mod:`chainrule.data.download`; they are
not re-exported here, because a function named ``download`` would shadow its own
submodule as an attribute of this package.
"""

from chainrule.data.idx import parse_idx, read_idx, read_idx_bytes
from chainrule.data.mnist import (
    ENV_VAR,
    MNIST,
    Dataset,
    IdxFileSpec,
    Splits,
    load_idx_dataset,
    load_mnist,
)
from chainrule.errors import DataError

__all__ = [
    "ENV_VAR",
    "MNIST",
    "DataError",
    "Dataset",
    "IdxFileSpec",
    "Splits",
    "load_idx_dataset",
    "load_mnist",
    "parse_idx",
    "read_idx",
    "read_idx_bytes",
]

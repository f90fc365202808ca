"""Datasets: verified IDX parsing, mirror downloads, MNIST and Fashion-MNIST loaders.

``download`` and ``sha256_file`` live in :mod:`chainrule.data.download`; they are
not re-exported here, because a function named ``download`` would shadow its own
submodule as an attribute of this package.
"""

from chainrule.data.folder import FolderDataset, load_image_folder, read_folder_image
from chainrule.data.idx import parse_idx, read_idx, read_idx_bytes
from chainrule.data.mnist import (
    DATASETS,
    ENV_VAR,
    FASHION_MNIST,
    MNIST,
    Dataset,
    IdxFileSpec,
    Splits,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
)
from chainrule.errors import DataError

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST",
    "MNIST",
    "DataError",
    "Dataset",
    "FolderDataset",
    "IdxFileSpec",
    "Splits",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_image_folder",
    "load_mnist",
    "parse_idx",
    "read_folder_image",
    "read_idx",
    "read_idx_bytes",
]

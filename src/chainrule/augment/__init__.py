"""Data augmentation for training batches: warps and colour jitter, seeded.

``Augment`` holds the strengths; calling it with a batch and a generator gives a
changed copy. ``AUGMENTATIONS`` names ready-made ones (``digits``, ``elastic``,
``fashion``, ``natural``); ``Sequential.fit(augment=...)`` applies one to every
training batch. NumPy only.
"""

from chainrule.augment.geometric import affine_grid, elastic_field, resample
from chainrule.augment.pipeline import (
    AUGMENTATIONS,
    DEFAULT_AUGMENTATION,
    Augment,
    get_augmentation,
)

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_AUGMENTATION",
    "Augment",
    "affine_grid",
    "elastic_field",
    "get_augmentation",
    "resample",
]

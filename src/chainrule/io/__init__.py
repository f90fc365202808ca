"""Model files: ``save_model`` / ``load_model`` (``.npz``, no pickle)."""

from chainrule.io.model_file import (
    FORMAT_VERSION,
    load_model,
    read_header,
    save_checkpoint,
    save_model,
)

__all__ = [
    "FORMAT_VERSION",
    "load_model",
    "read_header",
    "save_checkpoint",
    "save_model",
]

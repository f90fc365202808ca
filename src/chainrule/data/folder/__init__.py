"""Image-folder datasets ("Dogs vs Cats" style): one folder per class, decoded once.

Two layouts are read (``PATH`` is the folder given):

- ``PATH/<class>/<images>``: each folder is a class; together they are the
  training pool, from which a seeded, stratified fraction ``validation_split`` of
  every class becomes the validation set;
- ``PATH/train/<class>/...`` with optional ``PATH/val/`` (or ``PATH/validation/``)
  and ``PATH/test/``, each holding class folders: the split is the one on disk.
  When there is no ``val/`` the validation set is drawn from ``train/`` as above.
  A folder named ``train`` therefore always means this layout, never a class.

Class names are the training class folders' names, sorted; label ``i`` is
``class_names[i]``. Images in subfolders of a class folder belong to that class
(the folder is read recursively). Names starting with ``.`` (hidden files and
folders) are ignored. Every other file is a candidate: one that cannot be used
(not an image, corrupt, truncated, unreadable, too large, not in a class folder)
is skipped, never fatal, and listed with the reason in ``FolderDataset.skipped``.

Each image becomes ``(C, H, W)`` uint8: EXIF orientation applied, transparency
composited on white, grey (``channels=1``, ITU-R 601 luma as Pillow's ``"L"``)
or RGB (``channels=3``), then scaled (keeping its aspect ratio) by the smallest
factor that makes it cover ``H × W`` (for a square target: the shorter side
becomes the target) and centre-cropped to ``H × W``. Scaling uses Pillow's
Lanczos filter, which widens its kernel by the reduction factor when shrinking
(so every source pixel counts, as in area averaging); ``reducing_gap=3`` first
box-averages by an integer factor down to at least 3× the target, which Pillow
documents as indistinguishable from the full filter, and JPEGs are decoded at a
reduced DCT scale (``Image.draft``) no smaller than that.

Decoded images are cached on disk (see :func:`load_image_folder`), so a dataset
larger than memory is read through memory maps and decoded only once.

One concept a module: :mod:`~chainrule.data.folder.dataset` (the entry
points), :mod:`~chainrule.data.folder.tree` (scanning the tree, the cache key),
:mod:`~chainrule.data.folder.decode` (Pillow decoding),
:mod:`~chainrule.data.folder.cache` (the memory-mapped cache),
:mod:`~chainrule.data.folder.split` (the seeded split) and
:mod:`~chainrule.data.folder.constants`.
"""

from chainrule.data.folder.constants import (
    FORMAT_VERSION,
    FORMATS,
    INSTALL_HINT,
    MAX_PIXELS,
    MAX_SIDE,
)
from chainrule.data.folder.dataset import (
    FolderDataset,
    load_image_folder,
    read_folder_image,
)
from chainrule.data.folder.decode import PillowRequiredError

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "INSTALL_HINT",
    "MAX_PIXELS",
    "MAX_SIDE",
    "FolderDataset",
    "PillowRequiredError",
    "load_image_folder",
    "read_folder_image",
]

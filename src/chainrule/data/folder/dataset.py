"""The entry points: FolderDataset, load_image_folder, read_folder_image, checks."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule import validate
from chainrule.data.folder.cache import _build, _check_usable, _open_cache, _prune_stale
from chainrule.data.folder.constants import _SHOWN_SKIPS, MAX_SIDE
from chainrule.data.folder.decode import _decode, _formats, _require_pillow, _Skipped
from chainrule.data.folder.split import _random_split
from chainrule.data.folder.tree import _cache_key, _check_root, _scan
from chainrule.data.mnist import _cache_root
from chainrule.errors import DataError


@dataclass(frozen=True, eq=False)
class FolderDataset:
    """An image-folder dataset, its arrays memory-mapped from the cache.

    ``root``: the folder, resolved. ``class_names``: the training class folders,
    sorted; label ``i`` is ``class_names[i]``. ``image_shape``: ``(C, H, W)``.
    ``x_*``: uint8 ``(N, C, H, W)``, read-only ``np.memmap`` over the cache;
    ``y_*``: int64 ``(N,)`` labels, in memory. ``x_val``/``y_val`` are ``None``
    when ``validation_split`` is 0 and there is no ``val/`` folder;
    ``x_test``/``y_test`` are ``None`` without a ``test/`` folder. ``skipped``:
    ``(path relative to root, reason)`` for every file (or folder) not used,
    sorted by path. ``cache``: the cache directory the arrays live in.
    Compared by identity (the arrays make ``==`` on contents ambiguous).
    """

    root: Path
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    skipped: tuple[tuple[str, str], ...]
    cache: Path

    def summary(self) -> str:
        """Several lines for a person: classes, counts per split, skips, cache."""
        splits = [
            (name, y)
            for name, y in (
                ("train", self.y_train),
                ("val", self.y_val),
                ("test", self.y_test),
            )
            if y is not None
        ]
        k = len(self.class_names)
        counts = {name: np.bincount(y, minlength=k) for name, y in splits}
        c, h, w = self.image_shape
        width = max(5, *(len(n) for n in self.class_names))
        head = "".join(f"{name:>8}" for name, _ in splits)
        lines = [
            f"image folder {self.root}",
            f"  images: {c}×{h}×{w} (channels × height × width), uint8",
            f"  {k} classes:",
            f"    {'class':<{width}}{head}",
        ]
        for i, name in enumerate(self.class_names):
            row = "".join(f"{int(counts[s][i]):>8}" for s, _ in splits)
            lines.append(f"    {name:<{width}}{row}")
        total = "".join(f"{len(y):>8}" for _, y in splits)
        lines.append(f"    {'total':<{width}}{total}")
        if self.skipped:
            n = len(self.skipped)
            lines.append(f"  skipped {n} file{'s' if n != 1 else ''}:")
            lines += [f"    {p}: {why}" for p, why in self.skipped[:_SHOWN_SKIPS]]
            if n > _SHOWN_SKIPS:
                lines.append(f"    ... and {n - _SHOWN_SKIPS} more")
        else:
            lines.append("  skipped 0 files")
        lines.append(f"  cache: {self.cache}")
        return "\n".join(lines)


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] = 64,
    channels: int = 3,
    validation_split: float = 0.2,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
) -> FolderDataset:
    """Load a folder of class folders of images as uint8 ``(N, C, H, W)`` arrays.

    ``image_size``: ``H = W`` or ``(H, W)``, each 1 to :data:`MAX_SIDE`;
    ``channels``: 1 (grey) or 3 (RGB). See :mod:`chainrule.data.folder` for the
    layouts and how each image is decoded, oriented, scaled and cropped.

    Validation set: a ``val/`` (or ``validation/``) folder next to ``train/`` is
    used as it is, and ``validation_split`` is then ignored. Otherwise, with
    ``0 < validation_split < 1``, each class of the training pool is split on
    its own (stratified): ``round(validation_split × n)`` of its ``n`` images,
    drawn with ``np.random.default_rng(seed)``, go to validation, the rest stay
    in training (in file order). The same tree, fraction and seed always give
    the same split. Every class must keep at least one training image.

    Cache: the first load decodes every image, one at a time, straight into
    ``np.lib.format.open_memmap`` files (``train_x.npy`` and ``train_y.npy``;
    ``val_*``, ``test_*`` for those folders) with a JSON manifest (the classes,
    counts and the files skipped while decoding), under ``cache_dir`` (default:
    ``$XDG_CACHE_HOME/chainrule`` or ``~/.cache/chainrule``) ``/folders/<key>/``.
    The key is a SHA-256 over the resolved root, every candidate file's relative
    path, size and modification time (ns), the image size, channels, pixel limit
    and :data:`FORMAT_VERSION`: a changed, added or removed file gives a new key
    and a new build, and an unchanged tree loads without decoding anything (nor
    importing Pillow). An older cache of the same root, size and channels is
    deleted once the new one is complete. The build is written into a temporary
    sibling folder and renamed into place only when complete, so an interrupted
    build never leaves a cache that a later load trusts; a cache whose files do
    not match its manifest is rebuilt. ``rebuild=True`` rebuilds regardless.

    A random split is written once more, as ``split-seed<seed>-val<fraction>/``
    inside the key's folder (``x_train.npy``, ``y_train.npy``, ``x_val.npy``,
    ``y_val.npy`` and the pool indices ``train_index.npy``, ``val_index.npy``),
    copied in chunks of at most 1 MiB, so both sets are memory maps and nothing
    of the size of the dataset is ever held in memory; the decoded pool is shared
    by every seed and fraction. The four most recently used
    splits are kept (each costs the pool's size on disk again): a caller that
    changes ``seed`` on every run may keep the split seed fixed instead.

    Raises ``ValueError``/``TypeError`` for bad arguments, :class:`DataError` when
    the folder is missing, has fewer than two classes, a class (or a ``val/`` or
    ``test/`` folder) without usable images, a ``val/``/``test/`` class that is not
    a training class, or a split that leaves a class no training image; and
    :class:`PillowRequiredError` (an ``ImportError``) when images must be decoded
    and Pillow is not installed.
    """
    owner = "load_image_folder"
    size, channels = _check_image_args(owner, image_size, channels)
    fraction = validate.real(owner, "validation_split", validation_split, low=0.0)
    if fraction >= 1:
        raise ValueError(
            f"{owner}: validation_split must be >= 0 and < 1 (the fraction of "
            f"each class kept for validation), got {validation_split!r}"
        )
    split_seed = validate.integer(owner, "seed", seed, low=0)
    validate.boolean(owner, "rebuild", rebuild)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{owner}: path must be a folder path, got {path!r}")
    root = _check_root(Path(path))

    tree = _scan(root)
    shape = (channels, *size)
    key = _cache_key(tree, shape)
    folders = _cache_root(cache_dir) / "folders"
    directory = folders / key
    opened = None if rebuild else _open_cache(directory, key, tree, shape)
    if opened is None:
        _build(tree, shape, key, directory)
        opened = _open_cache(directory, key, tree, shape)
        if opened is None:  # pragma: no cover - only if the cache is being deleted
            raise DataError(f"{directory}: the cache just built cannot be read back")
        _prune_stale(folders, key, tree.root, shape)
    manifest, sets = opened
    _check_usable(tree, manifest, sets)

    x_train, y_train = sets["train"]
    x_val, y_val = sets.get("val", (None, None))
    if x_val is None and fraction > 0:
        x_train, y_train, x_val, y_val = _random_split(
            directory, tree, x_train, y_train, fraction, split_seed
        )
    x_test, y_test = sets.get("test", (None, None))
    skipped = sorted(
        tree.skipped + [(str(p), str(why)) for p, why in manifest["skipped"]]
    )
    return FolderDataset(
        root=tree.root,
        class_names=tree.class_names,
        image_shape=shape,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        skipped=tuple(skipped),
        cache=directory,
    )


def read_folder_image(
    path: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] = 64,
    channels: int = 3,
) -> np.ndarray:
    """One image file as :func:`load_image_folder` decodes it: uint8 ``(C, H, W)``.

    For predicting on a new picture exactly as the training images were
    prepared. Raises :class:`DataError` naming the file and the reason when it
    cannot be used.
    """
    owner = "read_folder_image"
    size, channels = _check_image_args(owner, image_size, channels)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{owner}: path must be an image file path, got {path!r}")
    pil = _require_pillow()
    try:
        return _decode(pil, _formats(pil), Path(path), size, channels)
    except _Skipped as exc:
        raise DataError(f"{os.fspath(path)}: {exc}") from None


def _check_image_args(
    owner: str, image_size: object, channels: object
) -> tuple[tuple[int, int], int]:
    """``image_size`` as ``(H, W)`` within :data:`MAX_SIDE`, and ``channels``."""
    size = validate.pair(owner, "image_size", image_size)
    if max(size) > MAX_SIDE:
        raise ValueError(
            f"{owner}: image_size must be at most {MAX_SIDE} pixels a side, "
            f"got {image_size!r}"
        )
    if (
        not isinstance(channels, numbers.Integral)
        or isinstance(channels, bool)
        or int(channels) not in (1, 3)
    ):
        raise ValueError(
            f"{owner}: channels must be 1 (grey) or 3 (RGB), got {channels!r}"
        )
    return size, int(channels)

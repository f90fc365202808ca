"""The seeded stratified train/validation split and its memory-mapped files."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from chainrule.data.folder.cache import _commit, _fsync, _rows_per_copy
from chainrule.data.folder.constants import _KEEP_SPLITS
from chainrule.data.folder.tree import _Tree
from chainrule.errors import DataError


def _split_indices(
    labels: np.ndarray,
    class_names: tuple[str, ...],
    validation_split: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices into ``labels``, each sorted.

    Class ``c`` with ``n`` images gives ``round(validation_split × n)`` (half up)
    to validation, chosen by a permutation from ``np.random.default_rng(seed)``
    (classes drawn in label order from the one generator). Raises
    :class:`DataError` if a class would keep no training image or if no image at
    all goes to validation.
    """
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c, name in enumerate(class_names):
        members = np.flatnonzero(labels == c)
        n_val = math.floor(validation_split * len(members) + 0.5)
        if len(members) - n_val < 1:
            raise DataError(
                f"class {name!r} has {len(members)} usable image"
                f"{'s' if len(members) != 1 else ''}: validation_split="
                f"{validation_split:g} takes {n_val} for validation and leaves "
                "none for training; expected at least one training image per "
                "class (add images or lower validation_split)"
            )
        chosen = rng.permutation(members)
        val.append(chosen[:n_val])
        train.append(chosen[n_val:])
    train_idx = np.sort(np.concatenate(train)).astype(np.int64)
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    if val_idx.size == 0:
        sizes = np.bincount(labels, minlength=len(class_names)).tolist()
        raise DataError(
            f"validation_split={validation_split:g} gives no validation image "
            f"(the classes have {sizes} images); expected a fraction that takes "
            "at least one image of some class, or validation_split=0 for none"
        )
    return train_idx, val_idx


def _random_split(
    directory: Path,
    tree: _Tree,
    x: np.ndarray,
    y: np.ndarray,
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The seeded split of the pool as memory maps, written once per seed/fraction."""
    try:
        train_idx, val_idx = _split_indices(y, tree.class_names, fraction, seed)
    except DataError as exc:
        raise DataError(f"{tree.root}: {exc}") from None
    target = directory / f"split-seed{seed}-val{fraction!r}"
    parts = {"train": train_idx, "val": val_idx}
    opened = _open_split(target, x, y, parts)
    if opened is None:
        try:
            work = Path(
                tempfile.mkdtemp(
                    prefix=f".{target.name}.", suffix=".tmp", dir=directory
                )
            )
        except OSError as exc:
            raise DataError(
                f"cannot write the split into the cache {directory}: "
                f"{exc.strerror or exc}"
            ) from None
        try:
            for name, idx in parts.items():
                _write_rows(work / f"x_{name}.npy", x, idx)
                np.save(work / f"y_{name}.npy", y[idx])
                np.save(work / f"{name}_index.npy", idx)
                for file in ("x_", "y_"):
                    _fsync(work / f"{file}{name}.npy")
            _commit(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        opened = _open_split(target, x, y, parts)
        if opened is None:  # pragma: no cover - only if the cache is being deleted
            raise DataError(f"{target}: the split just written cannot be read back")
    _touch_and_prune(directory, target)
    return opened


def _write_rows(path: Path, x: np.ndarray, idx: np.ndarray) -> None:
    """``x[idx]`` into a new ``.npy`` at ``path``, at most 1 MiB in memory at once."""
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=x.dtype, shape=(len(idx), *x.shape[1:])
    )
    step = _rows_per_copy(x)
    for start in range(0, len(idx), step):
        out[start : start + step] = x[idx[start : start + step]]
    out.flush()
    del out


def _open_split(
    target: Path, x: np.ndarray, y: np.ndarray, parts: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """A written split whose indices, shapes and labels match, or None."""
    found: list[np.ndarray] = []
    try:
        for name, idx in parts.items():
            stored = np.load(target / f"{name}_index.npy")
            xs = np.load(target / f"x_{name}.npy", mmap_mode="r")
            ys = np.load(target / f"y_{name}.npy")
            if not (
                np.array_equal(stored, idx)
                and isinstance(xs, np.memmap)
                and xs.dtype == x.dtype
                and xs.shape == (len(idx), *x.shape[1:])
                and np.array_equal(ys, y[idx])
                and ys.dtype == y.dtype
            ):
                return None
            found += [xs, ys]
    except (OSError, ValueError):
        return None
    x_train, y_train, x_val, y_val = found
    return x_train, y_train, x_val, y_val


def _touch_and_prune(directory: Path, target: Path) -> None:
    """Mark ``target`` as just used; keep only the most recently used splits."""
    try:
        os.utime(target)
        splits = [
            p for p in directory.iterdir() if p.name.startswith("split-") and p.is_dir()
        ]
        splits.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    except OSError:
        return
    for old in splits[_KEEP_SPLITS:]:
        if old != target:
            shutil.rmtree(old, ignore_errors=True)

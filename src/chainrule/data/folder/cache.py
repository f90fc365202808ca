"""The memory-mapped cache: building, committing, opening, checking, pruning.

Each set is decoded once into ``<set>_x.npy``/``<set>_y.npy`` with a JSON
manifest, in a temporary folder renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import atomic_write_bytes
from chainrule.data.folder.constants import (
    _COPY_BYTES,
    _FORMAT_NAME,
    _MANIFEST,
    FORMAT_VERSION,
)
from chainrule.data.folder.decode import _decode, _formats, _require_pillow, _Skipped
from chainrule.data.folder.tree import _File, _Tree
from chainrule.errors import DataError


def _build(tree: _Tree, shape: tuple[int, int, int], key: str, directory: Path) -> None:
    """Decode every set into a temporary sibling folder; rename it into place."""
    pil = _require_pillow()
    formats = _formats(pil)
    folders = directory.parent
    try:
        folders.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=folders))
    except OSError as exc:
        raise DataError(
            f"cannot create the image cache in {folders}: {exc.strerror or exc}; "
            "pass cache_dir= (or set XDG_CACHE_HOME to) a writable folder"
        ) from None
    try:
        skipped: list[tuple[str, str]] = []
        counts = {
            name: _decode_set(
                pil, formats, tree.root, files, work, name, shape, skipped
            )
            for name, files in tree.sets.items()
        }
        manifest = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "key": key,
            "root": os.fspath(tree.root),
            "image_shape": list(shape),
            "class_names": list(tree.class_names),
            "sets": {
                name: {"folder": tree.folders[name], "count": n}
                for name, n in counts.items()
            },
            "skipped": skipped,
        }
        atomic_write_bytes(work / _MANIFEST, json.dumps(manifest, indent=1).encode())
        _commit(work, directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _decode_set(
    pil: Any,
    formats: list[str],
    root: Path,
    files: list[_File],
    work: Path,
    name: str,
    shape: tuple[int, int, int],
    skipped: list[tuple[str, str]],
) -> int:
    """Decode ``files`` one by one into ``<name>_x.npy``; returns how many were used.

    Rows are written in order as images succeed; when some are skipped the file
    is copied (in chunks) to one of the exact length.
    """
    channels, height, width = shape
    x_path = work / f"{name}_x.npy"
    x = np.lib.format.open_memmap(
        x_path, mode="w+", dtype=np.uint8, shape=(len(files), *shape)
    )
    labels = np.empty(len(files), dtype=np.int64)
    n = 0
    for f in files:
        try:
            x[n] = _decode(pil, formats, root / f.rel, (height, width), channels)
        except _Skipped as exc:
            skipped.append((f.rel, str(exc)))
            continue
        labels[n] = f.label
        n += 1
    x.flush()
    del x
    if n < len(files):
        _truncate_rows(x_path, n)
    np.save(work / f"{name}_y.npy", labels[:n])
    for path in (x_path, work / f"{name}_y.npy"):
        _fsync(path)
    return n


def _truncate_rows(path: Path, n: int) -> None:
    """Rewrite the ``.npy`` at ``path`` keeping its first ``n`` rows."""
    source = np.load(path, mmap_mode="r")
    part = path.with_name(path.stem + ".part.npy")
    target = np.lib.format.open_memmap(
        part, mode="w+", dtype=source.dtype, shape=(n, *source.shape[1:])
    )
    step = _rows_per_copy(source)
    for start in range(0, n, step):
        stop = min(start + step, n)
        target[start:stop] = source[start:stop]
    target.flush()
    del target, source
    os.replace(part, path)


def _rows_per_copy(x: np.ndarray) -> int:
    row = max(1, int(np.prod(x.shape[1:])) * x.itemsize)
    return max(1, _COPY_BYTES // row)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(work: Path, directory: Path) -> None:
    """Rename the finished ``work`` folder to ``directory``, replacing an old one."""
    old = None
    if directory.exists():
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        old = directory.with_name(f".{directory.name}.old-{token}")
        os.rename(directory, old)
    try:
        os.rename(work, directory)
    except OSError:
        if not directory.is_dir():
            raise
        # another process finished the same build first: theirs is as good
        shutil.rmtree(work, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _open_cache(
    directory: Path, key: str, tree: _Tree, shape: tuple[int, int, int]
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]] | None:
    """The manifest and each set's ``(x, y)``, or None if the cache is not trusted.

    Trusted: a manifest of this format, version and key, and for each set an
    ``x`` memory map of ``(count, C, H, W)`` uint8 and ``y`` of ``count`` int64
    labels within the classes.
    """
    try:
        manifest = json.loads((directory / _MANIFEST).read_text())
        if (
            manifest.get("format") != _FORMAT_NAME
            or manifest.get("version") != FORMAT_VERSION
            or manifest.get("key") != key
            or manifest.get("image_shape") != list(shape)
            or set(manifest["sets"]) != set(tree.sets)
        ):
            return None
        sets = {}
        for name in tree.sets:
            count = int(manifest["sets"][name]["count"])
            x = np.load(directory / f"{name}_x.npy", mmap_mode="r")
            y = np.load(directory / f"{name}_y.npy")
            if not _good_arrays(x, y, count, shape, len(tree.class_names)):
                return None
            sets[name] = (x, y)
        if not all(
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(s, str) for s in item)
            for item in manifest["skipped"]
        ):
            return None
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return manifest, sets


def _good_arrays(
    x: np.ndarray, y: np.ndarray, count: int, shape: tuple[int, int, int], k: int
) -> bool:
    return (
        isinstance(x, np.memmap)
        and x.dtype == np.uint8
        and x.shape == (count, *shape)
        and y.dtype == np.int64
        and y.shape == (count,)
        and (count == 0 or (int(y.min()) >= 0 and int(y.max()) < k))
    )


def _prune_stale(
    folders: Path, key: str, root: Path, shape: tuple[int, int, int]
) -> None:
    """Delete older caches of the same root and image shape (their tree changed).

    Also deletes what killed builds left (hidden ``.tmp`` and ``.old-`` folders)
    once a day old: a build still running writes into its folder more often.
    """
    try:
        entries = list(folders.iterdir())
    except OSError:
        return
    day_ago = time.time() - 24 * 3600
    for other in entries:
        if other.name.startswith("."):
            if other.name.endswith(".tmp") or ".old-" in other.name:
                try:
                    if other.stat().st_mtime < day_ago:
                        shutil.rmtree(other, ignore_errors=True)
                except OSError:
                    pass
            continue
        if other.name == key:
            continue
        try:
            manifest = json.loads((other / _MANIFEST).read_text())
            same = (
                manifest.get("format") == _FORMAT_NAME
                and manifest.get("root") == os.fspath(root)
                and manifest.get("image_shape") == list(shape)
            )
        except (OSError, ValueError, AttributeError):
            continue
        if same:
            shutil.rmtree(other, ignore_errors=True)


def _check_usable(
    tree: _Tree,
    manifest: dict[str, Any],
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    """Every training class has an image, and val/ and test/ have some."""
    reasons = {str(p): str(why) for p, why in manifest["skipped"]}
    y_train = sets["train"][1]
    counts = np.bincount(y_train, minlength=len(tree.class_names))
    for label, name in enumerate(tree.class_names):
        if counts[label] == 0:
            prefix = f"{tree.folders['train']}{name}/"
            why = [f"{p}: {r}" for p, r in reasons.items() if p.startswith(prefix)]
            raise DataError(
                f"{tree.root / prefix}: class {name!r} has no usable images; "
                f"expected at least one readable image, every file was skipped "
                f"({'; '.join(why[:3])}{'; ...' if len(why) > 3 else ''})"
            )
    for set_name in ("val", "test"):
        if set_name in sets and len(sets[set_name][1]) == 0:
            folder = tree.folders[set_name]
            raise DataError(
                f"{tree.root / folder}: no usable images; expected readable images "
                f"in {folder}<class>/, every file was skipped (or remove {folder})"
            )

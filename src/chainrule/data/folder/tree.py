"""Scanning the folder tree: layout, class names, candidate files, cache key.

Nothing is decoded here; a scan lists what there is, and the key hashes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from chainrule.data.folder.constants import (
    _VAL_FOLDERS,
    FORMAT_VERSION,
    FORMATS,
    MAX_PIXELS,
)
from chainrule.errors import DataError


@dataclass(frozen=True, slots=True)
class _File:
    """A candidate image: its path, class, and what the cache key hashes."""

    rel: str  # relative to the root, with "/"
    label: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Tree:
    """What a scan found: classes, candidate files per set, files passed over."""

    root: Path
    class_names: tuple[str, ...]
    #: "train" (the pool), and "val", "test" when those folders exist
    sets: dict[str, list[_File]]
    #: where each set's class folders are, relative to the root ("" or "train/")
    folders: dict[str, str]
    skipped: list[tuple[str, str]]


def _check_root(path: Path) -> Path:
    shown = os.fspath(path)
    path = path.expanduser()
    if not path.exists():
        raise DataError(
            f"image folder {shown} does not exist; expected a folder holding one "
            "folder of images per class (PATH/<class>/<images>) or "
            "PATH/train/<class>/..."
        )
    if not path.is_dir():
        raise DataError(
            f"image folder {shown} is not a folder; expected a folder holding one "
            "folder of images per class (PATH/<class>/<images>)"
        )
    return path.resolve()


def _listing(folder: Path) -> tuple[list[str], list[str]]:
    """The visible (not hidden) folder and file names in ``folder``, sorted."""
    try:
        with os.scandir(folder) as entries:
            items = [e for e in entries if not e.name.startswith(".")]
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot list the folder: {exc.strerror or exc}"
        ) from None
    dirs = sorted(e.name for e in items if _is_dir(e))
    files = sorted(e.name for e in items if not _is_dir(e))
    return dirs, files


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _scan(root: Path) -> _Tree:
    """Find the layout, the classes and every candidate file (nothing decoded)."""
    skipped: list[tuple[str, str]] = []
    dirs, files = _listing(root)
    if "train" not in dirs:
        skipped += [(name, "not in a class folder") for name in files]
        names = _class_names(root, "", dirs, files)
        sets = {"train": _set_files(root, "", names, names, skipped, required=True)}
        return _Tree(root, names, sets, {"train": ""}, skipped)

    val_names = [name for name in _VAL_FOLDERS if name in dirs]
    if len(val_names) > 1:
        raise DataError(
            f"{root}: found both val/ and validation/; expected one validation "
            "folder next to train/ (remove or rename one)"
        )
    folders = {"train": "train/"}
    if val_names:
        folders["val"] = f"{val_names[0]}/"
    if "test" in dirs:
        folders["test"] = "test/"
    skipped += [
        (name, "not in a class folder (expected under train/)") for name in files
    ]
    skipped += [
        (
            f"{name}/",
            "folder not used: next to train/ only val/ (or validation/) and "
            "test/ are read",
        )
        for name in dirs
        if f"{name}/" not in folders.values()
    ]
    train_dirs, train_files = _listing(root / "train")
    names = _class_names(root, "train/", train_dirs, train_files)
    sets = {"train": _set_files(root, "train/", names, names, skipped, required=True)}
    for set_name, prefix in folders.items():
        if set_name == "train":
            continue
        sub_dirs, sub_files = _listing(root / prefix)
        skipped += [(prefix + name, "not in a class folder") for name in sub_files]
        strangers = [d for d in sub_dirs if d not in names]
        if strangers:
            raise DataError(
                f"{root / prefix}: class folder {strangers[0]!r} is not one of the "
                f"training classes; expected folders named after the classes in "
                f"train/ ({', '.join(names)})"
            )
        found = _set_files(root, prefix, tuple(sub_dirs), names, skipped)
        if not found:
            raise DataError(
                f"{root / prefix}: no image files; expected {prefix}<class>/<images> "
                f"for some of the classes {', '.join(names)} (or remove {prefix})"
            )
        sets[set_name] = found
    return _Tree(root, names, sets, folders, skipped)


def _class_names(
    root: Path, prefix: str, dirs: list[str], files: list[str]
) -> tuple[str, ...]:
    """The class folder names (sorted); an error unless there are at least two."""
    where = root / prefix if prefix else root
    if not dirs:
        n = len(files)
        found = (
            f"found {n} file{'s' if n != 1 else ''} and no folders (put each "
            f"class's images in a folder of its own, e.g. {prefix}cat/ and "
            f"{prefix}dog/)"
            if n
            else "found an empty folder"
        )
        raise DataError(
            f"{where}: no class folders; expected one folder of images per class "
            f"({prefix or 'PATH/'}<class>/<images>), {found}"
        )
    if len(dirs) == 1:
        raise DataError(
            f"{where}: found one class folder ({dirs[0]!r}); expected at least two, "
            "one folder of images per class"
        )
    return tuple(dirs)


def _set_files(
    root: Path,
    prefix: str,
    folders: tuple[str, ...],
    class_names: tuple[str, ...],
    skipped: list[tuple[str, str]],
    *,
    required: bool = False,
) -> list[_File]:
    """Every candidate file under ``root/prefix/<class>/``, in class, path order.

    ``required``: each class folder must hold at least one file (training).
    """
    found: list[_File] = []
    for name in folders:
        label = class_names.index(name)
        files = _class_files(root, root / prefix / name, label, skipped)
        if required and not files:
            raise DataError(
                f"{root / prefix / name}: class {name!r} has no image files; "
                f"expected {prefix}{name}/<images> (or remove the folder)"
            )
        found += files
    return found


def _class_files(
    root: Path, folder: Path, label: int, skipped: list[tuple[str, str]]
) -> list[_File]:
    """The visible files under ``folder``, recursively (folder links not followed)."""
    files: list[_File] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else folder
        skipped.append(
            (_rel(where, root) + "/", f"cannot list the folder: {exc.strerror or exc}")
        )

    for top, dirnames, filenames in os.walk(folder, onerror=unreadable):
        here = Path(top)
        for d in list(dirnames):
            if d.startswith("."):
                dirnames.remove(d)
            elif (here / d).is_symlink():
                dirnames.remove(d)
                skipped.append(
                    (
                        _rel(here / d, root) + "/",
                        "symbolic link to a folder (not followed)",
                    )
                )
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            rel = _rel(path, root)
            try:
                info = path.stat()
            except OSError as exc:
                reason = (
                    "broken symbolic link"
                    if path.is_symlink()
                    else f"cannot read the file: {exc.strerror or exc}"
                )
                skipped.append((rel, reason))
                continue
            if not stat.S_ISREG(info.st_mode):
                skipped.append((rel, "not a regular file"))
                continue
            files.append(_File(rel, label, info.st_size, info.st_mtime_ns))
    files.sort(key=lambda f: f.rel)
    return files


def _cache_key(tree: _Tree, shape: tuple[int, int, int]) -> str:
    """SHA-256 of everything the decoded arrays depend on (hex, 32 characters)."""
    digest = hashlib.sha256()
    head = {
        "format": FORMAT_VERSION,
        "root": os.fspath(tree.root),
        "image_shape": list(shape),
        "max_pixels": MAX_PIXELS,
        "formats": list(FORMATS),
        "classes": list(tree.class_names),
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for set_name, files in tree.sets.items():
        digest.update(b"\0set\0" + set_name.encode() + b"\0")
        for f in files:
            digest.update(os.fsencode(f.rel))
            digest.update(f"\0{f.label}\0{f.size}\0{f.mtime_ns}\n".encode())
    return digest.hexdigest()[:32]

"""Image-folder datasets: layouts, decoding, skipped files, splits, cache, memory.

Every tree is drawn here with Pillow in ``tmp_path``; the cache goes to a
temporary ``XDG_CACHE_HOME``, so nothing touches the user's cache.
"""

from __future__ import annotations

import builtins
import io
import math
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import chainrule.data.folder.cache as folder_cache
import chainrule.data.folder.constants as folder_constants
import chainrule.data.folder.decode as folder_decode
from chainrule.data.folder import (
    FolderDataset,
    PillowRequiredError,
    load_image_folder,
    read_folder_image,
)
from chainrule.errors import DataError

SETTINGS = settings(deadline=None, max_examples=25, derandomize=True)
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and the XDG cache at an empty folder; returns the cache root."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "chainrule" / "folders"


# ---------------------------------------------------------------- drawing trees


def save(path: Path, image: Image.Image, fmt: str | None = None, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **kw)
    return path


def thirds(
    size: tuple[int, int], colours: tuple[Any, ...], *, wide: bool
) -> Image.Image:
    """An RGB image cut in three bands (left to right, or top to bottom)."""
    w, h = size
    pixels = np.zeros((h, w, 3), dtype=np.uint8)
    for i, colour in enumerate(colours):
        if wide:
            pixels[:, i * w // 3 : (i + 1) * w // 3] = colour
        else:
            pixels[i * h // 3 : (i + 1) * h // 3] = colour
    return Image.fromarray(pixels)


def palette_half_transparent(size: int = 20) -> Image.Image:
    """A P image: left half index 0 (transparent), right half index 1 (blue)."""
    index = np.zeros((size, size), dtype=np.uint8)
    index[:, size // 2 :] = 1
    image = Image.frombytes("P", (size, size), index.tobytes())
    image.putpalette([0, 0, 0, *BLUE] + [0] * (256 * 3 - 6))
    image.info["transparency"] = 0
    return image


def grey16(value: int, size: tuple[int, int] = (24, 24)) -> Image.Image:
    array = np.full((size[1], size[0]), value, dtype=np.uint16)
    return Image.fromarray(array)


def truncated_png(path: Path) -> Path:
    """A PNG of noise cut after half its bytes: opens, then fails to decode."""
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def mixed_tree(root: Path) -> Path:
    """Three classes of many formats and modes, plus files that must be skipped.

    cat: 6 usable (one nested), 1 truncated PNG, 1 hidden; dog: 6 usable, one
    random-bytes .jpg; fox: 6 usable, notes.txt; readme.md loose in the root.
    """
    cat, dog, fox = root / "cat", root / "dog", root / "fox"
    save(cat / "red.png", Image.new("RGB", (40, 30), RED))
    save(cat / "grey.png", Image.new("L", (25, 25), 100))
    save(cat / "clear.png", Image.new("RGBA", (30, 30), (0, 0, 0, 0)))
    save(cat / "la.png", Image.new("LA", (20, 20), (0, 0)))
    save(cat / "sub" / "nested.jpg", Image.new("RGB", (50, 40), GREEN), quality=95)
    save(cat / "palette.png", palette_half_transparent())
    truncated_png(cat / "broken.png")
    save(cat / ".hidden.png", Image.new("RGB", (8, 8), RED))
    save(dog / "i16.png", grey16(65535))
    save(dog / "cmyk.jpg", Image.new("CMYK", (30, 20), (0, 255, 255, 0)), quality=95)
    save(dog / "mono.png", Image.new("1", (16, 16), 1))
    save(dog / "wide.png", thirds((90, 30), (RED, GREEN, BLUE), wide=True))
    save(dog / "tall.png", thirds((30, 90), (RED, GREEN, BLUE), wide=False))
    save(dog / "blue.bmp", Image.new("RGB", (12, 12), BLUE))
    (dog / "random.jpg").write_bytes(np.random.default_rng(1).bytes(300))
    for i in range(6):
        save(fox / f"f{i}.png", Image.new("RGB", (20 + i, 18), (10 * i, 20, 30)))
    (fox / "notes.txt").write_text("these are foxes\n")
    (root / "readme.md").write_text("a dataset\n")
    return root


def counted_tree(root: Path, sizes: tuple[int, ...] = (10, 20, 30)) -> Path:
    """Classes c0, c1, ... of 8×8 grey PNGs; image i of class c has value 50c + i."""
    for c, n in enumerate(sizes):
        for i in range(n):
            save(root / f"c{c}" / f"{i:03d}.png", Image.new("L", (8, 8), 50 * c + i))
    return root


def ids(x: np.ndarray) -> list[int]:
    """The value that names each image of a :func:`counted_tree`."""
    return [int(v) for v in np.asarray(x)[:, 0, 0, 0]]


def counting_decoder(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wrap the decoder so each decoded file is recorded; returns the record."""
    calls: list[str] = []
    real = folder_cache._decode

    def decode(pil: Any, formats: list[str], path: Path, *args: Any) -> np.ndarray:
        calls.append(path.name)
        return real(pil, formats, path, *args)

    monkeypatch.setattr(folder_cache, "_decode", decode)
    return calls


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make decoding, and importing Pillow, fail: only the cache may be read."""

    def decode(*args: Any) -> np.ndarray:
        raise AssertionError("decoded an image although the cache was valid")

    monkeypatch.setattr(folder_cache, "_decode", decode)
    monkeypatch.setitem(sys.modules, "PIL", None)


# ------------------------------------------------------------- what comes back


@pytest.mark.parametrize("channels", [1, 3])
def test_mixed_tree_shapes_labels_and_memmaps(tmp_path: Path, channels: int) -> None:
    root = mixed_tree(tmp_path / "pets")
    data = load_image_folder(root, image_size=16, channels=channels)
    assert isinstance(data, FolderDataset)
    assert data.root == root.resolve()
    assert data.class_names == ("cat", "dog", "fox")
    assert data.image_shape == (channels, 16, 16)
    assert data.x_val is not None and data.y_val is not None
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
        assert isinstance(x, np.memmap)
        assert not x.flags.writeable
        assert x.dtype == np.uint8 and x.shape == (len(y), channels, 16, 16)
        assert y.dtype == np.int64 and y.shape == (len(x),)
    labels = np.concatenate([data.y_train, data.y_val])
    assert np.bincount(labels).tolist() == [6, 6, 6]  # nested.jpg counts for cat
    assert data.x_test is None and data.y_test is None
    assert data.cache.parent == tmp_path / "xdg" / "chainrule" / "folders"


def test_skipped_files_are_named_with_reasons(tmp_path: Path) -> None:
    data = load_image_folder(mixed_tree(tmp_path / "pets"), image_size=8)
    reasons = dict(data.skipped)
    assert set(reasons) == {
        "cat/broken.png",
        "dog/random.jpg",
        "fox/notes.txt",
        "readme.md",
    }
    assert reasons["cat/broken.png"].startswith("corrupt or truncated image (")
    assert reasons["dog/random.jpg"] == "not an image (cannot identify image file)"
    assert reasons["fox/notes.txt"] == "not an image (cannot identify image file)"
    assert reasons["readme.md"] == "not in a class folder"
    assert [p for p, _ in data.skipped] == sorted(reasons)
    assert not any("hidden" in p for p, _ in data.skipped)


def test_rows_are_the_files_decoded_in_class_and_path_order(tmp_path: Path) -> None:
    root = mixed_tree(tmp_path / "pets")
    data = load_image_folder(root, image_size=(12, 10), validation_split=0)
    assert data.x_val is None and data.y_val is None
    used = [
        p
        for c in data.class_names
        for p in sorted((root / c).rglob("*"), key=lambda p: p.relative_to(root))
        if p.is_file()
        and not p.name.startswith(".")
        and p.relative_to(root).as_posix() not in dict(data.skipped)
    ]
    assert len(used) == len(data.x_train) == 18
    for row, path in zip(data.x_train, used, strict=True):
        np.testing.assert_array_equal(row, read_folder_image(path, image_size=(12, 10)))
    assert data.y_train.tolist() == [0] * 6 + [1] * 6 + [2] * 6


# -------------------------------------------------------------- pixel content


def pixels(
    path: Path, size: int | tuple[int, int] = 8, channels: int = 3
) -> np.ndarray:
    return read_folder_image(path, image_size=size, channels=channels)


def test_solid_colours_survive_resizing(tmp_path: Path) -> None:
    red = save(tmp_path / "red.png", Image.new("RGB", (40, 30), RED))
    out = pixels(red, 16)
    assert out.shape == (3, 16, 16) and out.dtype == np.uint8
    assert (out.reshape(3, -1).T == RED).all()
    assert (pixels(red, 16, channels=1) == 76).all()  # ITU-R 601 luma of red
    small = save(tmp_path / "small.png", Image.new("RGB", (3, 5), BLUE))
    assert (pixels(small, (20, 30)).reshape(3, -1).T == BLUE).all()  # enlarged


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    clear = save(tmp_path / "clear.png", Image.new("RGBA", (30, 30), (0, 0, 0, 0)))
    assert (pixels(clear) == 255).all()
    assert (pixels(clear, channels=1) == 255).all()
    la = save(tmp_path / "la.png", Image.new("LA", (20, 20), (0, 0)))
    assert (pixels(la) == 255).all()
    half = save(tmp_path / "half.png", Image.new("RGBA", (10, 10), (0, 0, 0, 128)))
    assert np.abs(pixels(half).astype(int) - 127).max() <= 1
    palette = save(tmp_path / "palette.png", palette_half_transparent(20))
    out = pixels(palette, 20)
    assert (out[:, :, :8].reshape(3, -1) == 255).all()  # transparent: white
    assert (out[:, :, 12:].reshape(3, -1).T == BLUE).all()


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.new("RGB", (10, 10), GREEN).convert("P")
    path = save(tmp_path / "p.gif", image)
    assert (pixels(path).reshape(3, -1).T == GREEN).all()


def test_deep_and_odd_modes(tmp_path: Path) -> None:
    assert (pixels(save(tmp_path / "max.png", grey16(65535))) == 255).all()
    assert (
        pixels(save(tmp_path / "mid.png", grey16(257 * 100)), channels=1) == 100
    ).all()
    floats = Image.fromarray(np.full((10, 12), 0.5, dtype=np.float32))
    assert floats.mode == "F"
    assert (
        np.abs(pixels(save(tmp_path / "f.tiff", floats)).astype(int) - 128) <= 1
    ).all()
    ramp = Image.fromarray(np.arange(-50, 50, dtype=np.int32).reshape(10, 10))
    assert ramp.mode == "I"
    out = pixels(save(tmp_path / "i.tiff", ramp), 10, channels=1)
    assert (out.min(), out.max()) == (0, 255)  # an odd range is stretched
    mono = save(tmp_path / "mono.png", Image.new("1", (16, 16), 1))
    assert (pixels(mono) == 255).all()
    cmyk = Image.new("CMYK", (30, 20), (0, 255, 255, 0))
    out = pixels(save(tmp_path / "cmyk.jpg", cmyk, quality=95)).astype(int)
    assert np.abs(out.reshape(3, -1).T - RED).max() <= 3


@pytest.mark.parametrize("wide", [True, False])
def test_long_images_are_centre_cropped(tmp_path: Path, wide: bool) -> None:
    size = (300, 100) if wide else (100, 300)
    path = save(tmp_path / "bands.png", thirds(size, (RED, GREEN, BLUE), wide=wide))
    out = pixels(path, 10).astype(int)  # the green middle square, scaled 1/10
    inner = out[:, 3:7, :] if not wide else out[:, :, 3:7]
    assert (inner.reshape(3, -1).T == GREEN).all()
    assert out[1].mean() > 200 and out[0].mean() < 40 and out[2].mean() < 40


def test_pair_image_size_is_height_then_width(tmp_path: Path) -> None:
    path = save(tmp_path / "bands.png", thirds((90, 90), (RED, GREEN, BLUE), wide=True))
    out = pixels(path, (30, 10))  # a tall crop of the middle band
    assert out.shape == (3, 30, 10)
    assert (out[:, :, 3:7].reshape(3, -1).T == GREEN).all()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = RED  # left half red, right half blue as stored
    stored[:, 20:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: red on top, blue below
    path = save(tmp_path / "phone.jpg", Image.fromarray(stored), exif=exif, quality=95)
    out = pixels(path, (8, 4)).astype(int)
    assert np.abs(out[:, :3].reshape(3, -1).T - RED).max() <= 8
    assert np.abs(out[:, 5:].reshape(3, -1).T - BLUE).max() <= 8


def test_large_jpeg_is_drafted_and_still_right(tmp_path: Path) -> None:
    path = save(
        tmp_path / "big.jpg",
        thirds((900, 300), (RED, GREEN, BLUE), wide=True),
        quality=95,
    )
    out = pixels(path, 10).astype(int)
    assert np.abs(out[:, :, 3:7].reshape(3, -1).T - GREEN).max() <= 6


@SETTINGS
@given(
    width=st.integers(1, 50),
    height=st.integers(1, 50),
    mode=st.sampled_from(["RGB", "L", "RGBA", "LA", "P", "1", "I;16", "CMYK", "F"]),
    size=st.one_of(
        st.integers(1, 20), st.tuples(st.integers(1, 20), st.integers(1, 20))
    ),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**16),
)
def test_any_image_gives_channels_height_width(
    width: int,
    height: int,
    mode: str,
    size: int | tuple[int, int],
    channels: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    if mode == "I;16":
        image = Image.fromarray(noise[..., 0].astype(np.uint16) * 200)
    elif mode == "F":
        image = Image.fromarray(noise[..., 0].astype(np.float32) / 7)
    else:
        image = image.convert(mode)
    fmt = {"CMYK": "JPEG", "F": "TIFF"}.get(mode, "PNG")
    with tempfile.TemporaryDirectory() as tmp:
        path = save(Path(tmp) / f"image.{fmt.lower()}", image, fmt)
        out = read_folder_image(path, image_size=size, channels=channels)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (channels, h, w)
    assert out.dtype == np.uint8


# ------------------------------------------------------------------ the splits


def test_split_is_stratified_and_deterministic(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "data")
    one = load_image_folder(root, image_size=8, channels=1, validation_split=0.2)
    assert one.x_val is not None and one.y_val is not None
    assert np.bincount(one.y_val).tolist() == [2, 4, 6]
    assert np.bincount(one.y_train).tolist() == [8, 16, 24]
    train, val = ids(one.x_train), ids(one.x_val)
    assert sorted(train + val) == sorted(
        50 * c + i for c, n in enumerate((10, 20, 30)) for i in range(n)
    )
    assert [v // 50 for v in val] == one.y_val.tolist()  # each row keeps its label
    assert [v // 50 for v in train] == one.y_train.tolist()
    assert train == sorted(train)  # file order kept within the split
    again = load_image_folder(root, image_size=8, channels=1, validation_split=0.2)
    assert ids(again.x_val) == val and again.y_val.tolist() == one.y_val.tolist()
    other = load_image_folder(root, image_size=8, channels=1, seed=1)
    assert other.x_val is not None
    assert np.bincount(other.y_val).tolist() == [2, 4, 6]
    assert ids(other.x_val) != val
    assert isinstance(other.x_val, np.memmap) and isinstance(other.x_train, np.memmap)
    assert other.cache == one.cache  # one decoded pool, several splits


def test_split_rounds_half_up_per_class(tmp_path: Path) -> None:
    data = load_image_folder(
        counted_tree(tmp_path / "d", (5, 3)), image_size=8, validation_split=0.5
    )
    assert data.y_val is not None
    assert np.bincount(data.y_val).tolist() == [3, 2]  # 2.5 -> 3, 1.5 -> 2
    assert np.bincount(data.y_train).tolist() == [2, 1]


def test_old_splits_are_pruned(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "d", (4, 4))
    for seed in range(6):
        data = load_image_folder(root, image_size=8, seed=seed, validation_split=0.25)
    splits = [p for p in data.cache.iterdir() if p.name.startswith("split-")]
    assert len(splits) <= folder_constants._KEEP_SPLITS
    assert data.cache / "split-seed5-val0.25" in splits


@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_train_val_test_folders(tmp_path: Path, val_name: str) -> None:
    root = tmp_path / "split"
    for part, n in (("train", 4), (val_name, 2), ("test", 3)):
        for c, name in enumerate(("ant", "bee")):
            for i in range(n - c if part == "test" else n):
                save(
                    root / part / name / f"{i}.png", Image.new("L", (9, 9), 10 * c + i)
                )
    (root / "LICENSE").write_text("free\n")
    (root / "extras").mkdir()
    data = load_image_folder(root, image_size=8, channels=1, validation_split=0.5)
    assert data.class_names == ("ant", "bee")
    assert np.bincount(data.y_train).tolist() == [4, 4]  # validation_split ignored
    assert data.y_val is not None and data.y_test is not None
    assert np.bincount(data.y_val).tolist() == [2, 2]
    assert np.bincount(data.y_test).tolist() == [3, 2]
    assert data.x_test is not None and data.x_test.shape == (5, 1, 8, 8)
    assert isinstance(data.x_test, np.memmap) and isinstance(data.x_val, np.memmap)
    assert dict(data.skipped) == {
        "LICENSE": "not in a class folder (expected under train/)",
        "extras/": "folder not used: next to train/ only val/ (or validation/) and "
        "test/ are read",
    }
    assert "test" in data.summary()


def test_train_folder_without_val_is_split_at_random(tmp_path: Path) -> None:
    root = tmp_path / "split"
    counted_tree(root / "train", (5, 5))
    counted_tree(root / "test", (2, 2))
    data = load_image_folder(root, image_size=8, validation_split=0.2)
    assert data.y_val is not None and np.bincount(data.y_val).tolist() == [1, 1]
    assert data.y_test is not None and len(data.y_test) == 4


def test_val_classes_may_be_a_subset_and_loose_files_are_skipped(
    tmp_path: Path,
) -> None:
    root = tmp_path / "split"
    counted_tree(root / "train", (3, 3))
    counted_tree(root / "val", (2,))
    (root / "val" / "stray.png").write_bytes(b"")
    data = load_image_folder(root, image_size=8)
    assert data.y_val is not None and data.y_val.tolist() == [0, 0]
    assert ("val/stray.png", "not in a class folder") in data.skipped


# -------------------------------------------------------------------- the cache


def test_unchanged_tree_loads_from_the_cache_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = mixed_tree(tmp_path / "pets")
    first = load_image_folder(root, image_size=8)
    forbid_decoding(monkeypatch)  # and Pillow cannot be imported
    second = load_image_folder(root, image_size=8)
    assert second.cache == first.cache
    assert second.skipped == first.skipped
    np.testing.assert_array_equal(second.x_train, first.x_train)
    np.testing.assert_array_equal(second.y_val, first.y_val)


def test_changed_or_added_file_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    first = load_image_folder(root, image_size=8, validation_split=0)
    calls = counting_decoder(monkeypatch)
    changed = root / "c0" / "000.png"
    save(changed, Image.new("L", (8, 8), 222))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = load_image_folder(root, image_size=8, validation_split=0)
    assert second.cache != first.cache
    assert not first.cache.exists()  # the stale cache of this root is gone
    assert len(calls) == 6
    assert ids(second.x_train)[0] == 222
    save(root / "c1" / "new.png", Image.new("L", (8, 8), 7))
    third = load_image_folder(root, image_size=8, validation_split=0)
    assert third.cache != second.cache and len(third.x_train) == 7
    # another size is another cache, and does not remove this one
    load_image_folder(root, image_size=4, validation_split=0)
    assert third.cache.exists()


def test_rebuild_true_decodes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    first = load_image_folder(root, image_size=8)
    calls = counting_decoder(monkeypatch)
    load_image_folder(root, image_size=8)
    assert calls == []
    again = load_image_folder(root, image_size=8, rebuild=True)
    assert len(calls) == 6 and again.cache == first.cache
    np.testing.assert_array_equal(again.x_train, first.x_train)


def test_cache_dir_argument(tmp_path: Path) -> None:
    data = load_image_folder(
        counted_tree(tmp_path / "d", (3, 3)), cache_dir=tmp_path / "c"
    )
    assert data.cache.parent == tmp_path / "c" / "folders"
    assert (data.cache / "manifest.json").is_file()
    assert (data.cache / "train_x.npy").is_file() and (
        data.cache / "train_y.npy"
    ).is_file()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_build_leaves_nothing_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path, error: type
) -> None:
    root = counted_tree(tmp_path / "d", (4, 4))
    real = folder_cache._decode
    calls = [0]

    def failing(*args: Any) -> np.ndarray:
        calls[0] += 1
        if calls[0] == 5:
            raise error("power cut")
        return real(*args)

    monkeypatch.setattr(folder_cache, "_decode", failing)
    with pytest.raises(error, match="power cut"):
        load_image_folder(root, image_size=8)
    assert list(isolated.iterdir()) == []  # no cache, no temporary folder
    monkeypatch.setattr(folder_cache, "_decode", real)
    data = load_image_folder(root, image_size=8, validation_split=0)
    assert sorted(ids(data.x_train)) == [*range(4), *range(50, 54)]


def test_leftovers_of_a_killed_build_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    good = load_image_folder(root, image_size=8, validation_split=0)
    # a cache folder whose data file was cut short (a crash mid-write)
    x_file = good.cache / "train_x.npy"
    x_file.write_bytes(x_file.read_bytes()[:200])
    (good.cache.parent / f".{good.cache.name}.abc.tmp").mkdir()
    calls = counting_decoder(monkeypatch)
    again = load_image_folder(root, image_size=8, validation_split=0)
    assert len(calls) == 6
    assert sorted(ids(again.x_train)) == [0, 1, 2, 50, 51, 52]
    (again.cache / "manifest.json").write_text("{not json")
    load_image_folder(root, image_size=8, validation_split=0)
    assert len(calls) == 12


def test_broken_split_files_are_rewritten(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "d", (5, 5))
    first = load_image_folder(root, image_size=8)
    split = first.cache / "split-seed0-val0.2"
    np.save(split / "val_index.npy", np.array([0, 1], dtype=np.int64))
    again = load_image_folder(root, image_size=8)
    assert again.x_val is not None and first.x_val is not None
    assert ids(again.x_val) == ids(first.x_val)


# ------------------------------------------------------------- skipped files


def test_unreadable_file_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    locked = root / "c1" / "001.png"
    real_open = builtins.open

    def fake_open(path: Any, *args: Any, **kw: Any) -> Any:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(folder_decode, "open", fake_open, raising=False)
    data = load_image_folder(root, image_size=8)
    assert dict(data.skipped) == {
        "c1/001.png": "cannot read the file: Permission denied"
    }


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_skipped(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    (root / "c0" / "002.png").chmod(0)
    data = load_image_folder(root, image_size=8)
    assert dict(data.skipped) == {
        "c0/002.png": "cannot read the file: Permission denied"
    }


def test_decompression_bomb_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    save(root / "c0" / "huge.png", Image.new("L", (40, 40), 9))
    monkeypatch.setattr(folder_decode, "MAX_PIXELS", 30 * 30)
    data = load_image_folder(root, image_size=8)
    assert dict(data.skipped) == {
        "c0/huge.png": "too large: 40×40 pixels, more than 900 pixels (30×30)"
    }
    with pytest.raises(DataError, match=r"huge\.png: too large: 40×40 pixels"):
        read_folder_image(root / "c0" / "huge.png")


def test_links_empty_files_and_subfolders(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    (root / "c0" / "empty.png").write_bytes(b"")
    (root / "c0" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "c1" / "elsewhere").symlink_to(
        tmp_path / "d" / "c0", target_is_directory=True
    )
    (root / ".cache").mkdir()
    save(root / ".cache" / "x.png", Image.new("L", (8, 8), 1))
    save(root / "c1" / ".thumbs" / "y.png", Image.new("L", (8, 8), 1))
    save(root / "c1" / "deep" / "er" / "z.png", Image.new("L", (8, 8), 99))
    data = load_image_folder(root, image_size=8, validation_split=0)
    assert dict(data.skipped) == {
        "c0/empty.png": "not an image (cannot identify image file)",
        "c0/gone.png": "broken symbolic link",
        "c1/elsewhere/": "symbolic link to a folder (not followed)",
    }
    assert 99 in ids(data.x_train) and len(data.x_train) == 7


def test_leftovers_older_than_a_day_are_removed(tmp_path: Path, isolated: Path) -> None:
    isolated.mkdir(parents=True)
    old, fresh = isolated / ".old.abc.tmp", isolated / ".fresh.abc.tmp"
    for leftover in (old, fresh):
        leftover.mkdir()
        (leftover / "train_x.npy").write_bytes(b"partial")
    two_days_ago = os.stat(old).st_mtime - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    load_image_folder(counted_tree(tmp_path / "d", (3, 3)), image_size=8)
    assert not old.exists()
    assert fresh.exists()  # perhaps a build still running


def test_summary(tmp_path: Path) -> None:
    data = load_image_folder(mixed_tree(tmp_path / "pets"), image_size=(16, 12))
    text = data.summary()
    assert str(data.root) in text and str(data.cache) in text
    assert "3×16×12" in text
    assert "skipped 4 files" in text
    assert "fox/notes.txt: not an image (cannot identify image file)" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[4:7]}
    assert rows == {"cat": ["5", "1"], "dog": ["5", "1"], "fox": ["5", "1"]}
    assert "total" in text


# ------------------------------------------------------------------ refusals


def test_missing_pillow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = counted_tree(tmp_path / "d", (2, 2))
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[image\]'"):
        load_image_folder(root)
    with pytest.raises(PillowRequiredError, match="needs Pillow"):
        read_folder_image(root / "c0" / "000.png")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"image_size": 0},
            ValueError,
            r"image_size must be a positive integer .*got 0",
        ),
        ({"image_size": (8, -1)}, ValueError, r"image_size .* got \(8, -1\)"),
        ({"image_size": (1, 2, 3)}, ValueError, r"image_size .* got \(1, 2, 3\)"),
        ({"image_size": "64"}, ValueError, r"image_size .* got '64'"),
        ({"image_size": True}, ValueError, r"image_size .* got True"),
        ({"image_size": 2000}, ValueError, r"at most 1024 pixels a side, got 2000"),
        (
            {"channels": 2},
            ValueError,
            r"channels must be 1 \(grey\) or 3 \(RGB\), got 2",
        ),
        ({"channels": True}, ValueError, r"channels must be 1 .* got True"),
        ({"channels": 3.0}, ValueError, r"channels must be 1 .* got 3.0"),
        (
            {"validation_split": 1.0},
            ValueError,
            r"validation_split must be >= 0 and < 1.*got 1.0",
        ),
        ({"validation_split": -0.1}, ValueError, r"invalid validation_split -0.1"),
        (
            {"validation_split": math.nan},
            ValueError,
            r"validation_split nan \(must be finite\)",
        ),
        ({"validation_split": "0.2"}, TypeError, r"validation_split must be a number"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, ValueError, r"seed must be an integer >= 0, got 1.5"),
        ({"rebuild": "yes"}, TypeError, r"rebuild must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments(
    tmp_path: Path, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        load_image_folder(tmp_path, **kwargs)


def test_bad_path(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"image folder .*nope does not exist; expected a folder"
    ):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"file\.png is not a folder"):
        load_image_folder(tmp_path / "file.png")
    with pytest.raises(TypeError, match="path must be a folder path, got None"):
        load_image_folder(None)  # type: ignore[arg-type]


def test_folders_without_two_classes(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no class folders; .* found an empty folder"):
        load_image_folder(empty)
    loose = tmp_path / "loose"
    save(loose / "cat.1.jpg", Image.new("RGB", (8, 8)))
    save(loose / "dog.1.jpg", Image.new("RGB", (8, 8)))
    with pytest.raises(
        DataError, match=r"found 2 files and no folders \(put each class"
    ):
        load_image_folder(loose)
    kaggle = tmp_path / "kaggle"
    save(kaggle / "train" / "cat.1.jpg", Image.new("RGB", (8, 8)))
    with pytest.raises(DataError, match=r"train: no class folders; .*train/cat/"):
        load_image_folder(kaggle)
    one = counted_tree(tmp_path / "one", (3,))
    with pytest.raises(
        DataError, match=r"found one class folder \('c0'\); expected at least two"
    ):
        load_image_folder(one)


def test_class_without_images(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "d", (3, 3))
    (root / "c2").mkdir()
    (root / "c2" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(
        DataError, match=r"class 'c2' has no image files; expected c2/<images>"
    ):
        load_image_folder(root)
    (root / "c2" / "a.txt").write_text("text")
    (root / "c2" / "b.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 20)
    with pytest.raises(
        DataError, match=r"class 'c2' has no usable images.*c2/a\.txt: not an image"
    ):
        load_image_folder(root)


def test_split_folders_must_match_train(tmp_path: Path) -> None:
    root = tmp_path / "split"
    counted_tree(root / "train", (2, 2))
    counted_tree(root / "val", (1, 1, 1))
    with pytest.raises(
        DataError,
        match=r"folder 'c2' is not one of the training classes; expected .*\(c0, c1\)",
    ):
        load_image_folder(root)
    (root / "val" / "c2" / "000.png").unlink()
    (root / "val" / "c2").rmdir()
    (root / "validation").mkdir()
    with pytest.raises(DataError, match=r"found both val/ and validation/"):
        load_image_folder(root)
    (root / "validation").rmdir()
    (root / "test" / "c0").mkdir(parents=True)
    with pytest.raises(
        DataError, match=r"test: no image files; expected test/<class>/<images>"
    ):
        load_image_folder(root)
    (root / "test" / "c0" / "x.txt").write_text("no")
    with pytest.raises(DataError, match=r"test: no usable images"):
        load_image_folder(root)


def test_split_that_empties_a_class(tmp_path: Path) -> None:
    root = counted_tree(tmp_path / "d", (1, 4))
    with pytest.raises(
        DataError,
        match=r"'c0' has 1 usable image: validation_split=0.5 takes 1 .* leaves none",
    ):
        load_image_folder(root, validation_split=0.5)
    with pytest.raises(
        DataError, match=r"validation_split=0.1 gives no validation image"
    ):
        load_image_folder(root, validation_split=0.1)
    data = load_image_folder(root, validation_split=0.25)
    assert data.y_val is not None and data.y_val.tolist() == [1]


def test_read_folder_image_refusals(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(
        DataError, match=r"notes\.txt: not an image \(cannot identify image file\)"
    ):
        read_folder_image(text)
    with pytest.raises(
        DataError, match=r"missing\.png: cannot read the file: No such file"
    ):
        read_folder_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match=r"broken\.png: corrupt or truncated image"):
        read_folder_image(truncated_png(tmp_path / "broken.png"))
    with pytest.raises(ValueError, match="channels must be 1"):
        read_folder_image(text, channels=4)
    with pytest.raises(TypeError, match="path must be an image file path, got None"):
        read_folder_image(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------- memory


def peak_bytes(run: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_far_below_the_dataset(tmp_path: Path) -> None:
    """Building and loading never hold much of the decoded dataset in memory."""
    root = tmp_path / "many"
    rng = np.random.default_rng(0)
    for c in range(3):
        for i in range(100):
            noise = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
            save(
                root / f"k{c}" / f"{i:03d}.png",
                Image.fromarray(noise),
                compress_level=0,
            )
    full = 300 * 3 * 64 * 64  # bytes of the whole decoded dataset
    read_folder_image(root / "k0" / "000.png")  # Pillow's plugins imported before
    load = lambda: load_image_folder(root, image_size=64, validation_split=0.2)  # noqa: E731
    built = peak_bytes(load)
    assert built < full / 2, (built, full)
    cached = peak_bytes(load)
    assert cached < full / 2, (cached, full)
    data = load()
    assert data.x_train.shape == (240, 3, 64, 64)
    assert data.x_val is not None and data.x_val.shape == (60, 3, 64, 64)

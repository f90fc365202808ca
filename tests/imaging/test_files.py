"""``load_image``: every format and mode as grey in [0, 1]; every bad file refused."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from photos import encode
from PIL import Image

from chainrule.errors import ChainruleError
from chainrule.imaging import (
    MAX_PIXELS,
    BlankImageError,
    ImageError,
    MissingPillowError,
    load_image,
    preprocess,
    require_pillow,
    save_png,
)

GREY = np.array([[0, 64], [128, 255]], dtype=np.uint8)


def grey_of(data: bytes) -> np.ndarray:
    out = load_image(data)
    assert out.dtype == np.float32 and out.ndim == 2
    assert 0 <= out.min() and out.max() <= 1
    return out


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF"])
def test_lossless_formats_read_exactly(fmt: str) -> None:
    np.testing.assert_allclose(grey_of(encode(GREY, fmt)), GREY / 255, atol=1e-6)


def test_jpeg_reads_close() -> None:
    image = np.full((16, 16), 200, dtype=np.uint8)
    np.testing.assert_allclose(grey_of(encode(image, "JPEG")), 200 / 255, atol=0.02)


def test_colour_uses_pillows_luma() -> None:
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 0, 0], rgb[0, 1, 1], rgb[0, 2, 2] = 255, 255, 255  # red, green, blue
    expected = np.asarray(Image.fromarray(rgb).convert("L")) / 255
    np.testing.assert_allclose(grey_of(encode(rgb)), expected, atol=1 / 255)


def test_transparency_is_white_paper() -> None:
    """A canvas drawing: black strokes with alpha on a transparent background."""
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, :, 3] = [0, 128, 255]  # transparent, half, opaque black
    rgba[0, 0, :3] = 0  # a transparent pixel's colour does not matter...
    np.testing.assert_allclose(grey_of(encode(rgba)), [[1, 127 / 255, 0]], atol=1e-6)
    rgba[0, 0, :3] = 17  # ...whatever it is
    np.testing.assert_allclose(grey_of(encode(rgba))[0, 0], 1)


def test_grey_with_alpha_and_palette_transparency() -> None:
    la = np.array([[[0, 0], [0, 255]]], dtype=np.uint8)  # (1, 2, LA)
    np.testing.assert_allclose(grey_of(encode(la, mode="LA")), [[1, 0]])
    palette = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=1)  # index 1 transparent
    np.testing.assert_allclose(grey_of(buffer.getvalue()), [[0, 1]])


def test_sixteen_bit_png() -> None:
    deep = np.array([[0, 32768, 65535]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(deep).save(buffer, format="PNG")
    np.testing.assert_allclose(grey_of(buffer.getvalue()), [[0, 0.5, 1]], atol=1e-4)


def test_first_frame_of_an_animated_gif() -> None:
    frames = [Image.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    np.testing.assert_allclose(grey_of(buffer.getvalue()), 0)


def test_a_phone_photos_exif_orientation_is_applied() -> None:
    image = Image.fromarray(np.zeros((10, 30), dtype=np.uint8))  # 30 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert grey_of(buffer.getvalue()).shape == (30, 10)


def test_path_str_and_bytes_agree(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    path.write_bytes(encode(GREY))
    np.testing.assert_array_equal(load_image(path), load_image(str(path)))
    np.testing.assert_array_equal(load_image(path), load_image(path.read_bytes()))


# ------------------------------------------------------------------ bad files
def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says ``width × height`` but holds one row of data."""
    png = encode(np.zeros((1, 1), dtype=np.uint8))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return png[:8] + patched + png[8 + 25 :]


@pytest.mark.parametrize("side", [4097, 10_000, 20_000])
def test_huge_dimensions_are_refused_before_decoding(tmp_path: Path, side) -> None:
    """Over our limit, in Pillow's warning range, and past its bomb error."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(side, side))
    with pytest.raises(ImageError, match=r"bomb\.png: the image is too large"):
        load_image(path)
    assert side * side > MAX_PIXELS


def test_the_largest_allowed_image_is_not_refused_for_size() -> None:
    with pytest.raises(ImageError, match="cannot read the image"):
        load_image(png_claiming(4096, 4096))  # passes the size check, then truncated


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"these are my notes, not a picture\n", "not an image"),
        (b"", "not an image"),
        (encode(GREY)[:40], "cannot read the image"),
        (encode(np.zeros((64, 64), dtype=np.uint8), "JPEG")[:200], "cannot read"),
    ],
    ids=["text", "empty", "truncated png", "truncated jpeg"],
)
def test_bad_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"^{re.escape(str(path))}: {message}"):
        load_image(path)
    with pytest.raises(ImageError, match=f"^image data: {message}"):
        load_image(content)
    with pytest.raises(ImageError, match=f"^canvas.png: {message}"):
        load_image(content, name="canvas.png")


def test_other_formats_are_refused() -> None:
    buffer = io.BytesIO()
    Image.fromarray(GREY).save(buffer, format="TIFF")
    with pytest.raises(
        ImageError, match=r"not an image \(expected PNG, JPEG, BMP or GIF\)"
    ):
        load_image(buffer.getvalue())


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope\.png: no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)
    with pytest.raises(TypeError, match="a path or the file's bytes"):
        load_image(12)  # type: ignore[arg-type]


def test_blank_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "white.png"
    path.write_bytes(encode(np.full((30, 30), 255, dtype=np.uint8)))
    with pytest.raises(BlankImageError, match=r"white\.png: blank image: no ink"):
        preprocess(path)
    with pytest.raises(BlankImageError, match=r"^blank image: no ink found"):
        preprocess(load_image(path))


def test_image_errors_are_chainrule_errors() -> None:
    assert issubclass(BlankImageError, ImageError)
    assert issubclass(ImageError, ChainruleError)


def test_save_png_round_trip(tmp_path: Path) -> None:
    save_png(GREY, tmp_path / "out.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), GREY)
    colour = np.stack([GREY, 255 - GREY, GREY // 2], axis=-1)
    save_png(colour, tmp_path / "colour.png")
    with Image.open(tmp_path / "colour.png") as png:
        assert png.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(png), colour)
    with pytest.raises(ValueError, match=r"uint8 image \(H, W\) or \(H, W, 3\)"):
        save_png(GREY.astype(np.float32), tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"got uint8 \(3, 5, 5\)"):
        save_png(np.zeros((3, 5, 5), np.uint8), tmp_path / "bad.png")


# ------------------------------------------------------------ Pillow optional
def test_missing_pillow_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIL", "PIL.Image", "PIL.ImageOps"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingPillowError, match=r"pip install 'chainrule\[image\]'"):
        require_pillow()
    with pytest.raises(ImportError):
        load_image(b"")


def test_importing_chainrule_does_not_import_pillow() -> None:
    code = (
        "import sys, chainrule, chainrule.imaging, chainrule.cli.main\n"
        "assert 'PIL' not in sys.modules, 'PIL imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

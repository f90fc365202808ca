"""IDX parsing: good files of every dtype, and every kind of bad file rejected."""

from __future__ import annotations

import gzip
import re
import struct
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.data import DataError, parse_idx, read_idx, read_idx_bytes

CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(x: np.ndarray) -> bytes:
    """Encode ``x`` as an IDX file: zero, zero, type code, ndim, dims, big-endian."""
    header = bytes([0, 0, CODES[x.dtype], x.ndim])
    dims = struct.pack(f">{x.ndim}I", *x.shape)
    return header + dims + x.astype(x.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fails(path: Path, message: str) -> AbstractContextManager[Any]:
    """Expect a DataError naming ``path`` and containing ``message`` verbatim."""
    return pytest.raises(
        DataError, match=f"{re.escape(str(path))}.*{re.escape(message)}"
    )


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", list(CODES), ids=str)
def test_round_trip(tmp_path: Path, dtype: np.dtype, gz: bool) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write(tmp_path / "x.idx", idx_bytes(x), gz=gz)
    y = read_idx(path)
    assert y.dtype == dtype
    assert y.dtype.isnative
    assert y.flags.writeable
    np.testing.assert_array_equal(y, x)


def test_multi_byte_types_are_big_endian_on_disk() -> None:
    int32 = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + bytes.fromhex("01020304 fffffffe")
    np.testing.assert_array_equal(parse_idx(int32), [0x01020304, -2])
    float32 = bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + bytes.fromhex("3fc00000")
    np.testing.assert_array_equal(parse_idx(float32), [1.5])


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw_named_gz = write(tmp_path / "a.gz", idx_bytes(x))
    gz_named_raw = write(tmp_path / "b-idx2-ubyte", idx_bytes(x), gz=True)
    np.testing.assert_array_equal(read_idx(raw_named_gz), x)
    np.testing.assert_array_equal(read_idx(gz_named_raw), x)
    assert read_idx_bytes(gz_named_raw) == idx_bytes(x)


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5), (0, 28, 28)])
def test_shapes(shape: tuple[int, ...]) -> None:
    x = np.ones(shape, dtype=np.uint8)
    assert parse_idx(idx_bytes(x)).shape == shape


def test_expectations_pass() -> None:
    x = np.zeros((2, 28, 28), dtype=np.uint8)
    y = parse_idx(idx_bytes(x), "imgs", magic=2051, shape=(None, 28, 28))
    assert y.shape == (2, 28, 28)


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(3, 2))  # 8-byte header + 6


BAD = [
    (
        "truncated",
        GOOD[:-1],
        "truncated IDX file: header says 3x2 uint8 = 6 bytes of data, found 5",
    ),
    (
        "no-data",
        GOOD[:12],
        "truncated IDX file: header says 3x2 uint8 = 6 bytes of data, found 0",
    ),
    (
        "trailing",
        GOOD + b"\0",
        "trailing bytes after IDX data: header says 3x2 uint8 = 6 bytes of data, "
        "found 7",
    ),
    ("magic", b"\x01" + GOOD[1:], "must start with two zero bytes, found 0x01 0x00"),
    ("dtype", GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX data type code 0x07"),
    ("ndim-0", GOOD[:3] + b"\x00" + GOOD[4:], "says 0 dimensions, expected 1 to 4"),
    ("ndim-5", GOOD[:3] + b"\x05" + GOOD[4:], "says 5 dimensions, expected 1 to 4"),
    (
        "short-header",
        bytes([0, 0, 8, 3]) + b"\0" * 6,
        "truncated IDX header: 3 dimensions need 16 header bytes, found 10",
    ),
    ("tiny", b"\0\0", "need at least 4 bytes for the magic number, found 2"),
    ("empty", b"", "need at least 4 bytes for the magic number, found 0"),
    ("text", b"hello, world\n", "two zero bytes, found 0x68 0x65"),
    ("png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "two zero bytes, found 0x89 0x50"),
]


@pytest.mark.parametrize(
    ("data", "message"), [pytest.param(d, m, id=i) for i, d, m in BAD]
)
def test_bad_files(tmp_path: Path, data: bytes, message: str) -> None:
    for path in (write(tmp_path / "x", data), write(tmp_path / "y", data, gz=True)):
        with fails(path, message):
            read_idx(path)


def test_truncated_multi_byte_data_counts_bytes() -> None:
    data = idx_bytes(np.zeros((2, 2), dtype=np.float64))[:-3]
    with pytest.raises(DataError, match=r"2x2 float64 = 32 bytes of data, found 29"):
        parse_idx(data, "x")


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = write(tmp_path / "x.gz", packed[: len(packed) // 2])
    with fails(path, "corrupt or truncated gzip file"):
        read_idx(path)


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32))))
    packed[-6] ^= 0xFF  # inside the CRC-32 trailer
    path = write(tmp_path / "x.gz", bytes(packed))
    with fails(path, "corrupt or truncated gzip file"):
        read_idx(path)


def test_gzip_magic_then_garbage(tmp_path: Path) -> None:
    path = write(tmp_path / "x", b"\x1f\x8bnot really gzip")
    with fails(path, "corrupt or truncated gzip file"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.gz"
    with fails(path, "cannot read the file"):
        read_idx(path)


def test_wrong_magic_expected() -> None:
    labels = idx_bytes(np.zeros(5, dtype=np.uint8))
    message = "expected 2051 (uint8, 3 dims), found 2049 (uint8, 1 dim)"
    with pytest.raises(
        DataError, match=r"^lbl: wrong IDX magic number: " + re.escape(message)
    ):
        parse_idx(labels, "lbl", magic=2051)


def test_wrong_shape_expected() -> None:
    x = idx_bytes(np.zeros((2, 28, 27), dtype=np.uint8))
    with pytest.raises(DataError, match="expected shape Nx28x28, found 2x28x27"):
        parse_idx(x, "img", shape=(None, 28, 28))
    with pytest.raises(DataError, match="expected shape 28x28, found 2x28x27"):
        parse_idx(x, "img", shape=(28, 28))


dtypes = st.sampled_from(list(CODES))
shapes = st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple)


@settings(max_examples=50, deadline=None)
@given(dtype=dtypes, shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_round_trip_property(
    dtype: np.dtype, shape: tuple[int, ...], seed: int
) -> None:
    raw = np.random.default_rng(seed).integers(0, 256, size=(*shape, dtype.itemsize))
    x = raw.astype(np.uint8).view(dtype).reshape(shape)
    y = parse_idx(idx_bytes(x))
    assert y.shape == x.shape
    assert y.dtype == dtype
    assert y.tobytes() == x.tobytes()  # bitwise, so NaN payloads compare equal


@settings(max_examples=50, deadline=None)
@given(dtype=dtypes, shape=shapes, data=st.data())
def test_any_length_change_is_an_error(
    dtype: np.dtype, shape: tuple[int, ...], data: st.DataObject
) -> None:
    good = idx_bytes(np.zeros(shape, dtype=dtype))
    cut = data.draw(st.integers(0, len(good) - 1), label="cut")
    extra = data.draw(st.binary(min_size=1, max_size=16), label="extra")
    for bad in (good[:cut], good + extra):
        with pytest.raises(DataError):
            parse_idx(bad)

"""Read IDX files, the format MNIST and Fashion-MNIST ship in, checking every byte.

An IDX file is a 4-byte magic number (two zero bytes, a data-type code, the
number of dimensions), one big-endian uint32 per dimension, then the data in
row-major order, big-endian for multi-byte types. Files are often gzipped; gzip
is recognised by its magic bytes, not by the file name.

Every problem is a :class:`~chainrule.errors.DataError` that names the file, what
was expected and what was found. A file that parses is exactly as long as its
header says, so a truncated download never turns into a half-zero array.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from chainrule.errors import DataError
from chainrule.types import Array

GZIP_MAGIC = b"\x1f\x8b"
MAX_NDIM = 4

# IDX data-type code -> (name for messages, on-disk dtype).
_DTYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("uint8", np.dtype(">u1")),
    0x09: ("int8", np.dtype(">i1")),
    0x0B: ("int16", np.dtype(">i2")),
    0x0C: ("int32", np.dtype(">i4")),
    0x0D: ("float32", np.dtype(">f4")),
    0x0E: ("float64", np.dtype(">f8")),
}


def read_idx(
    path: str | os.PathLike[str],
    *,
    magic: int | None = None,
    shape: Sequence[int | None] | None = None,
) -> Array:
    """Read an IDX file (gzipped or not) into a native-endian array.

    ``magic`` and ``shape`` are optional expectations checked against the header;
    ``None`` inside ``shape`` accepts any size for that axis. See :func:`parse_idx`.
    """
    return parse_idx(read_idx_bytes(path), str(path), magic=magic, shape=shape)


def read_idx_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the IDX content of a file, decompressed if it is gzipped.

    Gzip is detected by the magic bytes ``1f 8b``. A file that cannot be read or
    a corrupt or truncated gzip stream raises :class:`DataError`.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file: {e.strerror or e}") from e
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({e})") from e


def parse_idx(
    data: bytes,
    source: str = "<bytes>",
    *,
    magic: int | None = None,
    shape: Sequence[int | None] | None = None,
) -> Array:
    """Parse the bytes of an (uncompressed) IDX file into a native-endian array.

    ``source`` names the data in error messages (usually the file path). If
    ``magic`` is given the magic number must equal it (2051 for MNIST images,
    2049 for labels); if ``shape`` is given the dimensions must match it, with
    ``None`` matching any size. The data must be exactly as long as the header
    says: truncated data and trailing bytes both raise :class:`DataError`.
    The returned array is a fresh, writable copy.
    """
    if len(data) < 4:
        raise DataError(
            f"{source}: not an IDX file: need at least 4 bytes for the magic "
            f"number, found {len(data)}"
        )
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{source}: not an IDX file: the magic number must start with two zero "
            f"bytes, found {data[0]:#04x} {data[1]:#04x}"
        )
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        known = ", ".join(f"{c:#04x} {name}" for c, (name, _) in _DTYPES.items())
        raise DataError(
            f"{source}: unknown IDX data type code {code:#04x}, expected one of {known}"
        )
    found_magic = int.from_bytes(data[:4], "big")
    if magic is not None and found_magic != magic:
        raise DataError(
            f"{source}: wrong IDX magic number: expected {magic} "
            f"({_describe_magic(magic)}), found {found_magic} "
            f"({_describe_magic(found_magic)})"
        )
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(
            f"{source}: IDX header says {ndim} dimensions, expected 1 to {MAX_NDIM}"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{source}: truncated IDX header: {ndim} dimensions need "
            f"{header_len} header bytes, found {len(data)}"
        )
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    if shape is not None and not _shape_matches(dims, shape):
        raise DataError(
            f"{source}: expected shape {_fmt_shape(shape)}, found {_fmt_shape(dims)}"
        )
    name, dtype = _DTYPES[code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    found = len(data) - header_len
    if found != expected:
        problem = (
            "truncated IDX file"
            if found < expected
            else "trailing bytes after IDX data"
        )
        raise DataError(
            f"{source}: {problem}: header says {_fmt_shape(dims)} {name} = "
            f"{expected} bytes of data, found {found}"
        )
    x = np.frombuffer(data, dtype=dtype, count=count, offset=header_len)
    # astype copies: the result is writable and no longer pins ``data`` in memory.
    return x.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _shape_matches(dims: Sequence[int], shape: Sequence[int | None]) -> bool:
    return len(dims) == len(shape) and all(
        s is None or s == d for d, s in zip(dims, shape, strict=True)
    )


def _fmt_shape(shape: Sequence[int | None]) -> str:
    return "x".join("N" if s is None else str(s) for s in shape)


def _describe_magic(magic: int) -> str:
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    name = _DTYPES[code][0] if code in _DTYPES else f"type code {code:#04x}"
    return f"{name}, {ndim} dim{'s' if ndim != 1 else ''}"


__all__ = ["GZIP_MAGIC", "MAX_NDIM", "parse_idx", "read_idx", "read_idx_bytes"]

"""A careful ``.npz`` reader: headers first, no pickle, no surprise allocations.

``numpy.load`` trusts an archive: it allocates whatever shape a member's header
claims and leaves the file open if the zip turns out to be broken. Model files
come from strangers, so this reader opens the zip itself, reads each member's
``.npy`` header, checks dtype (never ``object``) and shape against what the
caller expects *before* reading data, and turns every failure into a
``ModelFileError``.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from types import TracebackType
from typing import IO, Any

import numpy as np

from chainrule.errors import ModelFileError

#: everything that a damaged or hostile archive can raise while being read
READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError)


class NpzReader:
    """Read arrays from an ``.npz`` file; use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        if not os.path.exists(path):
            raise ModelFileError(f"{path}: no such model file")
        if not os.path.isfile(path):
            raise ModelFileError(f"{path}: not a chainrule model file (not a file)")
        self._file: IO[bytes] = open(path, "rb")
        try:
            self._zip = zipfile.ZipFile(self._file)
        except READ_ERRORS as exc:
            self._file.close()
            raise ModelFileError(
                f"{path}: not a chainrule model file (expected an .npz archive): {exc}"
            ) from exc
        self.members = {
            info.filename[: -len(".npy")]: info
            for info in self._zip.infolist()
            if info.filename.endswith(".npy")
        }
        self.others = [
            info.filename
            for info in self._zip.infolist()
            if not info.filename.endswith(".npy")
        ]

    @property
    def files(self) -> list[str]:
        """Names of the arrays in the archive."""
        return list(self.members)

    def read(
        self,
        name: str,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
        max_bytes: int | None = None,
        what: str = "array",
    ) -> np.ndarray[Any, Any]:
        """Read array ``name``, checking its header against ``shape``/``dtype``.

        ``what`` names the kind of array in error messages ("parameter", ...).

        The check happens before any data is read, so a member that claims a
        huge shape costs nothing.
        """
        try:
            with self._open(name) as member:
                found_shape, fortran, found_dtype = self._read_header(member, name)
                self._check(
                    f"{what} {name}", found_shape, found_dtype, shape, dtype, max_bytes
                )
                nbytes = math.prod(found_shape) * found_dtype.itemsize
                data = member.read(nbytes)
        except ModelFileError:
            raise
        except READ_ERRORS as exc:
            raise ModelFileError(
                f"{self.path}: cannot read array {name}: {exc}"
            ) from exc
        if len(data) != nbytes:
            raise ModelFileError(
                f"{self.path}: array {name} is truncated: expected {nbytes} bytes "
                f"of data, found {len(data)}"
            )
        array = np.frombuffer(data, dtype=found_dtype).reshape(
            found_shape, order="F" if fortran else "C"
        )
        return array.astype(found_dtype.newbyteorder("="), copy=True)

    def check(
        self, name: str, shape: tuple[int, ...], dtype: Any, what: str = "array"
    ) -> None:
        """Check array ``name``'s header against ``shape`` and ``dtype`` unread."""
        try:
            with self._open(name) as member:
                found_shape, _, found_dtype = self._read_header(member, name)
        except ModelFileError:
            raise
        except READ_ERRORS as exc:
            raise ModelFileError(
                f"{self.path}: cannot read array {name}: {exc}"
            ) from exc
        self._check(f"{what} {name}", found_shape, found_dtype, shape, dtype, None)

    def _open(self, name: str) -> IO[bytes]:
        info = self.members.get(name)
        if info is None:
            raise ModelFileError(f"{self.path}: array {name} is missing")
        return self._zip.open(info)

    def _read_header(
        self, member: IO[bytes], name: str
    ) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        # a member cannot hold more data than the zip says it does: checking
        # this first keeps a tiny file from claiming a huge array
        declared = self.members[name].file_size
        if math.prod(shape) * dtype.itemsize > declared:
            raise ModelFileError(
                f"{self.path}: array {name} claims shape {tuple(shape)} of {dtype}, "
                f"more data than its {declared} bytes"
            )
        return tuple(shape), bool(fortran), dtype

    def _check(
        self,
        name: str,
        found_shape: tuple[int, ...],
        found_dtype: np.dtype[Any],
        shape: tuple[int, ...] | None,
        dtype: Any,
        max_bytes: int | None,
    ) -> None:
        if found_dtype.hasobject:
            raise ModelFileError(
                f"{self.path}: {name} holds Python objects (a pickle); "
                "model files never do, so it is refused unread"
            )
        expected_dtype = None if dtype is None else np.dtype(dtype)
        if (shape is not None and tuple(found_shape) != tuple(shape)) or (
            expected_dtype is not None and found_dtype != expected_dtype
        ):
            want = f"{expected_dtype or found_dtype} of shape {shape or found_shape}"
            raise ModelFileError(
                f"{self.path}: {name} should be {want}, found {found_dtype} "
                f"of shape {tuple(found_shape)}"
            )
        nbytes = math.prod(found_shape) * found_dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            raise ModelFileError(
                f"{self.path}: {name} claims {nbytes} bytes, more than the "
                f"{max_bytes} allowed"
            )

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["READ_ERRORS", "NpzReader"]

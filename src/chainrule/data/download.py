"""Download a file from a list of mirrors, keeping it only if its SHA-256 matches.

The body is streamed into a temporary file next to the destination and hashed on
the way; the file is renamed into place only when the hash is right, so the
destination is either absent or a verified copy, never a partial download.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from chainrule.atomic import atomic_write
from chainrule.errors import DataError

_CHUNK = 1 << 20


class _HashMismatch(Exception):
    """A mirror served a complete file with the wrong content."""


def download(
    url_list: Sequence[str],
    dest_path: str | os.PathLike[str],
    sha256: str,
    *,
    timeout: float = 30,
) -> Path:
    """Fetch ``dest_path`` from the first mirror that serves it with the right hash.

    Mirrors are tried in order. One that fails (HTTP error, unreachable host,
    timeout, wrong SHA-256) is recorded and the next one is tried. ``timeout`` is
    the limit in seconds for connecting and for each read. Prints one line per
    attempt to stderr. Returns the destination path.

    Raises :class:`DataError` listing every mirror and why it failed if none
    succeeds; the destination is then left untouched.
    """
    dest = Path(dest_path)
    failures: list[str] = []
    for url in url_list:
        host = urllib.parse.urlsplit(url).netloc or url
        print(f"downloading {dest.name} from {host} ...", file=sys.stderr, flush=True)
        try:
            _fetch(url, dest, sha256.lower(), timeout)
        except (OSError, http.client.HTTPException, ValueError, _HashMismatch) as e:
            failures.append(f"{url}: {_describe(e, timeout)}")
            continue
        return dest
    reasons = "".join(f"\n  {f}" for f in failures) or "\n  (no mirrors given)"
    raise DataError(f"could not download {dest.name}; every mirror failed:{reasons}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, sha256: str, timeout: float) -> None:
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        # Raising inside atomic_write discards the temp file: a bad copy never
        # reaches ``dest``.
        with atomic_write(dest) as f:
            while chunk := response.read(_CHUNK):
                h.update(chunk)
                f.write(chunk)
            if h.hexdigest() != sha256:
                raise _HashMismatch(
                    f"SHA-256 mismatch: expected {sha256}, got {h.hexdigest()}"
                )


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, urllib.error.HTTPError):
        e.close()  # the error carries the open response; close it now
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        e = e.reason if isinstance(e.reason, BaseException) else e
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout:g} s"
    return str(e) or type(e).__name__


__all__ = ["download", "sha256_file"]

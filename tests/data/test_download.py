"""Mirror downloads, served by a local HTTP server: only 127.0.0.1 is contacted."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import isolate_downloads, serve_directory

from chainrule.data import MNIST, DataError, load_mnist
from chainrule.data.download import download, sha256_file

NAMES = [f.name for f in MNIST.files]
SHARED = Path(
    os.environ.get("CHAINRULE_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
pytestmark = pytest.mark.skipif(
    not all((SHARED / "mnist" / f"{n}.gz").is_file() for n in NAMES),
    reason=f"the MNIST .gz files are not in {SHARED / 'mnist'} "
    "(set CHAINRULE_DATA to a directory holding mnist/)",
)

LABELS = MNIST.train_labels  # 28 KB: the file the download() tests fetch
LABELS_GZ = f"{LABELS.name}.gz"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # keeps the test's stderr to chainrule's own progress lines


def corrupt(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No proxies (only 127.0.0.1 may be contacted), no real cache, no env data."""
    return isolate_downloads(tmp_path, monkeypatch) / "mnist"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve ``good/`` (the real .gz files) and ``bad/`` (corrupted copies)."""
    root = tmp_path_factory.mktemp("www")
    (root / "good").mkdir()
    (root / "bad").mkdir()
    for n in NAMES:
        packed = (SHARED / "mnist" / f"{n}.gz").read_bytes()
        (root / "good" / f"{n}.gz").write_bytes(packed)
        (root / "bad" / f"{n}.gz").write_bytes(corrupt(packed))
    with serve_directory(root) as url:
        yield url


@pytest.fixture
def closed() -> str:
    """A URL on a port nothing listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL whose server accepts the connection and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_falls_back_past_a_closed_port(
    tmp_path: Path, server: str, closed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "cache" / LABELS_GZ
    urls = [f"{closed}/{LABELS_GZ}", f"{server}/good/{LABELS_GZ}"]
    assert download(urls, dest, LABELS.gz_sha256) == dest
    assert sha256_file(dest) == LABELS.gz_sha256
    assert os.listdir(dest.parent) == [LABELS_GZ]  # no temp files left behind
    host = server.removeprefix("http://")
    assert capsys.readouterr().err.splitlines() == [
        f"downloading {LABELS_GZ} from {closed.removeprefix('http://')} ...",
        f"downloading {LABELS_GZ} from {host} ...",
    ]


def test_falls_back_past_a_404(tmp_path: Path, server: str) -> None:
    dest = tmp_path / LABELS_GZ
    urls = [f"{server}/missing/{LABELS_GZ}", f"{server}/good/{LABELS_GZ}"]
    download(urls, dest, LABELS.gz_sha256)
    assert sha256_file(dest) == LABELS.gz_sha256


def test_falls_back_past_a_corrupt_file(tmp_path: Path, server: str) -> None:
    dest = tmp_path / LABELS_GZ
    urls = [f"{server}/bad/{LABELS_GZ}", f"{server}/good/{LABELS_GZ}"]
    download(urls, dest, LABELS.gz_sha256)
    assert sha256_file(dest) == LABELS.gz_sha256
    assert os.listdir(tmp_path) == [LABELS_GZ]


def test_all_mirrors_bad_lists_each(
    tmp_path: Path, server: str, closed: str, silent: str
) -> None:
    dest = tmp_path / LABELS_GZ
    dest.write_bytes(b"old")  # an existing file survives a failed download
    bad = f"{server}/bad/{LABELS_GZ}"
    bad_hash = hashlib.sha256(corrupt((SHARED / "mnist" / LABELS_GZ).read_bytes()))
    urls = [f"{closed}/x.gz", f"{server}/missing/x.gz", bad, f"{silent}/x.gz"]
    with pytest.raises(DataError) as e:
        download(urls, dest, LABELS.gz_sha256, timeout=0.2)
    lines = str(e.value).splitlines()
    assert lines[0] == f"could not download {LABELS_GZ}; every mirror failed:"
    assert lines[1].startswith(f"  {closed}/x.gz: ")
    assert "Connection refused" in lines[1]
    assert lines[2] == f"  {server}/missing/x.gz: HTTP 404 File not found"
    assert lines[3] == (
        f"  {bad}: SHA-256 mismatch: expected {LABELS.gz_sha256}, "
        f"got {bad_hash.hexdigest()}"
    )
    assert lines[4] == f"  {silent}/x.gz: timed out after 0.2 s"
    assert len(lines) == 5
    assert os.listdir(tmp_path) == [LABELS_GZ]
    assert dest.read_bytes() == b"old"


def test_no_mirrors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"every mirror failed:\n  \(no mirrors given"):
        download([], tmp_path / "x.gz", LABELS.gz_sha256)
    assert not (tmp_path / "x.gz").exists()


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1_000_000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_load_mnist_downloads_into_an_empty_cache(
    isolated: Path, server: str, closed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (x_train, y_train), (x_test, y_test) = load_mnist(
        mirrors=[closed, f"{server}/good/"]
    )
    assert x_train.shape == (60000, 28, 28)
    assert x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train)[:3].tolist() == [5923, 6742, 5958]
    assert len(y_test) == 10000
    assert sorted(os.listdir(isolated)) == sorted(f"{n}.gz" for n in NAMES)
    for f in MNIST.files:
        assert sha256_file(isolated / f"{f.name}.gz") == f.gz_sha256
    assert len(capsys.readouterr().err.splitlines()) == 8  # 4 files x 2 mirrors
    # The cache now answers on its own.
    (x_again, _), _ = load_mnist(download=False)
    np.testing.assert_array_equal(x_again, x_train)


def test_load_mnist_fetches_only_missing_files(
    isolated: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated.mkdir(parents=True)
    for n in NAMES[:3]:
        shutil.copy(SHARED / "mnist" / f"{n}.gz", isolated)
    load_mnist(mirrors=[f"{server}/good"])
    assert capsys.readouterr().err.splitlines() == [
        f"downloading {NAMES[3]}.gz from {server.removeprefix('http://')} ..."
    ]


def test_load_mnist_all_mirrors_fail(isolated: Path, server: str, closed: str) -> None:
    mirrors = [closed, f"{server}/bad", f"{server}/missing/"]
    with pytest.raises(DataError) as e:
        load_mnist(mirrors=mirrors)
    lines = str(e.value).splitlines()
    gz = f"{NAMES[0]}.gz"
    assert lines[:5] == [
        "MNIST files not found. Looked in:",
        "  data_dir: not set",
        "  CHAINRULE_DATA: not set",
        f"  cache: {isolated}: does not exist",
        f"  could not download {gz}; every mirror failed:",
    ]
    assert lines[5].startswith(f"    {closed}/{gz}: ")
    assert lines[6].startswith(f"    {server}/bad/{gz}: SHA-256 mismatch: expected")
    assert lines[7] == f"    {server}/missing/{gz}: HTTP 404 File not found"
    assert lines[8].startswith("To supply them, put the four files")
    assert "--data-dir DIR" in lines[8]
    assert "CHAINRULE_DATA=DIR" in lines[8]
    assert not any(isolated.iterdir())  # nothing half-written in the cache

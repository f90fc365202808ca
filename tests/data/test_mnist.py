"""MNIST loading: where files are found, what they contain, and every refusal."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import MNIST, DataError, Dataset, IdxFileSpec, load_mnist
from chainrule.data.mnist import load_idx_dataset

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

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and the XDG cache at an empty folder; clear CHAINRULE_DATA."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    return home / ".cache" / "chainrule" / "mnist"


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four files decompressed, shared by the tests that only read them."""
    d = tmp_path_factory.mktemp("raw")
    for n in NAMES:
        with gzip.open(SHARED / "mnist" / f"{n}.gz") as src:
            (d / n).write_bytes(src.read())
    return d


def linked(src: Path, dest: Path, *, skip: str = "") -> Path:
    """Make ``dest`` a folder with links to the files in ``src`` except ``skip``."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.name != skip:
            (dest / p.name).symlink_to(p)
    return dest


def check_mnist(splits: tuple[tuple[np.ndarray, np.ndarray], ...]) -> None:
    (x_train, y_train), (x_test, y_test) = splits
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype("u1")}
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert x_train.mean() == pytest.approx(33.3184, abs=1e-4)
    assert x_test.mean() == pytest.approx(33.7912, abs=1e-4)
    assert (x_train.min(), x_train.max()) == (0, 255)


def test_data_dir_holding_mnist_folder() -> None:
    check_mnist(load_mnist(SHARED, download=False))


def test_data_dir_holding_the_files(raw_dir: Path) -> None:
    check_mnist(load_mnist(raw_dir, download=False))


def test_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRULE_DATA", str(SHARED))
    check_mnist(load_mnist(download=False))


def test_data_dir_wins_over_env_var(
    tmp_path: Path, raw_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for n in NAMES:
        (bad / n).write_bytes(b"junk")
    monkeypatch.setenv("CHAINRULE_DATA", str(bad))
    check_mnist(load_mnist(raw_dir, download=False))


def test_cache(isolated: Path, raw_dir: Path) -> None:
    linked(raw_dir, isolated)
    check_mnist(load_mnist(download=False))


def test_explicit_cache_dir(tmp_path: Path, raw_dir: Path) -> None:
    linked(raw_dir, tmp_path / "c" / "mnist")
    check_mnist(load_mnist(cache_dir=tmp_path / "c", download=False))


def test_recompressed_copy_passes(tmp_path: Path, raw_dir: Path) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[1])
    # Another gzip level gives another .gz hash but the same content.
    packed = gzip.compress((raw_dir / NAMES[1]).read_bytes(), compresslevel=1, mtime=0)
    (d / f"{NAMES[1]}.gz").write_bytes(packed)
    assert hashlib.sha256(packed).hexdigest() != MNIST.train_labels.gz_sha256
    check_mnist(load_mnist(d, download=False))


def test_flipped_byte_is_a_checksum_error(tmp_path: Path, raw_dir: Path) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[1])
    labels = bytearray((raw_dir / NAMES[1]).read_bytes())
    labels[100] = (labels[100] + 1) % 10  # still a valid label: only the hash can tell
    (d / NAMES[1]).write_bytes(bytes(labels))
    expected = MNIST.train_labels.sha256
    actual = hashlib.sha256(labels).hexdigest()
    message = (
        f"{d / NAMES[1]}: checksum mismatch: the decompressed content of {NAMES[1]} "
        f"should have SHA-256 {expected}, found {actual}. The file is corrupt or "
        "not the original MNIST file; replace it with a good copy."
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_mnist(d, download=False)


def test_corrupt_file_is_not_silently_replaced(
    tmp_path: Path, raw_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[3])
    labels = bytearray((raw_dir / NAMES[3]).read_bytes())
    labels[-1] = (labels[-1] + 1) % 10
    (d / NAMES[3]).write_bytes(bytes(labels))
    monkeypatch.setenv("CHAINRULE_DATA", str(SHARED))  # a good copy is right there
    with pytest.raises(DataError, match="checksum mismatch"):
        load_mnist(d, download=False)


def test_corrupt_cache_file_says_it_will_be_downloaded_again(
    isolated: Path, raw_dir: Path
) -> None:
    linked(raw_dir, isolated, skip=NAMES[1])
    (isolated / NAMES[1]).write_bytes((raw_dir / NAMES[1]).read_bytes()[::-1])
    with pytest.raises(DataError, match="delete it and MNIST will be downloaded"):
        load_mnist()


def test_truncated_raw_copy(tmp_path: Path, raw_dir: Path) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[1])
    (d / NAMES[1]).write_bytes((raw_dir / NAMES[1]).read_bytes()[:-10])
    message = "truncated IDX file: header says 60000 uint8 = 60000 bytes of data, "
    message += "found 59990; replace it with a good copy."
    with pytest.raises(DataError, match=re.escape(message)):
        load_mnist(d, download=False)


def test_truncated_gz_copy(tmp_path: Path, raw_dir: Path) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[1])
    packed = (SHARED / "mnist" / f"{NAMES[1]}.gz").read_bytes()
    (d / f"{NAMES[1]}.gz").write_bytes(packed[:-100])
    with pytest.raises(DataError, match=r"idx1-ubyte\.gz: corrupt or truncated gzip"):
        load_mnist(d, download=False)


def test_swapped_files(tmp_path: Path, raw_dir: Path) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[0])
    shutil.copy(raw_dir / NAMES[3], d / NAMES[0])
    with pytest.raises(DataError, match=r"expected 2051 \(.*\), found 2049"):
        load_mnist(d, download=False)


def test_nothing_anywhere_lists_every_place(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty, nowhere = tmp_path / "empty", tmp_path / "nowhere"
    empty.mkdir()
    monkeypatch.setenv("CHAINRULE_DATA", str(nowhere))
    with pytest.raises(DataError) as e:
        load_mnist(empty, download=False)
    assert str(e.value).splitlines()[:8] == [
        "MNIST files not found. Looked in:",
        f"  data_dir: {empty / 'mnist'}: does not exist",
        f"  data_dir: {empty}: has none of the 4 files",
        f"  CHAINRULE_DATA: {nowhere / 'mnist'}: does not exist",
        f"  CHAINRULE_DATA: {nowhere}: does not exist",
        f"  cache: {isolated}: does not exist",
        "  download: disabled (download=False)",
        "To supply them, put the four files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz; gzipped or not) in a directory DIR and pass "
        f"--data-dir DIR (data_dir=DIR in Python), or set CHAINRULE_DATA=DIR, or "
        f"copy them into {isolated}.",
    ]


def test_partial_dirs_name_the_missing_files(tmp_path: Path, raw_dir: Path) -> None:
    d = linked(raw_dir, tmp_path / "d", skip=NAMES[2])
    with pytest.raises(DataError) as e:
        load_mnist(d, download=False)
    message = str(e.value)
    assert f"data_dir: {d}: missing t10k-images-idx3-ubyte[.gz]\n" in message
    assert "CHAINRULE_DATA: not set\n" in message
    assert not (Path(os.environ["HOME"])).exists()  # the cache was only looked at


def tiny_dataset(d: Path, n_images: int, labels: list[int]) -> Dataset:
    """A four-file IDX dataset in ``d`` with hashes that match, to test checks that
    come after the hash."""
    d.mkdir(parents=True)
    y = np.array(labels, dtype=np.uint8)
    x = np.zeros((n_images, 2, 2), dtype=np.uint8)
    files = []
    for name, arr in (("xa", x), ("ya", y), ("xb", x), ("yb", y)):
        data = bytes([0, 0, 8, arr.ndim]) + b"".join(
            s.to_bytes(4, "big") for s in arr.shape
        )
        data += arr.tobytes()
        (d / name).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        files.append(IdxFileSpec(name, 0x800 + arr.ndim, arr.shape, "", sha))
    return Dataset("tiny", "Tiny", (), 10, *files)


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    spec = tiny_dataset(tmp_path / "tiny", 4, [1, 2, 3])
    with pytest.raises(DataError, match=r"tiny/ya: 3 labels for 4 images"):
        load_idx_dataset(spec, tmp_path, download=False)


def test_labels_must_be_in_range(tmp_path: Path) -> None:
    spec = tiny_dataset(tmp_path / "tiny", 3, [1, 12, 3])
    with pytest.raises(DataError, match=r"tiny/ya: labels must be in 0\.\.9, found"):
        load_idx_dataset(spec, tmp_path, download=False)


def test_a_data_dir_that_does_not_exist_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # even with a good copy reachable through the env var: a typo must not
    # silently load from somewhere else
    monkeypatch.setenv("CHAINRULE_DATA", str(SHARED))
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "typo", download=False)

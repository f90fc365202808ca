"""Fashion-MNIST: Debian's package found, the lookup order, every refusal, and a
short training run. Only 127.0.0.1 is contacted."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import isolate_downloads, serve_directory

from chainrule.augment import AUGMENTATIONS
from chainrule.data import (
    DATASETS,
    FASHION_MNIST,
    MNIST,
    DataError,
    Dataset,
    load_fashion_mnist,
    load_mnist,
)
from chainrule.data import mnist as mnist_module
from chainrule.data.mnist import load_idx_dataset
from chainrule.layers import Dense, Flatten, ReLU, Rescaling
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import Adam

SYSTEM = Path("/usr/share/datasets/fashion-mnist")
NAMES = [f.name for f in FASHION_MNIST.files]
pytestmark = pytest.mark.skipif(
    not all((SYSTEM / f"{n}.gz").is_file() for n in NAMES),
    reason=f"Fashion-MNIST is not in {SYSTEM}: apt-get install dataset-fashion-mnist",
)
SHARED_MNIST = Path(
    os.environ.get("CHAINRULE_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and cache, no CHAINRULE_DATA, no proxies."""
    return isolate_downloads(tmp_path, monkeypatch) / "fashion-mnist"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths the loader reads, in order."""
    seen: list[Path] = []
    original = mnist_module.read_idx_bytes

    def spy(path: Any) -> bytes:
        seen.append(Path(path))
        return original(path)

    monkeypatch.setattr(mnist_module, "read_idx_bytes", spy)
    return seen


@pytest.fixture
def no_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``FASHION_MNIST`` with its system directory an empty folder."""
    empty = tmp_path / "system"
    empty.mkdir()
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=(str(empty),))
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", spec)
    return empty


@pytest.fixture(scope="module")
def fashion() -> Any:
    return load_fashion_mnist(SYSTEM, download=False)


def linked(dest: Path, *, skip: str = "") -> Path:
    """``dest`` with links to Debian's four .gz files, except ``skip``."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in NAMES:
        if n != skip:
            (dest / f"{n}.gz").symlink_to(SYSTEM / f"{n}.gz")
    return dest


def under(paths: list[Path], folder: Path) -> bool:
    """Whether the four files were read, all from ``folder``."""
    names = {p.name.removesuffix(".gz") for p in paths}
    return names == set(NAMES) and all(p.parent == folder for p in paths)


# ------------------------------------------------------------- the data
def test_loads_from_the_debian_package(reads: list[Path]) -> None:
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype("u1")}
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert (x_train.min(), x_train.max()) == (0, 255)
    # clothes, not digits: MNIST's mean pixel is 33.3
    assert x_train.mean() == pytest.approx(72.9404, abs=1e-4)
    assert x_test.mean() == pytest.approx(73.1466, abs=1e-4)
    assert under(reads, SYSTEM)
    assert not Path(os.environ["HOME"]).exists()  # nothing written to the cache


def test_debian_recompressed_the_files_so_only_the_content_hash_holds() -> None:
    for f in FASHION_MNIST.files:
        packed = (SYSTEM / f"{f.name}.gz").read_bytes()
        assert hashlib.sha256(packed).hexdigest() != f.gz_sha256
        if len(f.shape) == 1:  # the labels: small enough to check here too
            assert hashlib.sha256(gzip.decompress(packed)).hexdigest() == f.sha256


def test_class_names_and_the_dataset_table() -> None:
    assert FASHION_MNIST.class_names == CLASS_NAMES
    assert FASHION_MNIST.labels == CLASS_NAMES
    assert FASHION_MNIST.num_classes == 10
    assert FASHION_MNIST.name == "fashion-mnist"
    assert FASHION_MNIST.title == "Fashion-MNIST"
    assert FASHION_MNIST.system_dirs == (str(SYSTEM),)
    assert MNIST.class_names == () and MNIST.system_dirs == ()
    assert MNIST.labels == tuple("0123456789")
    assert DATASETS == {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}
    assert all(key == spec.name for key, spec in DATASETS.items())
    # same file names and shapes as MNIST, other contents
    for mine, theirs in zip(FASHION_MNIST.files, MNIST.files, strict=True):
        assert (mine.name, mine.magic, mine.shape) == (
            theirs.name,
            theirs.magic,
            theirs.shape,
        )
        assert mine.sha256 != theirs.sha256


def test_class_names_must_match_the_class_count() -> None:
    with pytest.raises(
        ValueError, match=r"^Fashion-MNIST: 3 class names for 10 classes$"
    ):
        dataclasses.replace(FASHION_MNIST, class_names=("a", "b", "c"))


# ----------------------------------------------------------- lookup order
def test_a_data_dir_copy_is_found_before_the_system_one(
    tmp_path: Path, reads: list[Path]
) -> None:
    local = linked(tmp_path / "data" / "fashion-mnist")
    (x_train, _), (x_test, _) = load_fashion_mnist(tmp_path / "data", download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert under(reads, local)
    reads.clear()
    load_fashion_mnist(local, download=False)  # the files directly in data_dir
    assert under(reads, local)


def test_decompressed_files_are_read_too(tmp_path: Path, reads: list[Path]) -> None:
    local = tmp_path / "raw"
    local.mkdir()
    for n in NAMES[1::2]:  # the labels, decompressed; the images stay gzipped
        (local / n).write_bytes(gzip.decompress((SYSTEM / f"{n}.gz").read_bytes()))
    for n in NAMES[0::2]:
        (local / f"{n}.gz").symlink_to(SYSTEM / f"{n}.gz")
    (_, y_train), _ = load_fashion_mnist(local, download=False)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert sorted(p.name for p in reads) == sorted(
        [NAMES[0] + ".gz", NAMES[1], NAMES[2] + ".gz", NAMES[3]]
    )


def test_the_environment_variable_comes_before_the_system_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[Path]
) -> None:
    local = linked(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "env"))
    load_fashion_mnist(download=False)
    assert under(reads, local)


def test_an_environment_dir_with_only_mnist_passes_over_to_the_system_dir(
    monkeypatch: pytest.MonkeyPatch, reads: list[Path]
) -> None:
    if not (SHARED_MNIST / "mnist").is_dir():
        pytest.skip(f"no MNIST folder in {SHARED_MNIST}")
    monkeypatch.setenv("CHAINRULE_DATA", str(SHARED_MNIST))
    load_fashion_mnist(download=False)
    assert under(reads, SYSTEM)


def test_a_flat_mnist_environment_dir_does_not_hide_the_system_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CHAINRULE_DATA may hold a dataset's files directly ("DIR/<name>/
    # or DIR itself"); MNIST and Fashion-MNIST files have the same names, so with
    # CHAINRULE_DATA=.../mnist (set for MNIST) Fashion-MNIST loads MNIST's files
    # and would fail with a checksum mismatch, although Debian's copy is
    # installed: a folder holding another known dataset is passed over.
    flat = SHARED_MNIST / "mnist"
    if not all((flat / f"{n}.gz").is_file() for n in NAMES):
        pytest.skip(f"no MNIST files in {flat}")
    monkeypatch.setenv("CHAINRULE_DATA", str(flat))
    (_, y_train), _ = load_fashion_mnist(download=False)
    assert np.bincount(y_train).tolist() == [6000] * 10


def test_the_system_dir_comes_before_the_cache(
    isolated: Path, reads: list[Path]
) -> None:
    isolated.mkdir(parents=True)
    for n in NAMES:
        (isolated / n).write_bytes(b"junk")  # never even opened
    load_fashion_mnist(download=False)
    assert under(reads, SYSTEM)


def test_the_cache_is_used_when_no_system_copy(
    isolated: Path, no_system: Path, reads: list[Path]
) -> None:
    linked(isolated)
    load_fashion_mnist(download=False)
    assert under(reads, isolated)


def test_explicit_cache_dir(tmp_path: Path, no_system: Path, reads: list[Path]) -> None:
    cache = linked(tmp_path / "c" / "fashion-mnist")
    load_fashion_mnist(cache_dir=tmp_path / "c", download=False)
    assert under(reads, cache)


# ------------------------------------------------------------------ refusals
def test_a_corrupted_copy_is_a_checksum_error(tmp_path: Path) -> None:
    local = linked(tmp_path / "d", skip=NAMES[1])
    labels = bytearray(gzip.decompress((SYSTEM / f"{NAMES[1]}.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # still a valid label: only the hash can tell
    (local / f"{NAMES[1]}.gz").write_bytes(gzip.compress(bytes(labels), mtime=0))
    expected = FASHION_MNIST.train_labels.sha256
    actual = hashlib.sha256(labels).hexdigest()
    message = (
        f"{local / NAMES[1]}.gz: checksum mismatch: the decompressed content of "
        f"{NAMES[1]} should have SHA-256 {expected}, found {actual}. The file is "
        "corrupt or not the original Fashion-MNIST file; replace it with a good copy."
    )
    # not silently replaced by the good copy in the system dir
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_fashion_mnist(local, download=False)


def test_mnist_files_are_not_fashion_mnist(tmp_path: Path) -> None:
    flat = SHARED_MNIST / "mnist"
    if not all((flat / f"{n}.gz").is_file() for n in NAMES):
        pytest.skip(f"no MNIST files in {flat}")
    # an explicit data_dir holding MNIST is an error, never passed over
    with pytest.raises(DataError, match="Fashion-MNIST"):
        load_fashion_mnist(flat, download=False)


def test_a_truncated_copy_is_refused(tmp_path: Path) -> None:
    local = linked(tmp_path / "d", skip=NAMES[3])
    packed = (SYSTEM / f"{NAMES[3]}.gz").read_bytes()
    (local / f"{NAMES[3]}.gz").write_bytes(packed[:-50])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: corrupt or"):
        load_fashion_mnist(local, download=False)


def test_not_found_anywhere_names_the_debian_package(
    tmp_path: Path, isolated: Path, no_system: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_fashion_mnist(empty, download=False)
    lines = str(e.value).splitlines()
    assert lines[:8] == [
        "Fashion-MNIST files not found. Looked in:",
        f"  data_dir: {empty / 'fashion-mnist'}: does not exist",
        f"  data_dir: {empty}: has none of the 4 files",
        "  CHAINRULE_DATA: not set",
        f"  system: {no_system}: has none of the 4 files",
        f"  cache: {isolated}: does not exist",
        "  download: disabled (download=False)",
        "To supply them, put the four files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz; gzipped or not) in a directory DIR and pass "
        "--data-dir DIR (data_dir=DIR in Python), or set CHAINRULE_DATA=DIR, or "
        f"copy them into {isolated}, or install the system package that puts them "
        f"in {no_system} (Debian: apt-get install dataset-fashion-mnist).",
    ]
    assert len(lines) == 8


def test_a_missing_system_dir_is_reported_and_skipped(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=(str(gone), str(SYSTEM)))
    # the second system dir answers
    (_, y_train), _ = load_idx_dataset(spec, download=False)
    assert len(y_train) == 60000
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=(str(gone),))
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", spec)
    with pytest.raises(DataError, match=rf"\n  system: {re.escape(str(gone))}: does "):
        load_fashion_mnist(download=False)


def test_a_partial_system_copy_names_the_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    partial = linked(tmp_path / "partial", skip=NAMES[2])
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=(str(partial),))
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", spec)
    with pytest.raises(
        DataError, match=rf"system: {re.escape(str(partial))}: missing t10k-images"
    ):
        load_fashion_mnist(download=False)


def test_mnist_messages_do_not_mention_a_system_package(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_mnist(empty, download=False)
    assert "apt-get" not in str(e.value)
    assert "system package" not in str(e.value)
    assert "  system: " not in str(e.value)


def test_a_data_dir_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(
        DataError,
        match=r"^data directory /nonexistent/typo does not exist \(or is not a "
        r"directory\); give the directory that holds the Fashion-MNIST files or a "
        r"fashion-mnist/ folder with them$",
    ):
        load_fashion_mnist("/nonexistent/typo", download=False)


# ------------------------------------------------------------------ downloads
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serves Debian's recompressed label files under ``/debian/``."""
    root = tmp_path_factory.mktemp("www")
    (root / "debian").mkdir()
    for n in NAMES[1::2]:
        (root / "debian" / f"{n}.gz").write_bytes((SYSTEM / f"{n}.gz").read_bytes())
    with serve_directory(root) as url:
        yield url


def test_a_download_with_the_wrong_gz_hash_is_refused(
    isolated: Path, no_system: Path, server: str
) -> None:
    # the images are already in the cache; the labels must be downloaded, and
    # Debian's recompressed .gz is not the published one
    isolated.mkdir(parents=True)
    for n in NAMES[0::2]:
        (isolated / f"{n}.gz").symlink_to(SYSTEM / f"{n}.gz")
    gz = f"{NAMES[1]}.gz"
    served = hashlib.sha256((SYSTEM / gz).read_bytes()).hexdigest()
    with pytest.raises(DataError) as e:
        load_fashion_mnist(mirrors=[f"{server}/debian/"])
    message = str(e.value)
    assert message.startswith("Fashion-MNIST files not found. Looked in:\n")
    assert f"  could not download {gz}; every mirror failed:\n" in message
    assert (
        f"    {server}/debian/{gz}: SHA-256 mismatch: expected "
        f"{FASHION_MNIST.train_labels.gz_sha256}, got {served}\n"
    ) in message
    assert message.endswith("(Debian: apt-get install dataset-fashion-mnist).")
    assert sorted(os.listdir(isolated)) == sorted(f"{n}.gz" for n in NAMES[0::2])


def test_a_download_with_the_right_gz_hash_is_loaded(
    isolated: Path, no_system: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # a table whose .gz hashes are Debian's: the same download path succeeds
    files = {
        f.name: dataclasses.replace(
            f,
            gz_sha256=hashlib.sha256(
                (SYSTEM / f"{f.name}.gz").read_bytes()
            ).hexdigest(),
        )
        for f in FASHION_MNIST.files
    }
    spec: Dataset = dataclasses.replace(
        FASHION_MNIST,
        system_dirs=(str(no_system),),
        mirrors=(f"{server}/debian",),
        train_labels=files[NAMES[1]],
        test_labels=files[NAMES[3]],
    )
    isolated.mkdir(parents=True)
    for n in NAMES[0::2]:
        (isolated / f"{n}.gz").symlink_to(SYSTEM / f"{n}.gz")
    (_, y_train), (_, y_test) = load_idx_dataset(spec)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    host = server.removeprefix("http://")
    assert capsys.readouterr().err.splitlines() == [
        f"downloading {NAMES[1]}.gz from {host} ...",
        f"downloading {NAMES[3]}.gz from {host} ...",
    ]
    for n in NAMES[1::2]:
        assert (isolated / f"{n}.gz").read_bytes() == (SYSTEM / f"{n}.gz").read_bytes()
    # and the cache now answers on its own
    load_idx_dataset(spec, download=False)


# ------------------------------------------------------------------ training
@pytest.mark.parametrize(
    ("augment", "epochs", "floor"),
    [(None, 1, 0.70), ("fashion", 2, 0.65)],
    ids=["plain", "augmented"],
)
def test_a_short_training_run_learns_the_clothes(
    fashion: Any, augment: str | None, epochs: int, floor: float
) -> None:
    # one epoch on 5,000 images: ~78% plain; shifted batches are harder to
    # fit, so two epochs with a lower floor
    (x_train, y_train), (x_test, y_test) = fashion
    model = Sequential(
        [Rescaling(1 / 255), Flatten(), Dense(128, init="he"), ReLU(), Dense(10)],
        input_shape=(28, 28),
        seed=0,
    ).compile(CrossEntropy(), Adam(1e-3))
    model.fit(
        x_train[:5000],
        y_train[:5000],
        epochs=epochs,
        batch_size=64,
        seed=0,
        verbose=0,
        augment=None if augment is None else AUGMENTATIONS[augment],
    )
    assert model.evaluate(x_test[:2000], y_test[:2000])["accuracy"] > floor

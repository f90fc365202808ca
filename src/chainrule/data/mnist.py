"""Load MNIST, or any IDX dataset described by a :class:`Dataset` table, verified.

Where the files are looked for, in order:

1. ``data_dir``, if given: ``data_dir/<name>/`` or the files directly in it;
2. the directory in the environment variable ``CHAINRULE_DATA``, the same way;
3. the dataset's ``system_dirs``, where a system package installs the files
   (Debian's ``dataset-fashion-mnist``: ``/usr/share/datasets/fashion-mnist``);
4. the user cache, ``cache_dir/<name>/`` (default ``$XDG_CACHE_HOME/chainrule`` or
   ``~/.cache/chainrule``);
5. a download into that cache, trying each mirror in turn.

A directory is used only if it holds all four files; each may be gzipped
(``name.gz``) or not (``name``). Every file is checked on every load: its IDX
header (magic number, shape), its length, and the SHA-256 of its decompressed
content, so a corrupt copy is an error and never silently replaced by another.
Downloads are also checked against the published ``.gz`` SHA-256 before they are
renamed into the cache.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chainrule.data.download import download as download_file
from chainrule.data.idx import parse_idx, read_idx_bytes
from chainrule.errors import DataError
from chainrule.types import Array

ENV_VAR = "CHAINRULE_DATA"

#: ``((x_train, y_train), (x_test, y_test))``
Splits = tuple[tuple[Array, Array], tuple[Array, Array]]


@dataclass(frozen=True)
class IdxFileSpec:
    """One file of a dataset: its name, expected header and SHA-256 hashes.

    ``name`` has no ``.gz``; on disk the file may be ``name`` or ``name.gz``.
    ``gz_sha256`` is the hash of the published ``.gz`` (checked on download);
    ``sha256`` is the hash of the decompressed IDX content (checked on every load,
    so it holds for raw files and for re-compressed copies alike).
    """

    name: str
    magic: int
    shape: tuple[int, ...]
    gz_sha256: str
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """An IDX classification dataset: its four files, where to get them, classes.

    ``name`` is the folder the files live in under a data directory or the cache;
    ``title`` is how messages call the dataset; ``mirrors`` are base URLs that
    each serve every ``<file>.gz``, tried in order; ``class_names`` name the
    labels 0, 1, ...; ``system_dirs`` are where a system package installs the
    files (looked in after ``$CHAINRULE_DATA``, before the cache).
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    num_classes: int
    train_images: IdxFileSpec
    train_labels: IdxFileSpec
    test_images: IdxFileSpec
    test_labels: IdxFileSpec
    class_names: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.title}: {len(self.class_names)} class names for "
                f"{self.num_classes} classes"
            )

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, or the class numbers as text when it has none."""
        return self.class_names or tuple(str(i) for i in range(self.num_classes))

    @property
    def files(self) -> tuple[IdxFileSpec, ...]:
        """The four files: train images, train labels, test images, test labels."""
        return (
            self.train_images,
            self.train_labels,
            self.test_images,
            self.test_labels,
        )


MNIST = Dataset(
    name="mnist",
    title="MNIST",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    num_classes=10,
    train_images=IdxFileSpec(
        name="train-images-idx3-ubyte",
        magic=2051,
        shape=(60000, 28, 28),
        gz_sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    train_labels=IdxFileSpec(
        name="train-labels-idx1-ubyte",
        magic=2049,
        shape=(60000,),
        gz_sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    test_images=IdxFileSpec(
        name="t10k-images-idx3-ubyte",
        magic=2051,
        shape=(10000, 28, 28),
        gz_sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    test_labels=IdxFileSpec(
        name="t10k-labels-idx1-ubyte",
        magic=2049,
        shape=(10000,),
        gz_sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
)


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Splits:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``, all uint8.

    Shapes: ``x_train`` (60000, 28, 28), ``y_train`` (60000,), ``x_test``
    (10000, 28, 28), ``y_test`` (10000,); pixels 0 (background) to 255, labels
    0 to 9. See :func:`load_idx_dataset` for the arguments and where files are
    looked for.
    """
    return load_idx_dataset(
        MNIST, data_dir, cache_dir=cache_dir, download=download, mirrors=mirrors
    )


FASHION_MNIST = Dataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    num_classes=10,
    # the published .gz hashes; the content hashes hold for any recompressed
    # copy too, such as Debian's dataset-fashion-mnist package
    train_images=IdxFileSpec(
        name="train-images-idx3-ubyte",
        magic=2051,
        shape=(60000, 28, 28),
        gz_sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    train_labels=IdxFileSpec(
        name="train-labels-idx1-ubyte",
        magic=2049,
        shape=(60000,),
        gz_sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    test_images=IdxFileSpec(
        name="t10k-images-idx3-ubyte",
        magic=2051,
        shape=(10000, 28, 28),
        gz_sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    test_labels=IdxFileSpec(
        name="t10k-labels-idx1-ubyte",
        magic=2049,
        shape=(10000,),
        gz_sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    class_names=(
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
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

#: the IDX datasets ``--dataset`` can name
DATASETS: dict[str, Dataset] = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Splits:
    """Load Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): MNIST's shapes, clothes.

    ``((x_train, y_train), (x_test, y_test))``, uint8, 60,000 + 10,000 images of
    28x28, labels 0-9 named by ``FASHION_MNIST.class_names`` (T-shirt/top,
    Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot).
    Looked for as MNIST is (:func:`load_idx_dataset`), with Debian's
    ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``)
    tried before the cache and the download.
    """
    return load_idx_dataset(
        FASHION_MNIST, data_dir, cache_dir=cache_dir, download=download, mirrors=mirrors
    )


def load_idx_dataset(
    spec: Dataset,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Splits:
    """Find, verify and load the dataset ``spec`` describes.

    A ``data_dir`` that does not exist is an error (a typo should not load a
    copy from elsewhere); one without a complete copy is passed over.

    Looks in ``data_dir``, then ``$CHAINRULE_DATA`` (each as
    ``DIR/<spec.name>/`` or ``DIR`` itself), then ``spec.system_dirs`` (where
    a system package puts them), then the cache (only as
    ``cache_dir/<spec.name>/``), and finally, if ``download`` is true, downloads
    the missing files into the cache from ``mirrors`` (default ``spec.mirrors``).

    Raises :class:`DataError` if a file found is corrupt (naming it and the
    expected and actual hash), or if no complete copy is found and the download
    is disabled or fails (listing every place looked and how to supply the files).
    """
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        # a mistyped --data-dir must not quietly load a copy from elsewhere
        raise DataError(
            f"data directory {data_dir} does not exist (or is not a directory); "
            f"give the directory that holds the {spec.title} files or a "
            f"{spec.name}/ folder with them"
        )
    looked: list[str] = []
    env_dir = os.environ.get(ENV_VAR) or None
    roots: list[tuple[str, str | os.PathLike[str] | None]] = [
        ("data_dir", data_dir),
        (ENV_VAR, env_dir),
    ]
    roots += [("system", d) for d in spec.system_dirs]
    for label, root in roots:
        if root is None:
            looked.append(f"{label}: not set")
            continue
        base = Path(root).expanduser()
        subdirs = (base,) if label == "system" else (base / spec.name, base)
        for directory in subdirs:
            paths, missing = _find(spec, directory)
            if not missing:
                other = _other_dataset(spec, paths) if label != "data_dir" else None
                if other is None:
                    return _load(spec, paths, "replace it with a good copy")
                looked.append(
                    f"{label}: {directory}: holds {other.title}, not {spec.title}"
                )
                continue
            looked.append(f"{label}: {directory}: {_why(spec, directory, missing)}")

    cache = _cache_root(cache_dir) / spec.name
    paths, missing = _find(spec, cache)
    if missing:
        looked.append(f"cache: {cache}: {_why(spec, cache, missing)}")
        if not download:
            looked.append("download: disabled (download=False)")
            raise _not_found(spec, looked, cache)
        bases = spec.mirrors if mirrors is None else mirrors
        for f in missing:
            urls = [b.rstrip("/") + f"/{f.name}.gz" for b in bases]
            try:
                paths[f.name] = download_file(urls, cache / f"{f.name}.gz", f.gz_sha256)
            except DataError as e:
                looked.append(str(e))
                raise _not_found(spec, looked, cache) from None
    return _load(spec, paths, f"delete it and {spec.title} will be downloaded again")


def _other_dataset(spec: Dataset, paths: dict[str, Path]) -> Dataset | None:
    """The other known dataset whose files these are (by the test labels' hash)."""
    f = spec.test_labels
    try:
        digest = hashlib.sha256(read_idx_bytes(paths[f.name])).hexdigest()
    except DataError:
        return None  # _load reports it
    if digest == f.sha256:
        return None
    return next(
        (
            d
            for d in DATASETS.values()
            if d.name != spec.name and d.test_labels.sha256 == digest
        ),
        None,
    )


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "chainrule"
    return Path.home() / ".cache" / "chainrule"


def _find(spec: Dataset, directory: Path) -> tuple[dict[str, Path], list[IdxFileSpec]]:
    paths: dict[str, Path] = {}
    missing: list[IdxFileSpec] = []
    for f in spec.files:
        # The raw file wins when both exist: it loads without decompressing.
        candidates = (directory / f.name, directory / f"{f.name}.gz")
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            missing.append(f)
        else:
            paths[f.name] = found
    return paths, missing


def _why(spec: Dataset, directory: Path, missing: list[IdxFileSpec]) -> str:
    if not directory.exists():
        return "does not exist"
    if not directory.is_dir():
        return "is not a directory"
    if len(missing) == len(spec.files):
        return f"has none of the {len(spec.files)} files"
    return "missing " + ", ".join(f"{f.name}[.gz]" for f in missing)


def _load(spec: Dataset, paths: dict[str, Path], remedy: str) -> Splits:
    x_train, y_train, x_test, y_test = (
        _load_file(spec, f, paths[f.name], remedy) for f in spec.files
    )
    for x, y, fy in (
        (x_train, y_train, spec.train_labels),
        (x_test, y_test, spec.test_labels),
    ):
        source = paths[fy.name]
        if len(x) != len(y):
            raise DataError(f"{source}: {len(y)} labels for {len(x)} images")
        if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
            raise DataError(
                f"{source}: labels must be in 0..{spec.num_classes - 1}, found "
                f"{y.min()}..{y.max()}"
            )
    return (x_train, y_train), (x_test, y_test)


def _load_file(spec: Dataset, f: IdxFileSpec, path: Path, remedy: str) -> Array:
    try:
        data = read_idx_bytes(path)
        x = parse_idx(data, str(path), magic=f.magic, shape=f.shape)
    except DataError as e:
        raise DataError(f"{e}; {remedy}.") from None
    # Hash the bytes already in memory: one read per file, decompressed or not.
    actual = hashlib.sha256(data).hexdigest()
    if actual != f.sha256:
        raise DataError(
            f"{path}: checksum mismatch: the decompressed content of {f.name} "
            f"should have SHA-256 {f.sha256}, found {actual}. The file is corrupt "
            f"or not the original {spec.title} file; {remedy}."
        )
    return x


def _not_found(spec: Dataset, looked: list[str], cache: Path) -> DataError:
    places = textwrap.indent("\n".join(looked), "  ")
    names = ", ".join(f"{f.name}.gz" for f in spec.files)
    system = (
        f", or install the system package that puts them in {spec.system_dirs[0]} "
        f"(Debian: apt-get install dataset-{spec.name})"
        if spec.system_dirs
        else ""
    )
    return DataError(
        f"{spec.title} files not found. Looked in:\n{places}\n"
        f"To supply them, put the four files ({names}; gzipped or not) in a "
        f"directory DIR and pass --data-dir DIR (data_dir=DIR in Python), or set "
        f"{ENV_VAR}=DIR, or copy them into {cache}{system}."
    )


__all__ = [
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST",
    "MNIST",
    "Dataset",
    "IdxFileSpec",
    "Splits",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_mnist",
]

"""``--dataset``: what the CLI trains and evaluates on, and how new images are read.

``mnist`` and ``fashion-mnist`` are the IDX datasets (60,000 training images, of
which ``--validation-size`` are held out, and 10,000 test images);
``folder:PATH`` is a folder of images in class subfolders
(:func:`chainrule.data.folder.load_image_folder`: decoded once into a
memory-mapped cache, a seeded validation split or ``val/``, ``test/`` if
present). :class:`TrainingData` carries what ``chainrule train`` needs from any
of them; :func:`input_info` is what a model file records so ``predict`` reads a
new picture the way the training images were made.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.data import DATASETS, load_idx_dataset

#: ``--dataset`` values besides ``folder:PATH``
IDX_NAMES = tuple(DATASETS)
#: the side of folder images when ``--image-size`` is not given
DEFAULT_IMAGE_SIZE = 64


@dataclass
class TrainingData:
    """A dataset ready for ``fit``: arrays, class names and how to describe it.

    ``validation_size`` images of ``x_train`` are held out by ``fit``
    (``validation_split``) when ``x_val`` is ``None``; a folder gives ``x_val``
    itself. ``x_test`` is ``None`` for a folder without ``test/``.
    """

    name: str
    title: str
    class_names: list[str]
    x_train: Any
    y_train: Any
    x_val: Any = None
    y_val: Any = None
    x_test: Any = None
    y_test: Any = None
    validation_size: int = 0
    #: what a model file records to prepare new images (see :func:`input_info`)
    input: dict[str, Any] | None = None
    summary: str = ""

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def counts(self) -> str:
        """``"55000 training / 5000 validation / 10000 test images"``."""
        n_val = len(self.x_val) if self.x_val is not None else self.validation_size
        n_train = len(self.x_train) - (0 if self.x_val is not None else n_val)
        test = f"{len(self.x_test)} test" if self.x_test is not None else "no test"
        return f"{n_train} training / {n_val} validation / {test} images"


def add_dataset(parser: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--image-size`` and ``--channels``."""
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="mnist (default), fashion-mnist, or folder:PATH for a folder of "
        "images in one subfolder per class (PATH/<class>/*.png|jpg..., or "
        "PATH/train/, PATH/val/ and PATH/test/ with class subfolders; needs "
        "Pillow: pip install 'chainrule[image]')",
    )
    parser.add_argument(
        "--image-size",
        type=image_size,
        metavar="H[xW]",
        help=f"folder images are scaled and centre-cropped to this size "
        f"(default {DEFAULT_IMAGE_SIZE})",
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="folder images as grey (1) or RGB (3, the default)",
    )


def image_size(text: str) -> tuple[int, int]:
    """``"64"`` -> ``(64, 64)``; ``"48x64"`` -> ``(48, 64)``."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or not all(0 < s <= 1024 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected a size H or HxW in pixels, each 1 to 1024, got {text!r}"
        )
    return (sizes[0], sizes[-1])


def parse_dataset(spec: str | None) -> tuple[str, str | None]:
    """``(name, folder path or None)`` of a ``--dataset`` value."""
    spec = spec or "mnist"
    if spec.startswith("folder:"):
        path = spec[len("folder:") :]
        if not path:
            raise ValueError("--dataset folder:PATH needs a path after 'folder:'")
        return "folder", path
    if spec not in IDX_NAMES:
        raise ValueError(
            f"--dataset {spec}: expected one of {', '.join(IDX_NAMES)} or folder:PATH"
        )
    return spec, None


def check_folder_flags(name: str, args: argparse.Namespace) -> None:
    """``--image-size`` and ``--channels`` only mean something for folders."""
    if name != "folder":
        for flag in ("image_size", "channels"):
            if getattr(args, flag, None) is not None:
                raise ValueError(
                    f"--{flag.replace('_', '-')} applies to --dataset folder:PATH; "
                    f"{name} images are 28x28 grey"
                )


def load_training_data(
    spec: str | None,
    *,
    data_dir: str | None,
    validation_size: int | None,
    validation_split: float,
    seed: int,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> TrainingData:
    """Load the dataset ``--dataset`` names, split as the run asks."""
    name, path = parse_dataset(spec)
    if path is None:
        dataset = DATASETS[name]
        (x, y), (xt, yt) = load_idx_dataset(dataset, data_dir)
        held_out = 5000 if validation_size is None else validation_size
        if held_out >= len(x):
            raise ValueError(
                f"--validation-size {held_out} leaves no training images "
                f"(there are {len(x)})"
            )
        return TrainingData(
            name=name,
            title=dataset.title,
            class_names=list(dataset.labels),
            x_train=x,
            y_train=y,
            x_test=xt,
            y_test=yt,
            validation_size=held_out,
            input={"kind": "fashion" if name == "fashion-mnist" else "digits"},
        )
    if validation_size is not None:
        raise ValueError(
            "--validation-size counts images of mnist or fashion-mnist; for a "
            "folder give --validation-split FRACTION (or a val/ folder)"
        )
    from chainrule.data.folder import load_image_folder

    size = image_size or (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    folder = load_image_folder(
        path,
        image_size=size,
        channels=channels or 3,
        validation_split=validation_split,
        seed=seed,
    )
    return TrainingData(
        name="folder",
        title=f"folder {path}",
        class_names=list(folder.class_names),
        x_train=folder.x_train,
        y_train=folder.y_train,
        x_val=folder.x_val,
        y_val=folder.y_val,
        x_test=folder.x_test,
        y_test=folder.y_test,
        input={"kind": "folder", "image_size": list(size), "channels": channels or 3},
        summary=folder.summary(),
    )


def load_evaluation_data(
    spec: str | None, metadata: dict[str, Any], data_dir: str | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], str]:
    """Images, labels and a description of what a saved model is evaluated on.

    ``spec`` is ``--dataset`` (default: the dataset the model file names). An
    IDX dataset gives its test set; a folder its ``test/`` images, or else the
    validation images of the split the model was trained with (same size,
    channels, fraction and seed, from the file's run description).
    """
    run = metadata.get("run")
    run = run if isinstance(run, dict) else {}
    if spec is None:
        spec = run.get("dataset") or metadata.get("dataset") or "mnist"
        if spec == "folder":
            raise ValueError(
                "the model was trained on a folder the file does not name; give "
                "--dataset folder:PATH"
            )
    name, path = parse_dataset(spec)
    if path is None:
        dataset = DATASETS[name]
        _, (x, y) = load_idx_dataset(dataset, data_dir)
        return x, y, f"{dataset.title} test images"
    from chainrule.data.folder import load_image_folder

    info = metadata.get("input") or {}
    if info.get("kind") != "folder":
        raise ValueError(
            "--dataset folder:PATH: the model was not trained on a folder of "
            "images, so its image size and channels are unknown"
        )
    size = info.get("image_size") or [DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE]
    folder = load_image_folder(
        path,
        image_size=(int(size[0]), int(size[1])),
        channels=int(info.get("channels") or 3),
        validation_split=float(run.get("validation_split", 0.2)),
        seed=int((metadata.get("training") or {}).get("seed", 0)),
    )
    trained = metadata.get("class_names")
    if isinstance(trained, list) and list(folder.class_names) != trained:
        raise ValueError(
            f"{path} has classes {', '.join(folder.class_names)}, but the model was "
            f"trained on {', '.join(map(str, trained))}; give the folder it was "
            "trained on"
        )
    if folder.x_test is not None and folder.y_test is not None:
        return (
            folder.x_test,
            folder.y_test,
            f"test images of {path}",
        )
    if folder.x_val is None:
        raise ValueError(f"{path} has no test/ folder and no validation images")
    assert folder.y_val is not None
    return folder.x_val, folder.y_val, f"validation images of {path} (no test/ folder)"


__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "IDX_NAMES",
    "TrainingData",
    "add_dataset",
    "check_folder_flags",
    "image_size",
    "load_evaluation_data",
    "load_training_data",
    "parse_dataset",
]

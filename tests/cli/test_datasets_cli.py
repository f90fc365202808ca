"""``chainrule train --dataset fashion-mnist | folder:PATH`` and ``--augment``,
end to end: train, save, evaluate and predict with class names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import chainrule_cli

from chainrule.io import read_header

PIL = pytest.importorskip("PIL.Image")

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("horizontal", "vertical")


def stripes(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB picture of 4-6 stripes across (horizontal) or down (vertical)."""
    bands = int(rng.integers(4, 7))  # wide enough to survive shrinking to 16 px
    line = (np.arange(size) * bands // size) % 2
    grid = np.broadcast_to(
        line[:, None] if kind == "horizontal" else line, (size, size)
    )
    colour = rng.integers(120, 256, size=3)
    return (grid[..., None] * colour).astype(np.uint8)


def make_folder(root: Path, per_class: int = 40) -> Path:
    """Two classes of striped pictures in several sizes, formats and modes,
    plus a corrupt image and a text file."""
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            size = int(rng.choice([20, 32, 45]))
            image = PIL.fromarray(stripes(c, size, rng))
            mode = ("RGB", "L", "RGBA", "P")[i % 4]
            if mode == "P":
                image = image.convert("P", palette=PIL.Palette.ADAPTIVE)
            else:
                image = image.convert(mode)
            suffix = ".jpg" if mode in ("RGB", "L") and i % 8 < 2 else ".png"
            image.save(root / c / f"{i}{suffix}", quality=95)
    (root / CLASSES[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (root / CLASSES[1] / "notes.txt").write_text("not a picture\n")
    return root


def test_a_small_cnn_trains_on_a_folder_and_predicts_class_names(
    tmp_path: Path,
) -> None:
    folder = make_folder(tmp_path / "pictures", per_class=100)
    result = chainrule_cli(
        "train", "--preset", "cnn", "--dataset", f"folder:{folder}",
        "--image-size", "16", "--epochs", "15", "--batch-size", "16",
        "--augment", "--out", "stripes.npz", "--no-health", "--checkpoint", "ck",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "skipped 2 files" in out
    assert "broken.png" in out and "notes.txt" in out
    assert "augmentation: natural" in out
    assert "no test images" in out
    val = float(out.split("validation accuracy: ")[1].split("%")[0])
    assert val >= 90.0, out

    header = read_header(tmp_path / "stripes.npz")
    meta = header["metadata"]
    assert meta["class_names"] == list(CLASSES)
    assert meta["dataset"] == "folder"
    assert meta["input"] == {"kind": "folder", "image_size": [16, 16], "channels": 3}

    # new pictures, larger and in another format, are read as the folder's were
    rng = np.random.default_rng(7)
    for c in CLASSES:
        PIL.fromarray(stripes(c, 60, rng)).save(tmp_path / f"new_{c}.bmp")
    predicted = chainrule_cli(
        "predict", "stripes.npz", "new_horizontal.bmp", "new_vertical.bmp",
        "--json", "--save-preprocessed", "seen", cwd=tmp_path,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert [r["top"][0]["class"] for r in rows] == list(CLASSES)
    with PIL.open(tmp_path / "seen" / "new_vertical_input.png") as seen:
        assert (seen.mode, seen.size) == ("RGB", (16, 16))
    # a checkpoint predicts like the finished model: class names, preparation
    from_checkpoint = chainrule_cli(
        "predict", "ck/best.npz", "new_vertical.bmp", "--json", cwd=tmp_path
    )
    assert from_checkpoint.returncode == 0, from_checkpoint.stderr
    assert json.loads(from_checkpoint.stdout)[0]["top"][0]["class"] == "vertical"

    evaluated = chainrule_cli(
        "evaluate", "stripes.npz", "--dataset", f"folder:{folder}", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "validation images of" in evaluated.stdout
    assert "horizontal 0" in evaluated.stdout and "vertical 1" in evaluated.stdout
    # without --dataset: the folder the model file names, by its absolute path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = chainrule_cli("evaluate", tmp_path / "stripes.npz", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert f"validation images of {folder}" in again.stdout
    # a folder with other classes is not the model's
    other = tmp_path / "other"
    for c in ("diagonal", "dots"):
        (other / c).mkdir(parents=True)
        for i in range(3):
            PIL.fromarray(stripes("vertical", 20, rng)).save(other / c / f"{i}.png")
    wrong = chainrule_cli(
        "evaluate", "stripes.npz", "--dataset", f"folder:{other}", cwd=tmp_path
    )
    assert wrong.returncode == 1
    assert "has classes diagonal, dots, but the model was trained on" in wrong.stderr
    folder.rename(tmp_path / "moved")
    missing = chainrule_cli("evaluate", "stripes.npz", cwd=tmp_path)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr and str(folder) in missing.stderr


def test_a_folder_with_train_val_test_gives_a_test_score(tmp_path: Path) -> None:
    root = tmp_path / "split"
    for part, n in (("train", 24), ("val", 8), ("test", 8)):
        make_folder(root / part, per_class=n)
    result = chainrule_cli(
        "train", "--preset", "mlp", "--dataset", f"folder:{root}",
        "--image-size", "12", "--channels", "1", "--epochs", "2",
        "--batch-size", "16", "--out", "m.npz", "--no-health",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test accuracy:" in result.stdout
    meta = read_header(tmp_path / "m.npz")["metadata"]
    assert meta["input"]["channels"] == 1
    assert "test_accuracy" in meta["metrics"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "cifar"], "expected one of mnist, fashion-mnist or folder:PATH"),
        (["--dataset", "folder:"], "needs a path after 'folder:'"),
        (["--image-size", "32"], "--image-size applies to --dataset folder:PATH"),
        (["--channels", "3"], "--channels applies to --dataset folder:PATH"),
        (["--augment", "sparkles"], "unknown augmentation 'sparkles'"),
        (["--dataset", "folder:nowhere"], "nowhere"),
        (["--validation-split", "0.1"], "--validation-split is for folders"),
        (
            ["--preset", "lenet5", "--dataset", "folder:.", "--image-size", "12"],
            "preset lenet5 cannot take 12x12 images",
        ),
    ],
)
def test_bad_dataset_arguments_are_clear_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = chainrule_cli("train", "--epochs", "1", *args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-size", "0x9"], "expected a size H or HxW"),
        (["--validation-split", "1.5"], "expected a fraction in [0, 1), got 1.5"),
        (["--channels", "2"], "invalid choice: 2"),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = chainrule_cli("train", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_resumed_folder_run_cannot_change_its_split(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pictures", per_class=10)
    first = chainrule_cli(
        "train", "--preset", "mlp", "--dataset", f"folder:{folder}",
        "--image-size", "8", "--epochs", "2", "--stop-after", "1",
        "--checkpoint", "ck", "--no-health", "--out", "m.npz", cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    changed = chainrule_cli(
        "train", "--resume", "ck/last.npz", "--validation-split", "0.5", cwd=tmp_path
    )
    assert changed.returncode == 1
    assert "--validation-split cannot change when resuming" in changed.stderr
    resumed = chainrule_cli(
        "train", "--resume", "ck/last.npz", "--no-health", "--out", "m.npz",
        cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming ck/last.npz after epoch 1" in resumed.stdout


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_fashion_mnist_train_evaluate_predict_with_class_names(tmp_path: Path) -> None:
    result = chainrule_cli(
        "train", "--preset", "tutorial", "--dataset", "fashion-mnist",
        "--epochs", "1", "--augment", "--out", "f.npz", "--no-health",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "data: Fashion-MNIST, 55000 training / 5000 validation / 10000 test" in out
    assert "augmentation: fashion" in out
    test = float(out.split("test accuracy: ")[1].split("%")[0])
    assert test > 60.0
    meta = read_header(tmp_path / "f.npz")["metadata"]
    assert meta["dataset"] == "fashion-mnist"
    assert meta["class_names"][9] == "Ankle boot"
    assert meta["input"] == {"kind": "fashion"}

    evaluated = chainrule_cli("evaluate", "f.npz", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "evaluated on: Fashion-MNIST test images (10000)" in evaluated.stdout
    assert "Ankle boot:" in evaluated.stdout
    assert f"{test:.2f}%" in evaluated.stdout

    # a trouser photographed dark on light paper, prepared as Fashion-MNIST's
    picture = np.full((90, 60), 235, dtype=np.uint8)
    picture[5:85, 12:28] = 40
    picture[5:85, 32:48] = 40
    picture[5:20, 12:48] = 40
    PIL.fromarray(picture).save(tmp_path / "trousers.png")
    predicted = chainrule_cli(
        "predict", "f.npz", "trousers.png", "--json",
        "--save-preprocessed", "seen", cwd=tmp_path,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    top = json.loads(predicted.stdout)[0]["top"]
    names = set(meta["class_names"])
    assert all(t["class"] in names for t in top)
    with PIL.open(tmp_path / "seen" / "trousers_fashion.png") as png:
        seen = np.asarray(png)
    assert seen.shape == (28, 28)
    # bright on black; the longer (vertical) side fills 28 pixels; centred across
    assert seen.max() == 255
    rows, cols = np.flatnonzero(seen.max(axis=1)), np.flatnonzero(seen.max(axis=0))
    assert (rows[0], rows[-1]) == (0, 27)
    assert abs(cols[0] - (27 - cols[-1])) <= 1 and cols[0] >= 4

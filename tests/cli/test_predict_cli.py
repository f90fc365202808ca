"""``chainrule predict``: top classes per image, JSON, and one line per bad file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from photos import digit_model, encode, photo
from PIL import Image
from support import chainrule_cli

from chainrule.cli.main import main
from chainrule.cli.predict import percent
from chainrule.imaging import preprocess
from chainrule.io import save_model
from chainrule.layers import Dense, Flatten, Rescaling
from chainrule.model import Sequential

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
GUESS = re.compile(r"(\S+) \(([<>]?\d+\.\d)%\)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, mnist, data_dir) -> Path:  # type: ignore[no-untyped-def]
    """A model file, photos of five test digits it gets right, and bad files."""
    root = tmp_path_factory.mktemp("predict")
    model = digit_model(data_dir)
    save_model(model, root / "digits.npz")
    save_model(model, root / "named.npz", metadata={"class_names": NAMES})
    _, (x_test, y_test) = mnist
    photos = [photo(d) for d in x_test[:40]]
    guesses = model.predict(np.stack([preprocess(p) for p in photos])).argmax(axis=1)
    right = np.flatnonzero(guesses == y_test[:40])[:5]
    labels = {}
    for n, i in enumerate(right):
        (root / f"digit{n}.png").write_bytes(photos[i])
        labels[f"digit{n}.png"] = int(y_test[i])
    (root / "labels.json").write_text(json.dumps(labels))
    (root / "notes.txt").write_text("not a picture\n")
    (root / "blank.png").write_bytes(encode(np.full((40, 40), 255, dtype=np.uint8)))
    (root / "cut.png").write_bytes(photos[0][:200])
    return root


def labels(workdir: Path) -> dict[str, int]:
    return json.loads((workdir / "labels.json").read_text())


@pytest.fixture(autouse=True)
def in_workdir(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.chdir(workdir)


def run(capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """``chainrule predict ARGS`` in-process; (exit status, stdout, stderr)."""
    status = main(["predict", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_prints_the_top_classes(capsys, workdir: Path) -> None:
    files = sorted(labels(workdir))
    status, out, err = run(capsys, "digits.npz", *files)
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(files)
    for line, name in zip(lines, files, strict=True):
        assert line.startswith(f"{name}: ")
        guesses = GUESS.findall(line)
        assert len(guesses) == 3  # the default --top
        assert guesses[0][0] == str(labels(workdir)[name])
        probabilities = [float(p.strip("<>")) for _, p in guesses]
        assert probabilities == sorted(probabilities, reverse=True)


def test_top_k_and_class_names_from_the_model_file(capsys, workdir: Path) -> None:
    status, out, _ = run(capsys, "named.npz", "digit0.png", "--top", "5")
    assert status == 0
    guesses = GUESS.findall(out)
    assert len(guesses) == 5
    assert guesses[0][0] == NAMES[labels(workdir)["digit0.png"]]
    assert {name for name, _ in guesses} <= set(NAMES)


def test_json(capsys, workdir: Path) -> None:
    status, out, err = run(
        capsys, "digits.npz", "digit0.png", "notes.txt", "--json", "--top", "2"
    )
    assert status == 1 and err == ""
    results = json.loads(out)
    assert [r["file"] for r in results] == ["digit0.png", "notes.txt"]
    good, bad = results
    assert good["error"] is None and len(good["top"]) == 2
    assert good["top"][0]["class"] == str(labels(workdir)["digit0.png"])
    assert 1 >= good["top"][0]["probability"] >= good["top"][1]["probability"] >= 0
    assert bad["top"] == [] and bad["error"].startswith("notes.txt: not an image")


def test_bad_files_among_good_ones(capsys, workdir: Path) -> None:
    args = ["digit0.png", "notes.txt", "blank.png", "digit1.png", "cut.png", "gone.png"]
    status, out, err = run(capsys, "digits.npz", *args)
    assert status == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "digit0.png",
        "digit1.png",
    ]
    assert err.splitlines() == [
        "chainrule predict: error: notes.txt: not an image (expected PNG, JPEG, BMP "
        "or GIF)",
        "chainrule predict: error: blank.png: blank image: no ink found, nothing to "
        "predict (no pixel differs from the background by more than 0 of 255 grey "
        "levels; at least 51 needed)",
        "chainrule predict: error: cut.png: cannot read the image: image file is "
        "truncated",
        "chainrule predict: error: gone.png: no such file",
    ]


def test_save_preprocessed(capsys, workdir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "seen"
    status, _, _ = run(
        capsys,
        "digits.npz",
        "digit0.png",
        "blank.png",
        str(workdir / "digit0.png"),  # the same name twice
        "--save-preprocessed",
        str(out_dir),
    )
    assert status == 1
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "digit0_mnist-2.png",
        "digit0_mnist.png",
    ]
    seen = np.asarray(Image.open(out_dir / "digit0_mnist.png"))
    np.testing.assert_array_equal(seen, preprocess(workdir / "digit0.png"))


def test_models_without_a_loss_or_for_other_inputs(capsys, workdir: Path) -> None:
    plain = Sequential([Rescaling(1 / 255), Flatten(), Dense(10)], input_shape=(28, 28))
    save_model(plain, workdir / "plain.npz")  # no loss: a softmax of the outputs
    status, out, _ = run(capsys, "plain.npz", "digit0.png", "--json", "--top", "10")
    assert status == 0
    total = sum(t["probability"] for t in json.loads(out)[0]["top"])
    assert total == pytest.approx(1, rel=1e-5)
    small = Sequential([Flatten(), Dense(10)], input_shape=(10, 10), seed=0)
    save_model(small, workdir / "small.npz")
    status, _, err = run(capsys, "small.npz", "digit0.png")
    assert status == 1
    assert "takes inputs of shape (10, 10)" in err


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0, "<0.1%"),
        (0.0004, "<0.1%"),
        (0.0005, "0.1%"),
        (0.5, "50.0%"),
        (1.0, ">99.9%"),
    ],
)
def test_percent(p: float, text: str) -> None:
    assert percent(p) == text


def test_as_a_user_runs_it(workdir: Path) -> None:
    """A subprocess: a missing model file is one line; a good run prints lines."""
    result = chainrule_cli("predict", "missing.npz", "digit0.png", cwd=workdir)
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr == "chainrule predict: error: missing.npz: no such model file\n"
    )
    result = chainrule_cli(
        "predict", "digits.npz", "digit0.png", "--top", "1", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert GUESS.findall(result.stdout)[0][0] == str(labels(workdir)["digit0.png"])
    help_text = chainrule_cli("predict", "--help", cwd=workdir).stdout
    for option in ("--top", "--json", "--save-preprocessed", "Exit status"):
        assert option in help_text

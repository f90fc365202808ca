"""The ``chainrule`` command line, run as a subprocess the way a user runs it."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from support import chainrule_cli

import chainrule
from chainrule.cli.main import main
from chainrule.io import read_header, save_model
from chainrule.layers import Dense, Flatten
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential


def percent(pattern: str, text: str) -> float:
    found = re.findall(pattern + r"\s*([0-9]+\.[0-9]+)%", text, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one match of {pattern!r} in:\n{text}"
    return float(found[0])


def confusion_matrix(text: str) -> list[list[int]]:
    """The rows printed under "confusion matrix": class label, then 10 counts."""
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("confusion matrix")
    )
    header = lines[start + 1].split()
    assert header == [str(i) for i in range(10)]
    rows = []
    for line in lines[start + 2 : start + 12]:
        label, *counts = line.split()
        assert label == str(len(rows))
        rows.append([int(c) for c in counts])
    assert all(len(row) == 10 for row in rows)
    return rows


def assert_clean_failure(result: subprocess.CompletedProcess[str], command: str):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"chainrule {command}: error: ")


# ------------------------------------------------------------------------- info
def test_version(tmp_path: Path) -> None:
    result = chainrule_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"chainrule {chainrule.__version__}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], ["train", "evaluate", "gradcheck"]),
        (["train", "--help"], ["--preset", "--epochs", "--data-dir", "--out"]),
        (["evaluate", "--help"], ["FILE", "--data-dir", "--batch-size"]),
        (["gradcheck", "--help"], ["--preset", "--tolerance", "--batch-size"]),
    ],
)
def test_help(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    result = chainrule_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: chainrule")
    for word in expected:
        assert word in result.stdout


# ------------------------------------------------------------- train, evaluate
@pytest.fixture(scope="module")
def tutorial_run(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``train --preset tutorial --epochs 1``, run once for the tests below."""
    cwd = tmp_path_factory.mktemp("tutorial")
    result = chainrule_cli(
        "train",
        "--preset",
        "tutorial",
        "--epochs",
        "1",
        "--data-dir",
        data_dir,
        "--out",
        "m.npz",
        cwd=cwd,
    )
    return result, cwd


def test_train_tutorial_reports_and_saves(
    tutorial_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, cwd = tutorial_run
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr
    assert "preset tutorial:" in out
    assert "total parameters: 54,912" in out
    assert "loss: BinaryCrossEntropy(reduction='batchmean')" in out
    # no terminal: one plain line per epoch, no progress bar
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 1
    assert epoch_lines[0].startswith("epoch 1/1  loss ")
    assert "val_accuracy" in epoch_lines[0]
    assert "\r" not in out and "\r" not in result.stderr
    assert 0 < percent(r"^validation accuracy:", out) <= 100
    assert percent(r"^test accuracy:", out) > 80
    assert out.rstrip().endswith("saved model to m.npz")
    assert (cwd / "m.npz").is_file()
    assert sorted(p.name for p in cwd.iterdir()) == ["home", "m.npz"]


def test_trained_file_records_the_run(
    tutorial_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, cwd = tutorial_run
    assert result.returncode == 0, result.stderr
    header = read_header(cwd / "m.npz")
    assert header["metadata"]["preset"] == "tutorial"
    assert header["metadata"]["training"]["epochs"] == 1
    accuracy = 100 * header["metadata"]["metrics"]["test_accuracy"]
    assert f"test accuracy: {accuracy:.2f}%" in result.stdout


@pytest.mark.parametrize("how", ["--data-dir", "CHAINRULE_DATA"])
def test_evaluate_matches_train(
    tutorial_run: tuple[subprocess.CompletedProcess[str], Path],
    data_dir: Path,
    how: str,
) -> None:
    train, cwd = tutorial_run
    assert train.returncode == 0, train.stderr
    if how == "--data-dir":
        result = chainrule_cli("evaluate", "m.npz", "--data-dir", data_dir, cwd=cwd)
    else:
        result = chainrule_cli("evaluate", "m.npz", cwd=cwd, data=data_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "model: m.npz (54,912 parameters)" in out
    assert "evaluated on: MNIST test images (10000)" in out
    accuracy = percent(r"^accuracy:", out)
    assert accuracy == percent(r"^test accuracy:", train.stdout)
    assert "per-class accuracy:" in out

    matrix = confusion_matrix(out)
    assert sum(map(sum, matrix)) == 10000
    correct = sum(matrix[i][i] for i in range(10))
    assert f"{100 * correct / 10000:.2f}" == f"{accuracy:.2f}"
    per_class = re.findall(r"^\s+(\d):\s+([0-9.]+)%\s+\((\d+) images\)", out, re.M)
    assert [int(c) for c, _, _ in per_class] == list(range(10))
    for c, acc, total in per_class:
        row = matrix[int(c)]
        assert sum(row) == int(total)
        assert float(acc) == pytest.approx(100 * row[int(c)] / sum(row), abs=0.005)


def test_train_mlp_reaches_95_percent(tmp_path: Path, data_dir: Path) -> None:
    result = chainrule_cli(
        "train",
        "--preset",
        "mlp",
        "--epochs",
        "1",
        "--seed",
        "3",
        "--data-dir",
        data_dir,
        "--out",
        "mlp.npz",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "total parameters: 1,863,690" in result.stdout
    assert "recipe: epochs 1, batch_size 128, lr 0.05," in result.stdout
    assert "seed: 3" in result.stdout
    assert percent(r"^test accuracy:", result.stdout) >= 95.0
    assert (tmp_path / "mlp.npz").is_file()


# -------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize(
    "args", [["--preset", "tutorial"], ["--preset", "mlp", "--batch-size", "4"]]
)
def test_gradcheck_passes(tmp_path: Path, args: list[str]) -> None:
    result = chainrule_cli("gradcheck", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gradient check passed" in result.stdout
    assert "FAIL" not in result.stdout


def test_gradcheck_fails_below_rounding_error(tmp_path: Path) -> None:
    result = chainrule_cli(
        "gradcheck", "--preset", "tutorial", "--tolerance", "1e-30", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "FAIL" in result.stdout
    assert "gradient check FAILED" in result.stdout
    assert "Traceback" not in result.stderr


def test_gradcheck_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)  # else MNIST images
    assert main(["gradcheck", "--preset", "tutorial", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "gradient check of preset tutorial on 2 random images (seed 0)" in out
    assert "gradient check passed" in out
    for name in ("layers.2.W", "layers.4.W", "layers.6.W", "input"):
        assert re.search(rf"^{re.escape(name)}\s.*\sok$", out, re.M), name

    assert main(["gradcheck", "--preset", "tutorial", "--tolerance", "1e-30"]) == 1
    assert "gradient check FAILED" in capsys.readouterr().out


def test_gradcheck_on_mnist_images_in_process(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    args = ["gradcheck", "--batch-size", "3", "--data-dir", str(data_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "on 3 MNIST test images" in out
    assert "gradient check passed" in out


def test_gradcheck_on_mnist_images_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
) -> None:
    monkeypatch.setenv("CHAINRULE_DATA", str(data_dir))
    assert main(["gradcheck", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "gradient check of preset tutorial on 2 MNIST test images (seed 0)" in out


# ----------------------------------------------------------------------- errors
def test_evaluate_missing_file(tmp_path: Path) -> None:
    result = chainrule_cli("evaluate", "missing.npz", cwd=tmp_path)
    assert_clean_failure(result, "evaluate")
    assert len(result.stderr.splitlines()) == 1
    assert "missing.npz" in result.stderr
    assert result.stdout == ""


def test_evaluate_missing_file_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("chainrule evaluate: error: ")
    assert "no such model file" in captured.err


@pytest.mark.parametrize(
    "content",
    [b"this is not a model\n", b"PK\x03\x04 not really a zip", b"\x93NUMPY\x01\x00"],
    ids=["text", "zip_magic", "npy_magic"],
)
def test_evaluate_non_model_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.npz").write_bytes(content)
    result = chainrule_cli("evaluate", "x.npz", cwd=tmp_path)
    assert_clean_failure(result, "evaluate")
    assert "x.npz" in result.stderr
    assert "not a chainrule model file" in result.stderr


def test_evaluate_plain_npy_file(tmp_path: Path) -> None:
    """A file saved by np.save (not np.savez) is named as not a model file."""
    code = "import numpy as np; np.save(open('w.npz', 'wb'), np.zeros(3))"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    result = chainrule_cli("evaluate", "w.npz", cwd=tmp_path)
    assert_clean_failure(result, "evaluate")
    assert "not a chainrule model file" in result.stderr


def test_evaluate_damaged_compressed_model(tmp_path: Path) -> None:
    """A compressed archive whose deflate data is damaged fails without a traceback."""
    model = Sequential([Flatten(), Dense(10)], input_shape=(28, 28), seed=0)
    save_model(model.compile(CrossEntropy()), tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    np.savez_compressed(tmp_path / "packed.npz", **arrays)
    data = bytearray((tmp_path / "packed.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "packed.npz") as archive:
        info = archive.getinfo("__chainrule__.npy")
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0xFF
    (tmp_path / "x.npz").write_bytes(bytes(data))
    result = chainrule_cli("evaluate", "x.npz", cwd=tmp_path)
    assert_clean_failure(result, "evaluate")
    assert "x.npz" in result.stderr


def test_evaluate_model_without_loss(tmp_path: Path, data_dir: Path) -> None:
    model = Sequential([Flatten(), Dense(10)], input_shape=(28, 28), seed=0)
    save_model(model, tmp_path / "bare.npz")
    result = chainrule_cli("evaluate", "bare.npz", "--data-dir", data_dir, cwd=tmp_path)
    assert_clean_failure(result, "evaluate")
    assert "no loss" in result.stderr


def test_evaluate_model_for_other_inputs(tmp_path: Path, data_dir: Path) -> None:
    model = Sequential([Flatten(), Dense(10)], input_shape=(4, 4), seed=0)
    save_model(model.compile(CrossEntropy()), tmp_path / "small.npz")
    result = chainrule_cli(
        "evaluate", "small.npz", "--data-dir", data_dir, cwd=tmp_path
    )
    assert_clean_failure(result, "evaluate")
    assert "28, 28" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--epochs", "0"], "--epochs: expected a positive integer"),
        (["train", "--preset", "nope"], "invalid choice: 'nope'"),
        (["train", "--lr", "-1"], "--lr: expected a positive number"),
        (["train", "--lr", "nan"], "--lr: expected a positive number"),
        (["train", "--seed", "-2"], "--seed: expected an integer >= 0"),
        (["train", "--batch-size", "many"], "--batch-size: expected a positive"),
        (["evaluate"], "required: FILE"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = chainrule_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: chainrule")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_train_without_data_explains_where_it_looked(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.perf_counter()
    result = chainrule_cli("train", "--data-dir", empty, cwd=tmp_path, timeout=120)
    seconds = time.perf_counter() - start
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    err = result.stderr
    assert "chainrule train: error: MNIST files not found. Looked in:" in err
    assert f"data_dir: {empty}: has none of the 4 files" in err
    assert "CHAINRULE_DATA: not set" in err
    cache = tmp_path / "home" / ".cache" / "chainrule" / "mnist"
    assert f"cache: {cache}" in err
    assert "every mirror failed" in err or "could not download" in err
    assert "--data-dir DIR" in err and "CHAINRULE_DATA=DIR" in err
    assert not (tmp_path / "mlp.npz").exists()
    assert seconds < 60, f"failing to find MNIST took {seconds:.0f} s"

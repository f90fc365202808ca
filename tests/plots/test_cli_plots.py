"""``chainrule train --plots DIR`` and ``chainrule evaluate FILE --plots DIR``.

One real run of the small ``tutorial`` preset (one epoch, about a second) as a
subprocess; the evaluations and the failures run in process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import chainrule_cli

from chainrule import plots
from chainrule.cli.main import main

Check = Callable[[Path, tuple[int, int]], None]
#: the tutorial preset: Dense, Sigmoid, Dense, Sigmoid, Dense
TUTORIAL_SIZES = {
    "curves.png": plots.CURVES_SIZE,
    "confusion.png": plots.CONFUSION_SIZE,
    "misclassified.png": plots.misclassified_size(),
    "first_layer.png": plots.WEIGHTS_SIZE,
    "histograms.png": plots.histogram_size(5),
}


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``train --preset tutorial --epochs 1 --checkpoint ck --plots out/plots``."""
    cwd = tmp_path_factory.mktemp("plots")
    result = chainrule_cli(
        "train",
        "--preset",
        "tutorial",
        "--epochs",
        "1",
        "--checkpoint",
        "ck",
        "--plots",
        "out/plots",
        "--data-dir",
        data_dir,
        "--out",
        "m.npz",
        "--quiet",
        cwd=cwd,
        timeout=180,
    )
    return result, cwd


def test_train_writes_the_plots(
    trained: tuple[subprocess.CompletedProcess[str], Path], check_png: Check
) -> None:
    result, cwd = trained
    assert result.returncode == 0, result.stderr
    names = ", ".join(TUTORIAL_SIZES)
    assert result.stdout.rstrip().endswith(f"wrote 5 plots to out/plots: {names}")
    assert sorted(p.name for p in (cwd / "out" / "plots").iterdir()) == sorted(
        TUTORIAL_SIZES
    )
    for name, size in TUTORIAL_SIZES.items():
        check_png(cwd / "out" / "plots" / name, size)


def test_evaluate_writes_the_plots_without_curves(
    trained: tuple[subprocess.CompletedProcess[str], Path],
    data_dir: Path,
    check_png: Check,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A model file keeps no history, so there are no training curves."""
    _, cwd = trained
    out = cwd / "evaluated"
    args = ["evaluate", str(cwd / "m.npz"), "--data-dir", str(data_dir)]
    assert main([*args, "--plots", str(out)]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith(
            f"wrote 4 plots to {out}: confusion.png, misclassified.png, "
            "first_layer.png, histograms.png"
        )
    )
    for name in ["confusion.png", "misclassified.png", "first_layer.png"]:
        check_png(out / name, TUTORIAL_SIZES[name])
    assert not (out / "curves.png").exists()


def test_evaluate_of_a_checkpoint_draws_its_curves(
    trained: tuple[subprocess.CompletedProcess[str], Path],
    data_dir: Path,
    check_png: Check,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, cwd = trained
    out = cwd / "from-checkpoint"
    args = ["evaluate", str(cwd / "ck" / "last.npz"), "--data-dir", str(data_dir)]
    assert main([*args, "--plots", str(out)]) == 0
    assert f"wrote 5 plots to {out}: curves.png," in capsys.readouterr().out
    check_png(out / "curves.png", plots.CURVES_SIZE)


def test_plots_flag_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("train", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--plots DIR" in capsys.readouterr().out


def test_plots_into_a_file_fails_before_training(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("")
    args = ["train", "--preset", "tutorial", "--data-dir", str(data_dir)]
    out = str(tmp_path / "m.npz")
    assert main([*args, "--out", out, "--plots", str(tmp_path / "taken")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"chainrule train: error: --plots {tmp_path / 'taken'} is a file; "
        "give a directory\n"
    )


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_missing_matplotlib_fails_before_any_work(
    trained: tuple[subprocess.CompletedProcess[str], Path],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _, cwd = trained
    first = ["--preset", "tutorial"] if command == "train" else [str(cwd / "m.npz")]
    args = [command, *first, "--data-dir", str(data_dir), "--plots", str(tmp_path)]
    if command == "train":
        args += ["--out", str(tmp_path / "m.npz")]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no training, no evaluation
    assert captured.err.startswith(
        f"chainrule {command}: error: plots need matplotlib: "
        "pip install 'chainrule[plot]'"
    )
    assert len(captured.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []

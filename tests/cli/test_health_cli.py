"""Training-health checks from the command line: ``train`` and ``evaluate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.cli.main import main

SATURATED = "layer 3 Sigmoid() after layer 2 Dense"


def train(data_dir: Path, out: Path, *flags: str) -> int:
    return main(
        [
            "train",
            "--preset",
            "tutorial",
            "--epochs",
            "1",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--quiet",
            *flags,
        ]
    )


def test_train_warns_once_about_the_tutorials_saturation(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(data_dir, tmp_path / "m.npz") == 0
    out = capsys.readouterr().out
    assert out.count(SATURATED) == 1
    line = next(x for x in out.splitlines() if SATURATED in x)
    assert line.startswith("health warning before training: ")
    assert "% of units saturated" in line
    assert "fix: use init='glorot' in layer 2" in out
    # the tables are only printed on request
    assert "training health before training" not in out


def test_train_no_health_prints_no_warning(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(data_dir, tmp_path / "m.npz", "--no-health") == 0
    out = capsys.readouterr().out
    assert "health warning" not in out and "health check" not in out
    assert "test accuracy:" in out


def test_train_health_prints_tables_before_and_after(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(data_dir, tmp_path / "m.npz", "--health") == 0
    out = capsys.readouterr().out
    before = out.index("training health before training:")
    after = out.index("training health after epoch 1:")
    assert before < out.index("health warning before training") < after
    for table in (out[before:], out[after:]):
        assert "health check on 256 samples" in table
        assert "grad/norm" in table and "saturated" in table
    # warnings are printed by the monitor alone, once each
    assert out.count(SATURATED) == 1


def test_health_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "--health", "--no-health"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_evaluate_health_reports_the_saved_model(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.npz"
    assert train(data_dir, model, "--no-health") == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data-dir", str(data_dir)]) == 0
    assert "health check" not in capsys.readouterr().out
    assert main(["evaluate", str(model), "--data-dir", str(data_dir), "--health"]) == 0
    out = capsys.readouterr().out
    assert "training health on the first 256 of those images:" in out
    assert "health check on 256 samples" in out
    assert "warning: " + SATURATED in out

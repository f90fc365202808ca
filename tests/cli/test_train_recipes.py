"""``chainrule train`` recipe flags, checkpoints and resume, run as a user runs them.

Each run is one or two epochs of the small ``tutorial`` preset (about a second
an epoch), as a subprocess with OpenBLAS held to one thread.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from support import chainrule_cli

from chainrule.io import load_model, read_header


def train(
    *args: str | Path, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m chainrule train ARGS`` in ``cwd`` with an empty HOME."""
    return chainrule_cli("train", *args, cwd=cwd, timeout=timeout)


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "chainrule train: error: " in result.stderr


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A 2-epoch tutorial run stopped after epoch 1 with checkpoints in ``ck``."""
    cwd = tmp_path_factory.mktemp("interrupted")
    result = train(
        "--preset",
        "tutorial",
        "--epochs",
        "2",
        "--stop-after",
        "1",
        "--checkpoint",
        "ck",
        "--data-dir",
        data_dir,
        "--out",
        "a.npz",
        "--quiet",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return cwd


def test_stop_after_writes_checkpoints_and_a_model(interrupted: Path) -> None:
    assert sorted(p.name for p in (interrupted / "ck").iterdir()) == [
        "best.npz",
        "last.npz",
    ]
    assert read_header(interrupted / "a.npz")["metadata"]["training"]["epochs"] == 1
    last = load_model(interrupted / "ck" / "last.npz")
    assert last.training_state is not None
    assert last.training_state.epoch == 1
    run = read_header(interrupted / "ck" / "last.npz")["metadata"]["run"]
    assert run["preset"] == "tutorial"
    assert run["recipe"]["epochs"] == 2


def test_resume_is_bit_identical_to_an_uninterrupted_run(
    interrupted: Path, data_dir: Path
) -> None:
    resumed = train(
        "--resume",
        "ck/last.npz",
        "--data-dir",
        data_dir,
        "--out",
        "b.npz",
        cwd=interrupted,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming ck/last.npz after epoch 1" in resumed.stdout
    epoch_lines = [ln for ln in resumed.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epoch_lines) == 1 and epoch_lines[0].startswith("epoch 2/2 ")
    straight = train(
        "--preset",
        "tutorial",
        "--epochs",
        "2",
        "--data-dir",
        data_dir,
        "--out",
        "c.npz",
        "--quiet",
        cwd=interrupted,
    )
    assert straight.returncode == 0, straight.stderr

    b, c = load_model(interrupted / "b.npz"), load_model(interrupted / "c.npz")
    assert [n for n, _ in b.named_parameters()] == [n for n, _ in c.named_parameters()]
    for (name, p), (_, q) in zip(
        b.named_parameters(), c.named_parameters(), strict=True
    ):
        assert np.array_equal(p.data, q.data), name
    meta_b = read_header(interrupted / "b.npz")["metadata"]
    meta_c = read_header(interrupted / "c.npz")["metadata"]
    assert meta_b["training"]["epochs"] == meta_c["training"]["epochs"] == 2
    assert meta_b["metrics"] == meta_c["metrics"]


def test_resume_refuses_to_change_the_recipe(interrupted: Path, data_dir: Path) -> None:
    result = train(
        "--resume",
        "ck/last.npz",
        "--lr",
        "0.1",
        "--data-dir",
        data_dir,
        "--out",
        "d.npz",
        cwd=interrupted,
    )
    assert_clean_failure(result)
    assert "--lr cannot change when resuming" in result.stderr
    assert not (interrupted / "d.npz").exists()


# ------------------------------------------------------------------ recipe flags
RECIPE_FLAGS = {
    "optimizer": "adam",
    "lr": 0.001,
    "schedule": "cosine",
    "dropout": 0.2,
    "label_smoothing": 0.1,
    "weight_decay": 0.0001,
    "epochs": 1,
}


@pytest.fixture(scope="module")
def recipe_run(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    cwd = tmp_path_factory.mktemp("recipe")
    flags = [
        f"--{key.replace('_', '-')}={value}" for key, value in RECIPE_FLAGS.items()
    ]
    result = train(
        "--preset",
        "mlp",
        *flags,
        "--data-dir",
        data_dir,
        "--out",
        "m.npz",
        "--quiet",
        cwd=cwd,
    )
    return result, cwd


def test_recipe_flags_run_and_are_recorded(
    recipe_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, cwd = recipe_run
    assert result.returncode == 0, result.stderr
    header = read_header(cwd / "m.npz")
    recipe = header["metadata"]["run"]["recipe"]
    for key, value in RECIPE_FLAGS.items():
        assert recipe[key] == value, key
    assert header["optimizer"]["type"] == "Adam"
    assert header["optimizer"]["config"]["weight_decay"] == 0.0001
    assert header["metadata"]["training"]["epochs"] == 1


def test_recipe_flags_take_effect(
    recipe_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """What the file records as the recipe is what the model was trained with."""
    result, cwd = recipe_run
    assert result.returncode == 0, result.stderr
    header = read_header(cwd / "m.npz")
    layer_types = [layer["type"] for layer in header["layers"]]
    assert "Dropout" in layer_types, f"--dropout 0.2 recorded, layers {layer_types}"
    assert header["loss"]["config"].get("label_smoothing") == 0.1, header["loss"]


def test_patience_with_a_preset(tmp_path: Path, data_dir: Path) -> None:
    result = train(
        "--preset",
        "tutorial",
        "--epochs",
        "2",
        "--patience",
        "1",
        "--data-dir",
        data_dir,
        "--out",
        "m.npz",
        "--quiet",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "test accuracy:" in result.stdout
    assert 1 <= read_header(tmp_path / "m.npz")["metadata"]["training"]["epochs"] <= 2


@pytest.mark.parametrize(
    "args",
    [
        ["--optimizer", "bogus"],
        ["--schedule", "bogus"],
        ["--patience", "0"],
        ["--dropout", "-0.1"],
    ],
)
def test_bad_flags_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = train("--preset", "tutorial", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert args[0] in result.stderr


def test_divergence_stops_with_a_message(tmp_path: Path, data_dir: Path) -> None:
    # the tutorial's saturating sigmoids keep even lr 1e30 finite; ReLUs overflow
    result = train(
        "--preset",
        "mlp",
        "--lr",
        "1e30",
        "--epochs",
        "1",
        "--data-dir",
        data_dir,
        "--out",
        "m.npz",
        "--quiet",
        cwd=tmp_path,
    )
    assert_clean_failure(result)
    assert "training stopped" in result.stderr
    assert "at epoch 1, step" in result.stderr
    assert "no model saved" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_label_smoothing_is_refused_for_the_tutorial_loss(
    tmp_path: Path, data_dir: Path
) -> None:
    result = train(
        "--preset",
        "tutorial",
        "--label-smoothing",
        "0.1",
        "--data-dir",
        data_dir,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "label smoothing applies to softmax cross-entropy" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--patience", "1", "--validation-size", "0"],
            "--patience watches the validation loss",
        ),
        (["--checkpoint", "a-file"], "--checkpoint a-file is a file"),
    ],
)
def test_conflicting_options_fail_before_training(
    tmp_path: Path, data_dir: Path, args: list[str], message: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    result = train("--preset", "tutorial", *args, "--data-dir", data_dir, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "epoch 1/" not in result.stdout
    assert "Traceback" not in result.stderr


def test_resume_keeps_early_stopping_and_checkpoints(
    interrupted: Path, data_dir: Path
) -> None:
    result = train(
        "--resume",
        "ck/last.npz",
        "--patience",
        "3",
        "--data-dir",
        data_dir,
        "--out",
        "e.npz",
        cwd=interrupted,
    )
    assert_clean_failure(result)
    assert "--patience 3 differs from the run's (None)" in result.stderr

"""``chainrule trace``, run in process: what it prints, and how it fails.

``$CHAINRULE_DATA`` is removed for every test (and set where a test needs it),
so the results do not depend on the environment the tests run in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chainrule.cli.main import main
from chainrule.io import save_model
from chainrule.layers import Dense, Flatten
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.presets import make_model

TUTORIAL_STEPS = [
    "x = flatten(s)",
    "z1 = x · W1",
    "a1 = σ(z1)",
    "z2 = a1 · W2",
    "a2 = σ(z2)",
    "z3 = a2 · W3",
    "a3 = σ(z3)",
    "C = −Σ [y log a3 + (1 − y) log(1 − a3)] / N",
    "δ3 = (a3 − y) / N",
    "dC/dW3 = a2ᵀ · δ3",
    "dC/da2 = δ3 · W3ᵀ",
    "δ2 = dC/da2 ⊙ a2(1 − a2)",
    "= (δ3 · W3ᵀ) ⊙ a2(1 − a2)",
    "dC/dW2 = a1ᵀ · δ2",
    "δ1 = dC/da1 ⊙ a1(1 − a1)",
    "dC/dW1 = xᵀ · δ1",
]
AGREE = re.compile(
    r"^all (\d+) parameter gradients agree with central differences "
    r"\(max relative error \S+, tolerance 1e-06, float64\)$"
)


@pytest.fixture(autouse=True)
def no_data_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["trace", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def body(out: str) -> str:
    """The trace without its first line (which names the model and the data)."""
    return out.split("\n", 1)[1]


def test_tutorial_on_random_images(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--batch-size", "2")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "backprop trace of preset tutorial on 2 random images "
        "(give --data-dir for MNIST), float64"
    )
    for step in TUTORIAL_STEPS:
        assert step in out, step
    assert re.search(r"^  input = the batch\s+\(2, 28, 28\)", out, re.MULTILINE)
    assert re.search(r"^  δ3 = \(a3 − y\) / N\s+\(2, 10\)\s+‖·‖", out, re.MULTILINE)
    assert re.search(
        r"^  dC/dW1 = xᵀ · δ1\s+\(784, 64\)\s+‖·‖ .* ok$", out, re.MULTILINE
    )
    assert "dC/dx" not in out
    match = AGREE.match(lines[-1])
    assert match and match.group(1) == "3", lines[-1]


def test_mnist_images_with_data_dir(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code, out, err = run(capsys, "--batch-size", "3", "--data-dir", str(data_dir))
    assert code == 0, err
    header = out.splitlines()[0]
    assert re.fullmatch(
        r"backprop trace of preset tutorial on 3 MNIST test images "
        r"\(labels [0-9], [0-9], [0-9]\), float64",
        header,
    ), header
    assert re.search(r"^  input = the batch\s+\(3, 28, 28\)", out, re.MULTILINE)
    assert AGREE.match(out.splitlines()[-1])


def test_mnist_images_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
) -> None:
    monkeypatch.setenv("CHAINRULE_DATA", str(data_dir))
    code, out, err = run(capsys, "--batch-size", "2", "--no-check")
    assert code == 0, err
    assert "on 2 MNIST test images (labels " in out.splitlines()[0]


def test_cnn_without_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--preset", "cnn", "--no-check", "--batch-size", "2")
    assert code == 0, err
    assert out.startswith("backprop trace of preset cnn on 2 random images")
    for step in (
        "x = reshape(s) to (N, 1, 28, 28)",
        "z1 = W1 ⋆ x  (= W1 · im2col(x))",
        "p1 = maxpool2x2(a1)",
        "z4 = h3 · W4 + b4",
        "a4 = softmax(z4)",
        "δ4 = (a4 − y) / N",
        "dC/dγ2 = Σ dC/dn2 ⊙ x̂",
        "dC/dW1 = δ1 · im2col(x)ᵀ",
    ):
        assert step in out, step
    assert re.search(r"^  z1 = .*\(2, 32, 28, 28\)", out, re.MULTILINE)
    assert "numerical" not in out
    assert "central differences" not in out


def test_a_disagreeing_gradient_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    # no float64 gradient is right to 1e-30: every check fails
    code, out, err = run(capsys, "--batch-size", "2", "--tolerance", "1e-30")
    assert code == 1
    assert err == ""
    assert re.search(r"^  dC/dW3 = a2ᵀ · δ3 .* FAIL$", out, re.MULTILINE)
    assert out.splitlines()[-1].startswith(
        "all 3 parameter gradients DISAGREE with central differences"
    )


def test_a_saved_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "tutorial.npz"
    save_model(make_model("tutorial", seed=5), path)
    code, out, err = run(
        capsys, "--model", str(path), "--batch-size", "2", "--seed", "5"
    )
    assert code == 0, err
    assert out.startswith(f"backprop trace of {path} on 2 random images")
    # the same weights and images as the preset made with the same seed
    code, preset_out, _ = run(capsys, "--batch-size", "2", "--seed", "5")
    assert code == 0
    assert body(out) == body(preset_out)


def test_a_saved_model_without_a_loss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "plain.npz"
    save_model(Sequential([Flatten(), Dense(10)], input_shape=(28, 28), seed=0), path)
    code, _, err = run(capsys, "--model", str(path), "--batch-size", "2")
    assert code == 1
    assert err.startswith("chainrule trace: error: trace needs a loss")
    assert len(err.splitlines()) == 1


def test_a_missing_model_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.npz"
    code, out, err = run(capsys, "--model", str(missing))
    assert code == 1
    assert out == ""
    assert err.startswith("chainrule trace: error: ")
    assert str(missing) in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--tolerance", "0"], "--tolerance"),
        (["--seed", "-1"], "--seed"),
        (["--preset", "nope"], "--preset"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["trace", *args])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: chainrule trace")
    assert message in captured.err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["trace", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--preset", "--model", "--batch-size", "--no-check", "--data-dir"):
        assert option in out


def test_a_saved_model_with_three_classes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = Sequential([Flatten(), Dense(3)], input_shape=(28, 28), seed=0)
    path = tmp_path / "three.npz"
    save_model(model.compile(CrossEntropy()), path)
    code, _, err = run(capsys, "--model", str(path), "--batch-size", "4")
    assert code == 0, err

"""``chainrule export`` and ``chainrule import``, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import chainrule_cli

from chainrule.cli.main import main
from chainrule.io import load_model, read_header, save_model
from chainrule.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Rescaling,
    Reshape,
)
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import Adam

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CLASS_NAMES = [f"digit {i}" for i in range(10)]
INSTALL = "pip install 'chainrule[onnx]'"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, mnist: Any) -> Path:
    """A small CNN after an epoch on 256 MNIST images, saved with class names."""
    (x, y), _ = mnist
    model = Sequential(
        [
            Rescaling(1 / 255),
            Reshape((1, 28, 28)),
            Conv2D(4, 3, padding="same"),
            BatchNorm(),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense(10),
        ],
        input_shape=(28, 28),
        seed=0,
    ).compile(CrossEntropy(), Adam(0.01))
    model.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("onnx_cli") / "small.npz"
    save_model(model, path, metadata={"class_names": CLASS_NAMES, "dataset": "mnist"})
    return path


@pytest.fixture(scope="module")
def exported(model_file: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    result = chainrule_cli("export", model_file, "small.onnx", cwd=model_file.parent)
    return result, model_file.parent / "small.onnx"


def test_export(
    exported: tuple[subprocess.CompletedProcess[str], Path],
    model_file: Path,
    mnist: Any,
) -> None:
    result, path = exported
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("wrote small.onnx (ONNX opset 17, ")
    assert lines[0].endswith(": 8 layers as 9 nodes")
    assert lines[1:] == [
        "  input  'input'          float32 (N, 28, 28)",
        "  output 'logits'         float32 (N, 10)",
        "  output 'probabilities'  float32 (N, 10)",
    ]
    _, (x, _) = mnist
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(None, {"input": x[:300].astype(np.float32)})
    model = load_model(model_file)
    assert np.abs(logits - model.predict_logits(x[:300])).max() <= 1e-5
    assert np.abs(probabilities - model.predict(x[:300])).max() <= 1e-5
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(props["class_names"]) == CLASS_NAMES
    assert json.loads(props["chainrule.metadata"])["source"] == "small.npz"


def test_import_what_export_wrote(
    exported: tuple[subprocess.CompletedProcess[str], Path],
    model_file: Path,
    mnist: Any,
) -> None:
    _, path = exported
    result = chainrule_cli("import", "small.onnx", "back.npz", cwd=path.parent)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("read small.onnx (ONNX opset 17, made by chainrule ")
    assert "Sequential: input (N, 28, 28), float32" in out
    assert "loss: CrossEntropy()" in out
    assert out.rstrip().endswith("wrote back.npz")
    _, (x, _) = mnist
    back, original = load_model(path.parent / "back.npz"), load_model(model_file)
    np.testing.assert_allclose(
        back.predict(x[:300]), original.predict(x[:300]), rtol=0, atol=1e-6
    )
    metadata = read_header(path.parent / "back.npz")["metadata"]
    assert metadata["class_names"] == CLASS_NAMES
    assert metadata["imported_from"]["file"] == "small.onnx"
    assert metadata["imported_from"]["opset"] == 17


def test_import_of_a_graph_without_a_softmax(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onnx import helper, numpy_helper

    weights = np.ones((5, 2), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"], name="fc")],
        "linear",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(weights, "W")],
    )
    proto = helper.make_model(graph, producer_name="hand", producer_version="1")
    onnx.save(proto, tmp_path / "linear.onnx")
    code = main(["import", str(tmp_path / "linear.onnx"), str(tmp_path / "l.npz")])
    out = capsys.readouterr().out
    assert code == 0
    assert "made by hand 1" in out
    assert "no loss: compile the model with one" in out
    np.testing.assert_array_equal(
        load_model(tmp_path / "l.npz").layers[0].W.data,
        weights,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "missing.npz", "m.onnx"], "missing.npz: no such model file"),
        (["export", "notes.txt", "m.onnx"], "notes.txt: not a chainrule model file"),
        (["export", "{model}", "m.onnx", "--opset", "12"], "opset must be an integer"),
        (["export", "{model}", "."], ". is a directory"),
        (["import", "missing.onnx", "m.npz"], "missing.onnx: no such file"),
        (["import", "notes.txt", "m.npz"], "notes.txt: not an ONNX model"),
        (["import", "{model}", "m.npz"], "not an ONNX model"),
        (["import", "cos.onnx", "m.npz"], r"unsupported ONNX operators: Cos \(node"),
    ],
    ids=[
        "export_missing",
        "export_text",
        "export_old_opset",
        "export_to_directory",
        "import_missing",
        "import_text",
        "import_npz",
        "import_unsupported",
    ],
)
def test_bad_input_is_a_one_line_error(
    tmp_path: Path,
    model_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    from onnx import helper

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model\n")
    cos = helper.make_graph(
        [helper.make_node("Cos", ["x"], ["y"], name="c")],
        "cos",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
    )
    onnx.save(helper.make_model(cos), tmp_path / "cos.onnx")
    args = [a.replace("{model}", str(model_file)) for a in args]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"chainrule {args[0]}: error: ")
    assert len(captured.err.strip().splitlines()) == 1
    assert re.search(message, captured.err), captured.err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("command", ["export", "import"])
def test_missing_onnx_is_a_one_line_error(
    tmp_path: Path,
    model_file: Path,
    exported: tuple[subprocess.CompletedProcess[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    source = model_file if command == "export" else exported[1]
    out = tmp_path / "out"
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    assert main([command, str(source), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chainrule {command}: error: ONNX export and import need")
    assert INSTALL in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_chainrule_runs_without_onnx(tmp_path: Path) -> None:
    """Neither ``import chainrule`` nor the command line imports onnx."""
    code = (
        "import sys; import chainrule, chainrule.onnx, chainrule.cli.main; "
        "chainrule.cli.main.build_parser(); print('onnx' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_help_lists_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "export" in out and "import" in out
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "--opset" in capsys.readouterr().out

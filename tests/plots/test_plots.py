"""Every plot from small real models: PNG of the documented size, valid SVG, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import plots
from chainrule.errors import ChainruleError
from chainrule.model import History, Sequential

Check = Callable[[Path, tuple[int, int]], None]
KINDS = ["curves", "confusion", "misclassified", "first_layer", "histograms"]


def draw(
    kind: str,
    trained: tuple[Sequential, History],
    data: dict[str, Any],
    path: Path,
) -> tuple[int, int]:
    """Draw one plot of a trained model into ``path``; return its expected size."""
    model, history = trained
    x, y = data["x_test"], data["y_test"]
    if kind == "curves":
        assert plots.plot_history(history, path) == path
        return plots.CURVES_SIZE
    if kind == "confusion":
        assert plots.plot_confusion(y, model.predict(x), path) == path
        return plots.CONFUSION_SIZE
    if kind == "misclassified":
        assert plots.plot_misclassified(x, y, model.predict(x), path, 12) == path
        return plots.misclassified_size(12)
    if kind == "first_layer":
        assert plots.plot_first_layer(model, path) == path
        return plots.WEIGHTS_SIZE
    assert plots.plot_histograms(model, x[:64], y[:64], path) == path
    return plots.histogram_size(plots.histogram_rows(model))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_each_plot_writes_a_png_of_the_documented_size(
    request: pytest.FixtureRequest,
    small_mnist: dict[str, Any],
    check_png: Check,
    tmp_path: Path,
    net: str,
    kind: str,
) -> None:
    trained = request.getfixturevalue(f"trained_{net}")
    size = draw(kind, trained, small_mnist, tmp_path / f"{kind}.png")
    check_png(tmp_path / f"{kind}.png", size)
    # written atomically: no temporary file left beside it
    assert [p.name for p in tmp_path.iterdir()] == [f"{kind}.png"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_plot_writes_svg(
    trained_mlp: tuple[Sequential, History],
    small_mnist: dict[str, Any],
    check_svg: Check,
    tmp_path: Path,
    kind: str,
) -> None:
    size = draw(kind, trained_mlp, small_mnist, tmp_path / f"{kind}.svg")
    check_svg(tmp_path / f"{kind}.svg", size)


def test_sizes_are_as_documented(trained_mlp: tuple[Sequential, History]) -> None:
    assert plots.DPI == 100
    assert plots.CURVES_SIZE == (1200, 500)
    assert plots.misclassified_size() == (1200, 1275)
    # Dense, ReLU, Dense
    assert plots.histogram_rows(trained_mlp[0]) == 3
    assert plots.histogram_size(3) == (1200, 675)


def test_write_training_plots_uses_the_fixed_names(
    trained_cnn: tuple[Sequential, History],
    small_mnist: dict[str, Any],
    check_png: Check,
    tmp_path: Path,
) -> None:
    model, history = trained_cnn
    out = tmp_path / "new" / "dir"
    paths = plots.write_training_plots(
        model, history, small_mnist["x_test"], small_mnist["y_test"], out
    )
    assert plots.PLOT_FILES == tuple(KINDS)
    assert paths == [out / f"{name}.png" for name in plots.PLOT_FILES]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    check_png(out / "histograms.png", plots.histogram_size(4))


def test_write_evaluation_plots_in_svg_without_a_first_layer_picture(
    small_mnist: dict[str, Any], tmp_path: Path
) -> None:
    """The first Dense sees pooled pixels, not the image: no weights picture."""
    model = cr.Sequential(
        [
            cr.Rescaling(1 / 255),
            cr.Reshape((1, 28, 28)),
            cr.MaxPool2D(2),
            cr.Flatten(),
            cr.Dense(10),
        ],
        input_shape=(28, 28),
        seed=0,
    ).compile(cr.CrossEntropy())
    paths = plots.write_evaluation_plots(
        model,
        small_mnist["x_test"][:50],
        small_mnist["y_test"][:50],
        tmp_path,
        class_names=list("abcdefghij"),
        image_format="svg",
    )
    assert [p.name for p in paths] == [
        "confusion.svg",
        "misclassified.svg",
        "histograms.svg",
    ]
    with pytest.raises(ValueError, match="expected all the pixels"):
        plots.plot_first_layer(model, tmp_path / "w.png")


# ------------------------------------------------------------- what is drawn
def test_first_layer_images_are_dense_columns_and_conv_filters(
    trained_mlp: tuple[Sequential, History],
    trained_cnn: tuple[Sequential, History],
) -> None:
    dense = trained_mlp[0].layers[2]
    images, caption = plots.first_layer_images(trained_mlp[0])
    assert images.shape == (16, 28, 28)
    np.testing.assert_array_equal(images[5], dense.W.data[:, 5].reshape(28, 28))
    assert caption == "first layer: the 16 units of Dense layer 2 as 28×28 images"
    images, caption = plots.first_layer_images(trained_mlp[0], max_units=4)
    assert images.shape[0] == 4 and caption.startswith("first layer: 4 of the 16 ")

    conv = trained_cnn[0].layers[2]
    images, caption = plots.first_layer_images(trained_cnn[0])
    np.testing.assert_array_equal(images, conv.W.data[:, 0])
    assert caption == "first layer: the 4 3×3 filters of Conv2D layer 2"


def test_mistakes_are_ranked_most_confident_first() -> None:
    prob = np.array(
        [[0.9, 0.1], [0.3, 0.7], [0.4, 0.6], [0.2, 0.8], [0.5, 0.5]], dtype=float
    )
    wrong, _, pred, confidence = plots.rank_mistakes([0, 0, 0, 1, 1], prob)
    # wrong: 1 (0.7), 2 (0.6), 4 (tie 0.5: argmax picks class 0)
    assert wrong.tolist() == [1, 2, 4]
    assert pred.tolist() == [0, 1, 1, 1, 0]
    np.testing.assert_allclose(confidence, [0.9, 0.7, 0.6, 0.8, 0.5])
    # one sigmoid output is P(class 1)
    wrong, _, pred, _ = plots.rank_mistakes([1, 0, 1], np.array([[0.2], [0.9], [0.6]]))
    assert pred.tolist() == [0, 1, 1] and wrong.tolist() == [1, 0]


def test_no_mistakes_gives_a_picture_saying_so(
    small_mnist: dict[str, Any], check_png: Check, tmp_path: Path
) -> None:
    y = small_mnist["y_test"][:20]
    perfect = np.eye(10)[y]
    path = plots.plot_misclassified(
        small_mnist["x_test"][:20], y, perfect, tmp_path / "m.png"
    )
    check_png(path, plots.misclassified_size())


def test_histograms_without_targets(
    trained_cnn: tuple[Sequential, History],
    small_mnist: dict[str, Any],
    check_png: Check,
    tmp_path: Path,
) -> None:
    model = trained_cnn[0]
    before = [p.data.copy() for p in model.parameters()]
    path = plots.plot_histograms(
        model, small_mnist["x_test"][:32], None, tmp_path / "h.png"
    )
    check_png(path, plots.histogram_size(4))
    for old, p in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(old, p.data)


def test_curves_from_a_history_dict_without_accuracy(
    check_png: Check, tmp_path: Path
) -> None:
    history = {"loss": [0.9, 0.5, float("nan")], "val_loss": [1.0, 0.7, 0.8]}
    check_png(plots.plot_history(history, tmp_path / "c.png"), plots.CURVES_SIZE)


def test_misclassified_colour_images_are_drawn_in_colour(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    rng = np.random.default_rng(0)
    x = np.zeros((6, 3, 12, 12), dtype=np.uint8)
    x[:, 0] = 255  # red pictures
    y_true = np.array([0, 1, 0, 1, 0, 1])
    y_prob = np.tile([[0.2, 0.8]], (6, 1)) + rng.uniform(0, 0.01, (6, 2))
    path = plots.plot_misclassified(
        x, y_true, y_prob, tmp_path / "m.png", class_names=["a", "b"]
    )
    with Image.open(path) as png:
        pixels = np.asarray(png.convert("RGB")).reshape(-1, 3).astype(int)
    red = (pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)
    assert red.sum() > 100  # the grey colour map would have no red at all


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["plot.jpg", "plot", "plot.png.tmp"])
def test_unknown_suffix_is_refused_before_any_work(
    trained_mlp: tuple[Sequential, History],
    small_mnist: dict[str, Any],
    tmp_path: Path,
    kind: str,
    name: str,
) -> None:
    with pytest.raises(ValueError, match=r"must end in \.png or \.svg, got '.*plot"):
        draw(kind, trained_mlp, small_mnist, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_not_a_file_name(
    trained_mlp: tuple[Sequential, History], tmp_path: Path
) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ValueError, match="is a directory; give a file name"):
        plots.plot_history(trained_mlp[1], tmp_path / "d.png")
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match=r"plots directory .* is a file"):
        plots.write_evaluation_plots(trained_mlp[0], [], [], tmp_path / "f")
    with pytest.raises(ValueError, match="image_format must be 'png' or 'svg'"):
        plots.write_evaluation_plots(
            trained_mlp[0], [], [], tmp_path, image_format="jpg"
        )


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (History(), r"no 'loss' values to plot \(keys: none\)"),
        ({"accuracy": [0.5]}, r"no 'loss' values to plot \(keys: accuracy\)"),
        ({"loss": []}, "no 'loss' values"),
    ],
)
def test_empty_history(tmp_path: Path, history: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.plot_history(history, tmp_path / "c.png")


@pytest.mark.parametrize(
    ("y_true", "y_pred", "names", "message"),
    [
        ([0, 1, 2], [0, 1], None, "y_true has 3 samples, y_pred 2"),
        ([], [], None, r"no samples \(y_true is empty\)"),
        ([0, 1], np.zeros((2, 2, 2)), None, r"got shape \(2, 2, 2\)"),
        ([0, 3], [0, 1], ["a", "b"], "2 class names for labels up to 3"),
        ([0, -1], [0, 1], None, r"true labels must lie in \[0, 1\], got -1..0"),
    ],
)
def test_confusion_bad_input(
    tmp_path: Path, y_true: Any, y_pred: Any, names: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plots.plot_confusion(y_true, y_pred, tmp_path / "c.png", class_names=names)


@pytest.mark.parametrize(
    ("x", "y", "prob", "kwargs", "error", "message"),
    [
        (np.zeros((2, 2, 5, 5)), [0, 1], np.eye(2), {}, ValueError, "grey images"),
        (np.zeros((2, 10)), [0, 1], np.eye(2), {}, ValueError, r"\(2, 10\)"),
        (np.zeros((3, 4, 4)), [0, 1], np.eye(2), {}, ValueError, "x has 3 images"),
        (np.zeros((2, 4, 4)), [0, 1], np.eye(3), {}, ValueError, r"\(2,\) and \(3, 3"),
        (np.zeros((2, 4, 4)), [0], np.eye(2), {}, ValueError, "same N"),
        (np.zeros((2, 4, 4)), [0, 1], [0.1, 0.9], {}, ValueError, r"shapes \(2,\)"),
        (np.zeros((2, 4, 4)), [0, 1], np.eye(2), {"max_images": 0}, ValueError, ">= 1"),
        (np.zeros((2, 4, 4)), [0, 1], np.eye(2), {"max_images": 2.0}, TypeError, "int"),
        (
            np.zeros((2, 4, 4)),
            [0, 1],
            np.eye(2),
            {"class_names": ["a"]},
            ValueError,
            "1 class names for 2 classes",
        ),
    ],
)
def test_misclassified_bad_input(
    tmp_path: Path,
    x: Any,
    y: Any,
    prob: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        plots.plot_misclassified(x, y, prob, tmp_path / "m.png", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_first_layer_needs_an_image_layer(tmp_path: Path) -> None:
    unbuilt = cr.Sequential([cr.Flatten(), cr.Dense(4)])
    with pytest.raises(ValueError, match="the model is not built"):
        plots.plot_first_layer(unbuilt, tmp_path / "w.png")
    tabular = cr.Sequential([cr.Dense(4)], input_shape=(10,), seed=0)
    with pytest.raises(ValueError, match=r"sees 10 features of model input \(10,\)"):
        plots.plot_first_layer(tabular, tmp_path / "w.png")
    no_weights = cr.Sequential([cr.Flatten(), cr.ReLU()], input_shape=(4, 4))
    with pytest.raises(ValueError, match="expected a Dense or Conv2D layer, the model"):
        plots.plot_first_layer(no_weights, tmp_path / "w.png")
    with pytest.raises(ValueError, match="max_units must be a positive int"):
        plots.plot_first_layer(tabular, tmp_path / "w.png", max_units=0)
    with pytest.raises(ValueError, match="expected a layer with parameters or an "):
        plots.plot_histograms(
            cr.Sequential([cr.Flatten()], input_shape=(4, 4)),
            np.zeros((2, 4, 4)),
            None,
            tmp_path / "h.png",
        )
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ no matplotlib
def test_missing_matplotlib_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
    trained_mlp: tuple[Sequential, History],
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(plots.MissingMatplotlibError) as info:
        plots.plot_history(trained_mlp[1], tmp_path / "c.png")
    assert str(info.value).startswith(
        "plots need matplotlib: pip install 'chainrule[plot]'"
    )
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, ChainruleError)
    assert list(tmp_path.iterdir()) == []


def test_core_chainrule_never_imports_matplotlib() -> None:
    code = (
        "import sys, chainrule, chainrule.plots, chainrule.cli.main; "
        "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert result.stdout.strip() == "[]"

"""The model behind the app, without HTTP: pixels, first hidden layer, outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.io import save_model
from chainrule.presets import PRESETS, make_model
from chainrule.serve import InputError, Predictor, parse_pixels
from chainrule.serve.inference import first_hidden_layer


def test_parse_pixels_takes_rows_or_a_flat_list() -> None:
    image = np.arange(784, dtype=np.float64).reshape(28, 28) % 256
    np.testing.assert_array_equal(parse_pixels({"pixels": image.tolist()}), image)
    flat = parse_pixels({"pixels": image.ravel().tolist()})
    np.testing.assert_array_equal(flat, image)
    assert parse_pixels({"pixels": [0.5] * 784}).dtype == np.float64


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"pixels": []},
        {"pixels": [[0] * 28] * 28 + [[0] * 28]},
        {"pixels": [[0] * 28] * 27 + [[0] * 27]},
        {"pixels": [0] * 783},
        {"pixels": [0] * 783 + [float("nan")]},
        {"pixels": [0] * 783 + [float("inf")]},
        {"pixels": [0] * 783 + [255.5]},
        {"pixels": [0] * 783 + ["0"]},
        {"pixels": [0] * 783 + [False]},
        {"pixels": "0" * 784},
    ],
)
def test_parse_pixels_refuses_what_is_not_a_28x28_image(payload: object) -> None:
    with pytest.raises(InputError):
        parse_pixels(payload)


@pytest.mark.parametrize(
    ("preset", "description", "shape"),
    [
        (
            "tutorial",
            "Dense(units=64, use_bias=False, init='normal') → Sigmoid()",
            (64,),
        ),
        ("mlp", "Dense(units=1024, init='he') → ReLU()", (1024,)),
        (
            "lenet5",
            "Conv2D(filters=6, kernel_size=5, padding=2, init='he') → ReLU()",
            (6, 28, 28),
        ),
        ("cnn", "→ BatchNorm() → ReLU()", (32, 28, 28)),
    ],
)
def test_the_first_hidden_layer_of_each_kind_of_preset(
    preset: str, description: str, shape: tuple[int, ...]
) -> None:
    model = make_model(preset, seed=0)
    found = first_hidden_layer(model.layers)
    assert found is not None
    index, text = found
    assert description in text
    assert "Dropout" not in text
    assert model.layers[index].output_shape == shape


def test_a_model_without_a_hidden_layer_has_no_activations(tmp_path: Path) -> None:
    model = cr.Sequential(
        [cr.Rescaling(1 / 255), cr.Flatten(), cr.Dense(10)],
        input_shape=(28, 28),
        seed=0,
    )
    model.compile(cr.CrossEntropy())
    assert first_hidden_layer(model.layers) is None
    save_model(model, tmp_path / "linear.npz")
    predictor = Predictor(tmp_path / "linear.npz")
    answer = predictor.classify(np.zeros((28, 28)), activations=True)
    assert "activations" not in answer
    assert predictor.info()["activations"] is None


def test_every_preset_can_be_served(tmp_path: Path) -> None:
    image = np.zeros((28, 28))
    image[4:24, 12:16] = 255
    for name in PRESETS:
        save_model(make_model(name, seed=0), tmp_path / f"{name}.npz")
        predictor = Predictor(tmp_path / f"{name}.npz")
        answer = predictor.classify(image, activations=True)
        assert len(answer["probabilities"]) == 10
        assert len(answer["activations"]["values"]) == np.prod(
            answer["activations"]["shape"]
        )


def test_binary_cross_entropy_models_report_sigmoid_outputs(tmp_path: Path) -> None:
    # the tutorial's network: 10 independent sigmoids, which need not sum to 1
    model = make_model("tutorial", seed=0)
    save_model(model, tmp_path / "tutorial.npz")
    predictor = Predictor(tmp_path / "tutorial.npz")
    assert predictor.info()["output"] == "sigmoid"
    image = np.full((28, 28), 100.0)
    answer = predictor.classify(image)
    np.testing.assert_allclose(
        answer["probabilities"], model.predict(image[None])[0], atol=1e-6
    )


def test_class_names_come_from_the_file_when_they_fit(tmp_path: Path) -> None:
    model = make_model("lenet5", seed=0)
    names = "zero one two three four five six seven eight nine".split()
    save_model(model, tmp_path / "named.npz", metadata={"class_names": names})
    assert Predictor(tmp_path / "named.npz").classes == names
    save_model(model, tmp_path / "bad.npz", metadata={"class_names": ["a", "b"]})
    assert Predictor(tmp_path / "bad.npz").classes == [str(i) for i in range(10)]


def test_metadata_that_is_not_a_number_is_left_out(tmp_path: Path) -> None:
    metadata = {"metrics": {"test_accuracy": "high", "test_loss": 0.1}, "preset": 3}
    save_model(make_model("lenet5", seed=0), tmp_path / "m.npz", metadata=metadata)
    info = Predictor(tmp_path / "m.npz").info()
    assert info["metrics"] == {"test_loss": 0.1}
    assert info["test_accuracy"] is None
    assert info["preset"] is None


def test_outputs_are_read_as_chainrule_predict_reads_them(tmp_path: Path) -> None:
    image = np.full((28, 28), 50.0)
    layers = [
        cr.Rescaling(1 / 255),
        cr.Flatten(),
        cr.Dense(16),
        cr.ReLU(),
        cr.Dense(10),
    ]
    model = cr.Sequential(layers, input_shape=(28, 28), seed=0)
    for loss, output in [(None, "softmax"), (cr.MSE(), "raw")]:
        if loss is not None:
            model.compile(loss)
        save_model(model, tmp_path / "m.npz")
        predictor = Predictor(tmp_path / "m.npz")
        assert predictor.info()["output"] == output
        logits = model.predict_logits(image[None])[0]
        expected = np.exp(logits) / np.exp(logits).sum() if loss is None else logits
        answer = predictor.classify(image)["probabilities"]
        np.testing.assert_allclose(answer, expected, atol=2e-6)


def test_a_model_that_is_not_a_classifier_is_refused(tmp_path: Path) -> None:
    model = cr.Sequential([cr.Flatten(), cr.Dense(1)], input_shape=(28, 28), seed=0)
    save_model(model, tmp_path / "regressor.npz")
    with pytest.raises(ValueError, match="one score per class"):
        Predictor(tmp_path / "regressor.npz")


def test_a_fashion_model_prepares_drawings_as_fashion_mnist(tmp_path: Path) -> None:
    from chainrule.imaging import preprocess_fashion

    model = make_model("tutorial", seed=0)
    save_model(model, tmp_path / "f.npz", metadata={"input": {"kind": "fashion"}})
    predictor = Predictor(tmp_path / "f.npz")
    assert predictor.prepare is preprocess_fashion

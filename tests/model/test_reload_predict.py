"""A model trained on real MNIST predicts the same after a save and a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chainrule import backend
from chainrule.io import load_model, read_header, save_model
from chainrule.presets import make_model


def test_mnist_model_reloads_and_predicts_identically(
    tmp_path: Path, mnist: Any
) -> None:
    (x_train, y_train), (x_test, y_test) = mnist
    model = make_model("mlp", seed=0)
    history = model.fit(
        x_train[:10000], y_train[:10000], epochs=1, batch_size=128, seed=0, verbose=0
    )
    assert history.last()["accuracy"] > 0.8

    path = tmp_path / "mlp.npz"
    save_model(model, path, metadata={"preset": "mlp", "images": 10000})
    loaded = load_model(path)

    assert read_header(path)["metadata"] == {"preset": "mlp", "images": 10000}
    for (name, p), (name2, q) in zip(
        model.named_parameters(), loaded.named_parameters(), strict=True
    ):
        assert name == name2
        assert np.array_equal(backend.to_numpy(p.data), backend.to_numpy(q.data))

    probabilities = model.predict(x_test)
    reloaded = loaded.predict(x_test)
    assert probabilities.shape == (10000, 10)
    assert reloaded.dtype == probabilities.dtype == np.float32
    assert np.array_equal(reloaded, probabilities)
    assert np.array_equal(loaded.predict_logits(x_test), model.predict_logits(x_test))

    scores = model.evaluate(x_test, y_test)
    assert loaded.evaluate(x_test, y_test) == scores
    assert scores["accuracy"] > 0.9
    assert np.mean(probabilities.argmax(axis=1) == y_test) == scores["accuracy"]

"""Sequential: building, fit/evaluate/predict, summary, and clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest

from chainrule.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    Identity,
    ReLU,
    Rescaling,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.losses import MSE, BinaryCrossEntropy, CrossEntropy
from chainrule.model import Sequential
from chainrule.model.progress import Progress
from chainrule.optim import SGD


def blobs(rng: np.random.Generator, n: int = 300, classes: int = 3):  # type: ignore[no-untyped-def]
    """Well separated Gaussian clusters in 4-D: any working MLP learns them."""
    centres = rng.standard_normal((classes, 4)) * 4
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.standard_normal((n, 4)) * 0.5
    return x.astype(np.float32), y


def small_model(seed: int = 0) -> Sequential:
    model = Sequential([Dense(16, init="he"), ReLU(), Dense(3)], seed=seed)
    return model.compile(CrossEntropy(), SGD(0.1, momentum=0.9))


def test_fit_learns_and_history_records(rng: np.random.Generator) -> None:
    x, y = blobs(rng)
    model = small_model()
    history = model.fit(x, y, epochs=15, batch_size=32, seed=0, verbose=0)
    assert history.epoch == list(range(1, 16))
    assert set(history.history) == {"loss", "accuracy", "lr"}
    assert history["loss"][-1] < history["loss"][0]
    assert model.evaluate(x, y)["accuracy"] > 0.95
    probs = model.predict(x)
    assert probs.shape == (len(x), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), model.predict_logits(x).argmax(1))


def test_same_seed_same_weights(rng: np.random.Generator) -> None:
    x, y = blobs(rng)
    a, b = small_model(seed=3), small_model(seed=3)
    a.fit(x, y, epochs=2, seed=9, verbose=0)
    b.fit(x, y, epochs=2, seed=9, verbose=0)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    c, d = small_model(seed=4), small_model(seed=3)
    c.build((4,))
    d.build((4,))
    assert not np.array_equal(c.parameters()[0].data, d.parameters()[0].data)


def test_validation_split_and_data(rng: np.random.Generator) -> None:
    x, y = blobs(rng, n=200)
    h = small_model().fit(x, y, epochs=2, validation_split=0.25, seed=1, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    h = small_model().fit(x, y, epochs=1, validation_data=(x[:50], y[:50]), verbose=0)
    assert 0 <= h["val_accuracy"][0] <= 1
    with pytest.raises(ValueError, match="not both"):
        small_model().fit(x, y, validation_split=0.1, validation_data=(x, y), verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must lie in \[0, 1\)"):
        small_model().fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="both need >= 1"):
        small_model().fit(x[:3], y[:3], validation_split=0.01, verbose=0)


def test_uint8_images_are_converted_per_batch(rng: np.random.Generator) -> None:
    x = rng.integers(0, 256, (64, 6, 6), dtype=np.uint8)
    y = (x.reshape(64, -1).mean(1) > 127).astype(np.int64)
    model = Sequential(
        [Rescaling(1 / 255), Flatten(), Dense(8), Tanh(), Dense(1)], seed=0
    ).compile(BinaryCrossEntropy(), SGD(0.5))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model.predict(x).shape == (64, 1)
    assert model.predict(x).dtype == np.float32
    assert 0 <= model.evaluate(x, y)["accuracy"] <= 1


def test_evaluate_loss_is_the_loss_over_the_whole_set(rng: np.random.Generator) -> None:
    x, y = blobs(rng, n=103)
    model = small_model()
    model.build((4,))
    whole = model.evaluate(x, y, batch_size=1000)["loss"]
    assert model.evaluate(x, y, batch_size=10)["loss"] == pytest.approx(whole, rel=1e-5)
    logits, _ = model(x, training=False)
    assert CrossEntropy()(logits, y)[0] == pytest.approx(whole, rel=1e-5)


def test_mse_regression(rng: np.random.Generator) -> None:
    x = rng.standard_normal((128, 3)).astype(np.float32)
    target = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = Sequential([Dense(1)], seed=0).compile(MSE(), SGD(0.1))
    h = model.fit(x, target, epochs=30, batch_size=16, verbose=0)
    assert h["loss"][-1] < 1e-3


def test_summary_lists_layers_shapes_and_params() -> None:
    model = Sequential(
        [Flatten(), Dense(64, use_bias=False), Sigmoid(), Dense(10)],
        input_shape=(28, 28),
    ).compile(CrossEntropy(), SGD(0.1))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Dense(units=64, use_bias=False)" in text
    assert "(N, 784)" in text and "(N, 10)" in text
    assert "50,176" in text and "650" in text
    assert "total parameters: 50,826" in text
    assert "loss: CrossEntropy()" in text and "optimizer: SGD(lr=0.1)" in text
    assert "buffers" not in text
    with pytest.raises(RuntimeError, match="input shape"):
        Sequential([Dense(2)]).summary()


def test_summary_counts_batch_norm_buffers_apart() -> None:
    model = Sequential(
        [Reshape((1, 8, 8)), Conv2D(4, 3), BatchNorm(), Flatten(), Dense(2)],
        input_shape=(8, 8),
    )
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(N, 4, 6, 6)" in text
    # conv 4·9 + 4, batch norm gamma and beta 2·4, dense 144·2 + 2
    assert "total parameters: 338" in text
    assert "buffers (saved, not trained): 8 values" in text


def test_float64_model() -> None:
    model = Sequential([Dense(3)], input_shape=(2,), dtype="float64", seed=0)
    assert model.parameters()[0].data.dtype == np.float64
    y, _ = model(np.ones((1, 2), np.float32))
    assert y.dtype == np.float64
    model.astype(np.float32)
    assert model(np.ones((1, 2)))[0].dtype == np.float32


def test_astype_converts_optimizer_state(rng: np.random.Generator) -> None:
    x, y = blobs(rng, n=32)
    model = small_model()
    model.fit(x, y, epochs=1, verbose=0)
    model.astype("float64")
    assert model.optimizer is not None
    buffers = [s["momentum_buffer"] for s in model.optimizer.state]
    assert all(b.dtype == np.float64 for b in buffers)
    model.fit(x, y, epochs=1, verbose=0)
    assert all(p.data.dtype == np.float64 for p in model.parameters())


def test_progress_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("auto", epochs=2, steps=3, stream=stream)
    for epoch in (1, 2):
        progress.epoch_begin(epoch)
        for _ in range(3):
            progress.batch_end({"loss": 0.5, "accuracy": 0.9})
        progress.epoch_end(epoch, 1.25, {"loss": 0.5, "accuracy": 0.9})
    lines = stream.getvalue().splitlines()
    assert lines == [
        "epoch 1/2  loss 0.5000  accuracy 0.9000  (1.2 s)",
        "epoch 2/2  loss 0.5000  accuracy 0.9000  (1.2 s)",
    ]


def test_verbose_zero_prints_nothing(
    rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = blobs(rng, n=40)
    small_model().fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")
    small_model().fit(x, y, epochs=2, verbose=2)
    assert capsys.readouterr().out.count("epoch ") == 2


def test_divergence_stops_with_a_clear_error(rng: np.random.Generator) -> None:
    x, y = blobs(rng, n=64)
    model = Sequential([Dense(1)], seed=0).compile(MSE(), SGD(1e3))
    with (
        pytest.raises(
            FloatingPointError, match=r"diverged: the loss is .* at epoch \d+, step \d+"
        ),
        np.errstate(over="ignore", invalid="ignore"),
    ):
        model.fit(x * 1e3, y[:, None].astype(np.float32), epochs=3, verbose=0)


def test_bad_inputs_give_clear_errors(rng: np.random.Generator) -> None:
    x, y = blobs(rng, n=20)
    model = small_model()
    with pytest.raises(TypeError, match="list of layers"):
        Sequential(Dense(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 is not a Layer"):
        Sequential([Dense(3), "relu"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([])
    with pytest.raises(
        ValueError, match=r"layer 1: Dense\(units=3\) expected .*Flatten"
    ):
        Sequential([Sigmoid(), Dense(3)], input_shape=(2, 2))
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([Dense(3)]).fit(x, y)
    with pytest.raises(RuntimeError, match="optimizer"):
        Sequential([Dense(3)]).compile(CrossEntropy()).fit(x, y)
    with pytest.raises(ValueError, match=r"remove the final Softmax\(\) layer"):
        Sequential([Dense(3), Softmax()]).compile(CrossEntropy(), SGD(0.1))
    with pytest.raises(ValueError, match=r"remove the final Sigmoid\(\) layer"):
        Sequential([Dense(3), Sigmoid()]).compile(BinaryCrossEntropy(), SGD(0.1))
    with pytest.raises(TypeError, match="Loss"):
        small_model().compile("mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows but x has"):
        model.fit(x, y[:-1], verbose=0)
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(
        ValueError, match=r"expected input of shape \(N, 4\), got \(20, 5\)"
    ):
        model.predict(np.zeros((20, 5)))
    with pytest.raises(ValueError, match=r"labels in \[0, 2\], got values from 7 to 7"):
        model.fit(x, np.full(20, 7), verbose=0)
    with pytest.raises(TypeError, match="integers or floats"):
        model.predict(np.array([["a"]]))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="non-empty"):
        model.predict(np.zeros((0, 4)))
    for bad in ({"epochs": 0}, {"batch_size": -1}, {"epochs": 1.5}):
        with pytest.raises(ValueError, match="positive integer"):
            model.fit(x, y, verbose=0, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="verbose must be"):
        model.fit(x, y, verbose=3)
    with pytest.raises(RuntimeError, match="training=False"):
        model(x, training=False)[1](np.zeros((20, 3)))


class Recorder(Identity):
    """Identity that records the ids (first feature) it sees in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float] = []

    def forward(self, x, training):  # type: ignore[no-untyped-def]
        if training:
            self.seen.extend(x[:, 0].tolist())
        return super().forward(x, training)


def test_validation_rows_are_held_out_of_training(rng: np.random.Generator) -> None:
    n = 60
    x = np.concatenate([np.arange(n)[:, None], rng.standard_normal((n, 3))], axis=1)
    y = rng.integers(0, 3, n)
    recorder = Recorder()
    model = Sequential([recorder, Dense(3)], seed=0).compile(CrossEntropy(), SGD(0.01))
    model.fit(
        x.astype(np.float32), y, epochs=2, batch_size=7, validation_split=0.25, seed=3
    )
    trained = set(recorder.seen)
    assert len(recorder.seen) == 2 * 45  # every training row once per epoch
    assert len(trained) == 45  # 15 rows never reached a training step
    recorder.seen.clear()
    model.fit(x.astype(np.float32), y, epochs=1, validation_split=0.25, seed=3)
    assert set(recorder.seen) == trained  # the same seed holds out the same rows


def test_sum_reduction_history_matches_evaluate(rng: np.random.Generator) -> None:
    x, y = blobs(rng, n=20)
    model = Sequential([Dense(3)], seed=0).compile(
        CrossEntropy(reduction="sum"), SGD(0.0)
    )
    history = model.fit(x, y, epochs=1, batch_size=5, shuffle=False, verbose=0)
    assert history["loss"][0] == pytest.approx(model.evaluate(x, y)["loss"], rel=1e-5)


def test_regression_outputs_of_any_shape_report_loss_only(
    rng: np.random.Generator,
) -> None:
    x = rng.standard_normal((16, 2, 3)).astype(np.float32)
    model = Sequential([Rescaling(2.0)], input_shape=(2, 3)).compile(MSE(), SGD(0.1))
    history = model.fit(x, 2 * x, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "lr"}
    assert model.evaluate(x, 2 * x) == {"loss": 0.0}


def test_a_layer_cannot_be_rebuilt_for_another_shape() -> None:
    dense = Dense(3)
    Sequential([dense], input_shape=(4,), seed=0)
    weights = dense.W.data.copy() if dense.W is not None else None
    shared = Sequential([dense], input_shape=(4,))  # same shape: weights shared
    np.testing.assert_array_equal(shared.parameters()[0].data, weights)
    with pytest.raises(ValueError, match="already built for input shape"):
        Sequential([dense], input_shape=(5,))


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress("auto", epochs=1, steps=40, stream=stream)
    progress.epoch_begin(1)
    for _ in range(40):
        progress.batch_end({"loss": 0.25, "accuracy": 0.5})
    progress.epoch_end(1, 0.1, {"loss": 0.25, "accuracy": 0.5})
    out = stream.getvalue()
    assert "epoch 1/1" in out and "100%" in out and "40/40" in out
    assert "loss=0.2500 acc=0.5000" in out
    assert "\n" in out and "(0.1 s)" not in out  # a bar, not the plain line

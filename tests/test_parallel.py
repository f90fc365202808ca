"""``chainrule.parallel.map_chunks``: chunks side by side, one BLAS thread each."""

from __future__ import annotations

import multiprocessing
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from support import FakeControl

from chainrule import blas, parallel
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
from chainrule.layers import conv as conv_module
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.model import sequential as sequential_module
from chainrule.optim import SGD


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeControl]:
    control = FakeControl(threads=2)
    monkeypatch.setattr(blas, "_control", control)
    yield control


def test_results_in_the_order_of_the_chunks(fake: FakeControl) -> None:
    chunks = list(range(20))

    def slow_first(i: int) -> int:
        time.sleep(0.01 if i == 0 else 0)  # the first chunk finishes last
        return i * i

    assert parallel.map_chunks(slow_first, chunks) == [i * i for i in chunks]


def test_chunks_run_side_by_side_on_one_blas_thread(fake: FakeControl) -> None:
    barrier = threading.Barrier(2, timeout=10)  # passes only if two run at once
    seen: list[tuple[str, int]] = []

    def work(i: int) -> int:
        barrier.wait()
        seen.append((threading.current_thread().name, fake.get()))
        return i

    assert parallel.workers() == 2
    assert parallel.map_chunks(work, [0, 1]) == [0, 1]
    assert {name for name, _ in seen} != {threading.current_thread().name}
    assert [threads for _, threads in seen] == [1, 1]
    assert fake.calls == [1, 2] and fake.threads == 2  # the count given back


def test_an_exception_reaches_the_caller_after_every_chunk_ended(
    fake: FakeControl,
) -> None:
    ended: list[int] = []

    def work(i: int) -> int:
        if i in (0, 3):
            raise ValueError(f"chunk {i} failed")
        time.sleep(0.05)  # still running when chunk 0 fails
        ended.append(i)
        return i

    with pytest.raises(ValueError, match="chunk 0 failed"):  # the earliest chunk
        parallel.map_chunks(work, range(6))
    assert sorted(ended) == [1, 2, 4, 5]
    assert fake.threads == 2  # given back only after all of them


def run_with_timeout(fn: Any, seconds: float = 30) -> Any:
    """``fn()`` in a daemon thread: a hang fails the test instead of the run."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return out[0]


def test_map_chunks_inside_a_chunk_is_a_plain_loop(
    monkeypatch: pytest.MonkeyPatch, fake: FakeControl
) -> None:
    monkeypatch.setattr(parallel, "_pools", {})  # a hang must not keep the pool
    inner_names: list[str] = []

    def inner(i: int) -> int:
        inner_names.append(threading.current_thread().name)
        return i

    def outer(i: int) -> int:
        return sum(parallel.map_chunks(inner, [i, i, i]))

    assert run_with_timeout(lambda: parallel.map_chunks(outer, [1, 2])) == [3, 6]
    assert all(name.startswith("chainrule") for name in inner_names)


def test_a_plain_loop_when_no_thread_can_start(
    monkeypatch: pytest.MonkeyPatch, fake: FakeControl
) -> None:
    class ShutDown:
        def submit(self, *args: Any) -> Any:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(parallel, "_pool", lambda size: ShutDown())
    assert parallel.map_chunks(lambda i: i * 2, [1, 2, 3]) == [2, 4, 6]
    assert fake.threads == 2


@pytest.mark.parametrize("case", ["one BLAS thread", "no thread control", "CuPy"])
def test_a_plain_loop_where_chunks_cannot_share_the_cores(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    if case == "one BLAS thread":
        monkeypatch.setattr(blas, "_control", FakeControl(threads=1))
    elif case == "no thread control":
        monkeypatch.setattr(blas, "single_thread_available", lambda: False)
    else:
        monkeypatch.setattr(parallel.backend, "backend_name", lambda: "cupy")
    names: list[str] = []

    def work(i: int) -> int:
        names.append(threading.current_thread().name)
        return -i

    assert parallel.workers() == 1
    assert parallel.map_chunks(work, range(4)) == [0, -1, -2, -3]
    assert set(names) == {threading.current_thread().name}


def test_one_chunk_runs_in_the_calling_thread(fake: FakeControl) -> None:
    names: list[str] = []
    parallel.map_chunks(lambda i: names.append(threading.current_thread().name), [0])
    assert names == [threading.current_thread().name]
    assert fake.calls == []  # the BLAS keeps its threads for the one chunk


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_inference_side_by_side_equals_one_chunk_after_another(
    monkeypatch: pytest.MonkeyPatch, fake: FakeControl, dtype: Any, use_bias: bool
) -> None:
    rng = np.random.default_rng(3)
    layer = Conv2D(5, 3, padding="same", use_bias=use_bias, bias_init="normal")
    layer.build((2, 9, 8), rng)
    for param in layer.parameters():
        param.data = param.data.astype(dtype)
    x = rng.standard_normal((11, 2, 9, 8)).astype(dtype)
    per_sample = 2 * 3 * 3 * 9 * 8 * np.dtype(dtype).itemsize
    monkeypatch.setattr(Conv2D, "inference_column_bytes", 3 * per_sample)
    used: list[int] = []
    real = parallel.map_chunks

    def spy(fn: Any, chunks: Any) -> Any:
        used.append(len(chunks))
        return real(fn, chunks)

    monkeypatch.setattr(conv_module, "map_chunks", spy)
    side_by_side, _ = layer.forward(x, False)
    assert used == [4]  # 11 images in chunks of 3
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    in_turn, _ = layer.forward(x, False)
    np.testing.assert_array_equal(side_by_side, in_turn)  # each chunk as alone
    assert side_by_side.dtype == dtype


def test_a_forked_child_gets_pools_of_its_own(fake: FakeControl) -> None:
    """The parent's pool threads do not exist after fork: no hang in the child."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    parallel.map_chunks(lambda i: i, [0, 1])  # the parent has a pool now

    def child() -> None:
        ok = parallel.map_chunks(lambda i: i + 1, [0, 1, 2]) == [1, 2, 3]
        raise SystemExit(0 if ok else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    with warnings.catch_warnings():  # Python 3.12+ warns of fork with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()
    process.join(timeout=60)
    alive = process.is_alive()
    if alive:
        process.kill()
    assert not alive and process.exitcode == 0


def wide_cnn() -> Sequential:
    """64 feature maps of 8x8: 4,096 numbers a sample, the split's threshold."""
    layers = [
        Rescaling(1 / 255),
        Reshape((1, 8, 8)),
        Conv2D(64, 3, padding="same"),
        BatchNorm(),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(5),
    ]
    return Sequential(layers, input_shape=(8, 8), seed=0).compile(
        CrossEntropy(), SGD(0.1)
    )


def spy_on_split(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pieces per ``map_chunks`` call made by ``Sequential``."""
    calls: list[int] = []
    real = parallel.map_chunks

    def spy(fn: Any, chunks: Any) -> Any:
        calls.append(len(chunks))
        return real(fn, chunks)

    monkeypatch.setattr(sequential_module, "map_chunks", spy)
    return calls


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_inference_splits_a_wide_network_across_the_cores(
    monkeypatch: pytest.MonkeyPatch, fake: FakeControl, dtype: Any
) -> None:
    rng = np.random.default_rng(5)
    model = wide_cnn()
    x = rng.integers(0, 256, size=(13, 8, 8)).astype(dtype)
    y = rng.integers(0, 5, size=13)
    before = x.copy()
    calls = spy_on_split(monkeypatch)
    split = model.predict_logits(x, batch_size=5)
    split_scores = model.evaluate(x, y, batch_size=5)
    assert calls == [2, 2, 2] * 2  # batches of 5, 5 and 3, each in 2 pieces
    np.testing.assert_array_equal(x, before)  # the caller's array untouched
    monkeypatch.setattr(sequential_module, "workers", lambda: 1)
    whole = model.predict_logits(x, batch_size=5)
    # the same per-sample arithmetic; products of other sizes round alike
    np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-6)
    assert model.evaluate(x, y, batch_size=5) == pytest.approx(split_scores)


def test_inference_keeps_a_narrow_network_whole(
    monkeypatch: pytest.MonkeyPatch, fake: FakeControl
) -> None:
    model = Sequential(
        [Rescaling(1 / 255), Flatten(), Dense(64), ReLU(), Dense(5)],
        input_shape=(8, 8),
        seed=0,
    )
    calls = spy_on_split(monkeypatch)
    model.predict_logits(np.zeros((13, 8, 8), dtype=np.uint8), batch_size=5)
    assert calls == []

"""``chainrule.parallel.map_chunks``: chunks side by side, one BLAS thread each."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from chainrule import blas, parallel
from chainrule.layers import Conv2D
from chainrule.layers import conv as conv_module


class FakeControl:
    """OpenBLAS's thread control, as in ``test_blas``."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.calls: list[int] = []

    def get(self) -> int:
        return self.threads

    def set(self, n: int) -> None:
        self.calls.append(n)
        self.threads = n


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


def test_an_exception_in_a_chunk_reaches_the_caller(fake: FakeControl) -> None:
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("chunk 3 failed")
        return i

    with pytest.raises(ValueError, match="chunk 3 failed"):
        parallel.map_chunks(work, range(6))
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_inference_side_by_side_equals_one_chunk_after_another(
    monkeypatch: pytest.MonkeyPatch, fake: FakeControl, dtype: Any
) -> None:
    rng = np.random.default_rng(3)
    layer = Conv2D(5, 3, padding="same", bias_init="normal")
    layer.build((2, 9, 8), rng)
    layer.W.data = layer.W.data.astype(dtype)  # type: ignore[union-attr]
    layer.b.data = layer.b.data.astype(dtype)  # type: ignore[union-attr]
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
    multiprocessing = pytest.importorskip("multiprocessing")
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    parallel.map_chunks(lambda i: i, [0, 1])  # the parent has a pool now

    def child() -> None:
        ok = parallel.map_chunks(lambda i: i + 1, [0, 1, 2]) == [1, 2, 3]
        raise SystemExit(0 if ok else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=60)
    alive = process.is_alive()
    if alive:
        process.kill()
    assert not alive and process.exitcode == 0

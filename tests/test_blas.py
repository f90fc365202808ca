"""``chainrule.blas.matmul``: the product of ``@``, small ones on one BLAS thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from support import FakeControl

from chainrule import blas

SMALL = (32, 784, 64)  # the tutorial's first layer at batch 32: 1.6M multiply-adds
LARGE = (128, 800, 800)  # the 800-unit MLP's hidden layer: 82M


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeControl]:
    control = FakeControl(threads=4)
    monkeypatch.setattr(blas, "_control", control)
    yield control


def assert_same_product(out: Any, expected: Any) -> None:
    # equal up to rounding: one thread and two add the K products in other orders
    rtol = 1e-5 if out.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol * 10)


def operands(m: int, k: int, n: int, dtype: Any = np.float32) -> tuple[Any, Any]:
    rng = np.random.default_rng(m + k + n)
    return (
        rng.standard_normal((m, k)).astype(dtype),
        rng.standard_normal((k, n)).astype(dtype),
    )


@pytest.mark.parametrize("shape", [SMALL, LARGE, (1, 1, 1), (5, 3, 0), (0, 4, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_the_operator(shape: tuple[int, int, int], dtype: Any) -> None:
    a, b = operands(*shape, dtype=dtype)
    out = blas.matmul(a, b)
    assert out.dtype == dtype and out.shape == (shape[0], shape[2])
    assert_same_product(out, a @ b)


def test_transposed_views_as_the_dense_layer_passes_them() -> None:
    x, w = operands(*SMALL)
    dy = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)
    assert_same_product(blas.matmul(x.T, dy), x.T @ dy)
    assert_same_product(blas.matmul(dy, w.T), dy @ w.T)


def test_small_product_runs_on_one_thread_then_gives_the_count_back(
    fake: FakeControl,
) -> None:
    blas.matmul(*operands(*SMALL))
    assert fake.calls == [1, 4]
    assert fake.threads == 4


def test_large_product_keeps_every_thread(fake: FakeControl) -> None:
    blas.matmul(*operands(*LARGE))
    assert fake.calls == []


def test_threshold_is_on_multiply_adds(fake: FakeControl) -> None:
    below = (1, blas.SMALL_PRODUCT - 1, 1)
    blas.matmul(np.ones(below[:2], np.float32), np.ones(below[1:], np.float32))
    assert fake.calls == [1, 4]
    fake.calls.clear()
    at = (1, blas.SMALL_PRODUCT, 1)
    blas.matmul(np.ones(at[:2], np.float32), np.ones(at[1:], np.float32))
    assert fake.calls == []


def test_one_thread_already_means_no_change(fake: FakeControl) -> None:
    fake.threads = 1
    blas.matmul(*operands(*SMALL))
    assert fake.calls == []


def test_without_thread_control_it_is_the_plain_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control = blas._ThreadControl.__new__(blas._ThreadControl)
    control.get = control.set = None
    monkeypatch.setattr(blas, "_control", control)
    a, b = operands(*SMALL)
    assert_same_product(blas.matmul(a, b), a @ b)
    assert not blas.single_thread_available()


def test_error_of_mismatched_shapes_is_numpys(fake: FakeControl) -> None:
    with pytest.raises(ValueError, match="matmul"):
        blas.matmul(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
    assert fake.threads == 4  # given back even when the product fails


def test_concurrent_calls_give_the_count_back(fake: FakeControl) -> None:
    small, large = operands(*SMALL), operands(*LARGE)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(20):
                a, b = small if (i + j) % 3 else large
                assert_same_product(blas.matmul(a, b), a @ b)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fake.threads == 4
    assert fake.calls and set(fake.calls) <= {1, 4}
    assert blas._running == 0


def test_real_openblas_count_is_unchanged_after_products() -> None:
    if not blas.single_thread_available():
        pytest.skip("NumPy here does not use OpenBLAS")
    control = blas._thread_control()
    before = control.get()
    blas.matmul(*operands(*SMALL))
    blas.matmul(*operands(*LARGE))
    assert control.get() == before


def test_real_openblas_runs_a_small_product_on_one_thread() -> None:
    if not blas.single_thread_available():
        pytest.skip("NumPy here does not use OpenBLAS")
    control = blas._thread_control()
    seen: list[int] = []

    class Probe(np.ndarray):  # reports the BLAS thread count inside ``@``
        def __matmul__(self, other: Any) -> Any:
            seen.append(control.get())
            return np.asarray(self) @ other

    before = control.get()
    control.set(2)
    try:
        a, b = operands(*SMALL)
        blas.matmul(a.view(Probe), b)
        blas.matmul(operands(*LARGE)[0].view(Probe), operands(*LARGE)[1])
        assert seen == [1, 2]
        assert control.get() == 2
    finally:
        control.set(before)

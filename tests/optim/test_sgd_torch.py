"""SGD against ``torch.optim.SGD`` (dampening 0), and its argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from support import step_with_torch

from chainrule.optim import SGD
from chainrule.parameter import Parameter

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
TOL: dict[Any, dict[str, float]] = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-14},
}

HYPERPARAMETERS = {
    "plain": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.9},
    "nesterov": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "weight_decay": {"lr": 0.1, "weight_decay": 1e-2},
    "weight_decay_momentum": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2},
    "weight_decay_nesterov": {
        "lr": 0.05,
        "momentum": 0.5,
        "nesterov": True,
        "weight_decay": 1e-2,
    },
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "hyper", list(HYPERPARAMETERS.values()), ids=list(HYPERPARAMETERS)
)
def test_sgd_matches_torch(dtype: Any, seed: int, hyper: dict[str, Any]) -> None:
    step_with_torch(
        lambda: SGD(**hyper),
        lambda tparams, opt: torch.optim.SGD(
            tparams, dampening=0, foreach=False, **hyper
        ),
        dtype,
        seed,
        tol=TOL[dtype],
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_updates_in_place_and_leaves_grad_alone(dtype: Any) -> None:
    """Layers keep references to ``data``; the update must not replace it."""
    rng = np.random.default_rng(3)
    p = Parameter(rng.standard_normal((3, 2)).astype(dtype))
    data = p.data
    p.grad[...] = rng.standard_normal((3, 2))
    grad = p.grad.copy()
    SGD(lr=0.1, momentum=0.9, weight_decay=1e-2).step([p])
    assert p.data is data
    np.testing.assert_array_equal(p.grad, grad)


# ------------------------------------------------------------- argument checks
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -0.1}, ValueError, r"SGD: invalid learning rate -0\.1"),
        ({"lr": float("nan")}, ValueError, "SGD: invalid learning rate nan"),
        ({"lr": float("inf")}, ValueError, "SGD: invalid learning rate inf"),
        ({"lr": "0.1"}, TypeError, "SGD: learning rate must be a number"),
        ({"lr": True}, TypeError, "SGD: learning rate must be a number"),
        ({"lr": 0.1, "momentum": -0.5}, ValueError, r"SGD: invalid momentum -0\.5"),
        ({"lr": 0.1, "momentum": float("nan")}, ValueError, "SGD: invalid momentum"),
        ({"lr": 0.1, "weight_decay": -1e-4}, ValueError, "SGD: invalid weight_decay"),
        ({"lr": 0.1, "nesterov": True}, ValueError, "nesterov=True needs momentum"),
        (
            {"lr": 0.1, "momentum": 0.9, "nesterov": 1},
            TypeError,
            "SGD: nesterov must be True or False, got 1",
        ),
        (
            {"lr": 0.1, "momentum": 0.9, "nesterov": "yes"},
            TypeError,
            "SGD: nesterov must be True or False",
        ),
    ],
)
def test_sgd_rejects_bad_hyperparameters(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        SGD(**kwargs)


def test_sgd_accepts_boundary_values() -> None:
    opt = SGD(lr=0, momentum=0, weight_decay=0)
    assert (opt.lr, opt.momentum, opt.weight_decay, opt.nesterov) == (0, 0, 0, False)


@pytest.mark.parametrize(("first", "then"), [(2, 3), (3, 2), (2, 1)])
def test_sgd_stepped_with_other_parameter_count_raises(first: int, then: int) -> None:
    params = [Parameter(np.zeros((2,), np.float32)) for _ in range(max(first, then))]
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(params[:first])
    with pytest.raises(
        ValueError,
        match=f"stepped with {first} parameters before, now with {then}",
    ):
        opt.step(params[:then])
    assert opt.iterations == 1

"""RMSprop against ``torch.optim.RMSprop``, and its argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from support import OPTIMIZER_SHAPES, second_step_peak_bytes, step_with_torch

from chainrule.config import describe
from chainrule.optim import RMSprop, optimizer_from_config
from chainrule.parameter import Parameter

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
SHAPES = OPTIMIZER_SHAPES

HYPERPARAMETERS = {
    "defaults": {},
    "small_lr": {"lr": 1e-3},
    "alpha_low": {"lr": 1e-3, "alpha": 0.3},
    "alpha_zero": {"lr": 1e-3, "alpha": 0.0, "eps": 1e-3},
    "momentum": {"lr": 1e-3, "momentum": 0.9},
    "centered": {"lr": 1e-3, "centered": True},
    "weight_decay": {"lr": 1e-3, "weight_decay": 0.1},
    "centered_momentum_decay": {
        "lr": 1e-3,
        "alpha": 0.9,
        "momentum": 0.5,
        "centered": True,
        "weight_decay": 0.05,
    },
    "eps_large": {"lr": 0.01, "eps": 0.1, "momentum": 0.3},
}


def run_against_torch(
    hyper: dict[str, Any],
    dtype: Any,
    seed: int,
    lr_changes: dict[int, float] | None = None,
) -> float:
    """Step both with the same gradients; return the largest error seen."""
    return step_with_torch(
        lambda: RMSprop(**hyper),
        lambda tparams, opt: torch.optim.RMSprop(tparams, foreach=False, **hyper),
        dtype,
        seed,
        lr_changes,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "hyper", list(HYPERPARAMETERS.values()), ids=list(HYPERPARAMETERS)
)
def test_rmsprop_matches_torch(hyper: dict[str, Any], dtype: Any, seed: int) -> None:
    run_against_torch(hyper, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "hyper",
    [{"lr": 1e-3}, {"lr": 1e-3, "momentum": 0.9, "centered": True}],
    ids=["plain", "centered_momentum"],
)
def test_rmsprop_follows_lr_changed_between_steps(
    hyper: dict[str, Any], dtype: Any
) -> None:
    """As a schedule sets ``optimizer.lr``: torch's ``param_groups[0]["lr"]``."""
    run_against_torch(hyper, dtype, 2, lr_changes={5: 3e-4, 12: 0.0, 15: 2e-3})


@pytest.mark.parametrize(
    ("hyper", "keys"),
    [
        ({}, ["square_avg"]),
        ({"momentum": 0.9}, ["momentum_buffer", "square_avg"]),
        ({"centered": True}, ["grad_avg", "square_avg"]),
        (
            {"centered": True, "momentum": 0.9},
            ["grad_avg", "momentum_buffer", "square_avg"],
        ),
    ],
)
def test_rmsprop_updates_in_place_and_keeps_only_the_state_it_uses(
    hyper: dict[str, Any], keys: list[str]
) -> None:
    rng = np.random.default_rng(3)
    params = [Parameter(rng.standard_normal(s)) for s in SHAPES]
    data = [p.data for p in params]
    opt = RMSprop(weight_decay=0.1, **hyper)
    for _ in range(2):
        grads = []
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
            grads.append(p.grad.copy())
        opt.step(params)
        for p, d, g in zip(params, data, grads, strict=True):
            assert p.data is d
            np.testing.assert_array_equal(p.grad, g)
    assert [sorted(s) for s in opt.state] == [keys] * len(SHAPES)


@pytest.mark.parametrize(
    "hyper",
    [{}, {"weight_decay": 0.1}, {"momentum": 0.9, "centered": True}],
    ids=["plain", "weight_decay", "centered_momentum"],
)
def test_rmsprop_step_allocates_no_parameter_sized_temporaries(
    hyper: dict[str, Any],
) -> None:
    params = [Parameter(np.ones((100, 250), np.float32)) for _ in range(2)]
    assert (
        second_step_peak_bytes(RMSprop(**hyper), params) < params[0].data.nbytes // 10
    )


# ------------------------------------------------------------- argument checks
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -0.1}, ValueError, r"invalid learning rate -0\.1"),
        ({"lr": float("inf")}, ValueError, "invalid learning rate inf"),
        ({"alpha": 1.0}, ValueError, r"invalid alpha 1\.0 \(must be < 1\)"),
        ({"alpha": -0.1}, ValueError, r"invalid alpha -0\.1 \(must be >= 0\)"),
        ({"eps": 0.0}, ValueError, r"invalid eps 0\.0 \(must be > 0\)"),
        ({"momentum": -0.5}, ValueError, r"invalid momentum -0\.5"),
        ({"centered": 1}, TypeError, "centered must be True or False, got 1"),
        ({"weight_decay": -1e-4}, ValueError, "invalid weight_decay"),
        ({"clip_norm": -1.0}, ValueError, r"invalid clip_norm -1\.0"),
        ({"clip_norm": "1"}, TypeError, "clip_norm must be a number"),
    ],
)
def test_rmsprop_rejects_bad_hyperparameters(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=f"RMSprop: {match}"):
        RMSprop(**kwargs)


@pytest.mark.parametrize(
    ("opt", "text"),
    [
        (RMSprop(), "RMSprop()"),
        (
            RMSprop(lr=1e-3, momentum=0.9, centered=True),
            "RMSprop(lr=0.001, momentum=0.9, centered=True)",
        ),
    ],
)
def test_rmsprop_repr_and_config_round_trip(opt: RMSprop, text: str) -> None:
    assert repr(opt) == text
    rebuilt = optimizer_from_config(describe(opt))
    assert isinstance(rebuilt, RMSprop)
    assert rebuilt.get_config() == opt.get_config()

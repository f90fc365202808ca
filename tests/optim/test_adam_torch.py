"""Adam and AdamW against ``torch.optim.Adam``/``AdamW``, and their argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from support import OPTIMIZER_SHAPES, second_step_peak_bytes, step_with_torch

from chainrule.config import describe
from chainrule.optim import Adam, AdamW, optimizer_from_config
from chainrule.parameter import Parameter

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
SHAPES = OPTIMIZER_SHAPES

ADAM = {
    "defaults": {},
    "lr": {"lr": 0.01},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "betas_low": {"lr": 0.01, "beta1": 0.3, "beta2": 0.5},
    "beta1_zero": {"lr": 0.01, "beta1": 0.0, "beta2": 0.9},
    "beta1_half": {"lr": 0.01, "beta1": 0.5, "beta2": 0.99},
    "eps_large": {"lr": 0.05, "eps": 1e-2, "weight_decay": 1e-3},
}
ADAMW = {
    "defaults": {},
    "lr": {"lr": 0.01},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.3},
    "no_weight_decay": {"lr": 0.01, "weight_decay": 0.0},
    "betas_low": {"lr": 0.01, "beta1": 0.3, "beta2": 0.5, "weight_decay": 0.05},
}
CASES = [(Adam, torch.optim.Adam, name, h) for name, h in ADAM.items()] + [
    (AdamW, torch.optim.AdamW, name, h) for name, h in ADAMW.items()
]


def torch_kwargs(hyper: dict[str, Any], default: Any) -> dict[str, Any]:
    """chainrule's ``beta1``/``beta2`` as torch's ``betas``."""
    kwargs = {k: v for k, v in hyper.items() if k not in ("beta1", "beta2")}
    kwargs["betas"] = (hyper.get("beta1", 0.9), hyper.get("beta2", 0.999))
    kwargs.setdefault("weight_decay", default)
    return kwargs


def run_against_torch(
    cls: Any,
    torch_cls: Any,
    hyper: dict[str, Any],
    dtype: Any,
    seed: int,
    lr_changes: dict[int, float] | None = None,
) -> float:
    """Step both with the same gradients; return the largest error seen."""
    return step_with_torch(
        lambda: cls(**hyper),
        lambda tparams, opt: torch_cls(
            tparams, foreach=False, **torch_kwargs(hyper, opt.weight_decay)
        ),
        dtype,
        seed,
        lr_changes,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("cls", "torch_cls", "hyper"),
    [c[:2] + c[3:] for c in CASES],
    ids=[f"{c[0].__name__}-{c[2]}" for c in CASES],
)
def test_adam_matches_torch(
    cls: Any, torch_cls: Any, hyper: dict[str, Any], dtype: Any, seed: int
) -> None:
    run_against_torch(cls, torch_cls, hyper, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("cls", "torch_cls", "hyper"),
    [
        (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
        (AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    ],
    ids=["Adam", "AdamW"],
)
def test_adam_follows_lr_changed_between_steps(
    cls: Any, torch_cls: Any, hyper: dict[str, Any], dtype: Any
) -> None:
    """As a schedule sets ``optimizer.lr``: torch's ``param_groups[0]["lr"]``."""
    run_against_torch(
        cls, torch_cls, hyper, dtype, 2, lr_changes={5: 0.003, 12: 0.0, 15: 0.02}
    )


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_updates_in_place_and_keeps_only_its_state(cls: Any) -> None:
    rng = np.random.default_rng(3)
    params = [Parameter(rng.standard_normal(s)) for s in SHAPES]
    data = [p.data for p in params]
    opt = cls(lr=0.01, weight_decay=0.1)
    for _ in range(2):
        grads = []
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
            grads.append(p.grad.copy())
        opt.step(params)
        for p, d, g in zip(params, data, grads, strict=True):
            assert p.data is d
            np.testing.assert_array_equal(p.grad, g)
    assert [sorted(s) for s in opt.state] == [["exp_avg", "exp_avg_sq"]] * len(SHAPES)


@pytest.mark.parametrize("hyper", [{}, {"weight_decay": 0.1}])
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_step_allocates_no_parameter_sized_temporaries(
    cls: Any, hyper: dict[str, Any]
) -> None:
    params = [Parameter(np.ones((100, 250), np.float32)) for _ in range(2)]
    peak = second_step_peak_bytes(cls(**hyper), params)
    assert peak < params[0].data.nbytes // 10


# ------------------------------------------------------------- argument checks
@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -0.1}, ValueError, r"invalid learning rate -0\.1"),
        ({"lr": float("nan")}, ValueError, "invalid learning rate nan"),
        ({"lr": "0.1"}, TypeError, "learning rate must be a number"),
        ({"beta1": 1.0}, ValueError, r"invalid beta1 1\.0 \(must be < 1\)"),
        ({"beta1": -0.1}, ValueError, r"invalid beta1 -0\.1 \(must be >= 0\)"),
        ({"beta2": 1.5}, ValueError, r"invalid beta2 1\.5 \(must be < 1\)"),
        ({"beta2": -0.5}, ValueError, r"invalid beta2 -0\.5"),
        ({"beta2": True}, TypeError, "beta2 must be a number"),
        ({"eps": 0.0}, ValueError, r"invalid eps 0\.0 \(must be > 0\)"),
        ({"eps": -1e-8}, ValueError, "invalid eps"),
        ({"weight_decay": -1e-4}, ValueError, "invalid weight_decay"),
        ({"weight_decay": float("inf")}, ValueError, "invalid weight_decay inf"),
        ({"clip_norm": 0}, ValueError, r"invalid clip_norm 0\.0 \(must be > 0\)"),
    ],
)
def test_adam_rejects_bad_hyperparameters(
    cls: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=f"{cls.__name__}: {match}"):
        cls(**kwargs)


def test_adam_accepts_boundary_values() -> None:
    opt = Adam(lr=0, beta1=0, beta2=0, eps=1e-30, weight_decay=0)
    assert (opt.lr, opt.beta1, opt.beta2, opt.weight_decay) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("opt", "text"),
    [
        (Adam(), "Adam()"),
        (Adam(lr=0.01, beta2=0.99), "Adam(lr=0.01, beta2=0.99)"),
        (AdamW(), "AdamW()"),
        (AdamW(weight_decay=0.0, clip_norm=1.0), "AdamW(weight_decay=0, clip_norm=1)"),
    ],
)
def test_adam_repr_and_config_round_trip(opt: Any, text: str) -> None:
    assert repr(opt) == text
    rebuilt = optimizer_from_config(describe(opt))
    assert type(rebuilt) is type(opt)
    assert rebuilt.get_config() == opt.get_config()

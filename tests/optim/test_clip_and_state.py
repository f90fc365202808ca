"""Gradient clipping against torch, optimizer state dicts and model-file round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import backend
from chainrule.io import load_model, save_model
from chainrule.layers import Dense, ReLU
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.optim import (
    SGD,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    clip_grad_norm,
)
from chainrule.parameter import Parameter

torch.set_num_threads(1)

DTYPES = [np.float32, np.float64]
TOL: dict[Any, dict[str, float]] = {
    np.float32: {"rtol": 1e-5, "atol": 1e-6},
    np.float64: {"rtol": 1e-12, "atol": 1e-13},
}
SHAPES = [(4, 3), (3,), (2, 2, 2)]
STEPS = 20

# every kind of state each optimizer keeps
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd_momentum": lambda **kw: SGD(0.05, momentum=0.9, weight_decay=1e-2, **kw),
    "adam": lambda **kw: Adam(0.01, weight_decay=1e-2, **kw),
    "adamw": lambda **kw: AdamW(0.01, beta2=0.99, **kw),
    "rmsprop": lambda **kw: RMSprop(
        1e-3, momentum=0.9, centered=True, weight_decay=1e-2, **kw
    ),
}


def make_params(rng: np.random.Generator, dtype: Any = np.float64) -> list[Parameter]:
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def set_grads(params: list[Parameter], rng: np.random.Generator, scale: float) -> None:
    for p in params:
        p.grad[...] = scale * rng.standard_normal(p.shape)


# -------------------------------------------------------------------- clipping
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("make", "make_torch"),
    [
        (
            lambda: SGD(0.05, momentum=0.9, clip_norm=1.0),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=False),
        ),
        (
            lambda: Adam(0.01, weight_decay=0.1, clip_norm=0.5),
            lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1, foreach=False),
        ),
    ],
    ids=["SGD", "Adam"],
)
def test_clip_norm_matches_torch_clip_grad_norm(
    make: Callable[[], Optimizer], make_torch: Callable[[Any], Any], dtype: Any
) -> None:
    rng = np.random.default_rng(0)
    initial = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    params = [Parameter(w.copy()) for w in initial]
    tparams = [torch.nn.Parameter(torch.tensor(w)) for w in initial]
    opt, topt = make(), make_torch(tparams)
    assert opt.clip_norm is not None
    for i in range(STEPS):
        scale = 0.01 if i % 4 == 3 else 3.0  # some steps stay under the norm
        for p, tp in zip(params, tparams, strict=True):
            g = (scale * rng.standard_normal(p.shape)).astype(dtype)
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tparams, opt.clip_norm, foreach=False)
        opt.step(params)
        topt.step()
        for p, tp in zip(params, tparams, strict=True):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), **TOL[dtype])
            np.testing.assert_allclose(p.data, tp.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_returns_the_norm_as_torch(dtype: Any) -> None:
    rng = np.random.default_rng(1)
    params = make_params(rng, dtype)
    set_grads(params, rng, 2.0)
    tgrads = [torch.tensor(p.grad) for p in params]
    tparams = [torch.nn.Parameter(torch.zeros_like(g)) for g in tgrads]
    for tp, g in zip(tparams, tgrads, strict=True):
        tp.grad = g
    expected = torch.nn.utils.clip_grad_norm_(tparams, 1.5, foreach=False)
    norm = clip_grad_norm(params, 1.5)
    np.testing.assert_allclose(norm, float(expected), **TOL[dtype])
    for p, tp in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), **TOL[dtype])
    total = np.sqrt(sum(np.sum(p.grad.astype(np.float64) ** 2) for p in params))
    assert total == pytest.approx(1.5, rel=1e-5)


def test_clip_norm_leaves_small_gradients_alone() -> None:
    rng = np.random.default_rng(2)
    params, reference = make_params(rng), make_params(np.random.default_rng(2))
    clipped, plain = Adam(0.01, clip_norm=100.0), Adam(0.01)
    for _ in range(5):
        set_grads(params, rng, 1.0)
        for p, r in zip(params, reference, strict=True):
            r.grad[...] = p.grad
        grads = [p.grad.copy() for p in params]
        clipped.step(params)
        plain.step(reference)
        for p, r, g in zip(params, reference, grads, strict=True):
            np.testing.assert_array_equal(p.grad, g)
            np.testing.assert_array_equal(p.data, r.data)


# ------------------------------------------------------------------ state dict
def continue_identically(
    make: Callable[..., Optimizer], through: Callable[[Optimizer], Optimizer]
) -> None:
    """Step ``make()`` a while, copy it with ``through``, step both the same."""
    rng = np.random.default_rng(4)
    params = make_params(rng)
    opt = make()
    for _ in range(5):
        set_grads(params, rng, 1.0)
        opt.step(params)
    opt.lr *= 0.5  # as a schedule would: the copy must get it back
    copy = through(opt)
    params_copy = [Parameter(p.data.copy()) for p in params]
    assert copy.iterations == opt.iterations == 5
    assert copy.get_config() == opt.get_config()
    for _ in range(5):
        set_grads(params, rng, 1.0)
        for p, q in zip(params, params_copy, strict=True):
            q.grad[...] = p.grad
        opt.step(params)
        copy.step(params_copy)
    for p, q in zip(params, params_copy, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_continues_bit_identically(name: str) -> None:
    make = OPTIMIZERS[name]

    def through_state_dict(opt: Optimizer) -> Optimizer:
        fresh = make(clip_norm=3.0)  # config differences are overwritten too
        fresh.load_state_dict(opt.state_dict())
        return fresh

    continue_identically(lambda: make(clip_norm=1.0), through_state_dict)


def test_state_dict_holds_copies() -> None:
    rng = np.random.default_rng(5)
    params = make_params(rng)
    opt = Adam(0.01)
    set_grads(params, rng, 1.0)
    opt.step(params)
    saved = opt.state_dict()
    assert saved["type"] == "Adam" and saved["iterations"] == 1
    assert saved["config"] == opt.get_config()
    before = [dict((k, v.copy()) for k, v in s.items()) for s in saved["state"]]
    opt.step(params)
    for s, b in zip(saved["state"], before, strict=True):
        for key in b:
            np.testing.assert_array_equal(s[key], b[key])
    loaded = Adam()
    loaded.load_state_dict(saved)
    saved["state"][0]["exp_avg"][...] = 7.0
    assert not np.any(loaded.state[0]["exp_avg"] == 7.0)


def test_state_of_a_fresh_optimizer_resets_state() -> None:
    rng = np.random.default_rng(6)
    params = make_params(rng)
    opt = Adam(0.01)
    set_grads(params, rng, 1.0)
    opt.step(params)
    opt.load_state_dict(Adam(0.02).state_dict())
    assert (opt.state, opt.iterations, opt.lr) == ([], 0, 0.02)
    opt.step(params)
    assert opt.iterations == 1


def stepped_state(
    make: Callable[[], Optimizer] = lambda: Adam(0.01), n: int = len(SHAPES)
) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    params = make_params(rng)[:n]
    opt = make()
    set_grads(params, rng, 1.0)
    opt.step(params)
    return opt.state_dict()


def _mutate(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    state = stepped_state()
    change(state)
    return state


BAD_STATE_DICTS: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "other_type": (
        lambda: stepped_state(lambda: SGD(0.1, momentum=0.9)),
        "the state is for 'SGD', not 'Adam'",
    ),
    "missing_state": (
        lambda: _mutate(lambda d: d.pop("state")),
        r"missing entries \['state'\]",
    ),
    "unknown_key": (
        lambda: _mutate(lambda d: d["state"][1].update(momentum_buffer=np.zeros(3))),
        r"unknown state \['momentum_buffer'\] for parameter 1 "
        r"\(expected some of \['exp_avg', 'exp_avg_sq'\]\)",
    ),
    "state_not_a_list": (
        lambda: _mutate(lambda d: d.update(state={"exp_avg": np.zeros(3)})),
        "state must be a list with one dict per parameter",
    ),
    "entry_not_a_dict": (
        lambda: _mutate(lambda d: d["state"].__setitem__(0, np.zeros(3))),
        "state of parameter 0 must be a dict",
    ),
    "int_array": (
        lambda: _mutate(lambda d: d["state"][0].update(exp_avg=np.zeros((4, 3), int))),
        "state exp_avg of parameter 0 must be a float array, got dtype int64",
    ),
    "negative_iterations": (
        lambda: _mutate(lambda d: d.update(iterations=-1)),
        "iterations must be an integer >= 0, got -1",
    ),
    "iterations_text": (
        lambda: _mutate(lambda d: d.update(iterations="5")),
        "iterations must be an integer >= 0",
    ),
    "bad_lr": (
        lambda: _mutate(lambda d: d["config"].update(lr=-1.0)),
        r"Adam: invalid learning rate -1\.0",
    ),
    "bad_beta": (
        lambda: _mutate(lambda d: d["config"].update(beta1=1.0)),
        r"Adam: invalid beta1 1\.0",
    ),
    "unknown_config": (
        lambda: _mutate(lambda d: d["config"].update(momentum=0.9)),
        "bad config .*unexpected keyword argument 'momentum'",
    ),
}


@pytest.mark.parametrize(
    ("make_state", "match"), list(BAD_STATE_DICTS.values()), ids=list(BAD_STATE_DICTS)
)
def test_bad_state_dict_is_refused_and_changes_nothing(
    make_state: Callable[[], dict[str, Any]], match: str
) -> None:
    opt = Adam(0.01)
    before = opt.get_config()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(make_state())
    assert (opt.get_config(), opt.state, opt.iterations) == (before, [], 0)


def test_state_dict_for_other_parameter_count_is_refused_once_stepped() -> None:
    rng = np.random.default_rng(8)
    params = make_params(rng)
    opt = Adam(0.01)
    set_grads(params, rng, 1.0)
    opt.step(params)
    with pytest.raises(
        ValueError, match="the state is for 2 parameters, this optimizer was stepped "
    ):
        opt.load_state_dict(stepped_state(n=2))
    assert opt.iterations == 1 and len(opt.state) == 3


def test_state_loaded_before_the_first_step_is_checked_by_it() -> None:
    rng = np.random.default_rng(9)
    params = make_params(rng)
    opt = Adam(0.01)
    opt.load_state_dict(stepped_state(n=2))
    set_grads(params, rng, 1.0)
    with pytest.raises(
        ValueError, match="Adam has loaded state for 2 parameters, now with 3"
    ):
        opt.step(params)

    opt.load_state_dict(stepped_state())
    swapped = [params[1], params[0], params[2]]
    data = [p.data.copy() for p in params]
    with pytest.raises(
        ValueError,
        match=r"Adam: loaded state exp_avg of parameter 0 has shape \(4, 3\), "
        r"the parameter \(3,\)",
    ):
        opt.step(swapped)
    assert opt.iterations == 1  # from the loaded state: nothing stepped
    for p, d in zip(params, data, strict=True):
        np.testing.assert_array_equal(p.data, d)
    opt.step(params)
    assert opt.iterations == 2


def test_loaded_state_takes_the_parameters_dtype() -> None:
    rng = np.random.default_rng(10)
    params = make_params(rng, np.float32)
    opt = Adam(0.01)
    opt.load_state_dict(stepped_state())  # float64 arrays
    set_grads(params, rng, 1.0)
    opt.step(params)
    assert {v.dtype for s in opt.state for v in s.values()} == {np.dtype(np.float32)}


def test_load_state_dict_needs_a_dict() -> None:
    with pytest.raises(TypeError, match=r"Adam\.load_state_dict: expected a dict"):
        Adam().load_state_dict([])  # type: ignore[arg-type]


# ------------------------------------------------------ hyperparameter checks
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Adam(lr=-1e-3), r"Adam: invalid learning rate -0\.001"),
        (lambda: AdamW(beta1=1.0), r"AdamW: invalid beta1 1\.0 \(must be < 1\)"),
        (lambda: Adam(beta2=-0.1), r"Adam: invalid beta2 -0\.1 \(must be >= 0\)"),
        (lambda: Adam(eps=0.0), r"Adam: invalid eps 0\.0 \(must be > 0\)"),
        (lambda: AdamW(weight_decay=-0.1), r"AdamW: invalid weight_decay -0\.1"),
        (lambda: RMSprop(eps=-1.0), r"RMSprop: invalid eps -1\.0"),
        (lambda: RMSprop(weight_decay=-1.0), r"RMSprop: invalid weight_decay"),
        (lambda: SGD(0.1, clip_norm=0), r"SGD: invalid clip_norm 0\.0 \(must be > 0\)"),
        (lambda: Adam(clip_norm=0.0), r"Adam: invalid clip_norm 0\.0"),
        (lambda: RMSprop(clip_norm=-2), r"RMSprop: invalid clip_norm -2\.0"),
        (lambda: SGD(0.1, clip_norm=float("inf")), "SGD: invalid clip_norm inf"),
    ],
)
def test_bad_hyperparameters_name_the_argument(
    make: Callable[[], Optimizer], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_clip_norm_is_in_the_config_and_shown_only_when_set() -> None:
    assert SGD(0.1).get_config()["clip_norm"] is None
    assert repr(SGD(0.1)) == "SGD(lr=0.1)"
    assert repr(SGD(0.1, clip_norm=5.0)) == "SGD(lr=0.1, clip_norm=5)"


# ---------------------------------------------------------------- model files
def tiny_model(optimizer: Optimizer) -> Sequential:
    model = Sequential([Dense(4), ReLU(), Dense(3)], input_shape=(5,), seed=0)
    return model.compile(CrossEntropy(), optimizer)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Adam(0.01, weight_decay=1e-3, clip_norm=1.0),
        lambda: AdamW(0.01, beta1=0.8),
        lambda: RMSprop(1e-3, momentum=0.9, centered=True),
        lambda: RMSprop(1e-3),
    ],
    ids=["Adam", "AdamW", "RMSprop_centered_momentum", "RMSprop"],
)
def test_model_file_round_trip_continues_bit_identically(
    make: Callable[[], Optimizer], tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    model = tiny_model(make())
    batches = [
        (model._prepare(rng.standard_normal((8, 5))), rng.integers(0, 3, size=8))
        for _ in range(3)
    ]
    for x, y in batches[:2]:
        model.train_step(x, backend.xp().asarray(y))
    assert model.optimizer is not None
    model.optimizer.lr *= 0.5  # as a schedule would
    save_model(model, tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.optimizer is not None
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == 2

    x, y = batches[2]
    model.train_step(x, backend.xp().asarray(y))
    loaded.train_step(x, backend.xp().asarray(y))
    for (name, p), (_, q) in zip(
        model.named_parameters(), loaded.named_parameters(), strict=True
    ):
        assert p.data.dtype == q.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)

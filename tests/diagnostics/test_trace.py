"""The backprop trace: every step named as the tutorial names it, and every
number it prints checked three ways: against the printed formula recomputed in
NumPy, against PyTorch autograd on the same weights and batch (float64), and
against central differences (the trace's own check).

The tutorial preset and the ``cnn`` preset run on a few real MNIST test images;
everything else on tiny random batches.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.diagnostics import probe
from chainrule.diagnostics.trace import BackpropTrace, trace
from chainrule.layers import (
    BatchNorm,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    ReLU,
    Rescaling,
    Sigmoid,
)
from chainrule.layers.base import no_backward
from chainrule.losses import CrossEntropy
from chainrule.model import Sequential
from chainrule.parameter import Parameter
from chainrule.presets import make_model

torch.set_num_threads(1)

NDArray = np.ndarray[Any, Any]
Splits = tuple[tuple[NDArray, NDArray], tuple[NDArray, NDArray]]
#: a model, a batch (x, y) and its trace
Traced = tuple[Sequential, NDArray, NDArray, BackpropTrace]
#: ... and the dropout masks the trace uses, by layer index
TracedCNN = tuple[Sequential, NDArray, NDArray, dict[int, NDArray], BackpropTrace]

TUTORIAL_FORWARD = [
    "input = the batch",
    "s = input / 255",
    "x = flatten(s)",
    "z1 = x · W1",
    "a1 = σ(z1)",
    "z2 = a1 · W2",
    "a2 = σ(z2)",
    "z3 = a2 · W3",
    "a3 = σ(z3)",
    "C = −Σ [y log a3 + (1 − y) log(1 − a3)] / N",
]
TUTORIAL_BACKWARD = [
    "δ3 = (a3 − y) / N",
    "dC/dW3 = a2ᵀ · δ3",
    "dC/da2 = δ3 · W3ᵀ",
    "δ2 = dC/da2 ⊙ a2(1 − a2)",
    "dC/dW2 = a1ᵀ · δ2",
    "dC/da1 = δ2 · W2ᵀ",
    "δ1 = dC/da1 ⊙ a1(1 − a1)",
    "dC/dW1 = xᵀ · δ1",
]
# layer indices of the cnn preset: 0 Rescaling, 1 Reshape, 2 Conv2D, 3 BatchNorm,
# 4 ReLU, 5 MaxPool2D, 6-9 the same again, 10 Flatten, 11 Dropout, 12 Dense,
# 13 ReLU, 14 Dropout, 15 Dense
CNN_FORWARD_SYMBOLS = [
    "input",
    "s",
    "x",
    "z1",
    "n1",
    "a1",
    "p1",
    "z2",
    "n2",
    "a2",
    "p2",
    "f2",
    "h2",
    "z3",
    "a3",
    "h3",
    "z4",
    "a4",
    "C",
]
CNN_BACKWARD_SYMBOLS = [
    "δ4",
    "dC/dW4",
    "dC/db4",
    "dC/dh3",
    "dC/da3",
    "δ3",
    "dC/dW3",
    "dC/db3",
    "dC/dh2",
    "dC/df2",
    "dC/dp2",
    "dC/da2",
    "dC/dn2",
    "dC/dγ2",
    "dC/dβ2",
    "δ2",
    "dC/dW2",
    "dC/dp1",
    "dC/da1",
    "dC/dn1",
    "dC/dγ1",
    "dC/dβ1",
    "δ1",
    "dC/dW1",
]
CNN_PARAMETERS = {
    "W1": "layers.2.W",
    "γ1": "layers.3.gamma",
    "β1": "layers.3.beta",
    "W2": "layers.6.W",
    "γ2": "layers.7.gamma",
    "β2": "layers.7.beta",
    "W3": "layers.12.W",
    "b3": "layers.12.b",
    "W4": "layers.15.W",
    "b4": "layers.15.b",
}
BN_EPS = 1e-5


# ---------------------------------------------------------------------- helpers
def sigmoid(z: NDArray) -> NDArray:
    return np.exp(-np.logaddexp(0.0, -z))  # no overflow for any z


def one_hot(y: NDArray, classes: int) -> NDArray:
    return np.eye(classes)[y]


def close(actual: object, expected: object, rtol: float = 1e-10) -> None:
    """Equal to ``rtol`` of the largest entry (tiny entries of saturated
    sigmoids are compared on the scale of the whole tensor)."""
    a, e = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert a.dtype == np.float64
    assert a.shape == e.shape
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * float(np.abs(e).max()))


def values(t: BackpropTrace) -> dict[str, Any]:
    """Every traced tensor (and the loss) by the symbol its line defines."""
    return {item.symbol: item.value for item in [*t.forward, *t.backward]}


def weights(model: Sequential, t: BackpropTrace) -> dict[str, NDArray]:
    """The model's parameters by their trace symbol (``"W1"``), in float64."""
    params = dict(model.named_parameters())
    return {s: params[name].data.astype(np.float64) for s, name in t.parameters.items()}


def batch_norm_backward(dn: NDArray, z: NDArray, gamma: NDArray) -> NDArray:
    """The trace's formula: ``(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε)``,
    ``g = γ ⊙ dn``, means over every axis but the channels."""
    axes = (0, 2, 3)
    mu, var = z.mean(axis=axes, keepdims=True), z.var(axis=axes, keepdims=True)
    xhat = (z - mu) / np.sqrt(var + BN_EPS)
    g = gamma[None, :, None, None] * dn

    def mean(v: NDArray) -> NDArray:
        return v.mean(axis=axes, keepdims=True)

    return (g - mean(g) - xhat * mean(g * xhat)) / np.sqrt(var + BN_EPS)


def conv_weight_grad(dz: NDArray, x: NDArray, kernel: int) -> NDArray:
    """``dC/dW[f, c, i, j] = Σ_n,p,q dz[n, f, p, q] · x_padded[n, c, p + i, q + j]``
    ("same" padding, stride 1)."""
    pad = kernel // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kernel, kernel), (2, 3))
    return np.einsum("nfpq,ncpqij->fcij", dz, windows)


def max_pool_backward(dp: NDArray, a: NDArray) -> NDArray:
    """``dp`` at each 2x2 window's (first) maximum of ``a``, 0 elsewhere."""
    n, c, h, w = a.shape
    blocks = a.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    winner = blocks.reshape(n, c, h // 2, w // 2, 4).argmax(axis=-1)
    routed = np.zeros((n, c, h // 2, w // 2, 4))
    np.put_along_axis(routed, winner[..., None], dp[..., None], axis=-1)
    routed = routed.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return routed.reshape(n, c, h, w)


class Recorder:
    """Torch tensors by trace symbol; ``grad(symbol)`` is ``dC/d symbol``."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def __call__(self, symbol: str, tensor: torch.Tensor) -> torch.Tensor:
        tensor.retain_grad()
        self.tensors[symbol] = tensor
        return tensor

    def value(self, symbol: str) -> NDArray:
        return self.tensors[symbol].detach().numpy()

    def grad(self, symbol: str) -> NDArray:
        grad = self.tensors[symbol].grad
        assert grad is not None, symbol
        return grad.numpy()


def torch_parameters(model: Sequential) -> dict[str, torch.Tensor]:
    return {
        name: torch.tensor(p.data.astype(np.float64), requires_grad=True)
        for name, p in model.named_parameters()
    }


def compare_with_torch(
    t: BackpropTrace,
    rec: Recorder,
    params: dict[str, torch.Tensor],
    loss: torch.Tensor,
    rtol: float,
) -> None:
    """Every traced tensor and gradient equals torch's."""
    checked = 0
    for item in t.forward:
        if item.symbol == "C":
            assert item.value == pytest.approx(loss.item(), rel=rtol)
        elif item.symbol in rec.tensors:
            close(item.value, rec.value(item.symbol), rtol)
            checked += 1
    for item in t.backward:
        name = item.symbol.removeprefix("dC/d")
        if name in t.parameters:
            grad = params[t.parameters[name]].grad
            assert grad is not None, name
            close(item.value, grad.numpy(), rtol)
        else:
            z = "z" + name[1:] if name.startswith("δ") else name
            close(item.value, rec.grad(z), rtol)
        checked += 1
    assert checked == len(rec.tensors) + len(t.backward)


# ------------------------------------------------------------ tutorial preset
@pytest.fixture(scope="module")
def tutorial(mnist: Splits) -> Traced:
    _, (x_test, y_test) = mnist
    x, y = x_test[:4], y_test[:4]
    model = make_model("tutorial", seed=0)
    return model, x, y, trace(model, x, y)


def test_tutorial_traces_every_step_in_the_tutorials_notation(tutorial: Traced) -> None:
    _, x, _, t = tutorial
    assert [item.equation for item in t.forward] == TUTORIAL_FORWARD
    assert [item.equation for item in t.backward] == TUTORIAL_BACKWARD
    assert [item.symbol for item in t.forward] == [
        "input", "s", "x", "z1", "a1", "z2", "a2", "z3", "a3", "C"
    ]  # fmt: skip
    assert [item.symbol for item in t.backward] == [
        "δ3", "dC/dW3", "dC/da2", "δ2", "dC/dW2", "dC/da1", "δ1", "dC/dW1"
    ]  # fmt: skip
    # the two steps of δ written as one, as the tutorial does; only there
    combined = {item.symbol: item.combined for item in t.backward if item.combined}
    assert combined == {
        "δ2": "(δ3 · W3ᵀ) ⊙ a2(1 − a2)",
        "δ1": "(δ2 · W2ᵀ) ⊙ a1(1 − a1)",
    }
    assert t.parameters == {"W3": "layers.6.W", "W2": "layers.4.W", "W1": "layers.2.W"}
    # below the first layer is the data: no gradient is computed for it
    for symbol in ("dC/dx", "dC/ds", "dC/dinput"):
        with pytest.raises(KeyError):
            t.line(symbol)
    assert t.backward[-1].symbol == "dC/dW1"
    # the lines hold the tensors they name
    n = len(x)
    shapes = {
        "input": (n, 28, 28),
        "x": (n, 784),
        "z1": (n, 64),
        "a2": (n, 64),
        "a3": (n, 10),
        "δ3": (n, 10),
        "dC/dW3": (64, 10),
        "dC/da1": (n, 64),
        "dC/dW1": (784, 64),
    }
    for symbol, shape in shapes.items():
        assert t.line(symbol).value.shape == shape, symbol
        assert t.line(symbol).value.dtype == np.float64, symbol
    assert isinstance(t.line("C").value, float)
    assert t.line("a1").equation == "a1 = σ(z1)"
    np.testing.assert_array_equal(t.line("input").value, x)


def test_tutorial_numbers_match_the_math(tutorial: Traced) -> None:
    """Each line recomputed in NumPy from the lines before it."""
    model, x_raw, y, t = tutorial
    v, W = values(t), weights(model, t)
    n = len(x_raw)
    # forward
    close(v["s"], x_raw / 255.0, 1e-15)
    close(v["x"], v["s"].reshape(n, 784), 0)
    for level, prev in ((1, "x"), (2, "a1"), (3, "a2")):
        close(v[f"z{level}"], v[prev] @ W[f"W{level}"], 1e-12)
        close(v[f"a{level}"], sigmoid(v[f"z{level}"]), 1e-12)
    target = one_hot(y, 10)
    z3 = v["z3"]
    # log σ(z) = −log(1 + e^−z), log(1 − σ(z)) = −log(1 + e^z)
    bce = (target * np.logaddexp(0, -z3) + (1 - target) * np.logaddexp(0, z3)).sum()
    assert v["C"] == pytest.approx(bce / n, rel=1e-12)
    # backward, one line at a time
    close(v["δ3"], (sigmoid(z3) - target) / n, 1e-12)
    close(v["dC/dW3"], v["a2"].T @ v["δ3"], 1e-12)
    close(v["dC/da2"], v["δ3"] @ W["W3"].T, 1e-12)
    close(v["δ2"], v["dC/da2"] * v["a2"] * (1 - v["a2"]), 1e-12)
    # ... and the combined form the trace prints under it
    close(v["δ2"], (v["δ3"] @ W["W3"].T) * v["a2"] * (1 - v["a2"]), 1e-12)
    close(v["dC/dW2"], v["a1"].T @ v["δ2"], 1e-12)
    close(v["dC/da1"], v["δ2"] @ W["W2"].T, 1e-12)
    close(v["δ1"], (v["δ2"] @ W["W2"].T) * v["a1"] * (1 - v["a1"]), 1e-12)
    close(v["dC/dW1"], v["x"].T @ v["δ1"], 1e-12)
    assert np.abs(v["dC/dW1"]).max() > 1e-3  # not vacuous: real gradients


def test_tutorial_matches_torch_autograd(tutorial: Traced) -> None:
    model, x_raw, y, t = tutorial
    params = torch_parameters(model)
    W1, W2, W3 = (params[f"layers.{i}.W"] for i in (2, 4, 6))
    rec = Recorder()
    x = torch.tensor(x_raw, dtype=torch.float64).reshape(len(x_raw), -1) / 255
    a1 = rec("a1", torch.sigmoid(rec("z1", x @ W1)))
    a2 = rec("a2", torch.sigmoid(rec("z2", a1 @ W2)))
    z3 = rec("z3", a2 @ W3)
    rec("a3", torch.sigmoid(z3))
    target = torch.tensor(one_hot(y, 10))
    loss = F.binary_cross_entropy_with_logits(z3, target, reduction="sum") / len(y)
    loss.backward()
    compare_with_torch(t, rec, params, loss, rtol=1e-9)


def test_tutorial_gradients_agree_with_central_differences(tutorial: Traced) -> None:
    _, _, _, t = tutorial
    assert t.passed
    assert t.check is not None
    assert t.check.tolerance == 1e-6
    # the parameters only: the input is data, not something to learn
    assert sorted(r.name for r in t.check.results) == sorted(t.parameters.values())
    for symbol in t.parameters:
        error = t.line(f"dC/d{symbol}").check_error
        assert error is not None and error < 1e-7, (symbol, error)
    for item in t.backward:
        if item.symbol.removeprefix("dC/d") not in t.parameters:
            assert item.check_error is None, item.symbol


def test_tutorial_format_prints_every_step(tutorial: Traced) -> None:
    _, x, _, t = tutorial
    text = t.format()
    assert str(t) == text
    lines = text.splitlines()
    assert lines[0] == "forward"
    assert "backward (C is the loss; each line is one step of the chain rule)" in lines
    for equation in [*TUTORIAL_FORWARD, *TUTORIAL_BACKWARD]:
        assert equation in text, equation
    n = len(x)
    rows = {
        "z1 = x · W1": rf"\({n}, 64\)\s+mean .* std .* range \[",
        "δ3 = (a3 − y) / N": rf"\({n}, 10\)\s+‖·‖ \S+  max\|·\| \S+$",
        "dC/dW3 = a2ᵀ · δ3": r"\(64, 10\)\s+‖·‖ .*numerical: rel\. error \S+ ok$",
        "dC/dW1 = xᵀ · δ1": r"\(784, 64\)\s+‖·‖ .*numerical: rel\. error \S+ ok$",
    }
    for equation, rest in rows.items():
        pattern = rf"^  {re.escape(equation)}\s+{rest}"
        assert re.search(pattern, text, re.MULTILINE), (equation, text)
    loss = t.line("C").value
    assert re.search(rf"^  C = .*  = {re.escape(f'{loss:.6g}')}$", text, re.MULTILINE)
    # the combined form sits right under its step, aligned on the "="
    at = lines.index(next(line for line in lines if line.startswith("  δ2 = ")))
    assert lines[at + 1] == "     = (δ3 · W3ᵀ) ⊙ a2(1 − a2)"
    assert re.fullmatch(
        r"all 3 parameter gradients agree with central differences "
        r"\(max relative error \S+, tolerance 1e-06, float64\)",
        lines[-1],
    )
    assert "FAIL" not in text and "DISAGREE" not in text


# ----------------------------------------------------------------- cnn preset
@pytest.fixture(scope="module")
def cnn(mnist: Splits) -> TracedCNN:
    _, (x_test, y_test) = mnist
    x, y = x_test[:3], y_test[:3]
    model = make_model("cnn", seed=0)
    # the masks the dropout layers draw first: what the trace's copy draws
    masks = {
        i: copy.deepcopy(model.layers[i])(np.ones((len(x), size)))[0]
        for i, size in ((11, 3136), (14, 128))
    }
    return model, x, y, masks, trace(model, x, y)


def test_cnn_has_one_line_per_layer_and_per_parameter(cnn: TracedCNN) -> None:
    model, _, _, _, t = cnn
    assert [item.symbol for item in t.forward] == CNN_FORWARD_SYMBOLS
    # the input, one line per layer, the loss's softmax and the loss
    assert len(t.forward) == 1 + len(model.layers) + 2
    assert [item.symbol for item in t.backward] == CNN_BACKWARD_SYMBOLS
    assert t.parameters == CNN_PARAMETERS
    assert set(t.parameters.values()) == {n for n, _ in model.named_parameters()}
    equations = {item.symbol: item.equation for item in [*t.forward, *t.backward]}
    assert equations["x"] == "x = reshape(s) to (N, 1, 28, 28)"
    assert equations["z1"] == "z1 = W1 ⋆ x  (= W1 · im2col(x))"
    assert equations["n1"].startswith("n1 = γ1 ⊙ x̂ + β1,  x̂ = (z1 − μ) / √(σ² + ε)")
    assert equations["a1"] == "a1 = max(n1, 0)"
    assert equations["p1"] == "p1 = maxpool2x2(a1)"
    assert equations["f2"] == "f2 = flatten(p2)"
    assert equations["h2"].startswith("h2 = f2 ⊙ m / 0.7")
    assert equations["z3"] == "z3 = h2 · W3 + b3"
    assert equations["a4"] == "a4 = softmax(z4)"
    assert equations["C"] == "C = −Σ y log a4 / N"
    assert equations["δ4"] == "δ4 = (a4 − y) / N"
    assert equations["dC/dW1"] == "dC/dW1 = δ1 · im2col(x)ᵀ"
    assert equations["dC/dγ2"] == "dC/dγ2 = Σ dC/dn2 ⊙ x̂"
    assert equations["dC/dβ2"] == "dC/dβ2 = Σ dC/dn2"
    assert equations["dC/db3"] == "dC/db3 = Σₙ δ3"
    assert equations["dC/dp1"] == "dC/dp1 = col2im(W2ᵀ · δ2)"
    assert equations["δ2"].startswith("δ2 = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))")
    assert t.line("dC/dW2").value.shape == (64, 32, 3, 3)
    assert t.line("dC/dγ1").value.shape == (32,)


def test_cnn_values_are_the_probes(cnn: TracedCNN) -> None:
    model, x, y, _, t = cnn
    result = t.result
    assert result is not None
    assert len(result) == len(model.layers)
    np.testing.assert_array_equal(t.forward[0].value, result[0].input)
    for record, item in zip(result, t.forward[1 : 1 + len(result)], strict=True):
        np.testing.assert_array_equal(item.value, record.output)
    assert t.line("C").value == result.loss
    np.testing.assert_array_equal(t.line("δ4").value, result.grad_logits)
    for symbol, name in t.parameters.items():
        _, index, pname = name.split(".")
        grad = t.line(f"dC/d{symbol}").value
        np.testing.assert_array_equal(grad, result[int(index)].grads[pname])
    # the gradient leaving each layer, down to the first level (index 2)
    grads = {f"dC/d{symbol}" for symbol in t.parameters}
    leaving = [item for item in t.backward[1:] if item.symbol not in grads]
    assert len(leaving) == len(model.layers) - 3
    for item, record in zip(leaving, reversed(result.layers[3:]), strict=True):
        np.testing.assert_array_equal(item.value, record.grad_input)
    # and an independent probe of a float64 copy sees the same
    m64 = copy.deepcopy(model).astype(np.float64)
    again = probe(m64, x, y)
    for symbol, name in t.parameters.items():
        _, index, pname = name.split(".")
        close(t.line(f"dC/d{symbol}").value, again[int(index)].grads[pname], 1e-12)


def test_cnn_numbers_match_the_math(cnn: TracedCNN) -> None:
    model, _, _, masks, t = cnn
    v, W = values(t), weights(model, t)
    keep = 1 / 0.7
    # dropout: the mask the layer drew, scaled so the mean stays
    assert set(np.unique(masks[11])) <= {0.0, keep}
    close(v["h2"], v["f2"] * masks[11], 1e-15)
    close(v["dC/df2"], v["dC/dh2"] * masks[11], 1e-15)
    close(v["dC/da3"], v["dC/dh3"] * masks[14], 1e-15)
    close(v["δ3"], v["dC/da3"] * (v["z3"] > 0), 0)
    close(v["dC/dW3"], v["h2"].T @ v["δ3"], 1e-12)
    close(v["dC/db3"], v["δ3"].sum(axis=0), 1e-12)
    close(v["dC/dh2"], v["δ3"] @ W["W3"].T, 1e-12)
    close(v["dC/dp2"], v["dC/df2"].reshape(v["p2"].shape), 0)
    for level, kernel, before in ((2, 3, "p1"), (1, 5, "x")):
        a, n, z = v[f"a{level}"], v[f"n{level}"], v[f"z{level}"]
        close(v[f"dC/da{level}"], max_pool_backward(v[f"dC/dp{level}"], a), 0)
        close(v[f"dC/dn{level}"], v[f"dC/da{level}"] * (n > 0), 0)
        dn = v[f"dC/dn{level}"]
        mu, var = z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3))
        xhat = (z - mu[:, None, None]) / np.sqrt(var[:, None, None] + BN_EPS)
        gamma, beta = W[f"γ{level}"], W[f"β{level}"]
        close(n, gamma[:, None, None] * xhat + beta[:, None, None], 1e-10)
        close(v[f"dC/dγ{level}"], (dn * xhat).sum(axis=(0, 2, 3)), 1e-10)
        close(v[f"dC/dβ{level}"], dn.sum(axis=(0, 2, 3)), 1e-12)
        close(v[f"δ{level}"], batch_norm_backward(dn, z, gamma), 1e-9)
        close(v[f"dC/dW{level}"], conv_weight_grad(v[f"δ{level}"], v[before], kernel))


def test_cnn_matches_torch_autograd(cnn: TracedCNN) -> None:
    model, x_raw, y, masks, t = cnn
    P = torch_parameters(model)
    rec = Recorder()
    h = torch.tensor(x_raw, dtype=torch.float64) / 255
    h = h.reshape(len(x_raw), 1, 28, 28)
    for level, conv, bn, pad in ((1, 2, 3, 2), (2, 6, 7, 1)):
        z = rec(f"z{level}", F.conv2d(h, P[f"layers.{conv}.W"], padding=pad))
        n = F.batch_norm(
            z,
            None,
            None,
            P[f"layers.{bn}.gamma"],
            P[f"layers.{bn}.beta"],
            training=True,
            eps=BN_EPS,
        )
        a = rec(f"a{level}", F.relu(rec(f"n{level}", n)))
        h = rec(f"p{level}", F.max_pool2d(a, 2))
    f2 = rec("f2", h.reshape(len(x_raw), -1))
    h2 = rec("h2", f2 * torch.tensor(masks[11]))
    z3 = rec("z3", h2 @ P["layers.12.W"] + P["layers.12.b"])
    h3 = rec("h3", rec("a3", F.relu(z3)) * torch.tensor(masks[14]))
    z4 = rec("z4", h3 @ P["layers.15.W"] + P["layers.15.b"])
    rec("a4", torch.softmax(z4, dim=1))
    loss = F.cross_entropy(z4, torch.tensor(y.astype(np.int64)))
    loss.backward()
    compare_with_torch(t, rec, P, loss, rtol=1e-8)


def test_cnn_gradients_agree_with_central_differences(cnn: TracedCNN) -> None:
    _, _, _, _, t = cnn
    assert t.passed
    assert t.check is not None
    assert sorted(r.name for r in t.check.results) == sorted(CNN_PARAMETERS.values())
    for symbol in CNN_PARAMETERS:
        error = t.line(f"dC/d{symbol}").check_error
        assert error is not None and error < 1e-7, (symbol, error)
    assert "all 10 parameter gradients agree with central differences" in t.format()


# ------------------------------------------------- wrong and unknown layers
def small_batch() -> tuple[NDArray, NDArray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((4, 5)), np.array([0, 1, 2, 1])


@pytest.fixture
def local_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Layer classes defined in a test register in a copy of the registry."""
    monkeypatch.setattr(Layer, "registry", dict(Layer.registry))


@pytest.mark.usefixtures("local_layers")
def test_a_wrong_backward_is_reported() -> None:
    class SteepDense(Dense):
        """Dense whose backward adds dC/dW half as much again: 1.5 times too big."""

        def forward(self, x: NDArray, training: bool) -> tuple[NDArray, Any]:
            y, backward = super().forward(x, training)
            W = self.W
            assert W is not None

            def wrong(dy: NDArray) -> NDArray:
                dx = backward(dy)
                W.grad += 0.5 * (x.T @ dy)
                return dx

            return y, wrong if training else no_backward

    model = Sequential([SteepDense(4), Sigmoid(), Dense(3)], input_shape=(5,), seed=0)
    model.compile(CrossEntropy())
    x, y = small_batch()
    t = trace(model, x, y)
    assert not t.passed
    assert t.parameters["W1"] == "layers.0.W"
    # the trace shows what the backward computed: 1.5 x (xᵀ · δ1)
    close(t.line("dC/dW1").value, 1.5 * (x.T @ t.line("δ1").value), 1e-12)
    wrong = t.line("dC/dW1").check_error
    assert wrong is not None and wrong > 0.1
    for symbol in ("b1", "W2", "b2"):
        error = t.line(f"dC/d{symbol}").check_error
        assert error is not None and error < 1e-7, symbol
    text = t.format()
    assert re.search(r"^  dC/dW1 = xᵀ · δ1 .* FAIL$", text, re.MULTILINE), text
    assert re.search(r"^  dC/dW2 = a1ᵀ · δ2 .* ok$", text, re.MULTILINE), text
    assert "all 4 parameter gradients DISAGREE with central differences" in text


@pytest.mark.usefixtures("local_layers")
def test_a_new_layer_traces_too() -> None:
    """Layers that do not describe themselves get the generic description."""

    class Cube(Layer):
        def forward(self, x: NDArray, training: bool) -> tuple[NDArray, Any]:
            def backward(dy: NDArray) -> NDArray:
                return 3 * x * x * dy

            return x**3, backward if training else no_backward

    class Scale(Layer):
        def _create_parameters(self, input_shape: Any, rng: Any) -> None:
            self.k = Parameter(np.linspace(0.5, 1.5, input_shape[0]), "k")

        def named_parameters(self) -> list[tuple[str, Parameter]]:
            return [("k", self.k)] if self.built else []

        def forward(self, x: NDArray, training: bool) -> tuple[NDArray, Any]:
            k = self.k

            def backward(dy: NDArray) -> NDArray:
                k.grad += (dy * x).sum(axis=0)
                return dy * k.data

            return x * k.data, backward if training else no_backward

    model = Sequential(
        [Dense(4), Cube(), Scale(), Dense(3)], input_shape=(5,), seed=0, dtype="float64"
    )
    model.compile(CrossEntropy())
    x, y = small_batch()
    t = trace(model, x, y)
    equations = [item.equation for item in [*t.forward, *t.backward]]
    assert "h1 = Cube(z1)" in equations
    assert "h1′ = Scale(h1)" in equations
    assert "z2 = h1′ · W2 + b2" in equations
    assert "dC/dk1 = Scale gradient of k" in equations
    assert "dC/dh1 = Scale.backward(dC/dh1′)" in equations
    assert "δ1 = Cube.backward(dC/dh1)" in equations
    assert t.parameters["k1"] == "layers.2.k"
    v = values(t)
    close(v["h1"], v["z1"] ** 3, 1e-14)
    close(v["δ1"], 3 * v["z1"] ** 2 * v["dC/dh1"], 1e-14)
    close(v["dC/dk1"], (v["dC/dh1′"] * v["h1"]).sum(axis=0), 1e-14)
    assert t.passed, t.format()


# --------------------------------------------------------------------- naming
def test_a_letter_that_repeats_in_a_level_is_primed() -> None:
    model = Sequential(
        [
            Rescaling(2.0),
            Rescaling(0.5),
            Flatten(),
            Dense(4),
            Sigmoid(),
            Sigmoid(),
            Dropout(0.5, seed=1),
            Identity(),
            Dense(3),
        ],
        input_shape=(2, 3),
        seed=0,
    ).compile(CrossEntropy())
    rng = np.random.default_rng(3)
    t = trace(model, rng.standard_normal((4, 2, 3)), [0, 1, 2, 0], check=False)
    assert [item.equation for item in t.forward[:10]] == [
        "input = the batch",
        "s = 2 · input",
        "s′ = s / 2",
        "x = flatten(s′)",  # the preprocessing's last output is x
        "z1 = x · W1 + b1",
        "a1 = σ(z1)",
        "a1′ = σ(a1)",
        "h1 = a1′ ⊙ m / 0.5  (m: kept units, each with probability 0.5)",
        "h1′ = h1",
        "z2 = h1′ · W2 + b2",
    ]
    assert [item.symbol for item in t.backward] == [
        "δ2", "dC/dW2", "dC/db2", "dC/dh1′", "dC/dh1", "dC/da1′", "dC/da1",
        "δ1", "dC/dW1", "dC/db1",
    ]  # fmt: skip
    assert t.line("dC/da1").equation == "dC/da1 = dC/da1′ ⊙ a1′(1 − a1′)"
    assert t.check is None and t.passed
    assert "central differences" not in t.format()
    assert "numerical" not in t.format()


def test_a_model_that_starts_with_a_dense_layer_calls_the_batch_x() -> None:
    model = Sequential([Dense(3)], input_shape=(5,), seed=0).compile(CrossEntropy())
    x, y = small_batch()
    t = trace(model, x, y)
    assert [item.equation for item in t.forward] == [
        "x = the batch",
        "z1 = x · W1 + b1",
        "a1 = softmax(z1)",
        "C = −Σ y log a1 / N",
    ]
    assert [item.symbol for item in t.backward] == ["δ1", "dC/dW1", "dC/db1"]
    close(t.line("dC/dW1").value, x.T @ t.line("δ1").value, 1e-12)
    assert t.passed


def test_bad_models_are_refused_clearly() -> None:
    x, y = small_batch()
    nothing = Sequential([Flatten(), ReLU()], input_shape=(5,)).compile(CrossEntropy())
    with pytest.raises(ValueError, match="no Dense or Conv2D layer"):
        trace(nothing, x, y)
    with pytest.raises(TypeError, match="trace expects a Sequential model, got Dense"):
        trace(Dense(3), x, y)  # type: ignore[arg-type]
    uncompiled = Sequential([Dense(3)], input_shape=(5,), seed=0)
    with pytest.raises(RuntimeError, match=r"trace needs a loss.*model\.compile"):
        trace(uncompiled, x, y)


def test_the_model_is_left_as_it_was() -> None:
    model = make_model("cnn", seed=1)
    rng = np.random.default_rng(4)
    for _, buffer in model.named_buffers():
        buffer[...] = rng.uniform(0.5, 2.0, buffer.shape)
    for p in model.parameters():
        p.grad[...] = 0.25
    params = {n: (p.data.copy(), p.grad.copy()) for n, p in model.named_parameters()}
    buffers = {n: b.copy() for n, b in model.named_buffers()}
    rng_states = copy.deepcopy(model.get_rng_states())
    assert rng_states  # the two dropout layers
    x = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    y = np.array([3, 8])
    first = trace(model, x, y)
    second = trace(model, x, y)
    assert model.dtype == np.float32
    for name, p in model.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, name
        np.testing.assert_array_equal(p.data, params[name][0])
        np.testing.assert_array_equal(p.grad, params[name][1])
    for name, b in model.named_buffers():
        assert b.dtype == np.float32, name
        np.testing.assert_array_equal(b, buffers[name])
    assert model.get_rng_states() == rng_states
    # so tracing twice traces the same thing (same dropout masks)
    assert first.format() == second.format()
    for a, b in zip(first.backward, second.backward, strict=True):
        np.testing.assert_array_equal(a.value, b.value)


# ------------------------------------------------------------------ known bugs
def test_every_parameter_gets_its_own_symbol() -> None:
    model = Sequential(
        [Dense(4), BatchNorm(), ReLU(), BatchNorm(), Dense(3)], input_shape=(5,), seed=0
    ).compile(CrossEntropy())
    x, y = small_batch()
    t = trace(model, x, y, check=False)
    assert sorted(t.parameters.values()) == sorted(
        name for name, _ in model.named_parameters()
    )


def test_every_checked_parameter_has_a_line() -> None:
    model = Sequential([BatchNorm(), Dense(3)], input_shape=(5,), seed=0).compile(
        CrossEntropy()
    )
    x, y = small_batch()
    t = trace(model, x, y)
    assert t.check is not None
    assert sorted(r.name for r in t.check.results) == sorted(t.parameters.values())

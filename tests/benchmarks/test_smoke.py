"""The benchmark suite runs end to end (never a speed assertion), and the PyTorch
twin it times against is the same network taking the same steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
NAMES = ("tutorial-32", "tutorial-128", "mlp800-sgd", "mlp800-adam", "cnn-adam")


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import models
        import torch_models

        yield models, torch_models
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_quick_run_prints_every_model_with_a_ratio(tmp_path):
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--threads", "1"]
    done = subprocess.run(
        [*cmd, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| `")]
    for name in NAMES:
        training = [r for r in rows if r.startswith(f"| `{name}` |")]
        assert len(training) == 1, done.stdout
        assert "×" in training[0]
    for arch in ("tutorial", "mlp800", "cnn"):
        assert any(r.startswith(f"| `{arch}` (from") and "×" in r for r in rows)
    assert "GEMM peak" in done.stdout
    assert "## Targets" in done.stdout
    results = json.loads(out.read_text())
    assert results["machine"]["threads"] == 1
    assert [r["bench"] for r in results["throughput"]] == list(NAMES)
    for r in results["throughput"]:
        assert r["train"]["ratio"]["median"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_torch_twin_takes_the_same_steps(bench_modules, name):
    models, torch_models = bench_modules
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 64).astype(np.uint8)
    model = models.BENCHES[name].build(0)
    net = torch_models.to_torch(model)
    loss_fn = torch_models.torch_loss(model)
    optimizer = torch_models.torch_optimizer(model, net)
    for step in range(3):
        xb, yb = x[step * 16 : (step + 1) * 16], y[step * 16 : (step + 1) * 16]
        ours, _ = model.train_step(xb.astype(np.float32), yb)
        optimizer.zero_grad()
        theirs = loss_fn(net(torch.from_numpy(xb).float()), torch.from_numpy(yb).long())
        theirs.backward()
        optimizer.step()
        assert ours == pytest.approx(theirs.item(), rel=1e-4, abs=1e-5)
    with torch.no_grad():
        expected = net(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(model.predict_logits(x), expected, rtol=1e-3, atol=1e-3)


def test_flop_counts(bench_modules):
    models, _ = bench_modules
    flops = {n: models.forward_flops(models.BENCHES[n].build(0)) for n in NAMES}
    assert flops["tutorial-32"] == 2 * (784 * 64 + 64 * 64 + 64 * 10)
    assert flops["mlp800-sgd"] == 2 * (784 * 800 + 800 * 800 + 800 * 10)
    conv = 2 * (32 * 25 * 24 * 24 + 64 * 32 * 25 * 8 * 8)
    assert flops["cnn-adam"] == conv + 2 * (1024 * 128 + 128 * 10)

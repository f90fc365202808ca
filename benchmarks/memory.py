"""Peak resident memory of a full MNIST training run, in a fresh process.

Run as a script, it is that process: load MNIST, build one benchmark model in
one framework, train it for ``--epochs`` full epochs over the 60,000 training
images, score the test set, and print one JSON line with its own peak resident
set size (``VmHWM`` in ``/proc/self/status``), so the interpreter, the
libraries and the data all count. ``--module chainrule train ...`` instead
runs ``python -m chainrule train ...`` as the user runs it and reports the
same way.

Why the process reports its own peak: Linux carries the parent's peak into a
child's ``ru_maxrss`` across ``fork`` and ``exec``, so ``os.wait4`` or
``RUSAGE_CHILDREN`` from the benchmark (which holds torch and MNIST) would
report at least the benchmark's own size. ``VmHWM`` belongs to the memory map
``exec`` creates, and starts from zero.

    python benchmarks/memory.py --framework chainrule --model cnn-adam
    python benchmarks/memory.py --module chainrule train --epochs 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def vmhwm_mb() -> float:
    """This process's peak resident set size in MB (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak_rss(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` (this script); return its report, exit code and wall time."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        report = {}
    return {
        **report,
        "peak_mb": report.get("peak_mb"),
        "returncode": done.returncode or (0 if report else -1),
        "seconds": seconds,
        "stderr_tail": "" if report else done.stderr[-2000:],
    }


def chainrule_train_cmd(data_dir: str | None, out_dir: str, epochs: int) -> list[str]:
    """``chainrule train`` with the default preset, as a user runs it."""
    cmd = [sys.executable, str(HERE / "memory.py"), "--module", "chainrule"]
    cmd += ["train", "--epochs", str(epochs)]
    cmd += ["--out", str(Path(out_dir) / "mlp.npz"), "--quiet"]
    return cmd + (["--data-dir", data_dir] if data_dir else [])


def run_cmd(framework: str, model: str, data_dir: str | None, epochs: int) -> list[str]:
    """The command line of this script for one training run."""
    cmd = [sys.executable, str(HERE / "memory.py"), "--framework", framework]
    cmd += ["--model", model, "--epochs", str(epochs)]
    return cmd + (["--data-dir", data_dir] if data_dir else [])


def _train_chainrule(model: Any, data: Any, batch_size: int, epochs: int) -> float:
    (x, y), (x_test, y_test) = data
    model.fit(x, y, epochs=epochs, batch_size=batch_size, seed=0, verbose=0)
    return float(model.evaluate(x_test, y_test)["accuracy"])


def _train_torch(model: Any, data: Any, batch_size: int, epochs: int) -> float:
    """The minimal PyTorch loop: the same batches as ``fit`` with ``seed=0``."""
    import numpy as np
    import torch
    from torch_models import to_torch, torch_loss, torch_optimizer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    (x, y), (x_test, y_test) = data
    net = to_torch(model)
    loss_fn, optimizer = torch_loss(model), torch_optimizer(model, net)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            xb = torch.from_numpy(x[idx]).float()
            yb = torch.from_numpy(y[idx]).long()
            optimizer.zero_grad()
            loss_fn(net(xb), yb).backward()
            optimizer.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x_test), 1000):
            xb = torch.from_numpy(x_test[start : start + 1000]).float()
            pred = net(xb).argmax(1).numpy()
            correct += int((pred == y_test[start : start + 1000]).sum())
    return correct / len(x_test)


def run_module(argv: list[str]) -> None:
    """``python -m argv[0] argv[1:]``, then this process's peak RSS as JSON."""
    import runpy

    sys.argv = [argv[0], *argv[1:]]
    code: Any = 0
    try:
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"module": argv, "exit": code, "peak_mb": vmhwm_mb()}))
    sys.exit(code)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--module":
        run_module(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("chainrule", "pytorch"), required=True)
    parser.add_argument(
        "--model", required=True, help="a benchmark name, or 'preset-mlp'"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    from models import BENCHES

    from chainrule import Sequential
    from chainrule.data import load_mnist
    from chainrule.presets import get_preset, make_model

    start = time.perf_counter()
    data = load_mnist(args.data_dir, download=False)
    if args.model == "preset-mlp":  # what `chainrule train` trains by default
        model: Sequential = make_model("mlp", seed=0)
        batch_size = get_preset("mlp").recipe.batch_size
    else:
        bench = BENCHES[args.model]
        model, batch_size = bench.build(0), bench.batch_size
    train = _train_chainrule if args.framework == "chainrule" else _train_torch
    accuracy = train(model, data, batch_size, args.epochs)
    print(
        json.dumps(
            {
                "framework": args.framework,
                "model": args.model,
                "epochs": args.epochs,
                "test_accuracy": accuracy,
                "train_seconds": time.perf_counter() - start,
                "torch_loaded": "torch" in sys.modules,
                "peak_mb": vmhwm_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()

"""chainrule against PyTorch on the CPU: throughput, memory, time to accuracy.

One run trains the same models with both frameworks (float32, the same
threads, batches, initial weights and optimizer), alternating them so the
machine's drift hits both, and prints Markdown tables: training and inference
samples/s with the ratio chainrule/PyTorch, achieved GFLOP/s against the
measured GEMM peak, peak resident memory of full MNIST training runs, and the
time to 98% (MLP) and 99% (CNN) test accuracy; then the issue's targets.

    python benchmarks/run.py                    # the full run (minutes)
    python benchmarks/run.py --quick --threads 1  # a smoke run (seconds)

See docs/performance.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from blas_threads import default_threads, pin_threads

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_NAMES = ("tutorial-32", "tutorial-128", "mlp800-sgd", "mlp800-adam", "cnn-adam")
TASK_NAMES = ("mlp", "cnn")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="BLAS/OpenMP threads of both frameworks (default: usable cores)",
    )
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 5)")
    parser.add_argument(
        "--steps",
        type=int,
        help="training steps per timing (default: enough for about --seconds)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=1.5,
        help="target length of one timing when --steps is not given",
    )
    parser.add_argument(
        "--models",
        default=",".join(BENCH_NAMES),
        help="comma-separated benchmarks, from: " + ", ".join(BENCH_NAMES),
    )
    parser.add_argument(
        "--tasks",
        default=",".join(TASK_NAMES),
        help="time-to-accuracy tasks: mlp (98%%), cnn (99%%)",
    )
    parser.add_argument(
        "--tta-repeats", type=int, default=1, help="runs of each time-to-accuracy task"
    )
    parser.add_argument(
        "--memory-epochs",
        type=int,
        default=1,
        help="epochs of each memory run (peak RSS does not grow after the first)",
    )
    parser.add_argument("--data-dir", help="MNIST folder (default: see --help text)")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="time throughput on random images instead of MNIST (--quick does)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--json", metavar="FILE", help="also save the results")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-time-to-accuracy", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = [m for m in args.models if m not in BENCH_NAMES]
    unknown += [t for t in args.tasks if t not in TASK_NAMES]
    if unknown:
        parser.error(f"unknown models or tasks: {', '.join(unknown)}")
    if args.quick:
        args.synthetic = args.no_memory = args.no_time_to_accuracy = True
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.steps is None and args.quick:
        args.steps = 2
    return args


def find_data_dir(explicit: str | None) -> str | None:
    """``--data-dir``, ``$CHAINRULE_DATA``, ``../shared/data``, else the cache."""
    if explicit:
        return explicit
    if os.environ.get("CHAINRULE_DATA"):
        return os.environ["CHAINRULE_DATA"]
    shared = ROOT.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_data(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    """Training images and labels, images for inference, and what they are."""
    import numpy as np

    if args.synthetic:
        rng = np.random.default_rng(args.seed)
        n = 512 if args.quick else 60000
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        return x, y, x[:1000], f"random uint8 images ({n})"
    from chainrule.data import load_mnist

    (x, y), (x_test, _) = load_mnist(args.data_dir, download=False)
    return x, y, x_test, "MNIST (60,000 training images; inference on the test set)"


def measure_memory(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Peak RSS of one full-MNIST training run per model and framework."""
    import tempfile

    from memory import chainrule_train_cmd, peak_rss, run_cmd

    epochs = f"{args.memory_epochs} epoch{'s' if args.memory_epochs > 1 else ''}"
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(args.models):
        row: dict[str, Any] = {"label": f"`{name}`, {epochs}"}
        order = ("chainrule", "pytorch") if i % 2 == 0 else ("pytorch", "chainrule")
        for framework in order:
            log(f"memory: {name} with {framework}")
            cmd = run_cmd(framework, name, args.data_dir, args.memory_epochs)
            row[framework] = peak_rss(cmd)
        rows.append(row)
    with tempfile.TemporaryDirectory() as out_dir:
        log("memory: chainrule train (default mlp preset)")
        row = {
            "label": f"`chainrule train` (default `mlp` preset), "
            f"{epochs}; PyTorch: the same network and recipe"
        }
        row["chainrule"] = peak_rss(
            chainrule_train_cmd(args.data_dir, out_dir, args.memory_epochs)
        )
        log("memory: the same in PyTorch")
        row["pytorch"] = peak_rss(
            run_cmd("pytorch", "preset-mlp", args.data_dir, args.memory_epochs)
        )
        rows.append(row)
    return rows


def time_to_accuracy(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each task in fresh processes, the frameworks alternating."""
    from accuracy import TASKS

    rows = []
    for task_name in args.tasks:
        runs: dict[str, list[Any]] = {"chainrule": [], "pytorch": []}
        for r in range(args.tta_repeats):
            order = ("chainrule", "pytorch") if r % 2 == 0 else ("pytorch", "chainrule")
            for framework in order:
                log(f"time to accuracy: {task_name} with {framework}")
                cmd = [sys.executable, str(HERE / "accuracy.py")]
                cmd += ["--framework", framework, "--task", task_name]
                cmd += ["--seed", str(args.seed)]
                if args.data_dir:
                    cmd += ["--data-dir", args.data_dir]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                lines = done.stdout.strip().splitlines()
                try:
                    runs[framework].append(json.loads(lines[-1]))
                except (IndexError, json.JSONDecodeError):
                    log(done.stderr[-2000:])
                    runs[framework].append({"reached": None, "best": 0, "seconds": 0})
        task = TASKS[task_name]
        rows.append({"task": asdict(task), **runs})
    return rows


def main() -> None:
    args = parse_args()
    pin_threads(args.threads)  # may start this script again; NumPy not loaded yet
    args.data_dir = find_data_dir(args.data_dir)

    import torch

    torch.set_num_threads(args.threads)
    import throughput
    from gemm import measure_peak
    from machine import describe, format_machine
    from models import BENCHES
    from report import (
        accuracy_table,
        inference_table,
        memory_table,
        targets,
        training_table,
    )

    results: dict[str, Any] = {"command": sys.argv, "machine": describe(args.threads)}
    log("GEMM peak")
    results["gemm"] = measure_peak(
        size=256 if args.quick else 2048, repeats=1 if args.quick else 7
    )
    x, y, x_infer, data = load_data(args)
    results["data"] = data
    results["throughput"] = []
    timed_archs: set[str] = set()
    for name in args.models:
        bench = BENCHES[name]
        log(f"throughput: {name}")
        results["throughput"].append(
            throughput.measure(
                bench,
                x,
                y,
                x_infer,
                repeats=args.repeats,
                steps=args.steps,
                seconds=args.seconds,
                warmup=1 if args.quick else 3,
                seed=args.seed,
                inference=bench.arch not in timed_archs,
                pause=0.0 if args.quick else throughput.PAUSE,  # quick: no timings
            )
        )
        timed_archs.add(bench.arch)
    if not args.no_memory:
        results["memory"] = measure_memory(args)
    if not args.no_time_to_accuracy:
        results["time_to_accuracy"] = time_to_accuracy(args)

    peak = results["gemm"]["peak"]
    gemm = results["gemm"]
    lines = ["# chainrule vs PyTorch", "", *format_machine(results["machine"])]
    lines += [
        f"GEMM peak (float32 {gemm['size']}², median of {gemm['repeats']}): "
        f"NumPy {gemm['numpy']:.1f} GFLOP/s, PyTorch {gemm['torch']:.1f} GFLOP/s; "
        f"peak = {peak:.1f} GFLOP/s",
        f"data: {data}; {args.repeats} interleaved repeats, medians (min–max)",
        "",
        "## Training (samples/s; FLOPs: 3 × forward matrix products)",
        "",
        *training_table(results["throughput"], peak),
        "",
        f"## Inference (samples/s, batch {throughput.INFERENCE_BATCH})",
        "",
        *inference_table(results["throughput"], peak),
    ]
    if "memory" in results:
        lines += ["", "## Peak resident memory, full MNIST training run", ""]
        lines += memory_table(results["memory"])
    if "time_to_accuracy" in results:
        lines += ["", "## Time to test accuracy, end to end (data load included)", ""]
        lines += accuracy_table(results["time_to_accuracy"])
    lines += ["", "## Targets", "", *targets(results)]
    print("\n".join(lines), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()

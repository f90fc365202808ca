"""The benchmark's results as Markdown tables, and the issue's targets checked."""

from __future__ import annotations

import statistics
from typing import Any


def _rate(s: dict[str, Any]) -> str:
    return f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"


def _ratio(s: dict[str, Any]) -> str:
    return f"**{s['median']:.2f}×** ({s['min']:.2f}–{s['max']:.2f})"


def _gflops(s: dict[str, Any], peak: float) -> str:
    return f"{s['gflops']:.1f} ({s['gflops'] / peak:.0%})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def training_table(results: list[dict[str, Any]], peak: float) -> list[str]:
    rows = [
        [
            f"`{r['bench']}`",
            str(r["batch_size"]),
            str(r["steps"]),
            _rate(r["train"]["chainrule"]),
            _rate(r["train"]["pytorch"]),
            _ratio(r["train"]["ratio"]),
            _gflops(r["train"]["chainrule"], peak),
            _gflops(r["train"]["pytorch"], peak),
        ]
        for r in results
    ]
    header = ["model", "batch", "steps", "chainrule samples/s", "PyTorch samples/s"]
    header += ["chainrule / PyTorch", "chainrule GFLOP/s (% peak)"]
    return _table([*header, "PyTorch GFLOP/s (% peak)"], rows)


def inference_table(results: list[dict[str, Any]], peak: float) -> list[str]:
    rows = [
        [
            f"`{r['arch']}` (from `{r['bench']}`)",
            _rate(r["infer"]["chainrule"]),
            _rate(r["infer"]["pytorch"]),
            _ratio(r["infer"]["ratio"]),
            _gflops(r["infer"]["chainrule"], peak),
            _gflops(r["infer"]["pytorch"], peak),
        ]
        for r in results
        if "infer" in r
    ]
    header = ["model", "chainrule samples/s", "PyTorch samples/s"]
    header += ["chainrule / PyTorch", "chainrule GFLOP/s (% peak)"]
    return _table([*header, "PyTorch GFLOP/s (% peak)"], rows)


def _mb(run: dict[str, Any] | None) -> str:
    if run is None:
        return "—"
    if run["returncode"]:
        return f"failed ({run['returncode']})"
    return f"{run['peak_mb']:,.0f} MB ({run['seconds']:.1f} s)"


def memory_table(rows: list[dict[str, Any]]) -> list[str]:
    body = [[r["label"], _mb(r.get("chainrule")), _mb(r.get("pytorch"))] for r in rows]
    header = ["run", "chainrule peak RSS (wall time)", "PyTorch peak RSS (wall time)"]
    return _table(header, body)


def _reach(run: dict[str, Any]) -> str:
    r = run.get("reached")
    if not r:
        return f"not reached (best {run.get('best', 0):.2%}, {run['seconds']:.1f} s)"
    return (
        f"{r['wall_seconds']:.1f} s ({r['steps']} steps, {r['accuracy']:.2%}; "
        f"evaluations {r['eval_seconds']:.1f} s)"
    )


def seconds_to_target(run: dict[str, Any]) -> float | None:
    r = run.get("reached")
    return float(r["wall_seconds"]) if r else None


def accuracy_table(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for row in rows:
        task = row["task"]
        recipe = (
            f"`{task['arch']}`, Adam one-cycle peak {task['lr']:g}, batch "
            f"{task['batch_size']}, {task['epochs']} epochs"
        )
        for cr, pt in zip(row["chainrule"], row["pytorch"], strict=True):
            a, b = seconds_to_target(cr), seconds_to_target(pt)
            ratio = f"**{b / a:.2f}×**" if a and b else "—"
            body.append(
                [f"{task['target']:.0%}", recipe, _reach(cr), _reach(pt), ratio]
            )
    header = ["target", "recipe", "chainrule", "PyTorch", "PyTorch s / chainrule s"]
    return _table(header, body)


def _median_time(runs: list[dict[str, Any]]) -> float | None:
    """The median time to target, or ``None`` if any run missed it."""
    times = [seconds_to_target(r) for r in runs]
    if not times or any(t is None for t in times):
        return None
    return float(statistics.median(t for t in times if t is not None))


def _check(name: str, value: float | None, goal: float, text: str, low: bool) -> Any:
    if value is None:
        return [name, "not measured", "—"]
    met = value <= goal if low else value >= goal
    return [name, text, "met" if met else "**missed**"]


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets against this run's medians."""
    rows: list[list[str]] = []
    peak = results["gemm"]["peak"]
    by_bench = {r["bench"]: r for r in results["throughput"]}
    goals = {
        "tutorial-32": 2.5,
        "tutorial-128": 2.5,
        "mlp800-sgd": 1.2,
        "mlp800-adam": 1.2,
        "cnn-adam": 1.0,
    }
    for bench, goal in goals.items():
        if bench in by_bench:
            ratio = by_bench[bench]["train"]["ratio"]["median"]
            rows.append(
                _check(
                    f"`{bench}` training ≥ {goal}× PyTorch",
                    ratio,
                    goal,
                    f"{ratio:.3f}×",
                    low=False,
                )
            )
    for r in results["throughput"]:
        if "infer" in r:
            ratio = r["infer"]["ratio"]["median"]
            rows.append(
                _check(
                    f"`{r['arch']}` inference ≥ 1.0× PyTorch",
                    ratio,
                    1.0,
                    f"{ratio:.3f}×",
                    low=False,
                )
            )
    for bench, goal in (("mlp800-sgd", 0.7), ("mlp800-adam", 0.7), ("cnn-adam", 0.5)):
        if bench in by_bench:
            share = by_bench[bench]["train"]["chainrule"]["gflops"] / peak
            rows.append(
                _check(
                    f"`{bench}` training ≥ {goal:.0%} of GEMM peak",
                    share,
                    goal,
                    f"{share:.0%}",
                    low=False,
                )
            )
    cli = next(
        (m for m in results.get("memory", []) if m["label"].startswith("`chainrule")),
        None,
    )
    cli_run = cli.get("chainrule") if cli else None
    mb = cli_run["peak_mb"] if cli_run and not cli_run["returncode"] else None
    rows.append(
        _check(
            "`chainrule train` (default MLP) peak RSS ≤ 400 MB",
            mb,
            400,
            f"{mb:,.0f} MB" if mb else "",
            low=True,
        )
    )
    for row in results.get("time_to_accuracy", []):
        task = row["task"]
        ours = _median_time(row["chainrule"])
        theirs = _median_time(row["pytorch"])
        limit = 10.0 if task["name"] == "mlp" else 60.0
        label = f"time to {task['target']:.0%} (`{task['arch']}`)"
        rows.append(
            _check(
                f"{label} ≤ {limit:g} s",
                ours,
                limit,
                f"{ours:.1f} s" if ours else "",
                low=True,
            )
        )
        if ours is not None and theirs is not None:
            rows.append(
                _check(
                    f"{label} below PyTorch's",
                    ours,
                    theirs,
                    f"{ours:.1f} s vs {theirs:.1f} s",
                    low=True,
                )
            )
        else:
            rows.append([f"{label} below PyTorch's", "a run missed the target", "—"])
    return _table(["target", "this run (medians)", "verdict"], rows)

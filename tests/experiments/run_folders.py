"""Hand-made run folders, written the way ``fintrain train`` writes them, for reader and report tests.

Loaded by path from the CLI tests too (the test folders are not packages).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fintrain.config import RunConfig
from fintrain.train.marker import MARKER_FILE, RunMarker
from fintrain.storage import utc_now

OLD = 1_000_000_000.0  # 2001: a time long past, for files of runs that are not running

CLASSIFICATION_BASELINES = {
    "base_rate": {"auc": 0.5, "accuracy": 0.64, "brier": 0.23, "log_loss": 0.65, "pos_rate": 0.0},
    "always_up": {"auc": 0.5, "accuracy": 0.36, "brier": 0.64, "log_loss": 22.0, "pos_rate": 1.0},
    "logistic": {"auc": 0.52, "accuracy": 0.63, "brier": 0.229, "log_loss": 0.648, "pos_rate": 0.05},
}


def write_run(
    runs_dir: Path,
    name: str,
    *,
    budget: str = "2m",
    seed: int = 0,
    ticker: str = "MSFT",
    task: str = "threshold",
    status: str = "finished",
    test: float = 0.55,
    test_loss: float = 0.69,
    val: float = 0.56,
    lr: float = 3e-4,
    baselines: dict[str, dict[str, float]] | None = None,
    params: int = 1_985_025,
    steps: int = 40,
    temps: Sequence[float | None] | None = None,
    pause_at_steps: Sequence[int] = (),
    mtime: float = OLD,
) -> Path:
    """One run folder. ``status``: finished, thermal_stop, interrupted (Ctrl-C), killed (no
    recorded end), resumed (interrupted, then resumed and still going)."""
    run = Path(runs_dir) / name
    (run / "checkpoints").mkdir(parents=True)
    cfg = RunConfig.model_validate({
        "data": {"ticker": ticker, "source": "sample"},
        "model": {"budget": budget},
        "target": {"task": task},
        "train": {"seed": seed, "max_steps": steps, "device": "cpu", "lr": lr},
        "thermal": {"source": "none" if temps is None else "replay:trace.csv"},
    })
    (run / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    metric = "auc" if task != "return" else "mse"
    records: list[dict[str, Any]] = []
    n_logs = steps // 10
    for k in range(1, n_logs + 1):
        temp = temps[k - 1] if temps is not None and k - 1 < len(temps) else None
        records.append({"kind": "train", "step": 10 * k, "epoch": 0, "train/loss": 0.8 - 0.01 * k, "lr": 1e-4,
                        "throughput": 100.0, "thermal/temp_c": temp, "thermal/paused": 0, "time_s": 30.0 * k})
        if 10 * k in pause_at_steps:
            records.append({"kind": "event", "step": 10 * k, "event": "thermal_pause", "epoch": 0,
                            "message": "paused: warning band", "temp_c": temp})
            records.append({"kind": "event", "step": 10 * k, "event": "thermal_resume", "epoch": 0,
                            "message": "resumed after 40 s", "temp_c": 79.0})
        if k % 2 == 0:
            records.append({"kind": "epoch", "step": 10 * k, "epoch": k // 2 - 1, "train/loss": 0.8 - 0.01 * k,
                            "val/loss": 0.7 - 0.001 * k, f"val/{metric}": 0.5 + 0.01 * k, "time_s": 30.0 * k})
            records.append({"kind": "event", "step": 10 * k, "event": "checkpoint", "epoch": k // 2,
                            "message": f"saved last.pt at step {10 * k}"})
    if status == "thermal_stop":
        records.append({"kind": "event", "step": steps, "event": "thermal_stop", "epoch": 0,
                        "message": "stopped: thermal critical 97 C", "temp_c": 97.0})
    if status in ("interrupted", "resumed"):
        records.append({"kind": "event", "step": steps, "event": "interrupted", "epoch": 0,
                        "message": f"interrupted at step {steps}"})
    if status == "resumed":
        records.append({"kind": "event", "step": steps, "event": "resumed", "epoch": 0,
                        "message": f"resumed at step {steps}"})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "checkpoints" / "last.pt").write_bytes(b"checkpoint")
    if status == "finished":
        known = [t for t in (temps or []) if t is not None]
        summary = {
            "run_name": name, "status": "finished", "ticker": ticker, "tier": "a20", "budget": budget,
            "task": task, "params": params, "device": "cpu", "primary_metric": metric,
            "test": {metric: test, "loss": test_loss},
            "baselines": CLASSIFICATION_BASELINES if baselines is None else baselines,
            "best_epoch": 1, "best_val": {"loss": 0.68, metric: val}, "steps": steps, "seconds": 3.0 * steps,
            "samples_per_s": 100.0, "temp_max_c": max(known) if known else None, "paused_total_s": 0.0,
            "windows": {"train": 1000, "val": 200, "test": 200},
        }
        (run / "summary.json").write_text(json.dumps(summary))
    for path in run.rglob("*"):
        os.utime(path, (mtime, mtime))
    return run


def write_marker(run_dir: Path, pid: int, hostname: str | None = None, started_at: str | None = None) -> RunMarker:
    """A ``running.json`` naming ``pid`` (on this host, started now, unless told otherwise)."""
    marker = RunMarker(pid, hostname or socket.gethostname(), started_at or utc_now(), ["fintrain", "train"])
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / MARKER_FILE).write_text(json.dumps(marker.to_json()))
    return marker


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def write_predictions(
    run_dir: Path,
    labels: Sequence[float],
    model: Sequence[float],
    baselines: dict[str, Sequence[float]],
    *,
    val_labels: Sequence[float] | None = None,
    val_scores: dict[str, Sequence[float]] | None = None,
    first_date: str = "2015-01-02",
) -> Path:
    """A ``predictions.parquet`` as a run writes it: one test window a business day from
    ``first_date`` with these labels and scores (and validation windows before them)."""
    import datetime as dt

    import polars as pl

    start = dt.date.fromisoformat(first_date)
    n, n_val = len(labels), len(val_labels or [])
    days = [start + dt.timedelta(days=7 * (k // 5) + k % 5) for k in range(n_val + n)]

    def part(split: str, dates: list, y: Sequence[float], scores: dict[str, Sequence[float]]) -> pl.DataFrame:
        return pl.DataFrame({"split": [split] * len(y), "date": dates, "ticker": ["MSFT"] * len(y),
                             "label": [float(v) for v in y], "next_return": [0.001] * len(y),
                             **{name: [float(v) for v in s] for name, s in scores.items()}})

    frames = []
    if val_labels is not None:
        frames.append(part("val", days[:n_val], val_labels, val_scores or {}))
    frames.append(part("test", days[n_val:], labels, {"PatchTST": model, **baselines}))
    path = Path(run_dir) / "predictions.parquet"
    pl.concat(frames).write_parquet(path)
    return path

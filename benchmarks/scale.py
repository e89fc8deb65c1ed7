"""Scaling out: a generated ticker universe through the feature pipeline, and DDP on the CPU.

1. Features for 50, 100 and 500 generated tickers (8,000 daily rows each) from raw Parquet files
   to feature files and manifest entries, each size in a fresh process: wall time, rows/s and
   the process's peak resident memory above its level after imports.
2. Training throughput of ``fintrain train --nproc 2`` (two gloo ranks, one thread each)
   against one process (two threads) on the same data and model.

    python benchmarks/scale.py [--sizes 50,100,500] [--rows 8000] [--tier a20] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import polars as pl

from fintrain.data import RawSeries, save_raw

MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    import psutil
    from fintrain.features import ensure_features_many
    data_dir, tier, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    tickers = [f"T{i:04d}" for i in range(n)]
    base = psutil.Process().memory_info().rss
    start = time.perf_counter()
    builds = ensure_features_many(data_dir, tickers, tier, force=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows = sum(b.entry["rows"] for b in builds.values())
    print(json.dumps({"tickers": n, "seconds": seconds, "feature_rows": rows,
                      "peak_mb_above_imports": (peak - base) / 2**20}))
    """
)

DDP_CONFIG = """
[data]
ticker = "T0000,T0001,T0002,T0003"
[model]
budget = "2m"
[train]
epochs = 1
max_steps = {steps}
batch_size = 64
device = "cpu"
log_every = 1
[thermal]
source = "none"
"""


def generate_universe(data_dir: Path, n: int, rows: int, seed: int = 0) -> None:
    """Random-walk OHLCV for n tickers, stored through the real raw store (validated)."""
    rng = np.random.default_rng(seed)
    dates = [dt.date(1990, 1, 1) + dt.timedelta(days=i) for i in range(rows * 7 // 5 + 10)]
    dates = [d for d in dates if d.weekday() < 5][:rows]
    for i in range(n):
        returns = rng.normal(0.0003, 0.012, rows)
        close = 50 * np.exp(np.cumsum(returns))
        open_ = close * np.exp(rng.normal(0, 0.004, rows))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, rows)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, rows)))
        volume = rng.lognormal(14, 0.5, rows)
        frame = pl.DataFrame({"date": dates, "open": open_, "high": high, "low": low, "close": close, "volume": volume})
        save_raw(data_dir, f"T{i:04d}", RawSeries(frame, "generated", True), name=f"T{i:04d}", min_rows=250)


def features_run(data_dir: Path, tier: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(data_dir), tier, str(n)],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = result["feature_rows"] / result["seconds"]
    return result


def ddp_run(root: Path, data_dir: Path, nproc: int, steps: int) -> float:
    config = root / "ddp.toml"
    config.write_text(DDP_CONFIG.format(steps=steps))
    name = f"ddp-{nproc}"
    env = {**os.environ, "FINTRAIN_DATA_DIR": str(data_dir), "FINTRAIN_RUNS_DIR": str(root / "runs")}
    cmd = [sys.executable, "-m", "fintrain", "train", "--config", str(config), "--no-live", "--run-name", name]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return json.loads((root / "runs" / name / "summary.json").read_text())["samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,100,500")
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--tier", default="a20")
    parser.add_argument("--ddp-steps", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    sizes = [int(s) for s in args.sizes.split(",")]

    root = Path(tempfile.mkdtemp(prefix="fintrain-scale-bench-"))
    data_dir = root / "data"
    say(f"generating {max(sizes)} tickers x {args.rows} rows in {data_dir} ...")
    generate_universe(data_dir, max(sizes), args.rows)
    features = []
    for n in sizes:
        features.append(features_run(data_dir, args.tier, n))
        r = features[-1]
        say(f"  {n} tickers: {r['seconds']:.2f} s, {r['rows_per_s']:,.0f} rows/s, "
            f"peak +{r['peak_mb_above_imports']:.0f} MB")
    say("training throughput, 2m budget, 4 tickers, batch 64 ...")
    one = ddp_run(root, data_dir, 1, args.ddp_steps)
    two = ddp_run(root, data_dir, 2, args.ddp_steps)
    result = {"features": features, "tier": args.tier, "rows_per_ticker": args.rows,
              "training": {"one_process_samples_per_s": one, "two_processes_samples_per_s": two,
                           "ratio": two / one, "steps": args.ddp_steps, "cpu_count": os.cpu_count()}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"\nfeatures {args.tier}, raw files -> feature files ({args.rows} rows per ticker)")
    print(f"{'tickers':>8} {'seconds':>9} {'s/ticker':>9} {'rows/s':>12} {'peak MB':>9}")
    for r in features:
        print(f"{r['tickers']:>8} {r['seconds']:>9.2f} {r['seconds'] / r['tickers']:>9.3f} "
              f"{r['rows_per_s']:>12,.0f} {r['peak_mb_above_imports']:>9.0f}")
    print(f"\ntraining on {os.cpu_count()} CPU cores, 2m budget, batch 64, {args.ddp_steps} steps:")
    print(f"  1 process : {one:8.1f} samples/s")
    print(f"  2 processes (gloo): {two:8.1f} samples/s   ratio {two / one:.2f}")
    print("\nOn an N-GPU machine: fintrain train --nproc N ...  (or torchrun --nproc-per-node N -m fintrain train ...)")


if __name__ == "__main__":
    main()

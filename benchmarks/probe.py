"""How long ``fintrain probe-batch`` takes on CPU, and how good its pick is against a longer sweep.

1. Runs ``fintrain probe-batch --tier a20 --budget 2m --device cpu --max-batch 256`` as a
   subprocess on SPY (the shared CSV imported into a temporary data folder, features built
   beforehand so the timing is the probe's, not the feature build's), with the cache in a
   temporary folder, and times it end to end (interpreter start and torch import included).
2. Measures every doubling size from 8 to ``--max-batch`` (those the probe skipped after its
   plateau too), longer and without the probe's code: one model and
   AdamW per size built through ``fintrain.train.run``, one warm-up step each, then
   ``--rounds`` rounds in which every size runs ``--steps-per-round`` timed training steps in
   turn. Round-robin order spreads the load of anything else running on the machine evenly
   over the sizes. samples/s = batch size / median step time.
3. Prints both side by side with the two checks of the issue: the probe in under
   ``--time-limit`` (60) seconds, and the sweep's throughput at the probe's pick within 5% of the
   sweep's best.

Usage::

    python benchmarks/probe.py [--csv ../shared/data/SPY_daily_1993-2021.csv] [--json]

With ``--json`` standard output holds only
``{"recommended": N, "probe_seconds": X, "sweep": [{"batch_size": N, "samples_per_s": X}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from fintrain.probe import doubling_sizes

REPO = Path(__file__).resolve().parents[1]
SPY_CSV = REPO.parent / "shared" / "data" / "SPY_daily_1993-2021.csv"


def fintrain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI (the interpreter's own) and fail loudly on an error."""
    cmd = [sys.executable, "-m", "fintrain", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return done


def prepare_workspace(data_dir: Path, csv: Path | None) -> None:
    """SPY raw data and a20 features in ``data_dir`` (imported from the CSV, or fetched)."""
    if csv is not None:
        fintrain("--data-dir", str(data_dir), "data", "import", str(csv), "--ticker", "SPY", "--adjusted")
    else:
        fintrain("--data-dir", str(data_dir), "data", "fetch", "SPY")
    fintrain("--data-dir", str(data_dir), "features", "build", "SPY", "--tier", "a20")


def run_probe(data_dir: Path, cache_dir: Path, max_batch: int) -> tuple[dict, float, float]:
    """The probe's JSON document, its wall-clock seconds and the CPU seconds it used.

    CPU seconds say how much work the probe did whatever else the machine was running: on an
    otherwise idle machine the wall time is about CPU seconds / threads.
    """
    env = {**os.environ, "FINTRAIN_CACHE_DIR": str(cache_dir)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = fintrain("--data-dir", str(data_dir), "probe-batch", "--tier", "a20", "--budget", "2m",
                    "--device", "cpu", "--max-batch", str(max_batch), "--json", env=env)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout), seconds, cpu_seconds


def sweep(data_dir: Path, sizes: list[int], rounds: int, steps_per_round: int) -> dict[int, float]:
    """samples/s per size, measured round-robin with the training code (not the probe's)."""
    from fintrain.config import load_config
    from fintrain.train.loop import loss_function, make_optimizer
    from fintrain.train.prepare import prepare_data
    from fintrain.train.run import build_model, model_config_for

    cfg = load_config(overrides={"features": {"tier": "a20"}, "model": {"budget": "2m"},
                                 "train": {"device": "cpu"}})
    device = torch.device("cpu")
    prepared = prepare_data(data_dir, cfg, device)
    model_cfg = model_config_for(cfg, prepared.n_features)
    train = prepared.splits.train
    loss_fn = loss_function(cfg.target.task)
    setups = {}
    for size in sizes:
        model = build_model(model_cfg, cfg.train.seed, device)
        model.train()
        optimizer = make_optimizer(model, cfg.train)
        batches = train.batch_indices(size, shuffle=True, seed=cfg.train.seed, epoch=0)
        setups[size] = (model, optimizer, batches)

    def step(size: int, i: int) -> float:
        model, optimizer, batches = setups[size]
        t0 = time.perf_counter()
        x, y = train.gather(batches[i % len(batches)])
        loss = loss_fn(model(x).reshape(-1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        return time.perf_counter() - t0

    for size in sizes:
        step(size, 0)  # warm-up: optimizer state, allocator pools
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for r in range(rounds):
        for size in sizes:
            for k in range(steps_per_round):
                times[size].append(step(size, 1 + r * steps_per_round + k))
        print(f"  sweep round {r + 1}/{rounds} done", file=sys.stderr)
    return {size: size / statistics.median(ts) for size, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=SPY_CSV if SPY_CSV.is_file() else None,
                        help="SPY daily CSV to import (default: ../shared/data's; else fetch SPY)")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="sweep rounds over all sizes")
    parser.add_argument("--steps-per-round", type=int, default=2, help="timed steps per size per round")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds the probe may take")
    parser.add_argument("--json", action="store_true", help="print only the JSON document")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fintrain-probe-bench-") as tmp:
        data_dir, cache_dir = Path(tmp) / "data", Path(tmp) / "cache"
        print("preparing SPY data and a20 features...", file=sys.stderr)
        prepare_workspace(data_dir, args.csv)
        print("running fintrain probe-batch...", file=sys.stderr)
        doc, probe_seconds, probe_cpu_seconds = run_probe(data_dir, cache_dir, args.max_batch)
        sizes = doubling_sizes(8, args.max_batch)
        print(f"probe took {probe_seconds:.1f} s; sweeping {sizes}...", file=sys.stderr)
        rates = sweep(data_dir, sizes, args.rounds, args.steps_per_round)
    load_after = os.getloadavg()[0]

    recommended = doc["recommended"]
    result = {
        "recommended": recommended,
        "probe_seconds": round(probe_seconds, 2),
        "sweep": [{"batch_size": s, "samples_per_s": round(rates[s], 3)} for s in sizes],
    }
    if args.json:
        print(json.dumps(result))
        return

    best = max(sizes, key=lambda s: rates[s])
    share = rates[recommended] / rates[best]
    probe_rates = {t["batch_size"]: t["samples_per_s"] for t in doc["trials"] if t["samples_per_s"]}
    print(f"machine: {doc['device']}, {os.cpu_count()} CPUs; load average {load_before:.1f} before, "
          f"{load_after:.1f} after")
    print(f"{'batch':>6} {'probe samples/s':>16} {'sweep samples/s':>16} {'of best':>8}")
    for s in sizes:
        mark = "  <- recommended" if s == recommended else ""
        probed = f"{probe_rates[s]:>16.1f}" if s in probe_rates else f"{'not tried':>16}"
        print(f"{s:>6} {probed} {rates[s]:>16.1f} {rates[s] / rates[best]:>8.0%}{mark}")
    ok_time = probe_seconds < args.time_limit
    ok_pick = share >= 0.95
    print(f"probe time: {probe_seconds:.1f} s (limit {args.time_limit:.0f} s): {'PASS' if ok_time else 'FAIL'}; "
          f"it used {probe_cpu_seconds:.1f} CPU seconds ({torch.get_num_threads()} torch threads)")
    print(f"pick: {recommended} gives {share:.0%} of the sweep's best ({best}: {rates[best]:.1f} "
          f"samples/s; need >= 95%): {'PASS' if ok_pick else 'FAIL'}")
    print(f"probe's reason: {doc['reason']}")


if __name__ == "__main__":
    main()

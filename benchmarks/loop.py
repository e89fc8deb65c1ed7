"""Loop overhead and start-up time of `fintrain train`.

1. Samples/s of ``fit()`` with the live panel (rendering to a terminal console), JSON lines,
   TensorBoard and a thermal monitor thread all on, divided by samples/s of a bare loop of
   the same model steps on the same tensors (same optimizer, schedule, clipping, batches).
   Goal: >= 0.95 on CPU, for a tiny model and for the 2m budget.
2. From the command's start to its first training step, data already built. Goal: < 8 s.

    python benchmarks/loop.py [--tiny-steps 400] [--big-steps 8] [--repeats 7] [--json]

Figures are medians over ``--repeats`` pairs of runs, after one warm-up pair; within a pair the
order alternates. The ratio is that of the medians; the median and range of the per-pair ratios
are printed beside it, since one run on a shared two-core machine varies by 5-10%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from fintrain.config import TrainConfig, load_config
from fintrain.data import fetch, import_file
from fintrain.thermal import ThermalMonitor, open_sensor
from fintrain.tracking import RunInfo, make_sinks
from fintrain.train.loop import Checkpointer, FitData, fit, loss_function, lr_factor, make_optimizer
from fintrain.train.run import build_model, model_config_for
from fintrain.train.prepare import prepare_data

REPO = Path(__file__).resolve().parents[1]
SPY_CSV = REPO.parent / "shared" / "data" / "SPY_daily_1993-2021.csv"
TRACE = REPO / "examples" / "thermal" / "rise_to_92.csv"  # starts at 55 C: no pause in a minute
TINY = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}


def setup_data(data_dir: Path) -> tuple[str, str]:
    """SPY from the shared CSV when present, else the offline MSFT sample."""
    if SPY_CSV.is_file():
        import_file(data_dir, SPY_CSV, "SPY", adjusted=True)
        return "SPY", "yahoo"
    cfg = load_config(overrides={"data": {"ticker": "MSFT", "source": "sample"}}, environ={})
    fetch(data_dir, cfg.data)
    return "MSFT", "sample"


def bare_loop(model, train, cfg, task, batch_size, steps) -> float:
    """Samples/s of the same steps with nothing around them."""
    optimizer = make_optimizer(model, cfg)
    order: list[torch.Tensor] = []
    epoch = 0
    while len(order) < steps:  # the same batches fit() takes, epoch after epoch
        order += train.batch_indices(batch_size, shuffle=True, seed=cfg.seed, epoch=epoch)
        epoch += 1
    total = steps  # fit() runs with max_steps=steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, total))
    loss_fn = loss_function(task)
    model.train()
    samples = 0
    start = time.perf_counter()
    for b in range(steps):
        x, y = train.gather(order[b])
        loss = loss_fn(model(x).reshape(-1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        samples += len(y)
    float(loss.detach())  # one host sync at the end, as the loop's last logging step does
    return samples / (time.perf_counter() - start)


def full_fit(model, prepared, cfg, model_cfg, batch_size, steps, run_dir: Path) -> float:
    """Samples/s of fit() with the panel, JSON lines, TensorBoard and a thermal monitor on."""
    splits = prepared.splits
    train_cfg = TrainConfig.model_validate({**cfg.train.model_dump(), "max_steps": steps, "batch_size": batch_size})
    info = RunInfo(run_name=run_dir.name, run_dir=run_dir, device="cpu", ticker=cfg.data.ticker,
                   tier=cfg.features.tier, budget=cfg.model.budget, params=sum(p.numel() for p in model.parameters()),
                   task=cfg.target.task, epochs=cfg.train.epochs, steps_per_epoch=len(splits.train) // batch_size,
                   max_steps=steps, primary_metric="auc")
    terminal = Console(file=open(os.devnull, "w"), force_terminal=True, width=120)
    sink = make_sinks(info, run_dir, {"budget": cfg.model.budget}, live=True, console=terminal)
    monitor = ThermalMonitor(cfg.thermal, open_sensor(f"replay:{TRACE}")).start()
    try:
        data = FitData(splits.train, splits.val, cfg.target.task)
        result = fit(model, data, train_cfg, sink, Checkpointer(run_dir / "checkpoints", {}), monitor=monitor)
    finally:
        monitor.stop()
        sink.close()
    return result.state.samples_seen / result.state.train_seconds


def startup_seconds(data_dir: Path, runs_dir: Path, ticker: str, source: str) -> float:
    """Wall time from launching `python -m fintrain train` to its first logged training step."""
    env = {**os.environ, "FINTRAIN_DATA_DIR": str(data_dir), "FINTRAIN_RUNS_DIR": str(runs_dir),
           "FINTRAIN_TRAIN__LOG_EVERY": "1"}
    name = f"startup-{time.time_ns()}"
    metrics = runs_dir / name / "metrics.jsonl"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fintrain", "train", "--ticker", ticker, "--source", source, "--tier", "a20",
         "--budget", "2m", "--max-steps", "2", "--device", "cpu", "--no-live", "--run-name", name,
         "--thermal-source", "none"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    first = None
    while proc.poll() is None and first is None:
        if metrics.exists() and '"kind": "train"' in metrics.read_text():
            first = time.perf_counter() - start
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    if first is None:
        raise SystemExit("the startup run ended without logging a training step")
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny-steps", type=int, default=400)
    parser.add_argument("--big-steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    root = Path(tempfile.mkdtemp(prefix="fintrain-loop-bench-"))
    data_dir, runs_dir = root / "data", root / "runs"
    ticker, source = setup_data(data_dir)
    results = {}
    for label, overrides, steps in (("tiny", TINY, args.tiny_steps), ("2m", {}, args.big_steps)):
        cfg = load_config(overrides={"data": {"ticker": ticker, "source": source}, "model": overrides,
                                     "train": {"device": "cpu", "epochs": 100, "log_every": 20}}, environ={})
        prepared = prepare_data(data_dir, cfg, "cpu")
        model_cfg = model_config_for(cfg, prepared.n_features)

        def run_bare() -> float:
            return bare_loop(build_model(model_cfg, 0, torch.device("cpu")), prepared.splits.train,
                             cfg.train, cfg.target.task, args.batch_size, steps)

        def run_fit(name: str) -> float:
            return full_fit(build_model(model_cfg, 0, torch.device("cpu")), prepared, cfg, model_cfg,
                            args.batch_size, steps, runs_dir / f"{label}-{name}")

        run_bare(), run_fit("warm-up")  # not counted: first-touch allocations, thread pools, imports
        bare, full = [], []
        for r in range(args.repeats):
            # Alternate which goes first, so that a drift in machine speed hits both alike.
            if r % 2 == 0:
                bare.append(run_bare())
                full.append(run_fit(str(r)))
            else:
                full.append(run_fit(str(r)))
                bare.append(run_bare())
            say(f"  {label} repeat {r + 1}: bare {bare[-1]:.1f} samples/s, fit {full[-1]:.1f} samples/s, "
                f"ratio {full[-1] / bare[-1]:.3f}")
        b, f = statistics.median(bare), statistics.median(full)
        paired = [x / y for x, y in zip(full, bare, strict=True)]
        results[label] = {"steps": steps, "batch_size": args.batch_size, "bare_samples_per_s": b,
                          "fit_samples_per_s": f, "ratio": f / b, "paired_ratio_median": statistics.median(paired),
                          "paired_ratio_min": min(paired), "paired_ratio_max": max(paired)}
    startup = statistics.median(startup_seconds(data_dir, runs_dir, ticker, source) for _ in range(args.repeats))
    results["startup_to_first_step_s"] = startup
    results["data"] = ticker
    results["threads"] = torch.get_num_threads()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\nloop overhead on CPU ({torch.get_num_threads()} threads, {ticker} a20, batch {args.batch_size}; "
          f"medians of {args.repeats})")
    print(f"{'model':6} {'steps':>6} {'bare samples/s':>15} {'fit() samples/s':>16} {'ratio':>7}  goal"
          f"            paired ratios: median (min-max)")
    for label in ("tiny", "2m"):
        r = results[label]
        print(f"{label:6} {r['steps']:>6} {r['bare_samples_per_s']:>15.1f} {r['fit_samples_per_s']:>16.1f} "
              f"{r['ratio']:>7.3f}  >= 0.95 {'ok    ' if r['ratio'] >= 0.95 else 'MISSED'}     "
              f"{r['paired_ratio_median']:.3f} ({r['paired_ratio_min']:.3f}-{r['paired_ratio_max']:.3f})")
    print(f"start-up to first training step: {startup:.2f} s  (goal < 8 s {'ok' if startup < 8 else 'MISSED'})")


if __name__ == "__main__":
    main()

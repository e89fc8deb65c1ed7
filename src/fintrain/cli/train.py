"""``fintrain train``: fetch, build features, train PatchTST, report test metrics beside baselines."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from fintrain.cli.common import err_console, out_console, print_json, run_config, styled, table_console, workspace
from fintrain.cli.data import tickers_option
from fintrain.display import format_duration, format_metric, shown_metrics
from fintrain.errors import ConfigError, TrainingStopped


def _batch_size(value: Optional[str]) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a positive integer nor 'auto'", param_hint="--batch-size")


def _notify(message: str) -> None:
    err_console.print(message, style="dim", highlight=False, soft_wrap=True)


def _interval(ci: Any, signed: bool = False) -> str:
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return "-"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"{fmt.format(ci[0])}..{fmt.format(ci[1])}"


def _level(summary: dict[str, Any]) -> str:
    return f"{round(100 * summary.get('eval', {}).get('ci', 0.95))}%"


def render_summary(summary: dict[str, Any]) -> Table:
    """Test metrics of the model beside each baseline, one row per predictor, with the bootstrap
    interval of the primary metric and of the model's paired difference from each baseline."""
    metrics = [name for name, _ in shown_metrics(summary["test"])]  # each value once: no loss beside log_loss
    primary = summary.get("primary_metric", metrics[0])
    has_ci = "test_ci" in summary
    selected = f", selected on validation {summary['selected_on']}" if "selected_on" in summary else ""
    table = Table(title=f"test metrics ({summary['windows']['test']:,} windows{selected})")
    table.add_column("predictor", no_wrap=True)
    for m in metrics:
        table.add_column(m, justify="right")
    if has_ci:
        table.add_column(f"{primary} {_level(summary)} CI", justify="right")
        table.add_column(f"PatchTST - this, {_level(summary)} CI", justify="right")
    ci_cells = [_interval(summary["test_ci"].get(primary)), ""] if has_ci else []
    table.add_row(f"PatchTST {summary['budget']}", *(format_metric(m, summary["test"][m]) for m in metrics), *ci_cells,
                  style="bold")
    comparisons = summary.get("comparisons", {})
    for name, values in summary["baselines"].items():
        cells = [format_metric(m, values[m]) if isinstance(values.get(m), int | float) else "-" for m in metrics]
        if has_ci:
            comparison = comparisons.get(name, {})
            verdict = f" {comparison['verdict']}" if "verdict" in comparison else ""
            cells += [_interval(values.get("ci", {}).get(primary)), _interval(comparison.get("ci"), signed=True) + verdict]
        table.add_row(name, *cells)
    return table


TRADING_COLUMNS = (("ann_return", "return/yr", "{:+.1%}"), ("ann_vol", "vol/yr", "{:.1%}"), ("sharpe", "Sharpe", "{:.2f}"),
                   ("max_drawdown", "max DD", "{:.1%}"), ("turnover", "turnover", "{:.3f}"), ("exposure", "exposure", "{:.2f}"))


def render_trading(summary: dict[str, Any]) -> Table:
    """The long/flat strategy of the model and each learned baseline beside buy-and-hold (test dates)."""
    trading = summary["trading"]
    cost = summary.get("eval", {}).get("cost_bps", 5)
    days = trading.get("buy_and_hold", {}).get("days", 0)
    table = Table(title=f"trading view (test, {days:,} days, long/flat at the validation cut, {cost:g} bps per unit turnover)")
    table.add_column("strategy", no_wrap=True)
    for _, title, _ in TRADING_COLUMNS:
        table.add_column(title, justify="right")
    table.add_column("cut q", justify="right")
    table.add_column(f"Sharpe - buy&hold, {_level(summary)} CI", justify="right")
    for name, values in trading.items():
        label = f"PatchTST {summary['budget']}" if name == "PatchTST" else name
        cells = [fmt.format(values[key]) if isinstance(values.get(key), int | float) else "-" for key, _, fmt in TRADING_COLUMNS]
        vs = values.get("vs_buy_and_hold")
        cells.append(f"{values['cut_quantile']:.1f}" if "cut_quantile" in values else "-")
        cells.append(f"{vs['ci'][0]:+.2f}..{vs['ci'][1]:+.2f} {vs['verdict']}" if vs else "-")
        table.add_row(label, *cells, style="bold" if name == "PatchTST" else None)
    return table


def render_ic(summary: dict[str, Any]) -> Table:
    """Daily cross-sectional IC and Rank IC (mean, std, IR) per predictor, for universes."""
    table = Table(title="cross-sectional IC against the next day's return (test)")
    table.add_column("predictor", no_wrap=True)
    for title in ("IC", "ICIR", "Rank IC", "Rank ICIR", "days"):
        table.add_column(title, justify="right")
    for name, v in summary["ic"].items():
        table.add_row(name, f"{v['ic']:+.4f}", f"{v['icir']:+.3f}", f"{v['rank_ic']:+.4f}", f"{v['rank_icir']:+.3f}", f"{v['days']:,}")
    return table


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    """One line per learned baseline: ``PatchTST 2m vs gbdt: AUC -0.031 (95% CI -0.058..-0.004), worse``."""
    learned = [name for name in summary.get("trading", {}) if name not in ("PatchTST", "buy_and_hold")]
    lines = []
    for name in learned:
        c = summary.get("comparisons", {}).get(name)
        if c is None:
            continue
        lo, hi = c["ci"]
        lines.append(f"PatchTST {summary['budget']} vs {name}: {c['metric'].upper()} {c['diff']:+.3f} "
                     f"({_level(summary)} CI {lo:+.3f}..{hi:+.3f}), {c['verdict']}")
    return lines


def print_verdicts(summary: dict[str, Any]) -> None:
    """The test table, the trading table, IC for universes, and the verdict lines (train, runs show)."""
    console = table_console(160)
    console.print(render_summary(summary))
    if summary.get("trading"):
        console.print(render_trading(summary))
    if summary.get("ic"):
        console.print(render_ic(summary))
    for line in verdict_lines(summary):
        out_console.print(line, highlight=False, soft_wrap=True)


def render_per_ticker(summary: dict[str, Any]) -> Table:
    """The model's test metrics for each ticker's windows."""
    per_ticker = summary["per_ticker"]
    metrics = [m for m, _ in shown_metrics(next(iter(per_ticker.values()))) if m != "windows"]
    table = Table(title="test metrics per ticker")
    table.add_column("ticker", no_wrap=True)
    table.add_column("windows", justify="right")
    for m in metrics:
        table.add_column(m, justify="right")
    for ticker, values in per_ticker.items():
        table.add_row(ticker, f"{values['windows']:,}", *(format_metric(m, values[m]) for m in metrics))
    return table


def train(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option(help="TOML file holding a run configuration.")] = None,
    ticker: Annotated[Optional[str], typer.Option(help="Ticker, or several comma-separated (AAPL,IBM,MSFT) (default SPY).")] = None,
    universe: Annotated[Optional[Path], typer.Option(help="File with one ticker per line (instead of --ticker).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Where to fetch missing data: yahoo or sample.")] = None,
    tier: Annotated[Optional[str], typer.Option(help="Feature tier (default a20).")] = None,
    budget: Annotated[Optional[str], typer.Option(help="Parameter budget: 2m, 20m, 200m, or any size such as 300k or 5m (default 2m).")] = None,
    task: Annotated[Optional[str], typer.Option(help="threshold, direction or return (default threshold).")] = None,
    horizon: Annotated[Optional[int], typer.Option(help="Days ahead the label looks (default 1).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="tau of the threshold task (default 0.01).")] = None,
    context_len: Annotated[Optional[int], typer.Option(help="Rows in one input window (default 60).")] = None,
    data_fraction: Annotated[Optional[float], typer.Option(help="Keep this share of the training period, dropping its oldest dates (same last training date; validation and test unchanged) (default 1).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs (default 20).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many optimizer steps.")] = None,
    batch_size: Annotated[Optional[str], typer.Option(help="Samples per step, or auto (probe-batch's cached pick).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 3e-4).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default 0).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, mps, cuda or cpu (default auto).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="fp32 or bf16 (autocast) (default fp32).")] = None,
    run_name: Annotated[Optional[str], typer.Option(help="Run folder name (default time-ticker-tier-budget).")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Save last.pt every N steps (and at each epoch end).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder (or of this name in --runs-dir) from its last.pt.")] = None,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain lines instead of the live panel.")] = False,
    thermal_source: Annotated[Optional[str], typer.Option(help="auto, none, macos, linux, nvidia, command:CMD, replay:PATH?speed=N.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate, build the model, print the plan; do not train.")] = False,
    nproc: Annotated[Optional[int], typer.Option(min=1, help="Train with N processes: launches torchrun --nproc-per-node N (DDP).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary (or the --dry-run plan) as JSON on stdout.")] = False,
) -> None:
    """Train PatchTST on one ticker's features and report test metrics beside baselines.

    Fetches the ticker when no raw data is present and builds the tier's features when they
    are missing or stale. Ctrl-C saves a checkpoint (exit 130); a thermal critical saves one
    and exits 3; continue either with --resume.

    Examples:
      fintrain train --tier a20 --budget 2m            # SPY, from Yahoo Finance
      fintrain train --ticker MSFT --source sample     # offline sample data
      fintrain train --ticker SPY --budget 300k --epochs 5 --max-steps 200
      fintrain train --config examples/spy_a20_2m.toml --batch-size auto
      fintrain train --resume runs/RUN-FOLDER          # after Ctrl-C
    """
    ws = workspace(ctx)
    if nproc is not None and nproc > 1:
        raise typer.Exit(launch_torchrun(nproc))
    # Imported here so that other commands start without loading torch.
    from fintrain.train import distributed
    from fintrain.train import run as run_lib

    dist = distributed.from_environment()
    live = not no_live and not json_ and err_console.is_terminal and dist.is_main
    notify = _notify if dist.is_main else (lambda message: None)
    options = run_lib.RunOptions(live=live, console=err_console, notify=notify, dist=dist)
    if resume is not None and not resume.exists() and (ws.runs_dir / resume).is_dir():
        resume = ws.runs_dir / resume  # a run's name, as `fintrain runs list` shows it
    try:
        if resume is not None:
            given = {
                "--config": config, "--ticker": ticker, "--universe": universe, "--source": source, "--tier": tier,
                "--budget": budget, "--task": task, "--horizon": horizon, "--threshold": threshold,
                "--context-len": context_len, "--data-fraction": data_fraction, "--batch-size": batch_size, "--lr": lr, "--seed": seed,
                "--precision": precision, "--run-name": run_name,
            }
            refused = [name for name, value in given.items() if value is not None] + (["--dry-run"] if dry_run else [])
            if refused:
                raise ConfigError(
                    f"{', '.join(refused)} cannot be used with --resume (the run keeps its configuration); "
                    "allowed: --thermal-source, --no-live, --device, --max-steps, --epochs, --checkpoint-every"
                )
            overrides = {"thermal.source": thermal_source, "train.device": device, "train.max_steps": max_steps,
                         "train.epochs": epochs, "train.checkpoint_every": checkpoint_every}
            outcome = run_lib.resume_run(
                resume, ws.data_dir, {k: v for k, v in overrides.items() if v is not None},
                options=options,
            )
            run_dir = outcome.run_dir
            if outcome.already_finished:
                err_console.print(f"{run_dir} has already finished; nothing to resume "
                                  "(give --epochs or --max-steps to extend it)", soft_wrap=True, highlight=False)
                if json_:
                    print_json(outcome.summary)
                return
        else:
            cfg = run_config(
                config,
                {
                    "data": {"ticker": tickers_option(ticker, universe), "source": source},
                    "features": {"tier": tier},
                    "model": {"budget": budget},
                    "target": {"task": task, "horizon": horizon, "threshold": threshold},
                    "split": {"context_len": context_len, "data_fraction": data_fraction},
                    "train": {"epochs": epochs, "max_steps": max_steps, "batch_size": _batch_size(batch_size),
                              "lr": lr, "seed": seed, "device": device, "precision": precision,
                              "checkpoint_every": checkpoint_every},
                    "thermal": {"source": thermal_source},
                },
            )
            run_lib.check_names(cfg)
            if dry_run:
                plan = run_lib.plan_run(cfg, ws.data_dir, notify=notify, dist=dist)
                report = plan.describe()
                notify(f"timing a warm-up and 3 training steps of batch {plan.batch_size} on {report['device']}...")
                report["plan"] = plan.estimate(ws.runs_dir / (run_name or run_lib.default_run_name(cfg)))
                if json_:
                    print_json(report)
                else:
                    _print_plan(report)
                return
            name = run_name or run_lib.default_run_name(cfg)
            run_dir = ws.runs_dir / name
            outcome = run_lib.start_run(cfg, ws.data_dir, ws.runs_dir, run_name=name, options=options)
    except TrainingStopped as stop:
        if dist.is_main:
            where = resume if resume is not None else run_dir
            err_console.print(styled("stopped:", "bold red", f" {stop}"), highlight=False, soft_wrap=True)
            err_console.print(f"resume with: fintrain train --resume {where}", highlight=False, soft_wrap=True)
        raise typer.Exit(stop.exit_code) from None
    finally:
        # TrainingStopped was agreed by every rank, so its exit is as clean as a finished run.
        failure = sys.exc_info()[1]
        distributed.shutdown(dist, clean=failure is None or isinstance(failure, typer.Exit))
    summary = outcome.summary
    if not dist.is_main:
        return
    if json_:
        print_json(summary)
        return
    print_verdicts(summary)
    if summary.get("per_ticker"):
        out_console.print(render_per_ticker(summary))
    out_console.print(
        f"run: {outcome.run_dir}  ({summary['steps']} steps, best epoch {summary['best_epoch'] or '-'}, "
        f"{summary['params']:,} parameters, {summary['device']})",
        highlight=False, soft_wrap=True,
    )


def launch_torchrun(nproc: int) -> int:
    """Re-run this command under ``torchrun --nproc-per-node N``; return its exit code."""
    args: list[str] = []
    skip = False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "fintrain", *args]
    err_console.print(f"launching: {shlex.join(command)}", style="dim", highlight=False, soft_wrap=True)
    proc = subprocess.Popen(command)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The ranks got the same Ctrl-C: let them save their checkpoint and exit.
        return proc.wait()


def _print_plan(report: dict[str, Any]) -> None:
    """The dry run's plan in a few lines; ``--json`` has the full configuration."""
    data = report["data"]
    shape = report["model_config"]
    w = data["windows"]
    plan = report["plan"]
    cap = f", capped by --max-steps {plan['max_steps']:,}" if plan["max_steps"] else ""
    lines = [
        f"device       {report['device']}",
        f"model        PatchTST {report['config']['model']['budget']}: {report['params']:,} parameters "
        f"({shape['n_layers']} layers, d_model {shape['d_model']}, {shape['n_heads']} heads, d_ff {shape['d_ff']})",
        f"data         {data['ticker']} {data['tier']}: {data['rows']:,} rows {data['first_date']}..{data['last_date']}, "
        f"{data['n_features']} features",
        f"windows      train {w['train']:,}, val {w['val']:,}, test {w['test']:,}",
        f"batch size   {report['batch_size']} ({report['batch_size_origin']})",
        f"steps        {plan['steps_per_epoch']:,} per epoch x {plan['epochs']} epochs{cap}: {plan['total_steps']:,} steps",
        f"estimate     about {format_duration(plan['estimated_s'])} ({plan['step_s']:.3g} s per step, timed over "
        f"{plan['steps_timed']} steps after a warm-up, plus validation and test passes; baselines not counted)",
        f"run folder   {plan['run_dir']}",
    ]
    for line in lines:
        out_console.print(line, highlight=False, soft_wrap=True)
    out_console.print("the full configuration: add --json", style="dim", highlight=False)

"""``fintrain sweep``: train one configuration at several budgets and seeds, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from fintrain.cli.common import (
    err_console,
    out_console,
    print_json,
    run_config,
    styled,
    workspace,
)
from fintrain.cli.train import _batch_size, _notify
from fintrain.errors import ConfigError, TrainingStopped
from fintrain.experiments import sweep as sweep_lib
from fintrain.train.options import RunOptions


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _progress(p: sweep_lib.SweepProgress) -> None:
    doing = {"new": "new", "resume": "resuming", "extend": "extending", "skip": "done, skipped"}[p.action]
    left = f" · ~{_clock(p.eta_s)} left" if p.eta_s is not None else ""
    err_console.rule(
        f"sweep {p.name} {p.index + 1}/{p.total}: {p.cell.name} ({doing}) · {p.finished} done · "
        f"{_clock(p.elapsed_s)}{left}",
        style="cyan", characters="─",
    )


def _cells_table(result: sweep_lib.SweepResult) -> Table:
    table = Table(title=f"sweep {result.name}")
    for column in ("cell", "this command", "params", "steps", "test", "seconds"):
        table.add_column(column, justify="left" if column in ("cell", "this command") else "right")
    for r in result.cells:
        s = r.summary or {}
        metric = s.get("primary_metric", "")
        test = s.get("test", {}).get(metric)
        table.add_row(r.cell.name, {"new": "trained", "resume": "resumed", "extend": "extended", "skip": "skipped"}[r.action],
                      f"{s['params']:,}" if "params" in s else "-", str(s.get("steps", "-")),
                      f"{metric} {test:.4f}" if isinstance(test, float) else "-", f"{r.seconds:.0f}")
    return table


def sweep(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Sweep name: each cell is the run folder NAME-BUDGET-seedK.")],
    budgets: Annotated[str, typer.Option(help="Comma-separated budgets, e.g. 2m,20m,200m.")] = "2m",
    seeds: Annotated[int, typer.Option(help="Seeds per budget (0..N-1).", min=1)] = 1,
    config: Annotated[Optional[Path], typer.Option(help="TOML file holding the shared run configuration.")] = None,
    ticker: Annotated[Optional[str], typer.Option(help="Ticker, or several comma-separated (AAPL,IBM,MSFT) (default: SPY).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Where to fetch missing data: yahoo or sample.")] = None,
    tier: Annotated[Optional[str], typer.Option(help="Feature tier (default: a20).")] = None,
    task: Annotated[Optional[str], typer.Option(help="threshold, direction or return (default: threshold).")] = None,
    horizon: Annotated[Optional[int], typer.Option(help="Days ahead the label looks (default: 1).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="tau of the threshold task (default: 0.01).")] = None,
    context_len: Annotated[Optional[int], typer.Option(help="Rows in one input window (default: 60).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs per cell (default: 20).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop each cell after this many optimizer steps.")] = None,
    batch_size: Annotated[Optional[str], typer.Option(help="Samples per step for every cell, or auto (resolved once, for the largest cell, and kept by reruns).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default: 3e-4).")] = None,
    lrs: Annotated[Optional[str], typer.Option(help="Tune each budget (and context and fraction) over these rates (3e-4,1e-3,3e-3): seed 0 trains at each, the best on validation is chosen, the other seeds train at it.")] = None,
    context_lens: Annotated[Optional[str], typer.Option(help="Sweep the look-back: context lengths in rows (30,60,120); cells gain -ctx<rows>.")] = None,
    data_fractions: Annotated[Optional[str], typer.Option(help="Sweep the amount of data: shares of the training period (0.25,0.5,1), each cut from its start (its oldest dates dropped, the same last training date); validation and test stay the same; cells gain -frac<share>.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, mps, cuda or cpu (default: auto).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="fp32 or bf16 (autocast) (default: fp32).")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Save last.pt every N steps (and at each epoch end).")] = None,
    thermal_source: Annotated[Optional[str], typer.Option(help="auto, none, macos, linux, nvidia, command:CMD, replay:PATH?speed=N.")] = None,
    no_live: Annotated[bool, typer.Option("--no-live", help="Plain lines instead of each cell's live panel.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the cells with an estimated time each (a few timed steps per model shape); train nothing.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the cells' summaries (or the --dry-run plan) as JSON on stdout.")] = False,
) -> None:
    """Train the grid of budgets x context lengths x data fractions x seeds one cell after another,
    under one thermal policy.

    Each cell is an ordinary run folder runs/<name>-<budget>-seed<k> (seed k is train.seed);
    with --context-lens and --data-fractions the name gains -ctx<rows> and -frac<share>
    (runs/<name>-<budget>-ctx120-frac0.5-seed0). Run the same command again to continue:
    finished cells are skipped, an interrupted one resumes from its last.pt. A thermal critical
    ends the sweep with exit code 3, Ctrl-C with 130, both after the cell saved its checkpoint.
    Compare the cells with `fintrain report`.

    A data fraction f keeps the last f of the training period's dates (its start is cut; it ends
    on the same date), so the training windows, the scaling statistics and the baselines see
    less history while the validation and test windows stay exactly the same.

    With --lrs, seed 0 of each budget (and context and fraction) trains at every rate
    (...-lr<rate>-seed0), the rate with the best validation metric is chosen (the test split is
    not looked at), and the other seeds train at that rate only.

    Every cell trains at one batch size; --batch-size auto resolves it once, for the largest cell.

    --dry-run lists the cells with an estimated time each and the total, training nothing.

    Examples:
      fintrain sweep --name demo --ticker MSFT --source sample --budgets 2m,20m
      fintrain sweep --name sizes --budgets 50k,300k,1m,2m --seeds 3
      fintrain sweep --name tuned --budgets 2m --lrs 3e-4,1e-3,3e-3 --seeds 2
    """
    ws = workspace(ctx)
    if lr is not None and lrs is not None:
        raise ConfigError("give --lr (one rate for every cell) or --lrs (tune each budget), not both")
    if context_len is not None and context_lens is not None:
        raise ConfigError("give --context-len (one look-back for every cell) or --context-lens (sweep it), not both")
    base = run_config(
        config,
        {
            "data": {"ticker": ticker, "source": source},
            "features": {"tier": tier},
            "target": {"task": task, "horizon": horizon, "threshold": threshold},
            "split": {"context_len": context_len},
            "train": {"epochs": epochs, "max_steps": max_steps, "batch_size": _batch_size(batch_size),
                      "lr": lr, "device": device, "precision": precision, "checkpoint_every": checkpoint_every},
            "thermal": {"source": thermal_source},
        },
    )
    if dry_run:
        plans = sweep_lib.plan_sweep(base, name, budgets.split(","), seeds, ws.data_dir, ws.runs_dir, lrs=lrs,
                                     context_lens=context_lens, data_fractions=data_fractions, notify=_notify)
        total = sum(p.estimated_s for p in plans)
        if json_:
            print_json({"sweep": name, "cells": [p.to_json() for p in plans], "estimated_s": total})
        else:
            out_console.print(_plan_table(name, plans, total))
        return
    live = not no_live and not json_ and err_console.is_terminal
    try:
        result = sweep_lib.run_sweep(base, name, budgets.split(","), seeds, ws.data_dir, ws.runs_dir, lrs=lrs,
                                     context_lens=context_lens, data_fractions=data_fractions,
                                     options=RunOptions(live=live, console=err_console, notify=_notify),
                                     on_cell=_progress)
    except TrainingStopped as stop:
        err_console.print(styled("stopped:", "bold red", f" {stop.run_dir.name if stop.run_dir else ''}: {stop}"),
                          highlight=False, soft_wrap=True)
        err_console.print(f"continue: run the same `fintrain sweep --name {name} ...` command again "
                          "(finished cells are skipped, this one resumes)", highlight=False, soft_wrap=True)
        raise typer.Exit(stop.exit_code) from None
    if json_:
        print_json({"sweep": name, "cells": [_cell_json(r) for r in result.cells]})
        return
    out_console.print(_cells_table(result))
    out_console.print(f"compare the cells with: fintrain report --sweep {name}", highlight=False, soft_wrap=True)


def _plan_table(name: str, plans: list[sweep_lib.CellPlan], total: float) -> Table:
    table = Table(title=f"sweep {name}: {len(plans)} cells, about {_clock(total)} in all (dry run: nothing trained)",
                  caption="estimates: training steps timed after a warm-up, plus validation and test passes; "
                          "baselines and bootstrap not counted")
    for column in ("cell", "would", "params", "batch", "steps", "s/step", "estimate"):
        table.add_column(column, justify="left" if column in ("cell", "would") else "right")
    doing = {"new": "train", "resume": "resume", "extend": "extend", "skip": "skip (finished)"}
    for p in plans:
        table.add_row(p.cell.name, doing[p.action], f"{p.params:,}", str(p.batch_size), f"{p.total_steps:,}",
                      f"{p.step_s:.3g}", _clock(p.estimated_s))
    return table


def _cell_json(r: sweep_lib.CellResult) -> dict[str, Any]:
    return {"name": r.cell.name, "budget": r.cell.budget, "seed": r.cell.seed, "lr": r.cell.lr,
            "context_len": r.cell.context_len, "data_fraction": r.cell.data_fraction, "action": r.action,
            "run_dir": str(r.run_dir), "seconds": r.seconds, "summary": r.summary}

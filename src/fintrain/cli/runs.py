"""``fintrain runs``: list the run folders, or show one run's configuration, metrics and events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from fintrain.cli.common import FlagCommand, FlagGroup, out_console, print_json, table_console, workspace
from fintrain.cli.train import print_verdicts
from fintrain.experiments.runs import RunRecord, data_sources, list_runs, read_run, resolve_run

app = typer.Typer(
    cls=FlagGroup,
    help="List runs and show what one run did.\n\nExample: fintrain runs list",
    no_args_is_help=True,
)

RunsDir = Annotated[Optional[Path], typer.Option("--runs-dir", help="Folder of run outputs (default: the global --runs-dir).")]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


STATUS_STYLE = {"finished": "green", "thermal_stop": "red", "interrupted": "yellow", "running": "cyan"}


@app.command("list", cls=FlagCommand)
def list_(
    ctx: typer.Context,
    runs_dir: RunsDir = None,
    json_: Annotated[bool, typer.Option("--json", help="A JSON array, one object per run, on stdout.")] = False,
) -> None:
    """A table of runs: status, data, budget, size, steps, metrics, time and hottest temperature.

    A run is running, finished, stopped (thermal) or interrupted; the last two resume with
    `fintrain train --resume RUN`.

    Examples:
      fintrain runs list
      fintrain runs list --json            # a JSON array, one object per run
      fintrain runs list --runs-dir other/runs
    """
    folder = runs_dir or workspace(ctx).runs_dir
    runs = list_runs(folder)
    if json_:
        print_json([r.to_json() for r in runs])
        return
    if not runs:
        out_console.print(f"no runs in {folder}", highlight=False)
        return
    metrics = sorted({r.primary_metric for r in runs})
    # Borderless, so that the ten columns fit an 80-column terminal.
    table = Table(title=f"runs in {folder}", caption=f"best val and test: {', '.join(metrics)} on that split",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("name", "status", "data", "budget", "params", "steps", "best val", "test", "time", "°C max"):
        table.add_column(column, justify="left" if column in ("name", "status", "data", "budget") else "right",
                         no_wrap=True, min_width=8 if column == "data" else None)
    for r in runs:
        table.add_row(
            r.name, Text(r.status_label, style=STATUS_STYLE.get(r.status, "white")), f"{r.ticker} {r.tier}", r.budget,
            f"{r.params:,}" if r.params is not None else "-", f"{r.steps:,}", _num(r.best_val), _num(r.test),
            _duration(r.seconds), f"{r.temp_max_c:.0f}" if r.temp_max_c is not None else "-",
        )
    table_console(120).print(table)


def _event_table(run: RunRecord) -> Table:
    table = Table(title=f"events ({len(run.events)})")
    for column in ("step", "epoch", "event", "message"):
        table.add_column(column, justify="right" if column in ("step", "epoch") else "left")
    for e in run.events:
        table.add_row(str(e.step), str(e.epoch) if isinstance(e.epoch, int) else "", str(e.event), e.message)
    return table


def _source_text(sources: dict[str, str] | None, how: str, configured: Any) -> str:
    """What the data section's ``source`` shows: the source of the data trained on, not the
    configured default (``yahoo`` for a run on imported data said nothing true)."""
    if sources is None:
        return f"{json.dumps(configured)} (configured; the run did not record where its data came from)"
    used = set(sources.values())
    text = json.dumps(used.pop()) if len(used) == 1 else json.dumps(sources)
    return text if how == "recorded" else f"{text} (from the data folder's manifest)"


def _config_table(config: dict[str, Any], source: str) -> Table:
    table = Table(title="configuration", show_header=False)
    table.add_column("section", style="bold")
    table.add_column("values")
    for section, values in config.items():
        if isinstance(values, dict):
            text = ", ".join(f"{k}={source if (section, k) == ('data', 'source') else json.dumps(v)}"
                             for k, v in values.items() if v is not None)
        else:
            text = json.dumps(values)
        table.add_row(section, text)
    return table


@app.command("show", cls=FlagCommand)
def show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run name (in --runs-dir) or a run folder.")],
    runs_dir: RunsDir = None,
    json_: Annotated[bool, typer.Option("--json", help="Status, configuration, summary and events as JSON on stdout.")] = False,
) -> None:
    """One run: its status, configuration, data, test metrics beside the baselines, and events.

    The events are checkpoints, best epochs, thermal pauses and stops, interruptions and resumes.

    Examples:
      fintrain runs show demo-2m-seed0
      fintrain runs show runs/RUN-FOLDER --json
    """
    ws = workspace(ctx)
    record = read_run(resolve_run(run, runs_dir or ws.runs_dir))
    sources, how = data_sources(record, ws.data_dir)
    if json_:
        print_json({**record.to_json(), "data_sources": sources, "config": record.config, "summary": record.summary,
                    "events": [e.to_json() for e in record.events]})
        return
    out_console.print(
        Text(record.name, style="bold") + f"  {record.status_label} · {record.ticker} {record.tier} · budget {record.budget} · "
        f"seed {record.seed} · {record.steps:,} steps · {_duration(record.seconds)}"
        + (f" · max {record.temp_max_c:.0f} °C" if record.temp_max_c is not None else ""),
        highlight=False, soft_wrap=True,
    )
    out_console.print(_config_table(record.config, _source_text(sources, how, record.config.get("data", {}).get("source"))))
    if record.summary is not None:
        print_verdicts(record.summary)
    else:
        resume = f"; continue with: fintrain train --resume {record.path}" if record.resumable and record.status != "running" else ""
        best = f"best validation {record.primary_metric} {record.best_val:.4f}" if record.best_val is not None else "no validation yet"
        out_console.print(f"no test metrics yet ({record.status_label}, {best}){resume}", highlight=False, soft_wrap=True)
    out_console.print(_event_table(record))

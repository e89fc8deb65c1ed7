"""``fintrain report``: compare runs or a sweep's cells; a table, the answers in words, PNG plots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from fintrain.cli.common import err_console, out_console, print_json, styled, table_console, workspace
from fintrain.errors import ConfigError
from fintrain.experiments import plots as plots_lib
from fintrain.experiments import report as report_lib
from fintrain.experiments.runs import RunError, read_run, resolve_run
from fintrain.experiments.sweep import find_cells


def _table(report: report_lib.Report) -> Table:
    m = report.metric
    table = Table(title=f"test {m} by budget ({'higher' if report.higher_is_better else 'lower'} is better)")
    for column in ("budget", "params", "seeds", f"mean {m}", "95% interval", f"vs {report.best_baseline or 'baseline'}",
                   "vs smaller budget"):
        table.add_column(column, justify="left" if column == "budget" else "right")
    by_subject: dict[tuple[str, str], report_lib.Comparison] = {(c.subject, c.kind): c for c in report.comparisons}
    for b in report.budgets:
        i = b.interval
        cells = []
        for kind in ("baseline", "budget"):
            c = by_subject.get((b.budget, kind))
            cells.append("-" if c is None else f"{c.difference.estimate:+.4f} ({c.verdict})")
        table.add_row(b.budget, report_lib.fmt_params(b.params), str(len(b.runs)), f"{i.estimate:.4f}",
                      f"{i.low:.4f} .. {i.high:.4f}" if i.has_interval else "-", *cells)
    for name, value in sorted(report.baselines.items()):
        table.add_row(f"baseline {name}", "-", "-", f"{value:.4f}", "-", "-", "-", style="dim")
    return table


def _axis_table(study: report_lib.AxisStudy) -> Table:
    """One axis: each value's test metric and loss with intervals, and its verdict against each learned baseline."""
    checks = {(c.label, c.baseline): c for c in study.checks}
    table = Table(title=f"{study.words} axis ({report_lib.held_text(study.held)}): test {study.metric} and "
                        f"{study.loss}, 95% intervals over seeds and test dates")
    for column in (study.words, "seeds", f"test {study.metric}", f"test {study.loss}", *(f"vs {b}" for b in study.bands)):
        table.add_column(column, justify="left" if column == study.words else "right")
    for row in study.rows:
        versus = [f"{c.diff:+.4f} {c.verdict}" if (c := checks.get((row.label, b))) else "-" for b in study.bands]
        table.add_row(row.label, str(len(row.runs)), row.metric.text(), row.loss.text(), *versus)
    for b, band in study.bands.items():
        table.add_row(f"baseline {b}", "-", band["metric"].text(), band["loss"].text(), *("-" for _ in study.bands),
                      style="dim")
    return table


def _measures_table(rows: dict[str, dict[str, tuple[float, float, int]]], title: str, first: str) -> Table:
    measures = list(dict.fromkeys(m for values in rows.values() for m in values))
    table = Table(title=title)
    table.add_column(first, no_wrap=True)
    table.add_column("runs", justify="right")
    for m in measures:
        table.add_column(m, justify="right")
    for row, values in rows.items():
        n = max(v[2] for v in values.values())
        table.add_row(row, str(n), *(report_lib.fmt_mean_std(values.get(m)) for m in measures))
    return table


def report(
    ctx: typer.Context,
    runs: Annotated[Optional[list[str]], typer.Argument(metavar="RUN", help="Run names (in --runs-dir) or run folders.", show_default=False)] = None,
    sweep: Annotated[Optional[str], typer.Option(help="Report every cell of this sweep (runs/<NAME>-<budget>-seed<k>).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the PNGs, report.md and report.json (default: <runs-dir>/reports/<sweep or time>).")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Write the table and report files only (no plots drawn).")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Compare finished runs by budget: a table, the answers in words, and PNG plots.

    Each budget's test metric with its 95% Student-t interval over seeds, against the strongest
    baseline and against the next smaller budget. Then, for each swept axis (size; context length
    and data fraction when the runs vary them, the other axes held at their largest value): the
    test metric and test loss per value with 95% intervals that resample seeds and blocks of test
    dates (from predictions.parquet), the fit of the test loss to E + A·x^-α with a bootstrap
    interval for α and a verdict (4 or more values), the learned baselines as bands and the paired
    verdict of each value against them, and the smallest size better than each. Plots (matplotlib,
    installed with fintrain): each axis with its fit line and baseline bands, the loss curves,
    validation loss against training FLOPs with the compute-efficient frontier, and temperature.

    Examples:
      fintrain report --sweep demo
      fintrain report RUN-A RUN-B --out cmp/
      fintrain report --sweep demo --no-plots --json
    """
    ws = workspace(ctx)
    if bool(runs) == bool(sweep):
        raise ConfigError("give either run names or --sweep NAME (not both, not neither)")
    if sweep:
        folders = find_cells(sweep, ws.runs_dir)
        if not folders:
            raise RunError(f"no cells of sweep {sweep!r} in {ws.runs_dir} (folders {sweep}-<budget>-seed<k>); "
                           f"start it with `fintrain sweep --name {sweep} ...`")
    else:
        folders = [resolve_run(r, ws.runs_dir) for r in runs or []]
    records = [read_run(f) for f in folders]
    result = report_lib.build_report(records)
    out_dir = out or ws.runs_dir / "reports" / (sweep or dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    images = [] if no_plots else plots_lib.draw_all(result, out_dir)
    written = report_lib.write_report(result, out_dir, images)
    if json_:
        print_json({**result.to_json(), "files": [str(p) for p in written]})
        return
    console = table_console(140)
    console.print(_table(result))
    if result.trading:
        console.print(_measures_table(result.trading, "trading view on the test dates (mean ± std over runs)", "strategy"))
    if result.ic:
        console.print(_measures_table(result.ic, "cross-sectional IC on the test dates (mean ± std over runs)", "predictor"))
    for c in result.comparisons:
        out_console.print(f"• {c.sentence}", highlight=False, soft_wrap=True)
    for t in result.lr_tuning:
        out_console.print(f"• {t.sentence}", highlight=False, soft_wrap=True)
    for study in result.axes:
        console.print(_axis_table(study))
        out_console.print(f"• scaling fit of the test loss ({study.axis}): {study.fit.verdict}", highlight=False, soft_wrap=True)
        for sentence in study.smallest_sentences():
            out_console.print(f"• {sentence}", highlight=False, soft_wrap=True)
        out_console.print(f"  method: {study.method}.", style="dim", highlight=False, soft_wrap=True)
    if result.compute and result.compute.frontier:
        front = ", ".join(f"{label} ({flops:.3g} FLOPs, {loss:.4f})" for flops, loss, label in result.compute.frontier)
        out_console.print(f"• compute-efficient frontier (validation loss against training FLOPs): {front}",
                          highlight=False, soft_wrap=True)
    out_console.print(f"method: {result.method}.", style="dim", highlight=False, soft_wrap=True)
    for note in result.notes:
        err_console.print(styled("note:", "yellow", f" {note}"), highlight=False, soft_wrap=True)
    if result.left_out:
        err_console.print("not included (not finished): " + ", ".join(f"{r.name} ({r.status_label})" for r in result.left_out),
                          highlight=False, soft_wrap=True)
    out_console.print("wrote " + ", ".join(str(p) for p in written), highlight=False, soft_wrap=True)

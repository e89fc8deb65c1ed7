"""``fintrain data``: fetch, import, list and verify daily OHLCV files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from fintrain import data as data_lib
from fintrain.cli.common import FlagCommand, FlagGroup, err_console, out_console, print_json, run_config, styled, workspace
from fintrain.config import read_universe
from fintrain.display import format_bytes
from fintrain.experiments.runs import data_in_use

app = typer.Typer(
    cls=FlagGroup,
    help="Fetch, import, list and verify daily OHLCV market data.\n\n"
    "Example: fintrain data fetch MSFT --source sample",
    no_args_is_help=True,
)


def _parse_date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=option)


def _report(entry: dict[str, Any]) -> None:
    err_console.print(
        styled("saved", "green", f" {entry['path']}: {entry['rows']:,} rows, {entry['first_date']} .. "
               f"{entry['last_date']}, source {entry['source']}, md5 {entry['md5']}"),
        highlight=False,
        soft_wrap=True,
    )


def say_default_tickers(ticker: Optional[str], universe: Optional[Path], tickers: list[str]) -> None:
    """Name the tickers a command works on when neither TICKER nor --universe named them."""
    if ticker is None and universe is None:
        err_console.print(f"no TICKER given: using {','.join(tickers)} (data.ticker, default SPY)",
                          style="dim", highlight=False, soft_wrap=True)


def tickers_option(ticker: Optional[str], universe: Optional[Path]) -> Optional[str]:
    """TICKER or --universe FILE (not both) as one comma-separated string, or None."""
    if ticker and universe:
        raise typer.BadParameter("give TICKER or --universe, not both", param_hint="--universe")
    return read_universe(universe) if universe else ticker


@app.command(cls=FlagCommand)
def fetch(
    ctx: typer.Context,
    ticker: Annotated[
        Optional[str],
        typer.Argument(metavar="TICKER", help="Ticker symbol, or several comma-separated: SPY,QQQ,IWM (default: SPY, or "
                       "data.ticker of --config).", show_default=False),
    ] = None,
    universe: Annotated[
        Optional[Path], typer.Option(help="File with one ticker per line (instead of TICKER).")
    ] = None,
    source: Annotated[
        Optional[str], typer.Option(help="yahoo (network) or sample (offline: AAPL, GOOG, IBM, MSFT).")
    ] = None,
    start: Annotated[Optional[str], typer.Option(help="First date, YYYY-MM-DD.")] = None,
    end: Annotated[Optional[str], typer.Option(help="Last date, YYYY-MM-DD (inclusive).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML config file.")] = None,
) -> None:
    """Download daily OHLCV for TICKER (or several), validate it and store it as Parquet.

    Each ticker is validated and stored on its own; the first failure stops the command and
    names the ticker, with the tickers before it already stored.

    Examples:
      fintrain data fetch SPY                    # Yahoo Finance, full history
      fintrain data fetch MSFT --source sample   # offline: AAPL GOOG IBM MSFT
      fintrain data fetch SPY --start 2010-01-01 --end 2020-12-31
      fintrain data fetch --universe tickers.txt
    """
    ws = workspace(ctx)
    cfg = run_config(
        config,
        {"data": {"ticker": tickers_option(ticker, universe), "source": source,
                  "start": _parse_date(start, "--start"), "end": _parse_date(end, "--end")}},
    )
    say_default_tickers(ticker, universe, cfg.data.tickers)
    for name in cfg.data.tickers:
        if cfg.data.source == "yahoo":
            with err_console.status(Text(f"downloading {name} from Yahoo Finance...")):
                entry = data_lib.fetch(ws.data_dir, cfg.data, name)
        else:
            entry = data_lib.fetch(ws.data_dir, cfg.data, name)
        _report(entry)


@app.command("import", cls=FlagCommand)
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV or Parquet file from any vendor or broker.")],
    ticker: Annotated[str, typer.Option(help="Ticker to store the data as.")],
    adjusted: Annotated[
        bool, typer.Option("--adjusted", help="The file's prices are already adjusted.")
    ] = False,
    min_rows: Annotated[Optional[int], typer.Option(help="Fewest rows accepted (default 250).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML config file.")] = None,
) -> None:
    """Import a CSV or Parquet file of daily OHLCV as TICKER.

    Column names are recognised in common spellings (Date/timestamp, Open, High, Low, Close,
    Adj Close, Volume; any case); extra columns are ignored. With an adjusted-close column,
    open/high/low/close are rescaled so the stored series is adjusted.

    Examples:
      fintrain data import SPY.csv --ticker SPY
      fintrain data import qqq.parquet --ticker QQQ --adjusted  # adjusted
      fintrain data import small.csv --ticker XYZ --min-rows 100
    """
    ws = workspace(ctx)
    cfg = run_config(config, {"data": {"ticker": ticker, "min_rows": min_rows}})
    entry = data_lib.import_file(ws.data_dir, file, cfg.data.ticker, cfg.data.min_rows, adjusted)
    _report(entry)


@app.command("list", cls=FlagCommand)
def list_(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
) -> None:
    """List the current manifest entries (raw and processed files).

    One row per dataset's current version: rows, first and last date, source and md5.

    Examples:
      fintrain data list
      fintrain data list --json
    """
    ws = workspace(ctx)
    entries = data_lib.list_entries(ws.data_dir)
    if json_:
        print_json(entries)
        return
    if not entries:
        err_console.print(f"no data in {ws.data_dir}; try `fintrain data fetch MSFT --source sample`")
        return
    table = Table(title=f"data in {ws.data_dir}")
    table.add_column("dataset", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True, min_width=6)
    table.add_column("first", no_wrap=True)
    table.add_column("last", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("md5", no_wrap=True)
    for e in entries:
        source = e.get("source") or f"v{e.get('version', '?')} of raw {e.get('source_raw_md5', '')[:8]}"
        table.add_row(
            e["dataset"], f"{e['rows']:,}", e.get("first_date", ""), e.get("last_date", ""),
            source, e["md5"][:8],
        )
    out_console.print(table)


@app.command(cls=FlagCommand)
def verify(ctx: typer.Context) -> None:
    """Recompute the md5 of every current file against its manifest; exit 1 on any problem.

    Example: fintrain data verify
    """
    ws = workspace(ctx)
    results = data_lib.verify(ws.data_dir)
    if not results:
        err_console.print(f"no manifest entries in {ws.data_dir}; nothing to verify")
        return
    table = Table(title=f"verify {ws.data_dir}")
    table.add_column("path", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("expected md5", no_wrap=True)
    table.add_column("actual md5", no_wrap=True)
    style = {"OK": "green", "MISMATCH": "bold red", "MISSING": "bold red", "UNTRACKED": "yellow"}
    for r in results:
        table.add_row(
            r.path, Text(r.status, style=style[r.status]), r.expected_md5[:12] or "-", (r.actual_md5 or "-")[:12]
        )
    out_console.print(table)
    untracked = [r for r in results if r.status == "UNTRACKED"]
    if untracked:
        err_console.print(
            styled(f"{len(untracked)} untracked file(s)", "yellow", " (no manifest entry names them; left by an "
                   "interrupted write, safe to delete): " + ", ".join(r.path for r in untracked)),
            highlight=False, soft_wrap=True,
        )
    bad = [r for r in results if r.failed]
    if bad:
        names = ", ".join(f"{r.path} ({r.status})" for r in bad)
        err_console.print(
            styled("error:", "bold red", f" {len(bad)} file(s) failed verification: {names}; re-fetch or "
                   "re-import them (or rebuild features)"), highlight=False, soft_wrap=True,
        )
        raise typer.Exit(1)
    tracked = len(results) - len(untracked)
    err_console.print(f"all {tracked} files match their manifests", style="green")


@app.command(cls=FlagCommand)
def versions(
    ctx: typer.Context,
    ticker: Annotated[str, typer.Argument(metavar="TICKER", help="Ticker symbol.")],
    json_: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
) -> None:
    """List every stored version of TICKER's raw data and features, and the runs that used each.

    The newest version of each dataset is its current one; older versions stay until
    `fintrain data prune` deletes them.

    Examples:
      fintrain data versions SPY
      fintrain data versions SPY --json
    """
    ws = workspace(ctx)
    name = ticker.strip().upper()
    rows = data_lib.versions(ws.data_dir, name)
    used = data_in_use(ws.runs_dir)
    for row in rows:
        row["runs"] = sorted(set(used.by_md5.get(row["md5"], []) + used.unrecorded.get(name, [])))
    if json_:
        print_json(rows)
        return
    if not rows:
        err_console.print(f"no stored versions of {name} in {ws.data_dir}")
        return
    table = Table(title=f"versions of {name} in {ws.data_dir}")
    for column in ("dataset", "v", "date", "rows", "source", "md5", "runs"):
        table.add_column(column, overflow="fold", justify="right" if column in ("v", "rows") else "left")
    for row in rows:
        flag = ("current", "bold") if row["current"] else ("", "") if row["on_disk"] else ("(deleted)", "dim")
        source = row.get("source") or f"raw {row.get('source_raw_md5', '')[:8]}"
        table.add_row(
            Text.assemble(row["dataset"], " " if flag[0] else "", flag), str(row.get("version", "")), str(row.get("created_at", ""))[:19],
            f"{row.get('rows', 0):,}", source, row["md5"], ", ".join(row["runs"]) or "-",
        )
    out_console.print(table)


@app.command(cls=FlagCommand)
def prune(
    ctx: typer.Context,
    keep: Annotated[int, typer.Option(help="Newest versions kept per dataset (the current one always).")] = 2,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete old data versions that no run in --runs-dir trained on, and say what was freed.

    Each dataset keeps its KEEP newest versions; an older version stays while any run folder
    records it (in data.json or summary.json).

    Examples:
      fintrain data prune --dry-run
      fintrain data prune --keep 1
    """
    ws = workspace(ctx)
    if keep < 1:
        raise typer.BadParameter(f"{keep}: the current version is always kept; use 1 or more", param_hint="--keep")
    used = data_in_use(ws.runs_dir)
    result = data_lib.prune(ws.data_dir, keep, set(used.by_md5), set(used.unrecorded), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for entry in result.removed:
        out_console.print(f"{verb} {entry['path']} ({entry['dataset']}, {format_bytes(entry['bytes'])})",
                          highlight=False, soft_wrap=True)
    for entry in result.in_use:
        runs = sorted(set(used.by_md5.get(entry["md5"], []) + used.unrecorded.get(data_lib.ticker_of(entry), [])))
        out_console.print(f"kept {entry['path']}: used by {', '.join(runs)}", highlight=False, soft_wrap=True)
    err_console.print(
        f"{'would free' if dry_run else 'freed'} {format_bytes(result.freed_bytes)} in "
        f"{len(result.removed)} file(s); {len(result.in_use)} old version(s) kept for runs",
        highlight=False, soft_wrap=True,
    )

"""``fintrain features``: build a tier's features for a ticker, and describe the tiers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fintrain import features as features_lib
from fintrain.cli.common import (
    FlagCommand,
    FlagGroup,
    err_console,
    out_console,
    print_json,
    run_config,
    styled,
    workspace,
)
from fintrain.cli.data import say_default_tickers, tickers_option

app = typer.Typer(
    cls=FlagGroup,
    help="Build stationary feature tiers from raw OHLCV, and describe them.\n\n"
    "Example: fintrain features build SPY --tier a20",
    no_args_is_help=True,
)


@app.command(cls=FlagCommand)
def build(
    ctx: typer.Context,
    ticker: Annotated[
        str | None,
        typer.Argument(metavar="TICKER", help="Ticker whose raw data to build from, or several: SPY,QQQ,IWM (default: SPY, "
                       "or data.ticker of --config).", show_default=False),
    ] = None,
    universe: Annotated[Path | None, typer.Option(help="File with one ticker per line (instead of TICKER).")] = None,
    tier: Annotated[str | None, typer.Option(help="Feature tier (default a20).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when current.")] = False,
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the manifest entry as JSON.")] = False,
) -> None:
    """Build TICKER's features for a tier, unless they are current (same raw md5, same tier).

    Writes data/processed/TICKER.features.TIER.parquet and appends a manifest entry naming the
    raw file's md5; the tier's warm-up rows are dropped. Several tickers are built in one lazy
    Polars pass, each ticker on its own (no feature mixes tickers), into one file each.

    Examples:
      fintrain features build SPY --tier a20
      fintrain features build AAPL,IBM,MSFT,GOOG --tier a50
      fintrain features build SPY --force --json
    """
    ws = workspace(ctx)
    cfg = run_config(config, {"data": {"ticker": tickers_option(ticker, universe)}, "features": {"tier": tier}})
    say_default_tickers(ticker, universe, cfg.data.tickers)
    tickers = cfg.data.tickers
    with err_console.status(Text(f"building {cfg.features.tier} features for {len(tickers)} tickers...")):
        results = features_lib.ensure_features_many(
            ws.data_dir, tickers, cfg.features.tier, min_rows=cfg.split.context_len, force=force
        )
    if json_:
        documents = [{**r.entry, "rebuilt": r.rebuilt, "reason": r.reason} for r in results.values()]
        print_json(documents[0] if len(documents) == 1 else documents)
        return
    for result in results.values():
        _report(result)


def _report(result: features_lib.FeatureBuild) -> None:
    entry = result.entry
    if result.rebuilt:
        err_console.print(
            styled("built", "green", f" {entry['dataset']} v{entry['version']} ({result.reason}): "
                   f"{entry['rows']:,} rows x {entry['n_features']} features, {entry['first_date']} .. "
                   f"{entry['last_date']} ({entry['warmup_rows']} warm-up rows dropped) -> {result.path}"),
            highlight=False,
            soft_wrap=True,
        )
    else:
        err_console.print(
            f"up to date: {entry['dataset']} v{entry['version']} was built from the current raw "
            f"data (md5 {entry['source_raw_md5'][:8]}) and tier definition; nothing to do",
            highlight=False,
            soft_wrap=True,
        )


def _tier_rows() -> list[dict[str, Any]]:
    return [
        {
            "tier": name,
            "n_features": len(features_lib.TIERS[name]),
            "warmup_rows": features_lib.tier_warmup(name),
            "hash": features_lib.tier_hash(name),
            "summary": features_lib.TIER_SUMMARIES.get(name, ""),
        }
        for name in features_lib.TIERS
    ]


@app.command(cls=FlagCommand)
def describe(
    tier: Annotated[str | None, typer.Argument(metavar="TIER", help="A tier, e.g. a20; omit to list tiers.", show_default=False)] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Each feature of TIER: name, formula in words and warm-up rows; or the list of tiers.

    Every feature is stationary: a ratio to close, a bounded oscillator or a z-score.

    Examples:
      fintrain features describe                # the tiers
      fintrain features describe a50            # each feature of a50
      fintrain features describe a20 --json
    """
    if tier is None:
        rows = _tier_rows()
        if json_:
            print_json(rows)
            return
        table = Table(title="feature tiers")
        for column in ("tier", "features", "warm-up rows", "contents"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(r["tier"], str(r["n_features"]), str(r["warmup_rows"]), r["summary"])
        out_console.print(table)
        return
    features = features_lib.get_tier(tier)
    rows = [
        {
            "name": f.name,
            "formula": f.formula,
            "warmup_rows": f.warmup,
            "frequency": "weekly" if f.weekly else "daily",
        }
        for f in features
    ]
    if json_:
        print_json(rows)
        return
    table = Table(
        title=f"tier {tier}: {len(rows)} features, {features_lib.tier_warmup(tier)} warm-up rows"
    )
    table.add_column("#", justify="right")
    table.add_column("name", no_wrap=True)
    table.add_column("formula", overflow="fold")
    table.add_column("warm-up", justify="right")
    for i, r in enumerate(rows, 1):
        name = r["name"] + (" (weekly)" if r["frequency"] == "weekly" else "")
        table.add_row(str(i), name, r["formula"], str(r["warmup_rows"]))
    out_console.print(table)

"""``fintrain probe-batch``: the batch size this machine holds, and the one it trains fastest with."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from fintrain.cli.common import (
    err_console,
    out_console,
    print_json,
    run_config,
    workspace,
)
from fintrain.cli.data import tickers_option
from fintrain.display import format_bytes
from fintrain.errors import ProbeError

if TYPE_CHECKING:
    from fintrain.probe import ProbeResult, Trial

STATUS_STYLE = {"ok": "green", "oom": "red", "over_cap": "yellow"}


def _notify(message: str) -> None:
    err_console.print(message, style="dim", highlight=False, soft_wrap=True)


def render_trials(result: ProbeResult) -> Table:
    """One row per trial: batch size, samples/s (searched and re-timed), peak memory, status;
    the picks marked."""
    retimed = {f.batch_size: f for f in result.retiming.finalists} if result.retiming else {}
    table = Table(title=f"batch sizes on {result.device}")
    table.add_column("batch size", justify="right", no_wrap=True)
    table.add_column("samples/s", justify="right", no_wrap=True)
    if retimed:
        table.add_column("re-timed", justify="right", no_wrap=True)
    table.add_column("peak memory", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("", no_wrap=True)
    for t in sorted(result.trials, key=lambda t: t.batch_size):
        marks = []
        if t.batch_size == result.recommended:
            marks.append("recommended")
        if t.batch_size == result.largest_fit:
            marks.append("largest fit")
        rate = "-" if t.samples_per_s is None else f"{t.samples_per_s:,.1f}"
        peak = "-" if t.peak_memory_bytes is None else format_bytes(t.peak_memory_bytes)
        style = STATUS_STYLE[t.status]
        cells = [f"{t.batch_size:,}", rate]
        if retimed:
            finalist = retimed.get(t.batch_size)
            if finalist is None:
                cells.append("-")
            elif finalist.samples_per_s is None:
                cells.append(Text(finalist.status, style=STATUS_STYLE[finalist.status]))
            else:
                cells.append(f"{finalist.samples_per_s:,.1f}")
        table.add_row(*cells, peak, Text(t.status, style=style), ", ".join(marks),
                      style="bold" if t.batch_size == result.recommended else None)
    return table


def probe_batch(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="TOML file holding a run configuration.")] = None,
    ticker: Annotated[str | None, typer.Option(help="Ticker, or several comma-separated, to probe on (default SPY).")] = None,
    universe: Annotated[Path | None, typer.Option(help="File with one ticker per line (instead of --ticker): probe on their pooled windows, as `train --universe` trains.")] = None,
    source: Annotated[str | None, typer.Option(help="Where to fetch missing data: yahoo or sample.")] = None,
    tier: Annotated[str | None, typer.Option(help="Feature tier (default a20).")] = None,
    budget: Annotated[str | None, typer.Option(help="Parameter budget: 2m, 20m, 200m, or any size such as 300k (default 2m).")] = None,
    context_len: Annotated[int | None, typer.Option(help="Rows in one input window (default 60).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, mps, cuda or cpu (default auto).")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32 or bf16 (autocast), as `train --precision` will run (default fp32).")] = None,
    min_batch: Annotated[int | None, typer.Option(help="First batch size tried (default 8).")] = None,
    max_batch: Annotated[int | None, typer.Option(help="Largest batch size tried (default 4096).")] = None,
    search: Annotated[str | None, typer.Option(help="power (doubling) or binsearch (then bisect); default power.")] = None,
    steps: Annotated[int | None, typer.Option(help="Timed training steps per size, after one warm-up (default 3).")] = None,
    memory_fraction: Annotated[float | None, typer.Option(help="A size whose peak exceeds this share of the device's memory does not fit (default 0.8).")] = None,
    plateau: Annotated[int | None, typer.Option(help="Stop doubling after this many sizes in a row each no more than 5% faster than the fastest before them; 0: try every size up to --max-batch (default 2).")] = None,
    finalists: Annotated[int | None, typer.Option(help="Fastest sizes timed again after the search, interleaved; 1: no re-timing (default 3).")] = None,
    retime_rounds: Annotated[int | None, typer.Option(help="Rounds of the re-timing, order reversed every round (default 2).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Find the batch sizes that fit on this machine and the one that trains fastest.

    Builds the model and data `fintrain train` would use (fetching and building features when
    missing), then times a fresh model and optimizer at batch sizes doubling from --min-batch
    until --max-batch, the training set's size, an out-of-memory error or the memory cap
    (--memory-fraction of the GPU's memory, of MPS's recommended maximum, or of the machine's
    available memory on CPU), or until --plateau sizes in a row train no faster (on a CPU the
    speed stops rising long before memory runs out). The --finalists fastest sizes are then timed again in
    --retime-rounds interleaved rounds (A B C, C B A), so a burst of other load during one
    size's trial cannot decide the pick. The pick is cached for `fintrain train --batch-size auto`
    with the same device, model and --precision (a bf16 probe is not used for an fp32 run).

    With --universe FILE the probe runs on the pooled windows of the file's tickers, exactly
    what `fintrain train --universe FILE` trains on.

    Examples:
      fintrain probe-batch --tier a20 --budget 2m
      fintrain probe-batch --ticker MSFT --source sample --budget 20m
      fintrain probe-batch --device cpu --precision bf16 --json
    """
    ws = workspace(ctx)
    cfg = run_config(
        config,
        {
            "data": {"ticker": tickers_option(ticker, universe), "source": source},
            "features": {"tier": tier},
            "model": {"budget": budget},
            "split": {"context_len": context_len},
            "train": {"device": device, "precision": precision},
            "probe": {"min_batch": min_batch, "max_batch": max_batch, "search": search,
                      "steps": steps, "plateau": plateau, "memory_fraction": memory_fraction,
                      "finalists": finalists,
                      "retime_rounds": retime_rounds},
        },
    )
    # Imported here so that other commands start without loading torch.
    from fintrain.probe import probe_batch as probe_lib
    from fintrain.probe.search import format_share

    with err_console.status(Text("preparing the data and the model...")) as status:

        def on_start(batch_size: int) -> None:
            status.update(Text(f"batch size {batch_size:,}: warm-up and {cfg.probe.steps} timed steps..."))

        def on_trial(t: Trial) -> None:
            rate = "" if t.samples_per_s is None else f", {t.samples_per_s:,.1f} samples/s"
            peak = "" if t.peak_memory_bytes is None else f", peak {format_bytes(t.peak_memory_bytes)}"
            err_console.print(Text.assemble(f"  batch {t.batch_size:,}: ", (t.status, STATUS_STYLE[t.status]),
                                            f"{rate}{peak}"), highlight=False)

        visits: list[int] = []

        def on_retime(batch_size: int, round_number: int) -> None:
            # A printed line per visit, not only the spinner: a pipe or a log file sees the progress too.
            if not visits:
                err_console.print(f"re-timing the fastest sizes that fit in {cfg.probe.retime_rounds} interleaved "
                                  "rounds (a fresh model, a warm-up and one timed step per visit)", highlight=False)
            visits.append(batch_size)
            err_console.print(f"  re-timing round {round_number}/{cfg.probe.retime_rounds}: batch {batch_size:,}...",
                              highlight=False)
            status.update(Text(f"re-timing the fastest sizes, round {round_number}/{cfg.probe.retime_rounds}: "
                               f"batch size {batch_size:,}..."))

        run = probe_lib(ws.data_dir, cfg, notify=_notify, on_start=on_start, on_trial=on_trial,
                        on_retime=on_retime)
    result = run.result
    tickers = cfg.data.tickers
    named = ", ".join(tickers[:3]) + (", ..." if len(tickers) > 3 else "")
    err_console.print(f"training set: {run.n_train:,} windows of {len(tickers)} ticker"
                      f"{'s' if len(tickers) > 1 else ''} ({named})", style="dim", highlight=False)
    if result.retiming is not None:
        for f in result.retiming.finalists:
            rate = f.status if f.samples_per_s is None else f"{f.samples_per_s:,.1f} samples/s"
            err_console.print(f"  re-timed batch {f.batch_size:,}: {rate} (search: "
                              f"{f.search_samples_per_s or 0:,.1f})", highlight=False)
    if json_:
        print_json({**result.to_json(), "tickers": tickers, "n_train": run.n_train})
    else:
        out_console.print(render_trials(result))
    if result.recommended is None:
        raise ProbeError(f"{result.reason}; try a smaller --min-batch or --budget, or a higher "
                         "--memory-fraction")
    if not json_:
        out_console.print(Text.assemble("recommended batch size: ", (str(result.recommended), "bold"),
                                        f"  largest {'tried' if result.plateau else 'that fits'}: "
                                        f"{result.largest_fit}"), highlight=False)
        out_console.print(result.reason, highlight=False, soft_wrap=True)
        if result.memory_cap_bytes is not None:
            out_console.print(
                f"memory cap: {format_bytes(result.memory_cap_bytes)} ({format_share(cfg.probe.memory_fraction)} "
                f"of {format_bytes(result.memory_budget_bytes)})", highlight=False)
    if run.cache_file is not None:
        err_console.print(f"the pick (batch size {result.recommended:,}) is cached in {run.cache_file}; "
                          f"`fintrain train --batch-size auto` uses it for this device, model and precision "
                          f"({cfg.train.precision})", highlight=False, soft_wrap=True)

"""The ``fintrain`` command-line app: global options, error translation, subcommands."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from fintrain import __version__
from fintrain.cli import data as data_cmd
from fintrain.cli import features as features_cmd
from fintrain.cli import probe as probe_cmd
from fintrain.cli import report as report_cmd
from fintrain.cli import runs as runs_cmd
from fintrain.cli import sweep as sweep_cmd
from fintrain.cli import train as train_cmd
from fintrain.cli import thermal as thermal_cmd
from fintrain.cli.common import FlagCommand, FlagGroup, Workspace, err_console, styled
from fintrain.errors import FintrainError


def _debug_enabled(ctx: typer.Context | None) -> bool:
    if os.environ.get("FINTRAIN_DEBUG", "").strip() not in ("", "0", "false", "no"):
        return True
    obj = ctx.find_root().obj if ctx is not None else None
    return bool(isinstance(obj, Workspace) and obj.debug)


class FintrainGroup(FlagGroup):
    """Root group: turns FintrainError into one red line and its exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FintrainError as exc:
            if _debug_enabled(ctx):
                raise
            # The message is foreign text (paths, tickers, `pip install 'fintrain[nvidia]'`): printed
            # as written, never read as markup.
            err_console.print(styled("error:", "bold red", f" {exc}"), highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None


app = typer.Typer(
    name="fintrain",
    cls=FintrainGroup,
    help="Train PatchTST transformers on daily market data, on a laptop, a CPU or an NVIDIA GPU.\n\n"
    "Each command's --help shows its options and examples.\n\n"
    "Examples:\n"
    "  fintrain train --tier a20 --budget 2m              # SPY from Yahoo Finance\n"
    "  fintrain train --ticker MSFT --source sample       # offline\n"
    "  fintrain data import SPY.csv --ticker SPY          # your own daily prices\n"
    "  fintrain runs list",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fintrain {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path,
        typer.Option(envvar="FINTRAIN_DATA_DIR", help="Data folder (raw/ and processed/)."),
    ] = Path("data"),
    runs_dir: Annotated[
        Path,
        typer.Option(envvar="FINTRAIN_RUNS_DIR", help="Folder for run outputs."),
    ] = Path("runs"),
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (also FINTRAIN_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """fintrain: from a ticker to a trained, evaluated PatchTST in one command.

    Example: fintrain train --tier a20 --budget 2m
    """
    ctx.obj = Workspace(data_dir=data_dir, runs_dir=runs_dir, debug=debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(levelname)s: %(message)s",
    )


app.add_typer(data_cmd.app, name="data")
app.add_typer(features_cmd.app, name="features")
app.add_typer(runs_cmd.app, name="runs")
app.command("probe-batch", cls=FlagCommand)(probe_cmd.probe_batch)
app.command("train", cls=FlagCommand)(train_cmd.train)
app.command("sweep", cls=FlagCommand)(sweep_cmd.sweep)
app.command("report", cls=FlagCommand)(report_cmd.report)
app.command("thermal-watch", cls=FlagCommand)(thermal_cmd.thermal_watch)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        _exit(130)
    except SystemExit as done:
        _exit(done.code)


def _exit(code: object) -> None:
    """Exit with ``code`` (as ``sys.exit`` takes it); a torchrun rank skips the interpreter's
    teardown (``fintrain.train.distributed.exit_rank``)."""
    # Only a process that trained under torchrun has imported it: other commands stay torch-free.
    distributed = sys.modules.get("fintrain.train.distributed")
    if distributed is not None:
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        distributed.exit_rank(code or 0)
    sys.exit(code)

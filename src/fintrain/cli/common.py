"""What every command shares: the workspace folders, the consoles and config loading."""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from fintrain.config import RunConfig, load_config

# Progress and messages go to stderr so that stdout can hold a JSON document alone. Markup is off:
# messages carry foreign text (exception text, paths, tickers, hints such as
# `pip install 'fintrain[report]'`) that must print as written; styled parts are Text spans.
err_console = Console(stderr=True, markup=False)
out_console = Console(markup=False)


def table_console(width: int) -> Console:
    """stdout's console on a terminal; else one ``width`` columns wide, so that piped tables
    (a file, less) keep each row on one line."""
    return out_console if out_console.is_terminal else Console(width=width, markup=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """``label`` in ``style``, then ``rest`` as written (never read as markup)."""
    return Text.assemble((label, style), rest)


# click's UsageError, whether Typer vendors click (0.26+) or depends on it.
_UsageError = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")
# What a user may write after a flag believing it takes a value (`--json true`).
_FLAG_VALUES = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _without_value_placeholders(params: list[Any]) -> list[Any]:
    """Flags (``--json``, ``--help``) shown with no ``<bool>`` placeholder: they take no value.

    Typer's rich help prints each option's type, for flags too, which reads as if ``--json
    true`` were the way to write it; an empty metavar shows nothing there.
    """
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _flag_value_hint(params: list[Any], args: list[str]) -> str | None:
    """For ``--json true``: says the flag takes no value."""
    flags = {opt for p in params if getattr(p, "is_flag", False) for opt in (*p.opts, *p.secondary_opts)}
    for flag, value in zip(args, args[1:]):
        if flag in flags and value.lower() in _FLAG_VALUES:
            return f"{flag} is a flag and takes no value: write {flag} alone (leave it out for false)"
    return None


def reflow(help_text: str | None) -> str | None:
    """Docstring paragraphs as one line each, so the terminal wraps them at its own width; a
    paragraph with indented lines (the examples) keeps its lines.

    Typer's rich help keeps every line break, so a docstring wrapped at 95 columns broke in mid
    sentence on an 80-column terminal, and in `fintrain --help`'s list of commands.
    """
    if not help_text:
        return help_text
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    return "\n\n".join(
        p if any(line.startswith(" ") for line in p.splitlines()) else " ".join(p.split())
        for p in paragraphs
    )


class FlagCommand(TyperCommand):
    """A command whose help reflows to the terminal, shows flags without a value placeholder,
    and whose usage error for ``--flag true`` says that the flag takes no value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_value_placeholders(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return super().parse_args(ctx, args)
        except _UsageError as exc:  # "Got unexpected extra argument(s) (true)"
            hint = _flag_value_hint(self.get_params(ctx), given)
            if hint and not isinstance(exc, typer.BadParameter):
                exc.message = f"{exc.message}; {hint}"
            raise


class FlagGroup(TyperGroup):
    """A command group whose help reflows and whose own options (``--help``, ``--debug``) show
    no value placeholder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_value_placeholders(super().get_params(ctx))


@dataclass(frozen=True)
class Workspace:
    """The folders a command works in (global options, then environment, then defaults)."""

    data_dir: Path
    runs_dir: Path
    debug: bool = False


def workspace(ctx: typer.Context) -> Workspace:
    """The Workspace the root callback stored on the context."""
    root = ctx.find_root()
    obj = root.obj
    if isinstance(obj, Workspace):
        return obj
    return Workspace(
        data_dir=Path(os.environ.get("FINTRAIN_DATA_DIR") or "data"),
        runs_dir=Path(os.environ.get("FINTRAIN_RUNS_DIR") or "runs"),
    )


def run_config(config_file: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Load the RunConfig for a command: file, environment, then command-line overrides."""
    return load_config(config_file, overrides)


def print_json(document: Any) -> None:
    """Write a JSON document alone on stdout."""
    typer.echo(json.dumps(document, indent=2, default=str))

"""What every command shares: the workspace folders, the consoles and config loading."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from fintrain.config import RunConfig, load_config

# Progress and messages go to stderr so that stdout can hold a JSON document alone.
err_console = Console(stderr=True)
out_console = Console()


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

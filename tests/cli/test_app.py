"""The app itself: the error printer, flags in --help, each command's summary and examples."""

from __future__ import annotations

import re

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from fintrain.cli import app
from fintrain.cli import data as data_cli
from fintrain.errors import ConfigError, DataError


def _commands(group, prefix=()):
    """(path, click command) of every command under the root group, groups included."""
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if hasattr(command, "list_commands"):
            yield from _commands(command, (*prefix, name))


COMMANDS = [path for path, _ in _commands(get_command(app))]
LEAVES = [path for path, command in _commands(get_command(app)) if not hasattr(command, "list_commands")]


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "message",
    [
        "plots need matplotlib: pip install 'fintrain[report]' (or pass --no-plots)",
        "the nvidia source needs NVML bindings: pip install 'fintrain[nvidia]'",
        "a message with [bold]what looks like markup[/bold] and [/ a stray closing tag",
        "[/]",
    ],
)
def test_the_error_printer_prints_the_message_as_written(cli, monkeypatch, message):
    def fail(*args, **kwargs):
        raise DataError(message)

    monkeypatch.setattr(data_cli.data_lib, "list_entries", fail)
    result = cli("data", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {message}"
    assert "Traceback" not in result.output


def test_a_file_name_with_brackets_reaches_the_error_line_unchanged(cli, tmp_path):
    for name in ("prices[/b].csv", "SPY[report].csv"):
        result = cli("data", "import", str(tmp_path / name), "--ticker", "SPY")
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == f"error: file not found: {tmp_path / name}"


def test_a_folder_name_with_brackets_prints_as_written(tmp_path):
    folder = tmp_path / "data [/x] [bold]"
    result = CliRunner().invoke(app, ["--data-dir", str(folder), "data", "list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"no data in {folder}; try" in result.stderr


def test_a_usage_error_keeps_its_exit_code_through_the_printer(cli, monkeypatch):
    def fail(*args, **kwargs):
        raise ConfigError("bad [x] value")

    monkeypatch.setattr(data_cli.data_lib, "list_entries", fail)
    result = cli("data", "list")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: bad [x] value"


def test_a_saved_line_shows_a_path_with_brackets(cli, tmp_path):
    from bokeh_sampledata import stocks
    import polars as pl

    d = stocks.MSFT
    source = tmp_path / "msft [2000].csv"
    pl.DataFrame({k: d[k] for k in ("date", "open", "high", "low", "close", "volume")}).head(300).write_csv(source)
    result = cli("data", "import", str(source), "--ticker", "MSFT")
    assert result.exit_code == 0, result.output
    assert "source import:msft [2000].csv" in result.stderr


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_flags_show_no_value_placeholder_in_help(path):
    text = _help(*path)
    assert "<bool>" not in text
    for flag in re.findall(r"(--[a-z-]+)\s+(\S+)", text):
        assert flag[1] != "<bool>", flag


def test_json_is_shown_as_a_flag_and_a_value_after_it_is_explained(cli):
    text = _help("runs", "list")
    line = next(line for line in text.splitlines() if line.startswith("│ --json"))
    assert re.search(r"--json\s+A JSON array", line), line
    result = cli("runs", "list", "--json", "true", env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--json is a flag and takes no value: write --json alone" in " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    assert cli("runs", "list", "--json").exit_code == 0


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_each_summary_is_one_whole_sentence_in_the_command_list(path):
    """`fintrain --help` lists each command by the first paragraph of its help; one that spans
    lines broke mid-sentence there (thermal-watch's did)."""
    *group_path, name = path
    command = get_command(app)
    for part in path:
        command = command.get_command(typer.Context(command), part)
    first = (command.short_help or command.help or "").strip().split("\n\n")[0]
    assert "\n" not in first and first.endswith("."), first
    row = next(line for line in _help(*group_path).splitlines() if re.match(rf"│ {re.escape(name)}\s", line))
    assert first in row, row


EXAMPLE_COUNTS = {("train",): 3, ("data", "fetch"): 3, ("data", "import"): 2, ("features", "build"): 2,
                  ("features", "describe"): 2, ("sweep",): 2, ("report",): 2, ("probe-batch",): 2,
                  ("thermal-watch",): 2, ("runs", "list"): 2, ("runs", "show"): 2}


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_each_command_shows_its_common_variations(path):
    text = _help(*path)
    examples = [line for line in text.splitlines() if re.search(r"\bfintrain " + re.escape(" ".join(path)) + r"\b", line)
                and "Usage" not in line]
    assert len(examples) >= EXAMPLE_COUNTS.get(path, 1), (path, examples)


def test_help_prose_wraps_at_the_terminal_not_at_the_docstring_line_breaks():
    text = _help("train")
    flat = " ".join(text.split())
    assert "builds the tier's features when they are missing or stale" in flat
    # One paragraph, one line at 200 columns: the docstring's own line breaks are gone.
    assert any("when they are missing or stale. Ctrl-C saves a checkpoint" in line for line in text.splitlines())
    # The examples keep their lines.
    assert any(line.strip().startswith("fintrain train --resume runs/RUN-FOLDER") for line in text.splitlines())


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "fintrain")
def test_examples_stay_indented_under_their_heading(path):
    """Typer dedents the help after its first paragraph as one block: examples that were the only
    paragraph there lost their indentation."""
    lines = _help(*path).splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Examples:":
            assert lines[i + 1].startswith("   fintrain "), lines[i + 1]

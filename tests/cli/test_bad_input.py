"""Bad values, bad names and broken folders: one line on stderr, exit 1 or 2, nothing changed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import polars as pl
import pytest

from fintrain.storage import check_writable


def msft_frame(rows: int = 300) -> pl.DataFrame:
    from bokeh_sampledata import stocks

    d = stocks.MSFT
    return pl.DataFrame({k: d[k] for k in ("date", "open", "high", "low", "close", "volume", "adj_close")}).head(rows)


def one_line_error(result, *needles: str) -> None:
    """The result failed with exactly one line on stderr that holds every needle."""
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _at(frame: pl.DataFrame, column: str, row: int, value) -> pl.DataFrame:
    """``frame`` with ``column`` set to ``value`` in 0-based ``row``."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("close", float("nan"), "NaN or infinite close in rows 4"),
        ("open", float("inf"), "NaN or infinite open in rows 4"),
        ("low", float("-inf"), "NaN or infinite low in rows 4"),
        ("volume", float("nan"), "NaN or infinite volume in rows 4"),
        ("volume", float("inf"), "NaN or infinite volume in rows 4"),
        ("adj_close", float("nan"), "NaN or infinite adj_close in rows 4"),
    ],
)
def test_nan_and_infinite_values_are_refused_with_row_numbers(cli, tmp_path, folder_snapshot, column, value, message):
    assert cli("data", "fetch", "MSFT", "--source", "sample").exit_code == 0
    before = folder_snapshot(cli.data_dir)
    frame = _at(msft_frame().with_columns(pl.col("volume").cast(pl.Float64)), column, 3, value)
    frame.write_csv(tmp_path / "bad.csv")
    result = cli("data", "import", str(tmp_path / "bad.csv"), "--ticker", "MSFT")
    one_line_error(result, "bad.csv is not valid daily OHLCV data", message)
    assert result.exit_code == 1
    assert folder_snapshot(cli.data_dir) == before


def test_a_column_of_nan_closes_is_refused(cli, tmp_path):
    msft_frame().with_columns(pl.lit(float("nan")).alias("close")).write_csv(tmp_path / "nan.csv")
    result = cli("data", "import", str(tmp_path / "nan.csv"), "--ticker", "SPY")
    one_line_error(result, "NaN or infinite close in rows 1, 2, 3, 4, 5, ... (300 in all)")
    assert not cli.data_dir.exists()


def test_dates_before_1900_or_after_today_are_refused(cli, tmp_path):
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    frame = _at(_at(msft_frame(), "date", 0, "1899-12-29"), "date", 299, tomorrow)
    frame.write_csv(tmp_path / "dates.csv")
    result = cli("data", "import", str(tmp_path / "dates.csv"), "--ticker", "SPY")
    one_line_error(result, "dates before 1900-01-01 in rows 1", f"dates after today ({dt.date.today()}) in rows 300")
    assert result.exit_code == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_utf16_and_bom_files_import_as_utf8_would(cli, tmp_path, encoding):
    text = msft_frame().write_csv()
    (tmp_path / "plain.csv").write_text(text, encoding="utf-8")
    (tmp_path / "other.csv").write_bytes(text.encode(encoding))
    assert cli("data", "import", str(tmp_path / "plain.csv"), "--ticker", "A").exit_code == 0
    result = cli("data", "import", str(tmp_path / "other.csv"), "--ticker", "B")
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(cli.raw_file("A")).equals(pl.read_parquet(cli.raw_file("B")))


def test_a_file_in_another_encoding_is_refused_naming_it(cli, tmp_path):
    text = msft_frame().write_csv().replace("date", "Datum \u00e4", 1)
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    result = cli("data", "import", str(tmp_path / "latin.csv"), "--ticker", "SPY")
    one_line_error(result, "latin.csv is not valid UTF-8 text (byte 0xe4", "save it as UTF-8")
    assert result.exit_code == 1


def test_decimal_commas_get_one_hint_instead_of_two_problems_per_column(cli, tmp_path):
    frame = msft_frame().drop("adj_close").with_columns(
        pl.col(c).cast(pl.String).str.replace(r"\.", ",") for c in ("open", "high", "low", "close")
    )
    frame.write_csv(tmp_path / "comma.csv", separator=";")
    result = cli("data", "import", str(tmp_path / "comma.csv"), "--ticker", "SPY")
    one_line_error(result, "(1 problem)", "open, high, low, close use a decimal comma (row 1:", "'.' as the decimal separator")
    assert "missing" not in result.stderr and "non-numeric" not in result.stderr


@pytest.mark.parametrize(
    "name, message",
    [
        ("a/b", "'a/b': use letters"),
        ("../../escape", "'../../escape': use letters"),
        ("/abs/path", "'/abs/path': use letters"),
        ("..", "'..': use letters"),
        ("x" * 101, "--run-name is 101 characters long; use at most 100"),
        ("y" * 300, "--run-name is 300 characters long"),
    ],
)
def test_run_names_that_are_not_plain_folder_names_exit_2_and_create_nothing(cli, tmp_path, tiny_toml, name, message):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml())
    before = sorted(p for p in tmp_path.rglob("*"))
    result = cli("train", "--config", str(config), "--run-name", name)
    one_line_error(result, message)
    assert result.exit_code == 2
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "escape").exists() and not Path("/abs/path").exists()


def test_a_100_character_run_name_is_fine(cli, tmp_path, tiny_toml):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml(train={"max_steps": 2}))
    result = cli("train", "--config", str(config), "--run-name", "r" * 100, "--no-live")
    assert result.exit_code == 0, result.output
    assert (cli.runs_dir / ("r" * 100) / "summary.json").is_file()


def test_sweep_names_follow_the_same_rule(cli):
    result = cli("sweep", "--name", "a/b", "--budgets", "2m", "--seeds", "1")
    one_line_error(result, "sweep name 'a/b': use letters")
    assert result.exit_code == 2


def test_data_dir_that_is_a_file(cli, tmp_path):
    msft_frame().write_csv(tmp_path / "a.csv")
    cli.data_dir.parent.mkdir(parents=True, exist_ok=True)
    cli.data_dir.write_text("not a folder")
    result = cli("data", "import", str(tmp_path / "a.csv"), "--ticker", "SPY")
    one_line_error(result, f"--data-dir {cli.data_dir / 'raw' / 'SPY'}", "is a file, not a folder")
    assert cli.data_dir.read_text() == "not a folder"


def test_runs_dir_that_is_a_file(cli, tmp_path, tiny_toml):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml())
    cli.runs_dir.write_text("not a folder")
    result = cli("train", "--config", str(config), "--run-name", "r")
    one_line_error(result, f"--runs-dir {cli.runs_dir}", "is a file, not a folder")
    assert cli.runs_dir.read_text() == "not a folder"


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: the folder (and everything in it) refuses writes.

    Root ignores permission bits, so the test cannot chmod its way there; the operating
    system's answer is simulated where fintrain asks it (``os.access``) and where it writes
    (``os.mkdir``, ``tempfile.mkstemp``, ``open`` for writing), as a read-only mount answers.
    """
    import builtins
    import errno
    import tempfile

    folders: list[Path] = []

    def inside(path) -> bool:
        path = Path(os.path.abspath(path))
        return any(path == f or f in path.parents for f in folders)

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    real_access, real_mkdir, real_mkstemp, real_open = os.access, os.mkdir, tempfile.mkstemp, builtins.open
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if inside(p) and mode & os.W_OK else real_access(p, mode, **kw))
    monkeypatch.setattr(os, "mkdir", lambda p, *a, **kw: refuse(p) if inside(p) else real_mkdir(p, *a, **kw))
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, dir=None, **kw: refuse(dir) if dir and inside(dir) else real_mkstemp(*a, dir=dir, **kw))

    def guarded_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            refuse(file)
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded_open)
    return lambda folder: folders.append(Path(os.path.abspath(folder)))


def test_a_read_only_data_folder_is_one_line_for_import_fetch_build_and_train(cli, tmp_path, tiny_toml, folder_snapshot, read_only):
    msft_frame().write_csv(tmp_path / "a.csv")
    assert cli("data", "fetch", "MSFT", "--source", "sample").exit_code == 0
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml())
    before = folder_snapshot(cli.data_dir)
    read_only(cli.data_dir)
    for args in (
        ("data", "import", str(tmp_path / "a.csv"), "--ticker", "SPY"),
        ("data", "fetch", "IBM", "--source", "sample"),
        ("features", "build", "MSFT"),
        ("train", "--config", str(config), "--run-name", "r"),
    ):
        result = cli(*args)
        one_line_error(result, "read-only", "--data-dir")
        assert folder_snapshot(cli.data_dir) == before
    assert not (cli.runs_dir / "r").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_a_chmod_read_only_data_folder_is_refused(cli, tmp_path):
    msft_frame().write_csv(tmp_path / "a.csv")
    cli.data_dir.mkdir()
    cli.data_dir.chmod(0o555)
    try:
        result = cli("data", "import", str(tmp_path / "a.csv"), "--ticker", "SPY")
        one_line_error(result, "read-only")
    finally:
        cli.data_dir.chmod(0o755)


def test_check_writable_accepts_a_folder_still_to_be_made(tmp_path):
    check_writable(tmp_path / "new" / "deeper", "--data-dir")


def test_a_non_utf8_byte_in_metrics_skips_that_line_with_one_warning(cli, tmp_path, tiny_toml, caplog):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml(train={"max_steps": 4, "log_every": 1}))
    for name in ("good", "damaged"):
        assert cli("train", "--config", str(config), "--run-name", name, "--no-live").exit_code == 0
    metrics = cli.runs_dir / "damaged" / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines()
    lines[1] = lines[1][:10] + b"\xff\xfe" + lines[1][12:]
    metrics.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.WARNING):
        listed = cli("runs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert {r["name"] for r in json.loads(listed.stdout)} == {"good", "damaged"}
    warnings = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert len(warnings) == 1 and "line 2" in warnings[0].getMessage()
    for args in (("runs", "show", "damaged"), ("report", "good", "damaged")):
        result = cli(*args)
        assert result.exit_code == 0, result.output


def test_a_truncated_config_json_on_resume_is_one_line(cli, tmp_path, tiny_toml):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml(train={"max_steps": 2}))
    assert cli("train", "--config", str(config), "--run-name", "r", "--no-live").exit_code == 0
    path = cli.runs_dir / "r" / "config.json"
    path.write_text(path.read_text()[:40])
    result = cli("train", "--resume", str(cli.runs_dir / "r"), "--max-steps", "4")
    one_line_error(result, f"{path} is damaged", "start a new run")


def test_cpu_out_of_memory_suggests_probe_batch_and_leaves_no_run_folder(tmp_path, tiny_toml, at_train_record):
    from fintrain.config import load_config
    from fintrain.errors import DeviceError
    from fintrain.train import run as run_lib

    config = tmp_path / "tiny.toml"
    config.write_text(tiny_toml(train={"log_every": 1, "batch_size": 4096}))

    def allocate(step):
        # What the CPU allocator raises when a batch does not fit.
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")

    cfg = load_config(config, environ={})
    with pytest.raises(DeviceError, match=r"out of memory at batch size \d+ on cpu .*fintrain probe-batch"):
        run_lib.start_run(cfg, tmp_path / "data", tmp_path / "runs", run_name="big",
                          options=run_lib.RunOptions(live=False, sinks=(at_train_record(allocate),)))
    assert not (tmp_path / "runs" / "big").exists()


def test_config_that_names_a_folder_says_so(cli, tmp_path):
    result = cli("train", "--config", str(tmp_path))
    one_line_error(result, f"config file {tmp_path} is a folder, not a TOML file")
    assert result.exit_code == 2


def test_resume_of_a_missing_folder_says_no_such_folder(cli, tmp_path):
    result = cli("train", "--resume", str(tmp_path / "gone"))
    one_line_error(result, f"--resume {tmp_path / 'gone'}: no such folder", "fintrain runs list")
    assert result.exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(cli("train", "--resume", str(empty)), f"{empty} is not a fintrain run folder (no config.json)")
